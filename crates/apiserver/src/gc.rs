//! Garbage collection by ownerReferences, as kube-controller-manager's garbage collector does
//! it, one worker per logical cluster:
//!
//! - an object all of whose owners are gone (absent, or present with another uid) is deleted,
//!   with the propagation its own finalizers ask for (background by default); one that still has
//!   a live owner loses only the references to the gone ones;
//! - an owner deleted in the foreground (`foregroundDeletion` finalizer) has its dependents
//!   deleted (in the foreground themselves when they have dependents) and goes once no
//!   dependent with `blockOwnerDeletion` is left;
//! - an owner deleted with the `orphan` finalizer has its references removed from every
//!   dependent, then loses the finalizer.
//!
//! Owners resolve by apiVersion, kind and name, in the dependent's namespace for namespaced
//! kinds, and count only with the referenced uid. A reference to a kind that is not served, or
//! from a cluster-scoped object to a namespaced kind, cannot be resolved: such an object is left
//! alone (and looked at again when a CRD changes).
//!
//! The same worker runs the storage-protection controllers ([`crate::protection`]).
//!
//! The work is derived from the stored objects: the [`Tracker`] (kept in the cluster state and
//! fed with every change as its transaction ends) indexes dependents by owner uid and queues what to look at;
//! after a restart it is rebuilt from the loaded objects, so a collection pending at a crash
//! finishes. The worker's own writes go through the ordinary delete path and are watched like
//! any other.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::handlers::crud::{self, DeleteOptions, Propagation};
use crate::protection;
use crate::registry::{CRD_KEY, ResourceInfo};
use crate::storage::{ClusterStore, EventType, Objects, Txn, WatchEvent};

/// The finalizer of a foreground deletion.
pub(crate) const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of an orphaning deletion.
pub(crate) const ORPHAN: &str = "orphan";
/// The field manager the collector's writes are recorded under (kube's garbage collector runs
/// in kube-controller-manager).
const MANAGER: &str = "kube-controller-manager";
/// Items looked at per transaction, so other writers are not held up for long.
const BATCH: usize = 256;

/// One stored object: storage key, namespace, name.
type ObjKey = (Arc<str>, String, String);

/// An ownerReference, as far as the collector needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct OwnerRef {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    block: bool,
}

fn owner_refs(obj: &Value) -> Vec<OwnerRef> {
    let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    refs.iter()
        .filter_map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).map(String::from);
            Some(OwnerRef {
                api_version: s("apiVersion")?,
                kind: s("kind")?,
                name: s("name")?,
                uid: s("uid")?,
                block: r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true),
            })
        })
        .collect()
}

fn uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/uid").and_then(Value::as_str)
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)))
}

/// Being deleted and waiting for the collector (orphaning or deleting its dependents).
/// A claim or volume being deleted that still has its protection finalizer.
fn protected_deleting(k: &ObjKey, obj: &Value) -> bool {
    deleting(obj) && protection::finalizer_for(&k.0).is_some_and(|f| has_finalizer(obj, f))
}

/// Drop a deleted claim's or volume's protection finalizer once nothing uses it.
fn release(txn: &mut Txn<'_>, k: &ObjKey) {
    let Some(obj) = txn.state().get(&k.0, &k.1, &k.2) else {
        return;
    };
    let (Some(finalizer), Some(info)) = (protection::finalizer_for(&k.0), info_of(txn, &k.0))
    else {
        return;
    };
    if deleting(&obj)
        && has_finalizer(&obj, finalizer)
        && protection::releasable(txn.state(), &k.0, &k.1, &obj)
    {
        remove_finalizer(txn, &info, k, finalizer);
    }
}

fn awaits_collector(obj: &Value) -> bool {
    deleting(obj) && (has_finalizer(obj, FOREGROUND) || has_finalizer(obj, ORPHAN))
}

