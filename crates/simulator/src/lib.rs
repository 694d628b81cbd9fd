//! The member simulator: makes a member cluster that has no kubelet (and, on the embedded API
//! server, no kube-controller-manager) look like a small real cluster, talking to the member
//! only through a `kube::Client`, so it drives a real kube-apiserver just as well. Modelled on
//! kwok (Nodes with Lease heartbeats, pods bound and Running without a kubelet) and on Cluster
//! API's in-memory provider (startup delays with jitter, as per-object deadlines).
//!
//! - `nodes`: the simulated Nodes (capacity, Ready, node info, addresses), their Leases in
//!   `kube-node-lease` renewed every [`Options::heartbeat`], and the Ready condition's
//!   heartbeat every [`Options::node_status_period`].
//! - `kubelet`: the scheduler and kubelet, always on: binds unbound pods to a node with room
//!   (`pods/binding`), keeps the rest Pending with kube-scheduler's `Unschedulable` message, runs
//!   bound pods (Pending, then Running and Ready after [`Options::startup_delay`] plus jitter;
//!   pods that do not restart `Always` Succeed after [`Options::completion_delay`]) and
//!   finishes deleting pods on its nodes.
//! - `workloads`: only with [`Options::workload_controllers`]: kube-controller-manager's
//!   Deployment (through ReplicaSets), ReplicaSet, StatefulSet, DaemonSet and Job controllers
//!   with the status they write, and the garbage collection of their children.
//! - `schedule`: the scheduler's book (pure); `names`: every generated name (pure);
//!   `tracker`: the owner indexes and wake-ups fed by the pod and ReplicaSet caches.
//!
//! Everything runs on `flotilla_runtime`'s shared caches and [`flotilla_runtime::Runner`]s:
//! one watch per kind, reconciles woken by changes, deadlines as requeues, never a sleep.

mod error;
mod kubelet;
mod names;
mod nodes;
mod schedule;
mod state;
mod status;
mod tracker;
mod workloads;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

pub use error::{Error, Result};
use flotilla_runtime::{Context, ContextOptions, Runner, Settings, metrics::Metrics};
use futures::{FutureExt, channel::mpsc, future::BoxFuture};
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::Job,
        core::v1::{Node, Pod},
    },
    apimachinery::pkg::api::resource::Quantity,
};
use kube::Client;
pub use nodes::LEASE_NAMESPACE;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use crate::state::{Index, Sim, Wake, Workloads};

/// The field manager of every write the simulator makes.
pub const FIELD_MANAGER: &str = "flotilla-simulator";

/// The label that marks a simulated Node, with the node prefix ([`Options::node_prefix`]) as
/// its value: the simulator heartbeats and runs pods on the Nodes that carry it.
pub const POOL_LABEL: &str = "simulator.flotilla.io/pool";

/// An annotation on a Node the simulator heartbeats: its capacity in cores, instead of
/// [`Options::node_size`] (a provider creating Nodes sets it from its machine's settings).
pub const CPU_ANNOTATION: &str = "simulator.flotilla.io/cpu";

/// An annotation on a Node the simulator heartbeats: its memory in GiB, instead of
/// [`Options::node_size`].
pub const MEMORY_ANNOTATION: &str = "simulator.flotilla.io/memory-gi";

/// A simulated node's size.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSize {
    /// `status.capacity`.
    pub capacity: BTreeMap<String, Quantity>,
    /// `status.allocatable`: what pods may request (the scheduler's limit).
    pub allocatable: BTreeMap<String, Quantity>,
}

impl NodeSize {
    /// A node of `cpu` cores and `memory` (a quantity such as `16Gi`), with 110 pods and 100Gi
    /// of ephemeral storage, allocatable less what a kubelet reserves (5% of the cpu, 1Gi of
    /// the memory, 5% of the storage).
    pub fn new(cpu: u32, memory_gi: u32) -> NodeSize {
        let q = |s: String| Quantity(s);
        let capacity = BTreeMap::from([
            ("cpu".to_owned(), q(cpu.to_string())),
            ("memory".to_owned(), q(format!("{memory_gi}Gi"))),
            ("pods".to_owned(), q("110".to_owned())),
            ("ephemeral-storage".to_owned(), q("100Gi".to_owned())),
        ]);
        let allocatable = BTreeMap::from([
            ("cpu".to_owned(), q(format!("{}m", u64::from(cpu) * 950))),
            (
                "memory".to_owned(),
                q(format!("{}Gi", memory_gi.saturating_sub(1).max(1))),
            ),
            ("pods".to_owned(), q("110".to_owned())),
            ("ephemeral-storage".to_owned(), q("95Gi".to_owned())),
        ]);
        NodeSize {
            capacity,
            allocatable,
        }
    }
}

