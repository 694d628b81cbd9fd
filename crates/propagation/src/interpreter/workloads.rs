//! Replicas of workload templates: how many a template asks for and what one replica needs
//! (Karmada's `GetReplicas`), writing a cluster's share into a rendered manifest
//! (`ReviseReplica`), and splitting a Job's completions across clusters. Never chooses the
//! shares themselves: the scheduler does.
//!
//! Where Flotilla differs from Karmada:
//!
//! - An absent `spec.replicas` (Deployment, StatefulSet, ReplicaSet) or `spec.parallelism`
//!   (Job) counts as 1, the API server's default, instead of 0: templates read before defaulting
//!   (`flotilla render`) still schedule one replica. Negative or non-integer counts read as 0.
//! - ReplicaSet is a replicated kind here; Karmada only handles Deployment, StatefulSet, Job
//!   and Pod.
//! - Requirements follow kube's current effective-request rule (sidecars, pod-level
//!   resources, limits as requests), see [`super::requests`].

use std::collections::BTreeMap;

use flotilla_api::work::{NodeClaim, ReplicaRequirements, TargetCluster};
use flotilla_scheduler::division::{Party, TieBreak, webster};
use k8s_openapi::api::core::v1::{NodeSelector, Toleration};
use serde_json::{Map, Value};

use super::{Kind, array_at, at, int_at, namespace_of, requests::pod_requests, str_at};

/// What a workload template asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replicas {
    /// How many replicas the template wants in total.
    pub replicas: i32,
    /// What one replica needs, from the pod template.
    pub requirements: Option<ReplicaRequirements>,
}

/// The replicas and per-replica requirements of `template`, or `None` for kinds that are not
/// divided into replicas (DaemonSet, CronJob, any CRD, ConfigMap, Service…): those are
/// propagated whole.
///
/// - Deployment, StatefulSet, ReplicaSet: `spec.replicas`, 1 when absent.
/// - Job: `spec.parallelism` (1 when absent), capped at `spec.completions` when that is set, as
///   a Job never runs more pods at once than it has completions to do.
/// - Pod: 1.
pub fn replicas(template: &Value) -> Option<Replicas> {
    let kind = Kind::of_object(template);
    let (count, pod_spec) = match kind {
        Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet => (
            count_at(template, &["spec", "replicas"]),
            at(template, &["spec", "template", "spec"]),
        ),
        Kind::Job => {
            let parallelism = count_at(template, &["spec", "parallelism"]);
            let completions = int_at(template, &["spec", "completions"])
                .map(|c| i32::try_from(c.max(0)).unwrap_or(i32::MAX));
            (
                completions.map_or(parallelism, |c| parallelism.min(c)),
                at(template, &["spec", "template", "spec"]),
            )
        }
        Kind::Pod => (1, at(template, &["spec"])),
        _ => return None,
    };
    Some(Replicas {
        replicas: count,
        requirements: Some(requirements(pod_spec.unwrap_or(&Value::Null), template)),
    })
}

/// A replica count at `path`: 1 when absent, 0 when negative or not an integer.
fn count_at(template: &Value, path: &[&str]) -> i32 {
    match at(template, path) {
        None | Some(Value::Null) => 1,
        Some(value) => value
            .as_i64()
            .map_or(0, |n| i32::try_from(n.max(0)).unwrap_or(i32::MAX)),
    }
}

