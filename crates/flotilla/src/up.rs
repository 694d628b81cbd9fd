//! `flotilla up`: a local hub and fleet in one process. One embedded API server serves the hub
//! at its root and every member as a logical cluster under `/clusters/<name>`; the hub gets the
//! Flotilla CRDs and a Cluster per member, and the hub's controllers run against it through
//! `kube::Client`, exactly as they would against a real cluster.

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

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

/// The name of the `index`-th member (1-based).
pub fn member_name(index: usize) -> String {
    format!("member{index}")
}

/// Regions the local members are spread over, so spread constraints have something to do.
const REGIONS: [&str; 2] = ["local-east", "local-west"];

/// The well-known topology labels the simulated Nodes carry.
const REGION_LABEL: &str = "topology.kubernetes.io/region";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A running local hub and fleet.
pub struct Fleet {
    /// The embedded API server hosting the hub and every member.
    pub server: flotilla_apiserver::Server,
    /// A client for the hub.
    pub hub: kube::Client,
    /// The member cluster names.
    pub members: Vec<String>,
    controllers: tokio::task::JoinHandle<anyhow::Result<()>>,
    simulators: Vec<tokio::task::JoinHandle<()>>,
    stop: CancellationToken,
}

impl Fleet {
    /// Starts the API server, creates the members, installs the CRDs, registers every member
    /// on the hub and starts the hub's controllers.
    ///
    /// # Errors
    ///
    /// When the API server cannot start or the hub cannot be set up.
    pub async fn start(options: UpOptions) -> anyhow::Result<Fleet> {
        let config = flotilla_apiserver::Config {
            data_dir: options.data_dir.clone(),
            bind_address: options.bind_address,
            port: options.port,
            in_memory: options.in_memory,
        };
        let server = flotilla_apiserver::Server::start(config)
            .await
            .context("starting the embedded API server")?;
        let hub = server.client(None).await.context("connecting to the hub")?;
        fleet::install_crds(&hub).await?;

        let existing = server.clusters();
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
            let region = REGIONS[(index - 1) % REGIONS.len()];
            let member = Member {
                name: name.clone(),
                api_endpoint: url,
                token: server.admin_token().to_owned(),
                ca_pem: server.ca_pem().to_owned(),
                labels: BTreeMap::from([("environment".to_owned(), "production".to_owned())]),
                region: Some(region.to_owned()),
            };
            fleet::register_member(&hub, &member).await?;
            if let Some(simulator) = &options.simulator {
                let client = server
                    .client(Some(&name))
                    .await
                    .with_context(|| format!("connecting to member cluster {name}"))?;
                let mut simulator = simulator.clone();
                simulator.node_prefix = name.clone();
                simulator.node_labels.extend([
                    (REGION_LABEL.to_owned(), region.to_owned()),
                    (ZONE_LABEL.to_owned(), format!("{region}-{index}")),
                ]);
                let stop = stop.child_token();
                let member = name.clone();
                simulators.push(tokio::spawn(async move {
                    if let Err(error) = flotilla_simulator::run(client, simulator, stop).await {
                        tracing::error!(%member, %error, "the member simulator stopped");
                    }
                }));
            }
            members.push(name);
        }
        let kubeconfig = Kubeconfig::read_from(server.kubeconfig_path())
            .context("reading the hub kubeconfig")?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .context("reading the hub kubeconfig")?;
        let controllers = tokio::spawn(crate::hub::run(config, options.hub, stop.clone()));
        Ok(Fleet {
            server,
            hub,
            members,
            controllers,
            simulators,
            stop,
        })
    }

    /// Stops the controllers and simulators (in-flight reconciles finish) and then the API
    /// server.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.controllers.await;
        futures::future::join_all(self.simulators).await;
        self.server.shutdown().await;
    }
}

/// Starts the hub and fleet and runs until `stop` is cancelled (SIGTERM or ctrl-c) or the
/// hub fails.
///
/// # Errors
///
/// When the API server cannot start, the hub cannot be set up or a controller fails.
pub async fn up(options: UpOptions, stop: CancellationToken) -> anyhow::Result<()> {
    let json = options.log_format == crate::cli::LogFormat::Json;
    let mut fleet = Fleet::start(options).await?;
    let mut lines = vec![
        format!("Flotilla hub is up at {}", fleet.server.url()),
        format!(
            "  export KUBECONFIG={}",
            fleet.server.kubeconfig_path().display()
        ),
        "  kubectl get clusters".to_owned(),
    ];
    for member in &fleet.members {
        lines.push(format!("  kubectl --context {member} get namespaces"));
    }
    lines.push("Press ctrl-c to stop.".to_owned());
    if json {
        for line in &lines {
            tracing::info!("{}", line.trim());
        }
    } else {
        let mut out = crate::output::Output::stdout();
        for line in &lines {
            out.println(line)?;
        }
    }
    let outcome = tokio::select! {
        joined = &mut fleet.controllers => match joined {
            Ok(result) => result,
            Err(error) => Err(anyhow::anyhow!("controllers stopped: {error}")),
        },
        () = stop.cancelled() => {
            fleet.stop.cancel();
            match (&mut fleet.controllers).await {
                Ok(result) => result,
                Err(error) => Err(anyhow::anyhow!("controllers stopped: {error}")),
            }
        }
    };
    fleet.stop.cancel();
    futures::future::join_all(std::mem::take(&mut fleet.simulators)).await;
    fleet.server.shutdown().await;
    outcome
}
