//! The Machine controller (Cluster API's, provider-agnostic): drives a Machine by conditions.
//! It reports `BootstrapConfigReady`, finds the Node whose `spec.providerID` is the machine's
//! (set by the provider with `InfrastructureReady`, which this controller only reads) in the
//! machine's cluster, sets `status.nodeRef`, mirrors the node's health into `NodeHealthy` and
//! sums them up in `Ready`; the phase is display only (field manager `flotilla-provisioning`).
//! On deletion, behind the `provisioning.flotilla.io/machine-controller` finalizer, it cordons
//! and drains the node (evicting every pod but DaemonSet and mirror pods, honouring
//! PodDisruptionBudgets, for at most `nodeDrainTimeoutSeconds`), deletes the Node (waiting at
//! most `nodeDeletionTimeoutSeconds`, 10 by default), and then lets go, so the provider (which
//! waits for this finalizer to leave) releases the machine. Both node steps are skipped when
//! the machine's cluster is itself going. A machine or cluster annotated
//! `cluster.flotilla.io/paused` is left alone.

pub mod lifecycle;

use std::{future::Future, sync::Arc, time::Duration};

use flotilla_api::{
    Cluster,
    conditions::{self, BOOTSTRAP_CONFIG_READY, NODE_HEALTHY, READY},
    keys::{annotations, field_managers::PROVISIONING, finalizers::MACHINE_CONTROLLER},
    provisioning::{Machine, MachineNodeReference},
};
use flotilla_runtime::{
    Context, Runner, Settings,
    error::is_not_found,
    members::Members,
    status::{self, StatusWrite},
};
use k8s_openapi::{
    api::core::v1::{Node, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams},
    runtime::{
        controller::Action,
        finalizer::{self, Event as FinalizerEvent, finalizer},
        reflector::{ObjectRef, Store},
    },
};
use serde_json::json;
use tracing::info;

use crate::error::{Error, Result};
use lifecycle::NodeSeen;

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many Machines are reconciled at once.
    pub concurrency: u16,
    /// How often a machine's node is looked at when nothing changes on the hub.
    pub resync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 8,
            resync: Duration::from_secs(10),
        }
    }
}

/// How long one eviction may take before the pass moves on.
const EVICTION_WAIT: Duration = Duration::from_secs(2);

struct State {
    hub: Client,
    clusters: Store<Cluster>,
    members: Arc<Members>,
    resync: Duration,
}

fn paused(meta_annotations: &std::collections::BTreeMap<String, String>) -> bool {
    meta_annotations.contains_key(annotations::PAUSED)
}

async fn reconcile(machine: Arc<Machine>, state: Arc<State>) -> Result<Action> {
    let cluster = state
        .clusters
        .get(&ObjectRef::new(&machine.spec.cluster_name));
    if paused(machine.annotations()) || cluster.as_deref().is_some_and(|c| paused(c.annotations()))
    {
        return Ok(Action::await_change());
    }
    let name = machine.name_any();
    let api: Api<Machine> =
        Api::namespaced(state.hub.clone(), &machine.namespace().unwrap_or_default());
    let result = finalizer(&api, MACHINE_CONTROLLER, machine, |event| async {
        match event {
            FinalizerEvent::Apply(machine) => observe(&machine, cluster.as_deref(), &state).await,
            FinalizerEvent::Cleanup(machine) => release(&machine, cluster.as_deref(), &state).await,
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
            Err(Error::MachineFinalizer {
                machine: name,
                source,
            })
        }
        Err(finalizer::Error::UnnamedObject | finalizer::Error::InvalidFinalizer) => {
            Ok(Action::await_change())
        }
    }
}

/// The member client of the machine's cluster, or why there is none.
async fn member(
    state: &State,
    cluster: Option<&Cluster>,
    machine: &Machine,
) -> std::result::Result<Client, String> {
    let Some(cluster) = cluster else {
        return Err(format!(
            "Cluster {} is not registered on the hub",
            machine.spec.cluster_name
        ));
    };
    state
        .members
        .client(cluster)
        .await
        .map_err(|e| crate::error::chain(&e))
}

/// The Node with `provider_id` in the member.
async fn find_node(client: &Client, provider_id: &str) -> kube::Result<Option<Node>> {
    let nodes: Api<Node> = Api::all(client.clone());
    Ok(nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id)))
}

