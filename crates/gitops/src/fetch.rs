//! Fetching a revision with gix: a bare repository per GitRepo in the cache, fetched shallow
//! (depth 1) for a branch, a tag or a semver range, fully for a commit; the commit's tree
//! written out to a directory for building. Blocking: callers run it on a blocking thread.
//! Credentials reach gix through its credentials callback only, never through the URL, so
//! they appear in no log, error or status. A `caBundle` replaces the system's roots for the
//! HTTPS client gix builds (reqwest with rustls).

use std::{
    num::NonZeroU32,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
};

use flotilla_api::gitops::GitReference;
use gix::{
    bstr::ByteSlice,
    remote::{
        Direction,
        fetch::{Shallow, Tags},
    },
};

/// Credentials from the GitRepo's Secret.
#[derive(Clone, Default)]
pub struct Credentials {
    /// HTTPS user name (`git` when only a token is given).
    pub username: Option<String>,
    /// HTTPS password or token.
    pub password: Option<String>,
    /// An SSH private key file (written by the caller, mode 0600).
    pub ssh_identity: Option<PathBuf>,
    /// An SSH known_hosts file.
    pub ssh_known_hosts: Option<PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

/// What to fetch.
#[derive(Clone, Debug)]
pub struct Source {
    /// The repository URL.
    pub url: String,
    /// What to follow.
    pub reference: Option<GitReference>,
    /// Credentials, if any.
    pub credentials: Credentials,
    /// PEM certificates an HTTPS server must chain to, instead of the system's roots.
    pub ca_bundle: Option<String>,
}

/// A failed fetch, with a message fit for a condition (no credentials in it).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

fn failed<E: std::error::Error + 'static>(what: &str, error: E) -> FetchError {
    FetchError(format!(
        "{what}: {}",
        flotilla_runtime::error::chain(&error)
    ))
}

/// The refspec fetched and the remote ref that names the revision.
fn refspec(reference: Option<&GitReference>) -> (String, Option<String>) {
    match reference {
        Some(GitReference {
            branch: Some(branch),
            ..
        }) => (
            format!("+refs/heads/{branch}:refs/remotes/origin/{branch}"),
            Some(format!("refs/heads/{branch}")),
        ),
        Some(GitReference { tag: Some(tag), .. }) => (
            format!("+refs/tags/{tag}:refs/tags/{tag}"),
            Some(format!("refs/tags/{tag}")),
        ),
        Some(GitReference {
            semver: Some(_), ..
        }) => ("+refs/tags/*:refs/tags/*".to_owned(), None),
        Some(GitReference {
            commit: Some(commit),
            ..
        }) => (commit.clone(), None),
        _ => (
            "+HEAD:refs/remotes/origin/HEAD".to_owned(),
            Some("HEAD".to_owned()),
        ),
    }
}

/// The newest tag among `tags` (full ref names) that `range` admits; a leading `v` is
/// ignored.
pub fn newest_matching<'a>(
    range: &semver::VersionReq,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    tags.into_iter()
        .filter_map(|name| {
            let tag = name.strip_prefix("refs/tags/").unwrap_or(name);
            let version = semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()?;
            range.matches(&version).then_some((version, name))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, name)| name)
}

fn open(dir: &Path, credentials: &Credentials) -> Result<gix::Repository, FetchError> {
    if !dir.join("HEAD").exists() {
        std::fs::create_dir_all(dir).map_err(|e| failed("creating the cache", e))?;
        gix::init_bare(dir).map_err(|e| failed("initialising the cache repository", e))?;
    }
    let mut overrides = vec!["protocol.version=2".to_owned()];
    if let Some(identity) = &credentials.ssh_identity {
        // Only hosts the Secret's known_hosts (else the user's) names are accepted.
        let known_hosts = credentials.ssh_known_hosts.as_ref().map_or_else(
            || "-o StrictHostKeyChecking=yes".to_owned(),
            |k| {
                format!(
                    "-o StrictHostKeyChecking=yes -o UserKnownHostsFile={}",
                    k.display()
                )
            },
        );
        overrides.push(format!(
            "core.sshCommand=ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes {known_hosts}",
            identity.display()
        ));
    }
    gix::open_opts(
        dir,
        gix::open::Options::isolated().config_overrides(overrides),
    )
    .map_err(|e| failed("opening the cache repository", e))
}

