//! The built-in `local` infrastructure provider (`docs/providers.md` is the contract it
//! follows, through the API server like any other provider). A control-plane Machine is a
//! `flotilla apiserver` child process with its own port and data directory
//! (`<data_dir>/<namespace>/<cluster>/`), which also simulates the cluster's kubelets; a worker
//! Machine is a Node in that cluster, created here with the machine's providerID and size and
//! heartbeated by that simulator. One control-plane machine per cluster: the embedded API
//! server does not replicate, so a second one is refused with a reason.
//!
//! The process outlives the hub when the hub is killed and is adopted again (its pid file and
//! command line) by the next hub; a process that is not running when a hub starts is started
//! again from its data directory, so the cluster keeps its state. A process that exits under a
//! running provider is a machine failure: `InfrastructureReady=False`, reason `ProcessExited`,
//! for a MachineHealthCheck to see; the replacement machine starts it again. When the cluster
//! goes (its control-plane machine deleted and not replaced), the provider waits until the
//! cluster has left the fleet, then stops the process and removes the data directory and the
//! kubeconfig Secret.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use flotilla_api::{
    Cluster,
    conditions::{self, BOOTSTRAP_CONFIG_READY, INFRASTRUCTURE_READY},
    keys::{annotations, finalizers::MACHINE_CONTROLLER, labels},
    provisioning::{Machine, MachineRole, MachineSet},
};
use flotilla_runtime::{Context, ReconcileError, Runner, Settings, status, status::StatusWrite};
use futures::channel::mpsc;
use k8s_openapi::{
    api::core::v1::{Node, Secret},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{controller::Action, reflector::ObjectRef, reflector::Store},
};
use serde_json::json;
use tracing::{info, warn};

/// The provider's name, as `spec.infrastructureRef.provider` names it.
pub const PROVIDER: &str = "local";
/// The provider's finalizer on the Machines it provisions.
pub const FINALIZER: &str = "provisioning.flotilla.io/local-provider";
/// The provider's field manager.
pub const FIELD_MANAGER: &str = "flotilla-local-provider";
/// A Machine annotation: the machine's node has this many cores (default 4).
pub const CPU_ANNOTATION: &str = "local.provisioning.flotilla.io/cpu";
/// A Machine annotation: the machine's node has this many GiB of memory (default 16).
pub const MEMORY_ANNOTATION: &str = "local.provisioning.flotilla.io/memory-gi";
/// An annotation on a hub Cluster auto-join made: the kubeconfig Secret it joined from.
pub const JOINED_FROM: &str = "provisioning.flotilla.io/joined-from";

/// How the provider runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where each cluster's control plane keeps its state. `None`: the provider is off.
    pub data_dir: Option<PathBuf>,
    /// The `flotilla` executable control planes run (default: this process's own).
    pub executable: Option<PathBuf>,
    /// How long a node's heartbeats may stop before its conditions turn Unknown, in every
    /// cluster the provider runs.
    pub node_monitor_grace_period: Duration,
    /// How many Machines are reconciled at once.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            data_dir: None,
            executable: None,
            node_monitor_grace_period: Duration::from_secs(50),
            concurrency: 4,
        }
    }
}

/// A failed step, with the reason label of the reconcile-errors metric.
#[derive(Debug)]
pub struct Error {
    reason: &'static str,
    message: String,
    conflict: bool,
}

impl Error {
    pub(crate) fn new(reason: &'static str, message: impl fmt::Display) -> Self {
        Self {
            reason,
            message: message.to_string(),
            conflict: false,
        }
    }

