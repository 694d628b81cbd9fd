//! Status of propagated objects: which part of a member object's status is reflected into its
//! Work (Karmada's `ReflectStatus`), and how the per-cluster reflected statuses of a binding are
//! aggregated into the template's `.status` (`AggregateStatus`). Computes values only; the
//! work-status and binding-status controllers decide when to write them.
//!
//! Everything here is deterministic: the same inputs give byte-equal outputs (clusters are
//! folded in name order, no clock is read), so a controller writing the result never triggers
//! itself.
//!
//! Where Flotilla differs from Karmada:
//!
//! - Workload reflections carry the member's `metadata.generation` as `generation` beside
//!   `observedGeneration`, and the aggregated `observedGeneration` becomes the template's
//!   generation only once every target cluster has reported a status whose controller has
//!   caught up (`observedGeneration ≥ generation`); until then the template keeps its previous
//!   `observedGeneration`. Karmada also stamps the template generation into the member object
//!   and requires the reflected stamp (`resourceTemplateGeneration`) to equal the template's
//!   generation. Flotilla has no such stamp yet, so a member still running an older manifest
//!   but fully reconciled counts as caught up; a reflected status that does carry
//!   `resourceTemplateGeneration` is held to Karmada's rule.
//! - Deployment reflections keep `conditions` (not aggregated), so per-cluster conditions stay
//!   visible in the binding's `aggregatedStatus`.
//! - ReplicaSet statuses are reflected and summed like the other replicated kinds.
//! - An aggregated Job condition takes its `lastTransitionTime` (and `lastProbeTime`) from the
//!   latest member condition of that type instead of the hub's clock.

use std::collections::BTreeMap;

use flotilla_api::work::AggregatedStatusItem;
use serde_json::{Map, Value, json};

use super::{Kind, array_at, at, int_at, str_at};

const DEPLOYMENT_COUNTERS: &[&str] = &[
    "replicas",
    "readyReplicas",
    "updatedReplicas",
    "availableReplicas",
    "unavailableReplicas",
];
const STATEFUL_SET_COUNTERS: &[&str] = &[
    "replicas",
    "readyReplicas",
    "currentReplicas",
    "updatedReplicas",
    "availableReplicas",
];
const REPLICA_SET_COUNTERS: &[&str] = &[
    "replicas",
    "fullyLabeledReplicas",
    "readyReplicas",
    "availableReplicas",
];
const DAEMON_SET_COUNTERS: &[&str] = &[
    "currentNumberScheduled",
    "desiredNumberScheduled",
    "numberAvailable",
    "numberMisscheduled",
    "numberReady",
    "updatedNumberScheduled",
    "numberUnavailable",
];
const PDB_COUNTERS: &[&str] = &[
    "currentHealthy",
    "desiredHealthy",
    "expectedPods",
    "disruptionsAllowed",
];

