//! Namespace sync: every user namespace on the hub exists in every member cluster, as Karmada's
//! namespace-sync controller does. For each Cluster it keeps one Work per synced namespace in
//! the cluster's execution namespace (the execution controller applies it, adopting a namespace
//! the member already has); a namespace deleted on the hub, or going, takes its Works and so
//! the member namespaces with it.
//!
//! Not synced: `default`, `kube-*`, Flotilla's own `flotilla-*` namespaces, and namespaces
//! labelled `namespace.flotilla.io/skip-auto-propagation=true`. A namespace that gets that
//! label later has its Works removed with `preserveResourcesOnDeletion`, so the member
//! namespaces and what runs in them stay.
//!
//! The runner's primary kind is Cluster: one pass compares a cluster's namespace Works (found
//! by their `namespace.flotilla.io/synced` label) with the hub's namespaces, both from the
//! shared caches, and writes only the difference. Any namespace change wakes every cluster.

use std::{collections::BTreeMap, future::Future, sync::Arc};

use flotilla_api::{
    Cluster, Work,
    keys::{annotations, labels},
    names,
    work::{Manifest, WorkSpec, WorkloadTemplate},
};
use flotilla_runtime::{Context, Runner, Settings, cache::CachedKind, error::is_not_found};
use futures::Stream;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{controller::Action, reflector::ObjectRef, reflector::Store},
};
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::info;

use crate::error::{Error, Result};

/// The field manager of the Works this controller writes.
pub const FIELD_MANAGER: &str = "flotilla-namespace-sync";

/// Settings of the namespace-sync controller.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many clusters are synced at once.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self { concurrency: 4 }
    }
}

/// Whether a hub namespace is copied to the members: not `default`, `kube-*`, `flotilla-*`,
/// nor labelled to skip.
pub fn is_synced(namespace: &Namespace) -> bool {
    let name = namespace.name_any();
    let reserved = name == "default" || name.starts_with("kube-") || name.starts_with("flotilla-");
    let skipped = namespace
        .labels()
        .get(labels::SKIP_AUTO_PROPAGATION)
        .is_some_and(|v| v == "true");
    !reserved && !skipped
}

/// The Work that makes `namespace` exist in a member: the namespace with its labels, adopted
/// when the member already has one of that name (conflict resolution `overwrite`).
pub fn desired_work(execution_namespace: &str, namespace: &Namespace) -> Work {
    let name = namespace.name_any();
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": namespace.labels(),
            "annotations": {annotations::CONFLICT_RESOLUTION: "overwrite"},
        },
    });
    let mut work = Work::new(
        &names::work_name("v1", "Namespace", None, &name),
        WorkSpec {
            workload: WorkloadTemplate {
                manifests: vec![Manifest(manifest)],
            },
            suspend_dispatching: None,
            preserve_resources_on_deletion: None,
        },
    );
    work.metadata.namespace = Some(execution_namespace.to_owned());
    work.metadata.labels = Some(BTreeMap::from([(
        labels::SYNCED_NAMESPACE.to_owned(),
        name,
    )]));
    work
}

/// What one pass does about one of a cluster's namespace Works.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Write the Work (missing or different).
    Write(Box<Work>),
    /// Delete the Work, and with it the member namespace.
    Delete(String),
    /// Delete the Work but keep the member namespace: first mark it preserved.
    Release(String),
}

/// The steps that bring a cluster's namespace Works (`current`) in line with the hub's
/// `namespaces`. Works another controller owns (a binding propagating a Namespace itself) are
/// left alone.
pub fn plan(
    execution_namespace: &str,
    namespaces: &[Arc<Namespace>],
    current: &[Arc<Work>],
) -> Vec<Step> {
    let mut steps = Vec::new();
    let wanted: BTreeMap<String, Work> = namespaces
        .iter()
        .filter(|ns| ns.meta().deletion_timestamp.is_none() && is_synced(ns))
        .map(|ns| {
            let work = desired_work(execution_namespace, ns);
            (work.name_any(), work)
        })
        .collect();
    let owned_by_binding = |work: &Work| {
        work.labels()
            .contains_key(labels::RESOURCE_BINDING_PERMANENT_ID)
            || work
                .labels()
                .contains_key(labels::CLUSTER_RESOURCE_BINDING_PERMANENT_ID)
    };
    for (name, desired) in &wanted {
        let existing = current.iter().find(|w| &w.name_any() == name);
        match existing {
            Some(work) if owned_by_binding(work) => {}
            Some(work)
                if work.spec == desired.spec
                    && work.labels().get(labels::SYNCED_NAMESPACE)
                        == desired.labels().get(labels::SYNCED_NAMESPACE) => {}
            _ => steps.push(Step::Write(Box::new(desired.clone()))),
        }
    }
    for work in current {
        let name = work.name_any();
        let Some(synced) = work.labels().get(labels::SYNCED_NAMESPACE) else {
            continue;
        };
        if wanted.contains_key(&name)
            || owned_by_binding(work)
            || work.meta().deletion_timestamp.is_some()
        {
            continue;
        }
        // Still on the hub but no longer synced (labelled to skip): keep the member's copy.
        let kept = namespaces
            .iter()
            .any(|ns| &ns.name_any() == synced && ns.meta().deletion_timestamp.is_none());
        steps.push(if kept {
            Step::Release(name)
        } else {
            Step::Delete(name)
        });
    }
    steps
}

