//! The resource detector (Karmada's `resource-detector`): watches every kind a
//! (Cluster)PropagationPolicy selects — one watch per kind, found through discovery at run
//! time, so a kind whose CRD comes later is picked up and one whose CRD goes stops being
//! watched — and, for each template of those kinds, picks the one policy that claims it
//! ([`matching::match_policy`]: an existing claim first, then priority, selector precision and
//! name; PropagationPolicies before ClusterPropagationPolicies; `preemption: Always`). It
//! records the claim on the template (labels and annotations, server-side apply under
//! `flotilla-detector`, nothing else) and writes the template's (Cluster)ResourceBinding
//! `<name>-<kind>` ([`render::binding_spec`]: resource reference with uid and resourceVersion,
//! replicas and per-replica requirements, placement and the policy's options), controlled by
//! the template (an owner reference), again by server-side apply and only when what it owns
//! would change. It never writes a template's spec or status, nor the fields of a binding it
//! does not own (the scheduler's `clusters`).
//!
//! A template no policy claims any more (its policy deleted, changed, or no longer matching)
//! loses the claim and keeps its binding and Works, as in Karmada, until another policy claims
//! it or it is deleted. A deleted template's binding is deleted (the binding controller's
//! finalizer then deletes its Works): the detector also watches every kind some binding of its
//! own refers to, so the deletion is seen whatever the policies say now, and a binding whose
//! template is gone when the detector starts (or whose kind's CRD went) is deleted too.
//! Flotilla's own kinds, Namespaces, Events, Leases, and everything in `kube-*`, `flotilla-system`,
//! `flotilla-cluster` and the execution namespaces are never propagated.
//!
//! Runners: `detector` (templates, one per kind watched, sharing the name),
//! `detector-resourcebinding` and `detector-clusterresourcebinding` (deleting the bindings of
//! deleted templates), and one task that keeps the set of watched kinds.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use flotilla_api::{
    ClusterPropagationPolicy, ClusterResourceBinding, PropagationPolicy, ResourceBinding,
    keys::{annotations::RESOURCE_TEMPLATE_GENERATION, field_managers::DETECTOR},
    names::{self, group_of},
    work::{ObjectReference, ResourceBindingSpec},
};
use flotilla_propagation::{
    matching::{self, PolicyRef},
    render,
};
use flotilla_runtime::error::is_not_found;
use flotilla_runtime::{Context, Runner, Settings, cache::Cache};
use futures::{FutureExt, Stream, StreamExt, stream::BoxStream};
use k8s_openapi::{
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, Preconditions},
    runtime::{controller::Action, reflector::ObjectRef},
};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    binding::Binding,
    kinds::{self, KindError, Kinds, Resolved},
};

/// The runner name of the template reconciles (every kind's).
pub const RUNNER: &str = "detector";

