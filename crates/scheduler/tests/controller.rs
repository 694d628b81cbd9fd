//! The scheduler controller against the embedded API server, through kube-rs over real HTTPS:
//! first schedule, no-op passes write nothing, Duplicated follows new clusters, failures set the
//! condition and an Event, manual reschedules, ClusterResourceBindings, other schedulers.

use std::{future::Future, time::Duration};

use anyhow::{Context as _, Result};
use flotilla_api::{
    Cluster, ClusterResourceBinding, ResourceBinding,
    conditions::{self, SCHEDULED, reasons},
    keys::annotations::APPLIED_PLACEMENT,
    policy::ClusterAffinity,
};
use flotilla_scheduler::{
    controller::{Options, run},
    testing::{BindingBuilder, ClusterBuilder},
};
use flotilla_testing::TestHub;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn start() -> Result<(TestHub, Client)> {
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    Ok((hub, client))
}

/// Creates a Cluster and then its status (the status subresource ignores status on create).
async fn add_cluster(client: &Client, cluster: Cluster) -> Result<()> {
    let api: Api<Cluster> = Api::all(client.clone());
    let name = cluster.name_any();
    api.create(&PostParams::default(), &cluster)
        .await
        .with_context(|| format!("create cluster {name}"))?;
    let patch = json!({"status": cluster.status});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(15), what, probe).await
}

fn clusters_of(rb: &ResourceBinding) -> Vec<(String, i32)> {
    rb.spec
        .clusters
        .iter()
        .map(|t| (t.name.clone(), t.replicas))
        .collect()
}

fn scheduled_condition(
    rb: &ResourceBinding,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    conditions::find(&rb.status.as_ref()?.conditions, SCHEDULED).cloned()
}

