//! Command-line interface: flag parsing and dispatch to the libraries. Nothing here decides
//! anything a library could.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

/// Flotilla: a Kubernetes-native multi-cluster control plane.
#[derive(Debug, Parser)]
#[command(name = "flotilla", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format of long-running commands: text, or json (one JSON object per line, with the
    /// span fields).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How to reach a hub API server, as kubectl takes it.
#[derive(Clone, Debug, Args)]
pub struct HubConnection {
    /// The kubeconfig to use (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
}

/// Flags every long-running hub process takes.
#[derive(Clone, Debug, Args)]
pub struct ProcessFlags {
    /// Controllers to run: `*` for all, `-name` to switch one off.
    #[arg(long, default_value = "*")]
    pub controllers: String,
    /// Where /metrics, /healthz and /readyz are served over plain HTTP; `0` disables them.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub metrics_bind_address: String,
    /// How long a Cluster's status heartbeat may stay silent before its Ready condition turns
    /// Unknown (a duration such as 40s).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub cluster_monitor_grace_period: Duration,
    /// How often every Push member is probed (a duration such as 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub cluster_status_update_frequency: Duration,
    /// Where the `local` provider runs the clusters it creates (`flotilla create cluster`);
    /// `flotilla up` uses DATA_DIR/machines, `flotilla hub` runs no local provider without it.
    #[arg(long)]
    pub local_provider_dir: Option<PathBuf>,
    /// In clusters the local provider creates: how long a node's heartbeats may stop before
    /// its conditions turn Unknown (kube-controller-manager's flag of the same name).
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// A Cluster API management cluster: its provisioned clusters join the fleet by
    /// themselves (and leave it when deleted).
    #[arg(long)]
    pub capi_kubeconfig: Option<PathBuf>,
    /// Where the GitRepo controller caches repositories (one bare repository and one checkout
    /// per GitRepo); `flotilla up` uses DATA_DIR/gitrepo.
    #[arg(long)]
    pub gitrepo_cache_dir: Option<PathBuf>,
    /// The kustomize (or kubectl) that builds GitRepo kustomizations; default: `kustomize`,
    /// then `kubectl`, on PATH.
    #[arg(long)]
    pub kustomize: Option<PathBuf>,
}

