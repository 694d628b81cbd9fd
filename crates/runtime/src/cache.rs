//! Shared caches: one reflector (one watch) per kind per process, whatever number of
//! controllers read or are triggered by that kind. Controllers ask for a kind's [`Cache`] while
//! they are being built, subscribe to its changes, and read its [`Store`]; the caches start
//! watching only once every controller has subscribed ([`Caches::start`]), so no subscriber
//! misses the initial list. Owns the watches and the "object is gone" notices; never decides
//! what a change means.

use std::{
    any::{Any, TypeId},
    collections::{HashMap, HashSet},
    fmt::Debug,
    hash::Hash,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::{StreamExt, future::BoxFuture, stream::BoxStream};
use kube::{
    Api, Client, Resource,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store, store::Writer},
        watcher,
    },
};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::error::{Error, Result};

/// How many changes a slow subscriber may fall behind before the watch waits for it.
const BUFFER: usize = 1024;

/// A kind a cache can hold: a Kubernetes object, typed (`DynamicType = ()`) or dynamic
/// ([`DynamicObject`](kube::api::DynamicObject), whose `ApiResource` names the kind).
pub trait WatchedKind:
    Resource<DynamicType: Clone + Debug + Eq + Hash + Unpin + Send + Sync + 'static>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> WatchedKind for K where
    K: Resource<DynamicType: Clone + Debug + Eq + Hash + Unpin + Send + Sync + 'static>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A kind the shared caches hold: a typed Kubernetes object with a static type.
pub trait CachedKind: WatchedKind + Resource<DynamicType = ()> {}

impl<K> CachedKind for K where K: WatchedKind + Resource<DynamicType = ()> {}

/// One kind's cache: the store every reader shares, change subscriptions for controllers, and
/// notices of objects that went away. The shared caches ([`Caches`]) hold one per typed kind;
/// [`Cache::dynamic`] makes one for a kind found at run time, watched until its own stop.
pub struct Cache<K: WatchedKind> {
    store: Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    dispatch: Dispatch<K>,
    gone: broadcast::Sender<ObjectRef<K>>,
    synced: watch::Sender<bool>,
    kind: String,
    dyntype: K::DynamicType,
    config: watcher::Config,
}

/// A stream of changed objects of one cache.
pub type Changes<K> = BoxStream<'static, Arc<K>>;

/// How a cache hands changes to its subscribers.
enum Dispatch<K: WatchedKind> {
    /// A typed kind: kube's shared reflector, whose subscribers may fall [`BUFFER`] changes
    /// behind before the watch waits for them.
    Shared(fn(&Writer<K>) -> Option<Changes<K>>),
    /// A dynamic kind (kube's shared streams need a `Default` dynamic type): the watch task
    /// sends each change to every subscriber itself, the initial list once it is in the store.
    Own(Mutex<Vec<mpsc::UnboundedSender<Arc<K>>>>),
}

fn shared_handle<K: CachedKind>(writer: &Writer<K>) -> Option<Changes<K>> {
    writer.subscribe().map(StreamExt::boxed)
}

impl<K: WatchedKind> Cache<K> {
    /// A cache of the kind `dyntype` names, not yet watching: subscribe first, then
    /// [`Cache::start`] it.
    pub fn dynamic(dyntype: K::DynamicType) -> Arc<Self> {
        Self::selected(dyntype, None)
    }

    /// A cache of the kind `dyntype` names holding only the objects `labels` (a label
    /// selector) selects, when given; not yet watching.
    pub fn selected(dyntype: K::DynamicType, labels: Option<&str>) -> Arc<Self> {
        let mut config = watcher::Config::default();
        if let Some(labels) = labels {
            config = config.labels(labels);
        }
        let writer = Writer::new(dyntype.clone());
        Arc::new(Self {
            store: writer.as_reader(),
            writer: Mutex::new(Some(writer)),
            dispatch: Dispatch::Own(Mutex::default()),
            gone: broadcast::channel(BUFFER).0,
            synced: watch::channel(false).0,
            kind: K::kind(&dyntype).into_owned(),
            dyntype,
            config,
        })
    }

