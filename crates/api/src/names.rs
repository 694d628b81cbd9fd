//! Deterministic names of everything Flotilla creates: execution namespaces, binding names and
//! Work names, and the rules a Cluster name must follow so its execution namespace exists.
//! Controllers take child names only from here, so a restart or a second replica always
//! computes the same name.

use std::fmt;

use crate::keys::namespaces::EXECUTION_PREFIX;

/// The longest name most Kubernetes objects may have (a DNS subdomain).
pub const MAX_NAME_LENGTH: usize = 253;

/// The longest DNS-1123 label, and so the longest namespace name.
pub const MAX_LABEL_LENGTH: usize = 63;

/// The longest Cluster name. The execution namespace `flotilla-es-<cluster>` must stay a valid
/// namespace name (a DNS-1123 label of at most [`MAX_LABEL_LENGTH`] characters); 48 also
/// leaves room for a longer prefix later, as Karmada's limit does.
pub const MAX_CLUSTER_NAME_LENGTH: usize = 48;

/// Why a name cannot be a Cluster name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster name {name:?} {problem}")]
pub struct InvalidClusterName {
    /// The name that was given.
    pub name: String,
    /// What is wrong with it.
    pub problem: ClusterNameProblem,
}

/// What is wrong with a Cluster name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterNameProblem {
    /// The name is empty.
    Empty,
    /// The name has more than [`MAX_CLUSTER_NAME_LENGTH`] characters.
    TooLong {
        /// How many characters it has.
        length: usize,
    },
    /// The name is not a DNS-1123 label.
    NotDnsLabel,
}

impl fmt::Display for ClusterNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(
                f,
                "is empty; a Cluster needs a name, which also names its execution namespace \
                 {EXECUTION_PREFIX}<name>"
            ),
            Self::TooLong { length } => write!(
                f,
                "has {length} characters, more than {MAX_CLUSTER_NAME_LENGTH}; shorten it so the \
                 execution namespace {EXECUTION_PREFIX}<name> stays a valid namespace name \
                 (at most {MAX_LABEL_LENGTH} characters)"
            ),
            Self::NotDnsLabel => write!(
                f,
                "is not a DNS-1123 label; use only lowercase letters, digits and '-', starting \
                 and ending with a letter or digit (no '.'), so the execution namespace \
                 {EXECUTION_PREFIX}<name> is a valid namespace name"
            ),
        }
    }
}

/// Whether `name` is a DNS-1123 label: 1 to 63 lowercase letters, digits and `-`, starting and
/// ending with a letter or digit. Namespace names must be labels.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= MAX_LABEL_LENGTH
                && alphanumeric(first)
                && alphanumeric(last)
                && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
        }
        _ => false,
    }
}

/// Checks that `name` can be a Cluster name: a DNS-1123 label of at most
/// [`MAX_CLUSTER_NAME_LENGTH`] characters. `validate()` applies this to every Cluster.
pub fn check_cluster_name(name: &str) -> Result<(), InvalidClusterName> {
    let problem = if name.is_empty() {
        ClusterNameProblem::Empty
    } else if name.len() > MAX_CLUSTER_NAME_LENGTH {
        ClusterNameProblem::TooLong { length: name.len() }
    } else if !is_dns_label(name) {
        ClusterNameProblem::NotDnsLabel
    } else {
        return Ok(());
    };
    Err(InvalidClusterName {
        name: name.to_owned(),
        problem,
    })
}

/// The execution namespace of a member cluster: `flotilla-es-<cluster>`.
///
/// # Errors
///
/// [`InvalidClusterName`] when `cluster` is not a valid Cluster name (see
/// [`check_cluster_name`]). `validate()` rejects such Clusters, but a Cluster applied to a server
/// that does not run it, or a hand-written binding, can still carry one; the caller reports the
/// error instead of creating a namespace the server would reject or that no one looks in.
pub fn execution_namespace(cluster: &str) -> Result<String, InvalidClusterName> {
    check_cluster_name(cluster)?;
    Ok(format!("{EXECUTION_PREFIX}{cluster}"))
}

