//! The dependencies distributor (Karmada's `dependencies-distributor`): the ConfigMaps,
//! Secrets, ServiceAccounts and PersistentVolumeClaims a workload with `propagateDeps: true`
//! references follow it to its clusters. For each such ResourceBinding it reads the template,
//! asks the interpreter for its dependencies ([`interpreter::dependencies`]) and records them on
//! the binding (annotation `resourcebinding.flotilla.io/dependencies`). Each dependency that
//! exists gets an "attached" ResourceBinding `<name>-<kind>` in the same namespace, controlled
//! by the dependency object, with no placement (the scheduler leaves it alone) and
//! `requiredBy`: one snapshot per workload binding that needs it, with that binding's clusters.
//! The binding controller renders a binding to its clusters and those of its `requiredBy`, so
//! a dependency follows its workloads when they move and leaves a cluster once no workload
//! there needs it; an attached binding no workload requires any more is deleted (one a
//! policy also claims keeps its own placement and only loses `requiredBy`).
//!
//! `requiredBy` is computed whole from every workload binding of the namespace each time, and
//! written by server-side apply under `flotilla-dependencies`, only when it changes. Woken by
//! bindings changing or going and by dependency objects changing (a ConfigMap created after its
//! workload, or edited: the attached binding names its resourceVersion, so its Works follow).

use std::{future::Future, sync::Arc};

use flotilla_api::{
    ResourceBinding,
    keys::{annotations, field_managers::DEPENDENCIES},
    names,
    work::BindingSnapshot,
};
use flotilla_propagation::interpreter::{self, Dependency};
use flotilla_runtime::error::is_not_found;
use flotilla_runtime::{Context, Runner, Settings, cache::CachedKind};
use futures::{Stream, StreamExt};
use k8s_openapi::{
    api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, ServiceAccount},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
    runtime::{
        controller::Action,
        reflector::{ObjectRef, Store},
    },
};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tracing::{debug, info};

use crate::kinds::{KindError, Kinds};

/// The runner name.
pub const RUNNER: &str = "dependencies";

/// The result type of this controller.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong, one variant per action that failed (the variant name is the `reason`
/// label of the reconcile error metric).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering a template's kind, or reading the template, failed.
    #[error(transparent)]
    Template(#[from] KindError),

    /// Recording a binding's dependencies failed.
    #[error("failed to record the dependencies of ResourceBinding {binding}: {source}")]
    RecordDependencies {
        /// `namespace/name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing an attached binding failed.
    #[error("failed to write the attached ResourceBinding {binding}: {source}")]
    WriteAttached {
        /// `namespace/name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Deleting an attached binding no workload requires failed.
    #[error("failed to delete the attached ResourceBinding {binding}: {source}")]
    DeleteAttached {
        /// `namespace/name`.
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
            Error::Template(error) => Some(error.source_error()),
            Error::RecordDependencies { source, .. }
            | Error::WriteAttached { source, .. }
            | Error::DeleteAttached { source, .. } => Some(source),
            Error::Platform(_) => None,
        }
    }
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Error::Template(KindError::Discover { .. }) => "DiscoverKind",
            Error::Template(KindError::Get { .. }) => "GetTemplate",
            Error::RecordDependencies { .. } => "RecordDependencies",
            Error::WriteAttached { .. } => "WriteAttached",
            Error::DeleteAttached { .. } => "DeleteAttached",
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
    /// How many bindings are handled at once.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self { concurrency: 4 }
    }
}

// ---------------------------------------------------------------------------------------------
// Pure decisions.
// ---------------------------------------------------------------------------------------------

/// The dependencies recorded on a binding (an unreadable annotation counts as none).
pub fn recorded(meta: &ObjectMeta) -> Vec<Dependency> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(annotations::DEPENDENCIES))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// Whether a binding's workload needs its dependencies where it runs: it asks for them, is
/// not being deleted, and is scheduled somewhere.
fn requires(binding: &ResourceBinding) -> bool {
    binding.spec.propagate_deps
        && binding.metadata.deletion_timestamp.is_none()
        && !binding.spec.clusters.is_empty()
}

