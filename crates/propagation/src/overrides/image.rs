//! Container image references, parsed the way Docker's `distribution/reference` parses them
//! and kept exactly as written: no implicit `docker.io` registry, no implicit `library/`
//! repository prefix, no implicit `latest` tag. Owns parsing, printing and the
//! registry/repository/tag edits of an imageOverrider; knows nothing about manifests.

use std::fmt;

use flotilla_api::policy::{ImageComponent, OverriderOperator};

/// The longest repository name (registry included) `distribution` accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// An image reference `[registry/]repository[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host with an optional port, such as `registry:5000`; empty when the
    /// reference names none.
    pub registry: String,
    /// The repository path inside the registry, such as `library/nginx`.
    pub repository: String,
    /// The tag, such as `1.25`.
    pub tag: Option<String>,
    /// The digest, such as `sha256:…`.
    pub digest: Option<String>,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.registry.is_empty() {
            write!(f, "{}/", self.registry)?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl ImageRef {
    /// Parses `image`, or says why it is not a valid reference.
    ///
    /// The first path component is the registry when the reference has more than one component
    /// and that component contains a `.` or a `:`, is `localhost`, or has an upper-case letter
    /// (distribution's `splitDomain` rule): `registry:5000/a/b` has registry `registry:5000`,
    /// `library/nginx` has none.
    pub fn parse(image: &str) -> Result<Self, String> {
        if image.is_empty() {
            return Err("the image reference is empty".into());
        }
        let (rest, digest) = match image.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest)?;
                (rest, Some(digest.to_string()))
            }
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !is_tag(tag) {
                    return Err(format!("{tag:?} is not a valid tag"));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(format!(
                "the repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
            ));
        }
        let (registry, repository) = split_registry(name);
        if !registry.is_empty() && !is_domain(registry) {
            return Err(format!("{registry:?} is not a valid registry host"));
        }
        if repository.is_empty() || !repository.split('/').all(is_path_component) {
            return Err(format!(
                "{repository:?} is not a valid repository (lower-case letters, digits and \
                 separators `.`, `_`, `__`, `-` between them, components split by `/`)"
            ));
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The tag if there is one, otherwise the digest (Karmada's `TagOrDigest`).
    fn tag_or_digest(&self) -> &str {
        self.tag
            .as_deref()
            .or(self.digest.as_deref())
            .unwrap_or_default()
    }

    /// Sets a tag (dropping the digest, which pins other content) or, when `value` is a
    /// digest, the digest (dropping the tag), as Karmada's `SetTagOrDigest`.
    fn set_tag_or_digest(&mut self, value: &str) -> Result<(), String> {
        if is_tag(value) {
            self.tag = Some(value.to_string());
            self.digest = None;
        } else if check_digest(value).is_ok() {
            self.digest = Some(value.to_string());
            self.tag = None;
        } else {
            return Err(format!(
                "{value:?} is neither a valid tag nor a valid digest"
            ));
        }
        Ok(())
    }

    /// Applies one imageOverrider edit and checks that the result is still a valid reference.
    ///
    /// `add` appends `value` to the component (to the tag, or to the digest when there is no
    /// tag), `replace` sets it, `remove` clears it (the tag if there is one, else the digest).
    pub fn edit(
        &self,
        component: ImageComponent,
        operator: OverriderOperator,
        value: &str,
    ) -> Result<Self, String> {
        let mut image = self.clone();
        match (component, operator) {
            (ImageComponent::Registry, OverriderOperator::Add) => image.registry.push_str(value),
            (ImageComponent::Registry, OverriderOperator::Replace) => {
                value.clone_into(&mut image.registry)
            }
            (ImageComponent::Registry, OverriderOperator::Remove) => image.registry.clear(),
            (ImageComponent::Repository, OverriderOperator::Add) => {
                image.repository.push_str(value);
            }
            (ImageComponent::Repository, OverriderOperator::Replace) => {
                value.clone_into(&mut image.repository);
            }
            (ImageComponent::Repository, OverriderOperator::Remove) => image.repository.clear(),
            (ImageComponent::Tag, OverriderOperator::Add) => {
                let joined = format!("{}{value}", self.tag_or_digest());
                image.set_tag_or_digest(&joined)?;
            }
            (ImageComponent::Tag, OverriderOperator::Replace) => image.set_tag_or_digest(value)?,
            (ImageComponent::Tag, OverriderOperator::Remove) => {
                if image.tag.is_some() {
                    image.tag = None;
                } else {
                    image.digest = None;
                }
            }
        }
        let printed = image.to_string();
        Self::parse(&printed)
            .map_err(|why| format!("the result {printed:?} is not a valid image: {why}"))
    }
}

/// Splits `name` into registry and repository by distribution's `splitDomain` rule.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("", name),
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    tag.len() <= 128
        && chars.next().is_some_and(word)
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

/// `algorithm:hex`, with the lengths `go-digest` checks for the algorithms it knows.
fn check_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!("{digest:?} is not a valid digest (algorithm:hex)"));
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algorithm:?}")),
    };
    if hex.len() != length || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!(
            "{digest:?} is not a valid digest ({algorithm} needs {length} lower-case hex digits)"
        ));
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Between alphanumeric runs: `.`, `_`, `__` or any number of `-`.
    let mut separator = String::new();
    for &b in bytes {
        if alnum(&b) {
            if !(separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.bytes().all(|s| s == b'-'))
            {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

/// A host (`a.b`, `registry`, an IPv6 literal in brackets) with an optional numeric port.
fn is_domain(domain: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(rest) => {
            let Some((ip, after)) = rest.split_once(']') else {
                return false;
            };
            let ip_ok = !ip.is_empty() && ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
            match after.strip_prefix(':') {
                Some(port) => (ip_ok, Some(port)),
                None => (ip_ok && after.is_empty(), None),
            }
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (host.split('.').all(label), Some(port)),
            None => (domain.split('.').all(label), None),
        },
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c";

    /// image, registry, repository, tag, digest.
    type Parsed<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn references_parse_as_written_like_distribution() {
        let digest_ref = format!("docker.io/library/nginx@{SHA}");
        let both = format!("a.b/c/d:e@{SHA}");
        let table: [Parsed<'_>; 9] = [
            ("nginx", "", "nginx", None, None),
            ("nginx:1.25", "", "nginx", Some("1.25"), None),
            (&digest_ref, "docker.io", "library/nginx", None, Some(SHA)),
            (
                "registry:5000/a/b:tag",
                "registry:5000",
                "a/b",
                Some("tag"),
                None,
            ),
            ("localhost:5000/x", "localhost:5000", "x", None, None),
            ("localhost/x", "localhost", "x", None, None),
            (&both, "a.b", "c/d", Some("e"), Some(SHA)),
            ("library/nginx", "", "library/nginx", None, None),
            ("[::1]:5000/x:1", "[::1]:5000", "x", Some("1"), None),
        ];
        for (image, registry, repository, tag, digest) in table {
            let parsed = ImageRef::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
            assert_eq!(parsed.registry, registry, "{image}");
            assert_eq!(parsed.repository, repository, "{image}");
            assert_eq!(parsed.tag.as_deref(), tag, "{image}");
            assert_eq!(parsed.digest.as_deref(), digest, "{image}");
            assert_eq!(
                parsed.to_string(),
                image,
                "printing {image} changes nothing"
            );
        }
    }

    #[test]
    fn invalid_references_are_rejected() {
        for image in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-bad",
            "nginx@sha256:abc",
            "nginx@md5:50d858e0985ecc7f60418aaf0cc5ab58",
            "a//b",
            "-a/b",
            "a..b:1",
            "bad host:5000/x",
            "[::1/x",
            "[::1]x/y",
            "host:port/x",
        ] {
            assert!(
                ImageRef::parse(image).is_err(),
                "{image:?} must be rejected"
            );
        }
    }

    #[test]
    fn edits_follow_karmada() {
        use ImageComponent::{Registry, Repository, Tag};
        use OverriderOperator::{Add, Remove, Replace};
        let digest_ref = format!("docker.io/library/nginx@{SHA}");
        let both = format!("a.b/c/d:e@{SHA}");
        let with_digest = format!("nginx@{SHA}");
        let table: Vec<(&str, ImageComponent, OverriderOperator, &str, String)> = vec![
            (
                "nginx",
                Registry,
                Add,
                "docker.io",
                "docker.io/nginx".into(),
            ),
            (
                "nginx",
                Registry,
                Replace,
                "mirror.io",
                "mirror.io/nginx".into(),
            ),
            ("nginx:1.25", Registry, Remove, "", "nginx:1.25".into()),
            (
                "docker.io/nginx",
                Registry,
                Add,
                ".cn",
                "docker.io.cn/nginx".into(),
            ),
            (
                "registry:5000/a/b:tag",
                Registry,
                Replace,
                "m.io",
                "m.io/a/b:tag".into(),
            ),
            (
                "registry:5000/a/b:tag",
                Registry,
                Remove,
                "",
                "a/b:tag".into(),
            ),
            ("localhost:5000/x", Registry, Remove, "", "x".into()),
            (
                &digest_ref,
                Registry,
                Replace,
                "m.io",
                format!("m.io/library/nginx@{SHA}"),
            ),
            (
                "nginx:1.25",
                Repository,
                Add,
                "-slim",
                "nginx-slim:1.25".into(),
            ),
            (
                "registry:5000/a/b:tag",
                Repository,
                Replace,
                "c",
                "registry:5000/c:tag".into(),
            ),
            ("nginx", Tag, Add, "1.25", "nginx:1.25".into()),
            (
                "nginx:1.25",
                Tag,
                Add,
                "-alpine",
                "nginx:1.25-alpine".into(),
            ),
            ("nginx:1.25", Tag, Replace, "1.26", "nginx:1.26".into()),
            ("nginx:1.25", Tag, Remove, "", "nginx".into()),
            ("nginx:1.25", Tag, Replace, SHA, with_digest.clone()),
            (
                &digest_ref,
                Tag,
                Replace,
                "1.25",
                "docker.io/library/nginx:1.25".into(),
            ),
            (
                &digest_ref,
                Tag,
                Remove,
                "",
                "docker.io/library/nginx".into(),
            ),
            (
                "localhost:5000/x",
                Tag,
                Add,
                "v1",
                "localhost:5000/x:v1".into(),
            ),
            (&both, Tag, Replace, "f", "a.b/c/d:f".into()),
            (&both, Tag, Remove, "", format!("a.b/c/d@{SHA}")),
            (&both, Registry, Replace, "g.h", format!("g.h/c/d:e@{SHA}")),
            (
                &both,
                Repository,
                Replace,
                "x/y",
                format!("a.b/x/y:e@{SHA}"),
            ),
        ];
        for (image, component, operator, value, expect) in table {
            let parsed = ImageRef::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
            let edited = parsed
                .edit(component, operator, value)
                .unwrap_or_else(|e| panic!("{image} {component:?} {operator:?}: {e}"));
            assert_eq!(
                edited.to_string(),
                expect,
                "{image} {component:?} {operator:?} {value}"
            );
        }
    }

    #[test]
    fn edits_that_break_the_reference_fail() {
        use ImageComponent::{Registry, Repository, Tag};
        use OverriderOperator::{Add, Remove, Replace};
        let table = [
            ("nginx:1.25", Repository, Remove, "", "is not a valid image"),
            (
                "nginx:1.25",
                Tag,
                Replace,
                "bad tag",
                "neither a valid tag nor a valid digest",
            ),
            (
                "nginx",
                Registry,
                Replace,
                "bad host",
                "is not a valid image",
            ),
            (
                "nginx:1.25",
                Repository,
                Add,
                "UPPER",
                "is not a valid image",
            ),
            (
                "nginx:1.25",
                Tag,
                Add,
                "/x",
                "neither a valid tag nor a valid digest",
            ),
        ];
        for (image, component, operator, value, why) in table {
            let parsed = ImageRef::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
            let err = parsed.edit(component, operator, value).err();
            assert!(
                err.as_deref().is_some_and(|e| e.contains(why)),
                "{image} {component:?} {operator:?} {value}: {err:?}"
            );
        }
    }
}
