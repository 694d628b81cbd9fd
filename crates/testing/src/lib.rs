//! Test support shared by the crates' tests and benchmarks and by `tests/e2e`: an in-memory hub
//! API server with the Flotilla CRDs installed, member clusters registered on it, a polling
//! helper, a finder for a real kubectl, and [`fixtures`] (builders for Clusters and
//! ResourceBindings). Only ever a dev-dependency: production code must not link it (it links
//! the embedded API server).

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use flotilla_apiserver::{Config, Server};
use flotilla_controllers::fleet::{self, Member};
use flotilla_runtime::{Context, ContextOptions, metrics::Metrics};
use futures::future::BoxFuture;
use kube::Client;
use tokio_util::sync::CancellationToken;

pub mod fixtures;

/// An in-memory hub API server in a temporary directory, with every Flotilla CRD Established.
pub struct TestHub {
    /// The embedded API server; members are logical clusters of it.
    pub server: Server,
    /// A client for the hub.
    pub client: Client,
    dir: tempfile::TempDir,
}

impl TestHub {
    /// Starts the server and installs the CRDs. Needs a multi-threaded Tokio runtime.
    pub async fn start() -> anyhow::Result<TestHub> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::new(dir.path());
        config.in_memory = true;
        let server = Server::start(config).await?;
        let client = server.client(None).await?;
        fleet::install_crds(&client).await?;
        Ok(TestHub {
            server,
            client,
            dir,
        })
    }

    /// Creates a logical member cluster and registers it on the hub as a Push Cluster with
    /// working credentials, the way `flotilla up` does.
    pub async fn add_member(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> anyhow::Result<Member> {
        let member = Member {
            name: name.to_owned(),
            api_endpoint: self.server.create_cluster(name).await?,
            token: self.server.admin_token().to_owned(),
            ca_pem: self.server.ca_pem().to_owned(),
            labels,
            region: None,
        };
        fleet::register_member(&self.client, &member).await?;
        Ok(member)
    }

    /// The kubeconfig the server wrote, with one context per logical cluster.
    pub fn kubeconfig(&self) -> &Path {
        self.server.kubeconfig_path()
    }

    /// The temporary directory holding the server's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
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
