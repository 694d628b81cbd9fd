//! The StatefulSet controller: pods `<name>-<ordinal>` with the labels kube puts on them
//! (`controller-revision-hash`, `statefulset.kubernetes.io/pod-name`,
//! `apps.kubernetes.io/pod-index`), created in order and each only once the ones before it are
//! Running and Ready (`OrderedReady`, the default) or all at once (`Parallel`), removed from the
//! highest ordinal down; a RollingUpdate replaces pods of an older revision one at a time from
//! the highest ordinal down to the partition, OnDelete leaves them. Status: `replicas`,
//! `readyReplicas`, `availableReplicas`, `currentReplicas`, `updatedReplicas`,
//! `currentRevision` and `updateRevision` (equal once rolled out), `observedGeneration`.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use k8s_openapi::api::{apps::v1::StatefulSet, core::v1::Pod};
use kube::{Api, ResourceExt, runtime::controller::Action};
use serde_json::json;
use tracing::warn;

use super::{
    Counts, create_pods, delete_pods, is_active, is_terminating, name_of, next, pod_from_template,
    template_problem,
};
use crate::{
    error::{Error, Result},
    kubelet::{is_finished, is_ready},
    names,
    state::Sim,
    status,
};

/// The label holding a pod's revision.
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

fn revision_of(pod: &Pod) -> Option<&String> {
    pod.labels().get(REVISION_LABEL)
}

/// What one pass does.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Ordinals to create.
    pub(crate) create: Vec<i32>,
    /// Ordinals to delete.
    pub(crate) delete: Vec<i32>,
}

/// One pod as the plan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) ready: bool,
    pub(crate) terminating: bool,
    pub(crate) finished: bool,
    pub(crate) updated: bool,
}

/// kube's StatefulSet pass over `pods` by ordinal: create missing ordinals below `replicas`
/// (`ordered`: one at a time, after every lower one is Ready), delete finished pods (they are
/// recreated) and ordinals at or above `replicas` (`ordered`: the highest first, one at a time),
/// then, once all are Ready, replace the highest not-updated ordinal at or above `partition`
/// (`rolling`).
pub(crate) fn plan(
    pods: &BTreeMap<i32, Slot>,
    replicas: i32,
    ordered: bool,
    rolling: bool,
    partition: i32,
) -> Plan {
    let mut plan = Plan::default();
    let mut blocked = false;
    for ordinal in 0..replicas {
        match pods.get(&ordinal) {
            None => {
                if !blocked {
                    plan.create.push(ordinal);
                }
                if ordered {
                    blocked = true;
                }
            }
            Some(slot) if slot.finished && !slot.terminating => {
                plan.delete.push(ordinal);
                if ordered {
                    blocked = true;
                }
            }
            Some(slot) => {
                if ordered && (slot.terminating || !slot.ready) {
                    blocked = true;
                }
            }
        }
    }
    let surplus: Vec<i32> = pods
        .iter()
        .rev()
        .filter(|(o, s)| **o >= replicas && !s.terminating)
        .map(|(o, _)| *o)
        .collect();
    let settled = pods.values().all(|s| s.ready && !s.terminating);
    if ordered {
        if let Some(highest) = surplus.first()
            && settled
        {
            plan.delete.push(*highest);
        }
    } else {
        plan.delete.extend(surplus);
    }
    let complete = (0..replicas).all(|o| pods.contains_key(&o));
    if rolling
        && plan.create.is_empty()
        && plan.delete.is_empty()
        && complete
        && settled
        && let Some(ordinal) = (partition.max(0)..replicas)
            .rev()
            .find(|o| pods.get(o).is_some_and(|s| !s.updated))
    {
        plan.delete.push(ordinal);
    }
    plan
}

