//! `flotilla up`: a local hub and fleet in one process. One embedded API server serves the hub
//! at its root and every member as a logical cluster under `/clusters/<name>`; the hub gets the
//! Flotilla CRDs and a Cluster per member, and the hub's controllers run against it through
//! `kube::Client`, exactly as they would against a real cluster.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use flotilla_api::Cluster;
use kube::{
    Api, ResourceExt,
    api::ListParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio_util::sync::CancellationToken;

use crate::progress::{Mode, Progress};
use flotilla_controllers::fleet::{self, Member};

/// Options of `flotilla up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Where the API server keeps its state.
    pub data_dir: PathBuf,
    /// How many member clusters to run.
    pub members: usize,
    /// The address to listen on.
    pub bind_address: IpAddr,
    /// The port (0 picks a free one).
    pub port: u16,
    /// Keep everything in memory.
    pub in_memory: bool,
    /// How the hub process runs (controllers, metrics endpoint).
    pub hub: crate::hub::HubOptions,
    /// How the banner is printed: plain lines, or log lines in JSON mode.
    pub log_format: crate::cli::LogFormat,
    /// Simulate every member's Nodes, kubelet and workload controllers (`None`: the members
    /// have no Nodes and their workloads never report status).
    pub simulator: Option<flotilla_simulator::Options>,
}

impl UpOptions {
    /// A fleet in this process on 127.0.0.1 with a free port, every hub controller (with
    /// `controller_options`), no metrics endpoint: what tests and benchmarks start.
    ///
    /// # Errors
    ///
    /// Never in practice (the controller selection `*` is always valid).
    pub fn in_process(
        data_dir: PathBuf,
        members: usize,
        in_memory: bool,
        controller_options: crate::controllers::Options,
        simulator: Option<flotilla_simulator::Options>,
    ) -> anyhow::Result<UpOptions> {
        Ok(UpOptions {
            data_dir,
            members,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            in_memory,
            hub: crate::hub::HubOptions {
                metrics_bind_address: None,
                leader_election: None,
                controllers: crate::controllers::select("*")?,
                controller_options,
            },
            log_format: crate::cli::LogFormat::Text,
            simulator,
        })
    }
}

/// The name of the `index`-th member (1-based).
pub fn member_name(index: usize) -> String {
    format!("member{index}")
}

/// Regions the local members are spread over, so spread constraints have something to do.
const REGIONS: [&str; 2] = ["local-east", "local-west"];

