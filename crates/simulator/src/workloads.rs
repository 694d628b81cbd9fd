//! The workload controllers kube-controller-manager would run, for a member that has none (on
//! only with [`crate::Options::workload_controllers`]): [`deployment`] (through one ReplicaSet
//! per pod-template hash, as kube does, so `kubectl get rs` and rollbacks look familiar),
//! [`replica_set`], [`stateful_set`], [`daemon_set`] and [`job`], each creating and deleting
//! the pods it controls (ownerReferences with `controller: true`) and writing the status
//! kube's controller writes, through `/status`. Their children's garbage collection is the
//! API server's (ownerReferences), as on a real cluster.
//!
//! This module holds what they share: pods from templates (placed on a node when created, so a
//! member without `pods/binding` still gets running pods), deterministic names that turn a
//! duplicate create into `AlreadyExists`, the order kube deletes surplus pods in, selectors,
//! availability and `maxSurge`/`maxUnavailable` arithmetic.

pub(crate) mod daemon_set;
pub(crate) mod deployment;
pub(crate) mod job;
pub(crate) mod replica_set;
pub(crate) mod stateful_set;

use std::{
    cmp::Reverse,
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::{
    api::core::v1::{Pod, PodTemplateSpec},
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference},
        util::intstr::IntOrString,
    },
};
use kube::{Api, Resource, ResourceExt, api::PostParams, runtime::reflector::ObjectRef};
use tracing::debug;

use crate::{
    FIELD_MANAGER,
    error::{Error, Result},
    kubelet::{self, is_finished, is_ready, ready_since},
    schedule::{Constraints, Fit, requests},
    state::{Sim, controller_of, lock},
    status,
};

/// The most pods one pass of a controller creates; it comes back at once for the rest.
pub(crate) const BURST: usize = 100;

/// How many creates or deletes a controller has in flight at once.
const IN_FLIGHT: usize = 8;

/// The kinds whose children the simulator collects, as `(apiVersion, kind)`.
const MANAGED: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
];

/// Whether a pod is controlled by a kind whose pods the simulator creates.
pub(crate) fn is_managed_child(pod: &Pod) -> bool {
    controller_of(&pod.metadata).is_some_and(|o| {
        MANAGED
            .iter()
            .any(|(v, k)| o.api_version == *v && o.kind == *k && *k != "Deployment")
    })
}

/// `namespace/name` of an object.
pub(crate) fn name_of<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

/// The ownerReference a controller puts on its children.
pub(crate) fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether a pod still counts as a replica: not finished, not being deleted.
pub(crate) fn is_active(sim: &Sim, pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && !is_finished(pod)
        && !pod
            .uid()
            .is_some_and(|uid| lock(&sim.deleting).contains(&uid))
}

/// Whether a pod is being deleted.
pub(crate) fn is_terminating(sim: &Sim, pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        || pod
            .uid()
            .is_some_and(|uid| lock(&sim.deleting).contains(&uid))
}

/// Whether a pod is available (Ready for `min_ready` seconds), and if it is Ready but not yet
/// available, how long until it is.
pub(crate) fn availability(pod: &Pod, min_ready: i32) -> (bool, Option<Duration>) {
    let Some(since) = ready_since(pod) else {
        return (false, None);
    };
    let min_ready = Duration::from_secs(u64::try_from(min_ready.max(0)).unwrap_or(0));
    let left = status::remaining(&since, min_ready);
    if left.is_zero() {
        (true, None)
    } else {
        (false, Some(left))
    }
}

/// Counts of a set of pods, as the status fields want them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) pods: i32,
    pub(crate) ready: i32,
    pub(crate) available: i32,
    /// The soonest a Ready pod becomes available.
    pub(crate) next: Option<Duration>,
}

impl Counts {
    pub(crate) fn of<'a>(pods: impl IntoIterator<Item = &'a Arc<Pod>>, min_ready: i32) -> Counts {
        let mut counts = Counts::default();
        for pod in pods {
            counts.pods += 1;
            if is_ready(pod) {
                counts.ready += 1;
            }
            let (available, left) = availability(pod, min_ready);
            if available {
                counts.available += 1;
            }
            if let Some(left) = left {
                counts.next = Some(counts.next.map_or(left, |n| n.min(left)));
            }
        }
        counts
    }
}

/// The order kube deletes surplus pods in: unscheduled first, then pending, then not ready,
/// then the newest.
pub(crate) fn rank_for_deletion(pods: &mut [Arc<Pod>]) {
    pods.sort_by_key(|pod| {
        let scheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Running") => 2,
            Some("Unknown") => 1,
            _ => 0,
        };
        (
            scheduled,
            phase,
            is_ready(pod),
            Reverse(pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            Reverse(pod.name_any()),
        )
    });
}