/// One StatefulSet.
pub(crate) async fn reconcile(set: Arc<StatefulSet>, sim: Arc<Sim>) -> Result<Action> {
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = set.spec.as_ref() else {
        return Ok(next(&sim, false, None));
    };
    if let Some(problem) = template_problem(&spec.selector, &spec.template) {
        warn!(stateful_set = %name_of(&*set), %problem, "skipped");
        return Ok(next(&sim, false, None));
    }
    let name = set.name_any();
    let uid = set.uid().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let collision = set.status.as_ref().and_then(|s| s.collision_count);
    let update_revision = names::revision(&name, &names::template_hash(&spec.template, collision));
    let pods: BTreeMap<i32, Arc<Pod>> = sim
        .pods_of(&uid)
        .into_iter()
        .filter_map(|pod| {
            let ordinal = pod
                .name_any()
                .strip_prefix(&format!("{name}-"))?
                .parse()
                .ok()?;
            (names::ordinal_pod(&name, ordinal) == pod.name_any()).then_some((ordinal, pod))
        })
        .collect();
    let slots: BTreeMap<i32, Slot> = pods
        .iter()
        .map(|(o, pod)| {
            (
                *o,
                Slot {
                    ready: is_ready(pod),
                    terminating: is_terminating(&sim, pod),
                    finished: is_finished(pod),
                    updated: revision_of(pod) == Some(&update_revision),
                },
            )
        })
        .collect();
    let ordered = spec.pod_management_policy.as_deref() != Some("Parallel");
    let strategy = spec.update_strategy.as_ref();
    let rolling = strategy.and_then(|s| s.type_.as_deref()) != Some("OnDelete");
    let partition = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let plan = plan(&slots, replicas, ordered, rolling, partition);

    let service = spec.service_name.clone().filter(|s| !s.is_empty());
    let new: Vec<Pod> = plan
        .create
        .iter()
        .map(|ordinal| {
            let pod_name = names::ordinal_pod(&name, *ordinal);
            let mut pod = pod_from_template(
                &*set,
                &spec.template,
                pod_name.clone(),
                [
                    (REVISION_LABEL.to_owned(), update_revision.clone()),
                    (
                        "statefulset.kubernetes.io/pod-name".to_owned(),
                        pod_name.clone(),
                    ),
                    (
                        "apps.kubernetes.io/pod-index".to_owned(),
                        ordinal.to_string(),
                    ),
                ],
                [],
            );
            if let Some(pod_spec) = pod.spec.as_mut() {
                pod_spec.hostname = Some(pod_name);
                pod_spec.subdomain = service.clone();
            }
            pod
        })
        .collect();
    let created = create_pods(&sim, new).await?;
    let doomed: Vec<Arc<Pod>> = plan
        .delete
        .iter()
        .filter_map(|o| pods.get(o).cloned())
        .collect();
    delete_pods(&sim, &doomed).await?;

    let active: Vec<&Arc<Pod>> = pods.values().filter(|p| is_active(&sim, p)).collect();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let counts = Counts::of(active.iter().copied(), min_ready);
    let updated = active
        .iter()
        .filter(|p| revision_of(p) == Some(&update_revision))
        .count();
    let in_range: Vec<&Arc<Pod>> = pods
        .range(..replicas)
        .map(|(_, p)| p)
        .filter(|p| is_active(&sim, p))
        .collect();
    let revisions: HashSet<&String> = active.iter().filter_map(|p| revision_of(p)).collect();
    let rolled_out = in_range.len() == usize::try_from(replicas).unwrap_or(0)
        && in_range
            .iter()
            .all(|p| revision_of(p) == Some(&update_revision));
    let current_revision = if rolled_out {
        update_revision.clone()
    } else {
        let kept = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .filter(|r| revisions.contains(r));
        kept.or_else(|| {
            pods.values()
                .filter_map(|p| revision_of(p))
                .find(|r| **r != update_revision)
                .cloned()
        })
        .unwrap_or_else(|| update_revision.clone())
    };
    let current = active
        .iter()
        .filter(|p| revision_of(p) == Some(&current_revision))
        .count();
    let api: Api<StatefulSet> =
        Api::namespaced(sim.client.clone(), &set.namespace().unwrap_or_default());
    status::write(
        &api,
        &*set,
        json!({
            "observedGeneration": set.metadata.generation,
            "replicas": counts.pods,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.available,
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": collision.unwrap_or(0),
        }),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        kind: "StatefulSet",
        name: name_of(&*set),
        source,
    })?;
    Ok(next(&sim, created > 0, counts.next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(ready: bool, updated: bool) -> Slot {
        Slot {
            ready,
            terminating: false,
            finished: false,
            updated,
        }
    }

    fn pods(slots: &[(i32, Slot)]) -> BTreeMap<i32, Slot> {
        slots.iter().copied().collect()
    }

    #[test]
    fn ordered_pods_come_one_at_a_time_after_the_ones_before_are_ready() {
        let empty = pods(&[]);
        assert_eq!(plan(&empty, 3, true, true, 0).create, [0]);
        assert_eq!(plan(&empty, 3, false, true, 0).create, [0, 1, 2]);
        let starting = pods(&[(0, slot(false, true))]);
        assert_eq!(plan(&starting, 3, true, true, 0), Plan::default());
        let first_ready = pods(&[(0, slot(true, true))]);
        assert_eq!(plan(&first_ready, 3, true, true, 0).create, [1]);
    }

    #[test]
    fn scale_down_removes_the_highest_ordinal_first() {
        let three = pods(&[
            (0, slot(true, true)),
            (1, slot(true, true)),
            (2, slot(true, true)),
        ]);
        assert_eq!(plan(&three, 1, true, true, 0).delete, [2]);
        assert_eq!(plan(&three, 1, false, true, 0).delete, [2, 1]);
    }

    #[test]
    fn a_rolling_update_replaces_from_the_top_down_to_the_partition() {
        let old = pods(&[
            (0, slot(true, false)),
            (1, slot(true, false)),
            (2, slot(true, false)),
        ]);
        assert_eq!(plan(&old, 3, true, true, 0).delete, [2]);
        assert_eq!(plan(&old, 3, true, false, 0), Plan::default());
        let top_done = pods(&[
            (0, slot(true, false)),
            (1, slot(true, false)),
            (2, slot(true, true)),
        ]);
        assert_eq!(plan(&top_done, 3, true, true, 0).delete, [1]);
        assert_eq!(plan(&top_done, 3, true, true, 2), Plan::default());
        // Not while a pod is not ready.
        let busy = pods(&[
            (0, slot(true, false)),
            (1, slot(false, true)),
            (2, slot(true, true)),
        ]);
        assert_eq!(plan(&busy, 3, true, true, 0), Plan::default());
    }
}