/// The result type of this controller.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the detector, one variant per action that failed (the variant name is
/// the `reason` label of the reconcile error metric).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering a template's kind, or reading a template, failed.
    #[error(transparent)]
    Template(#[from] KindError),

    /// Recording or removing a claim on a template failed.
    #[error("failed to write the claim on {template}: {source}")]
    WriteClaim {
        /// `kind namespace/name`.
        template: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a binding failed.
    #[error("failed to write {binding}: {source}")]
    WriteBinding {
        /// `kind namespace/name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Deleting the binding of a deleted template failed.
    #[error("failed to delete {binding}: {source}")]
    DeleteBinding {
        /// `kind namespace/name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// The binding a template's name calls for is another template's.
    #[error(
        "{binding} belongs to {other}, not to {template}; rename one of the templates \
         (binding names are <name>-<kind>)"
    )]
    BindingTaken {
        /// `kind namespace/name` of the binding.
        binding: String,
        /// The template that wants it.
        template: String,
        /// The template it is for.
        other: String,
    },

    /// A template could not be read as JSON.
    #[error("failed to read {template} as JSON: {source}")]
    Serialize {
        /// `kind namespace/name`.
        template: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },

    /// The controller platform failed (a cache asked for too late).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl Error {
    fn kube(&self) -> Option<&kube::Error> {
        match self {
            Error::Template(error) => Some(error.source_error()),
            Error::WriteClaim { source, .. }
            | Error::WriteBinding { source, .. }
            | Error::DeleteBinding { source, .. } => Some(source),
            Error::BindingTaken { .. } | Error::Serialize { .. } | Error::Platform(_) => None,
        }
    }
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Template(KindError::Discover { .. }) => "DiscoverKind",
            Error::Template(KindError::Get { .. }) => "GetTemplate",
            Error::WriteClaim { .. } => "WriteClaim",
            Error::WriteBinding { .. } => "WriteBinding",
            Error::DeleteBinding { .. } => "DeleteBinding",
            Error::BindingTaken { .. } => "BindingTaken",
            Error::Serialize { .. } => "Serialize",
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
    /// How many templates of each kind, and bindings of each kind, are handled at once.
    pub concurrency: u16,
    /// How often kinds a policy names but the server does not serve are looked up again, and
    /// the watched ones checked (CRD changes also trigger both at once).
    pub rediscover: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 8,
            rediscover: Duration::from_secs(30),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pure decisions.
// ---------------------------------------------------------------------------------------------

/// The kinds the detector watches: every kind a live policy selects and every kind a binding
/// of its own refers to, less the kinds it never propagates (Flotilla's own, Namespaces,
/// Events, Leases).
fn wanted_kinds<'a>(
    policies: impl IntoIterator<Item = PolicyRef<'a>>,
    referenced: impl IntoIterator<Item = GroupVersionKind>,
) -> HashSet<GroupVersionKind> {
    policies
        .into_iter()
        .filter(|policy| !policy.is_deleting())
        .flat_map(|policy| policy.spec().resource_selectors.iter())
        .map(|selector| kinds::gvk(&selector.api_version, &selector.kind))
        .chain(referenced)
        .filter(is_watchable)
        .collect()
}

fn is_watchable(gvk: &GroupVersionKind) -> bool {
    !gvk.kind.is_empty() && matching::is_bound_by_policy(&kinds::api_version(gvk), &gvk.kind, None)
}

/// The owner reference a detector-made binding carries to its template.
pub(crate) fn owner_of(template: &Value) -> Option<OwnerReference> {
    let metadata = template.get("metadata")?;
    Some(OwnerReference {
        api_version: template.get("apiVersion")?.as_str()?.to_owned(),
        kind: template.get("kind")?.as_str()?.to_owned(),
        name: metadata.get("name")?.as_str()?.to_owned(),
        uid: metadata.get("uid")?.as_str()?.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The template that controls a binding the detector made: its controller owner reference,
/// of the kind the binding's resource names.
fn controlling_template<'a>(
    owners: &'a [OwnerReference],
    resource: &ObjectReference,
) -> Option<&'a OwnerReference> {
    owners.iter().find(|owner| {
        owner.controller == Some(true)
            && owner.kind == resource.kind
            && group_of(&owner.api_version) == group_of(&resource.api_version)
            && owner.name == resource.name
    })
}

/// The binding fields the detector owns are as `desired` has them in `current`.
fn same_owned_fields(current: &ResourceBindingSpec, desired: &ResourceBindingSpec) -> bool {
    current.resource == desired.resource
        && current.propagate_deps == desired.propagate_deps
        && current.replicas == desired.replicas
        && current.replica_requirements == desired.replica_requirements
        && current.placement == desired.placement
        && current.scheduler_name == desired.scheduler_name
        && current.failover == desired.failover
        && current.conflict_resolution == desired.conflict_resolution
        && current.preserve_resources_on_deletion == desired.preserve_resources_on_deletion
        && current.suspension == desired.suspension
}

/// The binding as the detector applies it: identity, the claim's labels and annotations, the
/// owner reference to the template, and the spec the detector owns.
fn binding_body(
    template: &Value,
    policy: PolicyRef<'_>,
    namespace: Option<&str>,
    name: &str,
) -> (Value, ResourceBindingSpec) {
    let spec = render::binding_spec(template, policy.spec());
    let claim = policy.claim();
    let (api_version, kind) = match namespace {
        Some(_) => (
            ResourceBinding::api_version(&()),
            ResourceBinding::kind(&()),
        ),
        None => (
            ClusterResourceBinding::api_version(&()),
            ClusterResourceBinding::kind(&()),
        ),
    };
    let mut annotations = claim.annotations();
    if let Some(generation) = template_generation(template) {
        annotations.insert(RESOURCE_TEMPLATE_GENERATION.to_owned(), generation);
    }
    let mut metadata = json!({
        "name": name,
        "labels": claim.labels(),
        "annotations": annotations,
        "ownerReferences": owner_of(template).into_iter().collect::<Vec<_>>(),
    });
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    let body = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    });
    (body, spec)
}