/// The `requiredBy` of `dependency`: a snapshot of every binding of `bindings` that requires
/// it (see [`requires`]), sorted by name. `override_of` replaces one binding's recorded
/// dependencies with those just computed (the store may not have the write yet).
pub fn required_by<'a>(
    dependency: &Dependency,
    bindings: impl IntoIterator<Item = &'a ResourceBinding>,
    override_of: Option<(&'a ResourceBinding, &[Dependency])>,
) -> Vec<BindingSnapshot> {
    let mut snapshots: Vec<BindingSnapshot> = bindings
        .into_iter()
        .filter(|b| b.metadata.namespace == dependency.namespace)
        .filter(|b| override_of.is_none_or(|(o, _)| o.metadata.name != b.metadata.name))
        .filter(|b| requires(b) && recorded(&b.metadata).contains(dependency))
        .chain(
            override_of
                .filter(|(o, deps)| requires(o) && deps.contains(dependency))
                .map(|(o, _)| o),
        )
        .map(|b| BindingSnapshot {
            namespace: b.metadata.namespace.clone(),
            name: b.name_any(),
            clusters: b.spec.clusters.clone(),
        })
        .collect();
    snapshots.sort_by(|a, b| a.name.cmp(&b.name));
    snapshots
}

/// The dependency an attached binding is for.
fn dependency_of(binding: &ResourceBinding) -> Dependency {
    Dependency {
        api_version: binding.spec.resource.api_version.clone(),
        kind: binding.spec.resource.kind.clone(),
        namespace: binding.spec.resource.namespace.clone(),
        name: binding.spec.resource.name.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// The controller.
// ---------------------------------------------------------------------------------------------

struct State {
    client: kube::Client,
    kinds: Kinds,
    bindings: Store<ResourceBinding>,
    config_maps: Store<ConfigMap>,
    secrets: Store<Secret>,
    service_accounts: Store<ServiceAccount>,
    claims: Store<PersistentVolumeClaim>,
}

impl State {
    /// The dependency object as a template (apiVersion, kind and metadata), if it exists.
    fn object(&self, dependency: &Dependency) -> Option<Value> {
        fn meta<K: CachedKind>(store: &Store<K>, name: &str, ns: &str) -> Option<ObjectMeta> {
            store
                .get(&ObjectRef::new(name).within(ns))
                .map(|o| o.meta().clone())
        }
        let ns = dependency.namespace.as_deref()?;
        let name = dependency.name.as_str();
        let metadata = match dependency.kind.as_str() {
            "ConfigMap" => meta(&self.config_maps, name, ns),
            "Secret" => meta(&self.secrets, name, ns),
            "ServiceAccount" => meta(&self.service_accounts, name, ns),
            "PersistentVolumeClaim" => meta(&self.claims, name, ns),
            _ => None,
        }?;
        Some(json!({
            "apiVersion": dependency.api_version,
            "kind": dependency.kind,
            "metadata": metadata,
        }))
    }

    /// Brings the attached binding of `dependency` in line with the bindings that require it.
    async fn sync_attached(
        &self,
        dependency: &Dependency,
        override_of: Option<(&ResourceBinding, &[Dependency])>,
    ) -> Result<()> {
        let Some(namespace) = dependency.namespace.as_deref() else {
            return Ok(());
        };
        let bindings = self.bindings.state();
        let required = required_by(dependency, bindings.iter().map(AsRef::as_ref), override_of);
        let name = names::binding_name(&dependency.kind, &dependency.name);
        let label = format!("{namespace}/{name}");
        let current = self.bindings.get(&ObjectRef::new(&name).within(namespace));
        let api: Api<ResourceBinding> = Api::namespaced(self.client.clone(), namespace);
        let params = PatchParams::apply(DEPENDENCIES).force();
        if required.is_empty() {
            let Some(current) = current else {
                return Ok(());
            };
            if current.spec.required_by.is_empty() || current.metadata.deletion_timestamp.is_some()
            {
                return Ok(());
            }
            if current.spec.placement.is_none() {
                // Attached only: no workload needs it anywhere now.
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: current.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::background()
                };
                return match api.delete(&name, &params).await {
                    Ok(_) => {
                        info!(binding = %label, "deleted the attached binding: no workload requires it");
                        Ok(())
                    }
                    Err(e) if is_not_found(&e) || flotilla_runtime::error::is_conflict(&e) => {
                        Ok(())
                    }
                    Err(source) => Err(Error::DeleteAttached {
                        binding: label,
                        source,
                    }),
                };
            }
            // A policy claims it too: it keeps its own placement and loses requiredBy.
            let body = json!({
                "apiVersion": ResourceBinding::api_version(&()),
                "kind": ResourceBinding::kind(&()),
                "metadata": {"name": name, "namespace": namespace},
            });
            api.patch(&name, &params, &Patch::Apply(&body))
                .await
                .map_err(|source| Error::WriteAttached {
                    binding: label,
                    source,
                })?;
            return Ok(());
        }
        let Some(object) = self.object(dependency) else {
            debug!(dependency = %name, "a dependency that does not exist (yet)");
            return Ok(());
        };
        let resource = flotilla_propagation::render::resource_ref(&object);
        let owner = crate::detector::owner_of(&object);
        if let Some(current) = &current {
            if current.metadata.deletion_timestamp.is_some() {
                return Ok(());
            }
            let claimed = current.spec.placement.is_some();
            let same_resource = claimed
                || (current.spec.resource == resource
                    && owner.as_ref().is_none_or(|owner| {
                        current
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|o| o == owner)
                    }));
            if current.spec.required_by == required && same_resource {
                return Ok(());
            }
        }
        let claimed = current.as_ref().is_some_and(|c| c.spec.placement.is_some());
        let mut metadata = json!({"name": name, "namespace": namespace});
        let mut spec = json!({"requiredBy": required});
        if !claimed {
            // The detector owns what a policy-claimed binding points at.
            metadata["ownerReferences"] = json!(owner.into_iter().collect::<Vec<_>>());
            spec["resource"] = serde_json::to_value(&resource).unwrap_or_default();
        }
        let body = json!({
            "apiVersion": ResourceBinding::api_version(&()),
            "kind": ResourceBinding::kind(&()),
            "metadata": metadata,
            "spec": spec,
        });
        api.patch(&name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::WriteAttached {
                binding: label.clone(),
                source,
            })?;
        debug!(binding = %label, required_by = required.len(), "wrote the attached binding");
        Ok(())
    }
}