/// The member cluster an execution namespace belongs to, or `None` if `namespace` is not an
/// execution namespace.
pub fn cluster_of_execution_namespace(namespace: &str) -> Option<&str> {
    namespace
        .strip_prefix(EXECUTION_PREFIX)
        .filter(|cluster| !cluster.is_empty())
}

/// The name of the (Cluster)ResourceBinding of a template: `<name>-<kind>`, lower-cased, with
/// `:` (allowed in RBAC names, not in binding names) replaced by `.`.
pub fn binding_name(kind: &str, name: &str) -> String {
    let full = format!("{name}-{kind}").to_lowercase().replace(':', ".");
    fit(full, &format!("{name}/{kind}"))
}

/// The name of the Work that carries a template to one cluster:
/// `<name>-<hash of namespace, name, kind and API group>`, so templates of different kinds,
/// groups (core `Service` and Knative's `serving.knative.dev` `Service`) or namespaces with the
/// same name never collide in one execution namespace. The version in `api_version` does not
/// count: one object served at two versions keeps one Work. (A core kind hashes as before the
/// group counted, so core templates keep their Work names.)
pub fn work_name(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    let group = api_version
        .split_once('/')
        .map_or("", |(group, _)| group)
        .to_lowercase();
    let kind = kind.to_lowercase();
    let qualified = if group.is_empty() {
        kind
    } else {
        format!("{kind}.{group}")
    };
    let key = format!("{}/{}/{}", namespace.unwrap_or(""), name, qualified);
    let full = format!(
        "{}-{:x}",
        name.to_lowercase().replace(':', "."),
        fnv32a(key.as_bytes())
    );
    fit(full, &key)
}

/// Shortens a name that is longer than [`MAX_NAME_LENGTH`], keeping it unique by ending it in
/// a hash of `key`.
fn fit(name: String, key: &str) -> String {
    if name.len() <= MAX_NAME_LENGTH {
        return name;
    }
    let suffix = format!("-{:08x}", fnv32a(key.as_bytes()));
    let mut cut = MAX_NAME_LENGTH - suffix.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", name[..cut].trim_end_matches(['-', '.']))
}

/// The name of a machine a MachineSet makes from the template with this hash:
/// `<set>-<hash>-<suffix>`, the suffix five base-36 characters of `seed` (never reused, so a
/// replacement never takes the name, providerID or data of the machine it replaces).
pub fn machine_name(set: &str, template_hash: &str, seed: &[u8]) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = fnv32a(seed);
    let suffix: String = (0..5)
        .map(|_| {
            let d = DIGITS[(n % 36) as usize] as char;
            n /= 36;
            d
        })
        .collect();
    format!("{set}-{template_hash}-{suffix}")
}

