//! What every part of one running simulator shares: the member client and options, the shared
//! stores, the scheduler's book, the owner indexes (children by their controller's uid), the
//! wake-up channels into each controller, and a few per-object clocks. Owns no decision.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::{Mutex, MutexGuard},
    time::Instant,
};

use futures::channel::mpsc::UnboundedSender;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::Job,
        core::v1::{Node, Pod},
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    Client,
    runtime::reflector::{ObjectRef, Store},
};

use crate::{Options, schedule::Ledger};

/// Locks a mutex, taking it over if a panicking holder poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The controller ownerReference of an object (`controller: true`), if any.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// An object's controller, as the index remembers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) uid: String,
}

impl Owner {
    pub(crate) fn of(meta: &ObjectMeta) -> Option<Owner> {
        controller_of(meta).map(|o| Owner {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
        })
    }
}

/// Children of one kind by their controller's uid, so a controller reads its own pods (or a
/// Deployment its ReplicaSets) without walking every object of the kind.
pub(crate) struct Index<K: kube::Resource<DynamicType = ()>> {
    children: HashMap<String, HashSet<ObjectRef<K>>>,
    owner_of: HashMap<ObjectRef<K>, Owner>,
}

impl<K: kube::Resource<DynamicType = ()>> Default for Index<K> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            owner_of: HashMap::new(),
        }
    }
}

