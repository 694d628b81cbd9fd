//! The cluster controller (Karmada's `cluster` controller: health monitor and taints). Every
//! monitor period it checks each Cluster's heartbeat Lease: when nothing has renewed it for
//! the grace period — the reporter is gone (the cluster-status controller for Push, the agent
//! for Pull) — it sets `Ready=Unknown` (`ClusterStatusUnknown`; `ClusterStatusNeverUpdated`
//! when no status was ever posted), the only condition it writes (field manager
//! `flotilla-cluster`). It keeps the `cluster.flotilla.io/not-ready` and
//! `cluster.flotilla.io/unreachable` `NoSchedule` taints in step with `Ready`, so the
//! scheduler keeps new placements off unhealthy members; it writes `spec.taints` only when
//! [`taints::desired_taints`] asks for a change, and never adds, edits or removes a taint it
//! does not own.

pub mod taints;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use flotilla_api::{
    Cluster, Work,
    cluster::ClusterStatus,
    conditions::{self, READY},
    keys::{field_managers::CLUSTER, finalizers::CLUSTER_CONTROLLER},
    names,
};
use flotilla_runtime::{
    Context, Runner, Settings,
    cache::PerObject,
    error::is_not_found,
    status::{self, StatusWrite},
};
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Namespace, Taint},
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{
        controller::Action,
        finalizer::{self, Event as FinalizerEvent, finalizer},
        reflector::{ObjectRef, Store},
    },
};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::{
    error::{Error, Result},
    heartbeat::{self, Heartbeat},
};

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often each Cluster's heartbeat is checked (Karmada's `--cluster-monitor-period`).
    pub monitor_period: Duration,
    /// How long a heartbeat may stay silent before Ready turns Unknown
    /// (`--cluster-monitor-grace-period`).
    pub grace_period: Duration,
    /// The same, for a Cluster whose status was never posted (`--cluster-startup-grace-period`).
    pub startup_grace_period: Duration,
    /// How many Clusters are reconciled at once.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(40),
            startup_grace_period: Duration::from_secs(60),
            concurrency: 5,
        }
    }
}

/// The controller's own state beside the shared context.
struct State {
    hub: Client,
    options: Options,
    leases: Store<Lease>,
    namespaces: Store<Namespace>,
    /// Per cluster: its heartbeat as last seen.
    heartbeats: PerObject<Cluster, Heartbeat>,
}

impl State {
    /// How long `cluster`'s heartbeat has been silent, as seen by this process.
    fn silence(&self, cluster: &str) -> Duration {
        let renewed = self
            .leases
            .get(&heartbeat::lease_ref(cluster))
            .and_then(|lease| lease.spec.as_ref()?.renew_time.clone());
        let now = Instant::now();
        self.heartbeats
            .lock()
            .entry(ObjectRef::new(cluster))
            .or_insert_with(|| Heartbeat::new(renewed.clone(), now))
            .observe(renewed, now)
    }

    fn forget(&self, cluster: &str) {
        self.heartbeats.lock().remove(&ObjectRef::new(cluster));
    }
}

/// One pass, behind the finalizer `flotilla.io/cluster-controller`: a live Cluster gets its
/// execution namespace and its health monitored; a leaving one loses its Works (the execution
/// controller deletes their member objects while the member is Ready) and then the namespace.
async fn reconcile(cluster: Arc<Cluster>, state: Arc<State>) -> Result<Action> {
    let name = cluster.name_any();
    let api: Api<Cluster> = Api::all(state.hub.clone());
    let result = finalizer(&api, CLUSTER_CONTROLLER, cluster, |event| async {
        match event {
            FinalizerEvent::Apply(cluster) => monitor(cluster, &state).await,
            FinalizerEvent::Cleanup(cluster) => leave(&cluster, &state).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(error) | finalizer::Error::CleanupFailed(error)) => {
            Err(error)
        }
        Err(finalizer::Error::AddFinalizer(source) | finalizer::Error::RemoveFinalizer(source))
            if is_not_found(&source) =>
        {
            Ok(Action::await_change())
        }
        Err(finalizer::Error::AddFinalizer(source) | finalizer::Error::RemoveFinalizer(source)) => {
            Err(Error::ClusterFinalizer {
                cluster: name,
                source,
            })
        }
        Err(finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer) => {
            Ok(Action::await_change())
        }
    }
}

/// Creates the Cluster's execution namespace `flotilla-es-<cluster>` unless it exists.
async fn ensure_execution_namespace(state: &State, cluster: &str) -> Result<()> {
    let Ok(namespace) = names::execution_namespace(cluster) else {
        return Ok(());
    };
    if state.namespaces.get(&ObjectRef::new(&namespace)).is_some() {
        return Ok(());
    }
    let api: Api<Namespace> = Api::all(state.hub.clone());
    let object: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace},
    }))
    .map_err(|e| Error::CreateNamespace {
        namespace: namespace.clone(),
        source: kube::Error::SerdeError(e),
    })?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => {
            info!(%namespace, "created the cluster's execution namespace");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(Error::CreateNamespace { namespace, source }),
    }
}

