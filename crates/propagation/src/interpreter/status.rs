//! Status of propagated objects: which part of a member object's status is reflected into its
//! Work (Karmada's `ReflectStatus`), and how the per-cluster reflected statuses of a binding are
//! aggregated into the template's `.status` (`AggregateStatus`). Computes values only; the
//! work-status and binding-status controllers decide when to write them.
//!
//! The aggregate is built so that a GitOps tool reading the hub's template judges the whole
//! fleet: Argo CD's Deployment and StatefulSet health checks and kstatus (Flux's `wait`) report
//! Healthy / Current exactly when every scheduled cluster is done, and Progressing / InProgress
//! before (`flotilla_testing::health` holds ports of both to test this against).
//!
//! Everything here is deterministic: the same inputs give byte-equal outputs (clusters are
//! folded in name order, no clock is read; condition times come from the members' conditions),
//! so a controller writing the result never triggers itself.
//!
//! The generation rule. The binding controller stamps the template's `metadata.generation` on
//! every member object as the annotation `resourcetemplate.flotilla.io/generation`;
//! [`reflect_status`] reports it as `resourceTemplateGeneration`, beside the member's own
//! `metadata.generation` as `generation`. The aggregated `observedGeneration` becomes the
//! template's generation only when every scheduled cluster has reported a status with
//! `resourceTemplateGeneration` equal to that generation (the cluster applied it) and
//! `observedGeneration ≥ generation` (its controller observed it). A status without the stamp
//! does not count, nor does a cluster without a status (one that never reported, or is
//! unreachable without a report); until then the template keeps its previous
//! `observedGeneration`.
//!
//! Where Flotilla differs from Karmada:
//!
//! - Placement matters. For a Duplicated placement (every cluster runs the whole template)
//!   Deployment, StatefulSet and ReplicaSet counters are those of the least progressed cluster,
//!   so a finished rollout reads `replicas == spec.replicas`, not a multiple of it; the
//!   per-cluster counters stay in the binding's `aggregatedStatus`. Karmada sums them whatever
//!   the placement. Divided placements are summed, as in Karmada; DaemonSets are always summed
//!   (each cluster has its own desired count, so the sums keep every equality a health check
//!   compares).
//! - The generation rule is Karmada's (it stamps members the same way and compares the
//!   reflected stamp in its built-in workload aggregations), extended: Flotilla reflects the
//!   stamp for every kind whose reflection is an object and applies the rule to ReplicaSets
//!   and to kinds without a specific rule, custom resources included.
//! - Deployment conditions are aggregated (Karmada drops them, karmada-io/karmada#4642):
//!   `Available` and `Progressing`, each the worst across clusters, replace the template's
//!   conditions. Deployment reflections keep `conditions`, so per-cluster conditions also stay
//!   visible in the binding's `aggregatedStatus`.
//! - StatefulSet reflections keep `currentRevision`, `updateRevision` and `conditions`; the
//!   aggregated revisions are equal only when every cluster has rolled out.
//! - Kinds without a specific rule (custom resources, HPAs, …) get `Ready`, `Reconciling` and
//!   `Stalled` aggregated into their existing status, plus the generation rule; Karmada
//!   aggregates nothing for them without a customization.
//! - ReplicaSet statuses are reflected and aggregated like the other replicated kinds.
//! - An aggregated Job condition takes its `lastTransitionTime` (and `lastProbeTime`) from the
//!   latest member condition of that type instead of the hub's clock.

use std::{cmp::Reverse, collections::BTreeMap};

use flotilla_api::{keys::annotations::RESOURCE_TEMPLATE_GENERATION, work::AggregatedStatusItem};
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

/// The condition types aggregated for kinds without a specific rule, in output order.
const GENERIC_CONDITIONS: &[&str] = &["Ready", "Reconciling", "Stalled"];

/// Reasons of the aggregated Deployment conditions. `MinimumReplicasAvailable`,
/// `MinimumReplicasUnavailable`, `ProgressDeadlineExceeded`, `NewReplicaSetAvailable` and
/// `ReplicaSetUpdated` are the Deployment controller's own reasons.
mod reasons {
    pub const MINIMUM_REPLICAS_AVAILABLE: &str = "MinimumReplicasAvailable";
    pub const MINIMUM_REPLICAS_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    pub const NEW_REPLICA_SET_AVAILABLE: &str = "NewReplicaSetAvailable";
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    /// Some cluster has not reported the condition.
    pub const NOT_REPORTED: &str = "NotReported";
}

