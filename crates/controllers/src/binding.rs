//! The binding controller (Karmada's `binding` and `cluster-resource-binding` controllers): for
//! every ResourceBinding and ClusterResourceBinding with `spec.clusters`, it reads the resource
//! template, renders each target cluster's manifest with the propagation engine
//! ([`flotilla_propagation::render::manifest`]: replicas revised for Divided placements,
//! overrides applied) and writes it as the Work `names::work_name(..)` in the cluster's
//! execution namespace `flotilla-es-<cluster>` (server-side apply under `flotilla-binding`, only
//! when the Work's content would change). It deletes the binding's Works in clusters it no
//! longer targets (except clusters under graceful eviction), and all of them when the binding is
//! deleted (finalizer `flotilla.io/binding-controller`). An overrider that cannot apply leaves
//! that cluster's Work as it was and is reported on the binding's `OverridesApplied` condition,
//! the only status it writes. It never writes a template, a binding's spec, or a member.
//!
//! Woken by a binding's spec, labels or finalizers changing, by its Works' content changing, by
//! OverridePolicy and ClusterOverridePolicy changes (every binding the policy could reach), by
//! a target Cluster's labels or spec changing, and on its resync period.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Debug,
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use flotilla_api::{
    Cluster, ClusterOverridePolicy, ClusterResourceBinding, OverridePolicy, ResourceBinding, Work,
    conditions::{self, FALSE},
    keys::{annotations, field_managers::BINDING, finalizers::BINDING_CONTROLLER, labels},
    names,
    work::{Manifest, ObjectReference, ResourceBindingSpec, WorkSpec, WorkloadTemplate},
};
use flotilla_propagation::{interpreter, render};
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
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    },
    discovery,
    runtime::{
        controller::Action,
        reflector::{ObjectRef, Store},
    },
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tracing::{debug, info, warn};

/// The condition this controller owns on a binding: True when every target cluster's manifest
/// rendered, False (reason [`OVERRIDE_FAILED`]) naming the policy, rule and path of each
/// overrider that could not apply. Not (yet) in `flotilla_api::conditions`.
pub const OVERRIDES_APPLIED: &str = "OverridesApplied";
/// Reason of a True [`OVERRIDES_APPLIED`]: every target cluster's manifest rendered.
pub const RENDERED: &str = "Rendered";
/// Reason of a False [`OVERRIDES_APPLIED`]: an overrider could not apply for some cluster.
pub const OVERRIDE_FAILED: &str = "OverrideFailed";

/// The result type of this controller.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the binding controller, one variant per action that failed (the variant
/// name is the `reason` label of the reconcile error metric).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering the resource of a template's kind failed.
    #[error("failed to discover the API resource of {kind}: {source}")]
    DiscoverKind {
        /// `apiVersion/kind`.
        kind: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Reading a resource template failed.
    #[error("failed to read the resource template {template}: {source}")]
    GetTemplate {
        /// `kind namespace/name`.
        template: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

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

    /// The controller platform failed (a cache asked for too late).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl Error {
    fn kube(&self) -> Option<&kube::Error> {
        match self {
            Error::DiscoverKind { source, .. }
            | Error::GetTemplate { source, .. }
            | Error::CreateNamespace { source, .. }
            | Error::GetWork { source, .. }
            | Error::ApplyWork { source, .. }
            | Error::DeleteWork { source, .. }
            | Error::ListWorks { source, .. }
            | Error::WriteBindingStatus { source, .. }
            | Error::AddFinalizer { source, .. }
            | Error::RemoveFinalizer { source, .. } => Some(source),
            Error::Platform(_) => None,
        }
    }
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::DiscoverKind { .. } => "DiscoverKind",
            Error::GetTemplate { .. } => "GetTemplate",
            Error::CreateNamespace { .. } => "CreateNamespace",
            Error::GetWork { .. } => "GetWork",
            Error::ApplyWork { .. } => "ApplyWork",
            Error::DeleteWork { .. } => "DeleteWork",
            Error::ListWorks { .. } => "ListWorks",
            Error::WriteBindingStatus { .. } => "WriteBindingStatus",
            Error::AddFinalizer { .. } => "AddFinalizer",
            Error::RemoveFinalizer { .. } => "RemoveFinalizer",
            Error::Platform(_) => "Platform",
        }
    }

    fn is_conflict(&self) -> bool {
        self.kube()
            .is_some_and(flotilla_runtime::error::is_conflict)
    }
}

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many bindings of each kind are reconciled at once.
    pub concurrency: u16,
    /// How often every binding is re-rendered even when nothing woke it (a template created
    /// after its binding, a Work deleted by hand).
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
    /// The label that links a Work to its binding.
    const PERMANENT_ID_LABEL: &'static str;
    /// The spec shared by both kinds.
    fn binding_spec(&self) -> &ResourceBindingSpec;
    /// The binding's conditions.
    fn binding_conditions(&self) -> &[Condition];
    /// The API to write this binding through.
    fn api_for(&self, client: Client) -> Api<Self>;
}