    pub(crate) fn api(reason: &'static str, what: &str, error: &kube::Error) -> Self {
        Self {
            reason,
            message: format!("{what}: {error}"),
            conflict: matches!(error, kube::Error::Api(s) if s.code == 409),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        self.reason
    }

    fn is_conflict(&self) -> bool {
        self.conflict
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// A control-plane process this provider instance started or adopted.
#[derive(Clone, Debug)]
enum Process {
    /// Running with this pid.
    Running(u32),
    /// Exited under this provider, with what it said.
    Exited(String),
}

struct State {
    hub: Client,
    machines: Store<Machine>,
    clusters: Store<Cluster>,
    root: PathBuf,
    executable: PathBuf,
    grace: Duration,
    /// Keyed by machine (`namespace/name`): a process belongs to the machine that started it.
    processes: Arc<Mutex<HashMap<String, Process>>>,
    /// Wakes a machine whose process exited.
    exited: mpsc::UnboundedSender<ObjectRef<Machine>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(machine: &Machine) -> String {
    format!(
        "{}/{}",
        machine.namespace().unwrap_or_default(),
        machine.name_any()
    )
}

/// The directory of a cluster's control plane.
fn cluster_dir(root: &Path, namespace: &str, cluster: &str) -> PathBuf {
    root.join(namespace).join(cluster)
}

/// The name of the Secret holding a cluster's admin kubeconfig (Cluster API's name).
pub fn kubeconfig_secret(cluster: &str) -> String {
    format!("{cluster}-kubeconfig")
}

/// The providerID of a local machine.
pub fn provider_id(cluster: &str, machine: &str) -> String {
    format!("local://{cluster}/{machine}")
}

/// Whether a version reported by `/version` is the one a machine asks for (`v1.35.0` is
/// `v1.35.0`, `1.35.0` and `v1.35.0+flotilla`).
pub fn same_version(wanted: &str, reported: &str) -> bool {
    let core = |v: &str| {
        v.trim()
            .trim_start_matches('v')
            .split(['+', '-'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    core(wanted) == core(reported)
}

/// Whether process `pid` is alive and runs on `dir` (its command line names it).
fn alive_on(pid: u32, dir: &Path) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name in parentheses; a zombie is not alive.
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    if stat.is_empty() || zombie {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let wanted = dir.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// The machine whose control-plane process runs on `dir`.
fn holder(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("machine"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// The last lines of a process's log, for a condition message.
fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("apiserver.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// A client for the cluster whose admin kubeconfig is `text`.
async fn client_for(text: &str) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(text)
        .map_err(|e| Error::new("ReadKubeconfig", format!("the kubeconfig: {e}")))?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::new("ReadKubeconfig", format!("the kubeconfig: {e}")))?;
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(5));
    Client::try_from(config).map_err(|e| Error::new("ConnectCluster", e))
}

fn is_ours(machine: &Machine) -> bool {
    machine.spec.infrastructure_ref.provider == PROVIDER
}

fn condition_true(machine: &Machine, type_: &str) -> bool {
    machine
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, type_))
}

/// What the provider reports on a machine.
struct Report {
    ready: bool,
    reason: &'static str,
    message: String,
    addresses: Vec<(&'static str, String)>,
}

impl Report {
    fn waiting(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            reason,
            message: message.into(),
            addresses: Vec::new(),
        }
    }
}

/// Writes the provider's status fields (only when they change) and, once provisioned, the
/// machine's providerID.
async fn report(state: &State, machine: &Machine, report: Report) -> Result<()> {
    let api: Api<Machine> =
        Api::namespaced(state.hub.clone(), &machine.namespace().unwrap_or_default());
    let name = machine.name_any();
    let id = provider_id(&machine.spec.cluster_name, &name);
    if report.ready && machine.spec.provider_id.as_deref() != Some(id.as_str()) {
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(json!({
                "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "Machine",
                "spec": {"providerID": id},
            })),
        )
        .await
        .map_err(|e| Error::api("WriteProviderId", &format!("machine {name}"), &e))?;
    }
    let current = machine.status.clone().unwrap_or_default();
    let mut next = current.conditions.clone();
    let condition = conditions::new(
        INFRASTRUCTURE_READY,
        report.ready,
        report.reason,
        report.message,
        machine.metadata.generation,
    );
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    let changed = conditions::set_condition(&mut next, condition, now);
    let provisioned = current
        .initialization
        .as_ref()
        .is_some_and(|i| i.infrastructure_provisioned);
    let addresses: Vec<serde_json::Value> = report
        .addresses
        .iter()
        .map(|(t, a)| json!({"type": t, "address": a}))
        .collect();
    let same_addresses = report.addresses.is_empty()
        || (current.addresses.len() == report.addresses.len()
            && current
                .addresses
                .iter()
                .zip(&report.addresses)
                .all(|(a, (t, v))| a.type_ == *t && a.address == *v));
    if !changed && same_addresses && (provisioned || !report.ready) {
        return Ok(());
    }
    let mut owned = json!({
        "conditions": status::owned(&next, &[INFRASTRUCTURE_READY]),
    });
    if report.ready || provisioned {
        owned["initialization"] = json!({"infrastructureProvisioned": true});
    }
    if !addresses.is_empty() {
        owned["addresses"] = json!(addresses);
    }
    status::write(
        &api,
        machine,
        StatusWrite {
            field_manager: FIELD_MANAGER,
            owned,
        },
    )
    .await
    .map_err(|e| Error::api("WriteMachineStatus", &format!("machine {name}"), &e))?;
    Ok(())
}

async fn set_finalizer(state: &State, machine: &Machine, present: bool) -> Result<()> {
    let mut finalizers = machine.finalizers().to_vec();
    let has = finalizers.iter().any(|f| f == FINALIZER);
    if has == present {
        return Ok(());
    }
    if present {
        finalizers.push(FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != FINALIZER);
    }
    let api: Api<Machine> =
        Api::namespaced(state.hub.clone(), &machine.namespace().unwrap_or_default());
    let patch = json!({"metadata": {
        "resourceVersion": machine.resource_version(),
        "finalizers": finalizers,
    }});
    match api
        .patch(
            &machine.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 && !present => Ok(()),
        Err(e) => Err(Error::api(
            "WriteFinalizer",
            &format!("machine {}", machine.name_any()),
            &e,
        )),
    }
}

/// The node body a machine's Node starts from: in the cluster's simulated pool, with the
/// machine's providerID and size.
fn node_for(machine: &Machine) -> Result<Node> {
    let name = machine.name_any();
    let cluster = &machine.spec.cluster_name;
    let annotation = |key: &str, default: u32| {
        machine
            .annotations()
            .get(key)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
            .to_string()
    };
    let mut labels = serde_json::Map::new();
    labels.insert(flotilla_simulator::POOL_LABEL.into(), json!(cluster));
    let mut taints = Vec::new();
    if machine.spec.role == MachineRole::ControlPlane {
        labels.insert("node-role.kubernetes.io/control-plane".into(), json!(""));
        taints
            .push(json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}));
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                flotilla_simulator::CPU_ANNOTATION: annotation(CPU_ANNOTATION, 4),
                flotilla_simulator::MEMORY_ANNOTATION: annotation(MEMORY_ANNOTATION, 16),
            },
        },
        "spec": {"providerID": provider_id(cluster, &name), "taints": taints},
    }))
    .map_err(|e| Error::new("BuildNode", e))
}