/// The well-known topology labels the simulated Nodes carry.
const REGION_LABEL: &str = "topology.kubernetes.io/region";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The kubeconfig context of the hub in `DIR/kubeconfig` (members' contexts are their names).
pub const HUB_CONTEXT: &str = "flotilla-hub";

/// A member cluster `up` runs, wherever its API server is.
pub struct LocalMember {
    /// Its position (1-based), which picks its region and zone.
    pub index: usize,
    /// Its Cluster name.
    pub name: String,
    /// Its API server URL.
    pub url: String,
    /// An administrator's token.
    pub token: String,
    /// Its serving CA (PEM).
    pub ca_pem: String,
    /// An administrator's client, for the simulator.
    pub client: kube::Client,
}

/// Registers `member` on the hub as `up` does — environment production, region `local-east`
/// or `local-west` by position, a zone of its own, provider local — and, with `simulator`,
/// starts simulating it until `stop`.
///
/// # Errors
///
/// When the hub refuses the registration.
pub async fn start_member(
    hub: &kube::Client,
    member: &LocalMember,
    simulator: Option<&flotilla_simulator::Options>,
    stop: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let region = REGIONS[(member.index - 1) % REGIONS.len()];
    let zone = format!("{region}-{}", member.index);
    let registration = Member {
        labels: BTreeMap::from([("environment".to_owned(), "production".to_owned())]),
        region: Some(region.to_owned()),
        zone: Some(zone.clone()),
        ..Member::local(&member.name, &member.url, &member.token, &member.ca_pem)
    };
    fleet::register_member(hub, &registration).await?;
    let Some(simulator) = simulator else {
        return Ok(None);
    };
    let mut simulator = simulator.clone();
    simulator.node_prefix = member.name.clone();
    simulator.node_labels.extend([
        (REGION_LABEL.to_owned(), region.to_owned()),
        (ZONE_LABEL.to_owned(), zone),
    ]);
    let stop = stop.child_token();
    let name = member.name.clone();
    let client = member.client.clone();
    Ok(Some(tokio::spawn(async move {
        if let Err(error) = flotilla_simulator::run(client, simulator, stop).await {
            tracing::error!(member = %name, %error, "the member simulator stopped");
        }
    })))
}

/// Waits up to `timeout` until every one of `members` is Ready on `hub` (and, when
/// `simulated`, reports its Nodes' allocatable resources, so the scheduler can divide replicas
/// by capacity); returns the members that are not, each with why.
///
/// # Errors
///
/// When the hub cannot be read.
pub async fn wait_ready(
    hub: &kube::Client,
    members: &[String],
    simulated: bool,
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let listed = clusters.list(&ListParams::default()).await?;
        let waiting: Vec<String> = members
            .iter()
            .filter_map(|name| {
                let cluster = listed.items.iter().find(|c| &c.name_any() == name);
                not_ready(cluster, simulated).map(|why| format!("{name} ({why})"))
            })
            .collect();
        if waiting.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(waiting);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running local hub and fleet.
pub struct Fleet {
    /// The embedded API server hosting the hub and every member.
    pub server: flotilla_apiserver::Server,
    /// A client for the hub.
    pub hub: kube::Client,
    /// The member cluster names.
    pub members: Vec<String>,
    /// Whether the members are simulated (their Nodes report capacity).
    pub simulated: bool,
    /// Where the local provider keeps the clusters it creates (`DIR/machines`).
    pub machines_dir: Option<PathBuf>,
    running: Running,
}

/// What runs against a fleet's API servers until `stop`: the hub's controllers and the member
/// simulators.
pub struct Running {
    /// The hub's controllers (`hub::run`).
    pub controllers: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// One simulator per simulated member.
    pub simulators: Vec<tokio::task::JoinHandle<()>>,
    /// Stops them all.
    pub stop: CancellationToken,
}

impl Running {
    /// Starts the hub's controllers against the hub `config` describes, beside `simulators`,
    /// all stopped by `stop`.
    pub fn start(
        config: kube::Config,
        hub: crate::hub::HubOptions,
        simulators: Vec<tokio::task::JoinHandle<()>>,
        stop: CancellationToken,
    ) -> Running {
        Running {
            controllers: tokio::spawn(crate::hub::run(config, hub, stop.clone())),
            simulators,
            stop,
        }
    }

    /// Stops the controllers and simulators; in-flight reconciles finish. What the
    /// controllers ended with.
    pub async fn stop(self) -> anyhow::Result<()> {
        let stop = self.stop.clone();
        stop.cancel();
        self.run_until(stop).await
    }

    /// Runs until `stop` is cancelled or the controllers end by themselves (an error), then
    /// stops everything; what the controllers ended with.
    pub async fn run_until(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let ended = tokio::select! {
            joined = &mut self.controllers => Some(joined),
            () = stop.cancelled() => None,
        };
        self.stop.cancel();
        let joined = match ended {
            Some(joined) => joined,
            None => self.controllers.await,
        };
        futures::future::join_all(self.simulators).await;
        joined.unwrap_or_else(|error| Err(anyhow::anyhow!("controllers stopped: {error}")))
    }
}

impl Fleet {
    /// Starts the API server, creates the members, installs the CRDs, registers every member
    /// on the hub and starts the hub's controllers (and the simulators), reporting nothing.
    ///
    /// # Errors
    ///
    /// When the API server cannot start or the hub cannot be set up.
    pub async fn start(options: UpOptions) -> anyhow::Result<Fleet> {
        Self::start_reporting(options, &mut Progress::quiet()).await
    }

    /// [`Fleet::start`], reporting each step to `progress`.
    ///
    /// # Errors
    ///
    /// When the API server cannot start or the hub cannot be set up.
    pub async fn start_reporting(
        mut options: UpOptions,
        progress: &mut Progress,
    ) -> anyhow::Result<Fleet> {
        // Clusters `flotilla create cluster` makes live beside the hub's state.
        let controller_options = &mut options.hub.controller_options;
        if controller_options.local_provider.data_dir.is_none() {
            controller_options.local_provider.data_dir = Some(options.data_dir.join("machines"));
        }
        let machines_dir = controller_options.local_provider.data_dir.clone();
        if controller_options.gitrepo.cache_dir.is_none() {
            controller_options.gitrepo.cache_dir = Some(options.data_dir.join("gitrepo"));
        }
        progress.begin("Starting the embedded API server");
        let config = flotilla_apiserver::Config {
            data_dir: options.data_dir.clone(),
            bind_address: options.bind_address,
            port: options.port,
            in_memory: options.in_memory,
            root_context: HUB_CONTEXT.to_owned(),
            ..flotilla_apiserver::Config::new(&options.data_dir)
        };
        let server = flotilla_apiserver::Server::start(config)
            .await
            .context("starting the embedded API server")?;
        let hub = server.client(None).await.context("connecting to the hub")?;
        progress.finish(server.url());

        progress.begin("Installing the Flotilla CRDs");
        fleet::install_crds(&hub).await?;
        progress.finish(format!("{} kinds", flotilla_api::crds::all().len()));

        let existing = server.clusters();
        let resumed = (1..=options.members)
            .filter(|i| existing.contains(&member_name(*i)))
            .count();
        progress.begin(if resumed == 0 {
            format!("Creating {} member clusters", options.members)
        } else {
            format!(
                "Resuming {resumed} member clusters, creating {}",
                options.members - resumed
            )
        });
        let stop = CancellationToken::new();
        let mut simulators = Vec::new();
        let mut members = Vec::new();
        for index in 1..=options.members {
            let name = member_name(index);
            let url = if existing.contains(&name) {
                server.cluster_url(&name)
            } else {
                server
                    .create_cluster(&name)
                    .await
                    .with_context(|| format!("creating member cluster {name}"))?
            };
            let client = server
                .client(Some(&name))
                .await
                .with_context(|| format!("connecting to member cluster {name}"))?;
            let local = LocalMember {
                index,
                name: name.clone(),
                url,
                token: server.admin_token().to_owned(),
                ca_pem: server.ca_pem().to_owned(),
                client,
            };
            if let Some(simulating) =
                start_member(&hub, &local, options.simulator.as_ref(), &stop).await?
            {
                simulators.push(simulating);
            }
            members.push(name);
        }
        progress.finish(members.join(", "));

        progress.begin(if options.simulator.is_some() {
            "Starting the hub controllers and the member simulators"
        } else {
            "Starting the hub controllers"
        });
        let kubeconfig = Kubeconfig::read_from(server.kubeconfig_path())
            .context("reading the hub kubeconfig")?;
        let kube_options = KubeConfigOptions {
            context: Some(HUB_CONTEXT.to_owned()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
            .await
            .context("reading the hub kubeconfig")?;
        let running = Running::start(config, options.hub, simulators, stop);
        progress.finish("");
        Ok(Fleet {
            server,
            hub,
            members,
            simulated: options.simulator.is_some(),
            machines_dir,
            running,
        })
    }

    /// [`wait_ready`] for this fleet's members.
    ///
    /// # Errors
    ///
    /// When the hub cannot be read.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<Vec<String>> {
        wait_ready(&self.hub, &self.members, self.simulated, timeout).await
    }

    /// Stops the controllers and simulators (in-flight reconciles finish) and then the API
    /// server.
    pub async fn stop(self) {
        let _ = self.running.stop().await;
        if let Some(dir) = &self.machines_dir {
            crate::local_provider::stop_all(dir).await;
        }
        self.server.shutdown().await;
    }
}

/// Why a member's Cluster is not ready for workloads yet, or `None` when it is.
fn not_ready(cluster: Option<&Cluster>, simulated: bool) -> Option<String> {
    let Some(cluster) = cluster else {
        return Some("no Cluster object".to_owned());
    };
    match cluster.ready_condition() {
        Some(ready) if ready.status == "True" => {}
        Some(ready) => return Some(format!("Ready={}: {}", ready.status, ready.message)),
        None => return Some("no status yet".to_owned()),
    }
    let allocatable = cluster
        .status
        .as_ref()
        .and_then(|s| s.resource_summary.as_ref())
        .is_some_and(|s| !s.allocatable.is_empty());
    (simulated && !allocatable).then(|| "its Nodes have not reported yet".to_owned())
}

/// How long `flotilla up` waits for the members to be Ready before it prints what to do next
/// (it goes on running either way).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run next, printed once the fleet is up.
fn next_steps(fleet: &Fleet) -> Vec<String> {
    let kubeconfig = fleet.server.kubeconfig_path();
    let kubeconfig = std::path::absolute(kubeconfig).unwrap_or_else(|_| kubeconfig.to_owned());
    let mut lines = vec![
        String::new(),
        format!(
            "Flotilla is up: a hub and {} member clusters ({}) at {}.",
            fleet.members.len(),
            fleet.members.join(", "),
            fleet.server.url()
        ),
        "Try:".to_owned(),
        format!("  export KUBECONFIG={}", kubeconfig.display()),
        "  kubectl get clusters".to_owned(),
        "  kubectl apply -f examples/walkthrough/".to_owned(),
        "  kubectl -n demo get deployment nginx -w".to_owned(),
    ];
    let flotilla = std::env::current_exe()
        .ok()
        .map(|exe| exe.display().to_string())
        .unwrap_or_else(|| "flotilla".to_owned());
    lines.push(format!("  {flotilla} get deployment -n demo -o wide"));
    for member in fleet.members.iter().take(2) {
        lines.push(format!(
            "  kubectl --context {member} -n demo get deployment nginx -o wide"
        ));
    }
    lines.push(
        "Press ctrl-c to stop; run the same command again to resume where it left off.".to_owned(),
    );
    lines
}

/// Starts the hub and fleet, reports progress, prints what to run next and runs until `stop`
/// is cancelled (SIGTERM or ctrl-c) or the hub fails.
///
/// # Errors
///
/// When the API server cannot start, the hub cannot be set up or a controller fails.
pub async fn up(options: UpOptions, stop: CancellationToken) -> anyhow::Result<()> {
    let json = options.log_format == crate::cli::LogFormat::Json;
    let mut progress = Progress::new(if json { Mode::Log } else { Mode::Stdout });
    let fleet = tokio::select! {
        started = Fleet::start_reporting(options, &mut progress) => started?,
        () = stop.cancelled() => return Ok(()),
    };
    progress.begin(format!(
        "Waiting for {} members to be Ready",
        fleet.members.len()
    ));
    let waiting = tokio::select! {
        waiting = fleet.wait_ready(READY_TIMEOUT) => waiting?,
        () = stop.cancelled() => Vec::new(),
    };
    if waiting.is_empty() {
        progress.finish("all Ready");
    } else {
        progress.finish(format!("still waiting for {}", waiting.join(", ")));
    }
    drop(progress);
    if !stop.is_cancelled() {
        let lines = next_steps(&fleet);
        if json {
            for line in lines.iter().filter(|l| !l.is_empty()) {
                tracing::info!("{}", line.trim());
            }
        } else {
            let mut out = crate::output::Output::stdout();
            for line in &lines {
                out.println(line)?;
            }
        }
    }
    let Fleet {
        server,
        running,
        machines_dir,
        ..
    } = fleet;
    let outcome = running.run_until(stop).await;
    // The clusters the local provider runs stop with the hub; the next `flotilla up` starts
    // them again from their data directories.
    if let Some(dir) = &machines_dir {
        crate::local_provider::stop_all(dir).await;
    }
    server.shutdown().await;
    outcome
}
