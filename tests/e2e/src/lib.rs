//! Support for end-to-end tests: start a local hub and fleet in a temporary directory exactly as
//! `flotilla up` does; polling and the kubectl finder come from `flotilla-testing`.

use std::path::PathBuf;

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
            hub: flotilla::hub::HubOptions {
                metrics_bind_address: None,
                leader_election: None,
                controllers: flotilla::controllers::select("*")?,
                controller_options: Default::default(),
            },
            log_format: flotilla::cli::LogFormat::Text,
        };
        let fleet = Fleet::start(options).await?;
        Ok(TestFleet { fleet, dir })
    }

    /// Waits until every member reports Ready, as a user would before placing workloads on a
    /// new fleet (a Divided binding scheduled earlier would only see the members that were
    /// ready then, and is not re-placed when more become ready, as in Karmada).
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let clusters: kube::Api<flotilla_api::Cluster> = kube::Api::all(self.fleet.hub.clone());
        for name in &self.fleet.members {
            eventually(
                std::time::Duration::from_secs(30),
                &format!("{name} Ready"),
                || async {
                    let cluster = clusters.get(name).await?;
                    let ready = cluster
                        .ready_condition()
                        .is_some_and(|c| c.status == "True");
                    Ok(ready.then_some(()))
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The kubeconfig a user would export.
    pub fn kubeconfig(&self) -> PathBuf {
        self.fleet.server.kubeconfig_path().to_owned()
    }
}

pub use flotilla_testing::{eventually, kubectl};
