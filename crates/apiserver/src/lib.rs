//! flotilla-apiserver: an embedded Kubernetes-compatible API server hosting many logical
//! clusters in one process (the default at `/`, others under `/clusters/<name>`), over HTTPS
//! with a generated CA and an admin bearer token, with durable SQLite storage by default.
//! Controllers must never link this crate: they talk to it through `kube::Client` only.
//!
//! The whole API is [`Config`], [`Server`] (start, URLs, credentials, logical clusters, a kube
//! client, [`Server::request_counts`], shutdown), [`run`], [`Error`]/[`Result`], and the
//! request-counter types [`RequestCounts`], [`RequestKey`] and [`Verb`]. Everything else is
//! private; the server's behaviour is tested over HTTP. [`FaultInjection`] and
//! `Server::storage_faults` are hidden hooks for this crate's own storage tests.

#![warn(unreachable_pub)]

mod app;
mod codec;
mod errors;
mod gc;
mod handlers;
mod kubeconfig;
mod protection;
mod registry;
mod requests;
mod selectors;
mod storage;
mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

pub use crate::errors::{Error, Result};

/// The Kubernetes version the server reports from `/version` unless told otherwise
/// (`v1.X.0`, the version of the API types it is built with).
pub fn default_kubernetes_version() -> String {
    handlers::discovery::Version::built_in().git()
}

/// Whether `version` is one the server can report (`1.34`, `v1.34` or `v1.34.2`).
pub fn valid_kubernetes_version(version: &str) -> bool {
    handlers::discovery::Version::parse(version).is_some()
}
pub use crate::requests::{RequestCounts, RequestKey, Verb};
#[doc(hidden)]
pub use crate::storage::sqlite::FaultInjection;

use crate::app::{AppState, DEFAULT_CLUSTER};
use crate::storage::ClusterStore;

/// Server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where certificates, the token, the kubeconfig and the database live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// Port (0 picks a free one).
    pub port: u16,
    /// Keep objects in memory only (tests).
    pub in_memory: bool,
    /// The kubeconfig context (and cluster entry) naming the root cluster: `default` unless
    /// a caller names it (`flotilla up` calls it `flotilla-hub`). Logical clusters' contexts
    /// are their own names.
    pub root_context: String,
    /// The Kubernetes version `/version` reports (`1.34`, `v1.34.2`); `None`: the version of
    /// the k8s-openapi types the server is built with.
    pub kubernetes_version: Option<String>,
}

impl Config {
    /// Defaults: 127.0.0.1, an ephemeral port, durable storage.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            in_memory: false,
            root_context: DEFAULT_CLUSTER.to_owned(),
            kubernetes_version: None,
        }
    }
}

