//! Support for end-to-end tests: a hub and fleet started as `flotilla up` starts it — on the
//! embedded API server in a temporary directory, or (`FLOTILLA_TEST_SERVER=kube`) on real
//! kube-apiservers, a control plane for the hub and one per member, registered, simulated and
//! run by the same code `up` uses. Polling and the kubectl finder come from
//! `flotilla-testing`.

use std::path::PathBuf;

use flotilla::up::{Fleet, LocalMember, Running, UpOptions};
use flotilla_testing::{MemberServer, ServerKind, TestHub};
use tokio_util::sync::CancellationToken;

/// A fleet on real control planes.
struct KubeFleet {
    hub: TestHub,
    members: Vec<String>,
    simulated: bool,
    running: Running,
    kubeconfig: PathBuf,
}

enum Backend {
    Embedded(Box<Fleet>),
    Kube(Box<KubeFleet>),
}

/// A fleet, its state in a temporary directory removed when dropped.
pub struct TestFleet {
    backend: Backend,
    hub: kube::Client,
    /// Its data directory.
    pub dir: tempfile::TempDir,
}

impl TestFleet {
    /// Starts a hub with `members` members and every controller.
    pub async fn start(members: usize) -> anyhow::Result<TestFleet> {
        Self::start_with(members, flotilla::controllers::Options::default()).await
    }

    /// Starts a hub with `members` members and every controller, with `options`, and no member
    /// simulator (tests write member status themselves).
    pub async fn start_with(
        members: usize,
        options: flotilla::controllers::Options,
    ) -> anyhow::Result<TestFleet> {
        Self::start_simulated(members, options, None).await
    }

    /// Starts a hub with `members` members, every controller with default options, each member
    /// simulated quickly (two Nodes, pods running after 200 ms, a heartbeat every second).
    pub async fn start_quickly_simulated(members: usize) -> anyhow::Result<TestFleet> {
        let simulator = flotilla_simulator::Options {
            nodes: 2,
            startup_delay: std::time::Duration::from_millis(200),
            heartbeat: std::time::Duration::from_secs(1),
            ..Default::default()
        };
        Self::start_simulated(members, Default::default(), Some(simulator)).await
    }

    /// Starts a hub with `members` members, every controller with `options`, and each member
    /// simulated with `simulator` (`None`: not simulated), on the server the environment asks
    /// for.
    pub async fn start_simulated(
        members: usize,
        options: flotilla::controllers::Options,
        simulator: Option<flotilla_simulator::Options>,
    ) -> anyhow::Result<TestFleet> {
        let dir = tempfile::tempdir()?;
        let options =
            UpOptions::in_process(dir.path().to_owned(), members, true, options, simulator)?;
        match ServerKind::from_env()? {
            ServerKind::Embedded => {
                let fleet = Fleet::start(options).await?;
                let hub = fleet.hub.clone();
                Ok(TestFleet {
                    backend: Backend::Embedded(Box::new(fleet)),
                    hub,
                    dir,
                })
            }
            ServerKind::Kube => {
                let fleet = start_on_kube(options, &dir).await?;
                let hub = fleet.hub.client.clone();
                Ok(TestFleet {
                    backend: Backend::Kube(Box::new(fleet)),
                    hub,
                    dir,
                })
            }
        }
    }

    /// A client for the hub.
    pub fn hub(&self) -> &kube::Client {
        &self.hub
    }

