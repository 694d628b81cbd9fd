//! `flotilla create|upgrade|delete cluster NAME`: convenience that writes what a user could
//! write by hand — MachineSets `NAME-control-plane` (role ControlPlane, 1 replica, replaced
//! old-first since a control plane has one replica) and `NAME-workers` (role Worker), and a
//! MachineHealthCheck `NAME` over both — then waits, with progress, until the cluster is Ready
//! in the fleet, rolled out, or gone. On a failure the machines report, or after `--timeout`,
//! it fails saying what it was waiting for.

use std::time::Duration;

use anyhow::{Context as _, bail};
use flotilla_api::{
    Cluster,
    conditions::{self, INFRASTRUCTURE_READY, READY},
    keys::labels,
    provisioning::{Machine, MachineHealthCheck, MachineSet},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::progress::{Mode, Progress};

/// `flotilla create cluster`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct CreateArgs {
    /// The cluster's name (its member name in the fleet).
    pub name: String,
    /// How many worker machines.
    #[arg(long, default_value_t = 2)]
    pub workers: i32,
    /// The Kubernetes version (`v1.X.Y`; default: the one the embedded API server implements).
    #[arg(long)]
    pub version: Option<String>,
    /// The infrastructure provider that creates the machines.
    #[arg(long, default_value = crate::local_provider::PROVIDER)]
    pub provider: String,
    /// Cores of each worker's node.
    #[arg(long, default_value_t = 4)]
    pub worker_cpu: u32,
    /// GiB of memory of each worker's node.
    #[arg(long, default_value_t = 16)]
    pub worker_memory_gi: u32,
    /// How long a machine's node may be unhealthy (or its infrastructure failed) before the
    /// machine is replaced.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub unhealthy_timeout: Duration,
    /// The hub namespace of the MachineSets.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// How long to wait for the cluster to be Ready in the fleet.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

/// `flotilla upgrade cluster`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct UpgradeArgs {
    /// The cluster.
    pub name: String,
    /// The Kubernetes version to move every machine to (`v1.X.Y`).
    #[arg(long)]
    pub version: String,
    /// The hub namespace of the MachineSets.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// How long to wait for the rollout.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

/// `flotilla delete cluster`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct DeleteArgs {
    /// The cluster.
    pub name: String,
    /// The hub namespace of the MachineSets.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// How long to wait for the cluster to be gone.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
}

/// The control-plane MachineSet's name.
pub fn control_plane_set(cluster: &str) -> String {
    format!("{cluster}-control-plane")
}

/// The workers' MachineSet's name.
pub fn workers_set(cluster: &str) -> String {
    format!("{cluster}-workers")
}

fn check_version(version: &str) -> anyhow::Result<()> {
    let shaped = version.starts_with('v') && version.split('.').count() == 3;
    if !shaped || !flotilla_apiserver::valid_kubernetes_version(version) {
        bail!("--version {version:?} is not a Kubernetes version such as v1.35.0");
    }
    Ok(())
}

/// The MachineSet `flotilla create cluster` writes for one role.
fn machine_set(args: &CreateArgs, version: &str, control_plane: bool) -> Value {
    let name = if control_plane {
        control_plane_set(&args.name)
    } else {
        workers_set(&args.name)
    };
    let (role, replicas, surge, unavailable) = if control_plane {
        // One replica that cannot be doubled: replaced by deleting the old one first.
        ("ControlPlane", 1, 0, 1)
    } else {
        ("Worker", args.workers, 1, 0)
    };
    let mut annotations = serde_json::Map::new();
    if !control_plane {
        annotations.insert(
            crate::local_provider::CPU_ANNOTATION.into(),
            json!(args.worker_cpu.to_string()),
        );
        annotations.insert(
            crate::local_provider::MEMORY_ANNOTATION.into(),
            json!(args.worker_memory_gi.to_string()),
        );
    }
    json!({
        "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "MachineSet",
        "metadata": {"name": name, "namespace": args.namespace,
            "labels": {labels::MACHINE_CLUSTER_NAME: args.name}},
        "spec": {
            "clusterName": args.name,
            "replicas": replicas,
            "selector": {"matchLabels": {labels::MACHINE_SET_NAME: name}},
            "template": {
                "metadata": {"labels": {labels::MACHINE_SET_NAME: name}, "annotations": annotations},
                "spec": {"clusterName": args.name, "role": role, "version": version,
                    "infrastructureRef": {"provider": args.provider}},
            },
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
        },
    })
}