/// The part of a member `object`'s status worth reporting to the hub, or `None` when it has no
/// status (or, for a Service, is not a LoadBalancer).
///
/// - Deployment: the replica counters, `observedGeneration` and `conditions`.
/// - StatefulSet: its counters, `observedGeneration`, `currentRevision`, `updateRevision` and
///   `conditions`.
/// - ReplicaSet, DaemonSet: their counters and `observedGeneration`.
/// - Job: `active`, `succeeded`, `failed`, `conditions`, `startTime`, `completionTime`.
/// - Service of type LoadBalancer: `loadBalancer`.
/// - PodDisruptionBudget: its counters and `disruptedPods`.
/// - HorizontalPodAutoscaler: `currentReplicas`, `desiredReplicas`.
/// - Every other kind (Ingress, Pod, PVC, any CRD…): the whole status.
///
/// Every reflection also carries the member's `metadata.generation` as `generation` and the
/// template generation stamped on the member (annotation
/// `resourcetemplate.flotilla.io/generation`, a decimal integer) as
/// `resourceTemplateGeneration`, each when present; in a whole-status reflection they replace
/// any status fields of those names.
pub fn reflect_status(object: &Value) -> Option<Value> {
    let status = object.get("status").and_then(Value::as_object)?;
    let kind = Kind::of_object(object);
    let fields: Vec<&str> = match kind {
        Kind::Deployment => [DEPLOYMENT_COUNTERS, &["observedGeneration", "conditions"]].concat(),
        Kind::StatefulSet => [
            STATEFUL_SET_COUNTERS,
            &[
                "observedGeneration",
                "currentRevision",
                "updateRevision",
                "conditions",
            ],
        ]
        .concat(),
        Kind::ReplicaSet => [REPLICA_SET_COUNTERS, &["observedGeneration"]].concat(),
        Kind::DaemonSet => [DAEMON_SET_COUNTERS, &["observedGeneration"]].concat(),
        Kind::Job => vec![
            "active",
            "succeeded",
            "failed",
            "conditions",
            "startTime",
            "completionTime",
        ],
        Kind::Service => {
            if str_at(object, &["spec", "type"]) != Some("LoadBalancer") {
                return None;
            }
            vec!["loadBalancer"]
        }
        Kind::PodDisruptionBudget => [PDB_COUNTERS, &["disruptedPods"]].concat(),
        Kind::HorizontalPodAutoscaler => vec!["currentReplicas", "desiredReplicas"],
        _ => Vec::new(),
    };
    let mut reflected: Map<String, Value> = if fields.is_empty() {
        status.clone()
    } else {
        fields
            .iter()
            .filter_map(|field| Some(((*field).to_owned(), status.get(*field)?.clone())))
            .collect()
    };
    if let Some(generation) = int_at(object, &["metadata", "generation"]) {
        reflected.insert("generation".to_owned(), Value::from(generation));
    }
    if let Some(stamp) = str_at(
        object,
        &["metadata", "annotations", RESOURCE_TEMPLATE_GENERATION],
    )
    .and_then(|stamp| stamp.trim().parse::<i64>().ok())
    {
        reflected.insert("resourceTemplateGeneration".to_owned(), Value::from(stamp));
    }
    Some(Value::Object(reflected))
}

/// The template's new `.status`, aggregated from the statuses its scheduled clusters
/// reflected (`items`, one per cluster), or `None` when there is nothing to aggregate (see
/// below). `duplicated` says the binding's placement duplicates the template to every cluster
/// rather than dividing its replicas. The caller compares the result with the template's
/// current status and writes only a difference.
///
/// - Deployment: the counters (below) into the template's existing status, the generation rule
///   (module notes), and exactly two conditions replacing the template's: `Available` (True
///   only when every cluster has it True, False when any has it False, else Unknown; a
///   cluster without it counts as Unknown) and `Progressing` (False with reason
///   `ProgressDeadlineExceeded` when any cluster has that reason; True with reason
///   `NewReplicaSetAvailable` only when every cluster has it True with that reason; else True
///   with reason `ReplicaSetUpdated`). Messages name the clusters concerned; the condition
///   times are the latest of the member conditions that decided it.
/// - StatefulSet: the counters, the generation rule, and `currentRevision` / `updateRevision`:
///   both the first cluster's (by name) revision when every cluster reports
///   `currentRevision == updateRevision` (non-empty); otherwise those of the first cluster, by
///   name, whose two revisions differ, and neither when no cluster reports differing ones (a
///   cluster without a report is not rolled out, and its absence already holds the counters or
///   the generation back).
/// - ReplicaSet: the counters and the generation rule. DaemonSet: counters summed, and the
///   generation rule.
/// - Counters: summed over the clusters for a divided placement; for a duplicated one those of
///   the least progressed cluster, as a set. The least progressed is a cluster that has not
///   reported (all zeros; the first by name if several), else the one with the lowest
///   `updatedReplicas`, then lowest `availableReplicas`, then lowest `readyReplicas`, then the
///   most `unavailableReplicas`, then the most `replicas`, then the first by name.
/// - Job: counters summed, earliest `startTime`, latest `completionTime`; a `Failed` condition
///   naming the clusters where it failed, or `Complete` once it completed in every cluster.
///   A template Job that is already finished keeps its status.
/// - CronJob: `active` concatenated, latest `lastScheduleTime` and `lastSuccessfulTime`.
/// - Service (LoadBalancer) and Ingress: all load-balancer ingress points, a missing hostname
///   set to the cluster's name so users can tell where each comes from. `None` for a Service
///   that is not a LoadBalancer.
/// - Pod: the worst phase (Failed, Pending, Running, Succeeded; a cluster yet to report counts
///   as Pending) and each container's `ready` and `state`; `None` with no clusters yet.
/// - PersistentVolume: the worst phase (Failed, Pending, Available, Bound, Released).
/// - PersistentVolumeClaim: `Lost` if lost anywhere, else the last phase that is not `Bound`,
///   else `Bound`.
/// - PodDisruptionBudget: counters summed, `disruptedPods` keyed `<cluster>/<pod>`.
/// - Every other kind (custom resources, HorizontalPodAutoscaler, ConfigMap…): into the
///   template's existing status, `Ready` (True only when every cluster has it True, False when
///   any has it False, else Unknown), `Reconciling` and `Stalled` (each True when any cluster
///   has it True, else False), one entry per type and only for types some cluster reports,
///   replacing the template's entries of those types (its other conditions kept, these after
///   them); each takes its reason from the first cluster (by name) that decided it, or
///   `NotReported`, and its message names the clusters. Plus the generation rule when the
///   template has `metadata.generation`. `None` when no cluster reports any of the three
///   types, the template's status has none of them either, and the generation does not
///   advance.
pub fn aggregate_status(
    template: &Value,
    items: &[AggregatedStatusItem],
    duplicated: bool,
) -> Option<Value> {
    let mut items: Vec<&AggregatedStatusItem> = items.iter().collect();
    items.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    let old = template
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let status = match Kind::of_object(template) {
        Kind::Deployment => {
            let mut status = counters(old, &items, DEPLOYMENT_COUNTERS, duplicated);
            status.insert(
                "conditions".to_owned(),
                Value::Array(deployment_conditions(&items)),
            );
            advance_observed_generation(template, &mut status, &items);
            status
        }
        Kind::StatefulSet => {
            let mut status = counters(old, &items, STATEFUL_SET_COUNTERS, duplicated);
            stateful_set_revisions(&mut status, &items);
            advance_observed_generation(template, &mut status, &items);
            status
        }
        Kind::ReplicaSet => {
            let mut status = counters(old, &items, REPLICA_SET_COUNTERS, duplicated);
            advance_observed_generation(template, &mut status, &items);
            status
        }
        Kind::DaemonSet => {
            let mut status = counters(old, &items, DAEMON_SET_COUNTERS, false);
            advance_observed_generation(template, &mut status, &items);
            status
        }
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
        Kind::HorizontalPodAutoscaler | Kind::Other => generic(template, old, &items)?,
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

/// Writes `fields` into `status`: summed over every reported status, or, when `least`, those
/// of the least progressed cluster ([`least_progressed`]; zeros when it has not reported).
fn counters(
    mut status: Map<String, Value>,
    items: &[&AggregatedStatusItem],
    fields: &[&str],
    least: bool,
) -> Map<String, Value> {
    let least = least
        .then(|| least_progressed(items))
        .map(|item| item.and_then(|item| reflected(item)));
    for field in fields {
        let value = match least {
            Some(reported) => reported.map_or(0, |s| int(s, field)),
            None => items
                .iter()
                .filter_map(|item| reflected(item))
                .fold(0i64, |sum, s| sum.saturating_add(int(s, field))),
        };
        status.insert((*field).to_owned(), Value::from(value));
    }
    status
}

/// The least progressed cluster of a duplicated workload: one that has not reported (the first
/// by name), else the lowest `(updatedReplicas, availableReplicas, readyReplicas)`, then the
/// most `unavailableReplicas`, then the most `replicas`, then the first by name.
fn least_progressed<'a>(items: &[&'a AggregatedStatusItem]) -> Option<&'a AggregatedStatusItem> {
    type Key<'k> = (bool, i64, i64, i64, Reverse<i64>, Reverse<i64>, &'k str);
    let key = |item: &'a AggregatedStatusItem| -> Key<'a> {
        let name = item.cluster_name.as_str();
        match reflected(item) {
            None => (false, 0, 0, 0, Reverse(0), Reverse(0), name),
            Some(s) => (
                true,
                int(s, "updatedReplicas"),
                int(s, "availableReplicas"),
                int(s, "readyReplicas"),
                Reverse(int(s, "unavailableReplicas")),
                Reverse(int(s, "replicas")),
                name,
            ),
        }
    };
    items.iter().copied().min_by_key(|item| key(item))
}

