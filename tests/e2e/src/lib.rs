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
        Self::start_with(members, flotilla::controllers::Options::default()).await
    }

    /// Starts an in-memory hub with `members` members and every controller, with `options`,
    /// and no member simulator (tests write member status themselves).
    pub async fn start_with(
        members: usize,
        options: flotilla::controllers::Options,
    ) -> anyhow::Result<TestFleet> {
        Self::start_simulated(members, options, None).await
    }

    /// Starts an in-memory hub with `members` members, every controller with `options`, and
    /// each member simulated with `simulator` (`None`: not simulated).
    pub async fn start_simulated(
        members: usize,
        options: flotilla::controllers::Options,
        simulator: Option<flotilla_simulator::Options>,
    ) -> anyhow::Result<TestFleet> {
        let dir = tempfile::tempdir()?;
        let options =
            UpOptions::in_process(dir.path().to_owned(), members, true, options, simulator)?;
        let fleet = Fleet::start(options).await?;
        Ok(TestFleet { fleet, dir })
    }

    /// Waits until every member reports Ready, as a user would before placing workloads on a
    /// new fleet (a Divided binding scheduled earlier would only see the members that were
    /// ready then, and is not re-placed when more become ready, as in Karmada).
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let waiting = self
            .fleet
            .wait_ready(std::time::Duration::from_secs(30))
            .await?;
        anyhow::ensure!(
            waiting.is_empty(),
            "members not Ready after 30 s: {}",
            waiting.join(", ")
        );
        Ok(())
    }

    /// An administrator's client for member `name`.
    pub async fn member(&self, name: &str) -> anyhow::Result<kube::Client> {
        Ok(self.fleet.server.client(Some(name)).await?)
    }

    /// Applies every YAML document in `yaml` to the hub with server-side apply (as
    /// `kubectl apply --server-side` does), resolving each kind through discovery.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<()> {
        apply(&self.fleet.hub, yaml).await
    }

    /// The kubeconfig a user would export.
    pub fn kubeconfig(&self) -> PathBuf {
        self.fleet.server.kubeconfig_path().to_owned()
    }
}

/// Applies every YAML document in `yaml` through `client` with server-side apply (manager
/// `e2e`, forced), resolving each kind through discovery.
pub async fn apply(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
    for document in yaml.split("\n---") {
        if document.trim().is_empty() {
            continue;
        }
        let object: serde_json::Value =
            serde_saphyr::from_str(document).with_context(|| format!("parsing {document}"))?;
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("discovering {api_version} {kind}"))?;
        let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
            Some(ns) if capabilities.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), ns, &resource)
            }
            _ if capabilities.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(client.clone(), "default", &resource)
            }
            _ => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {kind} {name}"))?;
    }
    Ok(())
}

pub use flotilla_testing::{eventually, kubectl};
