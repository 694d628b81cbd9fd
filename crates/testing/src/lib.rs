//! Test support shared by the crates' tests and benchmarks and by `tests/e2e`: a hub API server
//! (the embedded one in memory, or a real control plane with `FLOTILLA_TEST_SERVER=kube`, see
//! [`kube`]) with the Flotilla CRDs installed, member clusters registered on it, a polling
//! helper, a finder for a real kubectl, [`fixtures`] (builders for Clusters and
//! ResourceBindings) and [`health`] (Argo CD's and kstatus's verdicts on an object). Only ever
//! a dev-dependency: production code must not link it (it links the embedded API server).

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use ::kube::Client;
use flotilla_apiserver::{Config, Server};
use flotilla_controllers::fleet::{self, Member};
use flotilla_runtime::{Context, ContextOptions, metrics::Metrics};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

pub mod fixtures;
pub mod git;
pub mod health;
pub mod kube;

/// Which API server tests run against, from `FLOTILLA_TEST_SERVER`: `embedded` (the default:
/// Flotilla's own API server, in process) or `kube` (real control planes, see [`kube`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// The embedded API server; members are logical clusters of it.
    Embedded,
    /// etcd + kube-apiserver + kube-controller-manager per cluster.
    Kube,
}

impl ServerKind {
    /// The kind `FLOTILLA_TEST_SERVER` asks for.
    ///
    /// # Errors
    ///
    /// When the variable holds anything but `embedded` or `kube`.
    pub fn from_env() -> anyhow::Result<ServerKind> {
        match std::env::var("FLOTILLA_TEST_SERVER").as_deref() {
            Err(_) | Ok("") | Ok("embedded") => Ok(ServerKind::Embedded),
            Ok("kube") => Ok(ServerKind::Kube),
            Ok(other) => anyhow::bail!(
                "FLOTILLA_TEST_SERVER={other:?}: use embedded or kube (`make test` runs both)"
            ),
        }
    }
}

/// Where a member cluster's API server is and how to reach it as an administrator.
#[derive(Clone, Debug)]
pub struct MemberServer {
    /// The API server URL.
    pub url: String,
    /// An administrator's bearer token.
    pub token: String,
    /// The CA bundle of its serving certificate (PEM).
    pub ca_pem: String,
}

/// A kubeconfig (YAML) with one context: `url`, trusting `ca_pem`, as the holder of `token`.
pub fn kubeconfig_yaml(url: &str, token: &str, ca_pem: &str) -> String {
    let server = MemberServer {
        url: url.to_owned(),
        token: token.to_owned(),
        ca_pem: ca_pem.to_owned(),
    };
    kubeconfig_with_contexts(&[("server", &server)], "server")
}

/// A kubeconfig (JSON, which is YAML) with one context per `(name, server)`, its cluster and
/// user named the same, and `current` as the current context.
pub fn kubeconfig_with_contexts(contexts: &[(&str, &MemberServer)], current: &str) -> String {
    use base64::Engine as _;
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut named = Vec::new();
    for (name, server) in contexts {
        let ca = base64::engine::general_purpose::STANDARD.encode(&server.ca_pem);
        clusters.push(serde_json::json!({"name": name, "cluster": {
            "server": server.url, "certificate-authority-data": ca}}));
        users.push(serde_json::json!({"name": name, "user": {"token": server.token}}));
        named.push(serde_json::json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    serde_json::json!({
        "apiVersion": "v1", "kind": "Config", "clusters": clusters, "users": users,
        "contexts": named, "current-context": current,
    })
    .to_string()
}

impl MemberServer {
    /// The member a registration describes, reached with the token it registered.
    ///
    /// # Errors
    ///
    /// When the registration holds a kubeconfig rather than a token.
    pub fn of(member: &Member) -> anyhow::Result<MemberServer> {
        match &member.credentials {
            fleet::Credentials::Token { token, ca_pem } => Ok(MemberServer {
                url: member.api_endpoint.clone(),
                token: token.clone(),
                ca_pem: ca_pem.clone(),
            }),
            fleet::Credentials::Kubeconfig(_) => {
                anyhow::bail!("member {} was registered with a kubeconfig", member.name)
            }
        }
    }

    /// An administrator's client for this member.
    ///
    /// # Errors
    ///
    /// When the credentials do not make a client.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let yaml = kubeconfig_yaml(&self.url, &self.token, &self.ca_pem);
        let kubeconfig = ::kube::config::Kubeconfig::from_yaml(&yaml)?;
        let config = ::kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &::kube::config::KubeConfigOptions::default(),
        )
        .await?;
        Ok(Client::try_from(config)?)
    }
}

enum Backend {
    Embedded {
        server: Server,
        _dir: tempfile::TempDir,
    },
    Kube {
        hub: Hub,
        members: Mutex<HashMap<String, kube::ControlPlane>>,
    },
}

/// A real hub: this test's own control plane, or the one the test binary's tests share.
enum Hub {
    Own(Box<kube::ControlPlane>),
    Shared(kube::SharedPlane),
}

