//! The Deployment controller, through ReplicaSets as kube's is: one ReplicaSet per pod-template
//! hash (`<deployment>-<hash>`, labelled `pod-template-hash`, annotated with its
//! `deployment.kubernetes.io/revision`); a RollingUpdate scales the new one up within
//! `maxSurge` and the old ones down within `maxUnavailable` (kube's `reconcileNewReplicaSet` /
//! `reconcileOldReplicaSets` arithmetic), Recreate scales the old ones to zero first. Status as
//! kube's `calculateStatus` writes it, with `Available` (MinimumReplicasAvailable /
//! MinimumReplicasUnavailable) and `Progressing` (ReplicaSetUpdated while rolling,
//! NewReplicaSetAvailable once rolled out, ProgressDeadlineExceeded past
//! `progressDeadlineSeconds` without progress, DeploymentPaused). Old ReplicaSets beyond
//! `revisionHistoryLimit` are deleted.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{name_of, next, owner_reference, scaled, template_problem};
use crate::{
    FIELD_MANAGER,
    error::{Error, Result},
    names,
    state::{Sim, controller_of, lock},
    status,
};

/// The label that ties a ReplicaSet and its pods to one template.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// A ReplicaSet's revision among its Deployment's.
pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";

/// One ReplicaSet as the rollout arithmetic sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Set {
    /// `spec.replicas` (what it is told to run).
    pub(crate) spec: i32,
    /// `status.availableReplicas`.
    pub(crate) available: i32,
}

/// The new ReplicaSet's target in a rolling update (kube's `NewRSNewReplicas`): up to
/// `desired`, never more than `desired + surge` pods in all.
pub(crate) fn new_target(desired: i32, surge: i32, new: &Set, olds: &[Set]) -> i32 {
    if new.spec >= desired {
        return desired;
    }
    let total: i32 = new.spec + olds.iter().map(|s| s.spec).sum::<i32>();
    let allowed = desired + surge;
    if total >= allowed {
        return new.spec;
    }
    new.spec + (allowed - total).min(desired - new.spec)
}

/// The old ReplicaSets' targets in a rolling update (kube's `reconcileOldReplicaSets`), oldest
/// first in `olds`: never fewer than `desired - unavailable` available pods in all, unhealthy
/// old pods removed first.
pub(crate) fn old_targets(desired: i32, unavailable: i32, new: &Set, olds: &[Set]) -> Vec<i32> {
    let mut targets: Vec<i32> = olds.iter().map(|s| s.spec).collect();
    let total: i32 = new.spec + targets.iter().sum::<i32>();
    let min_available = desired - unavailable;
    let new_unavailable = (new.spec - new.available).max(0);
    let mut room = total - min_available - new_unavailable;
    if room <= 0 {
        return targets;
    }
    // Unhealthy old replicas first.
    for (target, set) in targets.iter_mut().zip(olds) {
        if room <= 0 {
            break;
        }
        let unhealthy = (*target - set.available).max(0).min(room);
        *target -= unhealthy;
        room -= unhealthy;
    }
    // Then healthy ones, as far as availability allows.
    let available: i32 = new.available + olds.iter().map(|s| s.available).sum::<i32>();
    let mut can = available - min_available;
    for (target, set) in targets.iter_mut().zip(olds) {
        if can <= 0 {
            break;
        }
        let healthy = (*target).min(set.available);
        let down = healthy.min(can);
        *target -= down;
        can -= down;
    }
    targets
}

fn set_of(rs: &ReplicaSet) -> Set {
    Set {
        spec: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        available: rs
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
    }
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

async fn scale(sim: &Sim, rs: &ReplicaSet, replicas: i32) -> Result<()> {
    let api: Api<ReplicaSet> =
        Api::namespaced(sim.client.clone(), &rs.namespace().unwrap_or_default());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    api.patch(
        &rs.name_any(),
        &params,
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::ScaleReplicaSet {
        replica_set: name_of(rs),
        source,
    })
}

async fn delete(sim: &Sim, rs: &ReplicaSet) -> Result<()> {
    let api: Api<ReplicaSet> =
        Api::namespaced(sim.client.clone(), &rs.namespace().unwrap_or_default());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: rs.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&rs.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(e)
            if flotilla_runtime::error::is_not_found(&e)
                || flotilla_runtime::error::is_conflict(&e) =>
        {
            Ok(())
        }
        Err(source) => Err(Error::DeleteReplicaSet {
            replica_set: name_of(rs),
            source,
        }),
    }
}