/// The MachineHealthCheck over the cluster's machines.
fn health_check(args: &CreateArgs) -> Value {
    let timeout = i32::try_from(args.unhealthy_timeout.as_secs()).unwrap_or(i32::MAX);
    json!({
        "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "MachineHealthCheck",
        "metadata": {"name": args.name, "namespace": args.namespace,
            "labels": {labels::MACHINE_CLUSTER_NAME: args.name}},
        "spec": {
            "clusterName": args.name,
            "selector": {"matchLabels": {labels::MACHINE_CLUSTER_NAME: args.name}},
            "checks": {
                "nodeStartupTimeoutSeconds": 600,
                "unhealthyNodeConditions": [
                    {"type": "Ready", "status": "False", "timeoutSeconds": timeout},
                    {"type": "Ready", "status": "Unknown", "timeoutSeconds": timeout},
                ],
                "unhealthyMachineConditions": [
                    {"type": INFRASTRUCTURE_READY, "status": "False", "timeoutSeconds": timeout},
                ],
            },
        },
    })
}

async fn create_object<K>(api: &Api<K>, body: Value) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(body)?;
    let name = object.name_any();
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("creating {name}"))?;
    Ok(())
}

/// Polls `check` every 500 ms until it answers `Done`, fails, or `timeout` passes.
async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Step>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await? {
            Step::Done(detail) => return Ok(detail),
            Step::Failed(why) => bail!("{what} failed: {why}"),
            Step::Waiting(now) => now,
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "timed out after {} waiting for {what}{}",
                humantime::format_duration(Duration::from_secs(timeout.as_secs())),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Where a wait stands.
enum Step {
    Done(String),
    Waiting(String),
    Failed(String),
}

async fn machines_of(hub: &Client, namespace: &str, cluster: &str) -> anyhow::Result<Vec<Machine>> {
    let api: Api<Machine> = Api::namespaced(hub.clone(), namespace);
    Ok(api
        .list(&ListParams::default().labels(&format!("{}={cluster}", labels::MACHINE_CLUSTER_NAME)))
        .await?
        .items)
}

/// A failure a machine reports that waiting will not fix.
fn machine_failure(machine: &Machine) -> Option<String> {
    let condition = machine
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == INFRASTRUCTURE_READY && c.status == conditions::FALSE)?;
    ["ControlPlaneReplicasUnsupported", "ProcessExited"]
        .contains(&condition.reason.as_str())
        .then(|| {
            format!(
                "machine {}: {}: {}",
                machine.name_any(),
                condition.reason,
                condition.message
            )
        })
}

fn ready(machine: &Machine) -> bool {
    machine
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_true(&s.conditions, READY))
}

/// Whether the member is Ready in the fleet with `nodes` nodes, and at `version` if given.
fn member_state(cluster: Option<&Cluster>, nodes: usize, version: Option<&str>) -> Step {
    let Some(cluster) = cluster else {
        return Step::Waiting("it has not joined the fleet yet".into());
    };
    match cluster.ready_condition() {
        Some(c) if c.status == conditions::TRUE => {}
        Some(c) => return Step::Waiting(format!("Ready={}: {}", c.status, c.message)),
        None => return Step::Waiting("its Cluster has no status yet".into()),
    }
    let status = cluster.status.clone().unwrap_or_default();
    let reported = status.kubernetes_version.clone().unwrap_or_default();
    if let Some(version) = version
        && !crate::local_provider::same_version(version, &reported)
    {
        return Step::Waiting(format!("it reports {reported}"));
    }
    let counted = status
        .node_summary
        .as_ref()
        .map(|s| s.ready_num)
        .unwrap_or_default();
    if usize::try_from(counted).unwrap_or(0) < nodes {
        return Step::Waiting(format!("{counted} of {nodes} nodes Ready"));
    }
    Step::Done(format!("Ready, {reported}, {counted} nodes"))
}

