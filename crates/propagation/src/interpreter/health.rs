//! Health of an object in a member cluster (Karmada's `InterpretHealth`), read from the member
//! object itself. Feeds graceful eviction and application failover; it never acts on the answer.
//!
//! Where Flotilla differs from Karmada: a workload without any `status` yet is `Unknown`, not
//! `Unhealthy` (its controller has not looked at it, which is not a failure), and
//! `status.observedGeneration` ahead of `metadata.generation` counts as caught up.

use flotilla_api::work::ResourceHealth;
use serde_json::Value;

use super::{Kind, array_at, at, int_at, str_at};

/// The health of `object` as observed in a member cluster.
///
/// - Deployment: the controller has observed the current generation, `updatedReplicas` reaches
///   `spec.replicas` and `availableReplicas` reaches `updatedReplicas`.
/// - StatefulSet: generation observed; `updatedReplicas` reaches `spec.replicas` minus the
///   rolling-update partition, `availableReplicas` reaches `spec.replicas` and
///   `updatedReplicas`.
/// - ReplicaSet: generation observed and `availableReplicas` reaches `spec.replicas`.
/// - DaemonSet: generation observed, `updatedNumberScheduled` reaches
///   `desiredNumberScheduled` and `numberAvailable` reaches `updatedNumberScheduled`.
/// - Service: healthy unless it is a LoadBalancer without an ingress IP or hostname yet.
/// - Ingress: healthy once it has an ingress IP or hostname.
/// - PersistentVolumeClaim: healthy when `Bound`.
/// - Pod: healthy when `Succeeded`, or `Running` with condition `Ready` true.
/// - PodDisruptionBudget: healthy when `currentHealthy` reaches `desiredHealthy`.
/// - Every other kind: healthy, as it exists.
pub fn health(object: &Value) -> ResourceHealth {
    let kind = Kind::of_object(object);
    let needs_status = matches!(
        kind,
        Kind::Deployment
            | Kind::StatefulSet
            | Kind::ReplicaSet
            | Kind::DaemonSet
            | Kind::Ingress
            | Kind::PersistentVolumeClaim
            | Kind::Pod
            | Kind::PodDisruptionBudget
    );
    if needs_status && !object.get("status").is_some_and(Value::is_object) {
        return ResourceHealth::Unknown;
    }
    let status = |field: &str| int_at(object, &["status", field]).unwrap_or(0);
    let spec_replicas = int_at(object, &["spec", "replicas"]);
    let generation_observed =
        status("observedGeneration") >= int_at(object, &["metadata", "generation"]).unwrap_or(0);

    let healthy = match kind {
        Kind::Deployment => {
            generation_observed
                && spec_replicas.is_none_or(|want| status("updatedReplicas") >= want)
                && status("availableReplicas") >= status("updatedReplicas")
        }
        Kind::StatefulSet => {
            let partition = int_at(
                object,
                &["spec", "updateStrategy", "rollingUpdate", "partition"],
            )
            .unwrap_or(0);
            generation_observed
                && spec_replicas.is_none_or(|want| {
                    status("updatedReplicas") >= want - partition
                        && status("availableReplicas") >= want
                })
                && status("availableReplicas") >= status("updatedReplicas")
        }
        Kind::ReplicaSet => {
            generation_observed
                && spec_replicas.is_none_or(|want| status("availableReplicas") >= want)
        }
        Kind::DaemonSet => {
            generation_observed
                && status("updatedNumberScheduled") >= status("desiredNumberScheduled")
                && status("numberAvailable") >= status("updatedNumberScheduled")
        }
        Kind::Service => {
            str_at(object, &["spec", "type"]) != Some("LoadBalancer") || has_ingress(object)
        }
        Kind::Ingress => has_ingress(object),
        Kind::PersistentVolumeClaim => str_at(object, &["status", "phase"]) == Some("Bound"),
        Kind::Pod => match str_at(object, &["status", "phase"]) {
            Some("Succeeded") => true,
            Some("Running") => array_at(object, &["status", "conditions"]).iter().any(|c| {
                str_at(c, &["type"]) == Some("Ready") && str_at(c, &["status"]) == Some("True")
            }),
            _ => false,
        },
        Kind::PodDisruptionBudget => status("currentHealthy") >= status("desiredHealthy"),
        _ => true,
    };
    if healthy {
        ResourceHealth::Healthy
    } else {
        ResourceHealth::Unhealthy
    }
}

