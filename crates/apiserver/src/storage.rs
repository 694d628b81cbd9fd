//! Object storage for one logical cluster: the live objects, the resourceVersion sequence, the
//! in-memory watch history and the broadcast of watch events. Writes happen in a transaction
//! under the cluster lock so resourceVersions are assigned and delivered strictly in order;
//! durable clusters hand each transaction to the SQLite writer (`storage/sqlite.rs`) and only
//! return once it is committed. This module knows nothing about HTTP or API semantics.

pub mod sqlite;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::errors::{Error, Result};
use crate::registry::Registry;

/// Most watch events each logical cluster keeps in memory for watch resumption.
pub const HISTORY_LIMIT: usize = 20_000;
/// Events older than this are dropped (like kube-apiserver's 5-minute compaction) ...
const HISTORY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);
/// ... except for the newest ones, so a quiet cluster can always resume recent watches.
const HISTORY_MIN: usize = 100;
/// Capacity of the per-cluster broadcast channel; slow watchers catch up from the history.
const BROADCAST_CAPACITY: usize = 1024;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }

    fn code(self) -> i64 {
        match self {
            EventType::Added => 0,
            EventType::Modified => 1,
            EventType::Deleted => 2,
        }
    }

    fn from_code(c: i64) -> Self {
        match c {
            0 => EventType::Added,
            1 => EventType::Modified,
            _ => EventType::Deleted,
        }
    }
}

/// One change, in resourceVersion order.
#[derive(Debug)]
pub struct WatchEvent {
    /// resourceVersion of this change.
    pub rv: u64,
    /// Type.
    pub kind: EventType,
    /// Storage key `<group>/<plural>`.
    pub key: Arc<str>,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object after the change (for DELETED: the last state, with the delete's RV).
    pub object: Arc<Value>,
    /// The object before the change, if any (used for selector transitions).
    pub prev: Option<Arc<Value>>,
    /// When the change happened (for history eviction).
    pub at: std::time::Instant,
}

/// Receiver of a cluster's watch events.
pub type EventReceiver = broadcast::Receiver<Arc<WatchEvent>>;

/// Objects of one resource, by (namespace, name).
pub type Objects = BTreeMap<(String, String), Arc<Value>>;

/// The mutable state of one logical cluster.
#[derive(Debug)]
pub struct ClusterState {
    /// Latest resourceVersion assigned.
    pub rv: u64,
    /// Live objects by storage key.
    pub objects: HashMap<Arc<str>, Objects>,
    /// Retained events, ascending RV, contiguous after `history_start`.
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with rv > history_start is in `history`.
    history_start: u64,
    /// Served resources (built-ins and CRDs).
    pub registry: Registry,
    last_prune: u64,
    history_limit: usize,
}

impl ClusterState {
    fn new(registry: Registry) -> Self {
        ClusterState {
            rv: 0,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_start: 0,
            registry,
            last_prune: 0,
            history_limit: HISTORY_LIMIT,
        }
    }

    /// Objects of one resource.
    pub fn objects(&self, key: &str) -> Option<&Objects> {
        self.objects.get(key)
    }

    /// One object.
    pub fn get(&self, key: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Number of objects in a namespace, over all namespaced resources.
    pub fn count_in_namespace(&self, namespace: &str) -> usize {
        self.objects
            .values()
            .map(|objs| {
                objs.range((namespace.to_string(), String::new())..)
                    .take_while(|((ns, _), _)| ns == namespace)
                    .count()
            })
            .sum()
    }

    /// Events after `rv`, or None when `rv` is older than the retained history.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if rv < self.history_start {
            return None;
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Some(self.history.range(start..).cloned().collect())
    }

    /// Objects of one resource as they were at `rv`, rebuilt by undoing later events; None
    /// when the history no longer reaches back that far.
    pub fn objects_at(&self, key: &str, rv: u64) -> Option<Objects> {
        let mut objs = self.objects.get(key).cloned().unwrap_or_default();
        if rv >= self.rv {
            return Some(objs);
        }
        if rv < self.history_start {
            return None;
        }
        for e in self.history.iter().rev().take_while(|e| e.rv > rv) {
            if *e.key != *key {
                continue;
            }
            let k = (e.namespace.clone(), e.name.clone());
            match e.kind {
                EventType::Added => {
                    objs.remove(&k);
                }
                EventType::Modified | EventType::Deleted => {
                    objs.insert(k, e.prev.clone()?);
                }
            }
        }
        Some(objs)
    }

