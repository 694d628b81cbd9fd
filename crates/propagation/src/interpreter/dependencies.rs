//! Dependencies of workload templates (Karmada's `GetDependencies`): the ConfigMaps, Secrets,
//! ServiceAccounts and PersistentVolumeClaims a pod template references, which the
//! dependencies distributor propagates alongside the workload. Only reads names; it never checks
//! that the objects exist.
//!
//! Pod templates are found in Pod (`spec`), Deployment, StatefulSet, ReplicaSet, DaemonSet and
//! Job (`spec.template.spec`) and CronJob (`spec.jobTemplate.spec.template.spec`). References
//! are read from volumes (including projected sources and the secret references of volume
//! plugins such as CSI `nodePublishSecretRef`), `envFrom`, `env[].valueFrom` of app, init and
//! ephemeral containers, `imagePullSecrets` and `serviceAccountName` (`default` excluded, as
//! every namespace has one). A StatefulSet's claims made from its `volumeClaimTemplates` are
//! created by the member's controller, so they are not dependencies.
//!
//! An Ingress depends on the Secrets its `spec.tls` entries name.
//!
//! Where Flotilla differs from Karmada: ReplicaSet templates are interpreted too, and the
//! deprecated `serviceAccount` field is read when `serviceAccountName` is empty.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Kind, array_at, at, namespace_of, str_at};

/// One object a template depends on; all dependencies are core (`v1`) namespaced objects in
/// the template's namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// Always `v1`.
    pub api_version: String,
    /// `ConfigMap`, `PersistentVolumeClaim`, `Secret` or `ServiceAccount`.
    pub kind: String,
    /// The template's namespace (`None` only for a template without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The referenced name.
    pub name: String,
}

const CONFIG_MAP: &str = "ConfigMap";
const SECRET: &str = "Secret";
const SERVICE_ACCOUNT: &str = "ServiceAccount";
const PVC: &str = "PersistentVolumeClaim";

