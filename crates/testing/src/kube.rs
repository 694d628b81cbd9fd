//! A real Kubernetes control plane for tests: etcd, kube-apiserver (token authentication, RBAC)
//! and kube-controller-manager (namespace, garbage-collector, service-account, token and
//! storage-protection controllers) on 127.0.0.1 with fresh data directories and free ports, built by
//! `tests/kube/build.sh` into a per-user cache. Torn down in order (controller manager and
//! API server before etcd, SIGKILL for what is left, the directory removed) when dropped, and by
//! a watchdog process if the test process dies first, so nothing outlives the test binary.
//!
//! [`ControlPlane::shared`] gives the tests of one test binary run one control plane between
//! them (each test in a namespace of its own), whether the runner runs them in one process
//! (`cargo test`) or one process each (nextest): the first test to ask starts it under a file
//! lock, later ones find it, and its watchdog stops it once the runner has exited or no test
//! process has used it for half a minute.

use std::{
    fs,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use kube::{
    Client,
    config::{KubeConfigOptions, Kubeconfig},
};

/// Where the binaries are: `FLOTILLA_KUBE_BIN`, else what `tests/kube/build.sh --print` says.
///
/// # Errors
///
/// When the control plane has not been built (`make kube` builds it).
pub fn binaries() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("FLOTILLA_KUBE_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/kube/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg("--print")
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("the real control plane is not built: run `make kube` (tests/kube/build.sh)");
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

/// A running control plane.
pub struct ControlPlane {
    /// The API server's URL.
    pub url: String,
    /// A token of a `system:masters` user.
    pub token: String,
    /// The CA bundle the API server's serving certificate chains to (PEM).
    pub ca_pem: String,
    /// A kubeconfig for the admin user.
    pub kubeconfig: PathBuf,
    dir: Option<tempfile::TempDir>,
    /// kube-controller-manager, kube-apiserver, etcd: the order they are stopped in.
    processes: Vec<Child>,
    watchdog: Option<Child>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(binary: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let out = fs::File::create(log)?;
    let err = out.try_clone()?;
    Command::new(binary)
        .args(args)
        // A group of its own: a test runner killing a timed-out test's process group leaves
        // the control plane to its watchdog, which stops it in order.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl ControlPlane {
    /// Starts etcd, kube-apiserver and kube-controller-manager and waits for `/readyz`.
    ///
    /// # Errors
    ///
    /// When the binaries are missing or the API server is not ready within a minute.
    pub async fn start() -> anyhow::Result<ControlPlane> {
        // Free ports are picked, released and bound again by the servers: another process may
        // take one in between. Such a start is retried with other ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once().await {
                Err(e) if attempt < 4 && format!("{e:#}").contains("address already in use") => {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn start_once() -> anyhow::Result<ControlPlane> {
        let bin = binaries()?;
        let dir = tempfile::Builder::new()
            .prefix("flotilla-kube-")
            .tempdir()?;
        let d = dir.path().to_owned();
        let (etcd_port, peer_port, port) = (free_port()?, free_port()?, free_port()?);
        let token = format!("flotilla-test-{}", uuid_like());
        fs::write(
            d.join("tokens.csv"),
            format!("{token},admin,admin,system:masters\n"),
        )?;
        let key = rcgen::KeyPair::generate()?;
        fs::write(d.join("sa.key"), key.serialize_pem())?;
        fs::write(d.join("sa.pub"), key.public_key_pem())?;
        let s = |p: &Path| p.display().to_string();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");

        let mut plane = ControlPlane {
            url: format!("https://127.0.0.1:{port}"),
            token,
            ca_pem: String::new(),
            kubeconfig: d.join("kubeconfig"),
            dir: Some(dir),
            processes: Vec::new(),
            watchdog: None,
        };
        let etcd = spawn(
            &bin.join("etcd"),
            &[
                "--name".into(),
                "local".into(),
                "--data-dir".into(),
                s(&d.join("etcd")),
                "--listen-client-urls".into(),
                etcd_url.clone(),
                "--advertise-client-urls".into(),
                etcd_url.clone(),
                "--listen-peer-urls".into(),
                peer_url.clone(),
                "--initial-advertise-peer-urls".into(),
                peer_url.clone(),
                "--initial-cluster".into(),
                format!("local={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level".into(),
                "warn".into(),
            ],
            &d.join("etcd.log"),
        )?;
        plane.processes.push(etcd);
        let apiserver = spawn(
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={port}"),
                format!("--cert-dir={}", s(&d.join("certs"))),
                format!("--token-auth-file={}", s(&d.join("tokens.csv"))),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", s(&d.join("sa.pub"))),
                format!(
                    "--service-account-signing-key-file={}",
                    s(&d.join("sa.key"))
                ),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--allow-privileged=true".into(),
                "-v=0".into(),
            ],
            &d.join("kube-apiserver.log"),
        )?;
        plane.processes.insert(0, apiserver);
        plane.watch_parent()?;
        plane.wait_ready(&d).await?;

        let controller_manager = spawn(
            &bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", s(&plane.kubeconfig)),
                "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token,clusterrole-aggregation,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller".into(),
                format!("--service-account-private-key-file={}", s(&d.join("sa.key"))),
                format!("--root-ca-file={}", s(&d.join("certs/apiserver.crt"))),
                "--leader-elect=false".into(),
                "--use-service-account-credentials=false".into(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=0".into(),
            ],
            &d.join("kube-controller-manager.log"),
        )?;
        plane.processes.insert(0, controller_manager);
        plane.watch_parent()?;
        Ok(plane)
    }

    /// Waits for the serving certificate, writes the kubeconfig and waits for `/readyz`.
    async fn wait_ready(&mut self, d: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let log = d.join("kube-apiserver.log");
        let cert = d.join("certs/apiserver.crt");
        loop {
            if let Ok(pem) = fs::read_to_string(&cert)
                && pem.contains("END CERTIFICATE")
            {
                self.ca_pem = pem;
                break;
            }
            if Instant::now() > deadline {
                bail!("kube-apiserver wrote no certificate:\n{}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        fs::write(
            &self.kubeconfig,
            crate::kubeconfig_yaml(&self.url, &self.token, &self.ca_pem),
        )?;
        let client = self.client().await?;
        loop {
            let request = http::Request::get("/readyz").body(Vec::new())?;
            if let Ok(body) = client.request_text(request).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if let Some(status) = self.processes[0].try_wait()? {
                bail!("kube-apiserver exited ({status}):\n{}", tail(&log));
            }
            if let Some(status) = self.processes[1].try_wait()? {
                bail!("etcd exited ({status}):\n{}", tail(&d.join("etcd.log")));
            }
            if Instant::now() > deadline {
                bail!("kube-apiserver was not ready within 90s:\n{}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A client for the admin user.
    ///
    /// # Errors
    ///
    /// When the kubeconfig cannot be read.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// (Re)starts the watchdog that kills the processes and removes the directory if this
    /// test process dies without dropping the control plane.
    fn watch_parent(&mut self) -> anyhow::Result<()> {
        if let Some(mut old) = self.watchdog.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let pids: Vec<String> = self.processes.iter().map(|c| c.id().to_string()).collect();
        let pids = pids.join(" ");
        let dir = self
            .dir
            .as_ref()
            .map(|d| d.path().display().to_string())
            .unwrap_or_default();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -TERM {pids} 2>/dev/null; \
             sleep 3; kill -KILL {pids} 2>/dev/null; rm -rf '{dir}'",
            parent = std::process::id()
        );
        // In a session of its own: a test runner that kills the test's process group on a
        // timeout must not take the watchdog with it.
        self.watchdog = Some(
            Command::new("setsid")
                .args(["sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        Ok(())
    }

    /// Stops the control plane, as a dead cluster would: SIGTERM to the controller manager
    /// and the API server, then etcd, SIGKILL after a few seconds.
    pub fn stop(&mut self) {
        for child in &mut self.processes {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.processes.clear();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Where a control plane shared by a test binary's tests is and how to reach it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SharedPlane {
    /// The API server's URL.
    pub url: String,
    /// A token of a `system:masters` user.
    pub token: String,
    /// The CA bundle of the API server's serving certificate (PEM).
    pub ca_pem: String,
    /// A kubeconfig for the admin user.
    pub kubeconfig: PathBuf,
}

impl SharedPlane {
    /// A client for the admin user.
    ///
    /// # Errors
    ///
    /// When the kubeconfig cannot be read.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    async fn ready(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
            return false;
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await,
            Ok(Ok(body)) if body.trim() == "ok"
        )
    }
}

/// Held (a shared lock on `<dir>/users`) for as long as this process may use a shared plane.
static USERS: OnceLock<fs::File> = OnceLock::new();

/// How long a shared plane no test process uses is kept (seconds).
const SHARED_IDLE_SECS: u32 = 30;

/// Locks `path` (created if missing) exclusively, off the async runtime's threads.
async fn lock_exclusive(path: PathBuf) -> anyhow::Result<fs::File> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<fs::File> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await?
}

impl ControlPlane {
    /// The control plane the tests of this test binary run share, started by the first to
    /// ask. Keyed by the runner's process (the test process's parent) and the binary's name.
    ///
    /// # Errors
    ///
    /// When no control plane can be found or started.
    pub async fn shared() -> anyhow::Result<SharedPlane> {
        let exe = std::env::current_exe()?;
        let name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let runner = std::os::unix::process::parent_id();
        let dir = std::env::temp_dir().join(format!("flotilla-kube-shared-{runner}-{name}"));
        // The watchdog removes the directory (under the setup lock) when it stops the plane:
        // one removed under our feet is made again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::attach(&dir, runner).await {
                Err(e)
                    if attempt < 5
                        && e.downcast_ref::<std::io::Error>()
                            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// Finds the shared plane in `dir`, or starts it with a watchdog on `runner`.
    async fn attach(dir: &Path, runner: u32) -> anyhow::Result<SharedPlane> {
        fs::create_dir_all(dir)?;
        if USERS.get().is_none() {
            let users = dir.join("users");
            let file = tokio::task::spawn_blocking(move || -> anyhow::Result<fs::File> {
                let file = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&users)?;
                file.lock_shared()?;
                Ok(file)
            })
            .await??;
            let _ = USERS.set(file);
        }
        let _setup = lock_exclusive(dir.join("lock")).await?;
        let state = dir.join("plane.json");
        if let Ok(text) = fs::read_to_string(&state)
            && let Ok(plane) = serde_json::from_str::<SharedPlane>(&text)
            && plane.ready().await
        {
            return Ok(plane);
        }
        let mut plane = Self::start().await?;
        let shared = SharedPlane {
            url: plane.url.clone(),
            token: plane.token.clone(),
            ca_pem: plane.ca_pem.clone(),
            kubeconfig: plane.kubeconfig.clone(),
        };
        // From here on the shared watchdog owns the processes and the directory.
        let pids: Vec<String> = plane.processes.iter().map(|c| c.id().to_string()).collect();
        let plane_dir = plane.dir.take().map(tempfile::TempDir::keep);
        plane.processes.clear();
        if let Some(mut own) = plane.watchdog.take() {
            let _ = own.kill();
            let _ = own.wait();
        }
        let q = |p: &Path| format!("'{}'", p.display());
        let script = format!(
            "idle=0; \
             while kill -0 {runner} 2>/dev/null; do sleep 1; \
               if flock -xn {users} true; then idle=$((idle+1)); else idle=0; fi; \
               if [ $idle -ge {SHARED_IDLE_SECS} ]; then \
                 exec 9>>{lock}; flock -x 9; \
                 if flock -xn {users} true; then break; fi; \
                 flock -u 9; exec 9>&-; idle=0; \
               fi; \
             done; \
             exec 9>>{lock}; flock -x 9; rm -f {state}; \
             kill -TERM {pids} 2>/dev/null; sleep 3; kill -KILL {pids} 2>/dev/null; \
             rm -rf {plane_dir} {dir}",
            users = q(&dir.join("users")),
            lock = q(&dir.join("lock")),
            state = q(&state),
            pids = pids.join(" "),
            plane_dir = plane_dir.as_deref().map(q).unwrap_or_else(|| "''".into()),
            dir = q(dir),
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the shared control plane's watchdog")?;
        let tmp = dir.join("plane.json.tmp");
        fs::write(&tmp, serde_json::to_vec(&shared)?)?;
        fs::rename(&tmp, &state)?;
        Ok(shared)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// A random-enough token suffix (time and process id; tests only).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id())
}
