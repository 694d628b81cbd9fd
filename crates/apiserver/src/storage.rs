//! Object storage for one logical cluster: the live objects, the resourceVersion sequence, the
//! in-memory watch history and the broadcast of watch events. Writes happen in a transaction
//! under the cluster lock so resourceVersions are assigned and delivered strictly in order;
//! durable clusters hand each transaction to the SQLite writer (`storage/sqlite.rs`) and only
//! return once it is committed.
//!
//! Durable mode never shows an uncommitted change to a client: a transaction's events wait in
//! `pending` until the writer thread has committed them and then publishes them (history +
//! broadcast, under the cluster lock, in RV order); reads that return data or an RV
//! (`read_committed`, `wait_committed`) wait until everything they saw is committed. So every
//! RV a client ever receives is on disk, and the RV sequence after a restart continues above
//! it. A failed commit marks the cluster failed: every later storage request of that
//! cluster gets 500 "storage failed ... restart the server" and open watches
//! end, because memory then holds changes the disk does not. This module knows nothing about
//! HTTP or API semantics.

pub(crate) mod sqlite;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::errors::{Error, Result};
use crate::registry::Registry;

/// Most watch events each logical cluster keeps in memory for watch resumption.
pub(crate) const HISTORY_LIMIT: usize = 20_000;
/// Events older than this are dropped (like kube-apiserver's 5-minute compaction) ...
const HISTORY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);
/// ... except for the newest ones, so a quiet cluster can always resume recent watches.
const HISTORY_MIN: usize = 100;
/// Capacity of the per-cluster broadcast channel; slow watchers catch up from the history.
const BROADCAST_CAPACITY: usize = 1024;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
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
pub(crate) struct WatchEvent {
    /// resourceVersion of this change.
    pub(crate) rv: u64,
    /// Type.
    pub(crate) kind: EventType,
    /// Storage key `<group>/<plural>`.
    pub(crate) key: Arc<str>,
    /// Namespace ("" for cluster-scoped).
    pub(crate) namespace: String,
    /// Name.
    pub(crate) name: String,
    /// The object after the change (for DELETED: the last state, with the delete's RV).
    pub(crate) object: Arc<Value>,
    /// The object before the change, if any (used for selector transitions).
    pub(crate) prev: Option<Arc<Value>>,
    /// When the change happened (for history eviction).
    pub(crate) at: std::time::Instant,
}

/// Receiver of a cluster's watch events.
pub(crate) type EventReceiver = broadcast::Receiver<Arc<WatchEvent>>;

/// Objects of one resource, by (namespace, name).
pub(crate) type Objects = BTreeMap<(String, String), Arc<Value>>;

/// The mutable state of one logical cluster.
#[derive(Debug)]
pub(crate) struct ClusterState {
    /// Latest resourceVersion assigned.
    pub(crate) rv: u64,
    /// Live objects by storage key.
    pub(crate) objects: HashMap<Arc<str>, Objects>,
    /// Retained events, ascending RV, contiguous after `history_start`.
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with rv > history_start is in `history` or `pending`.
    history_start: u64,
    /// Events assigned but not yet committed (durable mode), ascending RV, all newer than
    /// `history`. Published (moved to `history` and broadcast) after their commit.
    pending: VecDeque<Arc<WatchEvent>>,
    /// Newest RV whose transaction is committed and published.
    committed: u64,
    /// Served resources (built-ins and CRDs).
    pub(crate) registry: Registry,
    last_prune: u64,
    history_limit: usize,
    /// The garbage collector's index and queue, fed with every committed change.
    pub(crate) gc: crate::gc::Tracker,
}

impl ClusterState {
    fn new(registry: Registry) -> Self {
        ClusterState {
            rv: 0,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_start: 0,
            pending: VecDeque::new(),
            committed: 0,
            registry,
            last_prune: 0,
            history_limit: HISTORY_LIMIT,
            gc: crate::gc::Tracker::default(),
        }
    }

    /// Objects of one resource.
    pub(crate) fn objects(&self, key: &str) -> Option<&Objects> {
        self.objects.get(key)
    }

