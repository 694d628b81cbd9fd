//! Cluster lifecycle end to end, through the real binary as a user runs it: `flotilla up` as a
//! child process; `flotilla create cluster edge1 --workers 3` makes a cluster (a `flotilla
//! apiserver` child of the hub's local provider) that joins the fleet by itself and turns
//! Ready with its nodes in the resource summary; a propagated Deployment runs there; scaling
//! the workers grows the Cluster's capacity; `flotilla upgrade cluster` replaces every machine
//! one at a time while the cluster keeps its objects and is never long out of the fleet; a
//! killed control-plane process and a worker whose heartbeats stopped are remediated; and
//! `flotilla delete cluster` moves the workloads to another member first, unjoins the cluster
//! and leaves nothing behind. Also: a Cluster API cluster on a management cluster (here the
//! hub itself, with the Cluster API CRD installed) and its kubeconfig Secret are auto-joined,
//! and unjoined when the CAPI Cluster is deleted.

#[path = "support/up_process.rs"]
mod up_process;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use flotilla_api::{
    Cluster, ResourceBinding,
    keys::labels,
    provisioning::{Machine, MachineSet},
};
use flotilla_testing::eventually;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Secret},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    discovery::ApiResource,
};
use serde_json::json;
use up_process::{Up, run_flotilla};

const WAIT: Duration = Duration::from_secs(90);

/// Kills every control plane the local provider left under the data directory when the test
/// ends, whatever way it ends (a failed test must not leave processes behind).
struct Sweep(PathBuf);

