//! `flotilla up` as a child process, and the flotilla binary run as a user runs it.

use std::{path::Path, process::Stdio, sync::Arc, time::Duration};

use anyhow::{Context as _, Result, ensure};
use flotilla_testing::eventually;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
    sync::Mutex,
};

/// How long `flotilla up` may take to print its banner.
pub const START: Duration = Duration::from_secs(120);

/// A running `flotilla up` and what it printed.
pub struct Up {
    child: Child,
    /// What it printed on stdout so far.
    pub stdout: Arc<Mutex<String>>,
    /// What it printed on stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Up {
    /// Starts `flotilla up` on `data_dir` with `flags` and waits for its "Flotilla is up"
    /// banner.
    pub async fn start_with(data_dir: &Path, flags: &[&str]) -> Result<Up> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .args(["up", "--port", "0", "--metrics-bind-address", "0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(flags)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting flotilla up")?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        for (pipe, sink) in [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                stdout.clone(),
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
                stderr.clone(),
            ),
        ] {
            let pipe = pipe.context("a piped output")?;
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut sink = sink.lock().await;
                    sink.push_str(&line);
                    sink.push('\n');
                }
            });
        }
        let up = Up {
            child,
            stdout,
            stderr,
        };
        eventually(START, "flotilla up prints that the fleet is up", || async {
            let out = up.stdout.lock().await.clone();
            Ok(out.contains("Flotilla is up").then_some(()))
        })
        .await
        .with_context(|| {
            format!(
                "stderr so far:\n{}",
                up.stderr.try_lock().map(|s| s.clone()).unwrap_or_default()
            )
        })?;
        Ok(up)
    }

    /// kill -9, as a crash.
    #[allow(dead_code)]
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// ctrl-c, as a user stops it; it must exit successfully.
    pub async fn interrupt(mut self) -> Result<String> {
        let pid = self.child.id().context("flotilla up has a pid")?;
        let status = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await?;
        ensure!(status.success(), "kill -INT {pid}");
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("flotilla up stops within 30 s of ctrl-c")??;
        ensure!(
            exit.success(),
            "flotilla up exits cleanly on ctrl-c: {exit}"
        );
        Ok(self.stdout.lock().await.clone())
    }
}

/// The flotilla binary's stdout, or an error with its stderr.
pub async fn run_flotilla(
    args: &[&std::ffi::OsStr],
    kubeconfig_env: Option<&Path>,
) -> Result<String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    command.args(args);
    if let Some(kubeconfig) = kubeconfig_env {
        command.env("KUBECONFIG", kubeconfig);
    }
    let output = command.output().await?;
    ensure!(
        output.status.success(),
        "flotilla {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}
