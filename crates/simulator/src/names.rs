//! Every name the simulator makes: Nodes, pods of workloads, ReplicaSets and revisions. Names
//! are deterministic (a hash of the owner's uid and a slot, node or template), so a restart,
//! or a pass that reads a cache which has not yet seen its last create, asks for the same name
//! again and gets `AlreadyExists` instead of a duplicate. Pure functions; no IO.

use flotilla_api::names::fnv32a;
use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The characters kube's `rand.SafeEncodeString` uses (no vowels, no look-alikes), so made-up
/// suffixes and hashes look like kube's.
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The longest base a generated name keeps before its 5-character suffix (kube's
/// `maxGeneratedNameLength`, 63 - 5).
const MAX_GENERATED_BASE: usize = 58;

/// The name of simulated Node `ordinal` (1-based): `<prefix>-node-<ordinal>`.
pub(crate) fn node(prefix: &str, ordinal: u32) -> String {
    format!("{prefix}-node-{ordinal}")
}

/// kube's `rand.SafeEncodeString`: each byte mapped onto [`SAFE`].
pub(crate) fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| char::from(SAFE[usize::from(b) % SAFE.len()]))
        .collect()
}

/// Five characters from [`SAFE`] derived from `seed`, as kube's name generator would pick at
/// random.
pub(crate) fn suffix(seed: &str) -> String {
    let mut hash = fnv32a(seed.as_bytes());
    let mut out = String::with_capacity(5);
    for _ in 0..5 {
        let len = SAFE.len() as u32;
        out.push(char::from(SAFE[(hash % len) as usize]));
        hash /= len;
        if hash == 0 {
            hash = fnv32a(out.as_bytes());
        }
    }
    out
}

/// A name as kube's `generateName: <base>-` makes it: the base cut to 58 characters, then a
/// 5-character suffix from `seed`.
pub(crate) fn generated(base: &str, seed: &str) -> String {
    let mut prefix = format!("{base}-");
    if prefix.len() > MAX_GENERATED_BASE {
        let mut cut = MAX_GENERATED_BASE;
        while !prefix.is_char_boundary(cut) {
            cut -= 1;
        }
        prefix.truncate(cut);
    }
    prefix.push_str(&suffix(seed));
    prefix
}

/// The hash of a pod template (plus a Deployment's collision count), written as kube's
/// `ComputeHash` writes it: the decimal FNV-32a sum, safe-encoded. Used as a Deployment's
/// `pod-template-hash` and in StatefulSet and DaemonSet revisions.
pub(crate) fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(count.to_string().as_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// The pod of ReplicaSet or Job `owner` (uid `uid`) in `slot`: `<owner>-<5 characters>`.
pub(crate) fn slot_pod(owner: &str, uid: &str, slot: usize) -> String {
    generated(owner, &format!("{uid}/{slot}"))
}

/// The pod of an Indexed Job for completion `index` in `slot`: `<job>-<index>-<5 characters>`.
pub(crate) fn indexed_pod(job: &str, uid: &str, index: i32, slot: usize) -> String {
    generated(&format!("{job}-{index}"), &format!("{uid}/{index}/{slot}"))
}

/// The pod of DaemonSet `owner` on `node` at revision `revision`.
pub(crate) fn daemon_pod(owner: &str, uid: &str, node: &str, revision: &str) -> String {
    generated(owner, &format!("{uid}/{node}/{revision}"))
}

/// A Deployment's ReplicaSet for a template hash: `<deployment>-<hash>`.
pub(crate) fn replica_set(deployment: &str, hash: &str) -> String {
    format!("{deployment}-{hash}")
}

/// A StatefulSet's or DaemonSet's revision name: `<owner>-<hash>`.
pub(crate) fn revision(owner: &str, hash: &str) -> String {
    format!("{owner}-{hash}")
}

/// A StatefulSet's pod `ordinal`: `<statefulset>-<ordinal>`.
pub(crate) fn ordinal_pod(owner: &str, ordinal: i32) -> String {
    format!("{owner}-{ordinal}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_look_like_kubes_and_stay_the_same() {
        let name = slot_pod("web-5d4f8b9c7", "uid-1", 0);
        assert!(name.starts_with("web-5d4f8b9c7-"), "{name}");
        assert_eq!(name.len(), "web-5d4f8b9c7-".len() + 5);
        assert!(
            name["web-5d4f8b9c7-".len()..]
                .bytes()
                .all(|b| SAFE.contains(&b))
        );
        assert_eq!(name, slot_pod("web-5d4f8b9c7", "uid-1", 0));
        assert_ne!(name, slot_pod("web-5d4f8b9c7", "uid-1", 1));
        assert_ne!(name, slot_pod("web-5d4f8b9c7", "uid-2", 0));
    }

    #[test]
    fn long_bases_are_cut_as_kube_cuts_them() {
        let base = "a".repeat(80);
        let name = generated(&base, "seed");
        assert_eq!(name.len(), MAX_GENERATED_BASE + 5);
        assert!(name.starts_with(&"a".repeat(MAX_GENERATED_BASE)));
    }

    #[test]
    fn template_hashes_change_with_the_template_and_collision_count() {
        let template = |image: &str| -> PodTemplateSpec {
            serde_json::from_value(serde_json::json!({
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }))
            .unwrap_or_default()
        };
        let a = template_hash(&template("nginx:1"), None);
        assert_eq!(a, template_hash(&template("nginx:1"), None));
        assert_ne!(a, template_hash(&template("nginx:2"), None));
        assert_ne!(a, template_hash(&template("nginx:1"), Some(1)));
        assert!(a.bytes().all(|b| SAFE.contains(&b)), "{a}");
    }

    #[test]
    fn fixed_names() {
        assert_eq!(node("member1", 2), "member1-node-2");
        assert_eq!(ordinal_pod("db", 0), "db-0");
        assert_eq!(replica_set("web", "abc"), "web-abc");
        assert_eq!(revision("db", "abc"), "db-abc");
    }
}
