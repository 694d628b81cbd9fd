//! The member simulator against a member API server (the embedded one in process, or a real
//! control plane with `FLOTILLA_TEST_SERVER=kube`, where pods are bound through
//! `pods/binding` and kube-controller-manager collects garbage): Nodes with capacity and
//! renewing Leases; a Deployment's pods bound and Running with kube's status; scaling; an image
//! rollout; pods that fit nowhere waiting Unschedulable until another workload's deletion frees
//! room; a StatefulSet's revisions; a DaemonSet on every node; a Job completing within its
//! parallelism; bare pods; and a restart that takes everything back without duplicates.

use std::{collections::BTreeMap, collections::BTreeSet, time::Duration};

use anyhow::{Context as _, Result, bail};
use flotilla_simulator::{LEASE_NAMESPACE, Options, POOL_LABEL};
use flotilla_testing::{ServerKind, TestHub};
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    batch::v1::Job,
    coordination::v1::Lease,
    core::v1::{Node, Pod},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(40), what, probe).await
}

/// A member cluster and a client for it. Neither server runs the workload controllers (the
/// real control plane's kube-controller-manager runs only the namespace, garbage-collector and
/// service-account controllers), so the simulator runs them on both.
struct Member {
    _hub: TestHub,
    client: Client,
    workloads: bool,
}

async fn member() -> Result<Member> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.create_member("member1").await?.client().await?;
    Ok(Member {
        workloads: matches!(hub.kind(), ServerKind::Embedded | ServerKind::Kube),
        _hub: hub,
        client,
    })
}

fn options(member: &Member) -> Options {
    Options {
        node_prefix: "member1".to_owned(),
        node_labels: BTreeMap::from([
            (
                "topology.kubernetes.io/region".to_owned(),
                "eu-west".to_owned(),
            ),
            (
                "topology.kubernetes.io/zone".to_owned(),
                "eu-west-1a".to_owned(),
            ),
        ]),
        heartbeat: Duration::from_millis(200),
        node_status_period: Duration::from_secs(1),
        startup_delay: Duration::from_millis(200),
        startup_jitter: 0.5,
        completion_delay: Duration::from_millis(300),
        workload_controllers: member.workloads,
        resync: Duration::from_secs(30),
        ..Options::default()
    }
}

/// Waits until the three simulated nodes are Ready and untainted (a real kube-apiserver
/// taints new Nodes not-ready until they are).
async fn nodes_ready(client: &Client) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("3 schedulable nodes", || async {
        let list = nodes
            .list(&ListParams::default().labels(&format!("{POOL_LABEL}=member1")))
            .await?
            .items;
        let ok = list.len() == 3
            && list.iter().all(|n| {
                let untainted = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty);
                let ready = n
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                untainted && ready
            });
        Ok(ok.then_some(()))
    })
    .await
}

/// A running simulator; stopped when dropped.
struct Running {
    stop: CancellationToken,
    task: Option<JoinHandle<flotilla_simulator::Result<()>>>,
}

impl Running {
    fn start(client: &Client, options: Options) -> Running {
        let stop = CancellationToken::new();
        let task = tokio::spawn(flotilla_simulator::run(
            client.clone(),
            options,
            stop.clone(),
        ));
        Running {
            stop,
            task: Some(task),
        }
    }

    async fn stop(mut self) -> Result<()> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .context("the simulator did not stop")???;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn create<K>(client: &Client, body: Value) -> Result<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    let object: K = serde_json::from_value(body)?;
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("create {}", object.name_any()))
}

fn deployment(name: &str, replicas: i32, image: &str, cpu: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image,
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}}})
}

async fn patch<K>(client: &Client, name: &str, body: Value) -> Result<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), NS);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .with_context(|| format!("patch {name}"))?;
    Ok(())
}

/// The pods labelled `app=<app>` that are not being deleted.
async fn pods(client: &Client, app: &str) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NS);
    Ok(api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

fn image_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .unwrap_or("")
}

