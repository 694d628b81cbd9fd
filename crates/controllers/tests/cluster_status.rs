//! The cluster-status controller against the hub API server (embedded or real), through kube-rs over real
//! HTTPS: a registered member turns Ready with its version and APIs, its Nodes and Pods show
//! up in the summaries, a missing Secret is reported (and recovers when created), an unchanged
//! member is not rewritten, Pull clusters are left alone, and a dead member turns
//! ClusterNotReachable only after the failure threshold.

use std::{
    collections::BTreeMap,
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use flotilla_api::{
    Cluster,
    cluster::{ClusterSpec, ClusterStatus, ClusterSyncMode, LocalSecretReference},
    conditions::{self, COMPLETE_API_ENABLEMENTS, reasons},
    keys,
};
use flotilla_controllers::cluster_status::{self, Options};
use flotilla_testing::{MemberServer, TestHub};
use k8s_openapi::{
    ByteString,
    api::core::v1::{Namespace, Node, Pod, Secret},
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::Condition},
};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};
use serde_json::json;

const PERIOD: Duration = Duration::from_millis(200);
const THRESHOLD: Duration = Duration::from_millis(1500);

async fn start() -> Result<(TestHub, Client)> {
    let test_hub = TestHub::start().await?;
    let client = test_hub.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(keys::namespaces::CLUSTER.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;
    Ok((test_hub, client))
}

async fn create_secret(hub: &Client, name: &str, server: &MemberServer) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), keys::namespaces::CLUSTER);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "token".to_owned(),
                ByteString(server.token.as_bytes().to_vec()),
            ),
            (
                "caBundle".to_owned(),
                ByteString(server.ca_pem.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}

async fn create_cluster(hub: &Client, name: &str, mode: ClusterSyncMode, url: &str) -> Result<()> {
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let cluster = Cluster::new(
        name,
        ClusterSpec {
            sync_mode: mode,
            api_endpoint: Some(url.to_owned()),
            secret_ref: Some(LocalSecretReference {
                namespace: keys::namespaces::CLUSTER.to_owned(),
                name: name.to_owned(),
            }),
            ..Default::default()
        },
    );
    clusters.create(&PostParams::default(), &cluster).await?;
    Ok(())
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(20), what, probe).await
}

fn ready(cluster: &Cluster) -> Option<Condition> {
    cluster.ready_condition().cloned()
}

fn status(cluster: &Cluster) -> ClusterStatus {
    cluster.status.clone().unwrap_or_default()
}