/// The template's `metadata.generation`, as the binding's annotation records it.
fn template_generation(template: &Value) -> Option<String> {
    template
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .map(|g| g.to_string())
}

/// Whether the binding already carries everything the detector would apply.
fn binding_up_to_date(
    meta: &kube::api::ObjectMeta,
    current: &ResourceBindingSpec,
    desired: &ResourceBindingSpec,
    policy: PolicyRef<'_>,
    template: &Value,
) -> bool {
    let claim = policy.claim();
    let has_all = |have: &Option<std::collections::BTreeMap<String, String>>,
                   want: std::collections::BTreeMap<String, String>| {
        want.iter()
            .all(|(k, v)| have.as_ref().and_then(|have| have.get(k)) == Some(v))
    };
    let owned = owner_of(template).is_none_or(|owner| {
        meta.owner_references
            .as_ref()
            .is_some_and(|owners| owners.contains(&owner))
    });
    let generation = template_generation(template);
    let same_generation = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESOURCE_TEMPLATE_GENERATION))
        == generation.as_ref();
    same_owned_fields(current, desired)
        && has_all(&meta.labels, claim.labels())
        && has_all(&meta.annotations, claim.annotations())
        && same_generation
        && owned
}

// ---------------------------------------------------------------------------------------------
// State.
// ---------------------------------------------------------------------------------------------

struct Watched {
    resolved: Resolved,
    cache: Arc<Cache<DynamicObject>>,
    wake: mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    stop: CancellationToken,
}

struct State {
    ctx: Arc<Context>,
    options: Options,
    kinds: Kinds,
    policies: kube::runtime::reflector::Store<PropagationPolicy>,
    cluster_policies: kube::runtime::reflector::Store<ClusterPropagationPolicy>,
    bindings: kube::runtime::reflector::Store<ResourceBinding>,
    cluster_bindings: kube::runtime::reflector::Store<ClusterResourceBinding>,
    watched: Mutex<HashMap<GroupVersionKind, Watched>>,
    collect: mpsc::UnboundedSender<ObjectRef<ResourceBinding>>,
    collect_cluster: mpsc::UnboundedSender<ObjectRef<ClusterResourceBinding>>,
}

/// What one kind's template runner shares.
struct KindState {
    state: Arc<State>,
    resolved: Resolved,
}

impl State {
    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<GroupVersionKind, Watched>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for the binding of the template `key` (of a watched kind) to be checked: the
    /// template went away.
    fn collect_binding_of(&self, key: &ObjectRef<DynamicObject>) {
        let name = names::binding_name(&key.dyntype.kind, &key.name);
        match &key.namespace {
            Some(namespace) => {
                let _ = self.collect.send(ObjectRef::new(&name).within(namespace));
            }
            None => {
                let _ = self.collect_cluster.send(ObjectRef::new(&name));
            }
        }
    }

    /// Asks for every binding of kind `gvk` to be checked (its kind went away).
    fn collect_bindings_of_kind(&self, gvk: &GroupVersionKind) {
        let of_kind = |resource: &ObjectReference| {
            resource.kind == gvk.kind && group_of(&resource.api_version) == gvk.group
        };
        for binding in self.bindings.state() {
            if of_kind(&binding.spec.resource) {
                let _ = self.collect.send(ObjectRef::from_obj(binding.as_ref()));
            }
        }
        for binding in self.cluster_bindings.state() {
            if of_kind(&binding.spec.spec.resource) {
                let _ = self
                    .collect_cluster
                    .send(ObjectRef::from_obj(binding.as_ref()));
            }
        }
    }

