//! The one controller runner: every Flotilla controller is a reconcile function handed to a
//! [`Runner`], which owns what they all need around kube-runtime's `Controller` — triggers from
//! the shared caches, explicit concurrency, the reconcile span (`controller`, `name`,
//! `namespace`, `cluster`), per-object exponential backoff (reset on success, dropped when the
//! object goes), one policy for 409 Conflict (requeue soon, debug log), metrics, and graceful
//! shutdown (in-flight reconciles finish, no new ones start). Owns no controller logic.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flotilla_api::{Cluster, names};
use futures::{Stream, StreamExt, stream::BoxStream};
use kube::{
    Resource, ResourceExt,
    runtime::{
        Controller,
        controller::{self, Action},
        reflector::{ObjectRef, Store},
    },
};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tracing::{Instrument, Span, debug, field, info, info_span, warn};

use crate::{
    backoff::Backoff,
    cache::{Cache, CachedKind, WatchedKind},
    context::Context,
    error::{Result, chain},
};

/// For each object of another kind, the keys a `watches` mapper named for it last.
type LastMapped<Other, K> = HashMap<ObjectRef<Other>, Vec<ObjectRef<K>>>;

/// What the runner needs to know about a controller's errors.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    /// The action that failed, in PascalCase (`WriteStatus`, `ReadSecret` …): the `reason`
    /// label of `flotilla_controller_reconcile_errors_total`.
    fn reason(&self) -> &'static str;

    /// Whether the failure was a 409 Conflict: the object changed under the controller, which
    /// is normal and retried soon without backoff or a warning.
    fn is_conflict(&self) -> bool;
}

/// How a controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How many objects are reconciled at once.
    pub concurrency: u16,
    /// The wait after an object's first failure; it doubles per further failure.
    pub backoff_base: Duration,
    /// The longest wait after repeated failures.
    pub backoff_max: Duration,
    /// The wait before retrying after a 409 Conflict.
    pub conflict_retry: Duration,
}

impl Settings {
    /// Settings with `concurrency` and the usual backoff (1 s doubling to 5 min; 100 ms after
    /// a conflict).
    pub fn new(concurrency: u16) -> Self {
        Self {
            concurrency,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            conflict_retry: Duration::from_millis(100),
        }
    }
}

type Trigger<K> = Box<dyn FnOnce(Controller<K>) -> Controller<K> + Send>;

/// A controller being put together: its primary kind `K`, the triggers that wake it, and how
/// it runs. Built while the shared caches have not started; [`Runner::run`] runs it.
pub struct Runner<K: WatchedKind> {
    name: &'static str,
    ctx: Arc<Context>,
    dyntype: K::DynamicType,
    stop: tokio_util::sync::CancellationToken,
    store: Store<K>,
    primary: BoxStream<'static, Arc<K>>,
    gone: broadcast::Receiver<ObjectRef<K>>,
    triggers: Vec<Trigger<K>>,
    pending: Arc<Pending<K>>,
    settings: Settings,
}

impl<K: CachedKind> Runner<K> {
    /// A controller named `name` (its `--controllers` name and metrics label) reconciling every
    /// `K`, woken by every change of a `K` in the shared cache.
    ///
    /// # Errors
    ///
    /// [`crate::Error::CachesStarted`] when the caches already started.
    pub fn new(ctx: &Arc<Context>, name: &'static str, settings: Settings) -> Result<Self> {
        let cache = ctx.caches().get::<K>()?;
        Self::over(ctx, name, &cache, settings)
    }
}