async fn wait_scheduled(
    api: &Api<ResourceBinding>,
    name: &str,
    want: &[(&str, i32)],
) -> Result<ResourceBinding> {
    let want: Vec<(String, i32)> = want.iter().map(|(n, r)| (n.to_string(), *r)).collect();
    eventually(&format!("{name} scheduled to {want:?}"), || async {
        let rb = api.get(name).await?;
        let ok = clusters_of(&rb) == want
            && scheduled_condition(&rb).is_some_and(|c| c.status == "True")
            && rb
                .status
                .as_ref()
                .and_then(|s| s.scheduler_observed_generation)
                == rb.metadata.generation;
        Ok(ok.then_some(rb))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_controller_end_to_end() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let (_hub, client) = start().await?;
    add_cluster(&client, ClusterBuilder::new("m1").pods(50).build()).await?;
    add_cluster(&client, ClusterBuilder::new("m2").pods(50).build()).await?;
    let scheduler = tokio::spawn(run(
        client.clone(),
        Options {
            resync: Duration::from_millis(300),
            ..Options::default()
        },
    ));
    let rbs: Api<ResourceBinding> = Api::namespaced(client.clone(), "default");

    // First schedule: static weights 2:1.
    let mut weighted = BindingBuilder::new()
        .static_weights(&[("m1", 2), ("m2", 1)])
        .replicas(3)
        .build();
    weighted.metadata.name = Some("weighted".into());
    weighted.metadata.uid = None;
    rbs.create(&PostParams::default(), &weighted).await?;
    let rb = wait_scheduled(&rbs, "weighted", &[("m1", 2), ("m2", 1)]).await?;
    let condition = scheduled_condition(&rb).context("condition")?;
    assert_eq!(condition.reason, reasons::SUCCESS);
    assert!(
        rb.annotations().contains_key(APPLIED_PLACEMENT),
        "applied-placement annotation recorded"
    );
    assert!(
        rb.status
            .as_ref()
            .and_then(|s| s.last_scheduled_time.as_ref())
            .is_some(),
        "lastScheduledTime set"
    );
    // The embedded server does not track managedFields yet (nor apply patches; the controller
    // falls back to merge patches under the same field manager). Where it does, the scheduler
    // must be the manager of what it wrote.
    let managers: Vec<String> = rb
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    if !managers.is_empty() {
        assert!(
            managers.iter().any(|m| m == "flotilla-scheduler"),
            "written by the scheduler's field manager: {managers:?}"
        );
    }

    // Unchanged binding: resyncs and a relevant cluster change write nothing.
    let rv = rb.resource_version();
    let clusters: Api<Cluster> = Api::all(client.clone());
    clusters
        .patch(
            "m2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rbs.get("weighted").await?.resource_version(),
        rv,
        "a no-op pass must not write"
    );

    // Scale: replicas change re-divides.
    rbs.patch(
        "weighted",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 6}})),
    )
    .await?;
    wait_scheduled(&rbs, "weighted", &[("m1", 4), ("m2", 2)]).await?;

    // Duplicated follows a new cluster.
    let mut dup = BindingBuilder::new().duplicated().replicas(2).build();
    dup.metadata.name = Some("dup".into());
    dup.metadata.uid = None;
    rbs.create(&PostParams::default(), &dup).await?;
    wait_scheduled(&rbs, "dup", &[("m1", 2), ("m2", 2)]).await?;
    add_cluster(&client, ClusterBuilder::new("m3").pods(50).build()).await?;
    wait_scheduled(&rbs, "dup", &[("m1", 2), ("m2", 2), ("m3", 2)]).await?;
    // … and leaves a cluster that gets an untolerated NoExecute taint.
    clusters
        .patch(
            "m3",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": [{"key": "broken", "effect": "NoExecute"}]}})),
        )
        .await?;
    wait_scheduled(&rbs, "dup", &[("m1", 2), ("m2", 2)]).await?;

    // Nothing fits: condition False with per-cluster reasons, and a Warning event.
    let mut nowhere = BindingBuilder::new()
        .affinity(ClusterAffinity {
            cluster_names: vec!["m3".into()],
            ..Default::default()
        })
        .duplicated()
        .replicas(1)
        .build();
    nowhere.metadata.name = Some("nowhere".into());
    nowhere.metadata.uid = None;
    rbs.create(&PostParams::default(), &nowhere).await?;
    let condition = eventually("NoClusterFit", || async {
        let rb = rbs.get("nowhere").await?;
        Ok(scheduled_condition(&rb).filter(|c| c.status == "False"))
    })
    .await?;
    assert_eq!(condition.reason, reasons::NO_CLUSTER_FIT);
    assert!(
        condition.message.contains("0/3 clusters are available"),
        "{}",
        condition.message
    );
    assert!(
        condition
            .message
            .contains("m1: cluster(s) did not match the placement cluster affinity"),
        "{}",
        condition.message
    );
    assert!(
        condition
            .message
            .contains("m3: cluster(s) had untolerated taint {broken:NoExecute}"),
        "{}",
        condition.message
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    let event = eventually("a failure event", || async {
        let list = events.list(&ListParams::default()).await?;
        Ok(list
            .items
            .into_iter()
            .find(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("nowhere")))
    })
    .await?;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let events_for_success = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("weighted"))
        .count();
    assert_eq!(events_for_success, 0, "no event when scheduling succeeds");

    // A request the scheduler cannot read is reported as SchedulerError with the reason.
    let mut garbled = BindingBuilder::new()
        .dynamic()
        .replicas(1)
        .request(&[("cpu", "lots")])
        .build();
    garbled.metadata.name = Some("garbled".into());
    garbled.metadata.uid = None;
    rbs.create(&PostParams::default(), &garbled).await?;
    let condition = eventually("SchedulerError", || async {
        let rb = rbs.get("garbled").await?;
        Ok(scheduled_condition(&rb).filter(|c| c.status == "False"))
    })
    .await?;
    assert_eq!(condition.reason, reasons::SCHEDULER_ERROR);
    assert!(
        condition.message.contains("invalid quantity \"lots\""),
        "{}",
        condition.message
    );

    // Manual reschedule bumps lastScheduledTime past the trigger.
    let before = rbs.get("weighted").await?;
    let triggered = k8s_openapi::jiff::Timestamp::now();
    rbs.patch(
        "weighted",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"rescheduleTriggeredAt": triggered.to_string()}})),
    )
    .await?;
    eventually("lastScheduledTime after the trigger", || async {
        let rb = rbs.get("weighted").await?;
        let last = rb
            .status
            .as_ref()
            .and_then(|s| s.last_scheduled_time.as_ref())
            .map(|t| t.0);
        Ok(last.filter(|l| *l > triggered).map(|_| ()))
    })
    .await?;
    assert_ne!(
        rbs.get("weighted").await?.resource_version(),
        before.resource_version()
    );

    // A ClusterResourceBinding for a non-workload goes to every cluster with 0 replicas.
    let crbs: Api<ClusterResourceBinding> = Api::all(client.clone());
    let crb: ClusterResourceBinding = serde_json::from_value(json!({
        "apiVersion": "work.flotilla.io/v1alpha1",
        "kind": "ClusterResourceBinding",
        "metadata": {"name": "cfg"},
        "spec": {"resource": {"apiVersion": "v1", "kind": "ConfigMap", "name": "cfg", "namespace": "default"}, "placement": {}},
    }))?;
    crbs.create(&PostParams::default(), &crb).await?;
    eventually("the CRB scheduled", || async {
        let crb = crbs.get("cfg").await?;
        let got: Vec<(String, i32)> = crb
            .spec
            .clusters
            .iter()
            .map(|t| (t.name.clone(), t.replicas))
            .collect();
        Ok((got == vec![("m1".to_string(), 0), ("m2".to_string(), 0)]).then_some(()))
    })
    .await?;

    // Another scheduler's binding is left alone.
    let mut foreign = BindingBuilder::new().duplicated().replicas(1).build();
    foreign.metadata.name = Some("foreign".into());
    foreign.metadata.uid = None;
    foreign.spec.scheduler_name = Some("someone-else".into());
    rbs.create(&PostParams::default(), &foreign).await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let foreign = rbs.get("foreign").await?;
    assert!(
        foreign.spec.clusters.is_empty() && foreign.status.is_none(),
        "untouched: {:?}",
        foreign.status
    );

    // A removed cluster: the divided binding moves its replicas, the non-workload follows.
    clusters.delete("m2", &Default::default()).await?;
    wait_scheduled(&rbs, "weighted", &[("m1", 6)]).await?;
    eventually("the CRB without m2", || async {
        let crb = crbs.get("cfg").await?;
        let got: Vec<(String, i32)> = crb
            .spec
            .clusters
            .iter()
            .map(|t| (t.name.clone(), t.replicas))
            .collect();
        Ok((got == vec![("m1".to_string(), 0)]).then_some(()))
    })
    .await?;

    scheduler.abort();
    Ok(())
}