impl Binding for ResourceBinding {
    const RUNNER: &'static str = "binding-resourcebinding";
    const PERMANENT_ID_LABEL: &'static str = labels::RESOURCE_BINDING_PERMANENT_ID;
    fn binding_spec(&self) -> &ResourceBindingSpec {
        &self.spec
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
    const PERMANENT_ID_LABEL: &'static str = labels::CLUSTER_RESOURCE_BINDING_PERMANENT_ID;
    fn binding_spec(&self) -> &ResourceBindingSpec {
        &self.spec.spec
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

/// The id that links a binding's Works to it: its permanent-id label, or its uid.
pub fn permanent_id<B: Binding>(binding: &B) -> Option<String> {
    binding
        .labels()
        .get(B::PERMANENT_ID_LABEL)
        .cloned()
        .or_else(|| binding.meta().uid.clone())
}

fn label_of<B: Binding>(binding: &B) -> String {
    match binding.namespace() {
        Some(ns) => format!("{} {ns}/{}", B::kind(&()), binding.name_any()),
        None => format!("{} {}", B::kind(&()), binding.name_any()),
    }
}

fn template_label(reference: &ObjectReference) -> String {
    match &reference.namespace {
        Some(ns) => format!("{} {ns}/{}", reference.kind, reference.name),
        None => format!("{} {}", reference.kind, reference.name),
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
/// `id` under `id_label`, annotated with the applied overrides (absent when none applied).
pub fn desired_work(
    namespace: &str,
    name: &str,
    (id_label, id): (&str, &str),
    rendered: &render::Rendered,
    spec: &ResourceBindingSpec,
) -> Work {
    let mut work = Work::new(
        name,
        WorkSpec {
            workload: WorkloadTemplate {
                manifests: vec![Manifest(rendered.manifest.clone())],
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

/// The [`OVERRIDES_APPLIED`] condition for the clusters whose rendering `failures` names
/// (`cluster: message`), at `generation`.
pub fn overrides_condition(failures: &[String], generation: Option<i64>) -> Condition {
    if failures.is_empty() {
        conditions::new(
            OVERRIDES_APPLIED,
            true,
            RENDERED,
            "the manifest of every target cluster rendered",
            generation,
        )
    } else {
        conditions::new(
            OVERRIDES_APPLIED,
            false,
            OVERRIDE_FAILED,
            failures.join("; "),
            generation,
        )
    }
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

/// The controller's own state beside the shared context.
struct State {
    client: Client,
    options: Options,
    clusters: Store<Cluster>,
    works: Store<Work>,
    namespaces: Store<Namespace>,
    overrides: Store<OverridePolicy>,
    cluster_overrides: Store<ClusterOverridePolicy>,
    /// The API resource of each template kind, from discovery.
    kinds: Mutex<HashMap<GroupVersionKind, ApiResource>>,
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

impl State {
    /// The template `reference` names, or `None` when it (or its kind) does not exist.
    async fn template(&self, reference: &ObjectReference) -> Result<Option<Value>> {
        let (group, version) = reference
            .api_version
            .split_once('/')
            .unwrap_or(("", reference.api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &reference.kind);
        let cached = self
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&gvk)
            .cloned();
        let resource = match cached {
            Some(resource) => resource,
            None => match discovery::pinned_kind(&self.client, &gvk).await {
                Ok((resource, _)) => {
                    self.kinds
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(gvk.clone(), resource.clone());
                    resource
                }
                Err(kube::Error::Discovery(_)) => return Ok(None),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(source) => {
                    return Err(Error::DiscoverKind {
                        kind: format!("{}/{}", reference.api_version, reference.kind),
                        source,
                    });
                }
            },
        };
        let api: Api<DynamicObject> = match &reference.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let failed = |source| Error::GetTemplate {
            template: template_label(reference),
            source,
        };
        match api.get_opt(&reference.name).await.map_err(failed)? {
            Some(object) => serde_json::to_value(object)
                .map(Some)
                .map_err(|e| failed(kube::Error::SerdeError(e))),
            None => {
                // Rediscover next time: the kind may have gone or changed.
                self.kinds
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&gvk);
                Ok(None)
            }
        }
    }

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

    /// Writes `desired` unless the Work already has its content (checked in the cache, then
    /// against the server before writing). Returns whether it wrote.
    async fn write_work(&self, desired: &Work) -> Result<bool> {
        let namespace = desired.namespace().unwrap_or_default();
        let name = desired.name_any();
        let key = ObjectRef::new(&name).within(&namespace);
        if self
            .works
            .get(&key)
            .is_some_and(|current| !work_differs(&current, desired))
        {
            return Ok(false);
        }
        let api: Api<Work> = Api::namespaced(self.client.clone(), &namespace);
        let current = api.get_opt(&name).await.map_err(|source| Error::GetWork {
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
        if current.is_some_and(|current| !work_differs(&current, desired)) {
            return Ok(false);
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
        Ok(true)
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

/// The clusters whose Works a binding keeps: its targets and the clusters it is leaving.
fn kept_clusters(spec: &ResourceBindingSpec) -> HashSet<&str> {
    spec.clusters
        .iter()
        .map(|c| c.name.as_str())
        .chain(
            spec.graceful_eviction_tasks
                .iter()
                .map(|t| t.from_cluster.as_str()),
        )
        .collect()
}

/// One pass over a live binding.
async fn apply<B: Binding>(binding: &B, state: &State) -> Result<Action> {
    let resync = Action::requeue(state.options.resync);
    let Some(id) = permanent_id(binding) else {
        return Ok(resync);
    };
    let spec = binding.binding_spec();

    // Works of clusters no longer targeted.
    let kept = kept_clusters(spec);
    for work in state.works.state() {
        let stale = work.labels().get(B::PERMANENT_ID_LABEL) == Some(&id)
            && work.meta().deletion_timestamp.is_none()
            && work
                .namespace()
                .as_deref()
                .and_then(names::cluster_of_execution_namespace)
                .is_some_and(|cluster| !kept.contains(cluster));
        if stale {
            state
                .delete_work(&work.namespace().unwrap_or_default(), &work.name_any())
                .await?;
        }
    }
    if spec.clusters.is_empty() {
        return Ok(resync);
    }

    let Some(template) = state.template(&spec.resource).await? else {
        debug!(template = %template_label(&spec.resource), "the template does not exist; nothing to render");
        return Ok(resync);
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
    let work_name = names::work_name(
        &spec.resource.kind,
        spec.resource.namespace.as_deref(),
        &spec.resource.name,
    );

    let mut failures = Vec::new();
    for target in &spec.clusters {
        let Some(cluster) = state.clusters.get(&ObjectRef::new(&target.name)) else {
            debug!(cluster = %target.name, "the target cluster is not registered; its Work is left as it is");
            continue;
        };
        let Ok(namespace) = names::execution_namespace(&target.name) else {
            continue;
        };
        let share = completions
            .as_ref()
            .and_then(|c| c.get(&target.name).copied());
        match render::manifest(
            &template,
            target,
            divided,
            share,
            &cluster,
            &cluster_policies,
            &policies,
        ) {
            Ok(rendered) => {
                let desired = desired_work(
                    &namespace,
                    &work_name,
                    (B::PERMANENT_ID_LABEL, &id),
                    &rendered,
                    spec,
                );
                if state.write_work(&desired).await? {
                    info!(cluster = %target.name, work = %work_name, "wrote the Work");
                }
            }
            Err(error) => {
                warn!(cluster = %target.name, %error, "an overrider cannot apply; the cluster's Work keeps its last manifest");
                failures.push(format!("cluster {}: {error}", target.name));
            }
        }
    }

    write_condition(
        binding,
        state,
        &overrides_condition(&failures, binding.meta().generation),
    )
    .await?;
    Ok(resync)
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
        info!(message = %condition.message, "overrides could not be applied");
    }
    Ok(())
}

/// The binding is being deleted: delete every Work it owns (listed from the server, so a Work
/// written a moment ago is not missed).
async fn cleanup<B: Binding>(binding: &B, state: &State) -> Result<()> {
    let Some(id) = permanent_id(binding) else {
        return Ok(());
    };
    let api: Api<Work> = Api::all(state.client.clone());
    let works = api
        .list(&ListParams::default().labels(&format!("{}={id}", B::PERMANENT_ID_LABEL)))
        .await
        .map_err(|source| Error::ListWorks {
            binding: label_of(binding),
            source,
        })?;
    for work in works {
        state
            .delete_work(&work.namespace().unwrap_or_default(), &work.name_any())
            .await?;
    }
    Ok(())
}

/// Adds the finalizer (server-side apply of that one list entry under `flotilla-binding`).
async fn add_finalizer<B: Binding>(binding: &B, state: &State) -> Result<()> {
    let mut metadata = json!({"name": binding.name_any(), "finalizers": [BINDING_CONTROLLER]});
    if let Some(namespace) = binding.namespace() {
        metadata["namespace"] = json!(namespace);
    }
    let apply =
        json!({"apiVersion": B::api_version(&()), "kind": B::kind(&()), "metadata": metadata});
    binding
        .api_for(state.client.clone())
        .patch(
            &binding.name_any(),
            &PatchParams::apply(BINDING).force(),
            &Patch::Apply(&apply),
        )
        .await
        .map_err(|source| Error::AddFinalizer {
            binding: label_of(binding),
            source,
        })?;
    Ok(())
}

/// Removes the finalizer: a merge patch of the remaining list, conditional on the binding's
/// resourceVersion (a 409 when someone changed the list meanwhile, retried soon).
async fn remove_finalizer<B: Binding>(binding: &B, state: &State) -> Result<()> {
    let remaining: Vec<&String> = binding
        .finalizers()
        .iter()
        .filter(|f| *f != BINDING_CONTROLLER)
        .collect();
    let patch = json!({"metadata": {
        "resourceVersion": binding.resource_version(),
        "finalizers": remaining,
    }});
    match binding
        .api_for(state.client.clone())
        .patch(
            &binding.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::RemoveFinalizer {
            binding: label_of(binding),
            source,
        }),
    }
}

/// One pass: a live binding gets the finalizer and is rendered; a deleted one loses its Works,
/// then the finalizer. (Not kube-runtime's `finalizer()` helper: its first add is a JSON patch
/// testing `/metadata/finalizers` against null, which the embedded API server rejects with 422
/// when the list is absent.)
async fn reconcile<B: Binding>(binding: Arc<B>, state: Arc<State>) -> Result<Action> {
    let has_finalizer = binding.finalizers().iter().any(|f| f == BINDING_CONTROLLER);
    if binding.meta().deletion_timestamp.is_some() {
        if has_finalizer {
            cleanup(binding.as_ref(), &state).await?;
            remove_finalizer(binding.as_ref(), &state).await?;
        }
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        add_finalizer(binding.as_ref(), &state).await?;
    }
    apply(binding.as_ref(), &state).await
}

/// One binding kind's runner, with every trigger.
fn runner<B: Binding>(ctx: &Arc<Context>, options: &Options) -> Result<Runner<B>> {
    let runner = Runner::<B>::new(ctx, B::RUNNER, Settings::new(options.concurrency))?
        .trigger_when_changed(|binding: &B| {
            (
                serde_json::to_string(binding.binding_spec()).unwrap_or_default(),
                binding.labels().clone(),
                binding.finalizers().to_vec(),
                binding.meta().deletion_timestamp.is_some(),
            )
        });
    let bindings = runner.store();

    // A Work's content changed: its binding.
    let works = ctx.caches().get::<Work>()?;
    let changes = Changes::new(works.gone());
    let store = bindings.clone();
    let runner = runner.watches(move |work: Arc<Work>| {
        let projection = (
            serde_json::to_string(&work.spec).unwrap_or_default(),
            work.labels().clone(),
            work.annotations().clone(),
        );
        let changed = changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .changed(work.as_ref(), projection);
        let id = work.labels().get(B::PERMANENT_ID_LABEL).cloned();
        store
            .state()
            .iter()
            .filter(|b| changed && id.is_some() && permanent_id(b.as_ref()) == id)
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
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
        let changed = changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .changed(cluster.as_ref(), projection);
        let name = cluster.name_any();
        store
            .state()
            .iter()
            .filter(|b| changed && b.binding_spec().clusters.iter().any(|c| c.name == name))
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })?;

    // An OverridePolicy changed: every binding of a template in its namespace (whether the
    // policy matches now or matched before).
    let store = bindings.clone();
    let runner = runner.watches(move |policy: Arc<OverridePolicy>| {
        let namespace = policy.namespace();
        store
            .state()
            .iter()
            .filter(|b| b.binding_spec().resource.namespace == namespace)
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })?;

    // A ClusterOverridePolicy changed: every binding.
    let store = bindings;
    let runner = runner.watches(move |_: Arc<ClusterOverridePolicy>| {
        store
            .state()
            .iter()
            .map(|b| ObjectRef::from_obj(b.as_ref()))
            .collect::<Vec<_>>()
    })?;

    // A policy deleted (deletions reach no change stream): every binding.
    let deleted = futures::stream::select(
        on_gone(ctx.caches().get::<OverridePolicy>()?.gone()),
        on_gone(ctx.caches().get::<ClusterOverridePolicy>()?.gone()),
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
        kinds: Mutex::default(),
        options,
    });
    let rb = runner::<ResourceBinding>(ctx, &state.options)?
        .run(reconcile::<ResourceBinding>, state.clone());
    let crb = runner::<ClusterResourceBinding>(ctx, &state.options)?
        .run(reconcile::<ClusterResourceBinding>, state);
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
    fn the_condition_names_every_failed_cluster() {
        let ok = overrides_condition(&[], Some(3));
        assert_eq!((ok.status.as_str(), ok.reason.as_str()), ("True", RENDERED));
        assert_eq!(ok.observed_generation, Some(3));
        let failed =
            overrides_condition(&["cluster m1: a".into(), "cluster m2: b".into()], Some(3));
        assert_eq!(
            (failed.status.as_str(), failed.reason.as_str()),
            ("False", OVERRIDE_FAILED)
        );
        assert_eq!(failed.message, "cluster m1: a; cluster m2: b");
    }
}