impl<K: WatchedKind> Runner<K> {
    /// A controller named `name` reconciling every object of `cache` — a kind found at run
    /// time ([`Cache::dynamic`]), not yet started — woken by every change in it. Stops with
    /// the context, or earlier with [`Runner::stop_on`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::CachesStarted`] when `cache` already started.
    pub fn over(
        ctx: &Arc<Context>,
        name: &'static str,
        cache: &Cache<K>,
        settings: Settings,
    ) -> Result<Self> {
        let pending = Arc::new(Pending::new(name, ctx));
        let dyntype = cache.dyntype().clone();
        let primary = {
            let pending = pending.clone();
            let dyntype = dyntype.clone();
            cache
                .subscribe()?
                .inspect(move |object| {
                    pending.mark([ObjectRef::from_obj_with(object.as_ref(), dyntype.clone())]);
                })
                .boxed()
        };
        Ok(Self {
            name,
            ctx: ctx.clone(),
            stop: ctx.stop().clone(),
            dyntype,
            store: cache.store(),
            primary,
            gone: cache.gone(),
            triggers: Vec::new(),
            pending,
            settings,
        })
    }

    /// Wakes the controller for a changed `K` only when `projection` of it changed (or the
    /// object is new), so writes to fields the controller does not read — its own status
    /// writes, another controller's — do not trigger it. Periodic requeues still run.
    #[must_use]
    pub fn trigger_when_changed<P: Hash>(
        mut self,
        projection: impl Fn(&K) -> P + Send + 'static,
    ) -> Self {
        let mut seen: HashMap<ObjectRef<K>, u64> = HashMap::new();
        let mut gone = self.gone.resubscribe();
        let store = self.store.clone();
        let pending = self.pending.clone();
        let dyntype = self.dyntype.clone();
        // The primary stream marks objects pending before this filter; unmark what it drops.
        self.primary = self
            .primary
            .filter(move |object| {
                // Forget objects that went away, so a recreated one always counts as changed.
                loop {
                    match gone.try_recv() {
                        Ok(key) => {
                            seen.remove(&key);
                        }
                        Err(TryRecvError::Lagged(_)) => {
                            seen.retain(|key, _| store.get(key).is_some());
                        }
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                let mut hasher = DefaultHasher::new();
                object.meta().uid.hash(&mut hasher);
                projection(object).hash(&mut hasher);
                let hash = hasher.finish();
                let key = ObjectRef::from_obj_with(object.as_ref(), dyntype.clone());
                let changed = seen.insert(key.clone(), hash) != Some(hash);
                if !changed {
                    pending.unmark(&key);
                }
                futures::future::ready(changed)
            })
            .boxed();
        self
    }

    /// Also wakes the controller when an `Other` changes in the shared cache, for the objects
    /// `mapper` names, and when it is deleted, for the objects `mapper` named for it last (the
    /// shared caches' change streams carry no deletions, and a deleted object can no longer be
    /// mapped).
    ///
    /// # Errors
    ///
    /// [`crate::Error::CachesStarted`] when the caches already started.
    pub fn watches<Other, I>(
        mut self,
        mapper: impl Fn(Arc<Other>) -> I + Send + Sync + 'static,
    ) -> Result<Self>
    where
        Other: CachedKind,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
    {
        let cache = self.ctx.caches().get::<Other>()?;
        let stream = cache.subscribe()?;
        let pending = self.pending.clone();
        let last: Arc<Mutex<LastMapped<Other, K>>> = Arc::default();
        let remembered = last.clone();
        let mapper = move |other: Arc<Other>| {
            let keys: Vec<ObjectRef<K>> = mapper(other.clone()).into_iter().collect();
            pending.mark(keys.iter().cloned());
            let mut last = remembered.lock().unwrap_or_else(|p| p.into_inner());
            if keys.is_empty() {
                last.remove(&ObjectRef::from_obj(other.as_ref()));
            } else {
                last.insert(ObjectRef::from_obj(other.as_ref()), keys.clone());
            }
            keys
        };
        let pending = self.pending.clone();
        let gone = futures::stream::unfold(cache.gone(), |mut gone| async move {
            loop {
                match gone.recv().await {
                    Ok(key) => return Some((key, gone)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .flat_map(move |key: ObjectRef<Other>| {
            let keys = last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key)
                .unwrap_or_default();
            pending.mark(keys.iter().cloned());
            futures::stream::iter(keys)
        });
        self.triggers
            .push(Box::new(move |controller: Controller<K>| {
                controller
                    .watches_shared_stream(stream, mapper)
                    .reconcile_on(gone)
            }));
        Ok(self)
    }

    /// Also wakes the controller for the objects `trigger` names (those not in the store are
    /// skipped).
    #[must_use]
    pub fn reconcile_on(
        mut self,
        trigger: impl Stream<Item = ObjectRef<K>> + Send + 'static,
    ) -> Self {
        let pending = self.pending.clone();
        let trigger = trigger.inspect(move |key| pending.mark([key.clone()]));
        self.triggers
            .push(Box::new(move |controller: Controller<K>| {
                controller.reconcile_on(trigger)
            }));
        self
    }

    /// Stops the controller when `stop` is cancelled (it also stops with the context).
    #[must_use]
    pub fn stop_on(mut self, stop: tokio_util::sync::CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// Also wakes the controller for every `K` whenever `trigger` yields.
    #[must_use]
    pub fn reconcile_all_on(mut self, trigger: impl Stream<Item = ()> + Send + 'static) -> Self {
        let store = self.store.clone();
        let pending = self.pending.clone();
        let dyntype = self.dyntype.clone();
        let trigger = trigger.inspect(move |()| {
            pending.mark(
                store
                    .state()
                    .iter()
                    .map(|object| ObjectRef::from_obj_with(object.as_ref(), dyntype.clone())),
            );
        });
        self.triggers
            .push(Box::new(move |controller: Controller<K>| {
                controller.reconcile_all_on(trigger)
            }));
        self
    }

    /// The shared store of `K`.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Runs the controller until the context stops: waits for in-flight reconciles to finish,
    /// then returns.
    pub async fn run<S, E, Fut>(self, reconcile: fn(Arc<K>, Arc<S>) -> Fut, state: Arc<S>)
    where
        S: Send + Sync + 'static,
        E: ReconcileError,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let Runner {
            name,
            ctx,
            dyntype,
            stop,
            store,
            primary,
            gone,
            triggers,
            pending,
            settings,
        } = self;
        ctx.metrics().register_controller(name);
        // Every cache is filled before the first reconcile, so reconciles read complete
        // stores; no reconcile waits on a store's readiness (kube's wakes only one waiter: each
        // cache's own task is that waiter).
        tokio::select! {
            () = ctx.caches().wait_synced() => {}
            () = stop.cancelled() => return,
        }
        let mut controller =
            Controller::for_shared_stream_with(primary, store.clone(), dyntype.clone())
                .with_config(controller::Config::default().concurrency(settings.concurrency))
                .graceful_shutdown_on(async move { stop.cancelled().await });
        for trigger in triggers {
            controller = trigger(controller);
        }
        let inner = Arc::new(Inner {
            name,
            state,
            reconcile,
            backoff: Backoff::new(settings.backoff_base, settings.backoff_max),
            gone: Mutex::new(gone),
            store,
            dyntype,
            pending,
            ctx,
            conflict_retry: settings.conflict_retry,
        });
        info!(
            controller = name,
            concurrency = settings.concurrency,
            "starting controller"
        );
        controller
            .run(Inner::reconcile, Inner::error_policy, inner)
            .for_each(|result| {
                if let Err(error) = result {
                    debug!(controller = name, error = %chain(&error), "reconcile ended with an error");
                }
                futures::future::ready(())
            })
            .await;
        info!(controller = name, "controller stopped");
    }
}

/// Objects woken by a change and not yet reconciled: the controller's queue depth.
struct Pending<K: WatchedKind> {
    name: &'static str,
    ctx: Arc<Context>,
    keys: Mutex<HashSet<ObjectRef<K>>>,
}

impl<K: WatchedKind> Pending<K> {
    fn new(name: &'static str, ctx: &Arc<Context>) -> Self {
        Self {
            name,
            ctx: ctx.clone(),
            keys: Mutex::default(),
        }
    }

    fn mark(&self, keys: impl IntoIterator<Item = ObjectRef<K>>) {
        let mut pending = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend(keys);
        self.ctx.metrics().set_queue_depth(self.name, pending.len());
    }

    fn unmark(&self, key: &ObjectRef<K>) {
        let mut pending = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if pending.remove(key) {
            self.ctx.metrics().set_queue_depth(self.name, pending.len());
        }
    }

    fn retain(&self, keep: impl Fn(&ObjectRef<K>) -> bool) {
        let mut pending = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|key| keep(key));
        self.ctx.metrics().set_queue_depth(self.name, pending.len());
    }
}

/// The running controller's own state, shared by its reconciles.
struct Inner<K: WatchedKind, S, Fut> {
    name: &'static str,
    state: Arc<S>,
    reconcile: fn(Arc<K>, Arc<S>) -> Fut,
    backoff: Backoff<ObjectRef<K>>,
    gone: Mutex<broadcast::Receiver<ObjectRef<K>>>,
    store: Store<K>,
    dyntype: K::DynamicType,
    pending: Arc<Pending<K>>,
    ctx: Arc<Context>,
    conflict_retry: Duration,
}

impl<K, S, E, Fut> Inner<K, S, Fut>
where
    K: WatchedKind,
    S: Send + Sync + 'static,
    E: ReconcileError,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    fn span(&self, object: &K) -> Span {
        let span = info_span!(
            "reconcile",
            controller = self.name,
            name = %object.name_any(),
            namespace = field::Empty,
            cluster = field::Empty,
        );
        if let Some(namespace) = object.namespace() {
            span.record("namespace", namespace.as_str());
        }
        if let Some(cluster) = cluster_of(object, &self.dyntype) {
            span.record("cluster", cluster.as_str());
        }
        span
    }

    fn reconcile(object: Arc<K>, inner: Arc<Self>) -> impl Future<Output = Result<Action, E>> {
        let key = ObjectRef::from_obj_with(object.as_ref(), inner.dyntype.clone());
        inner.pending.unmark(&key);
        let span = inner.span(&object);
        let fut = (inner.reconcile)(object, inner.state.clone());
        async move {
            let started = Instant::now();
            let result = fut.await;
            let reason = match &result {
                Ok(_) => None,
                Err(error) if error.is_conflict() => Some("Conflict"),
                Err(error) => Some(error.reason()),
            };
            inner
                .ctx
                .metrics()
                .reconciled(inner.name, started.elapsed(), reason);
            if result.is_ok() {
                inner.backoff.reset(&key);
            }
            inner.forget_gone();
            result
        }
        .instrument(span)
    }

    fn error_policy(object: Arc<K>, error: &E, inner: Arc<Self>) -> Action {
        let _entered = inner.span(&object).entered();
        if error.is_conflict() {
            debug!(error = %chain(error), "the object changed while it was reconciled; retrying");
            return Action::requeue(inner.conflict_retry);
        }
        let delay = inner.backoff.failed(&ObjectRef::from_obj_with(
            object.as_ref(),
            inner.dyntype.clone(),
        ));
        warn!(error = %chain(error), retry_in = ?delay, "reconcile failed");
        Action::requeue(delay)
    }

    /// Drops the backoff and queue entries of objects that are gone.
    fn forget_gone(&self) {
        let mut gone = self.gone.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match gone.try_recv() {
                Ok(key) => {
                    self.backoff.reset(&key);
                    self.pending.unmark(&key);
                }
                Err(TryRecvError::Lagged(_)) => {
                    self.backoff.retain(|key| self.store.get(key).is_some());
                    self.pending.retain(|key| self.store.get(key).is_some());
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
    }
}

/// The member cluster an object belongs to: a Cluster itself, or an object in a cluster's
/// execution namespace.
fn cluster_of<K: WatchedKind>(object: &K, dyntype: &K::DynamicType) -> Option<String> {
    if K::group(dyntype) == Cluster::group(&()) && K::kind(dyntype) == Cluster::kind(&()) {
        return Some(object.name_any());
    }
    let namespace = object.namespace()?;
    names::cluster_of_execution_namespace(&namespace).map(str::to_owned)
}
