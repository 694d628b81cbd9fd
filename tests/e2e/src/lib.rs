//! Support for end-to-end tests: start a local hub and fleet in a temporary directory, find a
//! real kubectl, wait for what a user would wait for.

use std::{future::Future, path::PathBuf, time::Duration};

use flotilla::up::{Fleet, UpOptions};

/// A fleet in a temporary directory, removed when dropped.
pub struct TestFleet {
    /// The fleet.
    pub fleet: Fleet,
    /// Its data directory.
    pub dir: tempfile::TempDir,
}

impl TestFleet {
    /// Starts an in-memory hub with `members` members and every controller.
    pub async fn start(members: usize) -> anyhow::Result<TestFleet> {
        let dir = tempfile::tempdir()?;
        let options = UpOptions {
            data_dir: dir.path().to_owned(),
            members,
            bind_address: "127.0.0.1".parse()?,
            port: 0,
            in_memory: true,
            controllers: "*".to_owned(),
        };
        let fleet = Fleet::start(options).await?;
        Ok(TestFleet { fleet, dir })
    }

    /// The kubeconfig a user would export.
    pub fn kubeconfig(&self) -> PathBuf {
        self.fleet.server.kubeconfig_path().to_owned()
    }
}

/// A versioned kubectl from the image's kubectl package (`dpkg -L kubectl`), if this machine
/// has one. Plain `kubectl` is a dispatcher that picks a version from the server, so tests
/// call a versioned binary.
pub fn kubectl() -> Option<PathBuf> {
    ["/usr/lib/google-cloud-sdk/bin", "/usr/bin"]
        .iter()
        .flat_map(|dir| {
            ["1.33", "1.32", "1.31", "1.30", "1.29"]
                .iter()
                .map(move |v| PathBuf::from(format!("{dir}/kubectl.{v}")))
        })
        .find(|p| p.exists())
}

/// Polls `check` until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what}; last error: {last_error:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