/// Whether `status.loadBalancer.ingress` has an entry with an IP or hostname.
fn has_ingress(object: &Value) -> bool {
    array_at(object, &["status", "loadBalancer", "ingress"])
        .iter()
        .any(|ingress| {
            ["ip", "hostname"].iter().any(|field| {
                at(ingress, &[field])
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty())
            })
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use ResourceHealth::{Healthy, Unhealthy, Unknown};

    fn object(api_version: &str, kind: &str, generation: i64, spec: Value, status: Value) -> Value {
        let mut object = json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "generation": generation},
            "spec": spec,
        });
        if !status.is_null() {
            object["status"] = status;
        }
        object
    }

    fn deployment(generation: i64, status: Value) -> Value {
        object(
            "apps/v1",
            "Deployment",
            generation,
            json!({"replicas": 3}),
            status,
        )
    }

    #[test]
    fn deployment_health_transitions_through_a_rollout() {
        let cases = [
            ("no status yet", deployment(1, Value::Null), Unknown),
            (
                "new generation not observed",
                deployment(
                    2,
                    json!({"observedGeneration": 1, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Unhealthy,
            ),
            (
                "rolling: not all updated",
                deployment(
                    2,
                    json!({"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 3}),
                ),
                Unhealthy,
            ),
            (
                "updated but not available",
                deployment(
                    2,
                    json!({"observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 2}),
                ),
                Unhealthy,
            ),
            (
                "rolled out",
                deployment(
                    2,
                    json!({"observedGeneration": 2, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Healthy,
            ),
            (
                "observed generation ahead",
                deployment(
                    2,
                    json!({"observedGeneration": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Healthy,
            ),
        ];
        for (name, object, expect) in cases {
            assert_eq!(health(&object), expect, "{name}");
        }
    }

    #[test]
    fn health_per_kind() {
        let cases = [
            (
                "statefulset partitioned rollout done",
                object(
                    "apps/v1",
                    "StatefulSet",
                    1,
                    json!({"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 2}}}),
                    json!({"observedGeneration": 1, "updatedReplicas": 1, "availableReplicas": 3}),
                ),
                Healthy,
            ),
            (
                "statefulset pods not all available",
                object(
                    "apps/v1",
                    "StatefulSet",
                    1,
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "updatedReplicas": 3, "availableReplicas": 2}),
                ),
                Unhealthy,
            ),
            (
                "replicaset available",
                object(
                    "apps/v1",
                    "ReplicaSet",
                    1,
                    json!({"replicas": 2}),
                    json!({"observedGeneration": 1, "availableReplicas": 2}),
                ),
                Healthy,
            ),
            (
                "replicaset short",
                object(
                    "apps/v1",
                    "ReplicaSet",
                    1,
                    json!({"replicas": 2}),
                    json!({"observedGeneration": 1, "availableReplicas": 1}),
                ),
                Unhealthy,
            ),
            (
                "daemonset rolled out",
                object(
                    "apps/v1",
                    "DaemonSet",
                    1,
                    json!({}),
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 4,
                           "updatedNumberScheduled": 4, "numberAvailable": 4}),
                ),
                Healthy,
            ),
            (
                "daemonset not updated",
                object(
                    "apps/v1",
                    "DaemonSet",
                    1,
                    json!({}),
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 4,
                           "updatedNumberScheduled": 3, "numberAvailable": 3}),
                ),
                Unhealthy,
            ),
            (
                "clusterip service",
                object(
                    "v1",
                    "Service",
                    1,
                    json!({"type": "ClusterIP"}),
                    Value::Null,
                ),
                Healthy,
            ),
            (
                "loadbalancer pending",
                object(
                    "v1",
                    "Service",
                    1,
                    json!({"type": "LoadBalancer"}),
                    json!({"loadBalancer": {}}),
                ),
                Unhealthy,
            ),
            (
                "loadbalancer with ip",
                object(
                    "v1",
                    "Service",
                    1,
                    json!({"type": "LoadBalancer"}),
                    json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}),
                ),
                Healthy,
            ),
            (
                "ingress with hostname",
                object(
                    "networking.k8s.io/v1",
                    "Ingress",
                    1,
                    json!({}),
                    json!({"loadBalancer": {"ingress": [{"hostname": "lb.example"}]}}),
                ),
                Healthy,
            ),
            (
                "ingress without address",
                object(
                    "networking.k8s.io/v1",
                    "Ingress",
                    1,
                    json!({}),
                    json!({"loadBalancer": {"ingress": [{}]}}),
                ),
                Unhealthy,
            ),
            (
                "pvc bound",
                object(
                    "v1",
                    "PersistentVolumeClaim",
                    1,
                    json!({}),
                    json!({"phase": "Bound"}),
                ),
                Healthy,
            ),
            (
                "pvc pending",
                object(
                    "v1",
                    "PersistentVolumeClaim",
                    1,
                    json!({}),
                    json!({"phase": "Pending"}),
                ),
                Unhealthy,
            ),
            (
                "pod running ready",
                object(
                    "v1",
                    "Pod",
                    1,
                    json!({}),
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
                ),
                Healthy,
            ),
            (
                "pod running not ready",
                object(
                    "v1",
                    "Pod",
                    1,
                    json!({}),
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
                ),
                Unhealthy,
            ),
            (
                "pod succeeded",
                object("v1", "Pod", 1, json!({}), json!({"phase": "Succeeded"})),
                Healthy,
            ),
            (
                "pod failed",
                object("v1", "Pod", 1, json!({}), json!({"phase": "Failed"})),
                Unhealthy,
            ),
            (
                "pdb short",
                object(
                    "policy/v1",
                    "PodDisruptionBudget",
                    1,
                    json!({}),
                    json!({"currentHealthy": 1, "desiredHealthy": 2}),
                ),
                Unhealthy,
            ),
            (
                "pdb met",
                object(
                    "policy/v1",
                    "PodDisruptionBudget",
                    1,
                    json!({}),
                    json!({"currentHealthy": 2, "desiredHealthy": 2}),
                ),
                Healthy,
            ),
            (
                "configmap is healthy when present",
                object("v1", "ConfigMap", 1, json!({}), Value::Null),
                Healthy,
            ),
            (
                "crd is healthy when present",
                object(
                    "example.com/v1",
                    "Widget",
                    1,
                    json!({}),
                    json!({"ready": false}),
                ),
                Healthy,
            ),
        ];
        for (name, object, expect) in cases {
            assert_eq!(health(&object), expect, "{name}");
        }
    }
}