struct State {
    client: Client,
    namespaces: Store<Namespace>,
    works: Store<Work>,
}

async fn reconcile(cluster: Arc<Cluster>, state: Arc<State>) -> Result<Action> {
    let name = cluster.name_any();
    if cluster.meta().deletion_timestamp.is_some() {
        // The cluster controller removes a leaving cluster's Works.
        return Ok(Action::await_change());
    }
    let Ok(execution) = names::execution_namespace(&name) else {
        return Ok(Action::await_change());
    };
    if state.namespaces.get(&ObjectRef::new(&execution)).is_none() {
        // The cluster controller creates it; its arrival wakes this pass again.
        return Ok(Action::await_change());
    }
    let namespaces = state.namespaces.state();
    let current: Vec<Arc<Work>> = state
        .works
        .state()
        .into_iter()
        .filter(|w| {
            w.namespace().as_deref() == Some(execution.as_str())
                && w.labels().contains_key(labels::SYNCED_NAMESPACE)
        })
        .collect();
    let api: Api<Work> = Api::namespaced(state.client.clone(), &execution);
    let failed = |work: &str, source| Error::SyncNamespace {
        cluster: name.clone(),
        work: work.to_owned(),
        source,
    };
    for step in plan(&execution, &namespaces, &current) {
        match step {
            Step::Write(work) => {
                let work_name = work.name_any();
                let body = serde_json::to_value(&*work)
                    .map_err(|e| failed(&work_name, kube::Error::SerdeError(e)))?;
                api.patch(
                    &work_name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
                .map_err(|e| failed(&work_name, e))?;
            }
            Step::Release(work_name) => {
                let patch = json!({"spec": {"preserveResourcesOnDeletion": true}});
                match api
                    .patch(&work_name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => delete(&api, &work_name)
                        .await
                        .map_err(|e| failed(&work_name, e))?,
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(failed(&work_name, e)),
                }
                info!(cluster = %name, work = %work_name, "stopped syncing a namespace; the member keeps it");
            }
            Step::Delete(work_name) => {
                delete(&api, &work_name)
                    .await
                    .map_err(|e| failed(&work_name, e))?;
                info!(cluster = %name, work = %work_name, "a namespace left the hub; removing it from the member");
            }
        }
    }
    Ok(Action::await_change())
}

async fn delete(api: &Api<Work>, name: &str) -> kube::Result<()> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Yields `map(Some(key))` for each object that left a cache (skipping `None`s), and
/// `map(None)` after missed notices.
fn on_gone<K, T>(
    gone: broadcast::Receiver<ObjectRef<K>>,
    map: impl Fn(Option<ObjectRef<K>>) -> Option<T> + Send + 'static,
) -> impl Stream<Item = T> + Send + 'static
where
    K: CachedKind,
    T: Send + 'static,
{
    futures::stream::unfold((gone, map), |(mut gone, map)| async move {
        loop {
            let item = match gone.recv().await {
                Ok(key) => map(Some(key)),
                Err(RecvError::Lagged(_)) => map(None),
                Err(RecvError::Closed) => return None,
            };
            if let Some(item) = item {
                return Some((item, (gone, map)));
            }
        }
    })
}

/// Builds the controller: one `namespace-sync` runner over the shared Cluster cache, woken
/// when a Cluster comes or starts leaving, for every cluster when a hub namespace changes or
/// goes, and for a cluster when one of its namespace Works changes.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let runner = Runner::<Cluster>::new(ctx, "namespace-sync", Settings::new(options.concurrency))?
        .trigger_when_changed(|cluster: &Cluster| cluster.meta().deletion_timestamp.is_some());
    let clusters = runner.store();
    let all = move || {
        clusters
            .state()
            .iter()
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect::<Vec<_>>()
    };
    let runner = runner
        .watches(move |_: Arc<Namespace>| all())?
        .watches(|work: Arc<Work>| {
            work.labels().get(labels::SYNCED_NAMESPACE)?;
            let namespace = work.namespace()?;
            names::cluster_of_execution_namespace(&namespace).map(ObjectRef::<Cluster>::new)
        })?
        .reconcile_all_on(on_gone(ctx.caches().get::<Namespace>()?.gone(), |_| {
            Some(())
        }))
        // A Work deleted by hand: its cluster (any Work of an execution namespace; a pass
        // that finds nothing to do writes nothing).
        .reconcile_on(on_gone(ctx.caches().get::<Work>()?.gone(), |key| {
            let namespace = key?.namespace?;
            names::cluster_of_execution_namespace(&namespace).map(ObjectRef::<Cluster>::new)
        }));
    let state = Arc::new(State {
        client: ctx.client().clone(),
        namespaces: ctx.caches().get::<Namespace>()?.store(),
        works: ctx.caches().get::<Work>()?.store(),
    });
    info!("starting the namespace-sync controller");
    Ok(runner.run(reconcile, state))
}

#[cfg(test)]
mod tests;