/// Why a workload's selector cannot be used with its template, if it cannot (the workload is
/// then skipped).
/// What is wrong with `selector` for the pods `template` makes, if anything.
pub(crate) fn template_problem(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
) -> Option<String> {
    selector_problem(
        selector,
        template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
    )
}

pub(crate) fn selector_problem(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<String> {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let match_labels = selector.match_labels.as_ref();
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if match_labels.is_none_or(BTreeMap::is_empty) && expressions.is_empty() {
        return Some("the selector is empty; it must select the template's labels".to_owned());
    }
    for (key, value) in match_labels.into_iter().flatten() {
        if labels.get(key) != Some(value) {
            return Some(format!(
                "the selector wants {key}={value}, which the pod template's labels do not have"
            ));
        }
    }
    for e in expressions {
        let values = e.values.as_deref().unwrap_or_default();
        let have = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => {
                return Some(format!(
                    "the selector has the operator {other:?}; use In, NotIn, Exists or DoesNotExist"
                ));
            }
        };
        if !ok {
            return Some(format!(
                "the selector's requirement on {} does not match the pod template's labels",
                e.key
            ));
        }
    }
    None
}

/// `maxSurge`/`maxUnavailable` against `replicas`: a count, or a percentage rounded up
/// (`round_up`) or down, as kube's `GetScaledValueFromIntOrPercent` does.
pub(crate) fn scaled(
    value: Option<&IntOrString>,
    replicas: i32,
    default: &str,
    round_up: bool,
) -> i32 {
    let text;
    let percent = match value {
        Some(IntOrString::Int(n)) => return (*n).max(0),
        Some(IntOrString::String(s)) => {
            text = s.clone();
            text.as_str()
        }
        None => default,
    };
    let Some(number) = percent
        .strip_suffix('%')
        .and_then(|p| p.parse::<i64>().ok())
    else {
        return percent.parse::<i32>().unwrap_or(0).max(0);
    };
    let product = i64::from(replicas.max(0)) * number.max(0);
    let value = if round_up {
        (product + 99) / 100
    } else {
        product / 100
    };
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A pod for `owner` from its template: the template's labels and annotations plus `labels`
/// and `annotations`, the controller reference, the template's spec.
pub(crate) fn pod_from_template<K: Resource<DynamicType = ()>>(
    owner: &K,
    template: &PodTemplateSpec,
    name: String,
    labels: impl IntoIterator<Item = (String, String)>,
    annotations: impl IntoIterator<Item = (String, String)>,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    let mut all_labels = meta.labels.unwrap_or_default();
    all_labels.extend(labels);
    let mut all_annotations = meta.annotations.unwrap_or_default();
    all_annotations.extend(annotations);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: owner.meta().namespace.clone(),
            labels: Some(all_labels),
            annotations: (!all_annotations.is_empty()).then_some(all_annotations),
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner_reference(owner)]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// What happened to one create.
enum Created {
    /// Created (or already there: a cache that had not seen it yet).
    Done,
    /// The name is taken by a pod that is not this controller's.
    Taken,
}

async fn create_one(sim: &Sim, mut pod: Pod) -> Result<Created> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let key = (namespace.clone(), name.clone());
    if let Some(spec) = pod.spec.as_mut() {
        let wants = requests(spec);
        let mut ledger = lock(&sim.ledger);
        match spec.node_name.clone() {
            Some(node) => ledger.reserve_on(&key, &node, &wants),
            None => match ledger.place(&key, None, &Constraints::of(spec), &wants) {
                Fit::Node(node) => spec.node_name = Some(node),
                // Created unbound: the scheduler reports why and places it when room frees.
                Fit::Nowhere(_) => {
                    ledger.forget(&key, None);
                }
            },
        }
    }
    let api: Api<Pod> = Api::namespaced(sim.client.clone(), &namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    match api.create(&params, &pod).await {
        Ok(created) => {
            if let Some(uid) = created.uid() {
                lock(&sim.ledger).confirm(&key, &uid);
            }
            debug!(pod = %format!("{namespace}/{name}"), node = ?created.spec.and_then(|s| s.node_name), "pod created");
            Ok(Created::Done)
        }
        Err(e) => {
            lock(&sim.ledger).forget(&key, None);
            match e {
                kube::Error::Api(ref s) if s.code == 409 => {
                    let owner = pod
                        .metadata
                        .owner_references
                        .as_ref()
                        .and_then(|o| o.first());
                    let existing = sim.pods.get(&ObjectRef::new(&name).within(&namespace));
                    let theirs = existing.is_some_and(|p| {
                        controller_of(&p.metadata).map(|o| &o.uid) != owner.map(|o| &o.uid)
                    });
                    Ok(if theirs {
                        Created::Taken
                    } else {
                        Created::Done
                    })
                }
                source => Err(Error::CreatePod {
                    pod: format!("{namespace}/{name}"),
                    source,
                }),
            }
        }
    }
}

/// Creates pods, a few at a time; returns how many names were taken by pods that are not the
/// controller's (the caller tries other names next pass).
///
/// # Errors
///
/// The first failed create (the others still ran).
pub(crate) async fn create_pods(sim: &Sim, pods: Vec<Pod>) -> Result<usize> {
    let results: Vec<Result<Created>> = futures::stream::iter(pods)
        .map(|pod| create_one(sim, pod))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut taken = 0;
    for result in results {
        if matches!(result?, Created::Taken) {
            taken += 1;
        }
    }
    Ok(taken)
}

/// Deletes pods, a few at a time.
///
/// # Errors
///
/// The first failed delete.
pub(crate) async fn delete_pods(sim: &Sim, pods: &[Arc<Pod>]) -> Result<()> {
    let results: Vec<Result<()>> = futures::stream::iter(pods.iter().cloned())
        .map(|pod| async move { kubelet::delete(sim, &pod, false).await })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The first `count` names of `name(slot)` for slots 0, 1, … that no pod in `taken` has.
pub(crate) fn free_names(
    count: usize,
    taken: &HashSet<String>,
    name: impl Fn(usize) -> String,
) -> Vec<String> {
    (0..)
        .map(name)
        .filter(|n| !taken.contains(n))
        .take(count)
        .collect()
}

/// The action after a pass: soon when work was left for the next pass, at the soonest
/// availability deadline, or at the resync.
pub(crate) fn next(
    sim: &Sim,
    more: bool,
    deadline: Option<Duration>,
) -> kube::runtime::controller::Action {
    if more {
        return kube::runtime::controller::Action::requeue(Duration::from_millis(50));
    }
    let resync = sim.options.resync;
    kube::runtime::controller::Action::requeue(
        deadline.map_or(resync, |d| d.min(resync)) + Duration::from_millis(10),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap_or_default()
    }

    #[test]
    fn selectors_must_select_the_template() {
        let labels = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        let check = |s: serde_json::Value| selector_problem(&selector(s), Some(&labels));
        assert_eq!(check(json!({"matchLabels": {"app": "web"}})), None);
        assert_eq!(
            check(
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]})
            ),
            None
        );
        assert!(check(json!({})).is_some_and(|m| m.contains("empty")));
        assert!(
            check(json!({"matchLabels": {"app": "api"}})).is_some_and(|m| m.contains("app=api"))
        );
        assert!(
            check(json!({"matchExpressions": [{"key": "app", "operator": "Like"}]}))
                .is_some_and(|m| m.contains("Like"))
        );
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        let pct = |s: &str| IntOrString::String(s.to_owned());
        assert_eq!(scaled(None, 3, "25%", true), 1);
        assert_eq!(scaled(None, 3, "25%", false), 0);
        assert_eq!(scaled(Some(&pct("50%")), 5, "25%", true), 3);
        assert_eq!(scaled(Some(&pct("50%")), 5, "25%", false), 2);
        assert_eq!(scaled(Some(&IntOrString::Int(2)), 5, "25%", false), 2);
        assert_eq!(scaled(Some(&pct("junk")), 5, "25%", false), 0);
    }

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"containers": [], "nodeName": node},
                "status": {"phase": phase, "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .unwrap_or_default(),
        )
    }

    #[test]
    fn surplus_pods_go_unscheduled_first_then_pending_then_unready_then_newest() {
        let mut pods = vec![
            pod(
                "old-ready",
                Some("n"),
                "Running",
                true,
                "2024-01-01T00:00:00Z",
            ),
            pod(
                "new-ready",
                Some("n"),
                "Running",
                true,
                "2024-01-02T00:00:00Z",
            ),
            pod(
                "unready",
                Some("n"),
                "Running",
                false,
                "2024-01-01T00:00:00Z",
            ),
            pod(
                "pending",
                Some("n"),
                "Pending",
                false,
                "2024-01-01T00:00:00Z",
            ),
            pod(
                "unscheduled",
                None,
                "Pending",
                false,
                "2024-01-01T00:00:00Z",
            ),
        ];
        rank_for_deletion(&mut pods);
        let names: Vec<String> = pods.iter().map(|p| p.name_any()).collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn free_names_skip_taken_ones() {
        let taken = HashSet::from(["p-0".to_owned(), "p-2".to_owned()]);
        assert_eq!(
            free_names(3, &taken, |i| format!("p-{i}")),
            ["p-1", "p-3", "p-4"]
        );
    }
}