    /// The kinds bindings made by the detector refer to.
    fn referenced_kinds(&self) -> HashSet<GroupVersionKind> {
        let rb = self.bindings.state();
        let crb = self.cluster_bindings.state();
        rb.iter()
            .map(|b| (&b.metadata, &b.spec.resource))
            .chain(crb.iter().map(|b| (&b.metadata, &b.spec.spec.resource)))
            .filter(|(meta, resource)| {
                controlling_template(
                    meta.owner_references.as_deref().unwrap_or_default(),
                    resource,
                )
                .is_some()
            })
            .map(|(_, resource)| kinds::gvk(&resource.api_version, &resource.kind))
            .collect()
    }

    fn wanted(&self) -> HashSet<GroupVersionKind> {
        let policies = self.policies.state();
        let cluster_policies = self.cluster_policies.state();
        wanted_kinds(
            policies
                .iter()
                .map(|p| PolicyRef::Namespaced(p.as_ref()))
                .chain(
                    cluster_policies
                        .iter()
                        .map(|p| PolicyRef::Cluster(p.as_ref())),
                ),
            self.referenced_kinds(),
        )
    }

    /// Starts watching a kind: its cache, its template runner, and the notices of its
    /// templates going.
    fn start_watch(self: &Arc<Self>, gvk: &GroupVersionKind, resolved: Resolved) -> Result<()> {
        let cache = Cache::<DynamicObject>::dynamic(resolved.resource.clone());
        let (wake, woken) = mpsc::unbounded_channel();
        let stop = self.ctx.stop().child_token();
        let runner = Runner::over(
            &self.ctx,
            RUNNER,
            &cache,
            Settings::new(self.options.concurrency),
        )?
        .reconcile_on(UnboundedReceiverStream::new(woken))
        .stop_on(stop.clone());
        let kind = Arc::new(KindState {
            state: self.clone(),
            resolved: resolved.clone(),
        });
        tokio::spawn(runner.run(reconcile_template, kind));
        tokio::spawn(forward_gone(cache.gone(), self.clone(), stop.clone()));
        cache.start(self.ctx.client().clone(), stop.clone());
        info!(kind = %gvk.kind, api_version = %kinds::api_version(gvk), "watching templates");
        self.watched().insert(
            gvk.clone(),
            Watched {
                resolved,
                cache,
                wake,
                stop,
            },
        );
        Ok(())
    }

    fn stop_watch(&self, gvk: &GroupVersionKind) {
        if let Some(watched) = self.watched().remove(gvk) {
            watched.stop.cancel();
            info!(kind = %gvk.kind, api_version = %kinds::api_version(gvk), "stopped watching templates");
        }
    }

    /// Wakes every template of every watched kind.
    fn wake_all(&self) {
        for watched in self.watched().values() {
            for object in watched.cache.store().state() {
                let key =
                    ObjectRef::from_obj_with(object.as_ref(), watched.resolved.resource.clone());
                let _ = watched.wake.send(key);
            }
        }
    }

    /// Wakes the template a binding refers to, if its kind is watched.
    fn wake_template(&self, resource: &ObjectReference) {
        let gvk = kinds::gvk(&resource.api_version, &resource.kind);
        if let Some(watched) = self.watched().get(&gvk) {
            let mut key = ObjectRef::new_with(&resource.name, watched.resolved.resource.clone());
            if let Some(namespace) = &resource.namespace {
                key = key.within(namespace);
            }
            let _ = watched.wake.send(key);
        }
    }

    /// Brings the watched kinds in line with the wanted ones. With `rediscover`, kinds already
    /// watched are looked up again too (a CRD changed or went).
    async fn sync_kinds(self: &Arc<Self>, rediscover: bool) {
        let wanted = self.wanted();
        let watched: HashSet<GroupVersionKind> = self.watched().keys().cloned().collect();
        for gvk in watched.difference(&wanted) {
            self.stop_watch(gvk);
        }
        for gvk in &wanted {
            let current = self.watched().get(gvk).map(|w| w.resolved.clone());
            if current.is_some() && !rediscover {
                continue;
            }
            if rediscover {
                self.kinds.forget(gvk);
            }
            match self.kinds.resolve(gvk).await {
                Ok(Some(resolved)) if current.as_ref() == Some(&resolved) => {}
                Ok(Some(resolved)) => {
                    self.stop_watch(gvk);
                    if let Err(error) = self.start_watch(gvk, resolved) {
                        warn!(error = %crate::error::chain(&error), kind = %gvk.kind, "cannot watch templates");
                    }
                }
                Ok(None) => {
                    if current.is_some() {
                        // The kind went (its CRD was deleted): so did its templates.
                        self.stop_watch(gvk);
                        self.collect_bindings_of_kind(gvk);
                    } else {
                        debug!(kind = %gvk.kind, api_version = %kinds::api_version(gvk), "a policy selects a kind the server does not serve (yet)");
                    }
                }
                Err(error) => {
                    warn!(error = %crate::error::chain(&error), "cannot discover a template kind; retrying later");
                }
            }
        }
    }
}