impl Drop for Sweep {
    fn drop(&mut self) {
        for pid in control_plane_pids(&self.0) {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn control_plane_pids(data_dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(namespaces) = std::fs::read_dir(data_dir.join("machines")) else {
        return pids;
    };
    for namespace in namespaces.flatten() {
        for cluster in std::fs::read_dir(namespace.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(pid) = std::fs::read_to_string(cluster.path().join("pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                pids.push(pid);
            }
        }
    }
    pids
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
}

async fn client_from(text: &str, context: Option<&str>) -> Result<Client> {
    let kubeconfig = Kubeconfig::from_yaml(text)?;
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
    Ok(Client::try_from(config)?)
}

/// `flotilla` with KUBECONFIG set to the hub's, as a user's shell has it.
async fn flotilla(args: &[&str], kubeconfig: &Path) -> Result<String> {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    run_flotilla(&args, Some(kubeconfig)).await
}

/// A client for edge1, from the kubeconfig Secret its control plane published.
async fn edge1(hub: &Client) -> Result<Client> {
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), "default");
    let secret = secrets.get("edge1-kubeconfig").await?;
    let value = secret
        .data
        .and_then(|mut d| d.remove("value"))
        .context("the Secret has key value")?;
    client_from(std::str::from_utf8(&value.0)?, None).await
}

async fn machines(hub: &Client) -> Result<Vec<Machine>> {
    let api: Api<Machine> = Api::namespaced(hub.clone(), "default");
    Ok(api
        .list(&ListParams::default().labels(&format!("{}=edge1", labels::MACHINE_CLUSTER_NAME)))
        .await?
        .items)
}

/// The machines and their conditions, for a failure message.
async fn describe(hub: &Client) -> String {
    let Ok(list) = machines(hub).await else {
        return "machines unreadable".into();
    };
    list.iter()
        .map(|m| {
            let conditions: Vec<String> = m
                .status
                .iter()
                .flat_map(|s| &s.conditions)
                .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
                .collect();
            format!(
                "{}{}: {}",
                m.name_any(),
                if m.metadata.deletion_timestamp.is_some() {
                    " (deleting)"
                } else {
                    ""
                },
                conditions.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `result`, its error explained with the machines' state.
async fn explain<T>(hub: &Client, up: &Up, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => Ok(value),
        Err(error) => {
            let state = describe(hub).await;
            let logs = up.stderr.lock().await.clone();
            let lines: Vec<&str> = logs.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            Err(error.context(format!(
                "machines:\n{state}\nflotilla up's last log lines:\n{tail}"
            )))
        }
    }
}

fn ready(machine: &Machine) -> bool {
    machine.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn is_control_plane(machine: &Machine) -> bool {
    machine
        .labels()
        .get(labels::MACHINE_SET_NAME)
        .map(String::as_str)
        == Some("edge1-control-plane")
}

/// The member's Ready status, ready node count and allocatable cpu in millicores.
fn member_view(cluster: &Cluster) -> (String, i32, i64) {
    let status = cluster.status.clone().unwrap_or_default();
    let ready = cluster
        .ready_condition()
        .map(|c| c.status.clone())
        .unwrap_or_default();
    let nodes = status.node_summary.map(|s| s.ready_num).unwrap_or_default();
    let cpu = status
        .resource_summary
        .and_then(|r| r.allocatable.get("cpu").cloned())
        .map(|q| {
            q.0.strip_suffix('m')
                .and_then(|m| m.parse().ok())
                .unwrap_or_else(|| q.0.parse::<i64>().unwrap_or(0) * 1000)
        })
        .unwrap_or(0);
    (ready, nodes, cpu)
}

async fn member_has(hub: &Client, nodes: i32, cpu: i64) -> Result<Cluster> {
    let clusters: Api<Cluster> = Api::all(hub.clone());
    eventually(
        WAIT,
        &format!("edge1 Ready with {nodes} nodes and {cpu}m cpu"),
        || async {
            Ok(clusters
                .get_opt("edge1")
                .await?
                .filter(|c| member_view(c) == ("True".to_owned(), nodes, cpu)))
        },
    )
    .await
}

/// Places the web Deployment on `clusters` with its PropagationPolicy (server-side apply, as
/// `kubectl apply --server-side`).
async fn place_web(hub: &Client, clusters: &[&str]) -> Result<()> {
    let policy = json!({"apiVersion": "policy.flotilla.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "placement": {"clusterAffinity": {"clusterNames": clusters}}}});
    let api: Api<flotilla_api::PropagationPolicy> = Api::namespaced(hub.clone(), "default");
    api.patch(
        "web",
        &PatchParams::apply("lifecycle-test").force(),
        &Patch::Apply(policy),
    )
    .await?;
    Ok(())
}

const WEB: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "default"},
  "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
      "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
        "resources": {"requests": {"cpu": "100m"}}}]}}}}"#;

async fn hub_web_ready(hub: &Client) -> Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(hub.clone(), "default");
    eventually(WAIT, "the hub's web Deployment 4/4 ready", || async {
        let web = deployments.get("web").await?;
        let ready = web.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        Ok((ready == 4).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_is_created_scaled_upgraded_healed_and_deleted_through_machines() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("flotilla-lc-").tempdir()?;
    let data_dir = dir.path().join("data");
    let _sweep = Sweep(data_dir.clone());
    // One member; nodes silent for 3 s turn Unknown; members probed every second.
    let flags = [
        "--members",
        "1",
        "--node-monitor-grace-period",
        "3s",
        "--cluster-status-update-frequency",
        "1s",
    ];
    let up = Up::start_with(&data_dir, &flags).await?;
    let kubeconfig = data_dir.join("kubeconfig");
    let hub = client_from(&std::fs::read_to_string(&kubeconfig)?, Some("flotilla-hub")).await?;

    // Create: the cluster joins by itself and turns Ready with its nodes (3 workers and the
    // control plane's) in the resource summary.
    let created = flotilla(
        &[
            "create",
            "cluster",
            "edge1",
            "--workers",
            "3",
            "--unhealthy-timeout",
            "10s",
            "--timeout",
            "2m",
        ],
        &kubeconfig,
    )
    .await?;
    ensure!(created.contains("cluster edge1 created"), "{created}");
    let joined = member_has(&hub, 4, 4 * 3800).await?;
    let version = flotilla_apiserver::default_kubernetes_version();
    ensure!(
        joined
            .status
            .as_ref()
            .and_then(|s| s.kubernetes_version.clone())
            == Some(version.clone()),
        "{joined:?}"
    );
    let first_machines: Vec<String> = machines(&hub).await?.iter().map(|m| m.name_any()).collect();
    ensure!(first_machines.len() == 4, "{first_machines:?}");

    // A second control-plane replica is refused with a reason (the embedded API server does
    // not replicate), and goes again when the set is scaled back.
    let sets: Api<MachineSet> = Api::namespaced(hub.clone(), "default");
    let scale = |replicas: i32| {
        let sets = sets.clone();
        async move {
            sets.patch_scale(
                "edge1-control-plane",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
        }
    };
    scale(2).await?;
    eventually(WAIT, "the second control plane refused", || async {
        let refused = machines(&hub).await?.into_iter().find(|m| {
            is_control_plane(m)
                && m.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().any(|c| {
                        c.type_ == "InfrastructureReady"
                            && c.status == "False"
                            && c.reason == "ControlPlaneReplicasUnsupported"
                    })
                })
        });
        Ok(refused)
    })
    .await?;
    scale(1).await?;
    eventually(WAIT, "one control-plane machine again", || async {
        let list = machines(&hub).await?;
        let control_planes: Vec<String> = list
            .iter()
            .filter(|m| is_control_plane(m))
            .map(|m| m.name_any())
            .collect();
        Ok(
            (control_planes.len() == 1 && first_machines.contains(&control_planes[0]))
                .then_some(()),
        )
    })
    .await?;

    // A Deployment propagated to edge1 runs there.
    let deployments: Api<Deployment> = Api::namespaced(hub.clone(), "default");
    deployments
        .create(&PostParams::default(), &serde_json::from_str(WEB)?)
        .await?;
    place_web(&hub, &["edge1"]).await?;
    hub_web_ready(&hub).await?;
    let member_web: Api<Deployment> = Api::namespaced(edge1(&hub).await?, "default");
    let web_uid = member_web.get("web").await?.uid();

    // Scale the workers to 5: the Cluster's capacity grows.
    sets.patch_scale(
        "edge1-workers",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await?;
    member_has(&hub, 6, 6 * 3800).await?;

    // The clusters stop with `flotilla up` and start again with it from their data
    // directories; after a crash of `flotilla up`, their running processes are adopted.
    let before_stop = control_plane_pids(&data_dir);
    up.interrupt().await?;
    ensure!(
        before_stop.iter().all(|p| !alive(*p)),
        "the control planes stopped with flotilla up: {before_stop:?}"
    );
    let up = Up::start_with(&data_dir, &flags).await?;
    let hub = client_from(&std::fs::read_to_string(&kubeconfig)?, Some("flotilla-hub")).await?;
    let restarted = eventually(WAIT, "edge1's control plane started again", || async {
        let pids = control_plane_pids(&data_dir);
        Ok((pids.len() == 1 && alive(pids[0]) && !before_stop.contains(&pids[0])).then_some(pids))
    })
    .await?;
    member_has(&hub, 6, 6 * 3800).await?;
    up.kill().await?;
    let up = Up::start_with(&data_dir, &flags).await?;
    let hub = client_from(&std::fs::read_to_string(&kubeconfig)?, Some("flotilla-hub")).await?;
    member_has(&hub, 6, 6 * 3800).await?;
    ensure!(
        control_plane_pids(&data_dir) == restarted && alive(restarted[0]),
        "the running control plane {restarted:?} was adopted, not restarted"
    );
    let member_web: Api<Deployment> = Api::namespaced(edge1(&hub).await?, "default");
    ensure!(
        member_web.get("web").await?.uid() == web_uid,
        "the member's Deployment survived the restarts"
    );
    // The hub listens on another port now.
    let sets: Api<MachineSet> = Api::namespaced(hub.clone(), "default");

    // Upgrade: every machine replaced, the reported version changes, objects survive, and
    // the fleet never sees the cluster NotReady for long.
    let watcher_hub = hub.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let upgrading = done.clone();
    let watching = tokio::spawn(async move {
        let clusters: Api<Cluster> = Api::all(watcher_hub);
        let mut longest = Duration::ZERO;
        let mut since: Option<Instant> = None;
        let started = Instant::now();
        while !upgrading.load(std::sync::atomic::Ordering::SeqCst)
            && started.elapsed() < Duration::from_secs(300)
        {
            let ready = clusters
                .get_opt("edge1")
                .await
                .ok()
                .flatten()
                .and_then(|c| c.ready_condition().map(|r| r.status == "True"))
                .unwrap_or(false);
            match (ready, since) {
                (false, None) => since = Some(Instant::now()),
                (true, Some(at)) => {
                    longest = longest.max(at.elapsed());
                    since = None;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        longest.max(since.map(|at| at.elapsed()).unwrap_or_default())
    });
    let before: Vec<String> = machines(&hub).await?.iter().map(|m| m.name_any()).collect();
    let upgraded = flotilla(
        &[
            "upgrade",
            "cluster",
            "edge1",
            "--version",
            "v1.36.0",
            "--timeout",
            "3m",
        ],
        &kubeconfig,
    )
    .await?;
    ensure!(upgraded.contains("cluster edge1 upgraded"), "{upgraded}");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let longest = watching.await?;
    // One control-plane replacement: the cluster may miss a few 1 s probes, never for long.
    ensure!(
        longest < Duration::from_secs(20),
        "edge1 was not Ready for {longest:?} during the upgrade"
    );
    let after = machines(&hub).await?;
    ensure!(
        after.len() == 6
            && after
                .iter()
                .all(|m| m.spec.version.as_deref() == Some("v1.36.0")
                    && !before.contains(&m.name_any())),
        "every machine replaced by a v1.36.0 one: {before:?} → {:?}",
        after.iter().map(|m| m.name_any()).collect::<Vec<_>>()
    );
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let reported = clusters
        .get("edge1")
        .await?
        .status
        .and_then(|s| s.kubernetes_version);
    ensure!(reported.as_deref() == Some("v1.36.0"), "{reported:?}");
    let member_web: Api<Deployment> = Api::namespaced(edge1(&hub).await?, "default");
    ensure!(
        member_web.get("web").await?.uid() == web_uid,
        "the member's Deployment survived the upgrade"
    );
    hub_web_ready(&hub).await?;

    // A killed control-plane process is a machine failure: the machine is replaced and the
    // cluster comes back from its data directory.
    let control_plane = after
        .iter()
        .find(|m| is_control_plane(m))
        .map(|m| m.name_any())
        .context("a control-plane machine")?;
    let pids = control_plane_pids(&data_dir);
    ensure!(pids.len() == 1 && alive(pids[0]), "{pids:?}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pids[0])?),
        nix::sys::signal::Signal::SIGKILL,
    );
    let replaced = eventually(
        WAIT,
        "the killed control plane's machine replaced",
        || async {
            let list = machines(&hub).await?;
            let replaced = list
                .iter()
                .filter(|m| is_control_plane(m))
                .all(|m| m.name_any() != control_plane && ready(m));
            Ok(
                (replaced && list.iter().filter(|m| is_control_plane(m)).count() == 1)
                    .then_some(()),
            )
        },
    )
    .await;
    explain(&hub, &up, replaced).await?;
    // The dead control plane's Node, which nobody could delete while the cluster was down,
    // goes once the new one is up.
    let nodes: Api<Node> = Api::all(edge1(&hub).await?);
    eventually(WAIT, "the failed control plane's node deleted", || async {
        Ok(nodes.get_opt(&control_plane).await?.is_none().then_some(()))
    })
    .await?;
    member_has(&hub, 6, 6 * 3800).await?;
    let member_web: Api<Deployment> = Api::namespaced(edge1(&hub).await?, "default");
    ensure!(
        member_web.get("web").await?.uid() == web_uid,
        "the member's Deployment survived the control plane's failure"
    );

    // A worker whose heartbeats stop (its node leaves the simulated pool: its kubelet died)
    // turns Unknown and its machine is replaced.
    let worker = machines(&hub)
        .await?
        .into_iter()
        .find(|m| !is_control_plane(m))
        .context("a worker")?
        .name_any();
    nodes
        .patch(
            &worker,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {flotilla_simulator::POOL_LABEL: null}}})),
        )
        .await?;
    let replaced = eventually(WAIT, "the silent worker's machine replaced", || async {
        let list = machines(&hub).await?;
        let workers: Vec<&Machine> = list.iter().filter(|m| !is_control_plane(m)).collect();
        let done = workers.len() == 5 && workers.iter().all(|m| m.name_any() != worker && ready(m));
        Ok(done.then_some(()))
    })
    .await;
    explain(&hub, &up, replaced).await?;
    eventually(WAIT, "the silent worker's node deleted", || async {
        Ok(nodes.get_opt(&worker).await?.is_none().then_some(()))
    })
    .await?;

    // Delete: the workloads move to another member first, the cluster leaves the fleet, its
    // process and data go, nothing is left on the hub.
    place_web(&hub, &["edge1", "member1"]).await?;
    let bindings: Api<ResourceBinding> = Api::namespaced(hub.clone(), "default");
    let targets = || async {
        let binding = bindings.get("web-deployment").await?;
        let mut names: Vec<String> = binding
            .spec
            .clusters
            .iter()
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        anyhow::Ok(names)
    };
    eventually(WAIT, "web placed on edge1 and member1", || async {
        Ok((targets().await? == ["edge1", "member1"]).then_some(()))
    })
    .await?;
    let pid = control_plane_pids(&data_dir)
        .first()
        .copied()
        .context("a control-plane pid")?;
    let deleted = flotilla(
        &["delete", "cluster", "edge1", "--timeout", "2m"],
        &kubeconfig,
    )
    .await?;
    ensure!(deleted.contains("cluster edge1 deleted"), "{deleted}");
    ensure!(targets().await? == ["member1"], "{:?}", targets().await?);
    ensure!(clusters.get_opt("edge1").await?.is_none(), "edge1 unjoined");
    ensure!(machines(&hub).await?.is_empty(), "no machines left");
    ensure!(
        sets.list(&ListParams::default()).await?.items.is_empty(),
        "no MachineSets left"
    );
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), "default");
    ensure!(
        secrets.get_opt("edge1-kubeconfig").await?.is_none(),
        "no kubeconfig Secret left"
    );
    ensure!(!alive(pid), "the control-plane process {pid} is gone");
    ensure!(
        !data_dir.join("machines/default/edge1").exists(),
        "the cluster's data directory is gone"
    );
    up.interrupt().await?;
    Ok(())
}