async fn observe(machine: &Machine, cluster: Option<&Cluster>, state: &State) -> Result<Action> {
    let current = machine.status.clone().unwrap_or_default();
    let had_node = current.node_ref.is_some();
    let node = match machine.spec.provider_id.as_deref() {
        None => Ok(None),
        Some(provider_id) => match member(state, cluster, machine).await {
            Err(message) => Err(message),
            Ok(client) => find_node(&client, provider_id).await.map_err(|e| {
                format!(
                    "listing Nodes in cluster {}: {e}",
                    machine.spec.cluster_name
                )
            }),
        },
    };
    let seen = match (&machine.spec.provider_id, &node) {
        (None, _) => NodeSeen::NotLookedFor,
        (Some(_), Err(message)) => NodeSeen::Unreachable(message.clone()),
        (Some(_), Ok(None)) => NodeSeen::Missing,
        (Some(_), Ok(Some(n))) => NodeSeen::Found(n),
    };
    let bootstrap = lifecycle::bootstrap(machine);
    let healthy = lifecycle::node_healthy(machine, &seen, had_node);
    let ready = lifecycle::ready(machine, &bootstrap, &healthy);
    // An unreachable cluster keeps the node reference it had.
    let node_ref = match &seen {
        NodeSeen::Found(n) => Some(MachineNodeReference { name: n.name_any() }),
        NodeSeen::Unreachable(_) => current.node_ref.clone(),
        _ => None,
    };
    let phase = lifecycle::phase(machine, &bootstrap, node_ref.is_some());
    let mut next = current.conditions.clone();
    let now = Time(Timestamp::now());
    let mut changed = false;
    for c in [bootstrap.clone(), healthy, ready] {
        changed |= conditions::set_condition(&mut next, c, now.clone());
    }
    changed |= current.node_ref != node_ref
        || current.phase.as_deref() != Some(phase)
        || current.observed_generation != machine.metadata.generation;
    if changed {
        let owned = json!({
            "phase": phase,
            "nodeRef": node_ref,
            "initialization": {"bootstrapDataSecretCreated": bootstrap.status == conditions::TRUE},
            "conditions": status::owned(&next, &[BOOTSTRAP_CONFIG_READY, NODE_HEALTHY, READY]),
            "observedGeneration": machine.metadata.generation,
            "lastUpdated": if current.phase.as_deref() == Some(phase) {
                current.last_updated.clone()
            } else {
                Some(now)
            },
        });
        let api: Api<Machine> =
            Api::namespaced(state.hub.clone(), &machine.namespace().unwrap_or_default());
        status::write(
            &api,
            machine,
            StatusWrite {
                field_manager: PROVISIONING,
                owned,
            },
        )
        .await
        .map_err(|source| Error::WriteMachineStatus {
            machine: machine.name_any(),
            source,
        })?;
        if current.phase.as_deref() != Some(phase) {
            info!(machine = %machine.name_any(), %phase, "machine phase changed");
        }
    }
    Ok(Action::requeue(state.resync))
}

/// How long the machine has been deleted for.
fn deleted_for(machine: &Machine) -> Duration {
    machine
        .meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| {
            let secs = Timestamp::now().as_second() - t.0.as_second();
            Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        })
        .unwrap_or_default()
}

