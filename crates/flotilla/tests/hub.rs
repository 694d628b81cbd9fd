//! `flotilla hub` as a process against the embedded API server: leader election between two
//! and three hubs (one leads, a standby runs no controller; killing the leader hands over
//! within the lease duration plus a retry period or two; a paused leader that wakes after
//! losing the Lease stops at once and never takes it back), `/metrics` checked with promtool,
//! `/healthz` and `/readyz`, JSON logs, and SIGTERM ending the process with status 0.

use std::{
    io::{BufRead, BufReader, Read},
    net::TcpListener,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use flotilla_testing::{TestHub, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

const LEASE: &str = "3s";
const RENEW: &str = "2s";
const RETRY: &str = "500ms";

/// A `flotilla hub` child process, killed when dropped.
struct Hub {
    child: Child,
    metrics: u16,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Hub {
    fn start(kubeconfig: &Path, identity: &str, extra: &[&str]) -> Result<Hub> {
        let metrics = free_port()?;
        let child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(["hub", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--identity", identity])
            .args(["--metrics-bind-address", &format!("127.0.0.1:{metrics}")])
            .args(["--leader-elect-lease-duration", LEASE])
            .args(["--leader-elect-renew-deadline", RENEW])
            .args(["--leader-elect-retry-period", RETRY])
            .args(["--cluster-status-update-frequency", "500ms"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting flotilla hub")?;
        Ok(Hub { child, metrics })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// GET of a path on the metrics endpoint: status code and body.
    async fn get(&self, path: &str) -> Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics)).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        let code = response
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status code")?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((code, body))
    }

    /// The value of a metric line starting with `series` (0 when absent).
    async fn metric(&self, series: &str) -> Result<f64> {
        let (_, body) = self.get("/metrics").await?;
        Ok(body
            .lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Waits for the process to exit; its status and everything it wrote to stderr.
    fn wait_exit(mut self, timeout: Duration) -> Result<(ExitStatus, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    pipe.read_to_string(&mut stderr)?;
                }
                return Ok((status, stderr));
            }
            if Instant::now() > deadline {
                bail!("flotilla hub did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn signal(pid: &str, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{name} {pid} failed");
    Ok(())
}

async fn holder(leases: &Api<Lease>) -> Result<Option<(String, i32)>> {
    let Some(lease) = leases.get_opt("flotilla-hub").await? else {
        return Ok(None);
    };
    let spec = lease.spec.unwrap_or_default();
    Ok(spec
        .holder_identity
        .map(|h| (h, spec.lease_transitions.unwrap_or_default())))
}

async fn wait_holder(leases: &Api<Lease>, who: &str, within: Duration) -> Result<(Instant, i32)> {
    eventually(within, &format!("{who} holding the Lease"), || async {
        Ok(match holder(leases).await? {
            Some((h, transitions)) if h == who => Some((Instant::now(), transitions)),
            _ => None,
        })
    })
    .await
}

async fn start_hub() -> Result<TestHub> {
    let hub = TestHub::start().await?;
    hub.add_member("member1", Default::default()).await?;
    Ok(hub)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hubs_elect_one_leader_and_hand_over_when_it_dies_or_stalls() -> Result<()> {
    let test_hub = start_hub().await?;
    let kubeconfig = test_hub.kubeconfig().to_owned();
    let leases: Api<Lease> = Api::namespaced(test_hub.client.clone(), "flotilla-system");

    let a = Hub::start(&kubeconfig, "hub-a", &["--leader-elect"])?;
    wait_holder(&leases, "hub-a", Duration::from_secs(20)).await?;
    let b = Hub::start(&kubeconfig, "hub-b", &["--leader-elect"])?;
    // The standby is ready (connected, waiting) but runs no controller; the leader does.
    eventually(
        Duration::from_secs(20),
        "hub-b ready as a standby",
        || async { Ok(matches!(b.get("/readyz").await, Ok((200, _))).then_some(())) },
    )
    .await?;
    eventually(Duration::from_secs(20), "hub-a reconciling", || async {
        let n = a.metric("flotilla_controller_reconcile_total").await?;
        Ok((n > 0.0).then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        holder(&leases).await?.map(|h| h.0).as_deref(),
        Some("hub-a")
    );
    assert_eq!(b.metric("flotilla_controller_reconcile_total").await?, 0.0);

    // Kill the leader: the standby takes over within the lease duration and a retry period
    // or two of the leader's last renew.
    let renewed_before = leases
        .get("flotilla-hub")
        .await?
        .spec
        .and_then(|s| s.renew_time)
        .context("renewTime")?;
    signal(&a.pid(), "KILL")?;
    let killed = Instant::now();
    let (took_over, transitions) = wait_holder(&leases, "hub-b", Duration::from_secs(20)).await?;
    let waited = took_over - killed;
    assert!(
        waited <= Duration::from_millis(3000 + 2 * 500 + 1000),
        "hub-b took over {waited:?} after hub-a died (last renew {renewed_before:?})"
    );
    drop(a);
    eventually(Duration::from_secs(20), "hub-b reconciling", || async {
        let n = b.metric("flotilla_controller_reconcile_total").await?;
        Ok((n > 0.0).then_some(()))
    })
    .await?;

    // Pause the leader past its lease; a third hub takes over; the paused one, resumed,
    // stops at once and never takes the Lease back.
    let c = Hub::start(&kubeconfig, "hub-c", &["--leader-elect"])?;
    signal(&b.pid(), "STOP")?;
    let (_, after_c) = wait_holder(&leases, "hub-c", Duration::from_secs(20)).await?;
    assert_eq!(after_c, transitions + 1);
    signal(&b.pid(), "CONT")?;
    let (status, stderr) = b.wait_exit(Duration::from_secs(10))?;
    assert!(
        !status.success(),
        "a leader that lost its Lease exits non-zero: {stderr}"
    );
    assert!(stderr.contains("lost the leader Lease"), "{stderr}");
    assert_eq!(
        holder(&leases).await?,
        Some(("hub-c".to_owned(), after_c)),
        "the resumed hub never took the Lease back"
    );

    // SIGTERM: the leader finishes, releases the Lease and exits 0.
    signal(&c.pid(), "TERM")?;
    let (status, stderr) = c.wait_exit(Duration::from_secs(20))?;
    assert!(
        status.success(),
        "SIGTERM ends the hub with status 0: {stderr}"
    );
    assert_eq!(holder(&leases).await?, None, "the Lease was released");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_promtool_and_health_endpoints_answer() -> Result<()> {
    let test_hub = start_hub().await?;
    let hub = Hub::start(test_hub.kubeconfig(), "metrics", &[])?;
    eventually(Duration::from_secs(20), "/readyz 200", || async {
        Ok(matches!(hub.get("/readyz").await, Ok((200, _))).then_some(()))
    })
    .await?;
    assert_eq!(hub.get("/healthz").await?.0, 200);
    eventually(
        Duration::from_secs(20),
        "cluster-status reconciling",
        || async {
            let n = hub
                .metric("flotilla_controller_reconcile_total{controller=\"cluster-status\"}")
                .await?;
            Ok((n > 0.0).then_some(()))
        },
    )
    .await?;
    let (_, text) = hub.get("/metrics").await?;
    for name in [
        "flotilla_controller_reconcile_total{controller=\"cluster\"}",
        "flotilla_controller_reconcile_duration_seconds_bucket{controller=\"scheduler-resourcebinding\"",
        "flotilla_controller_queue_depth{controller=\"cluster-status\"}",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    let Some(promtool) = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        println!("SKIPPED: promtool check metrics (install Debian's prometheus package)");
        return Ok(());
    };
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    use std::io::Write as _;
    check
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let output = check.wait_with_output()?;
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_span_fields_and_sigterm_exits_zero() -> Result<()> {
    let test_hub = start_hub().await?;
    let mut hub = Hub::start(test_hub.kubeconfig(), "json", &["--log-format", "json"])?;
    let stderr = hub.child.stderr.take().context("stderr")?;
    let reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
            .collect::<Vec<String>>()
    });
    eventually(Duration::from_secs(20), "reconciles", || async {
        let n = hub.metric("flotilla_controller_reconcile_total").await?;
        Ok((n > 3.0).then_some(()))
    })
    .await?;
    signal(&hub.pid(), "TERM")?;
    let status = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = hub.child.try_wait()? {
                break status;
            }
            anyhow::ensure!(Instant::now() < deadline, "no exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let lines = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    assert!(status.success(), "SIGTERM exits 0: {lines:?}");
    assert!(!lines.is_empty());
    let mut with_span = 0;
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not one JSON object: {line:?}"))?;
        assert_ne!(
            value["level"], "WARN",
            "a normal start prints no warnings: {line}"
        );
        if value["span"] == "reconcile"
            && value["controller"].is_string()
            && value["name"].is_string()
        {
            with_span += 1;
        }
    }
    // A member turning Ready is logged inside the cluster-status reconcile span.
    assert!(
        with_span >= 1,
        "no line carries the reconcile span fields: {lines:?}"
    );
    Ok(())
}