    /// The oldest resourceVersion a watch can still start from.
    pub fn history_start(&self) -> u64 {
        self.history_start
    }
}

/// A write transaction over one cluster's state. Every put/remove gets its own RV.
pub struct Txn<'a> {
    state: &'a mut ClusterState,
    events: Vec<Arc<WatchEvent>>,
}

impl Txn<'_> {
    /// Read access to the state.
    pub fn state(&self) -> &ClusterState {
        self.state
    }

    /// Mutable access to the registry (CRD (un)registration happens inside the write).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.state.registry
    }

    /// The resourceVersion the next put/remove will get.
    pub fn next_rv(&self) -> u64 {
        self.state.rv + 1
    }

    /// Store an object, assigning the next RV (written into metadata.resourceVersion).
    pub fn put(&mut self, key: &str, namespace: &str, name: &str, mut object: Value) -> Arc<Value> {
        self.state.rv += 1;
        let rv = self.state.rv;
        set_resource_version(&mut object, rv);
        let object = Arc::new(object);
        let key: Arc<str> = match self.state.objects.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Arc::from(key),
        };
        let prev = self
            .state
            .objects
            .entry(key.clone())
            .or_default()
            .insert((namespace.to_string(), name.to_string()), object.clone());
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.events.push(Arc::new(WatchEvent {
            rv,
            kind,
            key,
            namespace: namespace.to_string(),
            name: name.to_string(),
            object: object.clone(),
            prev,
            at: std::time::Instant::now(),
        }));
        object
    }

    /// Remove an object, assigning the next RV. Returns its last state (with the delete RV).
    pub fn remove(&mut self, key: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let (key, objs) = self.state.objects.get_key_value(key)?;
        let key = key.clone();
        if !objs.contains_key(&(namespace.to_string(), name.to_string())) {
            return None;
        }
        let prev = self
            .state
            .objects
            .get_mut(&key)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.state.rv += 1;
        let rv = self.state.rv;
        let mut last = (*prev).clone();
        set_resource_version(&mut last, rv);
        let last = Arc::new(last);
        self.events.push(Arc::new(WatchEvent {
            rv,
            kind: EventType::Deleted,
            key,
            namespace: namespace.to_string(),
            name: name.to_string(),
            object: last.clone(),
            prev: Some(prev),
            at: std::time::Instant::now(),
        }));
        Some(last)
    }

    /// Remove every object of a resource (a CRD going away).
    pub fn remove_all(&mut self, key: &str) -> usize {
        let names: Vec<(String, String)> = self
            .state
            .objects
            .get(key)
            .map(|objs| objs.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in &names {
            self.remove(key, ns, name);
        }
        self.state.objects.remove(key);
        names.len()
    }
}