/// The ReplicaSet for `deployment`'s current template.
fn new_replica_set(
    deployment: &Deployment,
    hash: &str,
    replicas: i32,
    revision: i64,
) -> ReplicaSet {
    let spec = deployment.spec.clone().unwrap_or_default();
    let mut template = spec.template;
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.to_owned(), hash.to_owned());
    let mut selector = spec.selector;
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.to_owned(), hash.to_owned());
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert(POD_TEMPLATE_HASH.to_owned(), hash.to_owned());
    let value = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": names::replica_set(&deployment.name_any(), hash),
            "namespace": deployment.namespace(),
            "labels": labels,
            "annotations": {
                REVISION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": spec.replicas.unwrap_or(1).to_string(),
            },
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": spec.min_ready_seconds.unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    serde_json::from_value(value).unwrap_or_default()
}

/// One Deployment.
pub(crate) async fn reconcile(deployment: Arc<Deployment>, sim: Arc<Sim>) -> Result<Action> {
    let Some(workloads) = sim.workloads.as_ref() else {
        return Ok(Action::await_change());
    };
    if deployment.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = deployment.spec.as_ref() else {
        return Ok(next(&sim, false, None));
    };
    if let Some(problem) = template_problem(&spec.selector, &spec.template) {
        warn!(deployment = %name_of(&*deployment), %problem, "skipped");
        return Ok(next(&sim, false, None));
    }
    let namespace = deployment.namespace().unwrap_or_default();
    let uid = deployment.uid().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1).max(0);
    let collision = deployment.status.as_ref().and_then(|s| s.collision_count);
    let hash = names::template_hash(&spec.template, collision);

    let mut sets: Vec<Arc<ReplicaSet>> = lock(&workloads.replica_set_owners)
        .children(&uid)
        .iter()
        .filter_map(|key| workloads.replica_sets.get(key))
        .filter(|rs| controller_of(&rs.metadata).is_some_and(|o| o.uid == uid))
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    // Oldest first.
    sets.sort_by_key(|rs| {
        (
            revision(rs),
            rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        )
    });
    let new = sets
        .iter()
        .find(|rs| rs.labels().get(POD_TEMPLATE_HASH) == Some(&hash))
        .cloned();
    let olds: Vec<Arc<ReplicaSet>> = sets
        .iter()
        .filter(|rs| rs.labels().get(POD_TEMPLATE_HASH) != Some(&hash))
        .cloned()
        .collect();
    let old_sets: Vec<Set> = olds.iter().map(|rs| set_of(rs)).collect();
    let paused = spec.paused.unwrap_or(false);
    let strategy = spec.strategy.as_ref();
    let recreate = strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let (surge, unavailable) = if recreate {
        (0, 0)
    } else {
        let surge = scaled(
            rolling.and_then(|r| r.max_surge.as_ref()),
            desired,
            "25%",
            true,
        );
        let unavailable = scaled(
            rolling.and_then(|r| r.max_unavailable.as_ref()),
            desired,
            "25%",
            false,
        );
        if surge == 0 && unavailable == 0 {
            (0, 1)
        } else {
            (surge, unavailable)
        }
    };
    // The specs this pass leaves, by ReplicaSet name, for the status.
    let mut specs: BTreeMap<String, i32> = sets
        .iter()
        .map(|rs| (rs.name_any(), set_of(rs).spec))
        .collect();

    let olds_running = olds
        .iter()
        .any(|rs| rs.status.as_ref().map_or(0, |s| s.replicas) > 0 || set_of(rs).spec > 0);
    if !paused {
        match &new {
            None => {
                let none = Set::default();
                let replicas = if recreate {
                    if olds_running { 0 } else { desired }
                } else {
                    new_target(desired, surge, &none, &old_sets)
                };
                let rev = sets.iter().map(|rs| revision(rs)).max().unwrap_or(0) + 1;
                let rs = new_replica_set(&deployment, &hash, replicas, rev);
                let api: Api<ReplicaSet> = Api::namespaced(sim.client.clone(), &namespace);
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PostParams::default()
                };
                match api.create(&params, &rs).await {
                    Ok(_) => {
                        info!(deployment = %name_of(&*deployment), replica_set = %rs.name_any(), revision = rev, "new ReplicaSet");
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        // Ours, not yet in the cache; or someone else's of the same name, which
                        // kube answers with a collision count.
                        let theirs = workloads
                            .replica_sets
                            .get(&ObjectRef::new(&rs.name_any()).within(&namespace))
                            .is_some_and(|other| {
                                controller_of(&other.metadata).is_none_or(|o| o.uid != uid)
                            });
                        if theirs {
                            warn!(deployment = %name_of(&*deployment), replica_set = %rs.name_any(), "another object holds the ReplicaSet's name; raising the collision count");
                            write_status(
                                &sim,
                                &deployment,
                                json!({"collisionCount": collision.unwrap_or(0) + 1}),
                            )
                            .await?;
                        }
                    }
                    Err(source) => {
                        return Err(Error::CreateReplicaSet {
                            replica_set: format!("{namespace}/{}", rs.name_any()),
                            source,
                        });
                    }
                }
                specs.insert(rs.name_any(), replicas);
            }
            Some(new) => {
                let new_set = set_of(new);
                let (new_spec, old_specs) = if recreate {
                    let new_spec = if olds_running { 0 } else { desired };
                    (new_spec, vec![0; olds.len()])
                } else {
                    (
                        new_target(desired, surge, &new_set, &old_sets),
                        old_targets(desired, unavailable, &new_set, &old_sets),
                    )
                };
                if new_spec != new_set.spec {
                    scale(&sim, new, new_spec).await?;
                    specs.insert(new.name_any(), new_spec);
                }
                for ((rs, set), target) in olds.iter().zip(&old_sets).zip(old_specs) {
                    if target != set.spec {
                        scale(&sim, rs, target).await?;
                        specs.insert(rs.name_any(), target);
                    }
                }
            }
        }
        // Old ReplicaSets with nothing left, beyond the history limit, oldest first.
        let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10).max(0)).unwrap_or(0);
        let empty: Vec<&Arc<ReplicaSet>> = olds
            .iter()
            .filter(|rs| {
                specs.get(&rs.name_any()).copied().unwrap_or(0) == 0
                    && rs.status.as_ref().map_or(0, |s| s.replicas) == 0
            })
            .collect();
        if empty.len() > limit {
            for rs in &empty[..empty.len() - limit] {
                delete(&sim, rs).await?;
            }
        }
    }

    // Status, from the ReplicaSets' own status (as kube's does) and the specs just set.
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| sets.iter().map(|rs| f(rs)).sum::<i32>();
    let replicas = sum(&|rs| rs.status.as_ref().map_or(0, |s| s.replicas));
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    });
    let updated = new
        .as_ref()
        .map_or(0, |rs| rs.status.as_ref().map_or(0, |s| s.replicas));
    let total: i32 = specs.values().sum();
    let unavailable_replicas = (total - available).max(0);
    let generation = deployment.metadata.generation;
    let new_name = names::replica_set(&deployment.name_any(), &hash);
    let previous = deployment
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let conditions = previous.get("conditions");
    let now = status::now();
    let min_available = desired - unavailable;
    let available_condition = if available >= min_available {
        status::condition(
            conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &now,
            true,
        )
    } else {
        status::condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &now,
            true,
        )
    };
    let complete =
        new.is_some() && updated == desired && replicas == desired && available == desired;
    let int = |field: &str| previous.get(field).and_then(Value::as_i64).unwrap_or(0);
    let old_pods = replicas - updated;
    let progressed = i64::from(updated) > int("updatedReplicas")
        || i64::from(old_pods) < int("replicas") - int("updatedReplicas")
        || i64::from(ready) > int("readyReplicas")
        || i64::from(available) > int("availableReplicas");
    let before = conditions
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["type"] == "Progressing"))
        .cloned();
    let deadline = Duration::from_secs(
        u64::try_from(spec.progress_deadline_seconds.unwrap_or(600).max(0)).unwrap_or(600),
    );
    let mut wait = None;
    let progressing = if paused {
        status::condition(
            conditions,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            &now,
            true,
        )
    } else if complete {
        status::condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            &now,
            true,
        )
    } else {
        let message = format!("ReplicaSet \"{new_name}\" is progressing.");
        let mut c = status::condition(
            conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &message,
            &now,
            true,
        );
        let last_update: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> =
            serde_json::from_value(c["lastUpdateTime"].clone()).ok();
        if progressed {
            c["lastUpdateTime"] = serde_json::to_value(&now).unwrap_or(Value::Null);
            wait = Some(deadline);
        } else if let Some(at) = last_update {
            let left = status::remaining(&at, deadline);
            let exceeded = before
                .as_ref()
                .is_some_and(|b| b["reason"] == "ProgressDeadlineExceeded");
            if left.is_zero() || exceeded {
                c = status::condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                    &now,
                    true,
                );
            } else {
                wait = Some(left);
            }
        }
        c
    };
    write_status(
        &sim,
        &deployment,
        json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": unavailable_replicas,
            "conditions": [available_condition, progressing],
        }),
    )
    .await?;
    Ok(next(&sim, false, wait))
}

