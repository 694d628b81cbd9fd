//! What a manifest becomes before it is applied to a member, and what a member object says
//! about who manages it. Pure functions over JSON, table-tested; [`crate::member`] does the IO.
//!
//! A manifest is applied with server-side apply, so Flotilla owns exactly the fields it sends.
//! Fields the member sets for itself are therefore never fought over as long as they are not
//! sent; [`prepare`] leaves out the ones a hub template may carry although the member decides
//! them (as Karmada's `Retain` interpreter keeps them):
//!
//! - server-populated metadata and `status` (the member's controllers own status);
//! - a Service's `clusterIP` / `clusterIPs` (unless `None`, a headless Service) and
//!   `healthCheckNodePort`, which the hub's API server may have allocated from its own ranges;
//! - a Job's generated `spec.selector` and its `controller-uid` template labels (unless
//!   `spec.manualSelector`), which name the hub's Job uid;
//! - `spec.replicas` of an object whose replicas a controller in the member changes through
//!   the `scale` subresource (a HorizontalPodAutoscaler, KEDA): its managedFields say so. A
//!   person's `kubectl scale` or `kubectl edit` in the member is drift and is put back.
//!
//! Finalizers, ownerReferences, labels and annotations added in the member are not in the
//! manifest, so they stay. Every prepared manifest carries Flotilla's marks: the label
//! `app.kubernetes.io/managed-by: flotilla` (the member watches select on it) and the
//! annotations naming its Work (`work.flotilla.io/namespace`, `work.flotilla.io/name`) and a
//! hash of what was applied (`work.flotilla.io/manifest-hash`), so an unchanged pass can tell,
//! from the live object alone, that nothing needs writing ([`up_to_date`]).

use flotilla_api::{
    keys::{annotations, labels},
    names::fnv32a,
    work::ResourceIdentifier,
};
use serde_json::{Map, Value, json};

/// The field manager of every member write.
pub const FIELD_MANAGER: &str = "flotilla";

/// The annotation holding a hash of the prepared manifest last applied.
pub const MANIFEST_HASH: &str = "work.flotilla.io/manifest-hash";

/// The label selector of the objects Flotilla manages in a member.
pub fn managed_selector() -> String {
    format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_FLOTILLA)
}

/// The Work a member object belongs to: its namespace (the execution namespace on the hub) and
/// name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkRef {
    /// The Work's namespace.
    pub namespace: String,
    /// The Work's name.
    pub name: String,
}

impl std::fmt::Display for WorkRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Work {}/{}", self.namespace, self.name)
    }
}

/// Who manages a live member object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manager {
    /// The Work asked about.
    This,
    /// Another Flotilla Work.
    Other(WorkRef),
    /// Nobody Flotilla knows: created in the member by someone else.
    Unmanaged,
}

/// Who manages `live`, seen from `owner`.
pub fn manager_of(live: &Value, owner: &WorkRef) -> Manager {
    match work_of(live) {
        Some(work) if work == *owner => Manager::This,
        Some(work) => Manager::Other(work),
        None => Manager::Unmanaged,
    }
}

/// The Work a member object's annotations name, if any.
pub fn work_of(object: &Value) -> Option<WorkRef> {
    let notes = object.pointer("/metadata/annotations")?;
    Some(WorkRef {
        namespace: notes.get(annotations::WORK_NAMESPACE)?.as_str()?.to_owned(),
        name: notes.get(annotations::WORK_NAME)?.as_str()?.to_owned(),
    })
}

/// A manifest that cannot be applied as it is, with what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("manifest {ordinal}: {message}")]
pub struct InvalidManifest {
    /// The manifest's index in the Work.
    pub ordinal: usize,
    /// What is wrong.
    pub message: String,
}