impl Hub {
    fn server(&self) -> MemberServer {
        let (url, token, ca_pem) = match self {
            Hub::Own(p) => (&p.url, &p.token, &p.ca_pem),
            Hub::Shared(p) => (&p.url, &p.token, &p.ca_pem),
        };
        MemberServer {
            url: url.clone(),
            token: token.clone(),
            ca_pem: ca_pem.clone(),
        }
    }
}

/// A hub API server for a test with every Flotilla CRD Established: the embedded server (in
/// memory) or a real control plane, as [`ServerKind::from_env`] says; members are logical
/// clusters of the embedded server, or control planes of their own.
pub struct TestHub {
    /// A client for the hub.
    pub client: Client,
    kubeconfig: PathBuf,
    backend: Backend,
}

impl TestHub {
    /// Starts the hub the environment asks for and installs the CRDs. Needs a multi-threaded
    /// Tokio runtime.
    pub async fn start() -> anyhow::Result<TestHub> {
        Self::start_on(ServerKind::from_env()?).await
    }

    /// A hub this test may share with the other tests of its test binary (on a real control
    /// plane: one for the binary's run, see [`kube::ControlPlane::shared`]; the embedded server
    /// is cheap enough to start for each). For tests that keep to namespaces of their own and
    /// cluster-scoped names no other test uses. Needs a multi-threaded Tokio runtime.
    pub async fn shared() -> anyhow::Result<TestHub> {
        match ServerKind::from_env()? {
            ServerKind::Embedded => Self::start_on(ServerKind::Embedded).await,
            ServerKind::Kube => {
                let hub = kube::ControlPlane::shared().await?;
                let client = hub.client().await?;
                fleet::install_crds(&client).await?;
                Ok(TestHub {
                    client,
                    kubeconfig: hub.kubeconfig.clone(),
                    backend: Backend::Kube {
                        hub: Hub::Shared(hub),
                        members: Mutex::default(),
                    },
                })
            }
        }
    }

    /// Starts a hub of `kind` and installs the CRDs.
    pub async fn start_on(kind: ServerKind) -> anyhow::Result<TestHub> {
        let (client, kubeconfig, backend) = match kind {
            ServerKind::Embedded => {
                let dir = tempfile::tempdir()?;
                let mut config = Config::new(dir.path());
                config.in_memory = true;
                let server = Server::start(config).await?;
                let client = server.client(None).await?;
                let kubeconfig = server.kubeconfig_path().to_owned();
                (client, kubeconfig, Backend::Embedded { server, _dir: dir })
            }
            ServerKind::Kube => {
                let hub = kube::ControlPlane::start().await?;
                let client = hub.client().await?;
                let kubeconfig = hub.kubeconfig.clone();
                (
                    client,
                    kubeconfig,
                    Backend::Kube {
                        hub: Hub::Own(Box::new(hub)),
                        members: Mutex::default(),
                    },
                )
            }
        };
        fleet::install_crds(&client).await?;
        Ok(TestHub {
            client,
            kubeconfig,
            backend,
        })
    }

    /// Which kind of server this hub is.
    pub fn kind(&self) -> ServerKind {
        match self.backend {
            Backend::Embedded { .. } => ServerKind::Embedded,
            Backend::Kube { .. } => ServerKind::Kube,
        }
    }

    /// The embedded server, for what only it can tell (such as request counts).
    pub fn embedded(&self) -> Option<&Server> {
        match &self.backend {
            Backend::Embedded { server, .. } => Some(server),
            Backend::Kube { .. } => None,
        }
    }

    /// Starts a member cluster's API server without registering it on the hub.
    pub async fn create_member(&self, name: &str) -> anyhow::Result<MemberServer> {
        match &self.backend {
            Backend::Embedded { server, .. } => Ok(MemberServer {
                url: server.create_cluster(name).await?,
                token: server.admin_token().to_owned(),
                ca_pem: server.ca_pem().to_owned(),
            }),
            Backend::Kube { members, .. } => {
                let plane = kube::ControlPlane::start().await?;
                let member = MemberServer {
                    url: plane.url.clone(),
                    token: plane.token.clone(),
                    ca_pem: plane.ca_pem.clone(),
                };
                members
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.to_owned(), plane);
                Ok(member)
            }
        }
    }

    /// Stops a member's API server, as a cluster that died.
    pub async fn stop_member(&self, name: &str) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Embedded { server, .. } => Ok(server.remove_cluster(name).await?),
            Backend::Kube { members, .. } => {
                let plane = members
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(name);
                let Some(mut plane) = plane else {
                    anyhow::bail!("no member {name}");
                };
                tokio::task::spawn_blocking(move || plane.stop()).await?;
                Ok(())
            }
        }
    }

    /// Starts a member cluster and registers it on the hub as a Push Cluster with working
    /// credentials, the way `flotilla up` does.
    pub async fn add_member(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> anyhow::Result<Member> {
        let server = self.create_member(name).await?;
        let member = Member {
            labels,
            ..Member::local(name, &server.url, &server.token, &server.ca_pem)
        };
        fleet::register_member(&self.client, &member).await?;
        Ok(member)
    }

    /// Where the hub's API server is and its administrator's credentials.
    pub fn server(&self) -> MemberServer {
        match &self.backend {
            Backend::Embedded { server, .. } => MemberServer {
                url: server.url().to_owned(),
                token: server.admin_token().to_owned(),
                ca_pem: server.ca_pem().to_owned(),
            },
            Backend::Kube { hub, .. } => hub.server(),
        }
    }

    /// A kubeconfig for the hub (the embedded one also has a context per member).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
}