/// The part of a member `object`'s status worth reporting to the hub, or `None` when it has no
/// status (or, for a Service, is not a LoadBalancer).
///
/// - Deployment: the replica counters, `observedGeneration`, `conditions` and the member's
///   `generation`.
/// - StatefulSet, ReplicaSet, DaemonSet: their counters, `observedGeneration` and `generation`.
/// - Job: `active`, `succeeded`, `failed`, `conditions`, `startTime`, `completionTime`.
/// - Service of type LoadBalancer: `loadBalancer`.
/// - PodDisruptionBudget: its counters and `disruptedPods`.
/// - HorizontalPodAutoscaler: `currentReplicas`, `desiredReplicas`.
/// - Every other kind (Ingress, Pod, PVC, any CRD…): the whole status.
pub fn reflect_status(object: &Value) -> Option<Value> {
    let status = object.get("status").and_then(Value::as_object)?;
    let kind = Kind::of_object(object);
    let (fields, with_generation): (Vec<&str>, bool) = match kind {
        Kind::Deployment => (
            [DEPLOYMENT_COUNTERS, &["observedGeneration", "conditions"]].concat(),
            true,
        ),
        Kind::StatefulSet => (
            [STATEFUL_SET_COUNTERS, &["observedGeneration"]].concat(),
            true,
        ),
        Kind::ReplicaSet => (
            [REPLICA_SET_COUNTERS, &["observedGeneration"]].concat(),
            true,
        ),
        Kind::DaemonSet => (
            [DAEMON_SET_COUNTERS, &["observedGeneration"]].concat(),
            true,
        ),
        Kind::Job => (
            vec![
                "active",
                "succeeded",
                "failed",
                "conditions",
                "startTime",
                "completionTime",
            ],
            false,
        ),
        Kind::Service => {
            if str_at(object, &["spec", "type"]) != Some("LoadBalancer") {
                return None;
            }
            (vec!["loadBalancer"], false)
        }
        Kind::PodDisruptionBudget => ([PDB_COUNTERS, &["disruptedPods"]].concat(), false),
        Kind::HorizontalPodAutoscaler => (vec!["currentReplicas", "desiredReplicas"], false),
        _ => return Some(Value::Object(status.clone())),
    };
    let mut reflected: Map<String, Value> = fields
        .iter()
        .filter_map(|field| Some(((*field).to_owned(), status.get(*field)?.clone())))
        .collect();
    if with_generation && let Some(generation) = int_at(object, &["metadata", "generation"]) {
        reflected.insert("generation".to_owned(), Value::from(generation));
    }
    Some(Value::Object(reflected))
}

/// The template's new `.status`, aggregated from the statuses its target clusters reflected,
/// or `None` for kinds whose status is not aggregated (any CRD, ConfigMap, a Service that is not
/// a LoadBalancer, …) and for a Pod with no clusters yet. The caller compares the result with
/// the template's current status and writes only a difference.
///
/// - Deployment, StatefulSet, ReplicaSet, DaemonSet: the counters are summed into the
///   template's existing status (other fields kept); `observedGeneration` as described in the
///   module notes.
/// - Job: counters summed, earliest `startTime`, latest `completionTime`; a `Failed` condition
///   naming the clusters where it failed, or `Complete` once it completed in every cluster.
///   A template Job that is already finished keeps its status.
/// - CronJob: `active` concatenated, latest `lastScheduleTime` and `lastSuccessfulTime`.
/// - Service (LoadBalancer) and Ingress: all load-balancer ingress points, a missing hostname
///   set to the cluster's name so users can tell where each comes from.
/// - Pod: the worst phase (Failed, Pending, Running, Succeeded; a cluster yet to report counts
///   as Pending) and each container's `ready` and `state`.
/// - PersistentVolume: the worst phase (Failed, Pending, Available, Bound, Released).
/// - PersistentVolumeClaim: `Lost` if lost anywhere, else the last phase that is not `Bound`,
///   else `Bound`.
/// - PodDisruptionBudget: counters summed, `disruptedPods` keyed `<cluster>/<pod>`.
pub fn aggregate_status(template: &Value, items: &[AggregatedStatusItem]) -> Option<Value> {
    let mut items: Vec<&AggregatedStatusItem> = items.iter().collect();
    items.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    let old = template
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let status = match Kind::of_object(template) {
        Kind::Deployment => counters(template, old, &items, DEPLOYMENT_COUNTERS),
        Kind::StatefulSet => counters(template, old, &items, STATEFUL_SET_COUNTERS),
        Kind::ReplicaSet => counters(template, old, &items, REPLICA_SET_COUNTERS),
        Kind::DaemonSet => counters(template, old, &items, DAEMON_SET_COUNTERS),
        Kind::Job => job(old, &items),
        Kind::CronJob => cron_job(old, &items),
        Kind::Service => {
            if str_at(template, &["spec", "type"]) != Some("LoadBalancer") {
                return None;
            }
            load_balancer(&items)
        }
        Kind::Ingress => load_balancer(&items),
        Kind::Pod => pod(&items)?,
        Kind::PersistentVolume => persistent_volume(&items),
        Kind::PersistentVolumeClaim => persistent_volume_claim(&items),
        Kind::PodDisruptionBudget => pod_disruption_budget(&items),
        _ => return None,
    };
    Some(Value::Object(status))
}