/// Creates the cluster and waits until it is Ready in the fleet.
///
/// # Errors
///
/// When the flags are invalid, the cluster exists, a write fails, a machine fails or the
/// timeout passes.
pub async fn create(hub: &Client, args: &CreateArgs, mode: Mode) -> anyhow::Result<String> {
    flotilla_api::names::execution_namespace(&args.name)
        .map_err(|e| anyhow::anyhow!("{:?} is not a valid cluster name: {e}", args.name))?;
    if args.workers < 0 {
        bail!("--workers must not be negative");
    }
    let version = args
        .version
        .clone()
        .unwrap_or_else(flotilla_apiserver::default_kubernetes_version);
    check_version(&version)?;
    let sets: Api<MachineSet> = Api::namespaced(hub.clone(), &args.namespace);
    for name in [control_plane_set(&args.name), workers_set(&args.name)] {
        if sets.get_opt(&name).await?.is_some() {
            bail!(
                "cluster {} exists (MachineSet {}/{name}); upgrade it, scale it with kubectl \
                 scale machineset, or delete it first",
                args.name,
                args.namespace
            );
        }
    }
    let clusters: Api<Cluster> = Api::all(hub.clone());
    if clusters.get_opt(&args.name).await?.is_some() {
        bail!("a member named {} is already in the fleet", args.name);
    }
    let mut progress = Progress::new(mode);
    progress.begin(format!("Creating cluster {}", args.name));
    create_object(&sets, machine_set(args, &version, true)).await?;
    create_object(&sets, machine_set(args, &version, false)).await?;
    let checks: Api<MachineHealthCheck> = Api::namespaced(hub.clone(), &args.namespace);
    create_object(&checks, health_check(args)).await?;
    progress.finish(format!(
        "1 control-plane and {} worker machines, {version}, provider {}",
        args.workers, args.provider
    ));
    let deadline = tokio::time::Instant::now() + args.timeout;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    progress.begin("Waiting for the machines");
    let total = usize::try_from(args.workers).unwrap_or(0) + 1;
    let detail = wait_for("the machines", left(), || async {
        let machines = machines_of(hub, &args.namespace, &args.name).await?;
        if let Some(failure) = machines.iter().find_map(machine_failure) {
            return Ok(Step::Failed(failure));
        }
        let up = machines.iter().filter(|m| ready(m)).count();
        let reported = machines.iter().any(|m| {
            m.status
                .as_ref()
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == INFRASTRUCTURE_READY))
        });
        Ok(if up >= total {
            Step::Done(format!("{up} Ready"))
        } else if !reported {
            Step::Waiting(format!(
                "no infrastructure provider {:?} has reported on the machines (flotilla up runs \
                 the local one; flotilla hub runs it with --local-provider-dir)",
                args.provider
            ))
        } else {
            Step::Waiting(format!("{up} of {total} machines Ready"))
        })
    })
    .await?;
    progress.finish(detail);
    progress.begin(format!(
        "Waiting for {} to be Ready in the fleet",
        args.name
    ));
    let detail = wait_for("the cluster to be Ready in the fleet", left(), || async {
        Ok(member_state(
            clusters.get_opt(&args.name).await?.as_ref(),
            total,
            None,
        ))
    })
    .await?;
    progress.finish(&detail);
    Ok(format!("cluster {} created: {detail}", args.name))
}

/// Moves every machine of the cluster to a new version and waits for the rollout.
///
/// # Errors
///
/// When the cluster does not exist, the version is invalid, a machine fails or the timeout
/// passes.
pub async fn upgrade(hub: &Client, args: &UpgradeArgs, mode: Mode) -> anyhow::Result<String> {
    check_version(&args.version)?;
    let sets: Api<MachineSet> = Api::namespaced(hub.clone(), &args.namespace);
    let names = [control_plane_set(&args.name), workers_set(&args.name)];
    let mut found = Vec::new();
    for name in &names {
        if let Some(set) = sets.get_opt(name).await? {
            found.push(set);
        }
    }
    if found.is_empty() {
        bail!(
            "cluster {} has no MachineSets in namespace {} (flotilla create cluster makes them)",
            args.name,
            args.namespace
        );
    }
    let mut progress = Progress::new(mode);
    progress.begin(format!(
        "Upgrading cluster {} to {}",
        args.name, args.version
    ));
    for set in &found {
        sets.patch(
            &set.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"spec": {"version": args.version}}}})),
        )
        .await
        .with_context(|| format!("updating MachineSet {}", set.name_any()))?;
    }
    progress.finish(format!("{} MachineSets", found.len()));
    let deadline = tokio::time::Instant::now() + args.timeout;
    let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
    progress.begin("Replacing the machines");
    let detail = wait_for("the rollout", left(), || async {
        let machines = machines_of(hub, &args.namespace, &args.name).await?;
        if let Some(failure) = machines.iter().find_map(machine_failure) {
            return Ok(Step::Failed(failure));
        }
        let mut wanted = 0;
        for name in &names {
            if let Some(set) = sets.get_opt(name).await? {
                wanted += set.spec.replicas.unwrap_or(1);
            }
        }
        let live: Vec<&Machine> = machines
            .iter()
            .filter(|m| m.metadata.deletion_timestamp.is_none())
            .collect();
        let done = live
            .iter()
            .filter(|m| m.spec.version.as_deref() == Some(args.version.as_str()) && ready(m))
            .count();
        let wanted = usize::try_from(wanted).unwrap_or(0);
        Ok(if done == wanted && machines.len() == wanted {
            Step::Done(format!("{done} machines on {}", args.version))
        } else {
            Step::Waiting(format!(
                "{done} of {wanted} machines on {} and Ready",
                args.version
            ))
        })
    })
    .await?;
    progress.finish(detail);
    let clusters: Api<Cluster> = Api::all(hub.clone());
    progress.begin(format!(
        "Waiting for {} to report {}",
        args.name, args.version
    ));
    let detail = wait_for("the cluster to report its new version", left(), || async {
        Ok(member_state(
            clusters.get_opt(&args.name).await?.as_ref(),
            0,
            Some(&args.version),
        ))
    })
    .await?;
    progress.finish(&detail);
    Ok(format!("cluster {} upgraded: {detail}", args.name))
}