async fn reconcile(binding: Arc<ResourceBinding>, state: Arc<State>) -> Result<Action> {
    let namespace = binding.namespace().unwrap_or_default();
    let before = recorded(&binding.metadata);
    let wanted = if binding.spec.propagate_deps && binding.metadata.deletion_timestamp.is_none() {
        match state.kinds.get(&binding.spec.resource).await? {
            Some(template) => interpreter::dependencies(&template)
                .into_iter()
                .filter(|d| d.namespace.as_deref() == Some(namespace.as_str()))
                .collect(),
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };
    if wanted != before {
        let mut metadata = json!({"name": binding.name_any(), "namespace": namespace});
        if !wanted.is_empty() {
            metadata["annotations"] = json!({
                annotations::DEPENDENCIES: serde_json::to_string(&wanted).unwrap_or_default()
            });
        }
        let body = json!({
            "apiVersion": ResourceBinding::api_version(&()),
            "kind": ResourceBinding::kind(&()),
            "metadata": metadata,
        });
        let api: Api<ResourceBinding> = Api::namespaced(state.client.clone(), &namespace);
        match api
            .patch(
                &binding.name_any(),
                &PatchParams::apply(DEPENDENCIES).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(source) => {
                return Err(Error::RecordDependencies {
                    binding: format!("{namespace}/{}", binding.name_any()),
                    source,
                });
            }
        }
    }
    let mut affected: Vec<&Dependency> = before.iter().chain(wanted.iter()).collect();
    affected.sort();
    affected.dedup();
    for dependency in affected {
        state
            .sync_attached(dependency, Some((&binding, &wanted)))
            .await?;
    }
    // As an attached binding: its requiredBy is checked against the bindings there are now
    // (a workload binding may have gone while nobody watched).
    if !binding.spec.required_by.is_empty() {
        state.sync_attached(&dependency_of(&binding), None).await?;
    }
    Ok(Action::await_change())
}

/// The workload bindings of the dependency object `key` names (of kind `kind`): those whose
/// recorded dependencies include it.
fn dependents<K: CachedKind>(
    bindings: &Store<ResourceBinding>,
    kind: &str,
    object: &K,
) -> Vec<ObjectRef<ResourceBinding>> {
    let dependency = Dependency {
        api_version: "v1".to_owned(),
        kind: kind.to_owned(),
        namespace: object.namespace(),
        name: object.name_any(),
    };
    bindings
        .state()
        .iter()
        .filter(|b| b.metadata.namespace == dependency.namespace && b.spec.propagate_deps)
        .filter(|b| recorded(&b.metadata).contains(&dependency))
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// When a binding goes: the attached bindings that named it in `requiredBy`.
fn on_binding_gone(
    gone: broadcast::Receiver<ObjectRef<ResourceBinding>>,
    bindings: Store<ResourceBinding>,
) -> impl Stream<Item = ObjectRef<ResourceBinding>> + Send + 'static {
    futures::stream::unfold((gone, bindings), |(mut gone, bindings)| async move {
        let keys: Vec<ObjectRef<ResourceBinding>> = match gone.recv().await {
            Ok(key) => bindings
                .state()
                .iter()
                .filter(|b| b.metadata.namespace == key.namespace)
                .filter(|b| b.spec.required_by.iter().any(|s| s.name == key.name))
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect(),
            Err(broadcast::error::RecvError::Lagged(_)) => bindings
                .state()
                .iter()
                .filter(|b| !b.spec.required_by.is_empty())
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect(),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((futures::stream::iter(keys), (gone, bindings)))
    })
    .flatten()
}

/// Builds the `dependencies` runner over the shared caches.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let caches = ctx.caches();
    let bindings = caches.get::<ResourceBinding>()?;
    let state = Arc::new(State {
        client: ctx.client().clone(),
        kinds: Kinds::new(ctx.client().clone()),
        bindings: bindings.store(),
        config_maps: caches.get::<ConfigMap>()?.store(),
        secrets: caches.get::<Secret>()?.store(),
        service_accounts: caches.get::<ServiceAccount>()?.store(),
        claims: caches.get::<PersistentVolumeClaim>()?.store(),
    });
    let store = bindings.store();
    let runner = Runner::<ResourceBinding>::new(ctx, RUNNER, Settings::new(options.concurrency))?
        .trigger_when_changed(|b: &ResourceBinding| {
            (
                b.spec.propagate_deps,
                serde_json::to_string(&b.spec.clusters).unwrap_or_default(),
                serde_json::to_string(&b.spec.required_by).unwrap_or_default(),
                b.spec.resource.resource_version.clone(),
                b.spec.placement.is_some(),
                b.metadata.deletion_timestamp.is_some(),
                b.annotations().get(annotations::DEPENDENCIES).cloned(),
            )
        })
        .reconcile_on(on_binding_gone(bindings.gone(), store.clone()));
    let s = store.clone();
    let runner =
        runner.watches::<ConfigMap, _>(move |o| dependents(&s, "ConfigMap", o.as_ref()))?;
    let s = store.clone();
    let runner = runner.watches::<Secret, _>(move |o| dependents(&s, "Secret", o.as_ref()))?;
    let s = store.clone();
    let runner = runner
        .watches::<ServiceAccount, _>(move |o| dependents(&s, "ServiceAccount", o.as_ref()))?;
    let s = store;
    let runner = runner.watches::<PersistentVolumeClaim, _>(move |o| {
        dependents(&s, "PersistentVolumeClaim", o.as_ref())
    })?;
    info!("starting the dependencies distributor");
    Ok(runner.run(reconcile, state))
}