/// Writes `metadata.resourceVersion`.
pub fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Storage of one logical cluster.
pub struct ClusterStore {
    name: String,
    state: Mutex<ClusterState>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    persist: Option<sqlite::Writer>,
    removed: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClusterStore {
    /// A new, empty cluster.
    /// A new, empty, in-memory cluster keeping only `limit` watch events (tests of 410).
    pub fn with_history_limit(name: &str, limit: usize) -> Self {
        let mut state = ClusterState::new(Registry::new());
        state.history_limit = limit;
        Self::from_state(name, state, None)
    }

    pub fn new(name: &str, persist: Option<sqlite::Writer>) -> Self {
        Self::from_state(name, ClusterState::new(Registry::new()), persist)
    }

    fn from_state(name: &str, state: ClusterState, persist: Option<sqlite::Writer>) -> Self {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        ClusterStore {
            name: name.to_string(),
            state: Mutex::new(state),
            events,
            persist,
            removed: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Rebuild a cluster from loaded rows.
    pub fn restore(
        name: &str,
        loaded: sqlite::LoadedCluster,
        persist: Option<sqlite::Writer>,
    ) -> Self {
        let mut state = ClusterState::new(Registry::new());
        state.rv = loaded.rv;
        for (key, ns, obj_name, value) in loaded.objects {
            let key: Arc<str> = match state.objects.get_key_value(key.as_str()) {
                Some((k, _)) => k.clone(),
                None => Arc::from(key.as_str()),
            };
            state
                .objects
                .entry(key)
                .or_default()
                .insert((ns, obj_name), Arc::new(value));
        }
        state.history_start = loaded.rv;
        if let Some(first) = loaded.events.first() {
            state.history_start = first.rv.saturating_sub(1);
        }
        state.last_prune = state.history_start;
        for e in loaded.events {
            state.history.push_back(Arc::new(WatchEvent {
                rv: e.rv,
                kind: EventType::from_code(e.kind),
                key: Arc::from(e.key.as_str()),
                namespace: e.namespace,
                name: e.name,
                object: Arc::new(e.value),
                prev: None,
                at: std::time::Instant::now(),
            }));
        }
        let crds: Vec<Arc<Value>> = state
            .objects
            .get(crate::registry::CRD_KEY)
            .map(|objs| objs.values().cloned().collect())
            .unwrap_or_default();
        for crd in crds {
            state.registry.register_crd(&crd);
        }
        Self::from_state(name, state, persist)
    }

    /// The logical cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, ClusterState> {
        // A panic while holding the lock cannot leave the map half-written (all mutations
        // are single inserts/removes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run a read-only closure over the state.
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.lock())
    }

    /// Run a write transaction. Its changes are visible and broadcast immediately and the
    /// call returns once they are durable (at once for in-memory clusters).
    pub async fn write<R>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<R>) -> Result<R> {
        let (result, ack) = {
            let mut guard = self.lock();
            let mut txn = Txn {
                state: &mut guard,
                events: Vec::new(),
            };
            let result = f(&mut txn)?;
            let events = std::mem::take(&mut txn.events);
            if events.is_empty() {
                return Ok(result);
            }
            let rv = guard.rv;
            let ack = self
                .persist
                .as_ref()
                .map(|p| p.submit(&self.name, rv, &events));
            for e in events {
                guard.history.push_back(e.clone());
                // No receivers is fine.
                let _ = self.events.send(e);
            }
            let mut prune_to = None;
            let now = std::time::Instant::now();
            while guard.history.len() > guard.history_limit
                || (guard.history.len() > HISTORY_MIN.min(guard.history_limit)
                    && guard
                        .history
                        .front()
                        .is_some_and(|e| now.duration_since(e.at) > HISTORY_MAX_AGE))
            {
                if let Some(old) = guard.history.pop_front() {
                    guard.history_start = old.rv;
                }
            }
            if guard.history_start >= guard.last_prune + 1000 {
                guard.last_prune = guard.history_start;
                prune_to = Some(guard.history_start);
            }
            if let (Some(p), Some(to)) = (self.persist.as_ref(), prune_to) {
                p.prune(&self.name, to);
            }
            (result, ack)
        };
        if let Some(ack) = ack {
            ack.await.map_err(|_| Error::StorageClosed)??;
        }
        Ok(result)
    }

    /// Subscribe to events after `rv`: returns the backlog from history and a receiver for
    /// later events (which may repeat backlog events; skip RVs already seen).
    pub fn watch_from(&self, rv: u64) -> Result<(Vec<Arc<WatchEvent>>, EventReceiver)> {
        let guard = self.lock();
        let backlog = guard.events_since(rv).ok_or_else(|| {
            Error::gone(format!(
                "too old resource version: {rv} ({})",
                guard.history_start + 1
            ))
        })?;
        Ok((backlog, self.events.subscribe()))
    }

    /// Subscribe at the current state: returns a snapshot selected by `f`, the RV of the
    /// snapshot and a receiver for everything after it.
    pub fn snapshot_and_watch<R>(
        &self,
        f: impl FnOnce(&ClusterState) -> R,
    ) -> (R, u64, broadcast::Receiver<Arc<WatchEvent>>) {
        let guard = self.lock();
        let r = f(&guard);
        (r, guard.rv, self.events.subscribe())
    }

    /// Resolves when the cluster has been removed (open watches end then).
    pub fn removed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.removed.subscribe();
        async move {
            let _ = rx.wait_for(|removed| *removed).await;
        }
    }

    /// End open watches and forget every row of this cluster in durable storage.
    pub async fn destroy(&self) -> Result<()> {
        self.removed.send_replace(true);
        if let Some(p) = &self.persist {
            p.drop_cluster(&self.name)
                .await
                .map_err(|_| Error::StorageClosed)??;
        }
        Ok(())
    }
}