/// The generation rule (module notes): sets `observedGeneration` to the template's generation
/// when every cluster applied and observed it; otherwise leaves `status` as it is. Returns
/// whether it set it.
fn advance_observed_generation(
    template: &Value,
    status: &mut Map<String, Value>,
    items: &[&AggregatedStatusItem],
) -> bool {
    let Some(generation) = int_at(template, &["metadata", "generation"]) else {
        return false;
    };
    let caught_up = !items.is_empty()
        && items.iter().all(|item| {
            reflected(item).is_some_and(|s| {
                int_at(s, &["observedGeneration"])
                    .is_some_and(|observed| observed >= int(s, "generation"))
                    && int_at(s, &["resourceTemplateGeneration"]) == Some(generation)
            })
        });
    if caught_up {
        status.insert("observedGeneration".to_owned(), Value::from(generation));
    }
    caught_up
}

/// The condition of `kind` a cluster reported, if any.
fn condition_of<'a>(item: &'a AggregatedStatusItem, kind: &str) -> Option<&'a Value> {
    array_at(reflected(item)?, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == Some(kind))
}

fn condition_status(condition: Option<&Value>) -> &str {
    condition
        .and_then(|c| str_at(c, &["status"]))
        .unwrap_or("Unknown")
}

/// One aggregated condition. Its `lastUpdateTime` and `lastTransitionTime` are the latest among
/// the conditions in `decided` (those of the clusters that decided it), or among `all` the
/// clusters' conditions of that type when those have none.
fn aggregated_condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    decided: &[&Value],
    all: &[&Value],
) -> Value {
    let mut condition = json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
    });
    for field in ["lastUpdateTime", "lastTransitionTime"] {
        let time = latest(decided.iter().filter_map(|c| str_at(c, &[field])))
            .or_else(|| latest(all.iter().filter_map(|c| str_at(c, &[field]))));
        if let Some(time) = time {
            condition[field] = Value::from(time);
        }
    }
    condition
}

/// The clusters of `group`, by name, for messages (`none` when there are none).
fn names(group: &[(&str, Option<&Value>)]) -> String {
    if group.is_empty() {
        return "none".to_owned();
    }
    group
        .iter()
        .map(|(cluster, _)| *cluster)
        .collect::<Vec<_>>()
        .join(", ")
}

fn present<'a>(group: &[(&str, Option<&'a Value>)]) -> Vec<&'a Value> {
    group.iter().filter_map(|(_, c)| *c).collect()
}

/// The clusters of `group` whose condition passes `keep`.
fn select<'a>(
    group: &[(&'a str, Option<&'a Value>)],
    keep: impl Fn(Option<&Value>) -> bool,
) -> Vec<(&'a str, Option<&'a Value>)> {
    group.iter().filter(|(_, c)| keep(*c)).copied().collect()
}

