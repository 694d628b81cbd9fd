//! The binding-status controller (Karmada's `binding-status` and
//! `cluster-resource-binding-status` controllers): for every ResourceBinding and
//! ClusterResourceBinding it gathers the Works of its target clusters into
//! `status.aggregatedStatus` — one item per cluster with `applied` (the Work's `Applied`
//! condition), `appliedMessage`, `health` and the status the member reported — and sets the
//! `FullyApplied` condition; then it aggregates the clusters' statuses into the resource
//! template's own `.status` ([`flotilla_propagation::interpreter::aggregate_status`]), so the
//! hub's copy of a Deployment reads as the fleet runs it.
//!
//! "Applied" and "healthy" are kept apart: `FullyApplied` says every Work was applied, whatever
//! the workloads' health; health is per cluster in `aggregatedStatus`. Writes go only through
//! `/status` subresources under `flotilla-binding-status` (server-side apply, forced, owning
//! `aggregatedStatus` and `FullyApplied` on the binding, and the aggregated fields on the
//! template), never a spec, so a GitOps tool sees no drift. Each is written only when it
//! changes.

use std::{future::Future, sync::Arc};

use flotilla_api::{
    ClusterResourceBinding, ResourceBinding, Work,
    conditions::{self, APPLIED, FULLY_APPLIED, reasons},
    keys::field_managers::BINDING_STATUS,
    names,
    work::{AggregatedStatusItem, ResourceHealth, TargetCluster},
};
use flotilla_propagation::{interpreter, render};
use flotilla_runtime::{
    Context, Runner, Settings,
    status::{self, StatusWrite},
};
use flotilla_work::kinds::{self, KindError, Kinds};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, Patch, PatchParams},
    runtime::{
        controller::Action,
        reflector::{ObjectRef, Store},
    },
};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::binding::{Binding, label_of, permanent_id, targets, work_name_of};

/// The controller's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the binding's status failed.
    #[error("failed to write the status of {binding}: {source}")]
    WriteBindingStatus {
        /// `Kind namespace/name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Reading the template failed.
    #[error(transparent)]
    Template(#[from] KindError),
    /// Writing the template's status failed.
    #[error("failed to write the status of the resource template {template}: {source}")]
    WriteTemplateStatus {
        /// `Kind namespace/name`.
        template: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The platform failed (a cache was asked for too late).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::WriteBindingStatus { .. } => "WriteBindingStatus",
            Self::Template(_) => "ReadTemplate",
            Self::WriteTemplateStatus { .. } => "WriteTemplateStatus",
            Self::Platform(_) => "Platform",
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Self::WriteBindingStatus { source, .. } | Self::WriteTemplateStatus { source, .. } => {
                flotilla_runtime::error::is_conflict(source)
            }
            Self::Template(error) => flotilla_runtime::error::is_conflict(error.source_error()),
            Self::Platform(_) => false,
        }
    }
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bindings looked at once, per binding kind.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self { concurrency: 5 }
    }
}

/// The aggregated status item of `cluster` from its Work (`None`: not written yet).
pub fn item(cluster: &str, work: Option<&Work>) -> AggregatedStatusItem {
    let mut item = AggregatedStatusItem {
        cluster_name: cluster.to_owned(),
        status: None,
        applied: false,
        applied_message: None,
        health: Some(ResourceHealth::Unknown),
    };
    let Some(work) = work else {
        item.applied_message = Some("the cluster's Work is not written yet".to_owned());
        return item;
    };
    let status = work.status.clone().unwrap_or_default();
    match conditions::find(&status.conditions, APPLIED) {
        Some(applied) if applied.status == conditions::TRUE => item.applied = true,
        Some(applied) => {
            item.applied_message = Some(format!("{}: {}", applied.reason, applied.message));
        }
        None if work.spec.suspend_dispatching == Some(true) => {
            item.applied_message = Some("dispatching to the cluster is suspended".to_owned());
        }
        None => item.applied_message = Some("the Work is not applied yet".to_owned()),
    }
    if let Some(manifest) = status.manifest_statuses.first() {
        item.status.clone_from(&manifest.status);
        item.health = manifest.health.or(Some(ResourceHealth::Unknown));
    }
    item
}

/// The `FullyApplied` condition of `items` at `generation`.
pub fn fully_applied(items: &[AggregatedStatusItem], generation: Option<i64>) -> Condition {
    let pending: Vec<String> = items
        .iter()
        .filter(|i| !i.applied)
        .map(|i| {
            format!(
                "{}: {}",
                i.cluster_name,
                i.applied_message.as_deref().unwrap_or("not applied")
            )
        })
        .collect();
    if pending.is_empty() {
        conditions::new(
            FULLY_APPLIED,
            true,
            reasons::FULLY_APPLIED_SUCCESS,
            "All works have been successfully applied",
            generation,
        )
    } else {
        conditions::new(
            FULLY_APPLIED,
            false,
            reasons::FULLY_APPLIED_FAILED,
            format!(
                "Failed to apply all works, see status.aggregatedStatus for details ({})",
                pending.join("; ")
            ),
            generation,
        )
    }
}