    /// One object.
    pub(crate) fn get(&self, key: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Number of objects in a namespace, over all namespaced resources.
    pub(crate) fn count_in_namespace(&self, namespace: &str) -> usize {
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
    pub(crate) fn events_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if rv < self.history_start {
            return None;
        }
        let start = self.history.partition_point(|e| e.rv <= rv);
        Some(self.history.range(start..).cloned().collect())
    }

    /// Objects of one resource as they were at `rv`, rebuilt by undoing later events; None
    /// when the history no longer reaches back that far.
    pub(crate) fn objects_at(&self, key: &str, rv: u64) -> Option<Objects> {
        let mut objs = self.objects.get(key).cloned().unwrap_or_default();
        if rv >= self.rv {
            return Some(objs);
        }
        if rv < self.history_start {
            return None;
        }
        let newest_first = self.pending.iter().rev().chain(self.history.iter().rev());
        for e in newest_first.take_while(|e| e.rv > rv) {
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
    pub(crate) fn history_start(&self) -> u64 {
        self.history_start
    }

    /// The newest committed (and published) resourceVersion; `rv` may be ahead of it for the
    /// few milliseconds a durable commit takes.
    pub(crate) fn committed_rv(&self) -> u64 {
        self.committed
    }
}

/// A write transaction over one cluster's state. Every put/remove gets its own RV.
pub(crate) struct Txn<'a> {
    state: &'a mut ClusterState,
    events: Vec<Arc<WatchEvent>>,
}

impl Txn<'_> {
    /// Read access to the state.
    pub(crate) fn state(&self) -> &ClusterState {
        self.state
    }

    /// The garbage collector's bookkeeping.
    pub(crate) fn gc_mut(&mut self) -> &mut crate::gc::Tracker {
        &mut self.state.gc
    }

    /// Mutable access to the registry (CRD (un)registration happens inside the write).
    pub(crate) fn registry_mut(&mut self) -> &mut Registry {
        &mut self.state.registry
    }

    /// Store an object, assigning the next RV (written into metadata.resourceVersion).
    pub(crate) fn put(
        &mut self,
        key: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Arc<Value> {
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
    pub(crate) fn remove(&mut self, key: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
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
    pub(crate) fn remove_all(&mut self, key: &str) -> usize {
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
pub(crate) fn set_resource_version(object: &mut Value, rv: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Storage of one logical cluster.
pub(crate) struct ClusterStore {
    inner: Arc<Inner>,
}

/// The parts of a cluster the writer thread's publish step needs too.
struct Inner {
    name: String,
    state: Mutex<ClusterState>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    persist: Option<sqlite::Writer>,
    removed: tokio::sync::watch::Sender<bool>,
    /// Mirrors `ClusterState::committed` for waiters, plus the failed flag.
    commits: tokio::sync::watch::Sender<Commits>,
    /// Set once a commit failed (or the writer vanished); never cleared.
    failed: AtomicBool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Commits {
    rv: u64,
    failed: bool,
}

impl std::fmt::Debug for ClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterStore")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, ClusterState> {
        // A panic while holding the lock cannot leave the map half-written (all mutations
        // are single inserts/removes), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 500, not 503: the condition lasts until a restart, and kube-rs (like client-go with
    /// Retry-After) retries 503 for minutes instead of surfacing it.
    fn failed_error(&self) -> Error {
        Error::internal(format!(
            "storage failed for logical cluster {:?}: a write could not be committed, so \
             memory no longer matches disk; restart the server",
            self.name
        ))
    }

    fn check(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failed_error());
        }
        Ok(())
    }

    /// Publish every pending event up to `through` (now committed): append it to the history
    /// and broadcast it, in RV order, under the cluster lock (so `watch_from` stays atomic).
    fn publish_through(&self, through: u64) {
        if self.failed.load(Ordering::Acquire) {
            return;
        }
        let mut guard = self.lock();
        self.publish_locked(&mut guard, through);
    }

    fn publish_locked(&self, st: &mut ClusterState, through: u64) {
        while st.pending.front().is_some_and(|e| e.rv <= through) {
            if let Some(e) = st.pending.pop_front() {
                st.history.push_back(e.clone());
                // No receivers is fine.
                let _ = self.events.send(e);
            }
        }
        st.committed = st.committed.max(through);
        let now = std::time::Instant::now();
        while st.history.len() > st.history_limit
            || (st.history.len() > HISTORY_MIN.min(st.history_limit)
                && st
                    .history
                    .front()
                    .is_some_and(|e| now.duration_since(e.at) > HISTORY_MAX_AGE))
        {
            if let Some(old) = st.history.pop_front() {
                st.history_start = old.rv;
            }
        }
        if st.history_start >= st.last_prune + 1000 {
            st.last_prune = st.history_start;
            if let Some(p) = &self.persist {
                p.prune(&self.name, st.history_start);
            }
        }
        let rv = st.committed;
        self.commits.send_if_modified(|c| {
            let changed = c.rv != rv;
            c.rv = rv;
            changed
        });
    }

    /// A commit failed: refuse everything from now on and end open watches. Does not take the
    /// cluster lock (it may run while a writer holds it).
    fn fail(&self) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(cluster = %self.name, "durable write failed; logical cluster now refuses requests until restart");
        }
        self.commits.send_modify(|c| c.failed = true);
        self.removed.send_replace(true);
    }
}

/// The writer thread's step for one transaction. Dropped unrun (writer gone) = failed.
struct CommitStep {
    inner: Arc<Inner>,
    rv: u64,
    done: bool,
}

impl CommitStep {
    fn run(mut self, ok: bool) {
        self.done = true;
        if ok {
            self.inner.publish_through(self.rv);
        } else {
            self.inner.fail();
        }
    }
}

impl Drop for CommitStep {
    fn drop(&mut self) {
        if !self.done {
            self.inner.fail();
        }
    }
}

/// What `write` does after releasing the lock.
enum AfterWrite<R> {
    Done(Result<R>),
    WaitFor(u64, Result<R>),
    Ack(tokio::sync::oneshot::Receiver<Result<()>>, Result<R>),
}

impl ClusterStore {
    /// A new, empty, in-memory cluster keeping only `limit` watch events (tests of 410).
    #[cfg(test)]
    pub(crate) fn with_history_limit(name: &str, limit: usize) -> Self {
        let mut state = ClusterState::new(Registry::new());
        state.history_limit = limit;
        Self::from_state(name, state, None)
    }

    /// A new, empty cluster.
    pub(crate) fn new(name: &str, persist: Option<sqlite::Writer>) -> Self {
        Self::from_state(name, ClusterState::new(Registry::new()), persist)
    }

    fn from_state(name: &str, state: ClusterState, persist: Option<sqlite::Writer>) -> Self {
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let commits = tokio::sync::watch::Sender::new(Commits {
            rv: state.committed,
            failed: false,
        });
        ClusterStore {
            inner: Arc::new(Inner {
                name: name.to_string(),
                state: Mutex::new(state),
                events,
                persist,
                removed: tokio::sync::watch::Sender::new(false),
                commits,
                failed: AtomicBool::new(false),
            }),
        }
    }

    /// Rebuild a cluster from loaded rows.
    pub(crate) fn restore(
        name: &str,
        loaded: sqlite::LoadedCluster,
        persist: Option<sqlite::Writer>,
    ) -> Self {
        let mut state = ClusterState::new(Registry::new());
        state.rv = loaded.rv;
        state.committed = loaded.rv;
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
        let mut gc = std::mem::take(&mut state.gc);
        gc.rebuild(&state.objects);
        state.gc = gc;
        Self::from_state(name, state, persist)
    }

    /// Run a read-only closure over the state, which may include changes whose commit is
    /// still in flight (used for the registry/discovery; use `read_committed` for anything
    /// that returns objects or resourceVersions to a client).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.inner.lock())
    }

    /// Run a read-only closure over the state and return its result once everything the
    /// closure could have seen is committed (at once when nothing is in flight), so no
    /// uncommitted object or RV reaches a client. 500 if the cluster's storage failed.
    pub(crate) async fn read_committed<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> Result<R> {
        self.inner.check()?;
        let (r, need) = {
            let guard = self.inner.lock();
            let need = (guard.committed < guard.rv).then_some(guard.rv);
            (f(&guard), need)
        };
        if let Some(rv) = need {
            self.wait_committed(rv).await?;
        }
        Ok(r)
    }

    /// Resolves once every change up to `rv` is committed and published (500 if the
    /// cluster's storage failed meanwhile).
    pub(crate) async fn wait_committed(&self, rv: u64) -> Result<()> {
        let mut rx = self.inner.commits.subscribe();
        let state = *rx
            .wait_for(|c| c.failed || c.rv >= rv)
            .await
            .map_err(|_| Error::StorageClosed)?;
        if state.failed {
            return Err(self.inner.failed_error());
        }
        Ok(())
    }

    /// Run a write transaction and return once it is durable (at once for in-memory
    /// clusters). Its changes are visible to other transactions at once, but its watch events
    /// are published only after the commit, and neither its result nor its error is returned
    /// before everything it could have observed is committed.
    pub(crate) async fn write<R>(&self, f: impl FnOnce(&mut Txn<'_>) -> Result<R>) -> Result<R> {
        self.inner.check()?;
        let after = {
            let inner = &self.inner;
            let mut guard = inner.lock();
            let mut txn = Txn {
                state: &mut guard,
                events: Vec::new(),
            };
            // Changes made before an error still happened: they are committed like any other.
            let result = f(&mut txn);
            let events = std::mem::take(&mut txn.events);
            for e in &events {
                guard.gc.observe(e);
            }
            let rv = guard.rv;
            if events.is_empty() {
                if guard.committed < rv {
                    AfterWrite::WaitFor(rv, result)
                } else {
                    AfterWrite::Done(result)
                }
            } else {
                guard.pending.extend(events.iter().cloned());
                match &inner.persist {
                    None => {
                        inner.publish_locked(&mut guard, rv);
                        AfterWrite::Done(result)
                    }
                    Some(p) => {
                        let step = CommitStep {
                            inner: inner.clone(),
                            rv,
                            done: false,
                        };
                        // Submitted under the lock: the writer sees transactions in RV order.
                        let ack =
                            p.submit(&inner.name, rv, events, Box::new(move |ok| step.run(ok)));
                        AfterWrite::Ack(ack, result)
                    }
                }
            }
        };
        match after {
            AfterWrite::Done(result) => result,
            AfterWrite::WaitFor(rv, result) => {
                self.wait_committed(rv).await?;
                result
            }
            AfterWrite::Ack(ack, result) => {
                ack.await.map_err(|_| Error::StorageClosed)??;
                result
            }
        }
    }

    /// Subscribe to events after `rv`: returns the backlog from history and a receiver for
    /// later events (which may repeat backlog events; skip RVs already seen). Both come from
    /// committed events only, taken under the lock the publish step holds.
    pub(crate) fn watch_from(&self, rv: u64) -> Result<(Vec<Arc<WatchEvent>>, EventReceiver)> {
        self.inner.check()?;
        let guard = self.inner.lock();
        let backlog = guard.events_since(rv).ok_or_else(|| {
            Error::gone(format!(
                "too old resource version: {rv} ({})",
                guard.history_start + 1
            ))
        })?;
        Ok((backlog, self.inner.events.subscribe()))
    }

    /// Subscribe at the current state: returns a snapshot selected by `f`, the RV of the
    /// snapshot and a receiver for everything after it. The snapshot may include changes
    /// still being committed: call `wait_committed(rv)` before showing it to a client.
    pub(crate) fn snapshot_and_watch<R>(
        &self,
        f: impl FnOnce(&ClusterState) -> R,
    ) -> (R, u64, broadcast::Receiver<Arc<WatchEvent>>) {
        let guard = self.inner.lock();
        let r = f(&guard);
        (r, guard.rv, self.inner.events.subscribe())
    }

    /// The logical cluster's name.
    pub(crate) fn name(&self) -> &str {
        &self.inner.name
    }

    /// Resolves when the cluster has been removed or its storage failed (open watches end
    /// then).
    pub(crate) fn removed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.removed.subscribe();
        async move {
            let _ = rx.wait_for(|removed| *removed).await;
        }
    }

    /// End open watches and forget every row of this cluster in durable storage.
    pub(crate) async fn destroy(&self) -> Result<()> {
        self.inner.removed.send_replace(true);
        if let Some(p) = &self.inner.persist {
            p.drop_cluster(&self.inner.name)
                .await
                .map_err(|_| Error::StorageClosed)??;
        }
        Ok(())
    }
}
