//! The DaemonSet controller: one pod on every simulated node the template's node selector,
//! required node affinity and tolerations (plus the tolerations kube adds to daemon pods) allow,
//! created on its node (`spec.nodeName`), removed from nodes that no longer qualify; a
//! RollingUpdate replaces pods of an older template within `maxUnavailable`, OnDelete leaves
//! them. Status: `desiredNumberScheduled`, `currentNumberScheduled`, `numberMisscheduled`,
//! `numberReady`, `numberAvailable`, `numberUnavailable`, `updatedNumberScheduled`,
//! `observedGeneration`.

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Pod, Toleration},
};
use kube::{Api, ResourceExt, runtime::controller::Action};
use serde_json::json;
use tracing::warn;

use super::{
    availability, create_pods, delete_pods, is_active, name_of, next, pod_from_template, scaled,
    template_problem,
};
use crate::{
    error::{Error, Result},
    kubelet::is_ready,
    names,
    schedule::Constraints,
    state::{Sim, lock},
    status,
};

/// The label holding a daemon pod's template hash.
pub(crate) const REVISION_LABEL: &str = "controller-revision-hash";

/// The tolerations kube's DaemonSet controller adds to every daemon pod.
fn daemon_tolerations() -> Vec<Toleration> {
    [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .into_iter()
    .map(|(key, effect)| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        ..Toleration::default()
    })
    .collect()
}

/// One DaemonSet.
pub(crate) async fn reconcile(set: Arc<DaemonSet>, sim: Arc<Sim>) -> Result<Action> {
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = set.spec.as_ref() else {
        return Ok(next(&sim, false, None));
    };
    if let Some(problem) = template_problem(&spec.selector, &spec.template) {
        warn!(daemon_set = %name_of(&*set), %problem, "skipped");
        return Ok(next(&sim, false, None));
    }
    let name = set.name_any();
    let uid = set.uid().unwrap_or_default();
    let collision = set.status.as_ref().and_then(|s| s.collision_count);
    let hash = names::template_hash(&spec.template, collision);
    let mut template = spec.template.clone();
    if let Some(pod_spec) = template.spec.as_mut() {
        let tolerations = pod_spec.tolerations.get_or_insert_with(Vec::new);
        for toleration in daemon_tolerations() {
            if !tolerations
                .iter()
                .any(|t| t.key == toleration.key && t.effect == toleration.effect)
            {
                tolerations.push(toleration);
            }
        }
    }
    let constraints = template
        .spec
        .as_ref()
        .map(Constraints::of)
        .unwrap_or_default();
    let eligible: Vec<String> = lock(&sim.ledger)
        .rooms()
        .filter(|(node, room)| {
            constraints.matches_node(node, &room.labels)
                && constraints.untolerated(&room.taints).is_none()
        })
        .map(|(node, _)| node.clone())
        .collect();
    let eligible_set: HashSet<&String> = eligible.iter().collect();

    let pods = sim.pods_of(&uid);
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    let mut doomed: Vec<Arc<Pod>> = Vec::new();
    for pod in pods.iter().filter(|p| is_active(&sim, p)) {
        match pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            Some(node) if eligible_set.contains(&node) => {
                by_node.entry(node).or_default().push(pod.clone())
            }
            _ => doomed.push(pod.clone()),
        }
    }
    let misscheduled = doomed
        .iter()
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect::<HashSet<_>>()
        .len();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut create = Vec::new();
    for node in &eligible {
        match by_node.get_mut(node) {
            None => {
                let mut pod = pod_from_template(
                    &*set,
                    &template,
                    names::daemon_pod(&name, &uid, node, &hash),
                    [
                        (REVISION_LABEL.to_owned(), hash.clone()),
                        (
                            "pod-template-generation".to_owned(),
                            set.metadata.generation.unwrap_or(1).to_string(),
                        ),
                    ],
                    [],
                );
                if let Some(pod_spec) = pod.spec.as_mut() {
                    pod_spec.node_name = Some(node.clone());
                }
                create.push(pod);
            }
            Some(list) if list.len() > 1 => {
                // Keep the updated, ready, oldest one.
                list.sort_by_key(|p| {
                    (
                        p.labels().get(REVISION_LABEL) != Some(&hash),
                        !is_ready(p),
                        p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    )
                });
                doomed.extend(list.drain(1..));
            }
            Some(_) => {}
        }
    }
    // Rolling update: old pods go while no more than maxUnavailable nodes lack an available
    // pod; old pods that are not available go at once.
    let desired = i32::try_from(eligible.len()).unwrap_or(i32::MAX);
    let strategy = spec.update_strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) != Some("OnDelete") {
        let max_unavailable = scaled(
            strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.max_unavailable.as_ref()),
            desired,
            "1",
            true,
        )
        .max(1);
        let unavailable = eligible
            .iter()
            .filter(|n| {
                by_node
                    .get(*n)
                    .and_then(|l| l.first())
                    .is_none_or(|p| !availability(p, min_ready).0)
            })
            .count();
        let mut budget = usize::try_from(max_unavailable)
            .unwrap_or(0)
            .saturating_sub(unavailable);
        for list in by_node.values() {
            let Some(pod) = list.first() else { continue };
            if pod.labels().get(REVISION_LABEL) == Some(&hash) {
                continue;
            }
            if !availability(pod, min_ready).0 {
                doomed.push(pod.clone());
            } else if budget > 0 {
                budget -= 1;
                doomed.push(pod.clone());
            }
        }
    }
    create_pods(&sim, create).await?;
    delete_pods(&sim, &doomed).await?;

    let mut scheduled = 0;
    let mut ready = 0;
    let mut available = 0;
    let mut updated = 0;
    let mut soonest = None;
    for list in by_node.values() {
        let Some(pod) = list.first() else { continue };
        scheduled += 1;
        if is_ready(pod) {
            ready += 1;
        }
        let (now, left) = availability(pod, min_ready);
        if now {
            available += 1;
        }
        if let Some(left) = left {
            soonest = Some(soonest.map_or(left, |s: std::time::Duration| s.min(left)));
        }
        if pod.labels().get(REVISION_LABEL) == Some(&hash) {
            updated += 1;
        }
    }
    let api: Api<DaemonSet> =
        Api::namespaced(sim.client.clone(), &set.namespace().unwrap_or_default());
    status::write(
        &api,
        &*set,
        json!({
            "observedGeneration": set.metadata.generation,
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "numberAvailable": available,
            "numberUnavailable": (desired - available).max(0),
            "updatedNumberScheduled": updated,
        }),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        kind: "DaemonSet",
        name: name_of(&*set),
        source,
    })?;
    Ok(next(&sim, false, soonest))
}