struct State {
    client: Client,
    works: Store<Work>,
    kinds: Kinds,
}

/// The Work of `binding` in `cluster`, if it is this binding's.
fn work_of<B: Binding>(
    works: &Store<Work>,
    binding: &B,
    cluster: &TargetCluster,
) -> Option<Arc<Work>> {
    let id = permanent_id(binding)?;
    let namespace = names::execution_namespace(&cluster.name).ok()?;
    let name = work_name_of(&binding.binding_spec().resource);
    works
        .get(&ObjectRef::new(&name).within(&namespace))
        .filter(|w| w.labels().get(B::PERMANENT_ID_LABEL) == Some(&id))
}

async fn reconcile<B: Binding>(binding: Arc<B>, state: Arc<State>) -> Result<Action> {
    if binding.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let spec = binding.binding_spec();
    let targets = targets(spec);
    if targets.is_empty() {
        return Ok(Action::await_change());
    }
    let generation = binding.meta().generation;
    let mut items: Vec<AggregatedStatusItem> = targets
        .iter()
        .map(|t| {
            item(
                &t.name,
                work_of(&state.works, binding.as_ref(), t).as_deref(),
            )
        })
        .collect();
    items.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));

    let current = binding.binding_status().cloned().unwrap_or_default();
    let mut next = current.conditions.clone();
    let changed = conditions::set_condition(
        &mut next,
        fully_applied(&items, generation),
        Time(Timestamp::now()),
    );
    if changed || current.aggregated_status != items {
        let write = StatusWrite {
            field_manager: BINDING_STATUS,
            owned: json!({
                "conditions": status::owned(&next, &[FULLY_APPLIED]),
                "aggregatedStatus": items,
            }),
        };
        status::write(
            &binding.api_for(state.client.clone()),
            binding.as_ref(),
            write,
        )
        .await
        .map_err(|source| Error::WriteBindingStatus {
            binding: label_of(binding.as_ref()),
            source,
        })?;
    }

    // The template's status, from what every cluster reported.
    let Some(template) = state.kinds.get(&spec.resource).await? else {
        return Ok(Action::await_change());
    };
    if template.pointer("/metadata/uid").and_then(Value::as_str) != spec.resource.uid.as_deref()
        && spec.resource.uid.is_some()
    {
        return Ok(Action::await_change());
    }
    let duplicated = !render::divides(spec);
    let Some(aggregated) = interpreter::aggregate_status(&template, &items, duplicated) else {
        return Ok(Action::await_change());
    };
    if template.get("status") == Some(&aggregated) {
        return Ok(Action::await_change());
    }
    write_template_status(&state, &spec.resource, &aggregated).await?;
    Ok(Action::await_change())
}

/// Applies the template's aggregated `status` through its `/status` subresource.
async fn write_template_status(
    state: &State,
    reference: &flotilla_api::work::ObjectReference,
    status: &Value,
) -> Result<()> {
    let gvk = kinds::gvk(&reference.api_version, &reference.kind);
    let Some(resolved) = state.kinds.resolve(&gvk).await? else {
        return Ok(());
    };
    let api: Api<DynamicObject> = match &reference.namespace {
        Some(ns) if resolved.namespaced => {
            Api::namespaced_with(state.client.clone(), ns, &resolved.resource)
        }
        _ => Api::all_with(state.client.clone(), &resolved.resource),
    };
    let mut body = json!({
        "apiVersion": reference.api_version,
        "kind": reference.kind,
        "metadata": {"name": reference.name},
        "status": status,
    });
    if let Some(ns) = reference.namespace.as_ref().filter(|_| resolved.namespaced) {
        body["metadata"]["namespace"] = json!(ns);
    }
    let params = PatchParams::apply(BINDING_STATUS).force();
    match api
        .patch_status(&reference.name, &params, &Patch::Apply(&body))
        .await
    {
        Ok(_) => {
            debug!(template = %kinds::label(reference), "wrote the template's aggregated status");
            Ok(())
        }
        // The kind has no status subresource, or the template went: nothing to write.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 405 => Ok(()),
        Err(source) => Err(Error::WriteTemplateStatus {
            template: kinds::label(reference),
            source,
        }),
    }
}