/// Cluster API's Cluster kind, enough of it for the test: a CRD without a status subresource
/// so the test can write the phase a Cluster API controller would.
const CAPI_CRD: &str = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "clusters.cluster.x-k8s.io"},
  "spec": {"group": "cluster.x-k8s.io", "scope": "Namespaced",
    "names": {"plural": "clusters", "singular": "cluster", "kind": "Cluster", "listKind": "ClusterList"},
    "versions": [{"name": "v1beta1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_api_cluster_with_its_kubeconfig_secret_is_auto_joined() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("flotilla-capi-")
        .tempdir()?;
    let data_dir = dir.path().join("data");
    // The workload cluster Cluster API "provisioned".
    let workload_dir = dir.path().join("workload");
    let mut workload = tokio::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["apiserver", "--port", "0", "--data-dir"])
        .arg(&workload_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let workload_kubeconfig = eventually(WAIT, "the workload cluster's kubeconfig", || async {
        Ok(std::fs::read_to_string(workload_dir.join("kubeconfig")).ok())
    })
    .await?;
    // The management cluster is the hub itself, reached with the kubeconfig `up` writes.
    let up = Up::start_with(
        &data_dir,
        &[
            "--members",
            "1",
            "--capi-kubeconfig",
            data_dir.join("kubeconfig").to_str().context("a path")?,
            "--cluster-status-update-frequency",
            "1s",
        ],
    )
    .await?;
    let kubeconfig = data_dir.join("kubeconfig");
    let hub = client_from(&std::fs::read_to_string(&kubeconfig)?, Some("flotilla-hub")).await?;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(hub.clone());
    crds.create(&PostParams::default(), &serde_json::from_str(CAPI_CRD)?)
        .await?;
    let resource = ApiResource {
        group: "cluster.x-k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "cluster.x-k8s.io/v1beta1".into(),
        kind: "Cluster".into(),
        plural: "clusters".into(),
    };
    let capi: Api<DynamicObject> = Api::namespaced_with(hub.clone(), "default", &resource);
    let create_capi = || async {
        capi.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster",
                "metadata": {"name": "capi1", "namespace": "default"},
                "spec": {}, "status": {"phase": "Provisioned"},
            }))?,
        )
        .await
        .map_err(anyhow::Error::from)
    };
    eventually(WAIT, "the Cluster API CRD served", || async {
        Ok(create_capi().await.ok())
    })
    .await?;
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "capi1-kubeconfig", "namespace": "default",
                    "labels": {"cluster.x-k8s.io/cluster-name": "capi1"}},
                "type": "cluster.x-k8s.io/secret",
                "stringData": {"value": workload_kubeconfig},
            }))?,
        )
        .await?;
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let joined = eventually(WAIT, "capi1 joined and Ready", || async {
        Ok(clusters
            .get_opt("capi1")
            .await?
            .filter(|c| c.ready_condition().is_some_and(|r| r.status == "True")))
    })
    .await?;
    ensure!(
        joined
            .annotations()
            .get("provisioning.flotilla.io/joined-from")
            .map(String::as_str)
            == Some("capi:default/capi1-kubeconfig"),
        "{:?}",
        joined.annotations()
    );
    capi.delete("capi1", &DeleteParams::default()).await?;
    eventually(WAIT, "capi1 unjoined", || async {
        Ok(clusters.get_opt("capi1").await?.is_none().then_some(()))
    })
    .await?;
    up.interrupt().await?;
    let _ = workload.kill().await;
    Ok(())
}
