//! A local fleet whose members are simulated (`flotilla up`'s default): Nodes with capacity in
//! every member feed the Clusters' resource summaries, a Deployment divided across the members
//! gets Running pods there, and the hub's copy of the Deployment reports the fleet's ready
//! replicas once the simulated replicas are ready — no test writes any member status.

use std::time::Duration;

use anyhow::Result;
use flotilla_api::Cluster;
use flotilla_e2e::{TestFleet, eventually};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Node, Pod},
};
use kube::{Api, api::ListParams};

const WAIT: Duration = Duration::from_secs(60);

const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\nspec:\n  replicas: 6\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        resources: {requests: {cpu: 100m, memory: 64Mi}}\n---\napiVersion: policy.flotilla.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: web\n  namespace: default\nspec:\n  resourceSelectors:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  placement:\n    replicaScheduling:\n      replicaSchedulingType: Divided\n      replicaDivisionPreference: Weighted\n      weightPreference:\n        staticWeightList:\n        - targetCluster: {clusterNames: [member1, member2, member3]}\n          weight: 1\n";

/// A cpu quantity in millicores (`7600m`, `7.6`, `8`).
fn millis(quantity: &str) -> Option<i64> {
    match quantity.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => quantity
            .parse::<f64>()
            .ok()
            .map(|cores| (cores * 1000.0).round() as i64),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_members_run_the_replicas_and_the_hub_deployment_reports_them_ready() -> Result<()>
{
    let test = TestFleet::start_quickly_simulated(3).await?;
    test.wait_ready().await?;
    let members = ["member1", "member2", "member3"];

    // Every member has its Nodes, labelled with the member's region, and the hub sees their
    // capacity in the Cluster's resource summary.
    let clusters: Api<Cluster> = Api::all(test.hub().clone());
    for name in members {
        let nodes: Api<Node> = Api::all(test.member(name).await?);
        let listed = nodes.list(&ListParams::default()).await?;
        assert_eq!(listed.items.len(), 2, "{name}'s nodes");
        for node in &listed.items {
            let labels = node.metadata.labels.clone().unwrap_or_default();
            assert!(
                labels.contains_key("topology.kubernetes.io/region"),
                "{name}: {labels:?}"
            );
        }
        eventually(WAIT, &format!("{name}'s allocatable cpu"), || async {
            let cluster = clusters.get(name).await?;
            let cpu = cluster
                .status
                .and_then(|s| s.resource_summary)
                .and_then(|r| r.allocatable.get("cpu").cloned());
            Ok(cpu
                .and_then(|q| millis(&q.0))
                .filter(|m| *m == 7600)
                .map(|_| ()))
        })
        .await?;
    }

    test.apply(WEB).await?;
    // 6 replicas divided 1:1:1: two Running pods in each member.
    for name in members {
        let pods: Api<Pod> = Api::namespaced(test.member(name).await?, "default");
        eventually(WAIT, &format!("two Running pods in {name}"), || async {
            let running = pods
                .list(&ListParams::default().labels("app=web"))
                .await?
                .items
                .iter()
                .filter(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .count();
            Ok((running == 2).then_some(()))
        })
        .await?;
    }

    // The hub's Deployment sums the members' counters (Divided) and is Available.
    let hub: Api<Deployment> = Api::namespaced(test.hub().clone(), "default");
    eventually(
        WAIT,
        "the hub Deployment 6/6 ready and Available",
        || async {
            let web = hub.get("web").await?;
            let Some(status) = web.status else {
                return Ok(None);
            };
            let available = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Available" && c.status == "True");
            Ok((status.ready_replicas == Some(6)
                && status.available_replicas == Some(6)
                && status.observed_generation == web.metadata.generation
                && available)
                .then_some(()))
        },
    )
    .await?;
    test.stop().await;
    Ok(())
}