impl Default for NodeSize {
    /// 4 cpu, 16Gi: allocatable 3800m and 15Gi, 110 pods, 95Gi of 100Gi storage.
    fn default() -> Self {
        NodeSize::new(4, 16)
    }
}

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Nodes are named `<node_prefix>-node-<n>`.
    pub node_prefix: String,
    /// How many Nodes to create (1-based names). Nodes left from an earlier run with more stay
    /// simulated.
    pub nodes: u32,
    /// Each node's capacity and allocatable.
    pub node_size: NodeSize,
    /// Labels every node carries besides `kubernetes.io/hostname`, `kubernetes.io/os`,
    /// `node.kubernetes.io/instance-type` and [`POOL_LABEL`] (e.g. the topology labels).
    pub node_labels: BTreeMap<String, String>,
    /// How often each node's Lease is renewed (kubelet: 10 s).
    pub heartbeat: Duration,
    /// How often the Ready condition's `lastHeartbeatTime` is refreshed when nothing changed.
    pub node_status_period: Duration,
    /// How long a bound pod takes to be Running and Ready.
    pub startup_delay: Duration,
    /// Up to this fraction of `startup_delay` is added per pod (Cluster API's in-memory
    /// provider: duration + U(0, jitter · duration)), derived from the pod's uid so a restart
    /// keeps the same deadline.
    pub startup_jitter: f64,
    /// How long a pod whose `restartPolicy` is not `Always` (a Job's) runs before it Succeeds.
    pub completion_delay: Duration,
    /// Run the workload controllers (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs)
    /// and garbage-collect their children: on for a member whose kube-controller-manager does
    /// not run them (the embedded API server; the test control plane of `tests/kube`, whose
    /// controller manager runs only the namespace, garbage-collector and service-account
    /// controllers), off on a real cluster, whose controller manager does it all.
    pub workload_controllers: bool,
    /// With the workload controllers: how long a Node nobody heartbeats keeps its conditions
    /// before they turn `Unknown` (kube-controller-manager's `--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// Every object is reconciled again at least this often.
    pub resync: Duration,
    /// How many pods are reconciled at once (each workload kind runs a quarter of it).
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_prefix: "sim".to_owned(),
            nodes: 3,
            node_size: NodeSize::default(),
            node_labels: BTreeMap::new(),
            heartbeat: Duration::from_secs(10),
            node_status_period: Duration::from_secs(40),
            startup_delay: Duration::from_secs(2),
            startup_jitter: 0.5,
            completion_delay: Duration::from_secs(5),
            workload_controllers: true,
            node_monitor_grace_period: Duration::from_secs(50),
            resync: Duration::from_secs(300),
            concurrency: 16,
        }
    }
}

/// Simulates the member behind `client` until `stop` is cancelled: creates (or takes back) the
/// Nodes, then runs the node, kubelet and, with [`Options::workload_controllers`], workload
/// controllers. Returns once every controller has finished its in-flight work.
///
/// # Errors
///
/// When the member cannot be read (`/version`, discovery) or the Nodes cannot be created;
/// failures after that are retried per object with backoff and logged.
pub async fn run(client: Client, options: Options, stop: CancellationToken) -> Result<()> {
    let span = info_span!("simulator", prefix = %options.node_prefix);
    start(client, options, stop).instrument(span).await
}