/// Controllers running on one shared context, as the hub runs them; stopped when dropped.
pub struct Controllers {
    /// The shared context they were built on.
    pub ctx: Arc<Context>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Controllers {
    /// Builds controllers with `build` on a fresh context for `client`, starts the shared
    /// caches and runs them.
    ///
    /// # Errors
    ///
    /// When `build` fails.
    pub fn start(
        client: &Client,
        build: impl FnOnce(&Arc<Context>) -> anyhow::Result<Vec<BoxFuture<'static, ()>>>,
    ) -> anyhow::Result<Controllers> {
        let ctx = Context::new(
            client.clone(),
            Arc::new(Metrics::default()),
            CancellationToken::new(),
            ContextOptions {
                member_request_timeout: Duration::from_secs(2),
            },
        );
        let running = build(&ctx)?;
        ctx.start();
        let task = tokio::spawn(async move {
            futures::future::join_all(running).await;
        });
        Ok(Controllers {
            ctx,
            task: Some(task),
        })
    }

    /// The controllers that bring Push members Ready and apply their Works — cluster-status
    /// (probing every 300 ms), cluster and execution — and the ones `more` builds.
    ///
    /// # Errors
    ///
    /// When a controller cannot be built.
    pub fn push(
        client: &Client,
        more: impl FnOnce(&Arc<Context>) -> anyhow::Result<Vec<BoxFuture<'static, ()>>>,
    ) -> anyhow::Result<Controllers> {
        use flotilla_controllers::{cluster, cluster_status, execution};
        use futures::FutureExt as _;
        Controllers::start(client, |ctx| {
            let mut running = vec![
                cluster_status::controller(
                    ctx,
                    cluster_status::Options {
                        period: Duration::from_millis(300),
                        request_timeout: Duration::from_secs(2),
                        ..Default::default()
                    },
                )?
                .boxed(),
                cluster::controller(ctx, cluster::Options::default())?.boxed(),
                execution::controller(ctx, execution::Options::default())?.boxed(),
            ];
            running.extend(more(ctx)?);
            Ok(running)
        })
    }

    /// Waits until `controller` has finished `passes` more reconciles than when called: what a
    /// test that checks something did *not* happen waits for, rather than a sleep. With a short
    /// resync every object is reconciled again in each round, so a few passes per object prove
    /// the controller looked again.
    ///
    /// # Errors
    ///
    /// When the passes do not happen within 15 seconds.
    pub async fn passes(&self, controller: &str, passes: u64) -> anyhow::Result<()> {
        let metrics = self.ctx.metrics().clone();
        let target = metrics.reconciles(controller) + passes;
        eventually(
            Duration::from_secs(15),
            &format!("{passes} more reconciles of {controller}"),
            || {
                let metrics = metrics.clone();
                async move { Ok((metrics.reconciles(controller) >= target).then_some(())) }
            },
        )
        .await
    }

    /// Stops the controllers gracefully and waits until every in-flight reconcile finished.
    pub async fn stop(mut self) {
        self.ctx.stop().cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.ctx.stop().cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The value under `key` of ConfigMap `name`, if the ConfigMap and the key exist.
///
/// # Errors
///
/// When the API server cannot be read.
pub async fn config_map_value(
    api: &::kube::Api<k8s_openapi::api::core::v1::ConfigMap>,
    name: &str,
    key: &str,
) -> anyhow::Result<Option<String>> {
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|c| c.data)
        .and_then(|d| d.get(key).cloned()))
}

/// Polls `probe` every 50 ms until it returns `Some`, failing after `timeout` with the last
/// error the probe returned.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() > deadline {
            match last_error {
                Some(error) => {
                    anyhow::bail!("timed out after {timeout:?} waiting for {what}: {error:#}")
                }
                None => anyhow::bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A versioned kubectl from the image's kubectl package (`dpkg -L kubectl`), newest first, if
/// this machine has one. Plain `kubectl` is a dispatcher that picks a version from the server's
/// `/version`, so tests call a versioned binary.
pub fn kubectl() -> Option<PathBuf> {
    ["/usr/lib/google-cloud-sdk/bin", "/usr/bin"]
        .iter()
        .flat_map(|dir| {
            ["1.33", "1.32", "1.31", "1.30", "1.29"]
                .iter()
                .map(move |version| PathBuf::from(format!("{dir}/kubectl.{version}")))
        })
        .find(|path| path.exists())
}
