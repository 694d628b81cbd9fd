//! The trackers: one task per child kind (Pods, and ReplicaSets when the workload controllers
//! run) that follows the shared cache's changes and gone notices, keeps the owner index (and,
//! for pods, the scheduler's book of what each node holds) and wakes whoever must act: a
//! child's controller when the child changes or goes, the waiting pods when room frees, every
//! DaemonSet when a node goes. (The children of a controller that went away are the API
//! server's garbage collector's.)
//! Each first fills its index from the synced store and then says it is ready; the controllers
//! start only after that. Never writes to the member.

use std::{collections::HashSet, future::Future, sync::Arc};

use flotilla_runtime::cache::Cache;
use futures::{Stream, StreamExt};
use k8s_openapi::api::{
    apps::v1::ReplicaSet,
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

/// The pod tracker: subscribes now; the returned task runs until `stop`.
///
/// # Errors
///
/// When the caches already started.
pub(crate) fn pods(
    sim: Arc<Sim>,
    pod_cache: &Arc<Cache<Pod>>,
    node_cache: &Arc<Cache<Node>>,
    ready: Arc<watch::Sender<usize>>,
    stop: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let mut changes = pod_cache.subscribe()?;
    let mut gone = notices(pod_cache.gone()).boxed();
    let mut nodes_gone = notices(node_cache.gone()).boxed();
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
    ready: Arc<watch::Sender<usize>>,
    stop: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let mut changes = replica_sets.subscribe()?;
    let mut gone = notices(replica_sets.gone()).boxed();
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
                () = stop.cancelled() => return,
            }
        }
    })
}