/// Creates the machine's Node in its cluster unless it exists (a Node is never rewritten: a
/// user who takes it out of the simulated pool has stopped its kubelet).
async fn ensure_node(cluster: &Client, machine: &Machine) -> Result<bool> {
    let nodes: Api<Node> = Api::all(cluster.clone());
    match nodes
        .create(&PostParams::default(), &node_for(machine)?)
        .await
    {
        Ok(_) => {
            info!(machine = %machine.name_any(), "created the machine's node");
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(Error::api(
            "CreateNode",
            &format!("node {}", machine.name_any()),
            &e,
        )),
    }
}

async fn reconcile(machine: Arc<Machine>, state: Arc<State>) -> Result<Action> {
    let paused_cluster = state
        .clusters
        .get(&ObjectRef::new(&machine.spec.cluster_name))
        .is_some_and(|c| c.annotations().contains_key(annotations::PAUSED));
    if !is_ours(&machine)
        || machine.annotations().contains_key(annotations::PAUSED)
        || paused_cluster
    {
        return Ok(Action::await_change());
    }
    if machine.metadata.deletion_timestamp.is_some() {
        if !machine.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        if machine.finalizers().iter().any(|f| f == MACHINE_CONTROLLER) {
            // The Machine controller drains and deletes the node first.
            return Ok(Action::await_change());
        }
        return release(&machine, &state).await;
    }
    if !condition_true(&machine, BOOTSTRAP_CONFIG_READY) {
        return Ok(Action::await_change());
    }
    set_finalizer(&state, &machine, true).await?;
    match machine.spec.role {
        MachineRole::ControlPlane => control_plane(&machine, &state).await,
        MachineRole::Worker => worker(&machine, &state).await,
    }
}

/// Deletes the cluster's Nodes of this provider whose Machine is gone: a machine released
/// while its cluster was down (a failed control plane) could not have its Node deleted, and
/// the cluster's simulator would keep it alive.
async fn forget_gone_nodes(cluster: &Client, machine: &Machine, state: &State) -> Result<()> {
    let name = &machine.spec.cluster_name;
    let prefix = format!("local://{name}/");
    let machines: Vec<String> = state
        .machines
        .state()
        .iter()
        .filter(|m| m.namespace() == machine.namespace() && m.spec.cluster_name == *name)
        .map(|m| m.name_any())
        .collect();
    let nodes: Api<Node> = Api::all(cluster.clone());
    let listed = nodes
        .list(
            &kube::api::ListParams::default()
                .labels(&format!("{}={name}", flotilla_simulator::POOL_LABEL)),
        )
        .await
        .map_err(|e| Error::api("ListNodes", &format!("cluster {name}"), &e))?;
    for node in listed.items {
        let owner = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(|id| id.strip_prefix(&prefix))
            .map(str::to_owned);
        if let Some(owner) = owner
            && !machines.contains(&owner)
        {
            match nodes
                .delete(&node.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => info!(node = %node.name_any(), "deleted a node whose machine is gone"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(Error::api("DeleteNode", &node.name_any(), &e)),
            }
        }
    }
    Ok(())
}

/// Other control-plane machines of the same cluster, in the machine's namespace.
fn other_control_planes(machine: &Machine, state: &State) -> Vec<Arc<Machine>> {
    state
        .machines
        .state()
        .into_iter()
        .filter(|m| {
            m.namespace() == machine.namespace()
                && m.name_any() != machine.name_any()
                && m.spec.cluster_name == machine.spec.cluster_name
                && m.spec.role == MachineRole::ControlPlane
                && is_ours(m)
        })
        .collect()
}

fn created(m: &Machine) -> (Option<Timestamp>, String) {
    (
        m.metadata.creation_timestamp.as_ref().map(|t| t.0),
        m.name_any(),
    )
}

async fn control_plane(machine: &Machine, state: &State) -> Result<Action> {
    let namespace = machine.namespace().unwrap_or_default();
    let cluster = machine.spec.cluster_name.clone();
    let others = other_control_planes(machine, state);
    if let Some(first) = others
        .iter()
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .find(|o| created(o) < created(machine))
    {
        report(
            state,
            machine,
            Report::waiting(
                "ControlPlaneReplicasUnsupported",
                format!(
                    "the local provider runs one control-plane machine per cluster (its API \
                     server does not replicate), and {} is cluster {cluster}'s; scale the \
                     control plane to 1 replica",
                    first.name_any()
                ),
            ),
        )
        .await?;
        return Ok(Action::await_change());
    }
    if let Some(previous) = others
        .iter()
        .find(|o| o.finalizers().iter().any(|f| f == FINALIZER))
    {
        report(
            state,
            machine,
            Report::waiting(
                "WaitingForPreviousControlPlane",
                format!(
                    "{} still holds cluster {cluster}'s control plane",
                    previous.name_any()
                ),
            ),
        )
        .await?;
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let dir = cluster_dir(&state.root, &namespace, &cluster);
    let version = machine.spec.version.clone();
    let known = lock(&state.processes).get(&key(machine)).cloned();
    let pid = match known {
        Some(Process::Exited(said)) => {
            report(
                state,
                machine,
                Report::waiting(
                    "ProcessExited",
                    format!("the control-plane process exited: {said}"),
                ),
            )
            .await?;
            return Ok(Action::await_change());
        }
        Some(Process::Running(pid)) => pid,
        None => match read_pid(&dir).filter(|pid| alive_on(*pid, &dir.join("apiserver"))) {
            Some(pid) => {
                let _ = std::fs::write(dir.join("machine"), machine.name_any());
                info!(machine = %machine.name_any(), pid, "adopted a running control plane");
                lock(&state.processes).insert(key(machine), Process::Running(pid));
                pid
            }
            None => start(machine, state, &dir, version.as_deref()).await?,
        },
    };
    let kubeconfig = std::fs::read_to_string(dir.join("apiserver").join("kubeconfig"));
    let client = match &kubeconfig {
        Ok(text) => client_for(text).await.ok(),
        Err(_) => None,
    };
    let reported = match &client {
        Some(client) => client.apiserver_version().await.ok(),
        None => None,
    };
    let (Some(client), Some(reported), Ok(kubeconfig)) = (client, reported, kubeconfig) else {
        report(
            state,
            machine,
            Report::waiting(
                "Starting",
                format!("the control-plane process (pid {pid}) is starting"),
            ),
        )
        .await?;
        return Ok(Action::requeue(Duration::from_millis(300)));
    };
    if let Some(wanted) = &version
        && !same_version(wanted, &reported.git_version)
    {
        // An adopted process of another version: run the machine's.
        info!(machine = %machine.name_any(), wanted, reported = %reported.git_version, "restarting a control plane at the machine's version");
        stop(pid, &dir).await;
        lock(&state.processes).remove(&key(machine));
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    if let Some(port) = url_port(&kubeconfig) {
        let _ = std::fs::write(dir.join("port"), port.to_string());
    }
    publish_kubeconfig(state, machine, &kubeconfig).await?;
    if ensure_node(&client, machine).await? {
        forget_gone_nodes(&client, machine, state).await?;
    }
    report(
        state,
        machine,
        Report {
            ready: true,
            reason: "Provisioned",
            message: format!(
                "control plane {} (pid {pid}) serves {}",
                reported.git_version,
                url_of(&kubeconfig).unwrap_or_default()
            ),
            addresses: vec![
                ("InternalIP", "127.0.0.1".to_owned()),
                ("Hostname", machine.name_any()),
            ],
        },
    )
    .await?;
    // Adopted processes are not this process's children: look at them now and then.
    Ok(Action::requeue(Duration::from_secs(5)))
}

fn url_of(kubeconfig: &str) -> Option<String> {
    let parsed = Kubeconfig::from_yaml(kubeconfig).ok()?;
    parsed.clusters.first()?.cluster.as_ref()?.server.clone()
}

fn url_port(kubeconfig: &str) -> Option<u16> {
    url_of(kubeconfig)?
        .rsplit_once(':')?
        .1
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// Starts the cluster's control plane from its data directory; returns its pid.
async fn start(machine: &Machine, state: &State, dir: &Path, version: Option<&str>) -> Result<u32> {
    let apiserver = dir.join("apiserver");
    std::fs::create_dir_all(&apiserver).map_err(|e| {
        Error::new(
            "CreateDataDir",
            format!("creating {}: {e}", apiserver.display()),
        )
    })?;
    let port: u16 = std::fs::read_to_string(dir.join("port"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if port == 0 {
        // The kubeconfig the new process writes names the port it picked.
        let _ = std::fs::remove_file(apiserver.join("kubeconfig"));
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("apiserver.log"))
        .map_err(|e| {
            Error::new(
                "CreateDataDir",
                format!("the log in {}: {e}", dir.display()),
            )
        })?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::new("CreateDataDir", e))?;
    let mut command = tokio::process::Command::new(&state.executable);
    command
        .arg("apiserver")
        .arg("--data-dir")
        .arg(&apiserver)
        .args(["--bind-address", "127.0.0.1", "--port", &port.to_string()])
        .args(["--simulate-pool", &machine.spec.cluster_name])
        .arg("--node-monitor-grace-period")
        .arg(format!("{}ms", state.grace.as_millis()))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: a terminal's ctrl-c reaches the hub, which stops it.
        .process_group(0)
        .kill_on_drop(false);
    if let Some(version) = version {
        command.args(["--kubernetes-version", version]);
    }
    let mut child = command.spawn().map_err(|e| {
        Error::new(
            "StartControlPlane",
            format!("starting {}: {e}", state.executable.display()),
        )
    })?;
    let pid = child.id().unwrap_or_default();
    let _ = std::fs::write(dir.join("pid"), pid.to_string());
    let _ = std::fs::write(dir.join("machine"), machine.name_any());
    info!(machine = %machine.name_any(), pid, dir = %dir.display(), "started a control plane");
    let machine_key = key(machine);
    lock(&state.processes).insert(machine_key.clone(), Process::Running(pid));
    let processes = Arc::clone(&state.processes);
    let exited = state.exited.clone();
    let object = ObjectRef::from_obj(machine);
    let log_dir = dir.to_owned();
    tokio::spawn(async move {
        let status = child.wait().await;
        let said = match status {
            Ok(s) => format!("{s}; its log ends: {}", log_tail(&log_dir)),
            Err(e) => format!("cannot wait for it: {e}"),
        };
        let mut map = lock(&processes);
        // A process stopped on purpose was taken out of the map first.
        if matches!(map.get(&machine_key), Some(Process::Running(p)) if *p == pid) {
            warn!(machine = %machine_key, pid, %said, "a control-plane process exited");
            map.insert(machine_key, Process::Exited(said));
            drop(map);
            let _ = exited.unbounded_send(object);
        }
    });
    Ok(pid)
}

/// Stops a control-plane process: SIGTERM, then SIGKILL after 10 s.
async fn stop(pid: u32, dir: &Path) {
    let apiserver = dir.join("apiserver");
    if !alive_on(pid, &apiserver) {
        return;
    }
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    for _ in 0..100 {
        if !alive_on(pid, &apiserver) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(pid, nix::sys::signal::Signal::SIGKILL);
}

/// Publishes the cluster's admin kubeconfig as `<cluster>-kubeconfig` (key `value`).
async fn publish_kubeconfig(state: &State, machine: &Machine, kubeconfig: &str) -> Result<()> {
    let namespace = machine.namespace().unwrap_or_default();
    let cluster = &machine.spec.cluster_name;
    let name = kubeconfig_secret(cluster);
    let secrets: Api<Secret> = Api::namespaced(state.hub.clone(), &namespace);
    if let Ok(Some(existing)) = secrets.get_opt(&name).await
        && existing
            .data
            .as_ref()
            .and_then(|d| d.get("value"))
            .is_some_and(|v| v.0 == kubeconfig.as_bytes())
    {
        return Ok(());
    }
    let body = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {labels::MACHINE_CLUSTER_NAME: cluster}},
        "type": "cluster.x-k8s.io/secret",
        "stringData": {"value": kubeconfig},
    });
    secrets
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| Error::api("WriteKubeconfig", &format!("Secret {name}"), &e))?;
    info!(%cluster, secret = %name, "published the cluster's kubeconfig");
    Ok(())
}

/// The cluster's admin kubeconfig, from its Secret.
async fn cluster_kubeconfig(state: &State, namespace: &str, cluster: &str) -> Option<String> {
    let secrets: Api<Secret> = Api::namespaced(state.hub.clone(), namespace);
    let secret = secrets.get_opt(&kubeconfig_secret(cluster)).await.ok()??;
    let value = secret.data?.remove("value")?;
    String::from_utf8(value.0).ok()
}

async fn worker(machine: &Machine, state: &State) -> Result<Action> {
    let namespace = machine.namespace().unwrap_or_default();
    let cluster = &machine.spec.cluster_name;
    let Some(kubeconfig) = cluster_kubeconfig(state, &namespace, cluster).await else {
        report(
            state,
            machine,
            Report::waiting(
                "WaitingForControlPlane",
                format!(
                    "cluster {cluster} has no control plane yet (no Secret {namespace}/{})",
                    kubeconfig_secret(cluster)
                ),
            ),
        )
        .await?;
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let created = match client_for(&kubeconfig).await {
        Ok(client) => ensure_node(&client, machine).await,
        Err(e) => Err(e),
    };
    if let Err(error) = created {
        let provisioned = condition_true(machine, INFRASTRUCTURE_READY);
        if !provisioned {
            report(
                state,
                machine,
                Report::waiting(
                    "ControlPlaneUnreachable",
                    format!("cannot create the node in cluster {cluster}: {error}"),
                ),
            )
            .await?;
        }
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    report(
        state,
        machine,
        Report {
            ready: true,
            reason: "Provisioned",
            message: format!("a simulated node in cluster {cluster}"),
            addresses: vec![("Hostname", machine.name_any())],
        },
    )
    .await?;
    Ok(Action::await_change())
}

/// Whether the machine's cluster goes with it: its MachineSet is gone or going (a machine a
/// set replaces keeps the cluster), or it has none.
pub(crate) async fn cluster_going(hub: &Client, machine: &Machine) -> Result<bool> {
    let Some(owner) = machine
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && r.kind == "MachineSet")
    else {
        return Ok(true);
    };
    let sets: Api<MachineSet> =
        Api::namespaced(hub.clone(), &machine.namespace().unwrap_or_default());
    let set = sets
        .get_opt(&owner.name)
        .await
        .map_err(|e| Error::api("ReadMachineSet", &owner.name, &e))?;
    Ok(set.is_none_or(|s| {
        s.metadata.deletion_timestamp.is_some() || s.uid() != Some(owner.uid.clone())
    }))
}

async fn release(machine: &Machine, state: &State) -> Result<Action> {
    let namespace = machine.namespace().unwrap_or_default();
    let cluster = machine.spec.cluster_name.clone();
    match machine.spec.role {
        MachineRole::Worker => {
            // The Machine controller deleted the node unless the whole cluster is going; a
            // worker has nothing else outside the cluster.
            if let Some(kubeconfig) = cluster_kubeconfig(state, &namespace, &cluster).await
                && let Ok(client) = client_for(&kubeconfig).await
            {
                let nodes: Api<Node> = Api::all(client);
                let _ = nodes
                    .delete(&machine.name_any(), &DeleteParams::default())
                    .await;
            }
        }
        MachineRole::ControlPlane => {
            let going = cluster_going(&state.hub, machine).await?;
            if going {
                // Workloads leave the cluster before its API server does.
                let clusters: Api<Cluster> = Api::all(state.hub.clone());
                let joined = clusters
                    .get_opt(&cluster)
                    .await
                    .map_err(|e| Error::api("ReadCluster", &cluster, &e))?
                    .filter(|c| {
                        c.annotations().get(JOINED_FROM)
                            == Some(&format!("{namespace}/{}", kubeconfig_secret(&cluster)))
                    });
                if joined.is_some() {
                    info!(%cluster, "waiting for the cluster to leave the fleet before stopping it");
                    return Ok(Action::requeue(Duration::from_secs(1)));
                }
            }
            let dir = cluster_dir(&state.root, &namespace, &cluster);
            let owned = lock(&state.processes).remove(&key(machine));
            let pid = match owned {
                Some(Process::Running(pid)) => Some(pid),
                Some(Process::Exited(_)) => None,
                // Started by an earlier hub: stopped only if it is this machine's (a refused
                // second control plane never had one).
                None => {
                    read_pid(&dir).filter(|_| holder(&dir).as_deref() == Some(&*machine.name_any()))
                }
            };
            if let Some(pid) = pid {
                stop(pid, &dir).await;
                info!(machine = %machine.name_any(), pid, "stopped the control plane");
            }
            if going {
                let secrets: Api<Secret> = Api::namespaced(state.hub.clone(), &namespace);
                match secrets
                    .delete(&kubeconfig_secret(&cluster), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(Error::api("DeleteKubeconfig", &cluster, &e)),
                }
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| {
                        Error::new("RemoveDataDir", format!("removing {}: {e}", dir.display()))
                    })?;
                }
                info!(%cluster, "removed the cluster's data");
            }
        }
    }
    set_finalizer(state, machine, false).await?;
    Ok(Action::await_change())
}

/// Stops every control plane under `root` (`flotilla up` stopping: they start again from
/// their data directories next time) and waits for them to exit.
pub async fn stop_all(root: &Path) {
    let Ok(namespaces) = std::fs::read_dir(root) else {
        return;
    };
    let mut stopping = Vec::new();
    for namespace in namespaces.flatten() {
        let Ok(clusters) = std::fs::read_dir(namespace.path()) else {
            continue;
        };
        for cluster in clusters.flatten() {
            let dir = cluster.path();
            if let Some(pid) = read_pid(&dir) {
                stopping.push(async move { stop(pid, &dir).await });
            }
        }
    }
    futures::future::join_all(stopping).await;
}

/// The provider, woken by Machine changes and by its processes exiting; off (a future that
/// ends at once) without a data directory.
///
/// # Errors
///
/// When the shared caches already started, or the executable cannot be found.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> anyhow::Result<futures::future::BoxFuture<'static, ()>> {
    use futures::FutureExt;
    let Some(root) = options.data_dir.clone() else {
        return Ok(async {}.boxed());
    };
    let executable = match options.executable.clone() {
        Some(path) => path,
        None => std::env::current_exe()?,
    };
    let machines = ctx.caches().get::<Machine>()?.store();
    let clusters = ctx.caches().get::<Cluster>()?.store();
    let (exited, exits) = mpsc::unbounded();
    let runner = Runner::<Machine>::new(
        ctx,
        "local-provider",
        Settings {
            backoff_base: Duration::from_millis(500),
            ..Settings::new(options.concurrency)
        },
    )?
    .reconcile_on(exits)
    // Pausing or resuming a Cluster wakes its machines.
    .watches({
        let machines = machines.clone();
        move |cluster: Arc<Cluster>| {
            machines
                .state()
                .iter()
                .filter(|m| m.spec.cluster_name == cluster.name_any())
                .map(|m| ObjectRef::from_obj(m.as_ref()))
                .collect::<Vec<_>>()
        }
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        machines,
        clusters,
        root,
        executable,
        grace: options.node_monitor_grace_period,
        processes: Arc::default(),
        exited,
    });
    info!(dir = %state.root.display(), "starting the local provider");
    Ok(runner.run(reconcile, state).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_with_or_without_v_and_build_suffix() {
        for (wanted, reported, same) in [
            ("v1.35.0", "v1.35.0", true),
            ("v1.35.0", "v1.35.0+flotilla", true),
            ("1.35.0", "v1.35.0", true),
            ("v1.35.0", "v1.36.0", false),
            ("v1.35.0", "v1.35.1", false),
        ] {
            assert_eq!(same_version(wanted, reported), same, "{wanted} {reported}");
        }
    }

    #[test]
    fn ports_come_from_the_kubeconfig_server() {
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: default\n  cluster:\n    server: https://127.0.0.1:40123\n";
        assert_eq!(url_port(text), Some(40123));
        assert_eq!(url_of(text).as_deref(), Some("https://127.0.0.1:40123"));
    }
}