/// The reflected status of an item, when it has one.
fn reflected(item: &AggregatedStatusItem) -> Option<&Value> {
    item.status.as_ref().filter(|status| status.is_object())
}

fn int(status: &Value, field: &str) -> i64 {
    int_at(status, &[field]).unwrap_or(0)
}

/// Sums `fields` of every reported status into `old`, and applies the observedGeneration rule.
fn counters(
    template: &Value,
    mut status: Map<String, Value>,
    items: &[&AggregatedStatusItem],
    fields: &[&str],
) -> Map<String, Value> {
    for field in fields {
        let sum = items
            .iter()
            .filter_map(|item| reflected(item))
            .fold(0i64, |sum, s| sum.saturating_add(int(s, field)));
        status.insert((*field).to_owned(), Value::from(sum));
    }
    let Some(generation) = int_at(template, &["metadata", "generation"]) else {
        return status;
    };
    let caught_up = !items.is_empty()
        && items.iter().all(|item| {
            reflected(item).is_some_and(|s| {
                int_at(s, &["observedGeneration"]).is_some()
                    && int(s, "observedGeneration") >= int(s, "generation")
                    && int_at(s, &["resourceTemplateGeneration"]).is_none_or(|g| g == generation)
            })
        });
    if caught_up {
        status.insert("observedGeneration".to_owned(), Value::from(generation));
    }
    status
}

/// Whether `status` has a condition of `kind` with status True; returns it.
fn true_condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    array_at(status, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == Some(kind) && str_at(c, &["status"]) == Some("True"))
}

/// The latest of the string timestamps (RFC 3339 UTC, which order as text).
fn latest<'a>(times: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    times.into_iter().max()
}

fn job(old: Map<String, Value>, items: &[&AggregatedStatusItem]) -> Map<String, Value> {
    let old_value = Value::Object(old.clone());
    if true_condition(&old_value, "Complete").is_some()
        || true_condition(&old_value, "Failed").is_some()
    {
        return old;
    }
    let reported: Vec<(&str, &Value)> = items
        .iter()
        .filter_map(|item| Some((item.cluster_name.as_str(), reflected(item)?)))
        .collect();
    let mut status = old;
    for field in ["active", "succeeded", "failed"] {
        let sum = reported
            .iter()
            .fold(0i64, |sum, (_, s)| sum.saturating_add(int(s, field)));
        status.insert(field.to_owned(), Value::from(sum));
    }
    let earliest_start = reported
        .iter()
        .filter_map(|(_, s)| str_at(s, &["startTime"]))
        .min();
    set_or_remove(&mut status, "startTime", earliest_start);

    let failed: Vec<(&str, &Value)> = reported
        .iter()
        .filter_map(|(cluster, s)| Some((*cluster, true_condition(s, "Failed")?)))
        .collect();
    let complete: Vec<&Value> = reported
        .iter()
        .filter_map(|(_, s)| true_condition(s, "Complete"))
        .collect();
    let condition = if !failed.is_empty() {
        let clusters: Vec<&str> = failed.iter().map(|(cluster, _)| *cluster).collect();
        let conditions: Vec<&Value> = failed.iter().map(|(_, c)| *c).collect();
        Some(job_condition(
            "Failed",
            "JobFailed",
            &format!(
                "Job executed failed in member clusters: {}",
                clusters.join(", ")
            ),
            &conditions,
        ))
    } else if !items.is_empty() && complete.len() == items.len() {
        Some(job_condition(
            "Complete",
            "Completed",
            "Job completed",
            &complete,
        ))
    } else {
        None
    };
    let finished = condition.is_some();
    match condition {
        Some(condition) => {
            status.insert("conditions".to_owned(), Value::Array(vec![condition]));
        }
        None => {
            status.remove("conditions");
        }
    }
    let completion = latest(
        reported
            .iter()
            .filter_map(|(_, s)| str_at(s, &["completionTime"])),
    )
    .filter(|_| finished);
    set_or_remove(&mut status, "completionTime", completion);
    status
}