/// Deletes the cluster's MachineSets and health check and waits until the cluster has left
/// the fleet and its machines are gone.
///
/// # Errors
///
/// When the cluster does not exist, a delete fails or the timeout passes.
pub async fn delete(hub: &Client, args: &DeleteArgs, mode: Mode) -> anyhow::Result<String> {
    let sets: Api<MachineSet> = Api::namespaced(hub.clone(), &args.namespace);
    let checks: Api<MachineHealthCheck> = Api::namespaced(hub.clone(), &args.namespace);
    let mut deleted = 0;
    let mut progress = Progress::new(mode);
    progress.begin(format!("Deleting cluster {}", args.name));
    for name in [control_plane_set(&args.name), workers_set(&args.name)] {
        match sets.delete(&name, &DeleteParams::background()).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("deleting MachineSet {name}")),
        }
    }
    match checks.delete(&args.name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e).context("deleting the MachineHealthCheck"),
    }
    if deleted == 0
        && machines_of(hub, &args.namespace, &args.name)
            .await?
            .is_empty()
    {
        bail!(
            "cluster {} has no MachineSets or machines in namespace {}",
            args.name,
            args.namespace
        );
    }
    progress.finish(format!("{deleted} MachineSets"));
    progress.begin("Waiting for the cluster to leave the fleet and its machines to go");
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let detail = wait_for("the cluster to be gone", args.timeout, || async {
        let member = clusters.get_opt(&args.name).await?;
        let machines = machines_of(hub, &args.namespace, &args.name).await?;
        Ok(match (member, machines.len()) {
            (None, 0) => Step::Done("gone".into()),
            (Some(_), n) => Step::Waiting(format!("still a member, {n} machines left")),
            (None, n) => Step::Waiting(format!("unjoined, {n} machines left")),
        })
    })
    .await?;
    progress.finish(detail);
    Ok(format!("cluster {} deleted", args.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CreateArgs {
        CreateArgs {
            name: "edge1".into(),
            workers: 3,
            version: None,
            provider: "local".into(),
            worker_cpu: 8,
            worker_memory_gi: 32,
            unhealthy_timeout: Duration::from_secs(300),
            namespace: "fleet".into(),
            timeout: Duration::from_secs(300),
        }
    }

    #[test]
    fn the_sets_are_what_a_user_would_write() {
        let cp: MachineSet =
            serde_json::from_value(machine_set(&args(), "v1.35.0", true)).expect("a MachineSet");
        assert_eq!(cp.name_any(), "edge1-control-plane");
        assert_eq!(cp.spec.replicas, Some(1));
        assert_eq!(cp.spec.template.spec.version.as_deref(), Some("v1.35.0"));
        let workers: MachineSet =
            serde_json::from_value(machine_set(&args(), "v1.35.0", false)).expect("a MachineSet");
        assert_eq!(workers.name_any(), "edge1-workers");
        assert_eq!(workers.spec.replicas, Some(3));
        assert_eq!(
            workers.spec.template.metadata.annotations[crate::local_provider::CPU_ANNOTATION],
            "8"
        );
        for set in [&cp, &workers] {
            assert!(
                flotilla_api::validate::validate_manifest(
                    &serde_json::to_value(set).expect("json")
                )
                .is_ok()
            );
        }
        let check: MachineHealthCheck =
            serde_json::from_value(health_check(&args())).expect("a MachineHealthCheck");
        assert_eq!(check.spec.checks.unhealthy_node_conditions.len(), 2);
    }

    #[test]
    fn versions_must_be_full_kubernetes_versions() {
        assert!(check_version("v1.35.0").is_ok());
        for bad in ["1.35.0", "v1.35", "latest", "v1.x.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