    /// Waits until every member reports Ready, as a user would before placing workloads on a
    /// new fleet (a Divided binding scheduled earlier would only see the members that were
    /// ready then, and is not re-placed when more become ready, as in Karmada).
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let (members, simulated) = match &self.backend {
            Backend::Embedded(fleet) => (&fleet.members, fleet.simulated),
            Backend::Kube(fleet) => (&fleet.members, fleet.simulated),
        };
        let timeout = std::time::Duration::from_secs(30);
        let waiting = flotilla::up::wait_ready(&self.hub, members, simulated, timeout).await?;
        anyhow::ensure!(
            waiting.is_empty(),
            "members not Ready after 30 s: {}",
            waiting.join(", ")
        );
        Ok(())
    }

    /// An administrator's client for member `name`.
    pub async fn member(&self, name: &str) -> anyhow::Result<kube::Client> {
        match &self.backend {
            Backend::Embedded(fleet) => Ok(fleet.server.client(Some(name)).await?),
            Backend::Kube(fleet) => {
                let yaml = std::fs::read_to_string(&fleet.kubeconfig)?;
                let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml)?;
                let options = kube::config::KubeConfigOptions {
                    context: Some(name.to_owned()),
                    ..Default::default()
                };
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
                Ok(kube::Client::try_from(config)?)
            }
        }
    }

    /// Stops member `name`'s API server, as a cluster that died.
    pub async fn stop_member(&self, name: &str) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Embedded(fleet) => Ok(fleet.server.remove_cluster(name).await?),
            Backend::Kube(fleet) => fleet.hub.stop_member(name).await,
        }
    }

    /// Applies every YAML document in `yaml` to the hub with server-side apply (as
    /// `kubectl apply --server-side` does), resolving each kind through discovery.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        apply(&self.hub, yaml).await
    }

    /// The kubeconfig a user would export: contexts `flotilla-hub` (current) and one per
    /// member.
    pub fn kubeconfig(&self) -> PathBuf {
        match &self.backend {
            Backend::Embedded(fleet) => fleet.server.kubeconfig_path().to_owned(),
            Backend::Kube(fleet) => fleet.kubeconfig.clone(),
        }
    }

    /// Stops the controllers and simulators, then the servers.
    pub async fn stop(self) {
        match self.backend {
            Backend::Embedded(fleet) => fleet.stop().await,
            Backend::Kube(fleet) => {
                let _ = fleet.running.stop().await;
            }
        }
    }
}

/// A hub control plane and one per member, the members registered and simulated as `up` does,
/// and the hub's controllers running against the hub with its administrator's kubeconfig.
async fn start_on_kube(
    mut options: UpOptions,
    dir: &tempfile::TempDir,
) -> anyhow::Result<KubeFleet> {
    // Each fleet caches its GitRepos apart, as `up` does in its data directory.
    options.hub.controller_options.gitrepo.cache_dir = Some(dir.path().join("gitrepo"));
    let hub = TestHub::start_on(ServerKind::Kube).await?;
    let stop = CancellationToken::new();
    let mut servers: Vec<(String, MemberServer)> =
        vec![(flotilla::up::HUB_CONTEXT.to_owned(), hub.server())];
    let mut members = Vec::new();
    let mut simulators = Vec::new();
    // The members' control planes start together; each takes seconds.
    let names: Vec<String> = (1..=options.members)
        .map(flotilla::up::member_name)
        .collect();
    let started =
        futures::future::try_join_all(names.iter().map(|name| hub.create_member(name))).await?;
    for ((index, name), server) in (1..).zip(names).zip(started) {
        let local = LocalMember {
            index,
            name: name.clone(),
            url: server.url.clone(),
            token: server.token.clone(),
            ca_pem: server.ca_pem.clone(),
            client: server.client().await?,
        };
        if let Some(simulating) =
            flotilla::up::start_member(&hub.client, &local, options.simulator.as_ref(), &stop)
                .await?
        {
            simulators.push(simulating);
        }
        servers.push((name.clone(), server));
        members.push(name);
    }
    let contexts: Vec<(&str, &MemberServer)> =
        servers.iter().map(|(name, s)| (name.as_str(), s)).collect();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        flotilla_testing::kubeconfig_with_contexts(&contexts, flotilla::up::HUB_CONTEXT),
    )?;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(KubeFleet {
        hub,
        members,
        simulated: options.simulator.is_some(),
        running: Running::start(config, options.hub, simulators, stop),
        kubeconfig,
    })
}

/// Applies every YAML document in `yaml` through `client` with server-side apply (manager
/// `e2e`, forced), resolving each kind through discovery.
pub async fn apply(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
    for document in yaml.split("\n---") {
        if document.trim().is_empty() {
            continue;
        }
        let object: serde_json::Value =
            serde_saphyr::from_str(document).with_context(|| format!("parsing {document}"))?;
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {api_version} {kind}"))?;
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(ns) if capabilities.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            _ if capabilities.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), "default", &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {kind} {name}"))?;
    }
    Ok(())
}

pub use flotilla_testing::{eventually, kubectl};