/// The identifier of the `ordinal`th manifest: group, version, kind, namespace and name (the
/// plural resource is filled in once the member's discovery resolved the kind).
///
/// # Errors
///
/// When the manifest is not an object with `apiVersion`, `kind` and `metadata.name`.
pub fn identifier(ordinal: usize, manifest: &Value) -> Result<ResourceIdentifier, InvalidManifest> {
    let invalid = |message: &str| InvalidManifest {
        ordinal,
        message: message.to_owned(),
    };
    let text = |pointer: &str| {
        manifest
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if !manifest.is_object() {
        return Err(invalid("not an object"));
    }
    let api_version = text("/apiVersion").ok_or_else(|| invalid("apiVersion is missing"))?;
    let kind = text("/kind").ok_or_else(|| invalid("kind is missing"))?;
    let name = text("/metadata/name").ok_or_else(|| {
        invalid("metadata.name is missing (generateName cannot be applied idempotently)")
    })?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Ok(ResourceIdentifier {
        ordinal: i32::try_from(ordinal).unwrap_or(i32::MAX),
        group: group.to_owned(),
        version: version.to_owned(),
        kind: kind.to_owned(),
        resource: String::new(),
        namespace: text("/metadata/namespace").unwrap_or_default().to_owned(),
        name: name.to_owned(),
    })
}

/// The order manifests are applied in: CustomResourceDefinitions first, then Namespaces, then
/// the rest, each group in the Work's order. Returns indexes into `manifests`.
pub fn apply_order(manifests: &[Value]) -> Vec<usize> {
    let rank = |manifest: &Value| match manifest.get("kind").and_then(Value::as_str) {
        Some("CustomResourceDefinition") => 0,
        Some("Namespace") => 1,
        _ => 2,
    };
    let mut order: Vec<usize> = (0..manifests.len()).collect();
    order.sort_by_key(|&i| rank(&manifests[i]));
    order
}

/// Metadata the server sets, never sent.
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
];

/// The body to apply for `manifest` of `owner`, given the live member object if there is one:
/// server-populated metadata, status and member-decided fields left out (see the module
/// notes), Flotilla's label and annotations added, and the manifest hash last.
pub fn prepare(manifest: &Value, owner: &WorkRef, live: Option<&Value>) -> Value {
    let mut out = manifest.clone();
    let Some(object) = out.as_object_mut() else {
        return out;
    };
    object.remove("status");
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let group = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g)
        .to_owned();
    let meta = object
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(meta) = meta {
        for field in SERVER_METADATA {
            meta.remove(*field);
        }
        insert(
            meta,
            "labels",
            labels::MANAGED_BY,
            labels::MANAGED_BY_FLOTILLA,
        );
        insert(
            meta,
            "annotations",
            annotations::WORK_NAMESPACE,
            &owner.namespace,
        );
        insert(meta, "annotations", annotations::WORK_NAME, &owner.name);
        if let Some(notes) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            notes.remove(MANIFEST_HASH);
        }
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        match (group.as_str(), kind.as_str()) {
            ("", "Service") => {
                let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
                if !headless {
                    spec.remove("clusterIP");
                    spec.remove("clusterIPs");
                }
                spec.remove("healthCheckNodePort");
            }
            ("batch", "Job")
                if spec.get("manualSelector").and_then(Value::as_bool) != Some(true) =>
            {
                spec.remove("selector");
                if let Some(template_labels) = spec
                    .get_mut("template")
                    .and_then(|t| t.pointer_mut("/metadata/labels"))
                    .and_then(Value::as_object_mut)
                {
                    template_labels.remove("controller-uid");
                    template_labels.remove("batch.kubernetes.io/controller-uid");
                }
            }
            _ => {}
        }
        if live.is_some_and(replicas_scaled_in_member) {
            spec.remove("replicas");
        }
    }
    let hash = format!("{:08x}", fnv32a(out.to_string().as_bytes()));
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        insert(meta, "annotations", MANIFEST_HASH, &hash);
    }
    out
}

fn insert(meta: &mut Map<String, Value>, field: &str, key: &str, value: &str) {
    let entry = meta.entry(field).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    if let Some(map) = entry.as_object_mut() {
        map.insert(key.to_owned(), Value::from(value));
    }
}

/// Whether a controller in the member owns `spec.replicas` of `live` through the `scale`
/// subresource (a managedFields entry with `subresource: scale` of a manager that is neither
/// Flotilla nor kubectl: a person's `kubectl scale` in a member is drift, an autoscaler's is
/// not).
pub fn replicas_scaled_in_member(live: &Value) -> bool {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|entry| {
                let manager = entry
                    .get("manager")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                manager != FIELD_MANAGER
                    && !manager.starts_with("kubectl")
                    && entry.get("subresource").and_then(Value::as_str) == Some("scale")
                    && entry.pointer("/fieldsV1/f:spec/f:replicas").is_some()
            })
        })
}

