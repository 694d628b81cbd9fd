//! Storage object in-use protection, as kube-apiserver's `StorageObjectInUseProtection`
//! admission plugin and kube-controller-manager's pvc-protection and pv-protection controllers
//! do it: a new PersistentVolumeClaim gets the `kubernetes.io/pvc-protection` finalizer and a
//! new PersistentVolume `kubernetes.io/pv-protection`; once deleted, a claim keeps its finalizer
//! while a scheduled Pod of its namespace mounts it (directly, or as the ephemeral volume the pod
//! owns until the pod is shut down), a volume while it is Bound.
//!
//! The garbage collector's worker runs the controllers' half: its [`Tracker`] queues a claim or
//! volume when it is being deleted with its finalizer, and a pod's claims when the pod changes
//! or goes.
//!
//! [`Tracker`]: crate::gc::Tracker

use serde_json::{Value, json};

/// Storage key of PersistentVolumeClaims.
pub(crate) const CLAIMS: &str = "/persistentvolumeclaims";
/// Storage key of PersistentVolumes.
pub(crate) const VOLUMES: &str = "/persistentvolumes";
/// Storage key of Pods.
pub(crate) const PODS: &str = "/pods";
const CLAIM_FINALIZER: &str = "kubernetes.io/pvc-protection";
const VOLUME_FINALIZER: &str = "kubernetes.io/pv-protection";

/// The finalizer protecting objects stored under `key`, if any.
pub(crate) fn finalizer_for(key: &str) -> Option<&'static str> {
    match key {
        CLAIMS => Some(CLAIM_FINALIZER),
        VOLUMES => Some(VOLUME_FINALIZER),
        _ => None,
    }
}

/// The admission plugin's half: a new claim or volume gets its finalizer.
pub(crate) fn admit(key: &str, obj: &mut Value) {
    let Some(finalizer) = finalizer_for(key) else {
        return;
    };
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Value::Array(fs) = list
        && !fs.iter().any(|f| f.as_str() == Some(finalizer))
    {
        fs.push(json!(finalizer));
    }
}

/// The claims a pod mounts: its `persistentVolumeClaim` volumes and its ephemeral volumes'
/// claims (`<pod>-<volume>`).
pub(crate) fn claims_of(pod: &Value) -> Vec<String> {
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(claim) = v
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            {
                return Some(claim.to_string());
            }
            let name = v.get("name").and_then(Value::as_str)?;
            v.get("ephemeral").map(|_| format!("{pod_name}-{name}"))
        })
        .collect()
}

/// Whether a pod keeps `claim` in use, as kube's pvc-protection controller decides for a
/// deletion: a scheduled pod mounting it directly (whatever its phase), or as the ephemeral
/// volume it owns unless the pod is shut down (deleted with no grace period left).
fn pod_holds(pod: &Value, claim: &Value) -> bool {
    let scheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !scheduled {
        return false;
    }
    let name = claim
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let shut_down = pod.pointer("/metadata/deletionTimestamp").is_some()
        && pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(0);
    let owned_by_pod = || {
        let uid = pod.pointer("/metadata/uid").and_then(Value::as_str);
        claim
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| {
                r["controller"].as_bool() == Some(true)
                    && r["uid"].as_str().is_some()
                    && r["uid"].as_str() == uid
            })
    };
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|v| {
            if v.pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
                == Some(name)
            {
                return true;
            }
            let volume = v.get("name").and_then(Value::as_str).unwrap_or_default();
            !shut_down
                && v.get("ephemeral").is_some()
                && format!("{pod_name}-{volume}") == name
                && owned_by_pod()
        })
}

/// Whether the deleted object at (`key`, `namespace`, `name`) may lose its protection
/// finalizer now, given the cluster's stored objects.
pub(crate) fn releasable(
    state: &crate::storage::ClusterState,
    key: &str,
    namespace: &str,
    obj: &Value,
) -> bool {
    match key {
        CLAIMS => !state.objects(PODS).is_some_and(|pods| {
            pods.range((namespace.to_string(), String::new())..)
                .take_while(|((ns, _), _)| ns == namespace)
                .any(|(_, pod)| pod_holds(pod, obj))
        }),
        VOLUMES => obj.pointer("/status/phase").and_then(Value::as_str) != Some("Bound"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_hold_claims_while_scheduled() {
        let pod = |node: &str, grace: Option<i64>| {
            let mut p = json!({"metadata": {"name": "p", "uid": "u1"},
                "spec": {"nodeName": node, "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "c"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                    {"name": "tmp", "emptyDir": {}}]},
                "status": {"phase": "Succeeded"}});
            if let Some(g) = grace {
                p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
                p["metadata"]["deletionGracePeriodSeconds"] = json!(g);
            }
            p
        };
        let claim = |name: &str, owner: Option<&str>| {
            let mut c = json!({"metadata": {"name": name}});
            if let Some(uid) = owner {
                c["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid, "controller": true}]);
            }
            c
        };
        assert_eq!(claims_of(&pod("n1", None)), ["c", "p-scratch"]);
        // A direct claim is held by a scheduled pod, finished or shut down alike.
        assert!(pod_holds(&pod("n1", None), &claim("c", None)));
        assert!(pod_holds(&pod("n1", Some(0)), &claim("c", None)));
        assert!(!pod_holds(&pod("", None), &claim("c", None)));
        assert!(!pod_holds(&pod("n1", None), &claim("other", None)));
        // An ephemeral claim only when the pod owns it and is not shut down.
        assert!(pod_holds(
            &pod("n1", Some(30)),
            &claim("p-scratch", Some("u1"))
        ));
        assert!(!pod_holds(
            &pod("n1", Some(0)),
            &claim("p-scratch", Some("u1"))
        ));
        assert!(!pod_holds(
            &pod("n1", None),
            &claim("p-scratch", Some("u2"))
        ));
        assert!(!pod_holds(&pod("n1", None), &claim("p-scratch", None)));
    }

    #[test]
    fn admission_adds_the_finalizer_once() {
        let mut pvc = json!({"metadata": {"name": "c", "finalizers": ["example.com/keep"]}});
        admit(CLAIMS, &mut pvc);
        admit(CLAIMS, &mut pvc);
        assert_eq!(
            pvc["metadata"]["finalizers"],
            json!(["example.com/keep", "kubernetes.io/pvc-protection"])
        );
        let mut cm = json!({"metadata": {"name": "x"}});
        admit("/configmaps", &mut cm);
        assert_eq!(cm, json!({"metadata": {"name": "x"}}));
    }
}