impl<K: kube::Resource<DynamicType = ()>> Index<K>
where
    ObjectRef<K>: Hash + Eq,
{
    /// Records `child`'s controller (or that it has none); returns the controller it had
    /// before, when that was a different one.
    pub(crate) fn update(&mut self, child: ObjectRef<K>, owner: Option<Owner>) -> Option<Owner> {
        let before = match &owner {
            Some(owner) => self.owner_of.insert(child.clone(), owner.clone()),
            None => self.owner_of.remove(&child),
        };
        if before.as_ref().map(|b| &b.uid) == owner.as_ref().map(|o| &o.uid) {
            return None;
        }
        if let Some(before) = &before {
            self.unlink(&before.uid, &child);
        }
        if let Some(owner) = owner {
            self.children.entry(owner.uid).or_default().insert(child);
        }
        before
    }

    /// Forgets a child that is gone; returns its controller.
    pub(crate) fn remove(&mut self, child: &ObjectRef<K>) -> Option<Owner> {
        let owner = self.owner_of.remove(child)?;
        self.unlink(&owner.uid, child);
        Some(owner)
    }

    fn unlink(&mut self, uid: &str, child: &ObjectRef<K>) {
        if let Some(set) = self.children.get_mut(uid) {
            set.remove(child);
            if set.is_empty() {
                self.children.remove(uid);
            }
        }
    }

    /// The children of the controller with `uid`.
    pub(crate) fn children(&self, uid: &str) -> Vec<ObjectRef<K>> {
        self.children
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every controller that has children, with one of its children's namespaces.
    pub(crate) fn owners(&self) -> Vec<(Owner, Option<String>)> {
        let mut seen = HashSet::new();
        self.owner_of
            .iter()
            .filter(|(_, owner)| seen.insert(owner.uid.clone()))
            .map(|(child, owner)| (owner.clone(), child.namespace.clone()))
            .collect()
    }

    /// Drops children `keep` says are gone (after a lagged gone notice).
    pub(crate) fn retain(&mut self, keep: impl Fn(&ObjectRef<K>) -> bool) {
        let gone: Vec<ObjectRef<K>> = self.owner_of.keys().filter(|k| !keep(k)).cloned().collect();
        for child in gone {
            self.remove(&child);
        }
    }
}

/// Wake-up channels into the controllers: a key sent here is reconciled soon.
pub(crate) struct Wake {
    pub(crate) pods: UnboundedSender<ObjectRef<Pod>>,
    pub(crate) deployments: UnboundedSender<ObjectRef<Deployment>>,
    pub(crate) replica_sets: UnboundedSender<ObjectRef<ReplicaSet>>,
    pub(crate) stateful_sets: UnboundedSender<ObjectRef<StatefulSet>>,
    pub(crate) daemon_sets: UnboundedSender<ObjectRef<DaemonSet>>,
    pub(crate) jobs: UnboundedSender<ObjectRef<Job>>,
    /// Every DaemonSet (the set of nodes that take pods changed).
    pub(crate) all_daemon_sets: UnboundedSender<()>,
}

impl Wake {
    /// Wakes the controller of a child, by the child's controller reference.
    pub(crate) fn owner(&self, owner: &Owner, namespace: Option<&str>) {
        let Some(namespace) = namespace else {
            return;
        };
        match (owner.api_version.as_str(), owner.kind.as_str()) {
            ("apps/v1", "ReplicaSet") => {
                let _ = self
                    .replica_sets
                    .unbounded_send(ObjectRef::new(&owner.name).within(namespace));
            }
            ("apps/v1", "Deployment") => {
                let _ = self
                    .deployments
                    .unbounded_send(ObjectRef::new(&owner.name).within(namespace));
            }
            ("apps/v1", "StatefulSet") => {
                let _ = self
                    .stateful_sets
                    .unbounded_send(ObjectRef::new(&owner.name).within(namespace));
            }
            ("apps/v1", "DaemonSet") => {
                let _ = self
                    .daemon_sets
                    .unbounded_send(ObjectRef::new(&owner.name).within(namespace));
            }
            ("batch/v1", "Job") => {
                let _ = self
                    .jobs
                    .unbounded_send(ObjectRef::new(&owner.name).within(namespace));
            }
            _ => {}
        }
    }

    /// Wakes pods (waiting for room, or orphaned).
    pub(crate) fn pods(&self, pods: impl IntoIterator<Item = (String, String)>) {
        for (namespace, name) in pods {
            let _ = self
                .pods
                .unbounded_send(ObjectRef::new(&name).within(&namespace));
        }
    }
}

/// The stores and index of the workload controllers (only when they run).
pub(crate) struct Workloads {
    pub(crate) replica_sets: Store<ReplicaSet>,
    /// ReplicaSets by their Deployment's uid.
    pub(crate) replica_set_owners: Mutex<Index<ReplicaSet>>,
}

/// One simulator's shared state.
pub(crate) struct Sim {
    pub(crate) client: Client,
    pub(crate) options: Options,
    /// Whether the member serves `pods/binding`.
    pub(crate) binding: bool,
    /// The member's version, reported as every node's kubelet version.
    pub(crate) kubelet_version: String,
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) nodes: Store<Node>,
    pub(crate) pods: Store<Pod>,
    /// Pods by their controller's uid.
    pub(crate) pod_owners: Mutex<Index<Pod>>,
    pub(crate) workloads: Option<Workloads>,
    pub(crate) wake: Wake,
    /// When the kubelet moved a pod (by uid) into the phase it is in; after a restart the
    /// pod's own timestamps stand in.
    pub(crate) since: Mutex<HashMap<String, Instant>>,
    /// Pods (by uid) a controller asked to delete: no longer counted as replicas.
    pub(crate) deleting: Mutex<HashSet<String>>,
    /// When each node's Lease was last renewed.
    pub(crate) renewed: Mutex<HashMap<String, Instant>>,
}

impl Sim {
    /// Hands the pods waiting for room back to the scheduler.
    pub(crate) fn wake_waiting(&self) {
        let waiting = lock(&self.ledger).take_waiting();
        self.wake.pods(waiting);
    }

    /// The pods controlled by the object with `uid`, as the store holds them now.
    pub(crate) fn pods_of(&self, uid: &str) -> Vec<std::sync::Arc<Pod>> {
        let keys = lock(&self.pod_owners).children(uid);
        keys.iter()
            .filter_map(|key| self.pods.get(key))
            .filter(|pod| controller_of(&pod.metadata).is_some_and(|o| o.uid == uid))
            .collect()
    }

    /// Whether `node` is one of this simulator's nodes.
    pub(crate) fn is_ours(&self, node: &str) -> bool {
        self.nodes
            .get(&ObjectRef::new(node))
            .is_some_and(|n| crate::nodes::is_ours(&n, &self.options))
    }
}