/// Whether `live` already holds everything `prepared` says: every field of `prepared` is in
/// `live` with the same value (objects compared key by key, lists of objects with a `name`
/// matched by name, other lists item by item). The manifest hash annotation makes a manifest
/// that lost a field count as changed, so a field Flotilla stopped setting is removed.
pub fn up_to_date(live: &Value, prepared: &Value) -> bool {
    contains(live, prepared)
}

fn contains(live: &Value, want: &Value) -> bool {
    match (live, want) {
        (Value::Object(live), Value::Object(want)) => want
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|l| contains(l, value))),
        (Value::Array(live), Value::Array(want)) => {
            let named = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
            if !want.is_empty() && want.iter().all(|w| named(w).is_some()) {
                want.iter().all(|w| {
                    live.iter()
                        .find(|l| named(l) == named(w))
                        .is_some_and(|l| contains(l, w))
                })
            } else {
                live.len() == want.len() && live.iter().zip(want).all(|(l, w)| contains(l, w))
            }
        }
        (Value::Number(live), Value::Number(want)) => live.as_f64() == want.as_f64(),
        _ => live == want,
    }
}

/// The labels and annotations that make a member object Flotilla's, for releasing it (a Work
/// deleted with `preserveResourcesOnDeletion`): a merge patch removing them.
pub fn release_patch() -> Value {
    json!({
        "metadata": {
            "labels": {labels::MANAGED_BY: null},
            "annotations": {
                annotations::WORK_NAMESPACE: null,
                annotations::WORK_NAME: null,
                MANIFEST_HASH: null,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> WorkRef {
        WorkRef {
            namespace: "flotilla-es-m1".to_owned(),
            name: "web-deployment-1".to_owned(),
        }
    }

    #[test]
    fn identifiers_need_api_version_kind_and_name() {
        let ok = identifier(
            2,
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}}),
        )
        .map_err(|e| e.to_string());
        assert_eq!(
            ok,
            Ok(ResourceIdentifier {
                ordinal: 2,
                group: "apps".to_owned(),
                version: "v1".to_owned(),
                kind: "Deployment".to_owned(),
                resource: String::new(),
                namespace: "default".to_owned(),
                name: "web".to_owned(),
            })
        );
        let core = identifier(
            0,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .map(|i| (i.group, i.version, i.namespace));
        assert_eq!(core, Ok((String::new(), "v1".to_owned(), String::new())));
        for (bad, says) in [
            (json!([]), "not an object"),
            (
                json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
                "apiVersion",
            ),
            (
                json!({"apiVersion": "v1", "metadata": {"name": "c"}}),
                "kind",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "c-"}}),
                "metadata.name",
            ),
        ] {
            let error = identifier(0, &bad).map(|_| ()).unwrap_err();
            assert!(error.message.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn crds_then_namespaces_then_the_rest() {
        let m = |kind: &str| json!({"kind": kind});
        let manifests = [
            m("Deployment"),
            m("Namespace"),
            m("Widget"),
            m("CustomResourceDefinition"),
            m("Namespace"),
        ];
        assert_eq!(apply_order(&manifests), [3, 1, 4, 0, 2]);
    }

    #[test]
    fn prepare_marks_the_object_and_leaves_out_what_the_member_decides() {
        let table: Vec<(&str, Value, Option<Value>, Value)> = vec![
            (
                "server metadata and status go; marks are added; user labels stay",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "namespace": "default", "resourceVersion": "5", "uid": "u",
                                    "labels": {"app": "web"}},
                       "data": {"a": "1"}, "status": {"x": 1}}),
                None,
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "namespace": "default",
                                    "labels": {"app": "web", "app.kubernetes.io/managed-by": "flotilla"},
                                    "annotations": {"work.flotilla.io/namespace": "flotilla-es-m1",
                                                    "work.flotilla.io/name": "web-deployment-1"}},
                       "data": {"a": "1"}}),
            ),
            (
                "a Service's allocated addresses are the member's",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                       "spec": {"clusterIP": "10.0.0.7", "clusterIPs": ["10.0.0.7"], "healthCheckNodePort": 30001,
                                "ports": [{"port": 80}]}}),
                None,
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                       "spec": {"ports": [{"port": 80}]}}),
            ),
            (
                "a headless Service stays headless",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                       "spec": {"clusterIP": "None", "clusterIPs": ["None"]}}),
                None,
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                       "spec": {"clusterIP": "None", "clusterIPs": ["None"]}}),
            ),
            (
                "a Job's generated selector names the hub's uid",
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                       "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "hub"}},
                                "template": {"metadata": {"labels": {"controller-uid": "hub",
                                    "batch.kubernetes.io/controller-uid": "hub", "job-name": "j"}}}}}),
                None,
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                       "spec": {"template": {"metadata": {"labels": {"job-name": "j"}}}}}),
            ),
            (
                "a manual selector is the user's",
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                       "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}}),
                None,
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                       "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}}),
            ),
            (
                "replicas an autoscaler sets through the scale subresource are the member's",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 3, "paused": false}}),
                Some(json!({"metadata": {"managedFields": [
                    {"manager": "flotilla", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
                     "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}})),
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"paused": false}}),
            ),
            (
                "replicas a person scaled with kubectl in the member are drift",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 3}}),
                Some(json!({"metadata": {"managedFields": [
                    {"manager": "kubectl", "operation": "Update", "subresource": "scale",
                     "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}})),
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 3}}),
            ),
            (
                "replicas edited in the main resource by hand are drift, not the member's",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 3}}),
                Some(json!({"metadata": {"managedFields": [
                    {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}})),
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 3}}),
            ),
        ];
        for (case, manifest, live, mut want) in table {
            let got = prepare(&manifest, &owner(), live.as_ref());
            let meta = want["metadata"].as_object_mut().expect("metadata");
            insert(
                meta,
                "labels",
                labels::MANAGED_BY,
                labels::MANAGED_BY_FLOTILLA,
            );
            insert(
                meta,
                "annotations",
                annotations::WORK_NAMESPACE,
                "flotilla-es-m1",
            );
            insert(
                meta,
                "annotations",
                annotations::WORK_NAME,
                "web-deployment-1",
            );
            let hash = got
                .pointer("/metadata/annotations/work.flotilla.io~1manifest-hash")
                .cloned();
            assert!(
                hash.as_ref().is_some_and(Value::is_string),
                "{case}: no hash"
            );
            want["metadata"]["annotations"][MANIFEST_HASH] = hash.unwrap_or_default();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn the_hash_follows_the_manifest_and_not_the_old_hash() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
        let hash = |v: &Value| {
            prepare(v, &owner(), None)["metadata"]["annotations"][MANIFEST_HASH].clone()
        };
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        // Preparing an already prepared manifest gives the same body.
        let once = prepare(&a, &owner(), None);
        assert_eq!(prepare(&once, &owner(), None), once);
    }

    #[test]
    fn up_to_date_when_live_holds_every_prepared_field() {
        let prepared = prepare(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
                    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}),
            &owner(),
            None,
        );
        let mut live = prepared.clone();
        live["metadata"]["resourceVersion"] = json!("9");
        live["metadata"]["finalizers"] = json!(["member.example/keep"]);
        live["metadata"]["labels"]["added-in-member"] = json!("yes");
        live["spec"]["template"]["spec"]["containers"] = json!([
            {"name": "sidecar", "image": "proxy"},
            {"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent"}
        ]);
        live["status"] = json!({"replicas": 2});
        assert!(
            up_to_date(&live, &prepared),
            "member additions are not drift"
        );

        let mut edited = live.clone();
        edited["spec"]["replicas"] = json!(5);
        assert!(!up_to_date(&edited, &prepared), "a changed field is drift");
        let mut image = live.clone();
        image["spec"]["template"]["spec"]["containers"][1]["image"] = json!("nginx:2");
        assert!(!up_to_date(&image, &prepared));
        let mut unmarked = live.clone();
        unmarked["metadata"]["labels"]
            .as_object_mut()
            .map(|l| l.remove(labels::MANAGED_BY));
        assert!(!up_to_date(&unmarked, &prepared), "a removed mark is drift");
        let changed = prepare(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
                    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}),
            &owner(),
            None,
        );
        assert!(
            !up_to_date(&live, &changed),
            "a field the manifest dropped changes the hash"
        );
    }

    #[test]
    fn who_manages_a_member_object() {
        let mine = prepare(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            &owner(),
            None,
        );
        assert_eq!(manager_of(&mine, &owner()), Manager::This);
        let other = WorkRef {
            namespace: "flotilla-es-m1".to_owned(),
            name: "other".to_owned(),
        };
        assert_eq!(manager_of(&mine, &other), Manager::Other(owner()));
        let theirs = json!({"metadata": {"name": "c", "annotations": {"note": "x"}}});
        assert_eq!(manager_of(&theirs, &owner()), Manager::Unmanaged);
    }
}