/// The deletion: cordon, drain and delete the node, unless the whole cluster is going.
async fn release(machine: &Machine, cluster: Option<&Cluster>, state: &State) -> Result<Action> {
    let name = machine.name_any();
    let cluster_going = cluster.is_none_or(|c| c.meta().deletion_timestamp.is_some());
    let Some(node_ref) = machine.status.as_ref().and_then(|s| s.node_ref.clone()) else {
        return Ok(Action::await_change());
    };
    if cluster_going {
        info!(machine = %name, "the machine's cluster is going: its node is left to it");
        return Ok(Action::await_change());
    }
    let client = match member(state, cluster, machine).await {
        Ok(client) => client,
        // A cluster that cannot be reached keeps the machine while the drain timeout allows.
        Err(message) => {
            return drain_deadline(machine, &name, &node_ref.name, message);
        }
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let failed = |source| Error::DrainNode {
        machine: name.clone(),
        node: node_ref.name.clone(),
        source,
    };
    let node = match nodes.get_opt(&node_ref.name).await {
        Ok(node) => node,
        // Not an answer from the member: it cannot be reached.
        Err(error) if !matches!(error, kube::Error::Api(_)) => {
            return drain_deadline(machine, &name, &node_ref.name, error.to_string());
        }
        Err(error) => return Err(failed(error)),
    };
    let Some(node) = node else {
        return Ok(Action::await_change());
    };
    if node.spec.as_ref().and_then(|s| s.unschedulable) != Some(true) {
        nodes
            .patch(
                &node_ref.name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"unschedulable": true}})),
            )
            .await
            .map_err(failed)?;
        info!(machine = %name, node = %node_ref.name, "cordoned the machine's node");
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node: Vec<Pod> = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={}", node_ref.name)))
        .await
        .map_err(failed)?
        .items
        .into_iter()
        .filter(lifecycle::evictable)
        .collect();
    if !on_node.is_empty() {
        // All at once, each given a moment: a budget's 429 is retried by the client (it says
        // when to come back), which must not hold the pass; the next pass asks again.
        let evictions = on_node.iter().map(|pod| {
            let api: Api<Pod> =
                Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
            let pod = pod.name_any();
            async move {
                tokio::time::timeout(EVICTION_WAIT, async {
                    api.evict(&pod, &EvictParams::default()).await
                })
                .await
            }
        });
        for result in futures::future::join_all(evictions).await {
            match result {
                Ok(Ok(_)) | Err(_) => {}
                // A disruption budget says not now, or the pod is already gone.
                Ok(Err(kube::Error::Api(s))) if s.code == 429 || s.code == 404 => {}
                Ok(Err(source)) => return Err(failed(source)),
            }
        }
        let timeout = machine
            .spec
            .node_drain_timeout_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs);
        if timeout.is_none_or(|t| deleted_for(machine) < t) {
            return Err(Error::NodeDraining {
                machine: name,
                node: node_ref.name,
                pods: on_node.len(),
            });
        }
        info!(machine = %name, node = %node_ref.name, pods = on_node.len(), "drain timed out; deleting the node anyway");
    }
    match nodes.delete(&node_ref.name, &DeleteParams::default()).await {
        Ok(_) => info!(machine = %name, node = %node_ref.name, "deleted the machine's node"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(source) => return Err(failed(source)),
    }
    Ok(Action::await_change())
}

/// While the node deletion timeout (10 s by default) has not passed since the machine was
/// deleted, an unreachable cluster holds the machine; after it, the machine goes.
fn drain_deadline(machine: &Machine, name: &str, node: &str, message: String) -> Result<Action> {
    let timeout = Duration::from_secs(
        machine
            .spec
            .node_deletion_timeout_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(10),
    );
    if deleted_for(machine) < timeout {
        return Err(Error::ClusterUnreachableForMachine {
            machine: name.to_owned(),
            node: node.to_owned(),
            message,
        });
    }
    info!(machine = %name, %node, "the machine's cluster stayed unreachable; letting the machine go");
    Ok(Action::await_change())
}

/// Builds the controller: one `machine` runner over the shared Machine cache, woken by Machine
/// changes, by changes of their Cluster, and on its resync period (nodes are in the members).
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let machines = ctx.caches().get::<Machine>()?.store();
    let runner = Runner::<Machine>::new(
        ctx,
        "machine",
        Settings {
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            ..Settings::new(options.concurrency)
        },
    )?
    .watches(move |cluster: Arc<Cluster>| {
        let name = cluster.name_any();
        machines
            .state()
            .iter()
            .filter(|m| m.spec.cluster_name == name)
            .map(|m| ObjectRef::from_obj(&**m))
            .collect::<Vec<_>>()
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        clusters: ctx.caches().get::<Cluster>()?.store(),
        members: ctx.members()?,
        resync: options.resync,
    });
    info!("starting the machine controller");
    Ok(runner.run(reconcile, state))
}
