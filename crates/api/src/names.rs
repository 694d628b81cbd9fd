//! Deterministic names of everything Flotilla creates: execution namespaces, binding names and
//! Work names. Controllers take child names only from here, so a restart or a second replica
//! always computes the same name.

use crate::keys::namespaces::EXECUTION_PREFIX;

/// The longest name most Kubernetes objects may have (a DNS subdomain).
pub const MAX_NAME_LENGTH: usize = 253;

/// The execution namespace of a member cluster: `flotilla-es-<cluster>`.
pub fn execution_namespace(cluster: &str) -> String {
    format!("{EXECUTION_PREFIX}{cluster}")
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
/// `<name>-<hash of namespace, name and kind>`, so templates of different kinds or namespaces
/// with the same name never collide in one execution namespace.
pub fn work_name(kind: &str, namespace: Option<&str>, name: &str) -> String {
    let key = format!(
        "{}/{}/{}",
        namespace.unwrap_or(""),
        name,
        kind.to_lowercase()
    );
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

/// The 32-bit FNV-1a hash. Used for Work names and for the scheduler's tie-break parity on a
/// binding's UID, where it must match Karmada's choice exactly.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_namespace_round_trips() {
        for (cluster, namespace) in [
            ("member1", "flotilla-es-member1"),
            ("a-b", "flotilla-es-a-b"),
        ] {
            assert_eq!(execution_namespace(cluster), namespace);
            assert_eq!(cluster_of_execution_namespace(namespace), Some(cluster));
        }
        assert_eq!(cluster_of_execution_namespace("flotilla-es-"), None);
        assert_eq!(cluster_of_execution_namespace("default"), None);
        assert_eq!(cluster_of_execution_namespace("flotilla-system"), None);
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
    fn work_names_differ_by_kind_and_namespace() {
        let deployment = work_name("Deployment", Some("default"), "nginx");
        let service = work_name("Service", Some("default"), "nginx");
        let other_ns = work_name("Deployment", Some("prod"), "nginx");
        assert!(deployment.starts_with("nginx-"));
        assert_ne!(deployment, service);
        assert_ne!(deployment, other_ns);
        assert_eq!(
            deployment,
            work_name("Deployment", Some("default"), "nginx")
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