    /// Starts watching (in every namespace) on a task of its own, until `stop` is cancelled.
    /// Subscriptions must be taken before; a second start does nothing.
    pub fn start(&self, client: Client, stop: CancellationToken) {
        if let Some(task) = self.watch(client, stop) {
            tokio::spawn(task);
        }
    }

    /// What names the kind: `()` for a typed kind, the `ApiResource` of a dynamic one.
    pub fn dyntype(&self) -> &K::DynamicType {
        &self.dyntype
    }

    /// The store: every object of the kind as last seen.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// A stream of changed objects (every object once after each full list, then each change).
    ///
    /// # Errors
    ///
    /// [`Error::CachesStarted`] once the caches have started: a late subscriber would miss the
    /// objects listed before it came.
    pub fn subscribe(&self) -> Result<Changes<K>> {
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let started = || Error::CachesStarted {
            kind: self.kind.clone(),
        };
        let writer = writer.as_ref().ok_or_else(started)?;
        match &self.dispatch {
            Dispatch::Shared(subscribe) => subscribe(writer).ok_or_else(started),
            Dispatch::Own(subscribers) => {
                let (tx, rx) = mpsc::unbounded_channel();
                subscribers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(tx);
                Ok(UnboundedReceiverStream::new(rx).boxed())
            }
        }
    }

    /// Notices of objects that were deleted or vanished across a relist.
    pub fn gone(&self) -> broadcast::Receiver<ObjectRef<K>> {
        self.gone.subscribe()
    }