/// Leader-election flags of `flotilla hub`.
#[derive(Clone, Debug, Args)]
pub struct LeaderFlags {
    /// Take the Lease flotilla-system/flotilla-hub before any controller writes, so only one
    /// of several hubs is active.
    #[arg(long)]
    pub leader_elect: bool,
    /// How long a standby waits after the leader's last renew before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates try to take, and the leader renews, the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The Lease's namespace.
    #[arg(long, default_value = "flotilla-system")]
    pub leader_elect_resource_namespace: String,
    /// The Lease's name.
    #[arg(long, default_value = "flotilla-hub")]
    pub leader_elect_resource_name: String,
    /// This process's holderIdentity (default: host name and process id).
    #[arg(long)]
    pub identity: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the CustomResourceDefinitions of every Flotilla kind as YAML.
    Crds {
        /// Write one file per CRD into this directory; print them all to stdout when absent.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Run a local hub and member clusters in one process (the hub, its controllers and an
    /// embedded API server hosting every cluster).
    Up {
        /// Where state, certificates and the kubeconfig are kept.
        #[arg(long, default_value = ".tmp/flotilla")]
        data_dir: PathBuf,
        /// How many member clusters to run (member1 … memberN).
        #[arg(long, default_value_t = 3)]
        members: usize,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_address: IpAddr,
        /// The port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Keep all state in memory instead of under --data-dir.
        #[arg(long)]
        in_memory: bool,
        /// Simulate each member's Nodes, kubelet and workload controllers, so workloads
        /// become ready (`--simulate=false`: members without Nodes, workloads never ready).
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        simulate: bool,
        /// How many simulated Nodes each member has (4 cpu and 16Gi each).
        #[arg(long, default_value_t = 3)]
        nodes_per_member: u32,
        /// The hub process's flags.
        #[command(flatten)]
        process: ProcessFlags,
    },
    /// Run the hub's controllers against an existing hub API server.
    Hub {
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
        /// The hub process's flags.
        #[command(flatten)]
        process: ProcessFlags,
        /// Leader election.
        #[command(flatten)]
        leader: LeaderFlags,
        /// Install or update the Flotilla CRDs first (they are installed anyway when the hub
        /// API server does not serve them yet).
        #[arg(long)]
        install_crds: bool,
    },
    /// Run the scheduler controller alone against a hub.
    Scheduler {
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
        /// Where /metrics, /healthz and /readyz are served over plain HTTP; `0` disables them.
        #[arg(long, default_value = "127.0.0.1:8080")]
        metrics_bind_address: String,
    },
    /// Show where the scheduler would place a binding, without a server. FILE is a YAML stream
    /// of Cluster objects (with status) and one ResourceBinding or ClusterResourceBinding.
    Schedule {
        /// The YAML stream to read (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Output format: json, yaml or table.
        #[arg(short = 'o', long = "output", default_value = "table")]
        output: String,
    },
    /// Run the embedded Kubernetes-compatible API server.
    Apiserver {
        /// Where state, certificates, the token and the kubeconfig are kept.
        #[arg(long)]
        data_dir: PathBuf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_address: IpAddr,
        /// The port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 6443)]
        port: u16,
        /// Keep objects in memory only; nothing survives a restart.
        #[arg(long)]
        in_memory: bool,
        /// The Kubernetes version `/version` reports, such as `1.34` or `v1.34.2` (default: the
        /// version of the API types the server is built with).
        #[arg(long)]
        kubernetes_version: Option<String>,
        /// Simulate the kubelets of the Nodes labelled `simulator.flotilla.io/pool=POOL` (a
        /// provider creates them), the scheduler, the workload controllers and the node
        /// lifecycle, so workloads run on this cluster. Off when absent.
        #[arg(long, value_name = "POOL")]
        simulate_pool: Option<String>,
        /// With --simulate-pool: how long a Node's heartbeats may stop before its conditions
        /// turn Unknown.
        #[arg(long, default_value = "50s", value_parser = parse_duration)]
        node_monitor_grace_period: Duration,
    },
    /// Show what each member cluster would receive for resource templates, without a server.
    /// FILE is a YAML/JSON stream (or a directory of them) of resource templates, Clusters,
    /// (Cluster)OverridePolicies and optionally (Cluster)PropagationPolicies. Targets are the
    /// `--cluster` names, else the placement the matching propagation policy gets from the
    /// scheduler (as `flotilla schedule` computes it).
    Render {
        /// Files or directories to read (`-` for stdin).
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Render for exactly these clusters (repeat for several).
        #[arg(long = "cluster")]
        clusters: Vec<String>,
        /// Output format: yaml (a stream, one document per template and cluster) or json (an
        /// array of `{"cluster", "manifest"}`).
        #[arg(short = 'o', long = "output", default_value = "yaml")]
        output: String,
    },
    /// Print a kubeconfig that reaches member cluster NAME, built from its Cluster and
    /// credentials Secret on the hub.
    Kubeconfig {
        /// The member cluster.
        name: String,
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
    },
    /// Join a cluster to the fleet as a Push member: reach it with its kubeconfig, make a
    /// ServiceAccount for the hub there, and register it on the hub (KUBECONFIG, or
    /// --hub-kubeconfig).
    Join(crate::join::JoinArgs),
    /// Remove a member from the fleet: its Cluster and Works go; the objects applied to it
    /// stay there (no longer managed) unless --delete-member-objects.
    Unjoin {
        /// What to remove.
        #[command(flatten)]
        request: crate::join::UnjoinArgs,
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
    },
    /// Show objects of one kind in every member cluster at once, with a CLUSTER column, read
    /// through the hub's credentials for each member.
    Get {
        /// What to show.
        #[command(flatten)]
        request: crate::members::GetRequest,
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
    },
    /// Create a member cluster through Machines (a control-plane and a workers MachineSet and
    /// a health check) and wait until it is Ready in the fleet.
    Create {
        /// What to create.
        #[command(subcommand)]
        what: CreateCommand,
    },
    /// Upgrade a cluster created with `flotilla create cluster`: replace its machines with
    /// ones of the new version and wait for the rollout.
    Upgrade {
        /// What to upgrade.
        #[command(subcommand)]
        what: UpgradeCommand,
    },
    /// Delete a cluster created with `flotilla create cluster`: its workloads move to other
    /// members, it leaves the fleet and its machines go.
    Delete {
        /// What to delete.
        #[command(subcommand)]
        what: DeleteCommand,
    },
    /// Check manifests (files or directories of YAML) against the Flotilla API and its rules.
    Validate {
        /// Files or directories to check.
        #[arg(short = 'f', long = "filename", required = true)]
        paths: Vec<PathBuf>,
    },
}

/// What `flotilla create` makes.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// A member cluster.
    #[command(disable_version_flag = true)]
    Cluster {
        /// The cluster.
        #[command(flatten)]
        args: crate::lifecycle::CreateArgs,
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
    },
}