/// What to look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Item {
    /// An object: as an owner being deleted, or as a dependent whose owners may be gone.
    Object(ObjKey),
    /// The dependents of an object that was removed.
    Dependents(String),
    /// The owner a dependent (in this namespace) names: its deletion may wait on the dependent.
    Owner(String, OwnerRef),
    /// A claim or volume that may be deleted with its protection finalizer (see
    /// [`crate::protection`]).
    Protected(ObjKey),
}

/// The collector's bookkeeping for one logical cluster, kept in its state.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Owner uid → objects whose ownerReferences name it (a superset: always checked against
    /// the stored object).
    dependents: HashMap<String, BTreeSet<ObjKey>>,
    queue: VecDeque<Item>,
    queued: HashSet<Item>,
    /// Objects with a reference that cannot be resolved yet (kind not served).
    unresolved: BTreeSet<ObjKey>,
    notify: Arc<Notify>,
}

impl Tracker {
    fn push(&mut self, item: Item) {
        if self.queued.insert(item.clone()) {
            self.queue.push_back(item);
            self.notify.notify_one();
        }
    }

    fn index(&mut self, key: &ObjKey, refs: &[OwnerRef]) {
        for r in refs {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(key.clone());
        }
    }

    fn unindex(&mut self, key: &ObjKey, r: &OwnerRef) {
        if let Some(set) = self.dependents.get_mut(&r.uid) {
            set.remove(key);
            if set.is_empty() {
                self.dependents.remove(&r.uid);
            }
        }
    }

    /// Index every loaded object and queue whatever may need collecting (after a restart).
    pub(crate) fn rebuild(&mut self, objects: &HashMap<Arc<str>, Objects>) {
        for (key, objs) in objects {
            for ((ns, name), obj) in objs {
                let k: ObjKey = (key.clone(), ns.clone(), name.clone());
                let refs = owner_refs(obj);
                self.index(&k, &refs);
                if protected_deleting(&k, obj) {
                    self.push(Item::Protected(k.clone()));
                }
                if !refs.is_empty() || awaits_collector(obj) {
                    self.push(Item::Object(k));
                }
            }
        }
    }

