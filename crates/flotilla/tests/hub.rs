//! `flotilla hub` as a process against the hub API server (embedded, or real with
//! `FLOTILLA_TEST_SERVER=kube`): leader election between two
//! and three hubs (one leads, a standby runs no controller; killing the leader hands over
//! within the lease duration plus a retry period or two; a paused leader that wakes after
//! losing the Lease stops at once and never takes it back), `/metrics` checked with promtool,
//! `/healthz` and `/readyz`, JSON logs, and SIGTERM ending the process with status 0.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use flotilla_testing::{TestHub, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

#[path = "support/hub_process.rs"]
mod hub_process;

use hub_process::{Hub, holder, signal, wait_holder};

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
