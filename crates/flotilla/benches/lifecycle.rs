//! Cluster lifecycle on a local fleet, through the binary as a user runs it: `flotilla up` (one
//! member, default flags) as a child process, then
//!
//! - `flotilla create cluster` of one cluster (1 control plane, 2 workers) until it exits,
//!   that is until the cluster is Ready in the fleet;
//! - 20 `flotilla create cluster` at once, until every one has exited;
//! - the hub's resident memory (`flotilla up`'s VmRSS) with those 21 provisioned clusters, and
//!   the clusters' own (their `flotilla apiserver` processes).
//!
//! Then every cluster is deleted and `flotilla up` stopped. Run with
//! `cargo bench -p flotilla --bench lifecycle` (`LIFECYCLE_BENCH_CLUSTERS`, default 20).

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

const FLOTILLA: &str = env!("CARGO_BIN_EXE_flotilla");

async fn start_up(data_dir: &Path) -> Result<Child> {
    let mut child = Command::new(FLOTILLA)
        .args([
            "up",
            "--port",
            "0",
            "--metrics-bind-address",
            "0",
            "--members",
            "1",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("Flotilla is up") {
                // Keep reading so the pipe never fills.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                return anyhow::Ok(());
            }
        }
        bail!("flotilla up exited before it was up")
    })
    .await
    .context("flotilla up starts")??;
    Ok(child)
}

async fn cli(args: &[&str], kubeconfig: &Path) -> Result<()> {
    let output = Command::new(FLOTILLA)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await?;
    ensure!(
        output.status.success(),
        "flotilla {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// VmRSS of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The pids of the clusters' control planes.
fn control_planes(data_dir: &Path) -> Vec<u32> {
    let root = data_dir.join("machines").join("default");
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("pid")).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let count: usize = std::env::var("LIFECYCLE_BENCH_CLUSTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::Builder::new()
        .prefix("flotilla-bench-lc-")
        .tempdir()?;
    let data_dir = dir.path().join("data");
    let mut up = start_up(&data_dir).await?;
    let up_pid = up.id().context("flotilla up's pid")?;
    let kubeconfig = data_dir.join("kubeconfig");
    let idle = rss_mib(up_pid);

    let started = Instant::now();
    cli(&["create", "cluster", "one", "--workers", "2"], &kubeconfig).await?;
    let one = started.elapsed();

    let started = Instant::now();
    let names: Vec<String> = (1..=count).map(|i| format!("many{i}")).collect();
    let creations = names.iter().map(|name| {
        let kubeconfig = kubeconfig.clone();
        async move {
            cli(
                &[
                    "create",
                    "cluster",
                    name,
                    "--workers",
                    "2",
                    "--timeout",
                    "10m",
                ],
                &kubeconfig,
            )
            .await
        }
    });
    for result in futures::future::join_all(creations).await {
        result?;
    }
    let many = started.elapsed();
    // Let the fleet settle before reading memory.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let hub = rss_mib(up_pid);
    let planes = control_planes(&data_dir);
    let per_cluster = planes.iter().map(|p| rss_mib(*p)).sum::<f64>() / planes.len().max(1) as f64;

    println!("| step | figure |");
    println!("|---|---|");
    println!(
        "| `flotilla create cluster` (1 control plane, 2 workers) → exits, the cluster Ready in the fleet | {:.1} s |",
        one.as_secs_f64()
    );
    println!(
        "| {count} `flotilla create cluster` at once → all exited | {:.1} s |",
        many.as_secs_f64()
    );
    println!(
        "| hub RSS (`flotilla up`, 1 member) idle → with {} provisioned clusters | {idle:.0} MiB → {hub:.0} MiB |",
        count + 1
    );
    println!(
        "| RSS of one provisioned cluster's `flotilla apiserver` (3 nodes simulated), mean of {} | {per_cluster:.0} MiB |",
        planes.len()
    );

    let deletions = std::iter::once("one".to_owned())
        .chain(names)
        .map(|name| {
            let kubeconfig = kubeconfig.clone();
            async move {
                cli(
                    &["delete", "cluster", &name, "--timeout", "10m"],
                    &kubeconfig,
                )
                .await
            }
        })
        .collect::<Vec<_>>();
    let started = Instant::now();
    for result in futures::future::join_all(deletions).await {
        result?;
    }
    println!(
        "| {} `flotilla delete cluster` at once → all exited | {:.1} s |",
        count + 1,
        started.elapsed().as_secs_f64()
    );
    let _ = Command::new("kill")
        .args(["-INT", &up_pid.to_string()])
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(30), up.wait()).await;
    Ok(())
}