/// Sends the bindings of templates that went away to the binding runners.
async fn forward_gone(
    mut gone: broadcast::Receiver<ObjectRef<DynamicObject>>,
    state: Arc<State>,
    stop: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            notice = gone.recv() => notice,
            () = stop.cancelled() => return,
        };
        match notice {
            Ok(key) => state.collect_binding_of(&key),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Notices were missed: check every binding.
                for binding in state.bindings.state() {
                    let _ = state.collect.send(ObjectRef::from_obj(binding.as_ref()));
                }
                for binding in state.cluster_bindings.state() {
                    let _ = state
                        .collect_cluster
                        .send(ObjectRef::from_obj(binding.as_ref()));
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Templates.
// ---------------------------------------------------------------------------------------------

fn template_label(template: &Value) -> String {
    kinds::label(&render::resource_ref(template))
}

/// Whether the detector applied anything to the object (a claim to release).
fn detector_applied(object: &DynamicObject) -> bool {
    object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .any(|entry| entry.manager.as_deref() == Some(DETECTOR))
}

fn as_template(object: &DynamicObject, resolved: &Resolved) -> Result<Value> {
    let mut template = serde_json::to_value(object).map_err(|source| Error::Serialize {
        template: object.name_any(),
        source,
    })?;
    // List items of built-in kinds carry no apiVersion and kind.
    template["apiVersion"] = json!(resolved.resource.api_version);
    template["kind"] = json!(resolved.resource.kind);
    Ok(template)
}

async fn reconcile_template(object: Arc<DynamicObject>, kind: Arc<KindState>) -> Result<Action> {
    let state = &kind.state;
    if object.metadata.deletion_timestamp.is_some() {
        // Its binding goes once the template is gone.
        return Ok(Action::await_change());
    }
    let mut template = as_template(&object, &kind.resolved)?;
    let namespace = object.namespace();
    let policies: Vec<PropagationPolicy> = match &namespace {
        Some(namespace) => state
            .policies
            .state()
            .iter()
            .filter(|p| p.metadata.namespace.as_ref() == Some(namespace))
            .map(|p| p.as_ref().clone())
            .collect(),
        None => Vec::new(),
    };
    let cluster_policies: Vec<ClusterPropagationPolicy> = state
        .cluster_policies
        .state()
        .iter()
        .map(|p| p.as_ref().clone())
        .collect();
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) if kind.resolved.namespaced => {
            Api::namespaced_with(state.ctx.client().clone(), ns, &kind.resolved.resource)
        }
        _ => Api::all_with(state.ctx.client().clone(), &kind.resolved.resource),
    };
    let claim_failed = |source| Error::WriteClaim {
        template: template_label(&template),
        source,
    };
    let Some(found) = matching::match_policy(&template, &policies, &cluster_policies) else {
        if detector_applied(&object) {
            // No policy claims it any more: the claim goes, the binding and Works stay.
            let release = matching::release_patch(&template);
            match api
                .patch(
                    &object.name_any(),
                    &PatchParams::apply(DETECTOR).force(),
                    &Patch::Apply(&release),
                )
                .await
            {
                Ok(_) => info!("released the template: no policy claims it"),
                Err(e) if is_not_found(&e) || is_gone_or_replaced(&e) => {}
                Err(e) => return Err(claim_failed(e)),
            }
        }
        return Ok(Action::await_change());
    };
    if matching::claimed_by(&template).as_ref() != Some(&found.claim) {
        let claim = matching::claim_patch(&template, &found.claim);
        let claimed = match api
            .patch(
                &object.name_any(),
                &PatchParams::apply(DETECTOR).force(),
                &Patch::Apply(&claim),
            )
            .await
        {
            Ok(claimed) => claimed,
            Err(e) if is_not_found(&e) || is_gone_or_replaced(&e) => {
                return Ok(Action::await_change());
            }
            Err(e) => return Err(claim_failed(e)),
        };
        info!(policy = found.policy.name(), how = ?found.how, "claimed the template");
        // Build the binding from what was just written, so it names the current
        // resourceVersion and the claim's own watch event finds nothing left to do.
        template = as_template(&claimed, &kind.resolved)?;
    }
    write_binding(state, &template, found.policy, namespace.as_deref()).await?;
    Ok(Action::await_change())
}