/// The binding a Work belongs to, by the template its manifest is (the binding's name comes
/// from the template's kind and name) and checked against the Work's id label.
fn binding_of_work<B: Binding>(work: &Work, bindings: &Store<B>) -> Option<ObjectRef<B>> {
    let id = work.labels().get(B::PERMANENT_ID_LABEL)?;
    let manifest = &work.spec.workload.manifests.first()?.0;
    let kind = manifest.get("kind")?.as_str()?;
    let name = manifest.pointer("/metadata/name")?.as_str()?;
    let key = ObjectRef::new(&names::binding_name(kind, name));
    let key = match manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(ns) if B::kind(&()) == "ResourceBinding" => key.within(ns),
        _ => key,
    };
    bindings
        .get(&key)
        .filter(|b| b.meta().uid.as_ref() == Some(id))
        .map(|_| key)
}

fn runner<B: Binding>(ctx: &Arc<Context>, options: &Options) -> Result<Runner<B>> {
    let runner = Runner::<B>::new(ctx, B::STATUS_RUNNER, Settings::new(options.concurrency))?
        .trigger_when_changed(|binding: &B| {
            let spec = binding.binding_spec();
            (
                serde_json::to_string(&(
                    &spec.resource,
                    &spec.clusters,
                    &spec.required_by,
                    &spec.placement,
                ))
                .unwrap_or_default(),
                binding.meta().deletion_timestamp.is_some(),
            )
        });
    let bindings = runner.store();
    let seen: std::sync::Mutex<std::collections::HashMap<ObjectRef<Work>, u64>> =
        std::sync::Mutex::default();
    let runner = runner.watches(move |work: Arc<Work>| {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        serde_json::to_string(&work.status)
            .unwrap_or_default()
            .hash(&mut hasher);
        work.metadata.uid.hash(&mut hasher);
        let projection = hasher.finish();
        let key = ObjectRef::from_obj(work.as_ref());
        let mut seen = seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.insert(key, projection) == Some(projection) {
            return None;
        }
        drop(seen);
        binding_of_work(&work, &bindings)
    })?;
    Ok(runner)
}

/// Builds the controller: the `binding-status-resourcebinding` and
/// `binding-status-clusterresourcebinding` runners, woken by a binding's targets changing and
/// by its Works' status changing.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let state = Arc::new(State {
        client: ctx.client().clone(),
        works: ctx.caches().get::<Work>()?.store(),
        kinds: Kinds::new(ctx.client().clone()),
    });
    let rb =
        runner::<ResourceBinding>(ctx, &options)?.run(reconcile::<ResourceBinding>, state.clone());
    let crb = runner::<ClusterResourceBinding>(ctx, &options)?
        .run(reconcile::<ClusterResourceBinding>, state);
    info!("starting the binding-status controller");
    Ok(async move {
        futures::future::join(rb, crb).await;
    })
}

#[cfg(test)]
mod tests {
    use flotilla_api::work::{ManifestStatus, ResourceIdentifier, WorkSpec, WorkStatus};

    use super::*;

    fn work(applied: Option<bool>, health: Option<ResourceHealth>) -> Work {
        let mut work = Work::new("w", WorkSpec::default());
        let mut status = WorkStatus::default();
        if let Some(applied) = applied {
            status.conditions.push(conditions::new(
                APPLIED,
                applied,
                if applied {
                    "AppliedSuccessfully"
                } else {
                    "ConflictWithExisting"
                },
                if applied { "ok" } else { "in the way" },
                None,
            ));
        }
        if let Some(health) = health {
            status.manifest_statuses.push(ManifestStatus {
                identifier: ResourceIdentifier::default(),
                status: Some(json!({"replicas": 2})),
                health: Some(health),
            });
        }
        work.status = Some(status);
        work
    }

    #[test]
    fn items_keep_applied_and_healthy_apart() {
        let missing = item("m1", None);
        assert!(!missing.applied);
        assert_eq!(missing.health, Some(ResourceHealth::Unknown));
        let unhealthy = item(
            "m2",
            Some(&work(Some(true), Some(ResourceHealth::Unhealthy))),
        );
        assert!(unhealthy.applied, "applied although unhealthy");
        assert_eq!(unhealthy.health, Some(ResourceHealth::Unhealthy));
        assert_eq!(unhealthy.status, Some(json!({"replicas": 2})));
        let conflict = item("m3", Some(&work(Some(false), None)));
        assert_eq!(
            conflict.applied_message.as_deref(),
            Some("ConflictWithExisting: in the way")
        );

        let all = fully_applied(std::slice::from_ref(&unhealthy), Some(4));
        assert_eq!(
            (
                all.status.as_str(),
                all.reason.as_str(),
                all.observed_generation
            ),
            ("True", "FullyAppliedSuccess", Some(4))
        );
        let some = fully_applied(&[unhealthy, conflict, missing], None);
        assert_eq!(
            (some.status.as_str(), some.reason.as_str()),
            ("False", "FullyAppliedFailed")
        );
        assert!(
            some.message.contains("m3: ConflictWithExisting"),
            "{}",
            some.message
        );
        assert!(
            some.message
                .contains("m1: the cluster's Work is not written yet"),
            "{}",
            some.message
        );
    }
}
