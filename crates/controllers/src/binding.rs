//! The binding controller (Karmada's `binding` and `cluster-resource-binding` controllers): for
//! every ResourceBinding and ClusterResourceBinding with `spec.clusters`, it reads the resource
//! template, renders each target cluster's manifest with the propagation engine
//! ([`flotilla_propagation::render::manifest`]: replicas revised for Divided placements,
//! overrides applied) and writes it as the Work `names::work_name(..)` in the cluster's
//! execution namespace `flotilla-es-<cluster>` (server-side apply under `flotilla-binding`, only
//! when the Work's content would change), labelled with the binding's uid. It deletes the
//! binding's other Works (clusters it no longer targets, except clusters under graceful
//! eviction), and all of them when the binding is deleted (finalizer
//! `flotilla.io/binding-controller`, through kube-runtime's finalizer helper). A Work of that
//! name carrying another binding's id is never overwritten. Every cluster whose Work is not up
//! to date (no Cluster, an overrider that cannot apply — that cluster keeps its last good Work
//! —, a Work of another binding, a failed write) is reported on the binding's
//! `OverridesApplied` condition, as is a missing template; the condition is the only status it
//! writes. It never writes a template, a binding's spec, or a member.
//!
//! Woken by a binding's spec or finalizers changing, by its Works' content changing or a Work
//! it wants going, by OverridePolicy and ClusterOverridePolicy spec changes and deletions
//! (every binding the policy could reach), by a target Cluster's labels or spec changing, and
//! on its resync period.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Debug,
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use flotilla_api::{
    Cluster, ClusterOverridePolicy, ClusterResourceBinding, OverridePolicy, ResourceBinding, Work,
    conditions::{self, FALSE},
    keys::{annotations, field_managers::BINDING, finalizers::BINDING_CONTROLLER, labels},
    names,
    policy::ConflictResolution,
    work::{
        Manifest, ObjectReference, ResourceBindingSpec, ResourceBindingStatus, TargetCluster,
        WorkSpec, WorkloadTemplate,
    },
};
use flotilla_propagation::{interpreter, render};
use flotilla_runtime::error::is_not_found;

use crate::kinds::{self, KindError, Kinds};
use flotilla_runtime::{
    Context, Runner, Settings,
    cache::CachedKind,
    status::{self, StatusWrite},
};
use futures::Stream;
use k8s_openapi::{
    api::core::v1::Namespace,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{
        controller::Action,
        finalizer::{self, Event as FinalizerEvent, finalizer},
        reflector::{ObjectRef, Store},
    },
};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tracing::{debug, info, warn};

/// The condition this controller owns on a binding: True when every target cluster's Work is
/// up to date, False naming each cluster whose Work is not and why (reasons below). Not (yet)
/// in `flotilla_api::conditions`.
pub const OVERRIDES_APPLIED: &str = "OverridesApplied";
/// Reason of a True [`OVERRIDES_APPLIED`]: every target cluster's Work is up to date.
pub const RENDERED: &str = "Rendered";
/// Reason of a False [`OVERRIDES_APPLIED`]: an overrider could not apply for some cluster.
pub const OVERRIDE_FAILED: &str = "OverrideFailed";
/// Reason of a False [`OVERRIDES_APPLIED`]: the resource template or its kind does not exist.
pub const TEMPLATE_NOT_FOUND: &str = "TemplateNotFound";
/// Reason of a False [`OVERRIDES_APPLIED`]: a target cluster has no Cluster object.
pub const CLUSTER_NOT_FOUND: &str = "ClusterNotFound";
/// Reason of a False [`OVERRIDES_APPLIED`]: a cluster's Work name is taken by another
/// binding's Work, which is left as it is.
pub const WORK_CONFLICT: &str = "WorkConflict";
/// Reason of a False [`OVERRIDES_APPLIED`]: writing or deleting a cluster's Work failed.
pub const APPLY_FAILED: &str = "ApplyFailed";

