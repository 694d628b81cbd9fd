//! The trackers: one task per child kind (Pods, and ReplicaSets when the workload controllers
//! run) that follows the shared cache's changes and gone notices, keeps the owner index (and,
//! for pods, the scheduler's book of what each node holds) and wakes whoever must act: a
//! child's controller when the child changes or goes, the waiting pods when room frees, the
//! children of a controller that went away (to be collected), every DaemonSet when a node goes.
//! Each first fills its index from the synced store and then says it is ready; the controllers
//! start only after that. Never writes to the member.

use std::{collections::HashSet, future::Future, sync::Arc};

use flotilla_runtime::cache::Cache;
use futures::{Stream, StreamExt, stream::BoxStream};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    batch::v1::Job,
    core::v1::{Node, Pod},
};
use kube::{Resource, ResourceExt, runtime::reflector::ObjectRef};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::{
    error::Result,
    kubelet::is_finished,
    schedule::requests,
    state::{Owner, Sim, lock},
};

/// What a gone notice stream yields.
enum Gone {
    /// This uid went away.
    Uid(String),
    /// Notices were missed.
    Lagged,
}

/// A broadcast of gone notices as a stream of uids (ending when the cache stops).
fn gone_uids<K>(rx: broadcast::Receiver<ObjectRef<K>>) -> BoxStream<'static, Gone>
where
    K: Resource<DynamicType = ()> + 'static,
{
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(key) => {
                    if let Some(uid) = key.extra.uid {
                        return Some((Gone::Uid(uid), rx));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return Some((Gone::Lagged, rx)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// A broadcast as a stream (ending when the cache stops); `None` items are missed notices.
fn notices<K>(rx: broadcast::Receiver<ObjectRef<K>>) -> impl Stream<Item = Option<ObjectRef<K>>>
where
    K: Resource<DynamicType = ()> + 'static,
{
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(key) => Some((Some(key), rx)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((None, rx)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

/// The caches of the workload kinds, when the workload controllers run.
pub(crate) type WorkloadCaches = (
    Arc<Cache<Deployment>>,
    Arc<Cache<ReplicaSet>>,
    Arc<Cache<StatefulSet>>,
    Arc<Cache<DaemonSet>>,
    Arc<Cache<Job>>,
);

fn observe_pod(sim: &Sim, pod: &Pod, wake: bool) {
    let key = ObjectRef::from_obj(pod);
    let namespace = pod.namespace();
    let owner = Owner::of(&pod.metadata);
    let before = lock(&sim.pod_owners).update(key, owner.clone());
    let uid = pod.uid().unwrap_or_default();
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let wants = pod.spec.as_ref().map(requests).unwrap_or_default();
    let freed = lock(&sim.ledger).observe(
        &(namespace.clone().unwrap_or_default(), pod.name_any()),
        &uid,
        node,
        wants,
        is_finished(pod),
    );
    if !wake {
        return;
    }
    if freed {
        sim.wake_waiting();
    }
    for owner in owner.iter().chain(before.iter()) {
        sim.wake.owner(owner, namespace.as_deref());
    }
}

fn forget_pod(sim: &Sim, key: &ObjectRef<Pod>) {
    let owner = lock(&sim.pod_owners).remove(key);
    let uid = key.extra.uid.as_deref();
    let pod_key = (key.namespace.clone().unwrap_or_default(), key.name.clone());
    let freed = lock(&sim.ledger).forget(&pod_key, uid);
    if let Some(uid) = uid {
        lock(&sim.since).remove(uid);
        lock(&sim.deleting).remove(uid);
    }
    if freed {
        sim.wake_waiting();
    }
    if let Some(owner) = owner {
        sim.wake.owner(&owner, key.namespace.as_deref());
    }
}

/// After missed pod notices: forget what the store no longer holds.
fn resync_pods(sim: &Sim) {
    let pods = sim.pods.state();
    let uids: HashSet<String> = pods.iter().filter_map(|p| p.uid()).collect();
    lock(&sim.pod_owners).retain(|key| sim.pods.get(key).is_some());
    let freed = lock(&sim.ledger).retain(|_, uid| uid.is_none_or(|u| uids.contains(u)));
    lock(&sim.since).retain(|uid, _| uids.contains(uid));
    lock(&sim.deleting).retain(|uid| uids.contains(uid));
    if freed {
        sim.wake_waiting();
    }
    for owner in sim_owners(sim) {
        sim.wake.owner(&owner.0, owner.1.as_deref());
    }
}

fn sim_owners(sim: &Sim) -> Vec<(Owner, Option<String>)> {
    lock(&sim.pod_owners).owners()
}

/// Wakes the pods of a controller that went away (they are collected).
fn wake_children(sim: &Sim, gone: Gone) {
    match gone {
        Gone::Uid(uid) => {
            let children = lock(&sim.pod_owners).children(&uid);
            sim.wake.pods(
                children
                    .into_iter()
                    .map(|k| (k.namespace.unwrap_or_default(), k.name)),
            );
        }
        Gone::Lagged => {
            // Every pod with a controller checks whether it is still there.
            let owners = lock(&sim.pod_owners).owners();
            for (owner, _) in owners {
                let children = lock(&sim.pod_owners).children(&owner.uid);
                sim.wake.pods(
                    children
                        .into_iter()
                        .map(|k| (k.namespace.unwrap_or_default(), k.name)),
                );
            }
        }
    }
}

/// The pod tracker: subscribes now; the returned task runs until `stop`.
///
/// # Errors
///
/// When the caches already started.
pub(crate) fn pods(
    sim: Arc<Sim>,
    pod_cache: &Arc<Cache<Pod>>,
    node_cache: &Arc<Cache<Node>>,
    workloads: Option<&WorkloadCaches>,
    ready: Arc<watch::Sender<usize>>,
    stop: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let mut changes = pod_cache.subscribe()?;
    let mut gone = notices(pod_cache.gone()).boxed();
    let mut nodes_gone = notices(node_cache.gone()).boxed();
    let mut owners_gone = match workloads {
        Some((_, replica_sets, stateful_sets, daemon_sets, jobs)) => futures::stream::select_all([
            gone_uids(replica_sets.gone()),
            gone_uids(stateful_sets.gone()),
            gone_uids(daemon_sets.gone()),
            gone_uids(jobs.gone()),
        ])
        .boxed(),
        None => futures::stream::pending().boxed(),
    };
    let pod_cache = pod_cache.clone();
    Ok(async move {
        tokio::select! {
            () = pod_cache.wait_synced() => {}
            () = stop.cancelled() => return,
        }
        for pod in sim.pods.state() {
            observe_pod(&sim, &pod, false);
        }
        debug!(pods = sim.pods.state().len(), "pod tracker ready");
        ready.send_modify(|n| *n += 1);
        loop {
            tokio::select! {
                Some(pod) = changes.next() => observe_pod(&sim, &pod, true),
                Some(notice) = gone.next() => match notice {
                    Some(key) => forget_pod(&sim, &key),
                    None => resync_pods(&sim),
                },
                Some(notice) = nodes_gone.next() => {
                    let removed = match notice {
                        Some(key) => lock(&sim.ledger).remove_room(&key.name),
                        None => true,
                    };
                    if removed {
                        let _ = sim.wake.all_daemon_sets.unbounded_send(());
                    }
                }
                Some(notice) = owners_gone.next() => wake_children(&sim, notice),
                () = stop.cancelled() => return,
            }
        }
    })
}

fn observe_replica_set(sim: &Sim, rs: &ReplicaSet, wake: bool) {
    let Some(workloads) = &sim.workloads else {
        return;
    };
    let owner = Owner::of(&rs.metadata);
    let before = lock(&workloads.replica_set_owners).update(ObjectRef::from_obj(rs), owner.clone());
    if wake {
        for owner in owner.iter().chain(before.iter()) {
            sim.wake.owner(owner, rs.namespace().as_deref());
        }
    }
}

/// The ReplicaSet tracker (Deployments' children): subscribes now; the returned task runs
/// until `stop`.
///
/// # Errors
///
/// When the caches already started.
pub(crate) fn replica_sets(
    sim: Arc<Sim>,
    replica_sets: &Arc<Cache<ReplicaSet>>,
    deployments: &Arc<Cache<Deployment>>,
    ready: Arc<watch::Sender<usize>>,
    stop: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let mut changes = replica_sets.subscribe()?;
    let mut gone = notices(replica_sets.gone()).boxed();
    let mut owners_gone = gone_uids(deployments.gone());
    let cache = replica_sets.clone();
    Ok(async move {
        tokio::select! {
            () = cache.wait_synced() => {}
            () = stop.cancelled() => return,
        }
        let store = cache.store();
        for rs in store.state() {
            observe_replica_set(&sim, &rs, false);
        }
        ready.send_modify(|n| *n += 1);
        let Some(workloads) = &sim.workloads else {
            return;
        };
        let index = &workloads.replica_set_owners;
        let wake_rs = |uid: &str| {
            for child in lock(index).children(uid) {
                let _ = sim.wake.replica_sets.unbounded_send(child);
            }
        };
        loop {
            tokio::select! {
                Some(rs) = changes.next() => observe_replica_set(&sim, &rs, true),
                Some(notice) = gone.next() => match notice {
                    Some(key) => {
                        if let Some(owner) = lock(index).remove(&key) {
                            sim.wake.owner(&owner, key.namespace.as_deref());
                        }
                    }
                    None => lock(index).retain(|key| store.get(key).is_some()),
                },
                Some(notice) = owners_gone.next() => match notice {
                    Gone::Uid(uid) => wake_rs(&uid),
                    Gone::Lagged => {
                        let owners = lock(index).owners();
                        for (owner, _) in owners {
                            wake_rs(&owner.uid);
                        }
                    }
                },
                () = stop.cancelled() => return,
            }
        }
    })
}