/// A running server.
pub struct Server {
    state: Arc<AppState>,
    url: String,
    kubeconfig_path: PathBuf,
    root_context: String,
    ca_pem: String,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    kubeconfig_lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

fn load_or_create_token(dir: &Path) -> Result<String> {
    let path = dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => create_token(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_token(&path),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

fn create_token(path: &Path) -> Result<String> {
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    tls::write_private(path, &token)?;
    Ok(token)
}

/// Valid logical cluster name: a DNS label other than the reserved `default`.
fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name != DEFAULT_CLUSTER
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Create the namespaces every cluster starts with, each with its `default` ServiceAccount.
async fn seed(store: &ClusterStore) -> Result<()> {
    let now = handlers::crud::now();
    store
        .write(|txn| {
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                if txn.state().get(registry::NAMESPACE_KEY, "", ns).is_none() {
                    txn.put(
                        registry::NAMESPACE_KEY,
                        "",
                        ns,
                        json!({
                            "apiVersion": "v1",
                            "kind": "Namespace",
                            "metadata": {
                                "name": ns,
                                "uid": uuid::Uuid::new_v4().to_string(),
                                "creationTimestamp": now,
                                "labels": {"kubernetes.io/metadata.name": ns},
                            },
                            "spec": {"finalizers": ["kubernetes"]},
                            "status": {"phase": "Active"},
                        }),
                    );
                }
                handlers::serviceaccounts::ensure_default(txn, ns);
            }
            Ok(())
        })
        .await
}

impl Server {
    /// Start serving. Creates the data directory, certificates, token and kubeconfig as needed
    /// and loads stored clusters.
    pub async fn start(config: Config) -> Result<Server> {
        let version = match &config.kubernetes_version {
            Some(v) => handlers::discovery::Version::parse(v)
                .ok_or_else(|| Error::InvalidKubernetesVersion(v.clone()))?,
            None => handlers::discovery::Version::built_in(),
        };
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let token = load_or_create_token(&dir)?;
        let certs = tls::load_or_create(&dir, config.bind_address)?;
        let tls_config = tls::server_config(&certs)?;

        let mut clusters: HashMap<String, Arc<ClusterStore>> = HashMap::new();
        let persist = if config.in_memory {
            None
        } else {
            let db = dir.join("data.db");
            let (writer, loaded) = tokio::task::spawn_blocking(move || storage::sqlite::open(&db))
                .await
                .map_err(|e| Error::internal(format!("open storage: {e}")))??;
            for (name, cluster) in loaded {
                let store = ClusterStore::restore(&name, cluster, Some(writer.clone()));
                clusters.insert(name, Arc::new(store));
            }
            Some(writer)
        };
        if !clusters.contains_key(DEFAULT_CLUSTER) {
            if let Some(w) = &persist {
                w.create_cluster(DEFAULT_CLUSTER).await?;
            }
            let store = ClusterStore::new(DEFAULT_CLUSTER, persist.clone());
            seed(&store).await?;
            clusters.insert(DEFAULT_CLUSTER.to_string(), Arc::new(store));
        }

        let addr = SocketAddr::new(config.bind_address, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                address: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Bind {
            address: addr.to_string(),
            source,
        })?;
        let host = match config.bind_address {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = format!("https://{host}:{}", local.port());

        let state = Arc::new(AppState {
            clusters: RwLock::new(clusters),
            token,
            ca_pem: Arc::from(certs.ca_pem.as_str()),
            persist,
            bookmark_interval: handlers::watch::BOOKMARK_INTERVAL,
            requests: requests::RequestLog::default(),
            version,
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        for store in state
            .clusters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            tokio::spawn(gc::run(store.clone(), shutdown.subscribe()));
        }
        let span = tracing::info_span!("apiserver", url = %url);
        let task =
            tokio::spawn(serve(listener, tls_config, state.clone(), shutdown_rx).instrument(span));
        let server = Server {
            state,
            url,
            kubeconfig_path: dir.join("kubeconfig"),
            root_context: config.root_context.clone(),
            ca_pem: certs.ca_pem,
            shutdown,
            task,
            kubeconfig_lock: std::sync::Mutex::new(()),
        };
        server.write_kubeconfig()?;
        tracing::info!(url = %server.url, kubeconfig = %server.kubeconfig_path.display(), "apiserver listening");
        Ok(server)
    }

    /// Base URL of the default cluster, e.g. `https://127.0.0.1:6443`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Path of the kubeconfig this server wrote.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.state.token
    }

    /// CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// URL of a logical cluster (`default` is the root).
    pub fn cluster_url(&self, name: &str) -> String {
        if name == DEFAULT_CLUSTER {
            self.url.clone()
        } else {
            format!("{}/clusters/{name}", self.url)
        }
    }

    /// Names of all logical clusters, sorted.
    pub fn clusters(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .state
            .clusters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Create a logical cluster; returns its URL. It gets its own storage, RV sequence and
    /// kubeconfig context.
    pub async fn create_cluster(&self, name: &str) -> Result<String> {
        if !valid_cluster_name(name) || name == self.root_context {
            return Err(Error::InvalidClusterName(name.to_string()));
        }
        if self.state.cluster(name).is_some() {
            return Err(Error::ClusterExists(name.to_string()));
        }
        if let Some(w) = &self.state.persist {
            w.create_cluster(name).await?;
        }
        let store = Arc::new(ClusterStore::new(name, self.state.persist.clone()));
        seed(&store).await?;
        {
            let mut map = self
                .state
                .clusters
                .write()
                .unwrap_or_else(|p| p.into_inner());
            if map.contains_key(name) {
                return Err(Error::ClusterExists(name.to_string()));
            }
            // A new cluster starts from zero even if one of that name existed before.
            self.state.requests.forget_cluster(name);
            map.insert(name.to_string(), store.clone());
        }
        tokio::spawn(gc::run(store, self.shutdown.subscribe()));
        self.write_kubeconfig()?;
        Ok(self.cluster_url(name))
    }

    /// Remove a logical cluster and everything stored in it.
    pub async fn remove_cluster(&self, name: &str) -> Result<()> {
        if name == DEFAULT_CLUSTER {
            return Err(Error::InvalidClusterName(name.to_string()));
        }
        let removed = self
            .state
            .clusters
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or_else(|| Error::ClusterNotFound(name.to_string()))?;
        self.state.requests.forget_cluster(name);
        self.write_kubeconfig()?;
        removed.destroy().await
    }

    /// A kube client for a logical cluster (None = the root cluster), built from the
    /// kubeconfig.
    pub async fn client(&self, cluster: Option<&str>) -> Result<kube::Client> {
        let name = match cluster {
            None | Some(DEFAULT_CLUSTER) => self.root_context.as_str(),
            Some(name) => name,
        };
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig_path)
            .map_err(|e| Error::BuildClient(e.to_string()))?;
        let options = kube::config::KubeConfigOptions {
            context: Some(name.to_string()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| Error::BuildClient(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| Error::BuildClient(e.to_string()))
    }

    /// How many requests each logical cluster has served since the server started, by verb
    /// and resource: e.g. `request_counts().get("default", Verb::Watch, "", "configmaps")`.
    /// A snapshot; see [`RequestCounts`] for what is counted. Counting is always on and
    /// costs one short mutex lock per request.
    pub fn request_counts(&self) -> RequestCounts {
        self.state.requests.snapshot()
    }

    fn write_kubeconfig(&self) -> Result<()> {
        let _guard = self
            .kubeconfig_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut entries = vec![(self.root_context.clone(), self.url.clone())];
        for name in self.clusters() {
            if name != DEFAULT_CLUSTER {
                let url = self.cluster_url(&name);
                entries.push((name, url));
            }
        }
        let text = kubeconfig::render(&self.ca_pem, &self.state.token, &entries);
        // Regenerated on every start and cluster change: no fsync needed.
        tls::write_file(&self.kubeconfig_path, &text, false)
    }

    /// The durable writer's fault-injection point (pause commits, fail the next commits), for
    /// this crate's tests only; None in memory. Not part of the supported API.
    #[doc(hidden)]
    pub fn storage_faults(&self) -> Option<FaultInjection> {
        self.state.persist.as_ref().map(|w| w.faults().clone())
    }

    /// Stop accepting requests and close open connections.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        if let Some(w) = &self.state.persist
            && let Err(e) = w.flush().await
        {
            tracing::warn!("flush storage on shutdown: {e}");
        }
    }
}

async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let router = app::app(state);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let svc = TowerToHyperService::new(router.clone());
                conns.spawn(tracing::Instrument::in_current_span(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                        .await;
                }));
            }
        }
    }
    conns.shutdown().await;
}