/// The 32-bit FNV-1a hash. Used for Work names and for the scheduler's tie-break parity on a
/// binding's UID, where it must match Karmada's choice exactly.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The API group of an apiVersion: `apps/v1` → `apps`, `v1` → `` (the core group). Templates,
/// bindings and selectors name a kind by group, whichever version was asked for.
pub fn group_of(api_version: &str) -> &str {
    api_version
        .split_once('/')
        .map_or("", |(group, _version)| group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_namespace_round_trips() {
        let longest = "a".repeat(MAX_CLUSTER_NAME_LENGTH);
        let longest_namespace = format!("flotilla-es-{longest}");
        for (cluster, namespace) in [
            ("member1", "flotilla-es-member1"),
            ("a-b", "flotilla-es-a-b"),
            ("0", "flotilla-es-0"),
            (longest.as_str(), longest_namespace.as_str()),
        ] {
            assert_eq!(execution_namespace(cluster).as_deref(), Ok(namespace));
            assert!(is_dns_label(namespace), "{namespace} is a namespace name");
            assert_eq!(cluster_of_execution_namespace(namespace), Some(cluster));
        }
        assert_eq!(cluster_of_execution_namespace("flotilla-es-"), None);
        assert_eq!(cluster_of_execution_namespace("default"), None);
        assert_eq!(cluster_of_execution_namespace("flotilla-system"), None);
    }

    #[test]
    fn execution_namespace_refuses_names_that_make_no_valid_namespace() {
        use ClusterNameProblem::*;
        let table: &[(&str, ClusterNameProblem)] = &[
            ("", Empty),
            (
                &"a".repeat(MAX_CLUSTER_NAME_LENGTH + 1),
                TooLong { length: 49 },
            ),
            (&"a".repeat(MAX_LABEL_LENGTH + 1), TooLong { length: 64 }),
            ("Member1", NotDnsLabel),
            ("member.one", NotDnsLabel),
            ("member_one", NotDnsLabel),
            ("-member", NotDnsLabel),
            ("member-", NotDnsLabel),
            ("m\u{e9}mber", NotDnsLabel),
        ];
        for (cluster, problem) in table {
            let error = execution_namespace(cluster).expect_err(cluster);
            assert_eq!(error.problem, *problem, "{cluster:?}");
            assert_eq!(error.name, *cluster);
        }
    }

    #[test]
    fn dns_labels() {
        let table = [
            ("a", true),
            ("a-1", true),
            ("1a", true),
            (&*"a".repeat(MAX_LABEL_LENGTH), true),
            (&*"a".repeat(MAX_LABEL_LENGTH + 1), false),
            ("", false),
            ("A", false),
            ("a.b", false),
            ("a--b", true),
            ("-", false),
            ("a ", false),
        ];
        for (name, expect) in table {
            assert_eq!(is_dns_label(name), expect, "{name:?}");
        }
    }

    #[test]
    fn cluster_name_messages_say_why_and_how_to_fix() {
        let long = "a".repeat(MAX_CLUSTER_NAME_LENGTH + 1);
        let message = check_cluster_name(&long).expect_err("too long").to_string();
        for part in [
            "49 characters, more than 48",
            "flotilla-es-<name>",
            "63 characters",
        ] {
            assert!(message.contains(part), "{message}");
        }
        let message = check_cluster_name("a.b").expect_err("dot").to_string();
        assert!(message.contains("DNS-1123 label"), "{message}");
    }

    #[test]
    fn binding_names_are_lowercase_and_safe() {
        let table = [
            ("Deployment", "nginx", "nginx-deployment"),
            ("ConfigMap", "App-Config", "app-config-configmap"),
            (
                "ClusterRole",
                "system:controller:foo",
                "system.controller.foo-clusterrole",
            ),
        ];
        for (kind, name, expect) in table {
            assert_eq!(binding_name(kind, name), expect, "{kind}/{name}");
        }
    }

    #[test]
    fn long_names_are_cut_and_stay_unique() {
        let a = binding_name("Deployment", &"a".repeat(300));
        let b = binding_name("Deployment", &format!("{}b", "a".repeat(299)));
        assert!(a.len() <= MAX_NAME_LENGTH && b.len() <= MAX_NAME_LENGTH);
        assert_ne!(a, b);
    }

    #[test]
    fn work_names_differ_by_kind_group_and_namespace() {
        let deployment = work_name("apps/v1", "Deployment", Some("default"), "nginx");
        let service = work_name("v1", "Service", Some("default"), "nginx");
        let knative = work_name(
            "serving.knative.dev/v1",
            "Service",
            Some("default"),
            "nginx",
        );
        let other_ns = work_name("apps/v1", "Deployment", Some("prod"), "nginx");
        assert!(deployment.starts_with("nginx-"));
        assert_ne!(deployment, service);
        assert_ne!(service, knative, "core and Knative Services of one name");
        assert_ne!(deployment, other_ns);
        assert_eq!(
            deployment,
            work_name("apps/v1beta1", "Deployment", Some("default"), "nginx"),
            "the version does not count"
        );
        // Core kinds keep the names they had before the group counted.
        assert_eq!(
            service,
            format!("nginx-{:x}", fnv32a(b"default/nginx/service"))
        );
    }

    #[test]
    fn fnv32a_matches_reference_vectors() {
        // Published FNV-1a test vectors.
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }
}