/// The aggregated Deployment conditions, `Available` then `Progressing`.
fn deployment_conditions(items: &[&AggregatedStatusItem]) -> Vec<Value> {
    let of = |kind: &str| -> Vec<(&str, Option<&Value>)> {
        items
            .iter()
            .map(|item| (item.cluster_name.as_str(), condition_of(item, kind)))
            .collect()
    };
    let available = of("Available");
    let all = present(&available);
    let unavailable = select(&available, |c| condition_status(c) == "False");
    let unknown = select(&available, |c| condition_status(c) != "True");
    let available = if !unavailable.is_empty() {
        aggregated_condition(
            "Available",
            "False",
            reasons::MINIMUM_REPLICAS_UNAVAILABLE,
            format!(
                "Deployment does not have minimum availability in member clusters: {}",
                names(&unavailable)
            ),
            &present(&unavailable),
            &all,
        )
    } else if !items.is_empty() && unknown.is_empty() {
        aggregated_condition(
            "Available",
            "True",
            reasons::MINIMUM_REPLICAS_AVAILABLE,
            format!(
                "Deployment has minimum availability in every member cluster: {}",
                names(&available)
            ),
            &all,
            &all,
        )
    } else {
        aggregated_condition(
            "Available",
            "Unknown",
            reasons::NOT_REPORTED,
            format!(
                "Availability not reported by member clusters: {}",
                names(&unknown)
            ),
            &present(&unknown),
            &all,
        )
    };

    let progressing = of("Progressing");
    let all = present(&progressing);
    let reason_is =
        |c: Option<&Value>, reason: &str| c.and_then(|c| str_at(c, &["reason"])) == Some(reason);
    let exceeded = select(&progressing, |c| {
        reason_is(c, reasons::PROGRESS_DEADLINE_EXCEEDED)
    });
    let rolling = select(&progressing, |c| {
        !(reason_is(c, reasons::NEW_REPLICA_SET_AVAILABLE) && condition_status(c) == "True")
    });
    let progressing = if !exceeded.is_empty() {
        aggregated_condition(
            "Progressing",
            "False",
            reasons::PROGRESS_DEADLINE_EXCEEDED,
            format!(
                "Progress deadline exceeded in member clusters: {}",
                names(&exceeded)
            ),
            &present(&exceeded),
            &all,
        )
    } else if !items.is_empty() && rolling.is_empty() {
        aggregated_condition(
            "Progressing",
            "True",
            reasons::NEW_REPLICA_SET_AVAILABLE,
            format!(
                "New ReplicaSet available in every member cluster: {}",
                names(&progressing)
            ),
            &all,
            &all,
        )
    } else {
        aggregated_condition(
            "Progressing",
            "True",
            reasons::REPLICA_SET_UPDATED,
            format!(
                "Rollout in progress in member clusters: {}",
                names(&rolling)
            ),
            &present(&rolling),
            &all,
        )
    };
    vec![available, progressing]
}

/// Sets the template's `currentRevision` and `updateRevision` as [`aggregate_status`] says.
fn stateful_set_revisions(status: &mut Map<String, Value>, items: &[&AggregatedStatusItem]) {
    let rolled_out = items.iter().all(|item| {
        revisions(item).is_some_and(|(current, update)| !current.is_empty() && current == update)
    });
    let (current, update) = match items.first() {
        Some(first) if rolled_out => {
            let revision = revisions(first).map(|(current, _)| current);
            (revision, revision)
        }
        _ => items
            .iter()
            .filter_map(|item| revisions(item))
            .find(|(current, update)| current != update)
            .map_or((None, None), |(current, update)| {
                (Some(current), Some(update))
            }),
    };
    set_or_remove(status, "currentRevision", current.filter(|r| !r.is_empty()));
    set_or_remove(status, "updateRevision", update.filter(|r| !r.is_empty()));
}

/// A cluster's reported `(currentRevision, updateRevision)`, absent ones empty.
fn revisions(item: &AggregatedStatusItem) -> Option<(&str, &str)> {
    reflected(item).map(|s| {
        (
            str_at(s, &["currentRevision"]).unwrap_or_default(),
            str_at(s, &["updateRevision"]).unwrap_or_default(),
        )
    })
}