    /// Whether the first full list has arrived.
    pub fn synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first full list has arrived (any number of tasks may wait).
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|synced| *synced).await;
    }

    /// The task that keeps the cache filled: watches the kind until `stop` is cancelled.
    fn watch(&self, client: Client, stop: CancellationToken) -> Option<BoxFuture<'static, ()>> {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        let store = self.store.clone();
        let gone = self.gone.clone();
        let synced = self.synced.clone();
        let kind = self.kind.clone();
        let span = info_span!("cache", kind = %kind);
        let api: Api<K> = Api::all_with(client, &self.dyntype);
        let dyntype = self.dyntype.clone();
        let mut listed: Option<HashSet<ObjectRef<K>>> = None;
        let subscribers = match &self.dispatch {
            Dispatch::Shared(_) => Vec::new(),
            Dispatch::Own(subscribers) => {
                std::mem::take(&mut *subscribers.lock().unwrap_or_else(|p| p.into_inner()))
            }
        };
        let mut initial: Vec<Arc<K>> = Vec::new();
        let events = reflector::reflector(writer, watcher(api, self.config.clone()))
            .default_backoff()
            .for_each(move |event| {
                if !subscribers.is_empty() {
                    match &event {
                        Ok(watcher::Event::Apply(object)) => {
                            let object = Arc::new(object.clone());
                            for subscriber in &subscribers {
                                let _ = subscriber.send(object.clone());
                            }
                        }
                        Ok(watcher::Event::InitApply(object)) => {
                            initial.push(Arc::new(object.clone()));
                        }
                        Ok(watcher::Event::InitDone) => {
                            for object in initial.drain(..) {
                                for subscriber in &subscribers {
                                    let _ = subscriber.send(object.clone());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                match event {
                    Ok(watcher::Event::Delete(object)) => {
                        let _ = gone.send(ObjectRef::from_obj_with(&object, dyntype.clone()));
                    }
                    Ok(watcher::Event::Init) => {
                        listed = Some(
                            store
                                .state()
                                .iter()
                                .map(|o| ObjectRef::from_obj_with(o.as_ref(), dyntype.clone()))
                                .collect(),
                        );
                    }
                    Ok(watcher::Event::InitDone) => {
                        for key in listed.take().unwrap_or_default() {
                            if store.get(&key).is_none() {
                                let _ = gone.send(key);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => warn!(%error, "watch failed; retrying"),
                }
                futures::future::ready(())
            });
        // Synced as soon as the store holds the first full list. Not on the InitDone event: the
        // reflector yields that only after every subscriber has taken the listed objects, and
        // controllers take them only once the caches are synced; with more objects than the
        // subscription buffer that would wait forever. This task is the store's only
        // readiness waiter (kube's readiness wakes one waiter), so later waiters find it ready.
        let ready = self.store.clone();
        let mark_synced = async move {
            if ready.wait_until_ready().await.is_ok() {
                synced.send_replace(true);
                debug!("cache synced");
            }
            futures::future::pending::<()>().await;
        };
        Some(Box::pin(
            async move {
                tokio::select! {
                    () = events => {},
                    () = mark_synced => {},
                    () = stop.cancelled() => {},
                }
            }
            .instrument(span),
        ))
    }
}

/// The shared caches of one process.
pub struct Caches {
    client: Client,
    entries: Mutex<HashMap<TypeId, Entry>>,
    started: AtomicBool,
}

struct Entry {
    cache: Arc<dyn Any + Send + Sync>,
    start: Box<dyn Fn(Client, CancellationToken) -> Option<BoxFuture<'static, ()>> + Send + Sync>,
    synced: watch::Receiver<bool>,
}

impl Caches {
    /// Caches that will watch through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            entries: Mutex::default(),
            started: AtomicBool::new(false),
        }
    }

    /// The cache of kind `K`, created on first use. After [`Caches::start`] a kind nobody asked
    /// for before cannot be added.
    ///
    /// # Errors
    ///
    /// [`Error::CachesStarted`] when `K` is new and the caches have started.
    pub fn get<K>(&self) -> Result<Arc<Cache<K>>>
    where
        K: CachedKind,
        K::DynamicType: Eq + Hash + Clone,
    {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get(&TypeId::of::<K>())
            && let Ok(cache) = entry.cache.clone().downcast::<Cache<K>>()
        {
            return Ok(cache);
        }
        let kind = K::kind(&()).into_owned();
        if self.started.load(Ordering::Acquire) {
            return Err(Error::CachesStarted { kind });
        }
        let (store, writer) = reflector::store_shared::<K>(BUFFER);
        let cache = Arc::new(Cache {
            store,
            writer: Mutex::new(Some(writer)),
            dispatch: Dispatch::Shared(shared_handle::<K>),
            gone: broadcast::channel(BUFFER).0,
            synced: watch::channel(false).0,
            kind: kind.clone(),
            dyntype: (),
            config: watcher::Config::default(),
        });
        let for_start = cache.clone();
        entries.insert(
            TypeId::of::<K>(),
            Entry {
                cache: cache.clone(),
                start: Box::new(move |client, stop| for_start.watch(client, stop)),
                synced: cache.synced.subscribe(),
            },
        );
        Ok(cache)
    }

    /// Starts one watch per cached kind; they run until `stop` is cancelled. Call once, after
    /// every controller has subscribed.
    pub fn start(&self, stop: &CancellationToken) {
        self.started.store(true, Ordering::Release);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for entry in entries.values() {
            if let Some(task) = (entry.start)(self.client.clone(), stop.clone()) {
                tokio::spawn(task);
            }
        }
    }

    /// Whether the caches have started and every one has received its first full list.
    pub fn synced(&self) -> bool {
        if !self.started.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.values().all(|entry| *entry.synced.borrow())
    }

    /// Waits until every cache has received its first full list.
    pub async fn wait_synced(&self) {
        let receivers: Vec<watch::Receiver<bool>> = {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.values().map(|entry| entry.synced.clone()).collect()
        };
        for mut synced in receivers {
            let _ = synced.wait_for(|synced| *synced).await;
        }
    }
}

/// State a controller keeps per object of a cached kind (a client, a failure tracker, a
/// heartbeat), forgotten once the object is gone from the cache, so deleted objects never
/// hold memory.
pub struct PerObject<K: WatchedKind, V> {
    values: Mutex<HashMap<ObjectRef<K>, V>>,
    gone: Mutex<broadcast::Receiver<ObjectRef<K>>>,
    store: Store<K>,
}

impl<K: WatchedKind, V> PerObject<K, V> {
    /// Per-object state for the objects of `cache`.
    pub fn new(cache: &Cache<K>) -> Self {
        Self {
            values: Mutex::default(),
            gone: Mutex::new(cache.gone()),
            store: cache.store(),
        }
    }

    /// The state, after forgetting the objects that went away since the last call.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<K>, V>> {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let mut gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match gone.try_recv() {
                Ok(key) => {
                    values.remove(&key);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    values.retain(|key, _| self.store.get(key).is_some());
                }
                Err(_) => break,
            }
        }
        values
    }
}