async fn write_status(sim: &Sim, deployment: &Deployment, status: Value) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(
        sim.client.clone(),
        &deployment.namespace().unwrap_or_default(),
    );
    status::write(&api, deployment, status)
        .await
        .map(|_| ())
        .map_err(|source| Error::WriteStatus {
            kind: "Deployment",
            name: name_of(deployment),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(spec: i32, available: i32) -> Set {
        Set { spec, available }
    }

    #[test]
    fn scaling_without_a_rollout_goes_straight_to_the_replicas() {
        assert_eq!(new_target(5, 2, &set(3, 3), &[]), 5);
        assert_eq!(new_target(1, 1, &set(5, 5), &[]), 1);
        assert_eq!(new_target(3, 1, &set(0, 0), &[]), 3);
    }

    #[test]
    fn a_rollout_surges_then_trades_old_for_new_as_new_pods_become_available() {
        // 3 replicas, maxSurge 1, maxUnavailable 0: one new pod first, no old one removed
        // while it is not available.
        let olds = [set(3, 3)];
        assert_eq!(new_target(3, 1, &set(0, 0), &olds), 1);
        assert_eq!(old_targets(3, 0, &set(1, 0), &olds), [3]);
        // It became available: one old pod goes.
        assert_eq!(old_targets(3, 0, &set(1, 1), &olds), [2]);
        // Then the new one grows into the room.
        assert_eq!(new_target(3, 1, &set(1, 1), &[set(2, 2)]), 2);
        assert_eq!(old_targets(3, 0, &set(3, 3), &[set(0, 0)]), [0]);
    }

    #[test]
    fn unhealthy_old_pods_go_first_and_maxunavailable_allows_more() {
        // Old pods that are not available go first, as far as the budget allows.
        assert_eq!(
            old_targets(4, 1, &set(1, 0), &[set(3, 1), set(1, 1)]),
            [2, 1]
        );
        // 4 replicas, maxUnavailable 2, all old available: two may go at once.
        assert_eq!(old_targets(4, 2, &set(0, 0), &[set(4, 4)]), [2]);
    }
}