/// One aggregated condition of a kind without a specific rule, or `None` when no cluster
/// reports `kind`.
fn generic_condition(kind: &str, items: &[&AggregatedStatusItem]) -> Option<Value> {
    let reported: Vec<(&str, Option<&Value>)> = items
        .iter()
        .map(|item| (item.cluster_name.as_str(), condition_of(item, kind)))
        .collect();
    let all = present(&reported);
    if all.is_empty() {
        return None;
    }
    let with = |status: &str| select(&reported, |c| condition_status(c) == status);
    let (status, decided) = if kind == "Ready" {
        let not_ready = with("False");
        if !not_ready.is_empty() {
            ("False", not_ready)
        } else if with("True").len() == reported.len() {
            ("True", reported.clone())
        } else {
            (
                "Unknown",
                select(&reported, |c| condition_status(c) != "True"),
            )
        }
    } else {
        let set = with("True");
        if set.is_empty() {
            ("False", reported.clone())
        } else {
            ("True", set)
        }
    };
    let reason = decided
        .iter()
        .filter_map(|(_, c)| c.and_then(|c| str_at(c, &["reason"])))
        .find(|reason| !reason.is_empty())
        .unwrap_or(reasons::NOT_REPORTED);
    let message = decided
        .iter()
        .map(|(cluster, c)| match c {
            None => format!("{cluster}: not reported"),
            Some(c) => match str_at(c, &["message"]).filter(|m| !m.is_empty()) {
                Some(message) => format!("{cluster}: {message}"),
                None => (*cluster).to_owned(),
            },
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(aggregated_condition(
        kind,
        status,
        reason,
        message,
        &present(&decided),
        &all,
    ))
}

/// The aggregate of a kind without a specific rule, as [`aggregate_status`] says.
fn generic(
    template: &Value,
    mut status: Map<String, Value>,
    items: &[&AggregatedStatusItem],
) -> Option<Map<String, Value>> {
    let is_generic =
        |c: &Value| str_at(c, &["type"]).is_some_and(|kind| GENERIC_CONDITIONS.contains(&kind));
    let old_conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let had_generic = old_conditions.iter().any(is_generic);
    let aggregated: Vec<Value> = GENERIC_CONDITIONS
        .iter()
        .filter_map(|kind| generic_condition(kind, items))
        .collect();
    let advanced = advance_observed_generation(template, &mut status, items);
    if aggregated.is_empty() && !had_generic && !advanced {
        return None;
    }
    if had_generic || !aggregated.is_empty() {
        let conditions: Vec<Value> = old_conditions
            .into_iter()
            .filter(|c| !is_generic(c))
            .chain(aggregated)
            .collect();
        if conditions.is_empty() {
            status.remove("conditions");
        } else {
            status.insert("conditions".to_owned(), Value::Array(conditions));
        }
    }
    Some(status)
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

    /// `object` with the template generation stamp the binding controller puts on members.
    fn stamped(mut object: Value, generation: &str) -> Value {
        object["metadata"]["annotations"] = json!({RESOURCE_TEMPLATE_GENERATION: generation});
        object
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
                Some(
                    json!({"replicas": 2, "currentRevision": "r1", "observedGeneration": 3,
                            "generation": 4}),
                ),
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
                Some(json!({"active": 1, "startTime": "2026-01-01T00:00:00Z", "generation": 4})),
            ),
            (
                "loadbalancer service",
                object(
                    "v1",
                    "Service",
                    json!({"type": "LoadBalancer"}),
                    json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}, "conditions": []}),
                ),
                Some(json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]},
                            "generation": 4})),
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
                Some(json!({"currentReplicas": 2, "desiredReplicas": 3, "generation": 4})),
            ),
            (
                "crd whole status",
                object(
                    "example.com/v1",
                    "Widget",
                    json!({}),
                    json!({"anything": {"nested": true}}),
                ),
                Some(json!({"anything": {"nested": true}, "generation": 4})),
            ),
            (
                "stamped statefulset",
                stamped(
                    object(
                        "apps/v1",
                        "StatefulSet",
                        json!({}),
                        json!({"replicas": 2, "currentRevision": "db-1",
                               "updateRevision": "db-2", "observedGeneration": 4,
                               "conditions": [], "collisionCount": 0}),
                    ),
                    "9",
                ),
                Some(
                    json!({"replicas": 2, "currentRevision": "db-1", "updateRevision": "db-2",
                            "observedGeneration": 4, "conditions": [], "generation": 4,
                            "resourceTemplateGeneration": 9}),
                ),
            ),
            (
                "stamped custom resource",
                stamped(
                    object(
                        "example.com/v1",
                        "Widget",
                        json!({}),
                        json!({"observedGeneration": 4,
                               "conditions": [{"type": "Ready", "status": "True"}]}),
                    ),
                    "12",
                ),
                Some(json!({"observedGeneration": 4, "generation": 4,
                            "resourceTemplateGeneration": 12,
                            "conditions": [{"type": "Ready", "status": "True"}]})),
            ),
            (
                "unreadable stamp is left out",
                stamped(
                    object(
                        "apps/v1",
                        "Deployment",
                        json!({}),
                        json!({"observedGeneration": 4}),
                    ),
                    "seven",
                ),
                Some(json!({"observedGeneration": 4, "generation": 4})),
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
    fn divided_deployment_counters_of_two_clusters_add_up() {
        let template = deployment_template(
            7,
            json!({"collisionCount": 1, "conditions": [{"type": "Replaced"}]}),
        );
        let items = [
            item(
                "b",
                Some(
                    json!({"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                            "availableReplicas": 2, "observedGeneration": 3, "generation": 3,
                            "resourceTemplateGeneration": 7}),
                ),
            ),
            item(
                "a",
                Some(
                    json!({"replicas": 3, "readyReplicas": 1, "updatedReplicas": 3,
                            "availableReplicas": 1, "unavailableReplicas": 2,
                            "observedGeneration": 5, "generation": 5,
                            "resourceTemplateGeneration": 7}),
                ),
            ),
        ];
        assert_eq!(
            aggregate_status(&template, &items, false),
            Some(json!({
                "collisionCount": 1,
                "conditions": [
                    {"type": "Available", "status": "Unknown", "reason": "NotReported",
                     "message": "Availability not reported by member clusters: a, b"},
                    {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                     "message": "Rollout in progress in member clusters: a, b"},
                ],
                "replicas": 5, "readyReplicas": 3, "updatedReplicas": 5,
                "availableReplicas": 3, "unavailableReplicas": 2, "observedGeneration": 7,
            }))
        );
    }

    /// A member Deployment's reflected status: `[replicas, updated, ready, available,
    /// unavailable]`, caught up on template generation 7.
    fn member(counts: [i64; 5]) -> Value {
        let [replicas, updated, ready, available, unavailable] = counts;
        json!({"replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
               "availableReplicas": available, "unavailableReplicas": unavailable,
               "observedGeneration": 2, "generation": 2, "resourceTemplateGeneration": 7})
    }

    #[test]
    fn duplicated_counters_are_the_least_progressed_clusters() {
        let template = deployment_template(7, json!({}));
        let done = member([5, 5, 5, 5, 0]);
        let cases = [
            (
                "finished rollout reads spec.replicas, not a multiple",
                vec![item("a", Some(done.clone())), item("b", Some(done.clone()))],
                [5, 5, 5, 5, 0],
            ),
            (
                "fewest updated",
                vec![
                    item("a", Some(done.clone())),
                    item("b", Some(member([6, 2, 5, 5, 1]))),
                ],
                [6, 2, 5, 5, 1],
            ),
            (
                "then fewest available",
                vec![
                    item("a", Some(member([5, 5, 5, 3, 2]))),
                    item("b", Some(member([5, 5, 5, 4, 1]))),
                ],
                [5, 5, 5, 3, 2],
            ),
            (
                "then most unavailable",
                vec![
                    item("a", Some(member([5, 5, 5, 5, 0]))),
                    item("b", Some(member([5, 5, 5, 5, 1]))),
                ],
                [5, 5, 5, 5, 1],
            ),
            (
                "then most replicas (old pods terminating)",
                vec![
                    item("a", Some(member([6, 5, 5, 5, 0]))),
                    item("b", Some(done.clone())),
                ],
                [6, 5, 5, 5, 0],
            ),
            (
                "a cluster that has not reported is least progressed",
                vec![item("a", Some(done.clone())), item("b", None)],
                [0, 0, 0, 0, 0],
            ),
        ];
        for (name, items, [replicas, updated, ready, available, unavailable]) in cases {
            let status = aggregate_status(&template, &items, true).unwrap_or_default();
            for (field, want) in [
                ("replicas", replicas),
                ("updatedReplicas", updated),
                ("readyReplicas", ready),
                ("availableReplicas", available),
                ("unavailableReplicas", unavailable),
            ] {
                assert_eq!(status[field], json!(want), "{name}: {field}");
            }
        }

        // Ties go to the first cluster by name, whatever the input order.
        let tied = [
            item("b", Some(member([5, 4, 5, 5, 0]))),
            item("a", Some(member([5, 4, 5, 5, 0]))),
        ];
        assert_eq!(
            least_progressed(&tied.iter().collect::<Vec<_>>()),
            Some(&tied[1])
        );

        // DaemonSets are summed even when duplicated.
        let daemon_set = object("apps/v1", "DaemonSet", json!({}), json!({}));
        let items = [
            item(
                "a",
                Some(json!({"desiredNumberScheduled": 2, "numberReady": 2})),
            ),
            item(
                "b",
                Some(json!({"desiredNumberScheduled": 3, "numberReady": 1})),
            ),
        ];
        let status = aggregate_status(&daemon_set, &items, true).unwrap_or_default();
        assert_eq!(status["desiredNumberScheduled"], json!(5));
        assert_eq!(status["numberReady"], json!(3));
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
        let no_stamp = [item(
            "a",
            Some(json!({"observedGeneration": 5, "generation": 5})),
        )];
        let member_lagging = [item(
            "a",
            Some(json!({"observedGeneration": 4, "generation": 5,
                        "resourceTemplateGeneration": 7})),
        )];
        let unreachable = [
            item(
                "a",
                Some(json!({"observedGeneration": 5, "generation": 5,
                            "resourceTemplateGeneration": 7})),
            ),
            AggregatedStatusItem {
                applied: false,
                applied_message: Some("cluster b is not reachable".to_owned()),
                ..item("b", None)
            },
        ];
        for (name, items) in [
            ("lagging", &lagging[..]),
            ("missing", &missing[..]),
            ("stale manifest", &stale_manifest[..]),
            ("no stamp", &no_stamp[..]),
            ("member controller lagging", &member_lagging[..]),
            ("unreachable", &unreachable[..]),
            ("no clusters", &[]),
        ] {
            for duplicated in [false, true] {
                let status = aggregate_status(&template, items, duplicated).unwrap_or_default();
                assert_eq!(status["observedGeneration"], json!(6), "{name}");
            }
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
        let status = aggregate_status(&template, &items, false).unwrap_or_default();
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
                    Some(json!({field: 2, "observedGeneration": 1, "generation": 1,
                                "resourceTemplateGeneration": 4})),
                ),
                item(
                    "b",
                    Some(json!({field: 3, "observedGeneration": 1, "generation": 1,
                                "resourceTemplateGeneration": 4})),
                ),
            ];
            let status = aggregate_status(&template, &items, false).unwrap_or_default();
            assert_eq!(status[field], json!(5), "{kind}");
            assert_eq!(status["observedGeneration"], json!(4), "{kind}");
        }
    }

    /// A condition as a member controller writes it, times `T<hour>`.
    fn cond(kind: &str, status: &str, reason: &str, hour: u32) -> Value {
        let time = format!("2026-01-01T{hour:02}:00:00Z");
        json!({"type": kind, "status": status, "reason": reason, "message": format!("{reason}."),
               "lastUpdateTime": time, "lastTransitionTime": time})
    }

    fn with_conditions(conditions: Vec<Value>) -> Option<Value> {
        Some(json!({"conditions": conditions}))
    }

    #[test]
    fn deployment_conditions_are_the_worst_across_clusters() {
        let available = cond("Available", "True", "MinimumReplicasAvailable", 1);
        let unavailable = cond("Available", "False", "MinimumReplicasUnavailable", 2);
        let done = cond("Progressing", "True", "NewReplicaSetAvailable", 3);
        let rolling = cond("Progressing", "True", "ReplicaSetUpdated", 4);
        let exceeded = cond("Progressing", "False", "ProgressDeadlineExceeded", 5);
        let cases = [
            (
                "every cluster done",
                vec![
                    with_conditions(vec![available.clone(), done.clone()]),
                    with_conditions(vec![available.clone(), done.clone()]),
                ],
                ("True", "MinimumReplicasAvailable"),
                ("True", "NewReplicaSetAvailable"),
            ),
            (
                "one cluster still rolling out",
                vec![
                    with_conditions(vec![available.clone(), done.clone()]),
                    with_conditions(vec![available.clone(), rolling.clone()]),
                ],
                ("True", "MinimumReplicasAvailable"),
                ("True", "ReplicaSetUpdated"),
            ),
            (
                "one cluster past its deadline",
                vec![
                    with_conditions(vec![unavailable.clone(), exceeded.clone()]),
                    with_conditions(vec![available.clone(), rolling.clone()]),
                ],
                ("False", "MinimumReplicasUnavailable"),
                ("False", "ProgressDeadlineExceeded"),
            ),
            (
                "a cluster without conditions",
                vec![
                    with_conditions(vec![available.clone(), done.clone()]),
                    with_conditions(vec![]),
                ],
                ("Unknown", "NotReported"),
                ("True", "ReplicaSetUpdated"),
            ),
            (
                "a cluster that never reported",
                vec![with_conditions(vec![available.clone(), done.clone()]), None],
                ("Unknown", "NotReported"),
                ("True", "ReplicaSetUpdated"),
            ),
            (
                "False beats Unknown",
                vec![
                    with_conditions(vec![unavailable.clone(), done.clone()]),
                    None,
                ],
                ("False", "MinimumReplicasUnavailable"),
                ("True", "ReplicaSetUpdated"),
            ),
            (
                "no clusters",
                vec![],
                ("Unknown", "NotReported"),
                ("True", "ReplicaSetUpdated"),
            ),
        ];
        let template = deployment_template(7, json!({}));
        for (name, statuses, want_available, want_progressing) in cases {
            let items: Vec<AggregatedStatusItem> = statuses
                .into_iter()
                .enumerate()
                .map(|(i, status)| item(&format!("c{i}"), status))
                .collect();
            let status = aggregate_status(&template, &items, true).unwrap_or_default();
            let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
            let got: Vec<(&str, &str, &str)> = conditions
                .iter()
                .map(|c| {
                    (
                        str_at(c, &["type"]).unwrap_or_default(),
                        str_at(c, &["status"]).unwrap_or_default(),
                        str_at(c, &["reason"]).unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    ("Available", want_available.0, want_available.1),
                    ("Progressing", want_progressing.0, want_progressing.1),
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn deployment_conditions_name_the_clusters_and_keep_member_times() {
        let template = deployment_template(7, json!({}));
        let items = [
            item(
                "west",
                with_conditions(vec![
                    cond("Available", "True", "MinimumReplicasAvailable", 1),
                    cond("Progressing", "True", "ReplicaSetUpdated", 6),
                ]),
            ),
            item(
                "east",
                with_conditions(vec![
                    cond("Available", "True", "MinimumReplicasAvailable", 2),
                    cond("Progressing", "True", "NewReplicaSetAvailable", 9),
                ]),
            ),
        ];
        let status = aggregate_status(&template, &items, true).unwrap_or_default();
        assert_eq!(
            status["conditions"],
            json!([
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability in every member cluster: east, west",
                 "lastUpdateTime": "2026-01-01T02:00:00Z",
                 "lastTransitionTime": "2026-01-01T02:00:00Z"},
                {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                 "message": "Rollout in progress in member clusters: west",
                 "lastUpdateTime": "2026-01-01T06:00:00Z",
                 "lastTransitionTime": "2026-01-01T06:00:00Z"},
            ])
        );
        // Equal inputs, in any order, give byte-equal output.
        let reversed = [items[1].clone(), items[0].clone()];
        let again = aggregate_status(&template, &reversed, true).unwrap_or_default();
        assert_eq!(again.to_string(), status.to_string());
    }

    #[test]
    fn statefulset_revisions_match_only_when_every_cluster_rolled_out() {
        let template = object("apps/v1", "StatefulSet", json!({}), json!({}));
        let revisions = |current: &str, update: &str| {
            Some(json!({"currentRevision": current, "updateRevision": update}))
        };
        let cases = [
            (
                "all rolled out",
                vec![
                    ("a", revisions("db-2", "db-2")),
                    ("b", revisions("db-2", "db-2")),
                ],
                (Some("db-2"), Some("db-2")),
            ),
            (
                "one rolling",
                vec![
                    ("a", revisions("db-2", "db-2")),
                    ("b", revisions("db-1", "db-2")),
                ],
                (Some("db-1"), Some("db-2")),
            ),
            (
                "the first rolling by name",
                vec![
                    ("c", revisions("db-1", "db-3")),
                    ("b", revisions("db-2", "db-3")),
                ],
                (Some("db-2"), Some("db-3")),
            ),
            (
                "one not reported",
                vec![("a", revisions("db-2", "db-2")), ("b", None)],
                (None, None),
            ),
            (
                "no revisions yet",
                vec![("a", Some(json!({})))],
                (None, None),
            ),
        ];
        for (name, clusters, (current, update)) in cases {
            let items: Vec<AggregatedStatusItem> = clusters
                .into_iter()
                .map(|(cluster, status)| item(cluster, status))
                .collect();
            let status = aggregate_status(&template, &items, true).unwrap_or_default();
            assert_eq!(
                status.get("currentRevision").and_then(Value::as_str),
                current,
                "{name}"
            );
            assert_eq!(
                status.get("updateRevision").and_then(Value::as_str),
                update,
                "{name}"
            );
        }
    }

    fn widget(generation: i64, status: Value) -> Value {
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns", "generation": generation},
            "spec": {}, "status": status,
        })
    }

    #[test]
    fn custom_resource_conditions_are_the_worst_across_clusters() {
        let ready = cond("Ready", "True", "Succeeded", 1);
        let not_ready = cond("Ready", "False", "DependencyNotReady", 2);
        let reconciling = cond("Reconciling", "True", "Progressing", 3);
        let settled = cond("Reconciling", "False", "Succeeded", 4);
        let stalled = cond("Stalled", "True", "InvalidSpec", 5);
        type Want = &'static [(&'static str, &'static str, &'static str)];
        let cases: [(&str, Vec<Option<Value>>, Want); 6] = [
            (
                "all ready",
                vec![
                    with_conditions(vec![ready.clone()]),
                    with_conditions(vec![ready.clone()]),
                ],
                &[("Ready", "True", "Succeeded")],
            ),
            (
                "one not ready",
                vec![
                    with_conditions(vec![ready.clone()]),
                    with_conditions(vec![not_ready.clone(), reconciling.clone()]),
                ],
                &[
                    ("Ready", "False", "DependencyNotReady"),
                    ("Reconciling", "True", "Progressing"),
                ],
            ),
            (
                "one without Ready",
                vec![
                    with_conditions(vec![ready.clone(), settled.clone()]),
                    with_conditions(vec![]),
                ],
                &[
                    ("Ready", "Unknown", "NotReported"),
                    ("Reconciling", "False", "Succeeded"),
                ],
            ),
            (
                "never reported",
                vec![with_conditions(vec![ready.clone()]), None],
                &[("Ready", "Unknown", "NotReported")],
            ),
            (
                "stalled anywhere",
                vec![
                    with_conditions(vec![ready.clone()]),
                    with_conditions(vec![not_ready.clone(), stalled.clone()]),
                ],
                &[
                    ("Ready", "False", "DependencyNotReady"),
                    ("Stalled", "True", "InvalidSpec"),
                ],
            ),
            (
                "other condition types are not aggregated",
                vec![with_conditions(vec![cond("Synced", "True", "Synced", 1)])],
                &[],
            ),
        ];
        let template = widget(
            3,
            json!({"phase": "kept", "conditions": [
                {"type": "Kept", "status": "True"},
                {"type": "Ready", "status": "True", "reason": "Stale"},
            ]}),
        );
        for (name, statuses, want) in cases {
            let items: Vec<AggregatedStatusItem> = statuses
                .into_iter()
                .enumerate()
                .map(|(i, status)| item(&format!("c{i}"), status))
                .collect();
            let status = aggregate_status(&template, &items, true).unwrap_or_default();
            assert_eq!(status["phase"], json!("kept"), "{name}");
            let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                conditions[0],
                json!({"type": "Kept", "status": "True"}),
                "{name}"
            );
            let got: Vec<(&str, &str, &str)> = conditions[1..]
                .iter()
                .map(|c| {
                    (
                        str_at(c, &["type"]).unwrap_or_default(),
                        str_at(c, &["status"]).unwrap_or_default(),
                        str_at(c, &["reason"]).unwrap_or_default(),
                    )
                })
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn custom_resource_condition_names_the_clusters_and_keeps_member_times() {
        let items = [
            item(
                "b",
                with_conditions(vec![cond("Ready", "False", "Waiting", 7)]),
            ),
            item(
                "a",
                with_conditions(vec![cond("Ready", "True", "Succeeded", 8)]),
            ),
            item("c", None),
        ];
        let status = aggregate_status(&widget(3, json!({})), &items, false).unwrap_or_default();
        assert_eq!(
            status,
            json!({"conditions": [
                {"type": "Ready", "status": "False", "reason": "Waiting",
                 "message": "b: Waiting.",
                 "lastUpdateTime": "2026-01-01T07:00:00Z",
                 "lastTransitionTime": "2026-01-01T07:00:00Z"},
            ]})
        );
    }

    #[test]
    fn custom_resource_observed_generation_follows_the_generation_rule() {
        let caught_up = |stamp: i64| {
            Some(json!({"observedGeneration": 2, "generation": 2,
                        "resourceTemplateGeneration": stamp}))
        };
        let template = widget(3, json!({"observedGeneration": 2}));
        let items = [item("a", caught_up(3)), item("b", caught_up(3))];
        assert_eq!(
            aggregate_status(&template, &items, true),
            Some(json!({"observedGeneration": 3}))
        );
        // A cluster still on the previous template generation: nothing to write.
        let behind = [item("a", caught_up(3)), item("b", caught_up(2))];
        assert_eq!(aggregate_status(&template, &behind, true), None);
        // Conditions that no cluster reports any more are dropped from the template.
        let stale = widget(
            3,
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        );
        assert_eq!(aggregate_status(&stale, &behind, true), Some(json!({})));
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
        let status = aggregate_status(&job_template(json!({})), &items, false);
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
        let status =
            aggregate_status(&job_template(json!({})), &running, false).unwrap_or_default();
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
        let status = aggregate_status(&job_template(json!({})), &items, false).unwrap_or_default();
        assert_eq!(
            status["conditions"],
            json!([{"type": "Failed", "status": "True", "reason": "JobFailed",
                    "message": "Job executed failed in member clusters: b",
                    "lastTransitionTime": "2026-01-01T01:00:00Z"}])
        );
        let finished = aggregate_status(&job_template(status.clone()), &[item("a", None)], false);
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
            aggregate_status(&template, &items, false),
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
        assert_eq!(
            aggregate_status(&service, &items, false),
            Some(expect.clone())
        );
        let ingress = object("networking.k8s.io/v1", "Ingress", json!({}), json!({}));
        assert_eq!(aggregate_status(&ingress, &items, false), Some(expect));
        let cluster_ip = object("v1", "Service", json!({"type": "ClusterIP"}), json!({}));
        assert_eq!(aggregate_status(&cluster_ip, &items, false), None);
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
            let status = aggregate_status(&template, &items, false).unwrap_or_default();
            assert_eq!(status["phase"], json!(expect), "{phases:?}");
            assert_eq!(
                status["containerStatuses"][0],
                json!({"ready": true, "state": {"running": {}}})
            );
        }
        assert_eq!(aggregate_status(&template, &[], false), None);
    }

    #[test]
    fn volume_phases_aggregate() {
        let pv = object("v1", "PersistentVolume", json!({}), json!({}));
        let items = [
            item("a", Some(json!({"phase": "Bound"}))),
            item("b", Some(json!({"phase": "Available"}))),
        ];
        assert_eq!(
            aggregate_status(&pv, &items, false),
            Some(json!({"phase": "Available"}))
        );
        let pvc = object("v1", "PersistentVolumeClaim", json!({}), json!({}));
        assert_eq!(
            aggregate_status(&pvc, &items[..1], false),
            Some(json!({"phase": "Bound"}))
        );
        let lost = [
            item("a", Some(json!({"phase": "Pending"}))),
            item("b", Some(json!({"phase": "Lost"}))),
        ];
        assert_eq!(
            aggregate_status(&pvc, &lost, false),
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
            aggregate_status(&pdb, &items, false),
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
            assert_eq!(
                aggregate_status(&template, &items, false),
                None,
                "{template}"
            );
        }
    }
}