    /// Follow one committed change.
    pub(crate) fn observe(&mut self, e: &WatchEvent) {
        let k: ObjKey = (e.key.clone(), e.namespace.clone(), e.name.clone());
        let old = e.prev.as_deref().map(owner_refs).unwrap_or_default();
        let new = match e.kind {
            EventType::Deleted => Vec::new(),
            _ => owner_refs(&e.object),
        };
        if old != new {
            for r in &old {
                if !new.iter().any(|n| n.uid == r.uid) {
                    self.unindex(&k, r);
                }
                // An owner deleted in the foreground may have been waiting for this one.
                self.push(Item::Owner(e.namespace.clone(), r.clone()));
            }
            self.index(&k, &new);
            if !new.is_empty() {
                self.push(Item::Object(k.clone()));
            }
        }
        if e.kind != EventType::Deleted && protected_deleting(&k, &e.object) {
            self.push(Item::Protected(k.clone()));
        }
        if *e.key == *protection::PODS {
            // The claims the pod mounted or mounts may be free now.
            let mut claims = e
                .prev
                .as_deref()
                .map(protection::claims_of)
                .unwrap_or_default();
            claims.extend(protection::claims_of(&e.object));
            let key: Arc<str> = Arc::from(protection::CLAIMS);
            for claim in claims {
                self.push(Item::Protected((key.clone(), e.namespace.clone(), claim)));
            }
        }
        match e.kind {
            EventType::Deleted => {
                self.unresolved.remove(&k);
                if let Some(u) = uid(&e.object)
                    && self.dependents.contains_key(u)
                {
                    self.push(Item::Dependents(u.to_string()));
                }
            }
            _ if awaits_collector(&e.object) => self.push(Item::Object(k)),
            _ => {}
        }
        if *e.key == *CRD_KEY {
            for k in std::mem::take(&mut self.unresolved) {
                self.push(Item::Object(k));
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<Item> {
        let n = n.min(self.queue.len());
        let items: Vec<Item> = self.queue.drain(..n).collect();
        for i in &items {
            self.queued.remove(i);
        }
        items
    }

    fn dependents_of(&self, uid: &str) -> Vec<ObjKey> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn notify(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}

/// Run the collector of one logical cluster until it is removed, its storage fails or the
/// server shuts down.
pub(crate) async fn run(store: Arc<ClusterStore>, mut shutdown: watch::Receiver<bool>) {
    let notify = store.read(|s| s.gc.notify());
    let removed = store.removed();
    tokio::pin!(removed);
    loop {
        loop {
            match store.write(|txn| Ok(step(txn))).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(cluster = store.name(), "garbage collection stopped: {e}");
                    return;
                }
            }
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = &mut removed => return,
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Look at one batch; true when more is queued.
fn step(txn: &mut Txn<'_>) -> bool {
    for item in txn.gc_mut().take(BATCH) {
        match item {
            Item::Object(k) => collect(txn, &k),
            Item::Dependents(uid) => {
                for k in txn.state().gc.dependents_of(&uid) {
                    collect(txn, &k);
                }
            }
            Item::Owner(ns, r) => {
                if let Owner::Present(k, _) = resolve(txn, &ns, &r) {
                    collect(txn, &k);
                }
            }
            Item::Protected(k) => release(txn, &k),
        }
    }
    !txn.state().gc.queue.is_empty()
}

enum Owner {
    /// Stored with the referenced uid.
    Present(ObjKey, Arc<Value>),
    /// Not stored, or stored with another uid.
    Absent,
    /// The kind is not served, or a cluster-scoped dependent names a namespaced kind.
    Unresolvable,
}

fn info_of(txn: &Txn<'_>, key: &str) -> Option<Arc<ResourceInfo>> {
    txn.state().registry.by_storage_key(key)
}

fn resolve(txn: &Txn<'_>, dependent_ns: &str, r: &OwnerRef) -> Owner {
    let (group, version) = r
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &r.api_version));
    let Some(info) = txn.state().registry.by_kind(group, version, &r.kind) else {
        return Owner::Unresolvable;
    };
    let ns = if info.namespaced {
        if dependent_ns.is_empty() {
            return Owner::Unresolvable;
        }
        dependent_ns
    } else {
        ""
    };
    let key: Arc<str> = Arc::from(info.storage_key());
    match txn.state().get(&key, ns, &r.name) {
        Some(o) if uid(&o) == Some(r.uid.as_str()) => {
            Owner::Present((key, ns.to_string(), r.name.clone()), o)
        }
        _ => Owner::Absent,
    }
}

/// The stored dependents of `owner_uid` (with the reference naming it).
fn live_dependents(txn: &Txn<'_>, owner_uid: &str) -> Vec<(ObjKey, Arc<Value>, OwnerRef)> {
    txn.state()
        .gc
        .dependents_of(owner_uid)
        .into_iter()
        .filter_map(|k| {
            let o = txn.state().get(&k.0, &k.1, &k.2)?;
            let r = owner_refs(&o).into_iter().find(|r| r.uid == owner_uid)?;
            Some((k, o, r))
        })
        .collect()
}

fn collect(txn: &mut Txn<'_>, k: &ObjKey) {
    let Some(obj) = txn.state().get(&k.0, &k.1, &k.2) else {
        return;
    };
    let Some(info) = info_of(txn, &k.0) else {
        return;
    };
    if deleting(&obj) {
        if has_finalizer(&obj, ORPHAN) {
            orphan_dependents(txn, &obj);
            remove_finalizer(txn, &info, k, ORPHAN);
        } else if has_finalizer(&obj, FOREGROUND) {
            delete_dependents(txn, &info, k, &obj);
        }
        return;
    }
    let refs = owner_refs(&obj);
    if refs.is_empty() {
        return;
    }
    let (mut solid, mut gone, mut waiting) = (0, Vec::new(), Vec::new());
    for r in &refs {
        match resolve(txn, &k.1, r) {
            Owner::Unresolvable => {
                txn.gc_mut().unresolved.insert(k.clone());
                return;
            }
            Owner::Absent => gone.push(r.uid.clone()),
            Owner::Present(_, o) if deleting(&o) && has_finalizer(&o, FOREGROUND) => {
                waiting.push(r.uid.clone());
            }
            Owner::Present(..) => solid += 1,
        }
    }
    if solid > 0 {
        if !gone.is_empty() || !waiting.is_empty() {
            gone.extend(waiting);
            drop_references(txn, &info, k, &obj, &gone);
        }
        return;
    }
    let own_uid = uid(&obj).unwrap_or_default().to_string();
    let propagation = if !waiting.is_empty() && !live_dependents(txn, &own_uid).is_empty() {
        Propagation::Foreground
    } else if has_finalizer(&obj, ORPHAN) {
        Propagation::Orphan
    } else if has_finalizer(&obj, FOREGROUND) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    let opts = DeleteOptions::propagating(propagation);
    if let Err(e) = crud::delete_in(txn, &info, &k.1, &k.2, &opts) {
        tracing::debug!(name = %k.2, "garbage collection: delete: {e}");
    }
}

/// A foreground deletion: delete the dependents that are not being deleted yet, and let the
/// owner go once no blocking dependent is left.
fn delete_dependents(txn: &mut Txn<'_>, info: &ResourceInfo, k: &ObjKey, owner: &Value) {
    let owner_uid = uid(owner).unwrap_or_default().to_string();
    for (dk, d, _) in live_dependents(txn, &owner_uid) {
        if !deleting(&d) {
            collect(txn, &dk);
        }
    }
    let blocked = live_dependents(txn, &owner_uid)
        .iter()
        .any(|(_, _, r)| r.block);
    if !blocked {
        remove_finalizer(txn, info, k, FOREGROUND);
    }
}

fn orphan_dependents(txn: &mut Txn<'_>, owner: &Value) {
    let owner_uid = uid(owner).unwrap_or_default().to_string();
    for (dk, d, _) in live_dependents(txn, &owner_uid) {
        if let Some(info) = info_of(txn, &dk.0) {
            drop_references(txn, &info, &dk, &d, std::slice::from_ref(&owner_uid));
        }
    }
}

/// Remove the references to `uids` from a dependent.
fn drop_references(
    txn: &mut Txn<'_>,
    info: &ResourceInfo,
    k: &ObjKey,
    obj: &Value,
    uids: &[String],
) {
    let mut new = obj.clone();
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.retain(|r| {
            !r.get("uid")
                .and_then(Value::as_str)
                .is_some_and(|u| uids.iter().any(|x| x == u))
        });
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }
    write(txn, info, k, obj, new);
}

fn remove_finalizer(txn: &mut Txn<'_>, info: &ResourceInfo, k: &ObjKey, finalizer: &str) {
    let Some(obj) = txn.state().get(&k.0, &k.1, &k.2) else {
        return;
    };
    let mut new = (*obj).clone();
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Array(fs)) = meta.get_mut("finalizers") {
        fs.retain(|f| f.as_str() != Some(finalizer));
        if fs.is_empty() {
            meta.remove("finalizers");
        }
    }
    write(txn, info, k, &obj, new);
}

/// Store the collector's change of `old`, recording it as kube's collector's update (which
/// removes fields from their managers and owns nothing), or remove the object when that left a
/// deleted object without finalizers.
fn write(txn: &mut Txn<'_>, info: &ResourceInfo, k: &ObjKey, old: &Value, new: Value) {
    if new == *old {
        return;
    }
    let new = match crate::handlers::admission::record_update_by(
        info,
        MANAGER,
        "",
        &k.2,
        Some(old),
        &new,
    ) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(name = %k.2, "garbage collection: managed fields: {e}");
            new
        }
    };
    crud::store_or_finish(txn, info, &k.1, &k.2, new);
}