async fn wait_ready(api: &Api<Cluster>, name: &str, reason: &str) -> Result<Cluster> {
    eventually(&format!("{name} Ready with reason {reason}"), || async {
        let cluster = api.get(name).await?;
        Ok(ready(&cluster)
            .is_some_and(|c| c.reason == reason)
            .then_some(cluster))
    })
    .await
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

async fn add_node(
    member: &Client,
    name: &str,
    ready: bool,
    allocatable: &[(&str, &str)],
) -> Result<()> {
    let nodes: Api<Node> = Api::all(member.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    nodes.create(&PostParams::default(), &node).await?;
    let status = json!({"status": {
        "allocatable": quantities(allocatable),
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

async fn add_pod(
    member: &Client,
    name: &str,
    node: Option<&str>,
    phase: &str,
    cpu: &str,
    memory: &str,
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(member.clone(), "default");
    let mut spec = json!({"containers": [{
        "name": "app",
        "image": "nginx",
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
    }]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))?;
    pods.create(&PostParams::default(), &pod).await?;
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": phase}})),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_status_controller_end_to_end() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let (test_hub, hub) = start().await?;
    let clusters: Api<Cluster> = Api::all(hub.clone());

    let server = test_hub.create_member("member1").await?;
    let url = server.url.clone();
    create_secret(&hub, "member1", &server).await?;
    create_cluster(&hub, "member1", ClusterSyncMode::Push, &url).await?;
    let other = test_hub.create_member("member2").await?;
    create_cluster(&hub, "nosecret", ClusterSyncMode::Push, &other.url).await?;
    create_cluster(&hub, "pulled", ClusterSyncMode::Pull, &url).await?;

    let options = Options {
        period: PERIOD,
        failure_threshold: THRESHOLD,
        concurrency: 4,
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let controller = flotilla_testing::Controllers::start(&hub, |ctx| {
        Ok(vec![Box::pin(cluster_status::controller(ctx, options)?)])
    })?;

    // A registered member becomes Ready with its version and API enablements.
    let member1 = wait_ready(&clusters, "member1", reasons::CLUSTER_READY).await?;
    let condition = ready(&member1).context("Ready condition")?;
    assert_eq!(condition.status, "True");
    assert_eq!(
        condition.message,
        "cluster is healthy and ready to accept workloads"
    );
    let s = status(&member1);
    assert!(
        s.kubernetes_version
            .as_deref()
            .is_some_and(|v| v.starts_with('v')),
        "kubernetesVersion: {:?}",
        s.kubernetes_version
    );
    let apps = s
        .api_enablements
        .iter()
        .find(|e| e.group_version == "apps/v1")
        .context("apps/v1 in apiEnablements")?;
    assert!(
        apps.resources
            .iter()
            .any(|r| r.name == "deployments" && r.kind == "Deployment")
    );
    assert!(
        s.api_enablements
            .iter()
            .flat_map(|e| &e.resources)
            .all(|r| !r.name.contains('/')),
        "subresources are skipped"
    );
    let gvs: Vec<&str> = s
        .api_enablements
        .iter()
        .map(|e| e.group_version.as_str())
        .collect();
    let mut sorted = gvs.clone();
    sorted.sort();
    assert_eq!(gvs, sorted, "apiEnablements are sorted");
    assert!(gvs.contains(&"v1") && !gvs.contains(&"cluster.flotilla.io/v1alpha1"));
    assert!(conditions::is_true(&s.conditions, COMPLETE_API_ENABLEMENTS));
    assert!(s.last_heartbeat_time.is_none(), "no heartbeat is written");

    // A cluster whose Secret is missing says so, and recovers once the Secret exists.
    let nosecret = wait_ready(&clusters, "nosecret", reasons::STATUS_COLLECTION_FAILED).await?;
    let condition = ready(&nosecret).context("Ready condition")?;
    assert_eq!(condition.status, "False");
    assert!(
        condition.message.contains("flotilla-cluster/nosecret"),
        "{}",
        condition.message
    );
    create_secret(&hub, "nosecret", &other).await?;
    wait_ready(&clusters, "nosecret", reasons::CLUSTER_READY).await?;

    // Nodes and Pods on the member show up in the summaries.
    let member = server.client().await?;
    add_node(
        &member,
        "n1",
        true,
        &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")],
    )
    .await?;
    add_node(
        &member,
        "n2",
        false,
        &[("cpu", "2"), ("memory", "1Gi"), ("pods", "110")],
    )
    .await?;
    add_pod(&member, "web", Some("n1"), "Running", "500m", "1Gi").await?;
    add_pod(&member, "done", Some("n1"), "Succeeded", "8", "8Gi").await?;
    add_pod(&member, "waiting", None, "Pending", "1", "256Mi").await?;
    let member1 = eventually("node and resource summaries", || async {
        let cluster = clusters.get("member1").await?;
        let s = status(&cluster);
        let done = s.node_summary.as_ref().is_some_and(|n| n.total_num == 2)
            && s.resource_summary
                .as_ref()
                .is_some_and(|r| r.allocating.contains_key("cpu"));
        Ok(done.then_some(cluster))
    })
    .await?;
    let s = status(&member1);
    let nodes = s.node_summary.context("nodeSummary")?;
    assert_eq!((nodes.total_num, nodes.ready_num), (2, 1));
    let resources = s.resource_summary.context("resourceSummary")?;
    assert_eq!(
        resources.allocatable,
        quantities(&[("cpu", "6"), ("memory", "9663676416"), ("pods", "220")])
    );
    assert_eq!(
        resources.allocated,
        quantities(&[("cpu", "500m"), ("memory", "1073741824"), ("pods", "1")])
    );
    assert_eq!(
        resources.allocating,
        quantities(&[("cpu", "1"), ("memory", "268435456"), ("pods", "1")])
    );

    // An unchanged member is not rewritten.
    let before = clusters.get("member1").await?.resource_version();
    controller.passes("cluster-status", 6).await?;
    let after = clusters.get("member1").await?.resource_version();
    assert_eq!(
        before, after,
        "status was rewritten although nothing changed"
    );

    // Pull clusters are left to their agent.
    assert!(
        clusters.get("pulled").await?.status.is_none(),
        "a Pull cluster's status was written"
    );

    // A dead member turns ClusterNotReachable, but only after the failure threshold.
    let version = status(&member1).kubernetes_version;
    let removed_at = Instant::now();
    test_hub.stop_member("member1").await?;
    let member1 = wait_ready(&clusters, "member1", reasons::CLUSTER_NOT_REACHABLE).await?;
    let elapsed = removed_at.elapsed();
    assert!(
        elapsed >= THRESHOLD,
        "turned NotReachable after {elapsed:?}, before the {THRESHOLD:?} threshold"
    );
    let condition = ready(&member1).context("Ready condition")?;
    assert_eq!(condition.status, "False");
    assert!(
        condition.message.starts_with("cluster is not reachable"),
        "{}",
        condition.message
    );
    assert_eq!(
        status(&member1).kubernetes_version,
        version,
        "what could not be collected keeps its last value"
    );
    // Another member, still alive, stays Ready.
    let nosecret = clusters.get("nosecret").await?;
    assert_eq!(
        ready(&nosecret).map(|c| c.reason),
        Some(reasons::CLUSTER_READY.to_owned())
    );

    controller.stop().await;
    Ok(())
}