/// The requirements of one replica with pod spec `pod_spec`, in `template`'s namespace.
fn requirements(pod_spec: &Value, template: &Value) -> ReplicaRequirements {
    let node_selector: BTreeMap<String, String> = at(pod_spec, &["nodeSelector"])
        .and_then(Value::as_object)
        .map(|selector| {
            selector
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let tolerations: Vec<Toleration> = array_at(pod_spec, &["tolerations"])
        .iter()
        .filter_map(|t| serde_json::from_value(t.clone()).ok())
        .collect();
    let hard_node_affinity: Option<NodeSelector> = at(
        pod_spec,
        &[
            "affinity",
            "nodeAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
        ],
    )
    .and_then(|selector| serde_json::from_value(selector.clone()).ok());

    let node_claim =
        (!node_selector.is_empty() || !tolerations.is_empty() || hard_node_affinity.is_some())
            .then_some(NodeClaim {
                hard_node_affinity,
                node_selector,
                tolerations,
            });
    ReplicaRequirements {
        node_claim,
        resource_request: pod_requests(pod_spec),
        namespace: namespace_of(template).map(str::to_owned),
        priority_class_name: str_at(pod_spec, &["priorityClassName"])
            .filter(|name| !name.is_empty())
            .map(str::to_owned),
    }
}

/// Writes one cluster's share of replicas into a rendered `manifest`: `spec.replicas` of a
/// Deployment, StatefulSet or ReplicaSet, `spec.parallelism` of a Job. Returns whether the
/// manifest was changed; other kinds (and a manifest whose `spec` is not an object) are left
/// untouched. A Job's completions are split separately, by [`divide_job_completions`] and
/// [`revise_job_completions`].
pub fn revise_replicas(manifest: &mut Value, replicas: i32) -> bool {
    let field = match Kind::of_object(manifest) {
        Kind::Deployment | Kind::StatefulSet | Kind::ReplicaSet => "replicas",
        Kind::Job => "parallelism",
        _ => return false,
    };
    set_spec_field(manifest, field, replicas)
}

/// Writes a cluster's share of completions into a rendered Job `manifest`; returns whether it
/// was changed. Other kinds are left untouched.
pub fn revise_job_completions(manifest: &mut Value, completions: i32) -> bool {
    if Kind::of_object(manifest) != Kind::Job {
        return false;
    }
    set_spec_field(manifest, "completions", completions)
}

fn set_spec_field(manifest: &mut Value, field: &str, value: i32) -> bool {
    let Some(object) = manifest.as_object_mut() else {
        return false;
    };
    let spec = object
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(spec) = spec.as_object_mut() else {
        return false;
    };
    spec.insert(field.to_owned(), Value::from(value));
    true
}

/// How a Job template's `spec.completions` is split across its target clusters, as Karmada's
/// binding controller does: in proportion to each cluster's replicas (its share of
/// parallelism), by the Webster method the scheduler divides replicas with, ties broken by the
/// template UID. `None` when the template is not a Job, sets no completions, or has no target
/// clusters; every target cluster appears in the result, possibly with 0.
pub fn divide_job_completions(
    template: &Value,
    clusters: &[TargetCluster],
) -> Option<BTreeMap<String, i32>> {
    if Kind::of_object(template) != Kind::Job || clusters.is_empty() {
        return None;
    }
    let completions = int_at(template, &["spec", "completions"])?.max(0);
    let mut parties: Vec<Party<'_>> = clusters
        .iter()
        .map(|cluster| Party {
            name: &cluster.name,
            votes: i64::from(cluster.replicas.max(0)),
            seats: 0,
        })
        .collect();
    let tie = TieBreak::for_uid(str_at(template, &["metadata", "uid"]).unwrap_or_default());
    webster(completions, &mut parties, tie);
    Some(
        parties
            .iter()
            .map(|party| {
                (
                    party.name.to_owned(),
                    i32::try_from(party.seats).unwrap_or(i32::MAX),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use serde_json::json;

    use super::*;

    fn workload(api_version: &str, kind: &str, spec: Value) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": spec,
        })
    }

    fn pod_template() -> Value {
        json!({"spec": {"containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m"}}}
        ]}})
    }

    #[test]
    fn replica_counts_per_kind() {
        let cases: Vec<(&str, Value, Option<i32>)> = vec![
            (
                "deployment with replicas",
                workload(
                    "apps/v1",
                    "Deployment",
                    json!({"replicas": 5, "template": pod_template()}),
                ),
                Some(5),
            ),
            (
                "deployment defaults to 1",
                workload("apps/v1", "Deployment", json!({"template": pod_template()})),
                Some(1),
            ),
            (
                "statefulset",
                workload(
                    "apps/v1",
                    "StatefulSet",
                    json!({"replicas": 3, "template": pod_template()}),
                ),
                Some(3),
            ),
            (
                "replicaset",
                workload(
                    "apps/v1",
                    "ReplicaSet",
                    json!({"replicas": 0, "template": pod_template()}),
                ),
                Some(0),
            ),
            (
                "negative replicas read as 0",
                workload("apps/v1", "Deployment", json!({"replicas": -2})),
                Some(0),
            ),
            (
                "job parallelism",
                workload(
                    "batch/v1",
                    "Job",
                    json!({"parallelism": 4, "template": pod_template()}),
                ),
                Some(4),
            ),
            (
                "job parallelism defaults to 1",
                workload("batch/v1", "Job", json!({"template": pod_template()})),
                Some(1),
            ),
            (
                "job parallelism capped by completions",
                workload(
                    "batch/v1",
                    "Job",
                    json!({"parallelism": 10, "completions": 3, "template": pod_template()}),
                ),
                Some(3),
            ),
            (
                "job completions above parallelism do not raise it",
                workload(
                    "batch/v1",
                    "Job",
                    json!({"parallelism": 2, "completions": 30}),
                ),
                Some(2),
            ),
            (
                "pod is one replica",
                workload("v1", "Pod", json!({"containers": []})),
                Some(1),
            ),
            (
                "daemonset is propagated whole",
                workload("apps/v1", "DaemonSet", json!({"template": pod_template()})),
                None,
            ),
            (
                "configmap has no replicas",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {}}),
                None,
            ),
            (
                "crd with spec.replicas is propagated whole",
                workload("example.com/v1", "Deployment", json!({"replicas": 3})),
                None,
            ),
        ];
        for (name, template, expect) in cases {
            assert_eq!(replicas(&template).map(|r| r.replicas), expect, "{name}");
        }
    }

    #[test]
    fn requirements_carry_requests_node_claim_namespace_and_priority() {
        let template = workload(
            "apps/v1",
            "Deployment",
            json!({"replicas": 2, "template": {"spec": {
                "priorityClassName": "high",
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "zone", "operator": "In", "values": ["a"]}
                    ]}]
                }}},
                "initContainers": [{"name": "init", "resources": {"limits": {"cpu": "2"}}}],
                "containers": [{"name": "app", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
                "overhead": {"cpu": "100m"},
            }}}),
        );
        let got = replicas(&template).and_then(|r| r.requirements);
        let got = got.unwrap_or_default();
        assert_eq!(got.namespace.as_deref(), Some("shop"));
        assert_eq!(got.priority_class_name.as_deref(), Some("high"));
        assert_eq!(
            got.resource_request.get("cpu"),
            Some(&Quantity("2100m".into()))
        );
        assert_eq!(
            got.resource_request.get("memory"),
            Some(&Quantity("1073741824".into()))
        );
        let claim = got.node_claim.unwrap_or_default();
        assert_eq!(
            claim.node_selector.get("disk").map(String::as_str),
            Some("ssd")
        );
        assert_eq!(claim.tolerations.len(), 1);
        assert_eq!(claim.tolerations[0].key.as_deref(), Some("gpu"));
        let terms = claim.hard_node_affinity.map(|a| a.node_selector_terms);
        assert_eq!(terms.map(|t| t.len()), Some(1));
    }

    #[test]
    fn pod_without_constraints_has_no_node_claim() {
        let template = workload(
            "v1",
            "Pod",
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        let got = replicas(&template).and_then(|r| r.requirements);
        let got = got.unwrap_or_default();
        assert_eq!(got.node_claim, None);
        assert_eq!(got.priority_class_name, None);
        assert_eq!(got.resource_request.get("cpu"), Some(&Quantity("1".into())));
    }

    #[test]
    fn revise_writes_the_share_into_the_replica_field_of_each_kind() {
        let cases: Vec<(Value, Option<(&str, i64)>)> = vec![
            (
                workload("apps/v1", "Deployment", json!({"replicas": 5})),
                Some(("replicas", 2)),
            ),
            (
                workload("apps/v1", "StatefulSet", json!({})),
                Some(("replicas", 2)),
            ),
            (
                workload("apps/v1", "ReplicaSet", json!({"replicas": 9})),
                Some(("replicas", 2)),
            ),
            (
                workload(
                    "batch/v1",
                    "Job",
                    json!({"parallelism": 5, "completions": 10}),
                ),
                Some(("parallelism", 2)),
            ),
            (workload("apps/v1", "DaemonSet", json!({})), None),
            (workload("v1", "Pod", json!({})), None),
            (
                workload("example.com/v1", "Widget", json!({"replicas": 5})),
                None,
            ),
        ];
        for (manifest, expect) in cases {
            let mut revised = manifest.clone();
            let changed = revise_replicas(&mut revised, 2);
            match expect {
                Some((field, value)) => {
                    assert!(changed, "{manifest}");
                    assert_eq!(revised["spec"][field], json!(value), "{manifest}");
                    // A Job keeps its completions until they are divided separately.
                    assert_eq!(
                        revised["spec"]["completions"], manifest["spec"]["completions"],
                        "{manifest}"
                    );
                }
                None => {
                    assert!(!changed, "{manifest}");
                    assert_eq!(revised, manifest);
                }
            }
        }
    }

    #[test]
    fn malformed_manifests_are_left_alone() {
        let cases = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": "oops"}),
            json!("not an object"),
            json!({"kind": "Deployment"}),
        ];
        for manifest in cases {
            let mut revised = manifest.clone();
            assert!(!revise_replicas(&mut revised, 2), "{manifest}");
            assert_eq!(revised, manifest);
        }
        // A Deployment without a spec gets one.
        let mut bare = json!({"apiVersion": "apps/v1", "kind": "Deployment"});
        assert!(revise_replicas(&mut bare, 2));
        assert_eq!(bare["spec"], json!({"replicas": 2}));
    }

    #[test]
    fn job_completions_follow_the_cluster_shares() {
        let job = workload(
            "batch/v1",
            "Job",
            json!({"parallelism": 3, "completions": 10}),
        );
        let clusters = [
            TargetCluster {
                name: "a".into(),
                replicas: 2,
            },
            TargetCluster {
                name: "b".into(),
                replicas: 1,
            },
            TargetCluster {
                name: "c".into(),
                replicas: 0,
            },
        ];
        let got = divide_job_completions(&job, &clusters).unwrap_or_default();
        assert_eq!(got.values().sum::<i32>(), 10);
        assert_eq!(got.get("a"), Some(&7));
        assert_eq!(got.get("b"), Some(&3));
        assert_eq!(got.get("c"), Some(&0));

        let mut manifest = job.clone();
        assert!(revise_job_completions(&mut manifest, 7));
        assert_eq!(manifest["spec"]["completions"], json!(7));
    }

    #[test]
    fn completions_are_not_divided_without_completions_or_for_other_kinds() {
        let clusters = [TargetCluster {
            name: "a".into(),
            replicas: 1,
        }];
        let job = workload("batch/v1", "Job", json!({"parallelism": 3}));
        assert_eq!(divide_job_completions(&job, &clusters), None);
        let deploy = workload("apps/v1", "Deployment", json!({"replicas": 3}));
        assert_eq!(divide_job_completions(&deploy, &clusters), None);
        let mut manifest = deploy.clone();
        assert!(!revise_job_completions(&mut manifest, 1));
        assert_eq!(manifest, deploy);
    }
}