/// What `flotilla upgrade` upgrades.
#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// A member cluster.
    #[command(disable_version_flag = true)]
    Cluster {
        /// The cluster.
        #[command(flatten)]
        args: crate::lifecycle::UpgradeArgs,
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
    },
}

/// What `flotilla delete` deletes.
#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// A member cluster.
    Cluster {
        /// The cluster.
        #[command(flatten)]
        args: crate::lifecycle::DeleteArgs,
        /// The hub API server.
        #[command(flatten)]
        connection: HubConnection,
    },
}

/// Parses a duration such as `40s`, `1m30s` or `500ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 40s, 1m30s or 500ms: {e}"))
}

/// Parses `--metrics-bind-address`: `0` (or empty) disables the endpoint.
fn metrics_address(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    let text = text.trim();
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    text.parse().map(Some).with_context(|| {
        format!("--metrics-bind-address {text:?} is not an address such as 127.0.0.1:8080, or 0")
    })
}

impl ProcessFlags {
    /// The hub options these flags describe.
    fn hub_options(&self) -> anyhow::Result<crate::hub::HubOptions> {
        let mut controller_options = crate::controllers::Options::default();
        controller_options.cluster.grace_period = self.cluster_monitor_grace_period;
        controller_options.cluster_status.period = self.cluster_status_update_frequency;
        controller_options.cluster_status.heartbeat_duration = self.cluster_monitor_grace_period;
        controller_options.local_provider.data_dir = self.local_provider_dir.clone();
        controller_options.local_provider.node_monitor_grace_period =
            self.node_monitor_grace_period;
        controller_options.auto_join.capi_kubeconfig = self.capi_kubeconfig.clone();
        controller_options
            .gitrepo
            .cache_dir
            .clone_from(&self.gitrepo_cache_dir);
        controller_options.gitrepo.kustomize = match &self.kustomize {
            Some(binary) => flotilla_gitops::build::Kustomize::at(binary.clone()),
            None => flotilla_gitops::build::Kustomize::find(std::env::var_os("PATH").as_deref()),
        };
        Ok(crate::hub::HubOptions {
            metrics_bind_address: metrics_address(&self.metrics_bind_address)?,
            leader_election: None,
            controllers: crate::controllers::select(&self.controllers)?,
            controller_options,
        })
    }
}

impl LeaderFlags {
    fn lease(&self) -> Option<flotilla_runtime::leader::LeaseOptions> {
        if !self.leader_elect {
            return None;
        }
        let identity = self
            .identity
            .clone()
            .unwrap_or_else(crate::hub::default_identity);
        let mut lease = flotilla_runtime::leader::LeaseOptions::new(
            &self.leader_elect_resource_namespace,
            &self.leader_elect_resource_name,
            identity,
        );
        lease.lease_duration = self.leader_elect_lease_duration;
        lease.renew_deadline = self.leader_elect_renew_deadline;
        lease.retry_period = self.leader_elect_retry_period;
        Some(lease)
    }
}

impl HubConnection {
    /// A client for the hub.
    async fn client(&self) -> anyhow::Result<kube::Client> {
        let config = self.config().await.context("connecting to the hub")?;
        kube::Client::try_from(config).context("connecting to the hub")
    }

    /// The client configuration: `--kubeconfig` and `--context` as kubectl reads them, else
    /// KUBECONFIG, ~/.kube/config or the in-cluster service account.
    async fn config(&self) -> anyhow::Result<kube::Config> {
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&options).await?,
            (None, None) => kube::Config::infer().await?,
        };
        Ok(config)
    }
}