fn job_condition(kind: &str, reason: &str, message: &str, from: &[&Value]) -> Value {
    let mut condition = json!({
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
    });
    for field in ["lastProbeTime", "lastTransitionTime"] {
        if let Some(time) = latest(from.iter().filter_map(|c| str_at(c, &[field]))) {
            condition[field] = Value::from(time);
        }
    }
    condition
}

fn set_or_remove(status: &mut Map<String, Value>, field: &str, value: Option<&str>) {
    match value {
        Some(value) => {
            status.insert(field.to_owned(), Value::from(value));
        }
        None => {
            status.remove(field);
        }
    }
}

fn cron_job(mut status: Map<String, Value>, items: &[&AggregatedStatusItem]) -> Map<String, Value> {
    let reported: Vec<&Value> = items.iter().filter_map(|item| reflected(item)).collect();
    let active: Vec<Value> = reported
        .iter()
        .flat_map(|s| array_at(s, &["active"]).iter().cloned())
        .collect();
    if active.is_empty() {
        status.remove("active");
    } else {
        status.insert("active".to_owned(), Value::Array(active));
    }
    for field in ["lastScheduleTime", "lastSuccessfulTime"] {
        let time = latest(reported.iter().filter_map(|s| str_at(s, &[field])));
        set_or_remove(&mut status, field, time);
    }
    status
}

fn load_balancer(items: &[&AggregatedStatusItem]) -> Map<String, Value> {
    let mut ingress = Vec::new();
    for item in items {
        let Some(status) = reflected(item) else {
            continue;
        };
        for point in array_at(status, &["loadBalancer", "ingress"]) {
            let mut point = point.clone();
            if let Some(point) = point.as_object_mut()
                && point
                    .get("hostname")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                point.insert(
                    "hostname".to_owned(),
                    Value::from(item.cluster_name.clone()),
                );
            }
            ingress.push(point);
        }
    }
    let mut status = Map::new();
    let load_balancer = if ingress.is_empty() {
        json!({})
    } else {
        json!({"ingress": ingress})
    };
    status.insert("loadBalancer".to_owned(), load_balancer);
    status
}

/// The first of `order` that some reported phase has.
fn worst_phase<'a>(phases: &[&str], order: &[&'a str]) -> Option<&'a str> {
    order.iter().find(|phase| phases.contains(phase)).copied()
}

fn pod(items: &[&AggregatedStatusItem]) -> Option<Map<String, Value>> {
    if items.is_empty() {
        return None;
    }
    let mut phases = Vec::new();
    let mut containers = Vec::new();
    for item in items {
        let Some(status) = reflected(item) else {
            phases.push("Pending");
            continue;
        };
        phases.push(str_at(status, &["phase"]).unwrap_or_default());
        for container in array_at(status, &["containerStatuses"]) {
            let mut summary = Map::new();
            summary.insert(
                "ready".to_owned(),
                Value::from(
                    container
                        .get("ready")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                ),
            );
            if let Some(state) = container.get("state") {
                summary.insert("state".to_owned(), state.clone());
            }
            containers.push(Value::Object(summary));
        }
    }
    let mut status = Map::new();
    if let Some(phase) = worst_phase(&phases, &["Failed", "Pending", "Running", "Succeeded"]) {
        status.insert("phase".to_owned(), Value::from(phase));
    }
    if !containers.is_empty() {
        status.insert("containerStatuses".to_owned(), Value::Array(containers));
    }
    Some(status)
}