async fn start(client: Client, options: Options, stop: CancellationToken) -> Result<()> {
    let version = client
        .apiserver_version()
        .await
        .map_err(|source| Error::Discover {
            what: "/version",
            source,
        })?;
    let core = client
        .list_core_api_resources("v1")
        .await
        .map_err(|source| Error::Discover {
            what: "/api/v1",
            source,
        })?;
    let binding = core.resources.iter().any(|r| r.name == "pods/binding");
    if !binding {
        info!(
            "the member does not serve pods/binding: only pods the simulator creates are placed on nodes"
        );
    }
    nodes::ensure(&client, &options, &version.git_version).await?;

    let ctx = Context::new(
        client.clone(),
        Arc::new(Metrics::default()),
        stop.child_token(),
        ContextOptions::default(),
    );
    let caches = ctx.caches();
    let node_cache = caches.get::<Node>()?;
    let pod_cache = caches.get::<Pod>()?;

    let (pods_tx, pods_rx) = mpsc::unbounded();
    let (deployments_tx, deployments_rx) = mpsc::unbounded();
    let (replica_sets_tx, replica_sets_rx) = mpsc::unbounded();
    let (stateful_sets_tx, stateful_sets_rx) = mpsc::unbounded();
    let (daemon_sets_tx, daemon_sets_rx) = mpsc::unbounded();
    let (jobs_tx, jobs_rx) = mpsc::unbounded();
    let (all_daemon_sets_tx, all_daemon_sets_rx) = mpsc::unbounded();
    let wake = Wake {
        pods: pods_tx,
        deployments: deployments_tx,
        replica_sets: replica_sets_tx,
        stateful_sets: stateful_sets_tx,
        daemon_sets: daemon_sets_tx,
        jobs: jobs_tx,
        all_daemon_sets: all_daemon_sets_tx,
    };

    let pod_settings = Settings {
        backoff_base: Duration::from_millis(200),
        ..Settings::new(options.concurrency.max(1))
    };
    let workload_settings = Settings {
        backoff_base: Duration::from_millis(200),
        ..Settings::new((options.concurrency / 4).max(1))
    };
    let node_runner = Runner::<Node>::new(&ctx, "simulator-nodes", pod_settings.clone())?;
    let pod_runner =
        Runner::<Pod>::new(&ctx, "simulator-kubelet", pod_settings)?.reconcile_on(pods_rx);

    let workloads = if options.workload_controllers {
        Some((
            Runner::<Deployment>::new(&ctx, "simulator-deployment", workload_settings.clone())?
                .reconcile_on(deployments_rx),
            Runner::<ReplicaSet>::new(&ctx, "simulator-replicaset", workload_settings.clone())?
                .reconcile_on(replica_sets_rx),
            Runner::<StatefulSet>::new(&ctx, "simulator-statefulset", workload_settings.clone())?
                .reconcile_on(stateful_sets_rx),
            Runner::<DaemonSet>::new(&ctx, "simulator-daemonset", workload_settings.clone())?
                .reconcile_on(daemon_sets_rx)
                .reconcile_all_on(all_daemon_sets_rx),
            Runner::<Job>::new(&ctx, "simulator-job", workload_settings)?.reconcile_on(jobs_rx),
        ))
    } else {
        None
    };
    let workload_caches = if options.workload_controllers {
        Some((
            caches.get::<Deployment>()?,
            caches.get::<ReplicaSet>()?,
            caches.get::<StatefulSet>()?,
            caches.get::<DaemonSet>()?,
            caches.get::<Job>()?,
        ))
    } else {
        None
    };

    let sim = Arc::new(Sim {
        client,
        binding,
        kubelet_version: version.git_version,
        ledger: Mutex::default(),
        nodes: node_cache.store(),
        pods: pod_cache.store(),
        pod_owners: Mutex::new(Index::default()),
        workloads: workload_caches.as_ref().map(|(_, r, ..)| Workloads {
            replica_sets: r.store(),
            replica_set_owners: Mutex::new(Index::default()),
        }),
        wake,
        since: Mutex::new(HashMap::new()),
        deleting: Mutex::new(HashSet::new()),
        renewed: Mutex::new(HashMap::new()),
        options,
    });

    // The trackers subscribe now, before the caches start, and say when they hold every
    // object; no controller runs before that, so none reads a half-built index.
    let (ready_tx, ready_rx) = watch::channel(0usize);
    let ready_tx = Arc::new(ready_tx);
    let mut tasks: Vec<BoxFuture<'static, ()>> = Vec::new();
    let mut trackers = 1;
    tasks.push(
        tracker::pods(
            sim.clone(),
            &pod_cache,
            &node_cache,
            ready_tx.clone(),
            ctx.stop().clone(),
        )?
        .instrument(info_span!("tracker", kind = "Pod"))
        .boxed(),
    );
    if let Some((_, replica_sets, ..)) = &workload_caches {
        trackers += 1;
        tasks.push(
            tracker::replica_sets(
                sim.clone(),
                replica_sets,
                ready_tx.clone(),
                ctx.stop().clone(),
            )?
            .instrument(info_span!("tracker", kind = "ReplicaSet"))
            .boxed(),
        );
    }
    let gate = move |run: BoxFuture<'static, ()>| -> BoxFuture<'static, ()> {
        let mut ready = ready_rx.clone();
        async move {
            if ready.wait_for(|n| *n >= trackers).await.is_ok() {
                run.await;
            }
        }
        .boxed()
    };
    tasks.push(gate(node_runner.run(nodes::reconcile, sim.clone()).boxed()));
    tasks.push(gate(
        pod_runner.run(kubelet::reconcile, sim.clone()).boxed(),
    ));
    if let Some((deployments, replica_sets, stateful_sets, daemon_sets, jobs)) = workloads {
        tasks.push(gate(
            deployments
                .run(workloads::deployment::reconcile, sim.clone())
                .boxed(),
        ));
        tasks.push(gate(
            replica_sets
                .run(workloads::replica_set::reconcile, sim.clone())
                .boxed(),
        ));
        tasks.push(gate(
            stateful_sets
                .run(workloads::stateful_set::reconcile, sim.clone())
                .boxed(),
        ));
        tasks.push(gate(
            daemon_sets
                .run(workloads::daemon_set::reconcile, sim.clone())
                .boxed(),
        ));
        tasks.push(gate(
            jobs.run(workloads::job::reconcile, sim.clone()).boxed(),
        ));
    }
    ctx.start();
    info!(
        nodes = sim.options.nodes,
        workload_controllers = sim.options.workload_controllers,
        "simulating the member"
    );
    // The trackers end at the stop; the controllers once their in-flight reconciles finish.
    futures::future::join_all(tasks).await;
    Ok(())
}