/// Parses the arguments, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `flotilla up` on a terminal shows its own progress: logs are for warnings unless
    // RUST_LOG asks for more.
    let quiet = matches!(cli.command, Command::Up { .. }) && cli.log_format == LogFormat::Text;
    crate::logs::init(cli.log_format, if quiet { "warn" } else { "info" });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crds { output_dir } => crds(output_dir),
        Command::Validate { paths } => validate(&paths),
        Command::Render {
            files,
            clusters,
            output,
        } => render(&files, &clusters, &output),
        Command::Up {
            data_dir,
            members,
            bind_address,
            port,
            in_memory,
            simulate,
            nodes_per_member,
            process,
        } => {
            let options = crate::up::UpOptions {
                data_dir,
                members,
                bind_address,
                port,
                in_memory,
                hub: process.hub_options()?,
                log_format: cli.log_format,
                simulator: simulate.then(|| flotilla_simulator::Options {
                    nodes: nodes_per_member,
                    ..Default::default()
                }),
            };
            let stop = CancellationToken::new();
            crate::hub::stop_on_signals(stop.clone());
            crate::up::up(options, stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Hub {
            connection,
            process,
            leader,
            install_crds,
        } => {
            let mut options = process.hub_options()?;
            options.leader_election = leader.lease();
            hub(&connection, options, install_crds).await
        }
        Command::Scheduler {
            connection,
            metrics_bind_address,
        } => {
            let options = crate::hub::HubOptions {
                metrics_bind_address: metrics_address(&metrics_bind_address)?,
                leader_election: None,
                controllers: crate::controllers::select("scheduler")?,
                controller_options: Default::default(),
            };
            hub(&connection, options, false).await
        }
        Command::Schedule { file, output } => schedule(&file, &output),
        Command::Kubeconfig { name, connection } => {
            let hub = connection.client().await?;
            let kubeconfig = crate::members::kubeconfig(&hub, &name).await?;
            crate::output::Output::stdout().print(serde_saphyr::to_string(&kubeconfig)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Join(args) => {
            let connection = HubConnection {
                kubeconfig: args.hub_kubeconfig.clone(),
                context: args.hub_context.clone(),
            };
            let hub = connection.client().await?;
            let joined = crate::join::join(&hub, &args.options()).await?;
            report(crate::join::describe_join(&args.name, &joined))
        }
        Command::Unjoin {
            request,
            connection,
        } => {
            let hub = connection.client().await?;
            let unjoined = crate::join::unjoin(&hub, &request.options()).await?;
            report(crate::join::describe_unjoin(&request.name, &unjoined))
        }
        Command::Get {
            request,
            connection,
        } => {
            let hub = connection.client().await?;
            let failed = crate::members::get(&hub, &request).await?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Create {
            what: CreateCommand::Cluster { args, connection },
        } => {
            let hub = connection.client().await?;
            let done = crate::lifecycle::create(&hub, &args, progress_mode(cli.log_format)).await?;
            report((done, None))
        }
        Command::Upgrade {
            what: UpgradeCommand::Cluster { args, connection },
        } => {
            let hub = connection.client().await?;
            let done =
                crate::lifecycle::upgrade(&hub, &args, progress_mode(cli.log_format)).await?;
            report((done, None))
        }
        Command::Delete {
            what: DeleteCommand::Cluster { args, connection },
        } => {
            let hub = connection.client().await?;
            let done = crate::lifecycle::delete(&hub, &args, progress_mode(cli.log_format)).await?;
            report((done, None))
        }
        Command::Apiserver {
            data_dir,
            bind_address,
            port,
            in_memory,
            kubernetes_version,
            simulate_pool,
            node_monitor_grace_period,
        } => {
            let config = flotilla_apiserver::Config {
                bind_address,
                port,
                in_memory,
                kubernetes_version,
                ..flotilla_apiserver::Config::new(data_dir)
            };
            let server = flotilla_apiserver::Server::start(config).await?;
            let mut out = crate::output::Output::stdout();
            out.println(format_args!(
                "flotilla apiserver listening on {}",
                server.url()
            ))?;
            out.println(format_args!(
                "kubeconfig: {}",
                server.kubeconfig_path().display()
            ))?;
            let stop = CancellationToken::new();
            crate::hub::stop_on_signals(stop.clone());
            let simulator = match simulate_pool {
                Some(pool) => {
                    let options = flotilla_simulator::Options {
                        node_prefix: pool,
                        nodes: 0,
                        node_monitor_grace_period,
                        ..Default::default()
                    };
                    let client = server.client(None).await?;
                    let stop = stop.clone();
                    Some(tokio::spawn(async move {
                        if let Err(error) = flotilla_simulator::run(client, options, stop).await {
                            tracing::error!(%error, "the simulator stopped");
                        }
                    }))
                }
                None => None,
            };
            stop.cancelled().await;
            if let Some(simulator) = simulator {
                let _ = simulator.await;
            }
            server.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Progress on stdout, or as log lines in JSON mode.
fn progress_mode(format: LogFormat) -> crate::progress::Mode {
    match format {
        LogFormat::Text => crate::progress::Mode::Stdout,
        LogFormat::Json => crate::progress::Mode::Log,
    }
}

/// Prints what a command did on stdout, and its warning, if any, as a log line.
fn report((line, warning): (String, Option<String>)) -> anyhow::Result<ExitCode> {
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    crate::output::Output::stdout().println(line)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the hub process against an existing hub API server until SIGTERM or ctrl-c.
async fn hub(
    connection: &HubConnection,
    options: crate::hub::HubOptions,
    install_crds: bool,
) -> anyhow::Result<ExitCode> {
    let config = connection.config().await.context("connecting to the hub")?;
    let client = kube::Client::try_from(config.clone()).context("connecting to the hub")?;
    if install_crds || !flotilla_controllers::fleet::crds_served(&client).await {
        flotilla_controllers::fleet::install_crds(&client)
            .await
            .context("installing the Flotilla CRDs (or apply config/crd/ as an administrator)")?;
    }
    let stop = CancellationToken::new();
    crate::hub::stop_on_signals(stop.clone());
    crate::hub::run(config, options, stop).await?;
    Ok(ExitCode::SUCCESS)
}

fn crds(output_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let mut out = crate::output::Output::stdout();
    match output_dir {
        Some(dir) => {
            for path in crate::crds::write(&dir)? {
                out.println(format_args!("wrote {}", path.display()))?;
            }
        }
        None => {
            for (_, content) in crate::crds::rendered()? {
                out.println(format_args!("---\n{content}"))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule(file: &std::path::Path, output: &str) -> anyhow::Result<ExitCode> {
    let format: flotilla_scheduler::OutputFormat = output.parse()?;
    let input = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    match flotilla_scheduler::what_if(&input) {
        Ok(outcome) => {
            crate::output::Output::stdout()
                .print(flotilla_scheduler::format_outcome(&outcome, format)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn render(files: &[PathBuf], clusters: &[String], output: &str) -> anyhow::Result<ExitCode> {
    if output != "yaml" && output != "json" {
        anyhow::bail!("unknown output format {output:?}: use yaml or json");
    }
    let mut documents = Vec::new();
    for file in files {
        if file == std::path::Path::new("-") {
            let text = std::io::read_to_string(std::io::stdin()).context("reading stdin")?;
            let objects: Vec<serde_json::Value> =
                serde_saphyr::from_multiple(&text).context("parsing YAML from stdin")?;
            documents.extend(objects);
        } else {
            documents.extend(crate::manifests::read(file)?.into_iter().map(|d| d.object));
        }
    }
    let rendered = match flotilla_propagation::render::what_if(documents, clusters) {
        Ok(rendered) => rendered,
        Err(error) => {
            eprintln!("{error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = crate::output::Output::stdout();
    if output == "json" {
        let list: Vec<serde_json::Value> = rendered
            .iter()
            .map(|r| serde_json::json!({"cluster": r.cluster, "manifest": r.manifest}))
            .collect();
        out.println(serde_json::to_string_pretty(&list)?)?;
    } else {
        for r in &rendered {
            out.print(format!(
                "---\n# cluster: {}\n{}",
                r.cluster,
                serde_saphyr::to_string(&r.manifest)?
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut out = crate::output::Output::stdout();
    let mut failed = 0;
    let mut checked = 0;
    for path in paths {
        for document in crate::manifests::read(path)? {
            checked += 1;
            let label = format!(
                "{}: {} {}",
                document.path.display(),
                document
                    .object
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("<no kind>"),
                document
                    .object
                    .pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("<no name>"),
            );
            match flotilla_api::validate::validate_manifest(&document.object) {
                Ok(()) => out.println(format_args!("{label}: valid"))?,
                Err(flotilla_api::validate::ManifestError::NotFlotilla { .. }) => {
                    out.println(format_args!("{label}: not a Flotilla kind, skipped"))?
                }
                Err(error) => {
                    failed += 1;
                    out.println(format_args!("{label}: {error}"))?;
                }
            }
        }
    }
    if checked == 0 {
        anyhow::bail!("no manifests found in {paths:?}");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