const NODES: [&str; 3] = ["member1-node-1", "member1-node-2", "member1-node-3"];

/// `count` pods of `app`, every one Running, Ready and on a simulated node.
async fn running(client: &Client, app: &str, count: usize) -> Result<Vec<Pod>> {
    eventually(&format!("{count} Running pods of {app}"), || async {
        let pods = pods(client, app).await?;
        let all_running = pods.iter().all(|p| {
            phase(p) == "Running" && ready(p) && node_of(p).is_some_and(|n| NODES.contains(&n))
        });
        if pods.len() == count && all_running {
            return Ok(Some(pods));
        }
        let seen: Vec<String> = pods
            .iter()
            .map(|p| format!("{} {} on {:?}", p.name_any(), phase(p), node_of(p)))
            .collect();
        bail!("pods of {app}: {seen:?}")
    })
    .await
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

async fn deployment_status(client: &Client, name: &str) -> Result<(Value, i64)> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = api.get(name).await?;
    Ok((
        serde_json::to_value(&d.status)?,
        d.metadata.generation.unwrap_or(0),
    ))
}

/// Waits until the Deployment is rolled out with `replicas`, as kube's controller reports it.
async fn rolled_out(client: &Client, name: &str, replicas: i64) -> Result<Value> {
    eventually(
        &format!("Deployment {name} rolled out with {replicas}"),
        || async {
            let (status, generation) = deployment_status(client, name).await?;
            let ok = status["observedGeneration"] == generation
                && status["replicas"] == replicas
                && status["updatedReplicas"] == replicas
                && status["readyReplicas"] == replicas
                && status["availableReplicas"] == replicas
                && condition(&status, "Available").is_some_and(|c| {
                    c["status"] == "True" && c["reason"] == "MinimumReplicasAvailable"
                })
                && condition(&status, "Progressing").is_some_and(|c| {
                    c["status"] == "True" && c["reason"] == "NewReplicaSetAvailable"
                });
            Ok(ok.then_some(status))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_exist_with_capacity_and_their_leases_renew() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    let nodes: Api<Node> = Api::all(member.client.clone());
    let version = member.client.apiserver_version().await?.git_version;
    let listed = eventually("3 Ready simulated nodes", || async {
        let list = nodes
            .list(&ListParams::default().labels(&format!("{POOL_LABEL}=member1")))
            .await?
            .items;
        let ready = list.iter().all(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter().any(|c| {
                        c.type_ == "Ready"
                            && c.status == "True"
                            && c.reason.as_deref() == Some("KubeletReady")
                    })
                })
        });
        Ok((list.len() == 3 && ready).then_some(list))
    })
    .await?;
    let names: BTreeSet<String> = listed.iter().map(|n| n.name_any()).collect();
    assert_eq!(names, NODES.iter().map(|n| n.to_string()).collect());
    for node in &listed {
        let labels = node.labels();
        assert_eq!(labels["kubernetes.io/hostname"], node.name_any());
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "simulated");
        assert_eq!(labels["topology.kubernetes.io/zone"], "eu-west-1a");
        let status = node.status.clone().unwrap_or_default();
        let capacity = status.capacity.unwrap_or_default();
        let allocatable = status.allocatable.unwrap_or_default();
        assert_eq!(capacity["cpu"].0, "4");
        assert_eq!(capacity["memory"].0, "16Gi");
        assert_eq!(capacity["pods"].0, "110");
        assert_eq!(allocatable["cpu"].0, "3800m");
        assert_eq!(allocatable["memory"].0, "15Gi");
        let info = status.node_info.unwrap_or_default();
        assert_eq!(info.kubelet_version, version);
        assert_eq!(info.operating_system, "linux");
        let internal = status
            .addresses
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .map(|a| a.address)
            .unwrap_or_default();
        assert!(internal.starts_with("127.0."), "{internal}");
    }

    // Each Lease renews (renewTime moves) and the Ready heartbeat moves at its slower period.
    let leases: Api<Lease> = Api::namespaced(member.client.clone(), LEASE_NAMESPACE);
    let renew_time = |lease: &Lease| {
        lease
            .spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .map(|t| t.0)
    };
    let first = eventually("a Lease per node", || async {
        let mut times = BTreeMap::new();
        for node in NODES {
            match leases.get_opt(node).await? {
                Some(lease) => {
                    assert_eq!(
                        lease
                            .spec
                            .as_ref()
                            .and_then(|s| s.holder_identity.as_deref()),
                        Some(node)
                    );
                    times.insert(node, renew_time(&lease));
                }
                None => return Ok(None),
            }
        }
        Ok(Some(times))
    })
    .await?;
    eventually("every Lease renewed", || async {
        for node in NODES {
            let lease = leases.get(node).await?;
            if renew_time(&lease) <= first[node] {
                return Ok(None);
            }
        }
        Ok(Some(()))
    })
    .await?;
    let heartbeat = |node: &Node| {
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_heartbeat_time.clone())
            .map(|t| t.0)
    };
    let before = heartbeat(&nodes.get(NODES[0]).await?);
    eventually("the Ready heartbeat refreshed", || async {
        Ok((heartbeat(&nodes.get(NODES[0]).await?) > before).then_some(()))
    })
    .await?;
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_gets_running_pods_on_nodes_and_kubes_status() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    create::<Deployment>(&member.client, deployment("web", 3, "nginx:1.27", "100m")).await?;
    let pods = running(&member.client, "web", 3).await?;
    rolled_out(&member.client, "web", 3).await?;
    for pod in &pods {
        let status = pod.status.clone().unwrap_or_default();
        assert!(status.start_time.is_some());
        assert!(
            status
                .host_ip
                .as_deref()
                .is_some_and(|ip| ip.starts_with("127.0."))
        );
        assert!(
            status
                .pod_ip
                .as_deref()
                .is_some_and(|ip| ip.starts_with("10."))
        );
        assert!(status.qos_class.is_some());
        let containers = status.container_statuses.unwrap_or_default();
        assert_eq!(containers.len(), 1);
        assert!(containers[0].ready && containers[0].started == Some(true));
        assert!(
            containers[0]
                .state
                .as_ref()
                .and_then(|s| s.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .is_some()
        );
        let types: BTreeSet<String> = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.status == "True")
            .map(|c| c.type_)
            .collect();
        for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(types.contains(t), "{t} in {types:?}");
        }
        // Owned by the controller through ownerReferences.
        let owner = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .cloned()
            .context("a controller reference")?;
        assert_eq!(owner.kind, "ReplicaSet");
        assert!(owner.name.starts_with("web-"));
    }
    // Spread over the nodes, as the default scheduler's least-allocated scoring does.
    let nodes: BTreeSet<&str> = pods.iter().filter_map(node_of).collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let sets: Api<ReplicaSet> = Api::namespaced(member.client.clone(), NS);
    let sets = sets
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    assert_eq!(sets.len(), 1);
    assert!(sets[0].labels().contains_key("pod-template-hash"));
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_follow_a_deployment_scaled_up_and_down() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    create::<Deployment>(&member.client, deployment("web", 3, "nginx:1.27", "100m")).await?;
    rolled_out(&member.client, "web", 3).await?;
    patch::<Deployment>(&member.client, "web", json!({"spec": {"replicas": 5}})).await?;
    running(&member.client, "web", 5).await?;
    rolled_out(&member.client, "web", 5).await?;
    patch::<Deployment>(&member.client, "web", json!({"spec": {"replicas": 1}})).await?;
    running(&member.client, "web", 1).await?;
    rolled_out(&member.client, "web", 1).await?;
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_change_rolls_out_new_pods() -> Result<()> {
    let member = member().await?;
    // Slow enough starts to see the rollout in progress.
    let options = Options {
        startup_delay: Duration::from_millis(700),
        ..options(&member)
    };
    let sim = Running::start(&member.client, options);
    nodes_ready(&member.client).await?;
    create::<Deployment>(&member.client, deployment("web", 3, "nginx:1.27", "100m")).await?;
    rolled_out(&member.client, "web", 3).await?;
    let old: BTreeSet<String> = pods(&member.client, "web")
        .await?
        .iter()
        .filter_map(|p| p.uid())
        .collect();
    patch::<Deployment>(
        &member.client,
        "web",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}),
    )
    .await?;
    eventually("the rollout in progress", || async {
        let (status, generation) = deployment_status(&member.client, "web").await?;
        let rolling = status["observedGeneration"] == generation
            && status["updatedReplicas"].as_i64().unwrap_or(0) < 3
            && condition(&status, "Progressing")
                .is_some_and(|c| c["reason"] == "ReplicaSetUpdated");
        Ok(rolling.then_some(()))
    })
    .await?;
    let status = rolled_out(&member.client, "web", 3).await?;
    assert_eq!(status["updatedReplicas"], 3);
    let new = running(&member.client, "web", 3).await?;
    for pod in &new {
        assert_eq!(image_of(pod), "nginx:1.28");
        assert!(
            !old.contains(&pod.uid().unwrap_or_default()),
            "an old pod is left"
        );
    }
    let sets: Api<ReplicaSet> = Api::namespaced(member.client.clone(), NS);
    let sets = sets
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    assert_eq!(
        sets.len(),
        2,
        "the new ReplicaSet and the old one, scaled to 0"
    );
    let old_specs: Vec<i32> = sets
        .iter()
        .filter_map(|rs| rs.spec.as_ref().and_then(|s| s.replicas))
        .collect();
    assert!(
        old_specs.contains(&0) && old_specs.contains(&3),
        "{old_specs:?}"
    );
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_fit_nowhere_wait_unschedulable_until_room_frees() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    // 3 nodes with 3800m each: the hog takes 2 cpu of one, so only two of the big pods fit.
    create::<Deployment>(&member.client, deployment("hog", 1, "busybox", "2")).await?;
    running(&member.client, "hog", 1).await?;
    create::<Deployment>(&member.client, deployment("big", 3, "nginx", "3")).await?;
    let pending = eventually("one big pod Unschedulable", || async {
        let pods = pods(&member.client, "big").await?;
        let waiting: Vec<Pod> = pods
            .into_iter()
            .filter(|p| phase(p) == "Pending" && node_of(p).is_none())
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.type_ == "PodScheduled"
                                && c.status == "False"
                                && c.reason.as_deref() == Some("Unschedulable")
                        })
                    })
            })
            .collect();
        Ok((waiting.len() == 1).then_some(waiting))
    })
    .await?;
    let message = pending[0]
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert_eq!(message, "0/3 nodes are available: 3 Insufficient cpu.");
    eventually("big short of its replicas", || async {
        let (status, _) = deployment_status(&member.client, "big").await?;
        Ok((status["readyReplicas"] == 2 && status["replicas"] == 3).then_some(()))
    })
    .await?;

    // Deleting the hog frees its node: the waiting pod runs there.
    let deployments: Api<Deployment> = Api::namespaced(member.client.clone(), NS);
    deployments
        .delete("hog", &DeleteParams::background())
        .await?;
    let all: Api<Pod> = Api::namespaced(member.client.clone(), NS);
    eventually("the hog's pods gone, not only terminating", || async {
        let left = all
            .list(&ListParams::default().labels("app=hog"))
            .await?
            .items;
        Ok(left.is_empty().then_some(()))
    })
    .await?;
    running(&member.client, "big", 3).await?;
    rolled_out(&member.client, "big", 3).await?;
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_rolls_its_pods_from_one_revision_to_the_next() -> Result<()> {
    let member = member().await?;
    let options = Options {
        startup_delay: Duration::from_millis(500),
        ..options(&member)
    };
    let sim = Running::start(&member.client, options);
    nodes_ready(&member.client).await?;
    create::<StatefulSet>(
        &member.client,
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": NS},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}}),
    )
    .await?;
    let sets: Api<StatefulSet> = Api::namespaced(member.client.clone(), NS);
    let settled = |image: &'static str| {
        let sets = sets.clone();
        let client = member.client.clone();
        async move {
            eventually(&format!("db rolled out on {image}"), || async {
                let set = sets.get("db").await?;
                let status = serde_json::to_value(&set.status)?;
                let pods = pods(&client, "db").await?;
                let update = status["updateRevision"].as_str().unwrap_or("").to_owned();
                let ok = status["observedGeneration"] == set.metadata.generation.unwrap_or(0)
                    && status["readyReplicas"] == 3
                    && status["currentReplicas"] == 3
                    && status["updatedReplicas"] == 3
                    && !update.is_empty()
                    && status["currentRevision"] == update
                    && pods.len() == 3
                    && pods.iter().all(|p| {
                        phase(p) == "Running"
                            && image_of(p) == image
                            && p.labels().get("controller-revision-hash") == Some(&update)
                    });
                Ok(ok.then_some((update, pods)))
            })
            .await
        }
    };
    let (first, pods) = settled("postgres:16").await?;
    let names: BTreeSet<String> = pods.iter().map(|p| p.name_any()).collect();
    assert_eq!(names, ["db-0", "db-1", "db-2"].map(String::from).into());
    patch::<StatefulSet>(
        &member.client,
        "db",
        json!({"spec": {"template": {"spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}}),
    )
    .await?;
    eventually(
        "db rolling: current and update revisions differ",
        || async {
            let status = serde_json::to_value(&sets.get("db").await?.status)?;
            let rolling = status["currentRevision"] == first.as_str()
                && status["updateRevision"] != first.as_str()
                && status["updatedReplicas"].as_i64().unwrap_or(3) < 3;
            Ok(rolling.then_some(()))
        },
    )
    .await?;
    let (second, _) = settled("postgres:17").await?;
    assert_ne!(first, second);
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonset_runs_one_pod_on_every_node() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    create::<DaemonSet>(
        &member.client,
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "agent", "image": "fluent-bit"}]}}}}),
    )
    .await?;
    let pods = running(&member.client, "agent", 3).await?;
    let nodes: BTreeSet<&str> = pods.iter().filter_map(node_of).collect();
    assert_eq!(nodes, NODES.into());
    let sets: Api<DaemonSet> = Api::namespaced(member.client.clone(), NS);
    eventually("the DaemonSet's status", || async {
        let set = sets.get("agent").await?;
        let s = serde_json::to_value(&set.status)?;
        let ok = s["observedGeneration"] == set.metadata.generation.unwrap_or(0)
            && s["desiredNumberScheduled"] == 3
            && s["currentNumberScheduled"] == 3
            && s["numberReady"] == 3
            && s["numberAvailable"] == 3
            && s["updatedNumberScheduled"] == 3
            && s["numberMisscheduled"] == 0;
        Ok(ok.then_some(()))
    })
    .await?;
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_completes_within_its_parallelism() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    create::<Job>(
        &member.client,
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "batch", "namespace": NS},
            "spec": {"completions": 3, "parallelism": 2,
                "template": {"metadata": {"labels": {"app": "batch"}},
                    "spec": {"restartPolicy": "Never",
                        "containers": [{"name": "work", "image": "busybox"}]}}}}),
    )
    .await?;
    let jobs: Api<Job> = Api::namespaced(member.client.clone(), NS);
    let status = eventually("the Job complete", || async {
        let running = pods(&member.client, "batch")
            .await?
            .iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
            .count();
        if running > 2 {
            bail!("{running} pods run at once; parallelism is 2");
        }
        let status = serde_json::to_value(&jobs.get("batch").await?.status)?;
        let complete = condition(&status, "Complete").is_some_and(|c| c["status"] == "True");
        Ok(complete.then_some(status))
    })
    .await?;
    assert_eq!(status["succeeded"], 3);
    // kube-apiserver leaves zero counts out.
    assert_eq!(status["active"].as_i64().unwrap_or(0), 0);
    assert!(status["completionTime"].is_string());
    assert!(status["startTime"].is_string());
    assert!(condition(&status, "SuccessCriteriaMet").is_some_and(|c| c["status"] == "True"));
    let pods = pods(&member.client, "batch").await?;
    assert_eq!(pods.iter().filter(|p| phase(p) == "Succeeded").count(), 3);
    let terminated = pods[0]
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .map(|t| (t.exit_code, t.reason.clone()));
    assert_eq!(terminated, Some((0, Some("Completed".to_owned()))));
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_pods_on_a_node_run_and_ones_that_do_not_restart_succeed() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    for (name, policy) in [("server", "Always"), ("task", "Never")] {
        create::<Pod>(
            &member.client,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
                "spec": {"nodeName": NODES[1], "restartPolicy": policy,
                    "containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await?;
    }
    running(&member.client, "server", 1).await?;
    eventually("the task Succeeded", || async {
        let pods = pods(&member.client, "task").await?;
        Ok((pods.len() == 1 && phase(&pods[0]) == "Succeeded").then_some(()))
    })
    .await?;
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_simulator_takes_back_its_nodes_and_pods_without_duplicates() -> Result<()> {
    let member = member().await?;
    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    create::<Deployment>(&member.client, deployment("web", 3, "nginx:1.27", "100m")).await?;
    let before = running(&member.client, "web", 3).await?;
    rolled_out(&member.client, "web", 3).await?;
    let nodes: Api<Node> = Api::all(member.client.clone());
    let node_uids =
        |list: Vec<Node>| -> BTreeSet<String> { list.iter().filter_map(|n| n.uid()).collect() };
    let nodes_before = node_uids(nodes.list(&ListParams::default()).await?.items);
    sim.stop().await?;

    let sim = Running::start(&member.client, options(&member));
    nodes_ready(&member.client).await?;
    // The new run works (it scales), and has kept the pods it found.
    patch::<Deployment>(&member.client, "web", json!({"spec": {"replicas": 4}})).await?;
    let after = running(&member.client, "web", 4).await?;
    rolled_out(&member.client, "web", 4).await?;
    let uids: BTreeSet<String> = after.iter().filter_map(|p| p.uid()).collect();
    for pod in &before {
        assert!(
            uids.contains(&pod.uid().unwrap_or_default()),
            "{} was replaced",
            pod.name_any()
        );
    }
    assert_eq!(pods(&member.client, "web").await?.len(), 4);
    assert_eq!(
        node_uids(nodes.list(&ListParams::default()).await?.items),
        nodes_before
    );
    let sets: Api<ReplicaSet> = Api::namespaced(member.client.clone(), NS);
    assert_eq!(
        sets.list(&ListParams::default().labels("app=web"))
            .await?
            .items
            .len(),
        1
    );
    // Heartbeats resumed.
    let leases: Api<Lease> = Api::namespaced(member.client.clone(), LEASE_NAMESPACE);
    let renewed = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .map(|t| t.0)
    };
    let first = renewed(&leases.get(NODES[0]).await?);
    eventually("the Lease renewed after the restart", || async {
        Ok((renewed(&leases.get(NODES[0]).await?) > first).then_some(()))
    })
    .await?;
    sim.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_workload_controllers_the_kubelet_still_runs_and_binds_pods() -> Result<()> {
    let member = member().await?;
    let options = Options {
        workload_controllers: false,
        ..options(&member)
    };
    let sim = Running::start(&member.client, options);
    nodes_ready(&member.client).await?;
    for (name, node) in [("placed", Some(NODES[2])), ("unbound", None)] {
        create::<Pod>(
            &member.client,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await?;
    }
    let placed = running(&member.client, "placed", 1).await?;
    assert_eq!(node_of(&placed[0]), Some(NODES[2]));
    let binding = member
        .client
        .list_core_api_resources("v1")
        .await?
        .resources
        .iter()
        .any(|r| r.name == "pods/binding");
    if binding {
        running(&member.client, "unbound", 1).await?;
    } else {
        // The embedded server serves no pods/binding: the pod says why it waits.
        eventually("the unbound pod's SchedulerError", || async {
            let pods = pods(&member.client, "unbound").await?;
            let reason = pods
                .first()
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
                .filter(|c| c.status == "False")
                .and_then(|c| c.reason.clone());
            Ok((reason.as_deref() == Some("SchedulerError")).then_some(()))
        })
        .await?;
    }
    sim.stop().await
}

/// A provider creates a Node in the simulator's pool with a size of its own: the simulator
/// heartbeats it with that capacity. Taking the node out of the pool stops its heartbeats (its
/// "kubelet" dies), and the node lifecycle the simulator plays for a member without
/// kube-controller-manager's turns its conditions Unknown after the grace period.
#[tokio::test]
async fn provider_nodes_get_their_size_and_silent_nodes_turn_unknown() -> Result<()> {
    let member = member().await?;
    if !member.workloads {
        return Ok(());
    }
    let sim = Running::start(
        &member.client,
        Options {
            nodes: 0,
            node_monitor_grace_period: Duration::from_secs(2),
            ..options(&member)
        },
    );
    let nodes: Api<Node> = Api::all(member.client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "machine-a", "labels": {POOL_LABEL: "member1"},
            "annotations": {flotilla_simulator::CPU_ANNOTATION: "8",
                flotilla_simulator::MEMORY_ANNOTATION: "32"}},
        "spec": {"providerID": "local://edge1/machine-a"},
    }))?;
    nodes.create(&PostParams::default(), &node).await?;
    let condition = |n: &Node, status: &str, reason: &str| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "Ready" && c.status == status && c.reason.as_deref() == Some(reason)
                })
            })
    };
    let ready = eventually("the provider's node Ready with its own size", || async {
        Ok(nodes
            .get_opt("machine-a")
            .await?
            .filter(|n| condition(n, "True", "KubeletReady")))
    })
    .await?;
    let capacity = ready.status.and_then(|s| s.capacity).unwrap_or_default();
    assert_eq!(capacity["cpu"].0, "8");
    assert_eq!(capacity["memory"].0, "32Gi");

    nodes
        .patch(
            "machine-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {POOL_LABEL: null}}})),
        )
        .await?;
    let silent = eventually("the silent node's conditions Unknown", || async {
        Ok(nodes
            .get_opt("machine-a")
            .await?
            .filter(|n| condition(n, "Unknown", "NodeStatusUnknown")))
    })
    .await?;
    let conditions = silent.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(
        conditions.iter().all(|c| c.status == "Unknown"
            && c.message.as_deref() == Some("Kubelet stopped posting node status.")),
        "{conditions:?}"
    );
    // A pod created now waits: the pool has no node with room (the silent one takes nothing).
    create::<Pod>(
        &member.client,
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "after-silence", "namespace": NS},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(member.client.clone(), NS);
    eventually("the pod Pending and unschedulable", || async {
        let pod = pods.get("after-silence").await?;
        let unschedulable = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter().any(|c| {
                    c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable")
                })
            });
        Ok((unschedulable && node_of(&pod).is_none()).then_some(()))
    })
    .await?;
    sim.stop().await
}