/// The result type of this controller.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the binding controller, one variant per action that failed (the variant
/// name is the `reason` label of the reconcile error metric).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering a template's kind, or reading the template, failed.
    #[error(transparent)]
    Template(#[from] KindError),

    /// Creating an execution namespace failed.
    #[error("failed to create the execution namespace {namespace}: {source}")]
    CreateNamespace {
        /// The namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Reading a Work failed.
    #[error("failed to read Work {namespace}/{name}: {source}")]
    GetWork {
        /// The Work's namespace.
        namespace: String,
        /// The Work's name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a Work failed.
    #[error("failed to write Work {namespace}/{name}: {source}")]
    ApplyWork {
        /// The Work's namespace.
        namespace: String,
        /// The Work's name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Deleting a Work failed.
    #[error("failed to delete Work {namespace}/{name}: {source}")]
    DeleteWork {
        /// The Work's namespace.
        namespace: String,
        /// The Work's name.
        name: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Listing a binding's Works failed.
    #[error("failed to list the Works of {binding}: {source}")]
    ListWorks {
        /// The binding.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a binding's status failed.
    #[error("failed to write the status of {binding}: {source}")]
    WriteBindingStatus {
        /// The binding.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Adding the finalizer to a binding failed.
    #[error("failed to add the finalizer to {binding}: {source}")]
    AddFinalizer {
        /// The binding.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Removing the finalizer from a binding failed.
    #[error("failed to remove the finalizer from {binding}: {source}")]
    RemoveFinalizer {
        /// The binding.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// The finalizer helper refused the binding (no name, or an invalid finalizer path).
    #[error("cannot manage the finalizer of {binding}: it has no name or the finalizer is invalid")]
    Finalizer {
        /// The binding.
        binding: String,
    },

    /// The controller platform failed (a cache asked for too late).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl Error {
    fn kube(&self) -> Option<&kube::Error> {
        match self {
            Error::Template(error) => Some(error.source_error()),
            Error::CreateNamespace { source, .. }
            | Error::GetWork { source, .. }
            | Error::ApplyWork { source, .. }
            | Error::DeleteWork { source, .. }
            | Error::ListWorks { source, .. }
            | Error::WriteBindingStatus { source, .. }
            | Error::AddFinalizer { source, .. }
            | Error::RemoveFinalizer { source, .. } => Some(source),
            Error::Finalizer { .. } | Error::Platform(_) => None,
        }
    }
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Template(KindError::Discover { .. }) => "DiscoverKind",
            Error::Template(KindError::Get { .. }) => "GetTemplate",
            Error::CreateNamespace { .. } => "CreateNamespace",
            Error::GetWork { .. } => "GetWork",
            Error::ApplyWork { .. } => "ApplyWork",
            Error::DeleteWork { .. } => "DeleteWork",
            Error::ListWorks { .. } => "ListWorks",
            Error::WriteBindingStatus { .. } => "WriteBindingStatus",
            Error::AddFinalizer { .. } => "AddFinalizer",
            Error::RemoveFinalizer { .. } => "RemoveFinalizer",
            Error::Finalizer { .. } => "Finalizer",
            Error::Platform(_) => "Platform",
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Error::AddFinalizer { source, .. } | Error::RemoveFinalizer { source, .. } => {
                flotilla_runtime::error::is_finalizer_race(source)
            }
            _ => self
                .kube()
                .is_some_and(flotilla_runtime::error::is_conflict),
        }
    }
}

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many bindings of each kind are reconciled at once.
    pub concurrency: u16,
    /// How often every binding is re-rendered even when nothing woke it (a template created
    /// after its binding).
    pub resync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 5,
            resync: Duration::from_secs(300),
        }
    }
}

/// A binding kind this controller renders: ResourceBinding or ClusterResourceBinding.
pub trait Binding: CachedKind + Serialize {
    /// The runner's name (its metrics label).
    const RUNNER: &'static str;
    /// The binding-status runner's name.
    const STATUS_RUNNER: &'static str;
    /// The label that links a Work to its binding: its value is the binding's uid.
    const PERMANENT_ID_LABEL: &'static str;
    /// The spec shared by both kinds.
    fn binding_spec(&self) -> &ResourceBindingSpec;
    /// The binding's conditions.
    fn binding_conditions(&self) -> &[Condition];
    /// The binding's status.
    fn binding_status(&self) -> Option<&ResourceBindingStatus>;
    /// The API to write this binding through.
    fn api_for(&self, client: Client) -> Api<Self>;
}

impl Binding for ResourceBinding {
    const RUNNER: &'static str = "binding-resourcebinding";
    const STATUS_RUNNER: &'static str = "binding-status-resourcebinding";
    const PERMANENT_ID_LABEL: &'static str = labels::RESOURCE_BINDING_PERMANENT_ID;
    fn binding_spec(&self) -> &ResourceBindingSpec {
        &self.spec
    }
    fn binding_status(&self) -> Option<&ResourceBindingStatus> {
        self.status.as_ref()
    }
    fn binding_conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
    }
    fn api_for(&self, client: Client) -> Api<Self> {
        Api::namespaced(
            client,
            self.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }
}

impl Binding for ClusterResourceBinding {
    const RUNNER: &'static str = "binding-clusterresourcebinding";
    const STATUS_RUNNER: &'static str = "binding-status-clusterresourcebinding";
    const PERMANENT_ID_LABEL: &'static str = labels::CLUSTER_RESOURCE_BINDING_PERMANENT_ID;
    fn binding_spec(&self) -> &ResourceBindingSpec {
        &self.spec.spec
    }
    fn binding_status(&self) -> Option<&ResourceBindingStatus> {
        self.status.as_ref()
    }
    fn binding_conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
    }
    fn api_for(&self, client: Client) -> Api<Self> {
        Api::all(client)
    }
}

/// The id that links a binding's Works to it (as their [`Binding::PERMANENT_ID_LABEL`]): its
/// uid, which the server sets and no user can, so no label decides which Works it deletes.
pub fn permanent_id<B: Binding>(binding: &B) -> Option<String> {
    binding.meta().uid.clone()
}

/// `Kind namespace/name` of a binding, for messages.
pub(crate) fn label_of<B: Binding>(binding: &B) -> String {
    match binding.namespace() {
        Some(ns) => format!("{} {ns}/{}", B::kind(&()), binding.name_any()),
        None => format!("{} {}", B::kind(&()), binding.name_any()),
    }
}

/// Whether dispatching to `cluster` is suspended by the binding's `spec.suspension`
/// (`Some(true)`), or not (`None`: the field is left out of the Work).
pub fn suspend_dispatching(spec: &ResourceBindingSpec, cluster: &str) -> Option<bool> {
    let suspension = spec.suspension.as_ref()?;
    let all = suspension.dispatching == Some(true);
    let named = suspension
        .dispatching_on_clusters
        .as_ref()
        .is_some_and(|c| c.cluster_names.iter().any(|n| n == cluster));
    (all || named).then_some(true)
}

/// The Work a rendered manifest becomes: `name` in `namespace`, labelled with the binding's
/// `id` under `id_label`, annotated with the applied overrides (absent when none applied); the
/// manifest carries the binding's conflict setting (`work.flotilla.io/conflict-resolution`),
/// which the execution controller reads.
pub fn desired_work(
    namespace: &str,
    name: &str,
    (id_label, id): (&str, &str),
    rendered: &render::Rendered,
    spec: &ResourceBindingSpec,
) -> Work {
    let mut manifest = rendered.manifest.clone();
    if let Some(resolution) = spec.conflict_resolution
        && let Some(meta) = manifest.get_mut("metadata").and_then(|m| m.as_object_mut())
    {
        let notes = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(notes) = notes.as_object_mut() {
            let value = match resolution {
                ConflictResolution::Abort => "abort",
                ConflictResolution::Overwrite => "overwrite",
            };
            notes.insert(annotations::CONFLICT_RESOLUTION.to_owned(), json!(value));
        }
    }
    let mut work = Work::new(
        name,
        WorkSpec {
            workload: WorkloadTemplate {
                manifests: vec![Manifest(manifest)],
            },
            suspend_dispatching: suspend_dispatching(spec, &rendered.cluster),
            preserve_resources_on_deletion: spec.preserve_resources_on_deletion,
        },
    );
    work.metadata.namespace = Some(namespace.to_owned());
    work.metadata.labels = Some(BTreeMap::from([(id_label.to_owned(), id.to_owned())]));
    let notes: BTreeMap<String, String> = [
        (
            annotations::APPLIED_OVERRIDES,
            rendered.applied.overrides_annotation(),
        ),
        (
            annotations::APPLIED_CLUSTER_OVERRIDES,
            rendered.applied.cluster_overrides_annotation(),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
    .collect();
    if !notes.is_empty() {
        work.metadata.annotations = Some(notes);
    }
    work
}

/// Whether writing `desired` would change `current`: its spec, or a label or annotation this
/// controller sets (an annotation it no longer sets must go).
pub fn work_differs(current: &Work, desired: &Work) -> bool {
    if current.spec != desired.spec {
        return true;
    }
    let labels_differ = desired
        .labels()
        .iter()
        .any(|(k, v)| current.labels().get(k) != Some(v));
    let annotations_differ = [
        annotations::APPLIED_OVERRIDES,
        annotations::APPLIED_CLUSTER_OVERRIDES,
    ]
    .iter()
    .any(|k| current.annotations().get(*k) != desired.annotations().get(*k));
    labels_differ || annotations_differ
}

/// Why one target cluster's Work is not up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No Cluster object has the target's name (or the name makes no execution namespace).
    ClusterNotFound,
    /// An overrider cannot apply; the message names the policy, rule and path.
    OverrideFailed(String),
    /// The Work's name is taken by another binding's Work, which is left as it is; the
    /// message names the Work and that binding.
    WorkConflict(String),
    /// Writing or deleting the cluster's Work failed.
    ApplyFailed(String),
}

impl Problem {
    /// The condition reason of this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::ClusterNotFound => CLUSTER_NOT_FOUND,
            Problem::OverrideFailed(_) => OVERRIDE_FAILED,
            Problem::WorkConflict(_) => WORK_CONFLICT,
            Problem::ApplyFailed(_) => APPLY_FAILED,
        }
    }

    /// Which problem's reason a condition with several shows: the lowest.
    fn rank(&self) -> u8 {
        match self {
            Problem::ApplyFailed(_) => 0,
            Problem::OverrideFailed(_) => 1,
            Problem::WorkConflict(_) => 2,
            Problem::ClusterNotFound => 3,
        }
    }

    fn message(&self, cluster: &str) -> String {
        match self {
            Problem::ClusterNotFound => format!(
                "cluster {cluster}: no Cluster of that name is registered; register it or \
                 remove it from spec.clusters"
            ),
            Problem::OverrideFailed(m) | Problem::WorkConflict(m) | Problem::ApplyFailed(m) => {
                format!("cluster {cluster}: {m}")
            }
        }
    }
}

/// The [`OVERRIDES_APPLIED`] condition of a pass whose target clusters had `problems`
/// (`(cluster, problem)`), at `generation`: True (reason [`RENDERED`]) when there are none;
/// else False with the most pressing problem's reason and a message naming every cluster and
/// its problem.
pub fn work_condition(problems: &[(String, Problem)], generation: Option<i64>) -> Condition {
    let Some(reason) = problems
        .iter()
        .map(|(_, p)| p)
        .min_by_key(|p| p.rank())
        .map(Problem::reason)
    else {
        return conditions::new(
            OVERRIDES_APPLIED,
            true,
            RENDERED,
            "the Work of every target cluster is up to date",
            generation,
        );
    };
    let message = problems
        .iter()
        .map(|(cluster, problem)| problem.message(cluster))
        .collect::<Vec<_>>()
        .join("; ");
    conditions::new(OVERRIDES_APPLIED, false, reason, message, generation)
}

/// The [`OVERRIDES_APPLIED`] condition of a binding whose template (or its kind) does not
/// exist, at `generation`.
pub fn template_not_found(reference: &ObjectReference, generation: Option<i64>) -> Condition {
    conditions::new(
        OVERRIDES_APPLIED,
        false,
        TEMPLATE_NOT_FOUND,
        format!(
            "the resource template {} ({}) does not exist or its kind is not served; create \
             it or fix spec.resource (the clusters' Works are left as they are)",
            kinds::label(reference),
            reference.api_version
        ),
        generation,
    )
}

/// The binding a Work belongs to other than the one with `id` under `B`'s label, if any (a
/// Work names its binding by its id label): `the ResourceBinding with uid ..`.
pub fn other_owner<B: Binding>(work: &Work, id: &str) -> Option<String> {
    [
        (labels::RESOURCE_BINDING_PERMANENT_ID, "ResourceBinding"),
        (
            labels::CLUSTER_RESOURCE_BINDING_PERMANENT_ID,
            "ClusterResourceBinding",
        ),
    ]
    .into_iter()
    .find_map(|(label, kind)| {
        work.labels()
            .get(label)
            .filter(|v| !(label == B::PERMANENT_ID_LABEL && v.as_str() == id))
            .map(|v| format!("the {kind} with uid {v}"))
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Remembers a hash per object, to tell content changes from writes to fields nobody reads;
/// objects the cache reports gone are forgotten.
struct Changes<K: CachedKind> {
    seen: HashMap<ObjectRef<K>, u64>,
    gone: broadcast::Receiver<ObjectRef<K>>,
}

impl<K: CachedKind> Changes<K> {
    fn new(gone: broadcast::Receiver<ObjectRef<K>>) -> Mutex<Self> {
        Mutex::new(Self {
            seen: HashMap::new(),
            gone,
        })
    }

    fn changed(&mut self, object: &K, projection: impl Hash) -> bool {
        loop {
            match self.gone.try_recv() {
                Ok(key) => {
                    self.seen.remove(&key);
                }
                Err(TryRecvError::Lagged(_)) => self.seen.clear(),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let mut hasher = DefaultHasher::new();
        object.meta().uid.hash(&mut hasher);
        projection.hash(&mut hasher);
        let hash = hasher.finish();
        self.seen.insert(ObjectRef::from_obj(object), hash) != Some(hash)
    }
}

/// Which cached Works carry which binding id under `B`'s id label, and which binding has each
/// id: kept from the Work cache's changes and gone notices and from reconciles, so a pass looks
/// up its binding's Works instead of scanning the fleet's, and a Work that goes is mapped back
/// to its binding.
struct Index<B: Binding> {
    works: HashMap<String, HashSet<ObjectRef<Work>>>,
    ids: HashMap<ObjectRef<Work>, String>,
    bindings: HashMap<String, ObjectRef<B>>,
}

impl<B: Binding> Index<B> {
    fn new() -> Self {
        Self {
            works: HashMap::new(),
            ids: HashMap::new(),
            bindings: HashMap::new(),
        }
    }

    /// Records the id label `work` carries now.
    fn saw(&mut self, work: &Work) {
        let key = ObjectRef::from_obj(work);
        let id = work.labels().get(B::PERMANENT_ID_LABEL);
        if self.ids.get(&key) == id {
            return;
        }
        self.forget(&key);
        if let Some(id) = id {
            self.ids.insert(key.clone(), id.clone());
            self.works.entry(id.clone()).or_default().insert(key);
        }
    }

    /// Forgets a Work that left the cache; returns the id it carried.
    fn forget(&mut self, key: &ObjectRef<Work>) -> Option<String> {
        let id = self.ids.remove(key)?;
        if let Some(works) = self.works.get_mut(&id) {
            works.remove(key);
            if works.is_empty() {
                self.works.remove(&id);
            }
        }
        Some(id)
    }

    /// Rebuilds the Work side from the cache (after gone notices were missed).
    fn rebuild(&mut self, works: &Store<Work>) {
        self.works.clear();
        self.ids.clear();
        for work in works.state() {
            self.saw(&work);
        }
    }

    /// The Works carrying `id`.
    fn works_of(&self, id: &str) -> Vec<ObjectRef<Work>> {
        self.works
            .get(id)
            .map(|works| works.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the Work `key`, which just left the cache, is one a live binding still wants:
    /// its Work name in a cluster it targets. Forgets the Work.
    fn wanted(&mut self, key: &ObjectRef<Work>, bindings: &Store<B>) -> bool {
        let Some(id) = self.forget(key) else {
            return false;
        };
        let Some(binding) = self.bindings.get(&id).and_then(|b| bindings.get(b)) else {
            return false;
        };
        let spec = binding.binding_spec();
        let cluster = key
            .namespace
            .as_deref()
            .and_then(names::cluster_of_execution_namespace);
        binding.meta().uid.as_deref() == Some(id.as_str())
            && binding.meta().deletion_timestamp.is_none()
            && cluster.is_some_and(|c| targets_cluster(spec, c))
            && key.name == work_name_of(&spec.resource)
    }
}

/// What one binding kind's reconciles share: the controller's state and the kind's index.
struct Shared<B: Binding> {
    state: Arc<State>,
    index: Mutex<Index<B>>,
}

/// A stream that yields once per notice (or burst of lagged notices) on `gone`.
fn on_gone<K: CachedKind>(
    gone: broadcast::Receiver<ObjectRef<K>>,
) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(gone, |mut gone| async move {
        match gone.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => Some(((), gone)),
            Err(RecvError::Closed) => None,
        }
    })
}

/// A stream that yields when a Work a live binding of kind `B` still wants left the cache
/// (deleted by hand, say), or after missed notices.
fn on_work_gone<B: Binding>(
    gone: broadcast::Receiver<ObjectRef<Work>>,
    shared: Arc<Shared<B>>,
    bindings: Store<B>,
) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(gone, move |mut gone| {
        let shared = shared.clone();
        let bindings = bindings.clone();
        async move {
            loop {
                let wake = match gone.recv().await {
                    Ok(key) => lock(&shared.index).wanted(&key, &bindings),
                    Err(RecvError::Lagged(_)) => {
                        lock(&shared.index).rebuild(&shared.state.works);
                        true
                    }
                    Err(RecvError::Closed) => return None,
                };
                if wake {
                    return Some(((), gone));
                }
            }
        }
    })
}

/// The controller's own state beside the shared context.
struct State {
    client: Client,
    options: Options,
    clusters: Store<Cluster>,
    works: Store<Work>,
    namespaces: Store<Namespace>,
    overrides: Store<OverridePolicy>,
    cluster_overrides: Store<ClusterOverridePolicy>,
    /// Template kinds, from discovery.
    kinds: Kinds,
}

/// The Work name of a binding's template.
pub(crate) fn work_name_of(reference: &ObjectReference) -> String {
    names::work_name(
        &reference.api_version,
        &reference.kind,
        reference.namespace.as_deref(),
        &reference.name,
    )
}

/// What [`State::write_work`] did.
enum Written {
    /// The Work already had its content.
    Unchanged,
    /// The Work was written.
    Wrote,
    /// The Work belongs to another binding (named here) and was left as it is.
    Conflict(String),
}

impl State {
    /// Creates the execution namespace when the cache does not know it.
    async fn ensure_namespace(&self, namespace: &str) -> Result<()> {
        if self.namespaces.get(&ObjectRef::new(namespace)).is_some() {
            return Ok(());
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        let apply =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}});
        api.patch(
            namespace,
            &PatchParams::apply(BINDING).force(),
            &Patch::Apply(&apply),
        )
        .await
        .map_err(|source| Error::CreateNamespace {
            namespace: namespace.to_owned(),
            source,
        })?;
        info!(namespace, "created the execution namespace");
        Ok(())
    }

    /// Writes `desired` for the binding with `id` (under `B`'s label) unless the Work already
    /// has its content, or belongs to another binding (checked in the cache, then against the
    /// server before writing).
    async fn write_work<B: Binding>(&self, desired: &Work, id: &str) -> Result<Written> {
        let namespace = desired.namespace().unwrap_or_default();
        let name = desired.name_any();
        let key = ObjectRef::new(&name).within(&namespace);
        let check = |current: &Work| match other_owner::<B>(current, id) {
            Some(owner) => Some(Written::Conflict(owner)),
            None => (!work_differs(current, desired)).then_some(Written::Unchanged),
        };
        if let Some(done) = self.works.get(&key).and_then(|current| check(&current)) {
            return Ok(done);
        }
        let api: Api<Work> = Api::namespaced(self.client.clone(), &namespace);
        let current = api.get_opt(&name).await.map_err(|source| Error::GetWork {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        if let Some(done) = current.as_ref().and_then(check) {
            return Ok(done);
        }
        self.ensure_namespace(&namespace).await?;
        let failed = |source| Error::ApplyWork {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        let body = serde_json::to_value(desired).map_err(|e| failed(kube::Error::SerdeError(e)))?;
        api.patch(
            &name,
            &PatchParams::apply(BINDING).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(failed)?;
        Ok(Written::Wrote)
    }

    async fn delete_work(&self, namespace: &str, name: &str) -> Result<()> {
        let api: Api<Work> = Api::namespaced(self.client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                info!(work = %format!("{namespace}/{name}"), "deleted a Work");
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(source) => Err(Error::DeleteWork {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            }),
        }
    }
}

/// The clusters a binding renders to: its scheduled `clusters`, then every cluster of the
/// bindings that require it (`requiredBy`, a dependency following its workloads), once each.
pub fn targets(spec: &ResourceBindingSpec) -> Vec<TargetCluster> {
    let mut targets = spec.clusters.clone();
    for snapshot in &spec.required_by {
        for cluster in &snapshot.clusters {
            if !targets.iter().any(|t| t.name == cluster.name) {
                targets.push(TargetCluster {
                    name: cluster.name.clone(),
                    replicas: 0,
                });
            }
        }
    }
    targets
}

/// Whether the binding renders to `cluster` (see [`targets`]).
fn targets_cluster(spec: &ResourceBindingSpec, cluster: &str) -> bool {
    spec.clusters.iter().any(|t| t.name == cluster)
        || spec
            .required_by
            .iter()
            .any(|s| s.clusters.iter().any(|t| t.name == cluster))
}

/// The clusters whose Works a binding keeps: its targets and the clusters it is leaving.
fn kept_clusters(spec: &ResourceBindingSpec) -> HashSet<&str> {
    spec.clusters
        .iter()
        .map(|c| c.name.as_str())
        .chain(
            spec.required_by
                .iter()
                .flat_map(|s| s.clusters.iter().map(|c| c.name.as_str())),
        )
        .chain(
            spec.graceful_eviction_tasks
                .iter()
                .map(|t| t.from_cluster.as_str()),
        )
        .collect()
}

/// One pass over a live binding. One cluster failing does not stop the others: every
/// cluster's problem goes on the condition, and the first error is returned after it.
async fn apply<B: Binding>(binding: &B, shared: &Shared<B>) -> Result<Action> {
    let state = shared.state.as_ref();
    let resync = Action::requeue(state.options.resync);
    let Some(id) = permanent_id(binding) else {
        return Ok(resync);
    };
    let spec = binding.binding_spec();
    let generation = binding.meta().generation;
    let work_name = work_name_of(&spec.resource);
    let mine = {
        let mut index = lock(&shared.index);
        index
            .bindings
            .insert(id.clone(), ObjectRef::from_obj(binding));
        index.works_of(&id)
    };
    let mut problems: Vec<(String, Problem)> = Vec::new();
    let mut first_error: Option<Error> = None;

    // The binding's Works it no longer wants: of clusters it no longer keeps, or under another
    // name (its template reference changed).
    let kept = kept_clusters(spec);
    for key in mine {
        let Some(work) = state.works.get(&key) else {
            continue;
        };
        let namespace = work.namespace().unwrap_or_default();
        let Some(cluster) = names::cluster_of_execution_namespace(&namespace) else {
            continue;
        };
        let wanted = kept.contains(cluster) && work.name_any() == work_name;
        if wanted || work.meta().deletion_timestamp.is_some() {
            continue;
        }
        if let Err(error) = state.delete_work(&namespace, &work.name_any()).await {
            warn!(cluster, %error, "cannot delete a Work the binding no longer wants");
            problems.push((cluster.to_owned(), Problem::ApplyFailed(error.to_string())));
            first_error.get_or_insert(error);
        }
    }
    let done = |first_error: Option<Error>| first_error.map_or(Ok(resync.clone()), Err);
    let targets = targets(spec);
    if targets.is_empty() && problems.is_empty() {
        return done(first_error);
    }

    let Some(template) = state.kinds.get(&spec.resource).await? else {
        debug!(template = %kinds::label(&spec.resource), "the template does not exist; nothing to render");
        write_condition(
            binding,
            state,
            &template_not_found(&spec.resource, generation),
        )
        .await?;
        return done(first_error);
    };
    let divided = render::divides(spec);
    let completions = divided
        .then(|| interpreter::divide_job_completions(&template, &spec.clusters))
        .flatten();
    let cluster_policies: Vec<ClusterOverridePolicy> = state
        .cluster_overrides
        .state()
        .iter()
        .map(|p| (**p).clone())
        .collect();
    let policies: Vec<OverridePolicy> = state
        .overrides
        .state()
        .iter()
        .filter(|p| p.namespace() == spec.resource.namespace)
        .map(|p| (**p).clone())
        .collect();

    for target in &targets {
        let cluster = state.clusters.get(&ObjectRef::new(&target.name));
        let (Some(cluster), Ok(namespace)) = (cluster, names::execution_namespace(&target.name))
        else {
            debug!(cluster = %target.name, "the target cluster is not registered; its Work is left as it is");
            problems.push((target.name.clone(), Problem::ClusterNotFound));
            continue;
        };
        let share = completions
            .as_ref()
            .and_then(|c| c.get(&target.name).copied());
        let rendered = match render::manifest(
            &template,
            target,
            divided,
            share,
            &cluster,
            &cluster_policies,
            &policies,
        ) {
            Ok(rendered) => rendered,
            Err(error) => {
                warn!(cluster = %target.name, %error, "an overrider cannot apply; the cluster's Work keeps its last manifest");
                problems.push((
                    target.name.clone(),
                    Problem::OverrideFailed(error.to_string()),
                ));
                continue;
            }
        };
        let desired = desired_work(
            &namespace,
            &work_name,
            (B::PERMANENT_ID_LABEL, &id),
            &rendered,
            spec,
        );
        match state.write_work::<B>(&desired, &id).await {
            Ok(Written::Unchanged) => {}
            Ok(Written::Wrote) => {
                info!(cluster = %target.name, work = %work_name, "wrote the Work");
            }
            Ok(Written::Conflict(owner)) => {
                warn!(cluster = %target.name, work = %work_name, %owner, "the Work belongs to another binding; left as it is");
                problems.push((
                    target.name.clone(),
                    Problem::WorkConflict(format!(
                        "Work {namespace}/{work_name} belongs to {owner} and was left as it \
                         is; delete that binding or its Work to let this one propagate"
                    )),
                ));
            }
            Err(error) => {
                warn!(cluster = %target.name, %error, "cannot write the cluster's Work");
                problems.push((target.name.clone(), Problem::ApplyFailed(error.to_string())));
                first_error.get_or_insert(error);
            }
        }
    }

    write_condition(binding, state, &work_condition(&problems, generation)).await?;
    done(first_error)
}

/// Sets the binding's [`OVERRIDES_APPLIED`] condition when it changed.
async fn write_condition<B: Binding>(
    binding: &B,
    state: &State,
    condition: &Condition,
) -> Result<()> {
    let mut next = binding.binding_conditions().to_vec();
    if !conditions::set_condition(&mut next, condition.clone(), Time(Timestamp::now())) {
        return Ok(());
    }
    let write = StatusWrite {
        field_manager: BINDING,
        owned: json!({"conditions": status::owned(&next, &[OVERRIDES_APPLIED])}),
    };
    status::write(&binding.api_for(state.client.clone()), binding, write)
        .await
        .map_err(|source| Error::WriteBindingStatus {
            binding: label_of(binding),
            source,
        })?;
    if condition.status == FALSE {
        info!(reason = %condition.reason, message = %condition.message, "not every target cluster's Work is up to date");
    }
    Ok(())
}

/// The binding is being deleted: delete every Work it owns (listed from the server, so a Work
/// written a moment ago is not missed). One failed delete does not stop the others; the first
/// error is returned.
async fn cleanup<B: Binding>(binding: &B, shared: &Shared<B>) -> Result<Action> {
    let Some(id) = permanent_id(binding) else {
        return Ok(Action::await_change());
    };
    let state = shared.state.as_ref();
    let api: Api<Work> = Api::all(state.client.clone());
    let works = api
        .list(&ListParams::default().labels(&format!("{}={id}", B::PERMANENT_ID_LABEL)))
        .await
        .map_err(|source| Error::ListWorks {
            binding: label_of(binding),
            source,
        })?;
    let mut first_error = None;
    for work in works {
        let namespace = work.namespace().unwrap_or_default();
        if let Err(error) = state.delete_work(&namespace, &work.name_any()).await {
            warn!(%error, "cannot delete a Work of the deleted binding");
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    lock(&shared.index).bindings.remove(&id);
    Ok(Action::await_change())
}

/// One pass, behind kube-runtime's finalizer helper: a live binding gets the finalizer first
/// (a JSON patch that fails rather than recreate a binding deleted meanwhile) and is then
/// rendered; a deleted one loses its Works, then the finalizer.
async fn reconcile<B: Binding>(binding: Arc<B>, shared: Arc<Shared<B>>) -> Result<Action> {
    let api = binding.api_for(shared.state.client.clone());
    let label = label_of(binding.as_ref());
    let result = finalizer(&api, BINDING_CONTROLLER, binding, |event| async {
        match event {
            FinalizerEvent::Apply(binding) => apply(binding.as_ref(), &shared).await,
            FinalizerEvent::Cleanup(binding) => cleanup(binding.as_ref(), &shared).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(error) | finalizer::Error::CleanupFailed(error)) => {
            Err(error)
        }
        Err(finalizer::Error::AddFinalizer(source)) => Err(Error::AddFinalizer {
            binding: label,
            source,
        }),
        // Gone meanwhile: nothing left to finalize.
        Err(finalizer::Error::RemoveFinalizer(source)) if is_not_found(&source) => {
            Ok(Action::await_change())
        }
        Err(finalizer::Error::RemoveFinalizer(source)) => Err(Error::RemoveFinalizer {
            binding: label,
            source,
        }),
        Err(finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer) => {
            Err(Error::Finalizer { binding: label })
        }
    }
}

/// One binding kind's runner, with every trigger.
fn runner<B: Binding>(ctx: &Arc<Context>, shared: &Arc<Shared<B>>) -> Result<Runner<B>> {
    let runner = Runner::<B>::new(
        ctx,
        B::RUNNER,
        Settings::new(shared.state.options.concurrency),
    )?
    .trigger_when_changed(|binding: &B| {
        (
            serde_json::to_string(binding.binding_spec()).unwrap_or_default(),
            binding.finalizers().to_vec(),
            binding.meta().deletion_timestamp.is_some(),
        )
    });
    let bindings = runner.store();

    // A Work's content changed: its binding (found through the index, which this also keeps).
    let works = ctx.caches().get::<Work>()?;
    let changes = Changes::new(works.gone());
    let store = bindings.clone();
    let index = shared.clone();
    let runner = runner.watches(move |work: Arc<Work>| {
        let mut index = lock(&index.index);
        index.saw(&work);
        let projection = (
            serde_json::to_string(&work.spec).unwrap_or_default(),
            work.labels().clone(),
            work.annotations().clone(),
        );
        if !lock(&changes).changed(work.as_ref(), projection) {
            return None;
        }
        let id = work.labels().get(B::PERMANENT_ID_LABEL)?;
        let key = index.bindings.get(id)?;
        store
            .get(key)
            .filter(|b| b.meta().uid.as_ref() == Some(id))
            .map(|_| key.clone())
    })?;

    // A Cluster's labels or spec changed: the bindings that target it.
    let clusters = ctx.caches().get::<Cluster>()?;
    let changes = Changes::new(clusters.gone());
    let store = bindings.clone();
    let runner = runner.watches(move |cluster: Arc<Cluster>| {
        let projection = (
            cluster.labels().clone(),
            serde_json::to_string(&cluster.spec).unwrap_or_default(),
        );
        if !lock(&changes).changed(cluster.as_ref(), projection) {
            return Vec::new();
        }
        let name = cluster.name_any();
        store
            .state()
            .iter()
            .filter(|b| targets_cluster(b.binding_spec(), &name))
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })?;

    // An OverridePolicy's spec changed: every binding of a template in its namespace (whether
    // the policy matches now or matched before).
    let changes = Changes::new(ctx.caches().get::<OverridePolicy>()?.gone());
    let store = bindings.clone();
    let runner = runner.watches(move |policy: Arc<OverridePolicy>| {
        let projection = serde_json::to_string(&policy.spec).unwrap_or_default();
        if !lock(&changes).changed(policy.as_ref(), projection) {
            return Vec::new();
        }
        let namespace = policy.namespace();
        store
            .state()
            .iter()
            .filter(|b| b.binding_spec().resource.namespace == namespace)
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })?;

    // A ClusterOverridePolicy's spec changed: every binding.
    let changes = Changes::new(ctx.caches().get::<ClusterOverridePolicy>()?.gone());
    let store = bindings.clone();
    let runner = runner.watches(move |policy: Arc<ClusterOverridePolicy>| {
        let projection = serde_json::to_string(&policy.spec).unwrap_or_default();
        if !lock(&changes).changed(policy.as_ref(), projection) {
            return Vec::new();
        }
        store
            .state()
            .iter()
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })?;

    // A policy deleted (deletions reach no change stream): every binding. A Work a live
    // binding still wants left (deleted by hand): every binding of the kind too, as the runner
    // wakes chosen objects only from change streams; unwanted Works going (the controller's
    // own deletes) wake nothing.
    let deleted = futures::stream::select(
        on_gone(ctx.caches().get::<OverridePolicy>()?.gone()),
        on_gone(ctx.caches().get::<ClusterOverridePolicy>()?.gone()),
    );
    let deleted = futures::stream::select(
        deleted,
        on_work_gone(works.gone(), shared.clone(), bindings),
    );
    Ok(runner.reconcile_all_on(deleted))
}

/// Builds the controller: the `binding-resourcebinding` and `binding-clusterresourcebinding`
/// runners over the shared caches.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let caches = ctx.caches();
    let state = Arc::new(State {
        client: ctx.client().clone(),
        clusters: caches.get::<Cluster>()?.store(),
        works: caches.get::<Work>()?.store(),
        namespaces: caches.get::<Namespace>()?.store(),
        overrides: caches.get::<OverridePolicy>()?.store(),
        cluster_overrides: caches.get::<ClusterOverridePolicy>()?.store(),
        kinds: Kinds::new(ctx.client().clone()),
        options,
    });
    let rb = Arc::new(Shared::<ResourceBinding> {
        state: state.clone(),
        index: Mutex::new(Index::new()),
    });
    let crb = Arc::new(Shared::<ClusterResourceBinding> {
        state,
        index: Mutex::new(Index::new()),
    });
    let rb = runner(ctx, &rb)?.run(reconcile::<ResourceBinding>, rb);
    let crb = runner(ctx, &crb)?.run(reconcile::<ClusterResourceBinding>, crb);
    info!("starting the binding controller");
    Ok(async move {
        futures::future::join(rb, crb).await;
    })
}

#[cfg(test)]
mod tests {
    use flotilla_api::{
        policy::SuspendClusters,
        work::{BindingSuspension, TargetCluster},
    };
    use flotilla_propagation::overrides::{Applied, AppliedPolicy};

    use super::*;

    fn rendered(cluster: &str, applied: Applied) -> render::Rendered {
        render::Rendered {
            cluster: cluster.to_owned(),
            manifest: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            applied,
        }
    }

    fn spec(suspension: Option<BindingSuspension>) -> ResourceBindingSpec {
        ResourceBindingSpec {
            clusters: vec![TargetCluster {
                name: "m1".into(),
                replicas: 1,
            }],
            suspension,
            preserve_resources_on_deletion: Some(true),
            ..Default::default()
        }
    }

    #[test]
    fn suspension_covers_every_cluster_or_the_named_ones() {
        let table: Vec<(Option<BindingSuspension>, &str, Option<bool>)> = vec![
            (None, "m1", None),
            (
                Some(BindingSuspension {
                    dispatching: Some(true),
                    ..Default::default()
                }),
                "m1",
                Some(true),
            ),
            (
                Some(BindingSuspension {
                    dispatching: Some(false),
                    ..Default::default()
                }),
                "m1",
                None,
            ),
            (
                Some(BindingSuspension {
                    dispatching_on_clusters: Some(SuspendClusters {
                        cluster_names: vec!["m2".into()],
                    }),
                    ..Default::default()
                }),
                "m1",
                None,
            ),
            (
                Some(BindingSuspension {
                    dispatching_on_clusters: Some(SuspendClusters {
                        cluster_names: vec!["m2".into()],
                    }),
                    ..Default::default()
                }),
                "m2",
                Some(true),
            ),
        ];
        for (suspension, cluster, want) in table {
            assert_eq!(
                suspend_dispatching(&spec(suspension.clone()), cluster),
                want,
                "{suspension:?} on {cluster}"
            );
        }
    }

    #[test]
    fn a_work_carries_the_binding_id_and_only_the_overrides_that_applied() {
        let none = desired_work(
            "flotilla-es-m1",
            "w",
            ("id-label", "abc"),
            &rendered("m1", Applied::default()),
            &spec(None),
        );
        assert_eq!(none.namespace().as_deref(), Some("flotilla-es-m1"));
        assert_eq!(
            none.labels().get("id-label").map(String::as_str),
            Some("abc")
        );
        assert!(none.metadata.annotations.is_none());
        assert_eq!(none.spec.preserve_resources_on_deletion, Some(true));
        assert_eq!(none.spec.workload.manifests.len(), 1);

        let applied = Applied {
            overrides: vec![AppliedPolicy {
                policy_name: "op".into(),
                overriders: Default::default(),
            }],
            ..Default::default()
        };
        let some = desired_work(
            "flotilla-es-m1",
            "w",
            ("id-label", "abc"),
            &rendered("m1", applied),
            &spec(None),
        );
        assert!(
            some.annotations()
                .contains_key(annotations::APPLIED_OVERRIDES)
        );
        assert!(
            !some
                .annotations()
                .contains_key(annotations::APPLIED_CLUSTER_OVERRIDES)
        );

        // An unchanged Work is not written; other labels and annotations do not count.
        let mut current = some.clone();
        current.labels_mut().insert("user".into(), "x".into());
        current.annotations_mut().insert("user".into(), "x".into());
        assert!(!work_differs(&current, &some));
        // A changed manifest, a lost label, an override that no longer applies do.
        assert!(work_differs(&none, &some));
        assert!(work_differs(&some, &none));
        let mut unlabelled = some.clone();
        unlabelled.labels_mut().clear();
        assert!(work_differs(&unlabelled, &some));
        let mut changed = some.clone();
        changed.spec.workload.manifests[0].0["metadata"]["name"] = json!("d");
        assert!(work_differs(&changed, &some));
    }

    #[test]
    fn the_condition_names_every_cluster_whose_work_is_not_up_to_date() {
        let ok = work_condition(&[], Some(3));
        assert_eq!((ok.status.as_str(), ok.reason.as_str()), ("True", RENDERED));
        assert_eq!(ok.observed_generation, Some(3));
        let failed = work_condition(
            &[
                ("m1".into(), Problem::OverrideFailed("a".into())),
                ("m2".into(), Problem::OverrideFailed("b".into())),
            ],
            Some(3),
        );
        assert_eq!(
            (failed.status.as_str(), failed.reason.as_str()),
            ("False", OVERRIDE_FAILED)
        );
        assert_eq!(failed.message, "cluster m1: a; cluster m2: b");

        // Several problems: the reason is the most pressing one's, the message names them all.
        let table: &[(&[Problem], &str)] = &[
            (&[Problem::ClusterNotFound], CLUSTER_NOT_FOUND),
            (
                &[Problem::ClusterNotFound, Problem::WorkConflict("w".into())],
                WORK_CONFLICT,
            ),
            (
                &[
                    Problem::WorkConflict("w".into()),
                    Problem::OverrideFailed("o".into()),
                ],
                OVERRIDE_FAILED,
            ),
            (
                &[
                    Problem::OverrideFailed("o".into()),
                    Problem::ApplyFailed("e".into()),
                    Problem::ClusterNotFound,
                ],
                APPLY_FAILED,
            ),
        ];
        for (problems, reason) in table {
            let problems: Vec<(String, Problem)> = problems
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("c{i}"), p.clone()))
                .collect();
            let condition = work_condition(&problems, None);
            assert_eq!(condition.status, "False");
            assert_eq!(condition.reason, *reason, "{problems:?}");
            for (cluster, _) in &problems {
                assert!(
                    condition.message.contains(&format!("cluster {cluster}:")),
                    "{cluster} in {}",
                    condition.message
                );
            }
        }
        let missing = work_condition(&[("m9".into(), Problem::ClusterNotFound)], None);
        assert!(missing.message.contains("m9"), "{}", missing.message);

        let reference = ObjectReference {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
            ..Default::default()
        };
        let gone = template_not_found(&reference, Some(2));
        assert_eq!(
            (gone.status.as_str(), gone.reason.as_str()),
            ("False", TEMPLATE_NOT_FOUND)
        );
        assert!(
            gone.message.contains("Deployment shop/web"),
            "{}",
            gone.message
        );
    }

    #[test]
    fn a_work_of_another_binding_is_recognised_by_its_id_label() {
        let mut work = desired_work(
            "flotilla-es-m1",
            "w",
            (labels::RESOURCE_BINDING_PERMANENT_ID, "mine"),
            &rendered("m1", Applied::default()),
            &spec(None),
        );
        assert_eq!(other_owner::<ResourceBinding>(&work, "mine"), None);
        let theirs = other_owner::<ResourceBinding>(&work, "other-uid");
        assert_eq!(theirs.as_deref(), Some("the ResourceBinding with uid mine"));
        // A ClusterResourceBinding's id under the ResourceBinding label is another binding's.
        assert!(other_owner::<ClusterResourceBinding>(&work, "mine").is_some());
        // A Work with no id label belongs to no binding.
        work.labels_mut().clear();
        assert_eq!(other_owner::<ResourceBinding>(&work, "mine"), None);
    }

    #[test]
    fn the_permanent_id_is_the_uid_whatever_the_labels_say() {
        let mut binding = ResourceBinding::new("b", ResourceBindingSpec::default());
        assert_eq!(permanent_id(&binding), None);
        binding.metadata.uid = Some("uid-1".into());
        binding.labels_mut().insert(
            labels::RESOURCE_BINDING_PERMANENT_ID.into(),
            "someone-elses".into(),
        );
        assert_eq!(permanent_id(&binding).as_deref(), Some("uid-1"));
    }
}