/// Fetches the revision `source` names into the bare repository `dir` and returns its commit
/// (full SHA).
///
/// # Errors
///
/// When the remote cannot be reached, refuses the credentials, or lacks the reference.
pub fn fetch(dir: &Path, source: &Source) -> Result<String, FetchError> {
    // HTTPS through reqwest uses the process's rustls provider: ring, as kube's client does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let repo = open(dir, &source.credentials)?;
    let (spec, wanted) = refspec(source.reference.as_ref());
    let remote = repo
        .remote_at(source.url.as_str())
        .map_err(|e| failed("reading the repository URL", e))?
        .with_fetch_tags(Tags::None)
        .with_refspecs([spec.as_str()], Direction::Fetch)
        .map_err(|e| failed("building the refspec", e))?;
    let mut connection = remote
        .connect(Direction::Fetch)
        .map_err(|e| failed(&format!("connecting to {}", redact(&source.url)), e))?;
    if let Some(pem) = source.ca_bundle.as_deref() {
        connection = connection.with_transport_options(trusting(&repo, &source.url, pem)?);
    }
    let (username, password) = (
        source.credentials.username.clone(),
        source.credentials.password.clone(),
    );
    if let Some(password) = password {
        connection.set_credentials(move |action| match action {
            gix::credentials::helper::Action::Get(context) => {
                Ok(Some(gix::credentials::protocol::Outcome {
                    credentials: gix::sec::identity::Credentials::UsernamePassword {
                        username: username.clone().unwrap_or_else(|| "git".to_owned()),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: context.into(),
                }))
            }
            _ => Ok(None),
        });
    }
    let prepare = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| {
            failed(
                &format!("listing the references of {}", redact(&source.url)),
                e,
            )
        })?;
    let remote_refs: Vec<(String, gix::ObjectId)> = prepare
        .ref_map()
        .remote_refs
        .iter()
        .filter_map(|r| {
            let (name, target, peeled) = r.unpack();
            Some((
                name.to_str_lossy().into_owned(),
                peeled.or(target)?.to_owned(),
            ))
        })
        .collect();
    let commit = match source.reference.as_ref() {
        Some(GitReference {
            commit: Some(commit),
            ..
        }) => gix::ObjectId::from_hex(commit.as_bytes())
            .map_err(|e| failed("reading spec.ref.commit", e))?,
        Some(GitReference {
            semver: Some(range),
            ..
        }) => {
            let range = semver::VersionReq::parse(range)
                .map_err(|e| failed("reading spec.ref.semver", e))?;
            let tag = newest_matching(&range, remote_refs.iter().map(|(n, _)| n.as_str()))
                .ok_or_else(|| {
                    FetchError(format!(
                        "no tag of {} matches the semver range {range}",
                        redact(&source.url)
                    ))
                })?;
            remote_refs
                .iter()
                .find(|(n, _)| n == tag)
                .map(|(_, id)| *id)
                .ok_or_else(|| FetchError(format!("tag {tag} vanished")))?
        }
        _ => {
            let wanted = wanted.unwrap_or_default();
            remote_refs
                .iter()
                .find(|(n, _)| *n == wanted)
                .map(|(_, id)| *id)
                .ok_or_else(|| {
                    FetchError(format!("{} has no reference {wanted}", redact(&source.url)))
                })?
        }
    };
    let have = repo.find_commit(commit).is_ok();
    if !have {
        let shallow = match source.reference.as_ref() {
            Some(GitReference {
                commit: Some(_), ..
            }) => Shallow::NoChange,
            _ => Shallow::DepthAtRemote(NonZeroU32::MIN),
        };
        prepare
            .with_shallow(shallow)
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|e| failed(&format!("fetching from {}", redact(&source.url)), e))?;
        repo.find_commit(commit).map_err(|_| {
            FetchError(format!(
                "{} did not send commit {commit}",
                redact(&source.url)
            ))
        })?;
    }
    Ok(commit.to_string())
}

