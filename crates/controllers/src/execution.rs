//! The execution controller (Karmada's `execution` and `work-status` controllers, in one
//! runner): for every Work in the execution namespace `flotilla-es-<cluster>` of a Push
//! cluster it applies the Work's manifests to the member through [`flotilla_work`], reflects
//! the member objects' status and health into `Work.status.manifestStatuses`, and keeps them as
//! declared: the member objects it applied are watched — one watch per (cluster, kind) in use,
//! started when a Work first needs it and stopped when none does — so an object edited or
//! deleted in the member is put back within moments, and a status change in the member reaches
//! the Work. A finalizer (`flotilla.io/execution-controller`) deletes the member objects when
//! the Work goes, or with `preserveResourcesOnDeletion` (or a leaving Cluster annotated
//! `cluster.flotilla.io/retain-member-objects: "true"`) leaves them to the member, released.
//!
//! Conflicts: an object that exists in the member and that no Work manages is left untouched
//! (`ConflictWithExisting`) unless the manifest says `work.flotilla.io/conflict-resolution:
//! overwrite`, when it is adopted; an object another Work manages is never taken over
//! (`ManagedByAnotherWork`). `suspendDispatching` stops applying (`Dispatching` False).
//!
//! A cluster that is not Ready is not contacted: its Works say `ClusterUnreachable` and wait
//! for the Cluster to change, so one dead member never ties up the workers the others need.
//! The controller writes only the Work's status (conditions `Applied` and `Dispatching`, and
//! `manifestStatuses`, under `flotilla-execution`) and its finalizer; never a binding or a
//! template. Pull clusters' Works are left to their agent.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use flotilla_api::{
    Cluster, Work,
    cluster::ClusterSyncMode,
    conditions::{self, APPLIED, DISPATCHING},
    keys::{annotations, field_managers::EXECUTION, finalizers::EXECUTION_CONTROLLER},
    names,
    policy::ConflictResolution,
    work::{ManifestStatus, ResourceIdentifier},
};
use flotilla_propagation::interpreter;
use flotilla_runtime::{
    Context, Runner, Settings,
    cache::Cache,
    error::is_not_found,
    members::Members,
    status::{self, StatusWrite},
};
use flotilla_work::{
    ApplyError, Deleted, Member, WorkRef,
    kinds::gvk,
    member::{describe, reasons},
    prepare::{apply_order, identifier, managed_selector, work_of},
};
use k8s_openapi::{
    api::core::v1::Namespace, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    runtime::{
        controller::Action,
        finalizer::{self, Event as FinalizerEvent, finalizer},
        reflector::{ObjectRef, Store},
    },
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt as _, wrappers::UnboundedReceiverStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// The controller's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the Work's status failed.
    #[error("failed to write the status of Work {work}: {source}")]
    WriteWorkStatus {
        /// `namespace/name`.
        work: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The member could not be reached or refused a request; retried with backoff.
    #[error("cluster {cluster}: {message}")]
    Member {
        /// The cluster.
        cluster: String,
        /// What failed, in the member's words.
        message: String,
    },
    /// Adding the finalizer failed.
    #[error("failed to add the finalizer to Work {work}: {source}")]
    AddFinalizer {
        /// `namespace/name`.
        work: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Removing the finalizer failed.
    #[error("failed to remove the finalizer from Work {work}: {source}")]
    RemoveFinalizer {
        /// `namespace/name`.
        work: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The Work has no name.
    #[error("the Work {work} cannot be finalized")]
    Finalizer {
        /// `namespace/name`.
        work: String,
    },
    /// The platform failed (a cache was asked for too late).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::WriteWorkStatus { .. } => "WriteWorkStatus",
            Self::Member { .. } => "Member",
            Self::AddFinalizer { .. } => "AddFinalizer",
            Self::RemoveFinalizer { .. } => "RemoveFinalizer",
            Self::Finalizer { .. } => "Finalizer",
            Self::Platform(_) => "Platform",
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Self::WriteWorkStatus { source, .. } => flotilla_runtime::error::is_conflict(source),
            Self::AddFinalizer { source, .. } | Self::RemoveFinalizer { source, .. } => {
                flotilla_runtime::error::is_finalizer_race(source)
            }
            _ => false,
        }
    }
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Works reconciled at once.
    pub concurrency: u16,
    /// How often a Work in conflict with a member object is looked at again (the object in
    /// the way is not watched).
    pub conflict_recheck: Duration,
    /// How often the member watches no Work needs are stopped.
    pub watch_sweep: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 10,
            conflict_recheck: Duration::from_secs(30),
            watch_sweep: Duration::from_secs(10),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A member object: cluster, kind, namespace, name.
type MemberKey = (String, GroupVersionKind, String, String);

/// One member watch.
struct Watch {
    cache: Arc<Cache<DynamicObject>>,
    resource: ApiResource,
    fingerprint: String,
    stop: CancellationToken,
}

/// The member watches: one per (cluster, kind) in use, each waking the Works whose objects
/// changed, and which Work each watched member object belongs to.
struct Watches {
    stop: CancellationToken,
    wake: mpsc::UnboundedSender<ObjectRef<Work>>,
    watches: Mutex<HashMap<(String, GroupVersionKind), Watch>>,
    owners: Arc<Mutex<HashMap<MemberKey, ObjectRef<Work>>>>,
}

impl Watches {
    /// The watch of `kind` in `cluster`, started (or restarted, when the connection changed)
    /// through `client`.
    fn ensure(
        &self,
        cluster: &str,
        kind: &GroupVersionKind,
        resource: &ApiResource,
        client: &Client,
        fingerprint: &str,
    ) -> Arc<Cache<DynamicObject>> {
        let mut watches = lock(&self.watches);
        let key = (cluster.to_owned(), kind.clone());
        if let Some(watch) = watches.get(&key)
            && watch.fingerprint == fingerprint
            && watch.resource == *resource
        {
            return watch.cache.clone();
        }
        if let Some(old) = watches.remove(&key) {
            old.stop.cancel();
        }
        let cache = Cache::<DynamicObject>::selected(resource.clone(), Some(&managed_selector()));
        let stop = self.stop.child_token();
        if let Ok(changes) = cache.subscribe() {
            let wake = self.wake.clone();
            let owners = self.owners.clone();
            let mut gone = cache.gone();
            let (cluster_name, kind_key) = (cluster.to_owned(), kind.clone());
            let until = stop.clone();
            tokio::spawn(async move {
                let mut changes = changes;
                loop {
                    let work = tokio::select! {
                        () = until.cancelled() => return,
                        changed = changes.next() => match changed {
                            Some(object) => serde_json::to_value(object.as_ref())
                                .ok()
                                .and_then(|v| work_of(&v))
                                .map(|w| ObjectRef::new(&w.name).within(&w.namespace)),
                            None => return,
                        },
                        went = gone.recv() => match went {
                            Ok(object) => {
                                let key = (
                                    cluster_name.clone(),
                                    kind_key.clone(),
                                    object.namespace.clone().unwrap_or_default(),
                                    object.name.clone(),
                                );
                                lock(&owners).get(&key).cloned()
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        },
                    };
                    if let Some(work) = work {
                        let _ = wake.send(work);
                    }
                }
            });
        }
        cache.start(client.clone(), stop.clone());
        info!(cluster, kind = %kind.kind, api_version = %resource.api_version, "watching member objects");
        watches.insert(
            key,
            Watch {
                cache: cache.clone(),
                resource: resource.clone(),
                fingerprint: fingerprint.to_owned(),
                stop,
            },
        );
        cache
    }

    /// Stops the watches not in `needed`.
    fn retain(&self, needed: &HashSet<(String, GroupVersionKind)>) {
        let mut watches = lock(&self.watches);
        watches.retain(|key, watch| {
            let keep = needed.contains(key);
            if !keep {
                watch.stop.cancel();
                info!(cluster = %key.0, kind = %key.1.kind, "stopped watching member objects");
            }
            keep
        });
        lock(&self.owners)
            .retain(|(cluster, kind, ..), _| needed.contains(&(cluster.clone(), kind.clone())));
    }
}

/// Everything a pass reads.
struct State {
    client: Client,
    members: Arc<Members>,
    clusters: Store<Cluster>,
    works: Store<Work>,
    /// The hub's namespaces.
    namespaces: Store<Namespace>,
    watches: Watches,
    /// Per cluster: the connection fingerprint and the member built on it.
    connections: Mutex<HashMap<String, (String, Member)>>,
    options: Options,
}

/// `namespace/name` of a Work.
fn label(work: &Work) -> String {
    format!(
        "{}/{}",
        work.namespace().unwrap_or_default(),
        work.name_any()
    )
}

/// The conflict setting a manifest carries (the binding controller copies the policy's).
pub fn conflict_resolution(manifest: &Value) -> ConflictResolution {
    let setting = manifest
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::CONFLICT_RESOLUTION))
        .and_then(Value::as_str);
    if setting.is_some_and(|s| s.eq_ignore_ascii_case("overwrite")) {
        ConflictResolution::Overwrite
    } else {
        ConflictResolution::Abort
    }
}

/// Whether a Cluster reports Ready True.
fn is_ready(cluster: &Cluster) -> bool {
    cluster
        .ready_condition()
        .is_some_and(|c| c.status == conditions::TRUE)
}

fn is_push(cluster: &Cluster) -> bool {
    cluster.spec.sync_mode == ClusterSyncMode::Push
}

/// Whether two identifiers name the same member object.
fn same_object(a: &ResourceIdentifier, b: &ResourceIdentifier) -> bool {
    a.group == b.group && a.kind == b.kind && a.namespace == b.namespace && a.name == b.name
}

/// The `Applied` condition of a pass whose manifests had `failures` (`(object, error)`), out
/// of `total`, at `generation`.
pub fn applied_condition(
    failures: &[(String, ApplyError)],
    total: usize,
    generation: Option<i64>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let rank = |e: &ApplyError| match e {
        ApplyError::Unreachable(_) => 0,
        ApplyError::Invalid(_) => 1,
        ApplyError::Conflict(_) => 2,
        ApplyError::TakenByOther(_) => 3,
        ApplyError::NotServed(_) => 4,
        ApplyError::Refused(_) => 5,
    };
    let Some(worst) = failures.iter().map(|(_, e)| e).min_by_key(|e| rank(e)) else {
        return conditions::new(
            APPLIED,
            true,
            reasons::APPLIED_SUCCESSFULLY,
            format!("every manifest is applied ({total}/{total})"),
            generation,
        );
    };
    let details = failures
        .iter()
        .map(|(_, e)| e.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    conditions::new(
        APPLIED,
        false,
        worst.reason(),
        format!(
            "{} of {total} manifests not applied: {details}",
            failures.len()
        ),
        generation,
    )
}

impl State {
    /// The member of `cluster`, kept while its connection stays the same, the client its
    /// watches use, and the connection's fingerprint.
    async fn member(&self, cluster: &Cluster) -> Result<(Member, Client, String), String> {
        let (client, fingerprint) = self
            .members
            .connection(cluster)
            .await
            .map_err(|e| e.to_string())?;
        let (watch_client, _) = self
            .members
            .watch_connection(cluster)
            .await
            .map_err(|e| e.to_string())?;
        let name = cluster.name_any();
        let mut connections = lock(&self.connections);
        if let Some((known, member)) = connections.get(&name)
            && *known == fingerprint
        {
            return Ok((member.clone(), watch_client, fingerprint));
        }
        let member = Member::new(client);
        connections.insert(name, (fingerprint.clone(), member.clone()));
        Ok((member, watch_client, fingerprint))
    }

    /// Writes the Work's owned status when it changed.
    async fn write_status(
        &self,
        work: &Work,
        owned_conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        manifest_statuses: Option<Vec<ManifestStatus>>,
    ) -> Result<()> {
        let current = work.status.clone().unwrap_or_default();
        let mut next = current.conditions.clone();
        let now = Time(Timestamp::now());
        let mut changed = false;
        for condition in owned_conditions {
            changed |= conditions::set_condition(&mut next, condition, now.clone());
        }
        let statuses = manifest_statuses.unwrap_or_else(|| current.manifest_statuses.clone());
        changed |= statuses != current.manifest_statuses;
        if !changed {
            return Ok(());
        }
        let owned = json!({
            "conditions": status::owned(&next, &[APPLIED, DISPATCHING]),
            "manifestStatuses": statuses,
        });
        let api: Api<Work> =
            Api::namespaced(self.client.clone(), &work.namespace().unwrap_or_default());
        status::write(
            &api,
            work,
            StatusWrite {
                field_manager: EXECUTION,
                owned,
            },
        )
        .await
        .map_err(|source| Error::WriteWorkStatus {
            work: label(work),
            source,
        })?;
        Ok(())
    }
}

fn dispatching(
    on: bool,
    generation: Option<i64>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    if on {
        conditions::new(
            DISPATCHING,
            true,
            conditions::reasons::DISPATCHING,
            "the Work is applied to the member",
            generation,
        )
    } else {
        conditions::new(
            DISPATCHING,
            false,
            conditions::reasons::SUSPEND_DISPATCHING,
            "spec.suspendDispatching is set: the Work is not applied to the member",
            generation,
        )
    }
}

/// One pass over a live Work of a Push cluster.
async fn apply(work: &Work, cluster: &Cluster, state: &State) -> Result<Action> {
    let generation = work.metadata.generation;
    let cluster_name = cluster.name_any();
    if work.spec.suspend_dispatching == Some(true) {
        state
            .write_status(work, vec![dispatching(false, generation)], None)
            .await?;
        return Ok(Action::await_change());
    }
    if !is_ready(cluster) {
        let why = cluster
            .ready_condition()
            .map(|c| format!("{} ({})", c.reason, c.message))
            .unwrap_or_else(|| "it has not reported yet".to_owned());
        let condition = conditions::new(
            APPLIED,
            false,
            reasons::CLUSTER_UNREACHABLE,
            format!("cluster {cluster_name} is not Ready: {why}; the Work is applied once it is"),
            generation,
        );
        state
            .write_status(work, vec![condition, dispatching(true, generation)], None)
            .await?;
        return Ok(Action::await_change());
    }
    let (member, watch_client, fingerprint) = match state.member(cluster).await {
        Ok(member) => member,
        Err(message) => {
            let condition = conditions::new(
                APPLIED,
                false,
                reasons::CLUSTER_UNREACHABLE,
                format!("cluster {cluster_name}: {message}"),
                generation,
            );
            state
                .write_status(work, vec![condition, dispatching(true, generation)], None)
                .await?;
            return Err(Error::Member {
                cluster: cluster_name,
                message,
            });
        }
    };
    let owner = WorkRef {
        namespace: work.namespace().unwrap_or_default(),
        name: work.name_any(),
    };
    let work_ref = ObjectRef::from_obj(work);
    let manifests: Vec<Value> = work
        .spec
        .workload
        .manifests
        .iter()
        .map(|m| m.0.clone())
        .collect();
    let mut statuses: Vec<Option<ManifestStatus>> = vec![None; manifests.len()];
    let mut failures: Vec<(String, ApplyError)> = Vec::new();
    for index in apply_order(&manifests) {
        let manifest = &manifests[index];
        // The live object, from the member watch when it holds it.
        let mut live = None;
        let mut watched = None;
        if let Ok(mut id) = identifier(index, manifest)
            && let Ok(resolved) = member.resolve(&mut id).await
        {
            let kind = gvk(
                manifest["apiVersion"].as_str().unwrap_or_default(),
                &id.kind,
            );
            let cache = state.watches.ensure(
                &cluster_name,
                &kind,
                &resolved.resource,
                &watch_client,
                &fingerprint,
            );
            let key = ObjectRef::new_with(&id.name, resolved.resource.clone());
            let key = if id.namespace.is_empty() {
                key
            } else {
                key.within(&id.namespace)
            };
            live = cache
                .store()
                .get(&key)
                .and_then(|o| serde_json::to_value(o.as_ref()).ok());
            lock(&state.watches.owners).insert(
                (
                    cluster_name.clone(),
                    kind,
                    id.namespace.clone(),
                    id.name.clone(),
                ),
                work_ref.clone(),
            );
            watched = Some(());
        }
        // A namespace being deleted on the hub is not created in the member again: its own Work
        // is going, and a namespaced Work applied meanwhile must not bring it back.
        let namespace = manifest
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let create_namespace = state
            .namespaces
            .get(&ObjectRef::new(namespace))
            .is_none_or(|ns| ns.metadata.deletion_timestamp.is_none());
        let outcome = member
            .apply(
                &owner,
                index,
                manifest,
                conflict_resolution(manifest),
                live,
                create_namespace,
            )
            .await;
        let what = outcome
            .identifier
            .as_ref()
            .map_or_else(|| format!("manifest {index}"), describe);
        match outcome.result {
            Ok((applied, object)) => {
                if applied != flotilla_work::Applied::Unchanged {
                    info!(cluster = %cluster_name, object = %what, ?applied, "applied to the member");
                }
                if let Some(identifier) = outcome.identifier {
                    statuses[index] = Some(ManifestStatus {
                        identifier,
                        status: interpreter::reflect_status(&object),
                        health: Some(interpreter::health(&object)),
                    });
                }
            }
            Err(error) => {
                if watched.is_none() || error.is_transient() {
                    debug!(cluster = %cluster_name, object = %what, %error, "not applied");
                } else {
                    warn!(cluster = %cluster_name, object = %what, %error, "not applied");
                }
                if let Some(identifier) = outcome.identifier {
                    statuses[index] = Some(ManifestStatus {
                        identifier,
                        status: None,
                        health: None,
                    });
                }
                failures.push((what, error));
            }
        }
    }
    let statuses: Vec<ManifestStatus> = statuses.into_iter().flatten().collect();

    // Objects this Work applied before and no longer declares.
    let previous = work
        .status
        .as_ref()
        .map(|s| s.manifest_statuses.clone())
        .unwrap_or_default();
    for old in previous {
        if statuses
            .iter()
            .any(|s| same_object(&s.identifier, &old.identifier))
        {
            continue;
        }
        match member.delete(&owner, &old.identifier).await {
            Ok(Deleted::Deleted) => {
                info!(cluster = %cluster_name, object = %describe(&old.identifier), "pruned: the Work no longer declares it");
            }
            Ok(_) => {}
            Err(error) => failures.push((describe(&old.identifier), error)),
        }
    }

    let condition = applied_condition(&failures, manifests.len(), generation);
    state
        .write_status(
            work,
            vec![condition, dispatching(true, generation)],
            Some(statuses),
        )
        .await?;
    if let Some((_, error)) = failures.iter().find(|(_, e)| e.is_transient()) {
        return Err(Error::Member {
            cluster: cluster_name,
            message: error.to_string(),
        });
    }
    if failures.is_empty() {
        Ok(Action::await_change())
    } else {
        Ok(Action::requeue(state.options.conflict_recheck))
    }
}

/// The Work is being deleted: its member objects go (or, with `preserveResourcesOnDeletion`,
/// are left to the member). A Cluster that no longer exists has nothing left to clean.
async fn cleanup(work: &Work, cluster: Option<&Cluster>, state: &State) -> Result<Action> {
    let Some(cluster) = cluster.filter(|c| is_push(c)) else {
        return Ok(Action::await_change());
    };
    let cluster_name = cluster.name_any();
    if cluster.metadata.deletion_timestamp.is_some() && !is_ready(cluster) {
        // The cluster is leaving and cannot be reached: its objects stay, as in Karmada, so an
        // unjoin never hangs on a dead member.
        info!(cluster = %cluster_name, work = %label(work), "the leaving cluster is not Ready; its objects are left in place");
        return Ok(Action::await_change());
    }
    let (member, ..) = state
        .member(cluster)
        .await
        .map_err(|message| Error::Member {
            cluster: cluster_name.clone(),
            message,
        })?;
    let owner = WorkRef {
        namespace: work.namespace().unwrap_or_default(),
        name: work.name_any(),
    };
    let mut identifiers: Vec<ResourceIdentifier> = work
        .spec
        .workload
        .manifests
        .iter()
        .enumerate()
        .filter_map(|(i, m)| identifier(i, &m.0).ok())
        .collect();
    for status in work.status.iter().flat_map(|s| &s.manifest_statuses) {
        if !identifiers
            .iter()
            .any(|i| same_object(i, &status.identifier))
        {
            identifiers.push(status.identifier.clone());
        }
    }
    // A Cluster leaving with its objects retained (`flotilla unjoin` without
    // `--delete-member-objects`) keeps them, whatever the Work says.
    let retained = cluster.metadata.deletion_timestamp.is_some()
        && cluster
            .annotations()
            .get(annotations::RETAIN_MEMBER_OBJECTS)
            .is_some_and(|v| v == "true");
    let preserve = retained || work.spec.preserve_resources_on_deletion == Some(true);
    for id in &identifiers {
        let result = if preserve {
            member.release(&owner, id).await
        } else {
            member.delete(&owner, id).await
        };
        if let Err(error) = result {
            return Err(Error::Member {
                cluster: cluster_name,
                message: error.to_string(),
            });
        }
    }
    Ok(Action::await_change())
}

async fn reconcile(work: Arc<Work>, state: Arc<State>) -> Result<Action> {
    let namespace = work.namespace().unwrap_or_default();
    let Some(cluster_name) = names::cluster_of_execution_namespace(&namespace) else {
        return Ok(Action::await_change());
    };
    let cluster = state.clusters.get(&ObjectRef::new(cluster_name));
    let deleting = work.metadata.deletion_timestamp.is_some();
    let ours = work.finalizers().iter().any(|f| f == EXECUTION_CONTROLLER);
    let push = cluster.as_deref().is_some_and(is_push);
    // Works of Pull clusters (and of clusters not registered) are not this controller's, unless
    // it already holds their finalizer.
    if !(push || (deleting && ours)) {
        return Ok(Action::await_change());
    }
    let api: Api<Work> = Api::namespaced(state.client.clone(), &namespace);
    let name = label(&work);
    let result = finalizer(&api, EXECUTION_CONTROLLER, work, |event| async {
        match event {
            FinalizerEvent::Apply(work) => match &cluster {
                Some(cluster) => apply(&work, cluster, &state).await,
                None => Ok(Action::await_change()),
            },
            FinalizerEvent::Cleanup(work) => cleanup(&work, cluster.as_deref(), &state).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(error) | finalizer::Error::CleanupFailed(error)) => {
            Err(error)
        }
        Err(finalizer::Error::AddFinalizer(source)) if is_not_found(&source) => {
            Ok(Action::await_change())
        }
        Err(finalizer::Error::AddFinalizer(source)) => {
            Err(Error::AddFinalizer { work: name, source })
        }
        Err(finalizer::Error::RemoveFinalizer(source)) if is_not_found(&source) => {
            Ok(Action::await_change())
        }
        Err(finalizer::Error::RemoveFinalizer(source)) => {
            Err(Error::RemoveFinalizer { work: name, source })
        }
        Err(finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer) => {
            Err(Error::Finalizer { work: name })
        }
    }
}

/// The (cluster, kind) pairs the Works of Push clusters need watched.
fn needed_watches(
    works: &Store<Work>,
    clusters: &Store<Cluster>,
) -> HashSet<(String, GroupVersionKind)> {
    let mut needed = HashSet::new();
    for work in works.state() {
        let namespace = work.namespace().unwrap_or_default();
        let Some(cluster) = names::cluster_of_execution_namespace(&namespace) else {
            continue;
        };
        if !clusters
            .get(&ObjectRef::new(cluster))
            .is_some_and(|c| is_push(&c))
        {
            continue;
        }
        for manifest in &work.spec.workload.manifests {
            let (Some(api_version), Some(kind)) = (
                manifest.0.get("apiVersion").and_then(Value::as_str),
                manifest.0.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            needed.insert((cluster.to_owned(), gvk(api_version, kind)));
        }
    }
    needed
}

/// What of a Cluster makes its Works worth another look: readiness, mode, connection,
/// deletion.
fn cluster_projection(cluster: &Cluster) -> u64 {
    let mut hasher = DefaultHasher::new();
    is_ready(cluster).hash(&mut hasher);
    is_push(cluster).hash(&mut hasher);
    cluster.spec.api_endpoint.hash(&mut hasher);
    serde_json::to_string(&cluster.spec.secret_ref)
        .unwrap_or_default()
        .hash(&mut hasher);
    cluster.metadata.uid.hash(&mut hasher);
    hasher.finish()
}

/// Builds the controller: the `execution` runner over the shared Work cache, woken by Work
/// changes, by member objects changing in the member watches, and by a Cluster's readiness or
/// connection changing; and the sweep that stops member watches no Work needs.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let caches = ctx.caches();
    let clusters = caches.get::<Cluster>()?;
    let namespaces = caches.get::<Namespace>()?.store();
    let (wake, woken) = mpsc::unbounded_channel();
    let runner = Runner::<Work>::new(ctx, "execution", Settings::new(options.concurrency))?
        .trigger_when_changed(|work: &Work| {
            (
                serde_json::to_string(&work.spec).unwrap_or_default(),
                work.finalizers().to_vec(),
                work.metadata.deletion_timestamp.is_some(),
            )
        });
    let works = runner.store();
    let seen: Mutex<HashMap<String, u64>> = Mutex::default();
    let store = works.clone();
    let runner = runner
        .watches(move |cluster: Arc<Cluster>| {
            let projection = cluster_projection(&cluster);
            let name = cluster.name_any();
            if lock(&seen).insert(name.clone(), projection) == Some(projection) {
                return Vec::new();
            }
            let Ok(namespace) = names::execution_namespace(&name) else {
                return Vec::new();
            };
            store
                .state()
                .iter()
                .filter(|w| w.namespace().as_deref() == Some(namespace.as_str()))
                .map(|w| ObjectRef::from_obj(w.as_ref()))
                .collect::<Vec<_>>()
        })?
        .reconcile_on(UnboundedReceiverStream::new(woken));
    let state = Arc::new(State {
        client: ctx.client().clone(),
        members: ctx.members()?,
        clusters: clusters.store(),
        works: works.clone(),
        namespaces,
        watches: Watches {
            stop: ctx.stop().clone(),
            wake,
            watches: Mutex::default(),
            owners: Arc::default(),
        },
        connections: Mutex::default(),
        options: options.clone(),
    });
    let sweep = {
        let state = state.clone();
        let stop = ctx.stop().clone();
        async move {
            let mut tick = tokio::time::interval(state.options.watch_sweep);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let needed = needed_watches(&state.works, &state.clusters);
                state.watches.retain(&needed);
            }
        }
    };
    info!("starting the execution controller");
    let run = runner.run(reconcile, state);
    Ok(async move {
        futures::future::join(run, sweep).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflict_setting_comes_from_the_manifest() {
        let with =
            |v: &str| json!({"metadata": {"annotations": {annotations::CONFLICT_RESOLUTION: v}}});
        assert_eq!(
            conflict_resolution(&with("overwrite")),
            ConflictResolution::Overwrite
        );
        assert_eq!(
            conflict_resolution(&with("Overwrite")),
            ConflictResolution::Overwrite
        );
        assert_eq!(
            conflict_resolution(&with("abort")),
            ConflictResolution::Abort
        );
        assert_eq!(conflict_resolution(&json!({})), ConflictResolution::Abort);
    }

    #[test]
    fn the_applied_condition_names_every_failure_and_the_worst_reason() {
        let ok = applied_condition(&[], 2, Some(3));
        assert_eq!(
            (
                ok.status.as_str(),
                ok.reason.as_str(),
                ok.observed_generation
            ),
            ("True", "AppliedSuccessfully", Some(3))
        );
        let failures = vec![
            (
                "a".to_owned(),
                ApplyError::Conflict("ConfigMap default/a is in the way".to_owned()),
            ),
            (
                "b".to_owned(),
                ApplyError::Invalid(
                    "Deployment default/b: the member answered 422: bad".to_owned(),
                ),
            ),
        ];
        let bad = applied_condition(&failures, 3, None);
        assert_eq!(
            (bad.status.as_str(), bad.reason.as_str()),
            ("False", "InvalidManifest")
        );
        assert!(
            bad.message.starts_with("2 of 3 manifests not applied"),
            "{}",
            bad.message
        );
        assert!(
            bad.message.contains("in the way") && bad.message.contains("422: bad"),
            "{}",
            bad.message
        );
    }
}