fn persistent_volume(items: &[&AggregatedStatusItem]) -> Map<String, Value> {
    let phases: Vec<&str> = items
        .iter()
        .map(|item| reflected(item).map_or(Some("Pending"), |s| str_at(s, &["phase"])))
        .map(Option::unwrap_or_default)
        .collect();
    let mut status = Map::new();
    if let Some(phase) = worst_phase(
        &phases,
        &["Failed", "Pending", "Available", "Bound", "Released"],
    ) {
        status.insert("phase".to_owned(), Value::from(phase));
    }
    status
}

fn persistent_volume_claim(items: &[&AggregatedStatusItem]) -> Map<String, Value> {
    let mut phase = "Bound";
    for status in items.iter().filter_map(|item| reflected(item)) {
        match str_at(status, &["phase"]) {
            Some("Lost") => {
                phase = "Lost";
                break;
            }
            Some(other) if other != "Bound" => phase = other,
            _ => {}
        }
    }
    let mut status = Map::new();
    status.insert("phase".to_owned(), Value::from(phase));
    status
}

fn pod_disruption_budget(items: &[&AggregatedStatusItem]) -> Map<String, Value> {
    let mut status = Map::new();
    for field in PDB_COUNTERS {
        let sum = items
            .iter()
            .filter_map(|item| reflected(item))
            .fold(0i64, |sum, s| sum.saturating_add(int(s, field)));
        status.insert((*field).to_owned(), Value::from(sum));
    }
    let mut disrupted = BTreeMap::new();
    for item in items {
        let Some(pods) = reflected(item)
            .and_then(|s| at(s, &["disruptedPods"]))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (pod, time) in pods {
            disrupted.insert(format!("{}/{pod}", item.cluster_name), time.clone());
        }
    }
    if !disrupted.is_empty() {
        status.insert(
            "disruptedPods".to_owned(),
            Value::Object(disrupted.into_iter().collect()),
        );
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(cluster: &str, status: Option<Value>) -> AggregatedStatusItem {
        AggregatedStatusItem {
            cluster_name: cluster.to_owned(),
            status,
            applied: true,
            ..Default::default()
        }
    }

    fn object(api_version: &str, kind: &str, spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "generation": 4},
            "spec": spec, "status": status,
        })
    }

    #[test]
    fn reflect_keeps_the_fields_each_kind_reports() {
        let cases = [
            (
                "deployment",
                object(
                    "apps/v1",
                    "Deployment",
                    json!({}),
                    json!({"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
                           "availableReplicas": 2, "unavailableReplicas": 1,
                           "observedGeneration": 4, "collisionCount": 1,
                           "conditions": [{"type": "Available", "status": "True"}]}),
                ),
                Some(
                    json!({"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
                            "availableReplicas": 2, "unavailableReplicas": 1,
                            "observedGeneration": 4, "generation": 4,
                            "conditions": [{"type": "Available", "status": "True"}]}),
                ),
            ),
            (
                "statefulset",
                object(
                    "apps/v1",
                    "StatefulSet",
                    json!({}),
                    json!({"replicas": 2, "currentRevision": "r1", "observedGeneration": 3}),
                ),
                Some(json!({"replicas": 2, "observedGeneration": 3, "generation": 4})),
            ),
            (
                "daemonset",
                object(
                    "apps/v1",
                    "DaemonSet",
                    json!({}),
                    json!({"numberReady": 5, "desiredNumberScheduled": 5, "collisionCount": 2}),
                ),
                Some(json!({"numberReady": 5, "desiredNumberScheduled": 5, "generation": 4})),
            ),
            (
                "job",
                object(
                    "batch/v1",
                    "Job",
                    json!({}),
                    json!({"active": 1, "ready": 1, "startTime": "2026-01-01T00:00:00Z"}),
                ),
                Some(json!({"active": 1, "startTime": "2026-01-01T00:00:00Z"})),
            ),
            (
                "loadbalancer service",
                object(
                    "v1",
                    "Service",
                    json!({"type": "LoadBalancer"}),
                    json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}, "conditions": []}),
                ),
                Some(json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}})),
            ),
            (
                "clusterip service",
                object(
                    "v1",
                    "Service",
                    json!({"type": "ClusterIP"}),
                    json!({"loadBalancer": {}}),
                ),
                None,
            ),
            (
                "hpa",
                object(
                    "autoscaling/v2",
                    "HorizontalPodAutoscaler",
                    json!({}),
                    json!({"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": []}),
                ),
                Some(json!({"currentReplicas": 2, "desiredReplicas": 3})),
            ),
            (
                "crd whole status",
                object(
                    "example.com/v1",
                    "Widget",
                    json!({}),
                    json!({"anything": {"nested": true}}),
                ),
                Some(json!({"anything": {"nested": true}})),
            ),
            (
                "no status",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}),
                None,
            ),
        ];
        for (name, object, expect) in cases {
            assert_eq!(reflect_status(&object), expect, "{name}");
        }
    }

    fn deployment_template(generation: i64, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": generation},
            "spec": {"replicas": 5}, "status": status,
        })
    }

    #[test]
    fn deployment_counters_of_two_clusters_add_up() {
        let template = deployment_template(7, json!({"conditions": [{"type": "Kept"}]}));
        let items = [
            item(
                "b",
                Some(
                    json!({"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                            "availableReplicas": 2, "observedGeneration": 3, "generation": 3}),
                ),
            ),
            item(
                "a",
                Some(
                    json!({"replicas": 3, "readyReplicas": 1, "updatedReplicas": 3,
                            "availableReplicas": 1, "unavailableReplicas": 2,
                            "observedGeneration": 5, "generation": 5}),
                ),
            ),
        ];
        assert_eq!(
            aggregate_status(&template, &items),
            Some(json!({
                "conditions": [{"type": "Kept"}],
                "replicas": 5, "readyReplicas": 3, "updatedReplicas": 5,
                "availableReplicas": 3, "unavailableReplicas": 2, "observedGeneration": 7,
            }))
        );
    }

    #[test]
    fn observed_generation_waits_for_every_cluster_to_catch_up() {
        let template = deployment_template(7, json!({"observedGeneration": 6}));
        let lagging = [
            item("a", Some(json!({"observedGeneration": 5, "generation": 5}))),
            item("b", Some(json!({"observedGeneration": 2, "generation": 3}))),
        ];
        let missing = [
            item("a", Some(json!({"observedGeneration": 5, "generation": 5}))),
            item("b", None),
        ];
        let stale_manifest = [item(
            "a",
            Some(json!({"observedGeneration": 5, "generation": 5,
                        "resourceTemplateGeneration": 6})),
        )];
        for items in [&lagging[..], &missing[..], &stale_manifest[..], &[]] {
            let status = aggregate_status(&template, items).unwrap_or_default();
            assert_eq!(status["observedGeneration"], json!(6), "{items:?}");
        }
    }

    #[test]
    fn observed_generation_follows_a_matching_template_stamp() {
        let template = deployment_template(7, json!({"observedGeneration": 6}));
        let items = [item(
            "a",
            Some(json!({"observedGeneration": 5, "generation": 5,
                        "resourceTemplateGeneration": 7})),
        )];
        let status = aggregate_status(&template, &items).unwrap_or_default();
        assert_eq!(status["observedGeneration"], json!(7));
    }

    #[test]
    fn statefulset_daemonset_and_replicaset_counters_add_up() {
        let cases = [
            ("StatefulSet", "currentReplicas"),
            ("DaemonSet", "numberReady"),
            ("ReplicaSet", "fullyLabeledReplicas"),
        ];
        for (kind, field) in cases {
            let template = object("apps/v1", kind, json!({}), json!({}));
            let items = [
                item(
                    "a",
                    Some(json!({field: 2, "observedGeneration": 1, "generation": 1})),
                ),
                item(
                    "b",
                    Some(json!({field: 3, "observedGeneration": 1, "generation": 1})),
                ),
            ];
            let status = aggregate_status(&template, &items).unwrap_or_default();
            assert_eq!(status[field], json!(5), "{kind}");
            assert_eq!(status["observedGeneration"], json!(4), "{kind}");
        }
    }

    fn job_template(status: Value) -> Value {
        object("batch/v1", "Job", json!({"completions": 4}), status)
    }

    #[test]
    fn job_completes_when_every_cluster_completed() {
        let done = |succeeded: i64, start: &str, end: &str| {
            json!({"succeeded": succeeded, "startTime": start, "completionTime": end,
                   "conditions": [{"type": "Complete", "status": "True",
                                   "lastTransitionTime": end}]})
        };
        let items = [
            item(
                "a",
                Some(done(2, "2026-01-01T00:00:05Z", "2026-01-01T00:10:00Z")),
            ),
            item(
                "b",
                Some(done(2, "2026-01-01T00:00:01Z", "2026-01-01T00:20:00Z")),
            ),
        ];
        let status = aggregate_status(&job_template(json!({})), &items);
        assert_eq!(
            status,
            Some(json!({
                "active": 0, "succeeded": 4, "failed": 0,
                "startTime": "2026-01-01T00:00:01Z",
                "completionTime": "2026-01-01T00:20:00Z",
                "conditions": [{"type": "Complete", "status": "True", "reason": "Completed",
                                "message": "Job completed",
                                "lastTransitionTime": "2026-01-01T00:20:00Z"}],
            }))
        );

        // One cluster still running: no condition, no completion time.
        let running = [
            items[0].clone(),
            item(
                "b",
                Some(json!({"active": 2, "startTime": "2026-01-01T00:00:01Z"})),
            ),
        ];
        let status = aggregate_status(&job_template(json!({})), &running).unwrap_or_default();
        assert_eq!(status["active"], json!(2));
        assert_eq!(status.get("conditions"), None);
        assert_eq!(status.get("completionTime"), None);
    }

    #[test]
    fn job_fails_when_any_cluster_failed_and_then_stays_finished() {
        let items = [
            item(
                "b",
                Some(
                    json!({"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                    "lastTransitionTime": "2026-01-01T01:00:00Z"}]}),
                ),
            ),
            item("a", Some(json!({"active": 1}))),
        ];
        let status = aggregate_status(&job_template(json!({})), &items).unwrap_or_default();
        assert_eq!(
            status["conditions"],
            json!([{"type": "Failed", "status": "True", "reason": "JobFailed",
                    "message": "Job executed failed in member clusters: b",
                    "lastTransitionTime": "2026-01-01T01:00:00Z"}])
        );
        let finished = aggregate_status(&job_template(status.clone()), &[item("a", None)]);
        assert_eq!(finished, Some(status));
    }

    #[test]
    fn cronjob_concatenates_active_and_keeps_latest_times() {
        let template = object("batch/v1", "CronJob", json!({}), json!({}));
        let items = [
            item(
                "a",
                Some(json!({"active": [{"name": "j1"}],
                            "lastScheduleTime": "2026-01-01T00:00:00Z"})),
            ),
            item(
                "b",
                Some(json!({"active": [{"name": "j2"}],
                            "lastScheduleTime": "2026-01-02T00:00:00Z",
                            "lastSuccessfulTime": "2026-01-01T00:00:00Z"})),
            ),
        ];
        assert_eq!(
            aggregate_status(&template, &items),
            Some(json!({"active": [{"name": "j1"}, {"name": "j2"}],
                        "lastScheduleTime": "2026-01-02T00:00:00Z",
                        "lastSuccessfulTime": "2026-01-01T00:00:00Z"}))
        );
    }

    #[test]
    fn load_balancer_ingress_points_are_labelled_with_their_cluster() {
        let service = object("v1", "Service", json!({"type": "LoadBalancer"}), json!({}));
        let items = [
            item(
                "east",
                Some(json!({"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}})),
            ),
            item(
                "west",
                Some(json!({"loadBalancer": {"ingress": [{"hostname": "lb.west"}]}})),
            ),
        ];
        let expect = json!({"loadBalancer": {"ingress": [
            {"ip": "1.1.1.1", "hostname": "east"}, {"hostname": "lb.west"},
        ]}});
        assert_eq!(aggregate_status(&service, &items), Some(expect.clone()));
        let ingress = object("networking.k8s.io/v1", "Ingress", json!({}), json!({}));
        assert_eq!(aggregate_status(&ingress, &items), Some(expect));
        let cluster_ip = object("v1", "Service", json!({"type": "ClusterIP"}), json!({}));
        assert_eq!(aggregate_status(&cluster_ip, &items), None);
    }

    #[test]
    fn pod_phase_is_the_worst_phase() {
        let template = object("v1", "Pod", json!({}), json!({}));
        let cases = [
            (vec![Some("Running"), Some("Succeeded")], "Running"),
            (vec![Some("Running"), None], "Pending"),
            (vec![Some("Failed"), Some("Pending")], "Failed"),
            (vec![Some("Succeeded"), Some("Succeeded")], "Succeeded"),
        ];
        for (phases, expect) in cases {
            let items: Vec<AggregatedStatusItem> = phases
                .iter()
                .enumerate()
                .map(|(i, phase)| {
                    item(
                        &format!("c{i}"),
                        phase.map(|p| {
                            json!({"phase": p, "containerStatuses": [
                                {"name": "app", "ready": true, "restartCount": 3,
                                 "state": {"running": {}}}
                            ]})
                        }),
                    )
                })
                .collect();
            let status = aggregate_status(&template, &items).unwrap_or_default();
            assert_eq!(status["phase"], json!(expect), "{phases:?}");
            assert_eq!(
                status["containerStatuses"][0],
                json!({"ready": true, "state": {"running": {}}})
            );
        }
        assert_eq!(aggregate_status(&template, &[]), None);
    }

    #[test]
    fn volume_phases_aggregate() {
        let pv = object("v1", "PersistentVolume", json!({}), json!({}));
        let items = [
            item("a", Some(json!({"phase": "Bound"}))),
            item("b", Some(json!({"phase": "Available"}))),
        ];
        assert_eq!(
            aggregate_status(&pv, &items),
            Some(json!({"phase": "Available"}))
        );
        let pvc = object("v1", "PersistentVolumeClaim", json!({}), json!({}));
        assert_eq!(
            aggregate_status(&pvc, &items[..1]),
            Some(json!({"phase": "Bound"}))
        );
        let lost = [
            item("a", Some(json!({"phase": "Pending"}))),
            item("b", Some(json!({"phase": "Lost"}))),
        ];
        assert_eq!(
            aggregate_status(&pvc, &lost),
            Some(json!({"phase": "Lost"}))
        );
    }

    #[test]
    fn pdb_counters_add_up_and_disrupted_pods_name_their_cluster() {
        let pdb = object("policy/v1", "PodDisruptionBudget", json!({}), json!({}));
        let items = [
            item(
                "a",
                Some(
                    json!({"currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 3,
                            "disruptionsAllowed": 0,
                            "disruptedPods": {"p1": "2026-01-01T00:00:00Z"}}),
                ),
            ),
            item(
                "b",
                Some(
                    json!({"currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
                            "disruptionsAllowed": 1}),
                ),
            ),
        ];
        assert_eq!(
            aggregate_status(&pdb, &items),
            Some(
                json!({"currentHealthy": 5, "desiredHealthy": 4, "expectedPods": 6,
                        "disruptionsAllowed": 1,
                        "disruptedPods": {"a/p1": "2026-01-01T00:00:00Z"}})
            )
        );
    }

    #[test]
    fn unknown_kinds_are_not_aggregated() {
        let items = [item("a", Some(json!({"ready": true})))];
        for template in [
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ] {
            assert_eq!(aggregate_status(&template, &items), None, "{template}");
        }
    }
}