/// HTTP transport options for `url` (the repository's configuration, as gix reads it) whose
/// client trusts exactly the certificates in `pem`.
fn trusting(
    repo: &gix::Repository,
    url: &str,
    pem: &str,
) -> Result<Box<dyn std::any::Any>, FetchError> {
    use gix::protocol::transport::client::blocking_io::http;
    let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| failed("reading spec.caBundle", e))?;
    if certificates.is_empty() {
        return Err(FetchError(
            "spec.caBundle holds no PEM certificate".to_owned(),
        ));
    }
    let mut options = repo
        .transport_options(url, None)
        .map_err(|e| failed("configuring the HTTP transport", e))?
        .and_then(|o| o.downcast::<http::Options>().ok())
        .map(|o| *o)
        .unwrap_or_default();
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder.tls_certs_only(certificates.clone()))
        })),
        configure_request: None,
    };
    options.backend = Some(std::sync::Arc::new(std::sync::Mutex::new(backend)));
    Ok(Box::new(options))
}

/// Writes the tree of `revision` in the bare repository `dir` into `into` (emptied first).
/// Symbolic links and submodules are skipped: a link could point outside the checkout.
///
/// # Errors
///
/// When the commit is missing or the files cannot be written.
pub fn export(dir: &Path, revision: &str, into: &Path) -> Result<(), FetchError> {
    let repo = open(dir, &Credentials::default())?;
    let id = gix::ObjectId::from_hex(revision.as_bytes())
        .map_err(|e| failed("reading the revision", e))?;
    let tree = repo
        .find_commit(id)
        .and_then(|c| c.tree())
        .map_err(|e| failed(&format!("reading commit {revision}"), e))?;
    let mut recorder = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut recorder)
        .map_err(|e| failed(&format!("reading the tree of {revision}"), e))?;
    if into.exists() {
        std::fs::remove_dir_all(into).map_err(|e| failed("clearing the checkout", e))?;
    }
    std::fs::create_dir_all(into).map_err(|e| failed("creating the checkout", e))?;
    for entry in recorder.records {
        let path = entry.filepath.to_str_lossy();
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            continue;
        }
        let target = into.join(path.as_ref());
        if entry.mode.is_tree() {
            std::fs::create_dir_all(&target).map_err(|e| failed("writing the checkout", e))?;
        } else if entry.mode.is_blob() {
            let blob = repo
                .find_object(entry.oid)
                .map_err(|e| failed(&format!("reading {path}"), e))?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| failed("writing the checkout", e))?;
            }
            std::fs::write(&target, &blob.data).map_err(|e| failed("writing the checkout", e))?;
        }
    }
    Ok(())
}

/// The URL without any user information, for messages.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{scheme}://{host}/{path}")
            }
            None => format!(
                "{scheme}://{}",
                rest.rsplit_once('@').map_or(rest, |(_, h)| h)
            ),
        },
        None => url.to_owned(),
    }
}

/// The bytes the cache directory `dir` holds.
pub fn size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_picks_the_newest_matching_tag() {
        let tags = [
            "refs/tags/v1.0.0",
            "refs/tags/v1.2.3",
            "refs/tags/1.3.0",
            "refs/tags/v2.0.0",
            "refs/tags/latest",
            "refs/heads/main",
        ];
        let check = |range: &str, want: Option<&str>| {
            let range = semver::VersionReq::parse(range).expect("range");
            assert_eq!(newest_matching(&range, tags), want, "{range}");
        };
        check(">=1.0.0, <2", Some("refs/tags/1.3.0"));
        check("~1.2", Some("refs/tags/v1.2.3"));
        check("*", Some("refs/tags/v2.0.0"));
        check(">=3", None);
    }

    #[test]
    fn redact_removes_user_information() {
        assert_eq!(
            redact("https://user:secret@example.com/repo.git"),
            "https://example.com/repo.git"
        );
        assert_eq!(redact("file:///tmp/repo"), "file:///tmp/repo");
        assert_eq!(redact("git@host:repo.git"), "git@host:repo.git");
    }
}
