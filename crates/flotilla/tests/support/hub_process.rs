//! `flotilla hub` child processes for the tests: start one with a kubeconfig and flags, read
//! its `/metrics`, `/healthz` and `/readyz`, signal it, wait for its exit; and the leader
//! Lease's holder.
#![allow(dead_code)]

use std::{
    io::Read,
    net::TcpListener,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use flotilla_testing::eventually;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

pub const LEASE: &str = "3s";
pub const RENEW: &str = "2s";
pub const RETRY: &str = "500ms";

/// A `flotilla hub` child process, killed when dropped.
pub struct Hub {
    /// The process.
    pub child: Child,
    metrics: u16,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Hub {
    pub fn start(kubeconfig: &Path, identity: &str, extra: &[&str]) -> Result<Hub> {
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

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// GET of a path on the metrics endpoint: status code and body.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
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
    pub async fn metric(&self, series: &str) -> Result<f64> {
        let (_, body) = self.get("/metrics").await?;
        Ok(body
            .lines()
            .filter(|l| l.starts_with(series))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// Waits for the process to exit; its status and everything it wrote to stderr.
    pub fn wait_exit(mut self, timeout: Duration) -> Result<(ExitStatus, String)> {
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

pub fn signal(pid: &str, name: &str) -> Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{name} {pid} failed");
    Ok(())
}

pub async fn holder(leases: &Api<Lease>) -> Result<Option<(String, i32)>> {
    let Some(lease) = leases.get_opt("flotilla-hub").await? else {
        return Ok(None);
    };
    let spec = lease.spec.unwrap_or_default();
    Ok(spec
        .holder_identity
        .map(|h| (h, spec.lease_transitions.unwrap_or_default())))
}

pub async fn wait_holder(
    leases: &Api<Lease>,
    who: &str,
    within: Duration,
) -> Result<(Instant, i32)> {
    eventually(within, &format!("{who} holding the Lease"), || async {
        Ok(match holder(leases).await? {
            Some((h, transitions)) if h == who => Some((Instant::now(), transitions)),
            _ => None,
        })
    })
    .await
}