/// The objects `template`'s pod template (or, for an Ingress, its TLS section) references,
/// deduplicated and sorted by kind then name. Empty for other kinds.
pub fn dependencies(template: &Value) -> Vec<Dependency> {
    let kind = Kind::of_object(template);
    let pod_spec = match kind {
        Kind::Pod => at(template, &["spec"]),
        Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet | Kind::DaemonSet | Kind::Job => {
            at(template, &["spec", "template", "spec"])
        }
        Kind::CronJob => at(
            template,
            &["spec", "jobTemplate", "spec", "template", "spec"],
        ),
        _ => None,
    };

    let mut found: BTreeSet<(&'static str, String)> = BTreeSet::new();
    let mut add = |kind, name: &str| {
        if !name.is_empty() {
            found.insert((kind, name.to_owned()));
        }
    };
    match pod_spec {
        Some(pod_spec) => visit_pod_spec(pod_spec, &mut add),
        None if kind == Kind::Ingress => {
            for tls in array_at(template, &["spec", "tls"]) {
                if let Some(name) = str_at(tls, &["secretName"]) {
                    add(SECRET, name);
                }
            }
        }
        None => return Vec::new(),
    }

    if kind == Kind::StatefulSet {
        for claim_template in array_at(template, &["spec", "volumeClaimTemplates"]) {
            if let Some(name) = str_at(claim_template, &["metadata", "name"]) {
                found.remove(&(PVC, name.to_owned()));
            }
        }
    }

    let namespace = namespace_of(template).map(str::to_owned);
    found
        .into_iter()
        .map(|(kind, name)| Dependency {
            api_version: "v1".to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.clone(),
            name,
        })
        .collect()
}

/// Calls `found(kind, name)` for every reference in a pod spec.
fn visit_pod_spec(pod_spec: &Value, found: &mut impl FnMut(&'static str, &str)) {
    let service_account = str_at(pod_spec, &["serviceAccountName"])
        .filter(|name| !name.is_empty())
        .or_else(|| str_at(pod_spec, &["serviceAccount"]));
    if let Some(name) = service_account.filter(|name| *name != "default") {
        found(SERVICE_ACCOUNT, name);
    }

    for secret in array_at(pod_spec, &["imagePullSecrets"]) {
        if let Some(name) = str_at(secret, &["name"]) {
            found(SECRET, name);
        }
    }

    for field in ["containers", "initContainers", "ephemeralContainers"] {
        for container in array_at(pod_spec, &[field]) {
            visit_container(container, found);
        }
    }

    for volume in array_at(pod_spec, &["volumes"]) {
        visit_volume(volume, found);
    }
}

fn visit_container(container: &Value, found: &mut impl FnMut(&'static str, &str)) {
    for source in array_at(container, &["envFrom"]) {
        if let Some(name) = str_at(source, &["configMapRef", "name"]) {
            found(CONFIG_MAP, name);
        }
        if let Some(name) = str_at(source, &["secretRef", "name"]) {
            found(SECRET, name);
        }
    }
    for env in array_at(container, &["env"]) {
        if let Some(name) = str_at(env, &["valueFrom", "configMapKeyRef", "name"]) {
            found(CONFIG_MAP, name);
        }
        if let Some(name) = str_at(env, &["valueFrom", "secretKeyRef", "name"]) {
            found(SECRET, name);
        }
    }
}

/// Volume plugins whose credentials live in a Secret, by the path of the secret's name.
const VOLUME_SECRET_NAMES: &[&[&str]] = &[
    &["secret", "secretName"],
    &["azureFile", "secretName"],
    &["cephfs", "secretRef", "name"],
    &["cinder", "secretRef", "name"],
    &["flexVolume", "secretRef", "name"],
    &["iscsi", "secretRef", "name"],
    &["rbd", "secretRef", "name"],
    &["scaleIO", "secretRef", "name"],
    &["storageos", "secretRef", "name"],
    &["csi", "nodePublishSecretRef", "name"],
];

fn visit_volume(volume: &Value, found: &mut impl FnMut(&'static str, &str)) {
    if let Some(name) = str_at(volume, &["configMap", "name"]) {
        found(CONFIG_MAP, name);
    }
    if let Some(name) = str_at(volume, &["persistentVolumeClaim", "claimName"]) {
        found(PVC, name);
    }
    for path in VOLUME_SECRET_NAMES {
        if let Some(name) = str_at(volume, path) {
            found(SECRET, name);
        }
    }
    for source in array_at(volume, &["projected", "sources"]) {
        if let Some(name) = str_at(source, &["configMap", "name"]) {
            found(CONFIG_MAP, name);
        }
        if let Some(name) = str_at(source, &["secret", "name"]) {
            found(SECRET, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    type Found = Vec<(String, String)>;

    fn deps(template: &Value) -> Found {
        dependencies(template)
            .into_iter()
            .map(|d| (d.kind, d.name))
            .collect()
    }

    fn pair(kind: &str, name: &str) -> (String, String) {
        (kind.to_owned(), name.to_owned())
    }

    fn deployment(pod_spec: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": pod_spec}},
        })
    }

    #[test]
    fn every_reference_kind_is_a_dependency() {
        let cases: Vec<(&str, Value, Found)> = vec![
            (
                "configMap volume",
                json!({"volumes": [{"name": "v", "configMap": {"name": "cm"}}]}),
                vec![pair(CONFIG_MAP, "cm")],
            ),
            (
                "secret volume",
                json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}),
                vec![pair(SECRET, "s")],
            ),
            (
                "pvc volume",
                json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}),
                vec![pair(PVC, "data")],
            ),
            (
                "projected sources",
                json!({"volumes": [{"name": "v", "projected": {"sources": [
                    {"configMap": {"name": "pcm"}},
                    {"secret": {"name": "ps"}},
                    {"serviceAccountToken": {"path": "token"}},
                ]}}]}),
                vec![pair(CONFIG_MAP, "pcm"), pair(SECRET, "ps")],
            ),
            (
                "csi node publish secret",
                json!({"volumes": [{"name": "v", "csi": {"driver": "d",
                    "nodePublishSecretRef": {"name": "csi-creds"}}}]}),
                vec![pair(SECRET, "csi-creds")],
            ),
            (
                "envFrom",
                json!({"containers": [{"name": "c", "envFrom": [
                    {"configMapRef": {"name": "env-cm"}},
                    {"secretRef": {"name": "env-s"}},
                ]}]}),
                vec![pair(CONFIG_MAP, "env-cm"), pair(SECRET, "env-s")],
            ),
            (
                "env valueFrom",
                json!({"containers": [{"name": "c", "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "kcm", "key": "a"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "ks", "key": "b"}}},
                    {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "D", "value": "plain"},
                ]}]}),
                vec![pair(CONFIG_MAP, "kcm"), pair(SECRET, "ks")],
            ),
            (
                "init and ephemeral containers",
                json!({
                    "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "init-cm"}}]}],
                    "ephemeralContainers": [{"name": "e", "envFrom": [{"secretRef": {"name": "debug-s"}}]}],
                }),
                vec![pair(CONFIG_MAP, "init-cm"), pair(SECRET, "debug-s")],
            ),
            (
                "image pull secrets",
                json!({"imagePullSecrets": [{"name": "registry"}]}),
                vec![pair(SECRET, "registry")],
            ),
            (
                "service account",
                json!({"serviceAccountName": "builder"}),
                vec![pair(SERVICE_ACCOUNT, "builder")],
            ),
            (
                "default service account is not a dependency",
                json!({"serviceAccountName": "default"}),
                vec![],
            ),
            (
                "deprecated serviceAccount field",
                json!({"serviceAccount": "old"}),
                vec![pair(SERVICE_ACCOUNT, "old")],
            ),
        ];
        for (name, pod_spec, expect) in cases {
            assert_eq!(deps(&deployment(pod_spec)), expect, "{name}");
        }
    }

    #[test]
    fn dependencies_are_deduplicated_sorted_and_in_the_template_namespace() {
        let template = deployment(json!({
            "serviceAccountName": "sa",
            "volumes": [
                {"name": "a", "configMap": {"name": "z-cm"}},
                {"name": "b", "configMap": {"name": "a-cm"}},
            ],
            "containers": [
                {"name": "c1", "envFrom": [{"configMapRef": {"name": "z-cm"}}]},
                {"name": "c2", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
            ],
            "imagePullSecrets": [{"name": "s"}],
        }));
        let got = dependencies(&template);
        let want: Vec<Dependency> = [
            (CONFIG_MAP, "a-cm"),
            (CONFIG_MAP, "z-cm"),
            (SECRET, "s"),
            (SERVICE_ACCOUNT, "sa"),
        ]
        .into_iter()
        .map(|(kind, name)| Dependency {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
        })
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_workload_kind_exposes_its_pod_template() {
        let pod_spec = json!({"volumes": [{"name": "v", "configMap": {"name": "cm"}}]});
        let cases = [
            ("v1", "Pod", json!(pod_spec.clone())),
            (
                "apps/v1",
                "Deployment",
                json!({"template": {"spec": pod_spec.clone()}}),
            ),
            (
                "apps/v1",
                "StatefulSet",
                json!({"template": {"spec": pod_spec.clone()}}),
            ),
            (
                "apps/v1",
                "ReplicaSet",
                json!({"template": {"spec": pod_spec.clone()}}),
            ),
            (
                "apps/v1",
                "DaemonSet",
                json!({"template": {"spec": pod_spec.clone()}}),
            ),
            (
                "batch/v1",
                "Job",
                json!({"template": {"spec": pod_spec.clone()}}),
            ),
            (
                "batch/v1",
                "CronJob",
                json!({"jobTemplate": {"spec": {"template": {"spec": pod_spec.clone()}}}}),
            ),
        ];
        for (api_version, kind, spec) in cases {
            let template = json!({
                "apiVersion": api_version, "kind": kind,
                "metadata": {"name": "w", "namespace": "ns"}, "spec": spec,
            });
            assert_eq!(deps(&template), vec![pair(CONFIG_MAP, "cm")], "{kind}");
        }
    }

    #[test]
    fn statefulset_claims_from_volume_claim_templates_are_not_dependencies() {
        let template = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {
                "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                "template": {"spec": {"volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}},
                ]}},
            },
        });
        assert_eq!(deps(&template), vec![pair(PVC, "shared")]);
    }

    #[test]
    fn ingress_depends_on_its_tls_secrets() {
        let template = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"tls": [
                {"hosts": ["a.example"], "secretName": "a-tls"},
                {"hosts": ["b.example"], "secretName": "a-tls"},
                {"hosts": ["c.example"]},
            ]},
        });
        assert_eq!(deps(&template), vec![pair(SECRET, "a-tls")]);
    }

    #[test]
    fn kinds_without_a_pod_template_have_no_dependencies() {
        let cases = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
            json!({"apiVersion": "example.com/v1", "kind": "Deployment",
                   "spec": {"template": {"spec": {"serviceAccountName": "sa"}}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}),
        ];
        for template in cases {
            assert_eq!(dependencies(&template), vec![], "{template}");
        }
    }
}