/// The Cluster is leaving: its Works are deleted (and waited for), then its execution
/// namespace.
async fn leave(cluster: &Cluster, state: &State) -> Result<Action> {
    let name = cluster.name_any();
    state.forget(&name);
    let Ok(namespace) = names::execution_namespace(&name) else {
        return Ok(Action::await_change());
    };
    let failed = |source| Error::CleanupCluster {
        cluster: name.clone(),
        source,
    };
    let works: Api<Work> = Api::namespaced(state.hub.clone(), &namespace);
    let left = works.list(&ListParams::default()).await.map_err(failed)?;
    if !left.items.is_empty() {
        for work in &left.items {
            if work.meta().deletion_timestamp.is_none() {
                match works
                    .delete(&work.name_any(), &DeleteParams::default())
                    .await
                {
                    Ok(_) | Err(kube::Error::Api(_)) => {}
                    Err(source) => return Err(failed(source)),
                }
            }
        }
        return Err(Error::WorksRemain {
            cluster: name,
            namespace,
            works: left.items.len(),
        });
    }
    let namespaces: Api<Namespace> = Api::all(state.hub.clone());
    match namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
    {
        Ok(_) => info!(%namespace, "deleted the execution namespace of the leaving cluster"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(source) => return Err(failed(source)),
    }
    Ok(Action::await_change())
}

async fn monitor(cluster: Arc<Cluster>, state: &State) -> Result<Action> {
    let name = cluster.name_any();
    ensure_execution_namespace(state, &name).await?;
    let silent = state.silence(&name);
    let current = cluster.status.clone().unwrap_or_default();
    let mut ready = cluster.ready_condition().cloned();
    let mut cluster = cluster;
    if let Some(unknown) = heartbeat::stale_ready(
        ready.as_ref(),
        silent,
        state.options.grace_period,
        state.options.startup_grace_period,
        Time(Timestamp::now()),
    ) {
        // The taints below are written on the object as this write left it.
        cluster = Arc::new(write_unknown(state, &cluster, &current, unknown.clone()).await?);
        warn!(silent_for = ?silent, reason = %unknown.reason, "nothing reports this cluster's status; Ready is Unknown");
        ready = Some(unknown);
    }
    if let Some(next) =
        taints::desired_taints(&cluster.spec.taints, ready.as_ref(), Time(Timestamp::now()))
    {
        write_taints(&state.hub, &cluster, &next).await?;
        let keys: Vec<String> = next
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        info!(
            ready = ready.as_ref().map(|c| c.status.as_str()).unwrap_or_default(),
            taints = ?keys,
            "updated the cluster's health taints"
        );
    }
    Ok(Action::requeue(state.options.monitor_period))
}

/// Writes `Ready=Unknown`, the one condition this controller owns.
async fn write_unknown(
    state: &State,
    cluster: &Cluster,
    current: &ClusterStatus,
    unknown: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition,
) -> Result<Cluster> {
    let failed = |source| Error::WriteClusterStatus {
        cluster: cluster.name_any(),
        source,
    };
    let mut next = current.clone();
    next.conditions = conditions::merge_owned(
        &current.conditions,
        std::slice::from_ref(&unknown),
        unknown.last_transition_time.clone(),
    );
    let write = StatusWrite {
        field_manager: CLUSTER,
        owned: json!({"conditions": status::owned(&next.conditions, &[READY])}),
    };
    let api: Api<Cluster> = Api::all(state.hub.clone());
    status::write(&api, cluster, write).await.map_err(failed)
}

/// Writes `spec.taints` with a JSON merge patch guarded by the resourceVersion the decision was
/// made on, so a concurrent edit (a user adding a taint) is never overwritten: the write fails
/// with a conflict and the next pass decides again on the new object. Not server-side apply:
/// `taints` is an atomic list, so applying it would make this controller own (and, forced,
/// overwrite) the users' taints too.
async fn write_taints(hub: &Client, cluster: &Cluster, taints: &[Taint]) -> Result<()> {
    let name = cluster.name_any();
    let failed = |source| Error::WriteTaints {
        cluster: name.clone(),
        source,
    };
    let value = if taints.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(taints).map_err(|e| failed(kube::Error::SerdeError(e)))?
    };
    let patch = json!({
        "metadata": {"resourceVersion": cluster.resource_version()},
        "spec": {"taints": value},
    });
    let params = PatchParams {
        field_manager: Some(CLUSTER.to_owned()),
        ..Default::default()
    };
    let api: Api<Cluster> = Api::all(hub.clone());
    api.patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(failed)?;
    Ok(())
}

/// Builds the controller: one `cluster` runner over the shared Cluster cache, woken by every
/// Cluster change, by heartbeat Leases, and on its monitor period.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let leases = ctx.caches().get::<Lease>()?.store();
    let heartbeats = PerObject::new(&*ctx.caches().get::<Cluster>()?);
    let runner = Runner::<Cluster>::new(
        ctx,
        "cluster",
        Settings {
            backoff_base: Duration::from_millis(200),
            ..Settings::new(options.concurrency)
        },
    )?
    .watches(|lease: Arc<Lease>| {
        heartbeat::cluster_of_lease(&lease).map(|cluster| ObjectRef::<Cluster>::new(&cluster))
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        options,
        leases,
        namespaces: ctx.caches().get::<Namespace>()?.store(),
        heartbeats,
    });
    info!(grace_period = ?state.options.grace_period, "starting the cluster controller");
    Ok(runner.run(reconcile, state))
}