/// Whether a claim or release (an apply carrying the template's uid) was refused because the
/// template is gone (409: no object has that uid) or another object now has its name (422 on
/// `metadata.uid`). Either way the watch brings what is there now.
fn is_gone_or_replaced(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            status.code == 409 || (status.code == 422 && status.message.contains("metadata.uid"))
        }
        _ => false,
    }
}

async fn write_binding(
    state: &State,
    template: &Value,
    policy: PolicyRef<'_>,
    namespace: Option<&str>,
) -> Result<()> {
    let reference = render::resource_ref(template);
    let name = names::binding_name(&reference.kind, &reference.name);
    let (body, desired) = binding_body(template, policy, namespace, &name);
    let current = match namespace {
        Some(ns) => state
            .bindings
            .get(&ObjectRef::new(&name).within(ns))
            .map(|b| (b.metadata.clone(), b.spec.clone())),
        None => state
            .cluster_bindings
            .get(&ObjectRef::new(&name))
            .map(|b| (b.metadata.clone(), b.spec.spec.clone())),
    };
    let label = match namespace {
        Some(ns) => format!("{} {ns}/{name}", ResourceBinding::kind(&())),
        None => format!("{} {name}", ClusterResourceBinding::kind(&())),
    };
    if let Some((meta, spec)) = &current {
        if meta.deletion_timestamp.is_some() {
            // Being deleted (the template was re-created): written again once it is gone.
            return Ok(());
        }
        let theirs = &spec.resource;
        if theirs.kind != reference.kind
            || group_of(&theirs.api_version) != group_of(&reference.api_version)
            || theirs.name != reference.name
        {
            return Err(Error::BindingTaken {
                binding: label,
                template: kinds::label(&reference),
                other: kinds::label(theirs),
            });
        }
        if binding_up_to_date(meta, spec, &desired, policy, template) {
            return Ok(());
        }
    }
    let params = PatchParams::apply(DETECTOR).force();
    let written = match namespace {
        Some(ns) => Api::<ResourceBinding>::namespaced(state.ctx.client().clone(), ns)
            .patch(&name, &params, &Patch::Apply(&body))
            .await
            .map(drop),
        None => Api::<ClusterResourceBinding>::all(state.ctx.client().clone())
            .patch(&name, &params, &Patch::Apply(&body))
            .await
            .map(drop),
    };
    written.map_err(|source| Error::WriteBinding {
        binding: label.clone(),
        source,
    })?;
    debug!(binding = %label, created = current.is_none(), "wrote the binding");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bindings of deleted templates.
// ---------------------------------------------------------------------------------------------

struct Collect {
    state: Arc<State>,
}

async fn collect<B: Binding>(binding: Arc<B>, shared: Arc<Collect>) -> Result<Action> {
    let state = &shared.state;
    let resource = &binding.binding_spec().resource;
    let Some(owner) = controlling_template(
        binding
            .meta()
            .owner_references
            .as_deref()
            .unwrap_or_default(),
        resource,
    ) else {
        // Not the detector's: a binding made by hand is the user's to delete.
        return Ok(Action::await_change());
    };
    if binding.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let gvk = kinds::gvk(&resource.api_version, &resource.kind);
    // The watched kind's store answers when it holds the template; otherwise the server does.
    let cached = {
        let watched = state.watched();
        watched.get(&gvk).and_then(|watched| {
            let mut key = ObjectRef::new_with(&resource.name, watched.resolved.resource.clone());
            if let Some(namespace) = &resource.namespace {
                key = key.within(namespace);
            }
            watched.cache.store().get(&key)
        })
    };
    if cached.is_some_and(|t| t.metadata.uid.as_deref() == Some(owner.uid.as_str())) {
        return Ok(Action::await_change());
    }
    let live = state.kinds.get(resource).await?;
    let alive = live
        .as_ref()
        .and_then(|t| t.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        == Some(owner.uid.as_str());
    if alive {
        return Ok(Action::await_change());
    }
    let label = crate::binding::label_of(binding.as_ref());
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: binding.meta().uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match binding
        .api_for(state.ctx.client().clone())
        .delete(&binding.name_any(), &params)
        .await
    {
        Ok(_) => {
            info!(binding = %label, template = %kinds::label(resource), "deleted the binding: its template is gone")
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) if flotilla_runtime::error::is_conflict(&e) => {}
        Err(source) => {
            return Err(Error::DeleteBinding {
                binding: label,
                source,
            });
        }
    }
    Ok(Action::await_change())
}

fn collector<B: Binding>(
    ctx: &Arc<Context>,
    name: &'static str,
    shared: &Arc<Collect>,
    woken: mpsc::UnboundedReceiver<ObjectRef<B>>,
    concurrency: u16,
) -> Result<impl Future<Output = ()> + Send + use<B>> {
    let runner = Runner::<B>::new(ctx, name, Settings::new(concurrency))?
        .trigger_when_changed(|binding: &B| {
            (
                binding.binding_spec().resource.uid.clone(),
                binding
                    .meta()
                    .owner_references
                    .iter()
                    .flatten()
                    .map(|owner| (owner.uid.clone(), owner.controller))
                    .collect::<Vec<_>>(),
                binding.meta().deletion_timestamp.is_some(),
            )
        })
        .reconcile_on(UnboundedReceiverStream::new(woken));
    Ok(runner.run(collect::<B>, shared.clone()))
}

// ---------------------------------------------------------------------------------------------
// The watched kinds.
// ---------------------------------------------------------------------------------------------

/// What woke the kind keeper.
enum Wake {
    /// A policy changed or went: kinds may change, every template is matched again.
    Policies,
    /// A binding changed: its template's kind may need watching.
    Binding(GroupVersionKind),
    /// A binding went: its template may need it again; its kind may no longer be needed.
    BindingGone(ObjectReference),
    /// A CRD changed or went, or the rediscovery period passed.
    Rediscover,
}

fn gone_stream<K: flotilla_runtime::cache::CachedKind>(
    gone: broadcast::Receiver<ObjectRef<K>>,
    wake: impl Fn(ObjectRef<K>) -> Option<Wake> + Send + 'static,
) -> impl Stream<Item = Wake> + Send + 'static {
    futures::stream::unfold((gone, wake), |(mut gone, wake)| async move {
        loop {
            match gone.recv().await {
                Ok(key) => {
                    if let Some(event) = wake(key) {
                        return Some((event, (gone, wake)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Wake::Rediscover, (gone, wake)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

async fn keep_kinds(state: Arc<State>, mut wakes: BoxStream<'static, Wake>) {
    let stop = state.ctx.stop().clone();
    tokio::select! {
        () = state.ctx.caches().wait_synced() => {}
        () = stop.cancelled() => return,
    }
    state.sync_kinds(false).await;
    let mut tick = tokio::time::interval(state.options.rediscover);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => Wake::Rediscover,
            wake = wakes.next() => match wake {
                Some(wake) => wake,
                None => break,
            },
        };
        // Take every wake already waiting, then act once.
        let mut batch = vec![first];
        while let Some(Some(wake)) = wakes.next().now_or_never() {
            batch.push(wake);
        }
        let mut policies = false;
        let mut rediscover = false;
        let mut recount = false;
        let mut gone = Vec::new();
        let mut new_kinds = BTreeSet::new();
        for wake in batch {
            match wake {
                Wake::Policies => policies = true,
                Wake::Rediscover => rediscover = true,
                Wake::Binding(gvk) => {
                    if is_watchable(&gvk) && !state.watched().contains_key(&gvk) {
                        new_kinds.insert((gvk.group, gvk.version, gvk.kind));
                    }
                }
                Wake::BindingGone(resource) => {
                    recount = true;
                    gone.push(resource);
                }
            }
        }
        if policies || rediscover || recount || !new_kinds.is_empty() {
            state.sync_kinds(rediscover).await;
        }
        if policies {
            state.wake_all();
        }
        for resource in &gone {
            state.wake_template(resource);
        }
    }
    for watched in state.watched().values() {
        watched.stop.cancel();
    }
}

/// Builds the detector: the kind keeper, the template runners it starts, and the
/// `detector-resourcebinding` and `detector-clusterresourcebinding` runners.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let caches = ctx.caches();
    let policies = caches.get::<PropagationPolicy>()?;
    let cluster_policies = caches.get::<ClusterPropagationPolicy>()?;
    let bindings = caches.get::<ResourceBinding>()?;
    let cluster_bindings = caches.get::<ClusterResourceBinding>()?;
    let crds = caches.get::<CustomResourceDefinition>()?;
    let (collect_tx, collect_rx) = mpsc::unbounded_channel();
    let (collect_cluster_tx, collect_cluster_rx) = mpsc::unbounded_channel();
    let state = Arc::new(State {
        ctx: ctx.clone(),
        kinds: Kinds::new(ctx.client().clone()),
        policies: policies.store(),
        cluster_policies: cluster_policies.store(),
        bindings: bindings.store(),
        cluster_bindings: cluster_bindings.store(),
        watched: Mutex::default(),
        collect: collect_tx,
        collect_cluster: collect_cluster_tx,
        options: options.clone(),
    });
    let of_binding = |resource: &ObjectReference| {
        Wake::Binding(kinds::gvk(&resource.api_version, &resource.kind))
    };
    let rb_seen = Seen::default();
    let crb_seen = Seen::default();
    let wakes: Vec<BoxStream<'static, Wake>> = vec![
        policies.subscribe()?.map(|_| Wake::Policies).boxed(),
        cluster_policies
            .subscribe()?
            .map(|_| Wake::Policies)
            .boxed(),
        gone_stream(policies.gone(), |_| Some(Wake::Policies)).boxed(),
        gone_stream(cluster_policies.gone(), |_| Some(Wake::Policies)).boxed(),
        bindings
            .subscribe()?
            .map({
                let seen = rb_seen.clone();
                move |b| {
                    remember(&seen, &b.metadata, &b.spec.resource);
                    of_binding(&b.spec.resource)
                }
            })
            .boxed(),
        cluster_bindings
            .subscribe()?
            .map({
                let seen = crb_seen.clone();
                move |b| {
                    remember(&seen, &b.metadata, &b.spec.spec.resource);
                    of_binding(&b.spec.spec.resource)
                }
            })
            .boxed(),
        gone_stream(bindings.gone(), move |key| {
            forget(&rb_seen, &key).map(Wake::BindingGone)
        })
        .boxed(),
        gone_stream(cluster_bindings.gone(), move |key| {
            forget(&crb_seen, &key).map(Wake::BindingGone)
        })
        .boxed(),
        crds.subscribe()?.map(|_| Wake::Rediscover).boxed(),
        gone_stream(crds.gone(), |_| Some(Wake::Rediscover)).boxed(),
    ];
    let shared = Arc::new(Collect {
        state: state.clone(),
    });
    let rb = collector::<ResourceBinding>(
        ctx,
        "detector-resourcebinding",
        &shared,
        collect_rx,
        options.concurrency,
    )?;
    let crb = collector::<ClusterResourceBinding>(
        ctx,
        "detector-clusterresourcebinding",
        &shared,
        collect_cluster_rx,
        options.concurrency,
    )?;
    let keeper = keep_kinds(state, futures::stream::select_all(wakes).boxed());
    info!("starting the resource detector");
    Ok(async move {
        futures::future::join3(keeper, rb, crb).await;
    })
}

/// The template each binding refers to, kept from the bindings' change stream, so a binding's
/// deletion notice (which names only the binding) can wake its template.
type Seen = Arc<Mutex<HashMap<(Option<String>, String), ObjectReference>>>;

fn remember(seen: &Seen, meta: &kube::api::ObjectMeta, resource: &ObjectReference) {
    seen.lock().unwrap_or_else(|p| p.into_inner()).insert(
        (
            meta.namespace.clone(),
            meta.name.clone().unwrap_or_default(),
        ),
        resource.clone(),
    );
}

fn forget<B: flotilla_runtime::cache::CachedKind>(
    seen: &Seen,
    key: &ObjectRef<B>,
) -> Option<ObjectReference> {
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(key.namespace.clone(), key.name.clone()))
}
