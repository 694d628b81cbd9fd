//! The scheduler controller against the hub API server (embedded, or real with
//! `FLOTILLA_TEST_SERVER=kube`), through kube-rs over real HTTPS:
//! first schedule, no-op passes write nothing (static, Duplicated and non-workload bindings),
//! Duplicated follows new clusters and stays on tainted ones, failures set the condition and an
//! Event, manual reschedules (including a trigger in the future), ClusterResourceBindings,
//! other schedulers.

use std::{future::Future, time::Duration};

use anyhow::{Context as _, Result};
use flotilla_api::{
    Cluster, ClusterResourceBinding, ResourceBinding,
    conditions::{self, SCHEDULED, reasons},
    keys::annotations::APPLIED_PLACEMENT,
    policy::ClusterAffinity,
};
use flotilla_scheduler::controller::{Options, controller};
use flotilla_testing::{
    TestHub,
    fixtures::{BindingBuilder, ClusterBuilder},
};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

/// The runner whose passes the no-op checks wait for.
const PASSES: &str = "scheduler-resourcebinding";

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

/// Now, to the second (as the API serialises times).
fn now_seconds() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn last_scheduled(rb: &ResourceBinding) -> Option<Timestamp> {
    rb.status
        .as_ref()?
        .last_scheduled_time
        .as_ref()
        .map(|t| t.0)
}

/// Sets `rescheduleTriggeredAt` to now + `offset` and waits for the Fresh pass: the new
/// generation scheduled and `lastScheduledTime` moved on. Checks that it is not later than the
/// clock and, for a trigger in the past, not earlier than the trigger. Returns the new
/// `lastScheduledTime`.
async fn reschedule(
    rbs: &Api<ResourceBinding>,
    name: &str,
    offset: SignedDuration,
) -> Result<Timestamp> {
    // Times have whole seconds: start a new second, so the trigger is later than the last
    // schedule and a new lastScheduledTime differs from the old one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let triggered = now_seconds() + offset;
    let before = rbs.get(name).await?;
    let last_before = last_scheduled(&before);
    let patched = rbs
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"rescheduleTriggeredAt": Time(triggered)}})),
        )
        .await?;
    let generation = patched.metadata.generation;
    let rb = eventually(&format!("{name} rescheduled for {triggered}"), || async {
        let rb = rbs.get(name).await?;
        let done = rb.metadata.generation >= generation
            && scheduled_condition(&rb).is_some_and(|c| {
                c.status == "True" && c.observed_generation == rb.metadata.generation
            })
            && last_scheduled(&rb) != last_before;
        Ok(done.then_some(rb))
    })
    .await?;
    let last = last_scheduled(&rb).context("lastScheduledTime")?;
    assert!(
        last <= Timestamp::now(),
        "lastScheduledTime {last} is in the future"
    );
    if triggered <= Timestamp::now() {
        assert!(
            last >= triggered,
            "lastScheduledTime {last} before the trigger {triggered}"
        );
    }
    Ok(last)
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
    let options = Options {
        resync: Duration::from_millis(300),
        ..Options::default()
    };
    let scheduler = flotilla_testing::Controllers::start(&client, |ctx| {
        Ok(vec![Box::pin(controller(ctx, options)?)])
    })?;
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
    // Both servers track managed fields: the scheduler applied spec.clusters and its status
    // under its own field manager, the status through the status subresource.
    let entries = rb.metadata.managed_fields.clone().unwrap_or_default();
    let by = |subresource: Option<&str>| {
        entries.iter().any(|m| {
            m.manager.as_deref() == Some("flotilla-scheduler")
                && m.operation.as_deref() == Some("Apply")
                && m.subresource.as_deref() == subresource
        })
    };
    assert!(
        by(None) && by(Some("status")),
        "spec and status applied by the scheduler's field manager: {entries:?}"
    );

    // A Duplicated binding and a non-workload (replicas 0): both are re-evaluated on every pass.
    let mut dup = BindingBuilder::new().duplicated().replicas(2).build();
    dup.metadata.name = Some("dup".into());
    dup.metadata.uid = None;
    rbs.create(&PostParams::default(), &dup).await?;
    wait_scheduled(&rbs, "dup", &[("m1", 2), ("m2", 2)]).await?;
    let mut config = BindingBuilder::new().resource("v1", "ConfigMap").build();
    config.metadata.name = Some("config".into());
    config.metadata.uid = None;
    rbs.create(&PostParams::default(), &config).await?;
    wait_scheduled(&rbs, "config", &[("m1", 0), ("m2", 0)]).await?;

    // Unchanged bindings: resyncs and an unrelated cluster label change write nothing, whether
    // the algorithm reruns (Duplicated, non-workload) or not (static weights).
    let settled = ["weighted", "dup", "config"];
    let mut versions = Vec::new();
    for name in settled {
        versions.push(rbs.get(name).await?.resource_version());
    }
    let unchanged = |when: &'static str| {
        let rbs = rbs.clone();
        let versions = versions.clone();
        async move {
            for (name, rv) in settled.iter().zip(&versions) {
                assert_eq!(
                    &rbs.get(name).await?.resource_version(),
                    rv,
                    "{name}: a no-op pass must not write ({when})"
                );
            }
            anyhow::Ok(())
        }
    };
    // The resync period is 300 ms: several passes over each of them.
    scheduler.passes(PASSES, 12).await?;
    unchanged("after resyncs").await?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    clusters
        .patch(
            "m2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await?;
    scheduler.passes(PASSES, 12).await?;
    unchanged("after a cluster label change").await?;

    // Scale: replicas change re-divides.
    rbs.patch(
        "weighted",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 6}})),
    )
    .await?;
    wait_scheduled(&rbs, "weighted", &[("m1", 4), ("m2", 2)]).await?;

    // Duplicated follows a new cluster.
    add_cluster(&client, ClusterBuilder::new("m3").pods(50).build()).await?;
    wait_scheduled(&rbs, "dup", &[("m1", 2), ("m2", 2), ("m3", 2)]).await?;
    // An untolerated NoExecute taint keeps new workloads off m3, but, as in Karmada, the
    // scheduler does not move the workload already there: evicting it is the taint manager's
    // job.
    clusters
        .patch(
            "m3",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": [{"key": "broken", "effect": "NoExecute"}]}})),
        )
        .await?;
    // Passes that start after the taint's watch event (milliseconds) see it in the snapshot;
    // without this, `late` could be scheduled from a snapshot taken before the taint.
    scheduler.passes(PASSES, 12).await?;
    let mut late = BindingBuilder::new().duplicated().replicas(1).build();
    late.metadata.name = Some("late".into());
    late.metadata.uid = None;
    rbs.create(&PostParams::default(), &late).await?;
    wait_scheduled(&rbs, "late", &[("m1", 1), ("m2", 1)]).await?;
    // The taint reached the scheduler's snapshot (late avoided m3). A re-evaluation of dup
    // that certainly sees it (its replicas changed) keeps m3.
    rbs.patch(
        "dup",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 3}})),
    )
    .await?;
    wait_scheduled(&rbs, "dup", &[("m1", 3), ("m2", 3), ("m3", 3)])
        .await
        .context("a targeted cluster is not left because of a taint")?;

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

    // Manual reschedule: lastScheduledTime catches up with the trigger, never passing now.
    let first = reschedule(&rbs, "weighted", SignedDuration::ZERO).await?;

    // A trigger in the future reschedules once, now: lastScheduledTime stays at or before the
    // clock, and later passes do not reschedule again …
    let second = reschedule(&rbs, "weighted", SignedDuration::from_hours(1)).await?;
    assert!(second > first, "rescheduled: {second} after {first}");
    let rv = rbs.get("weighted").await?.resource_version();
    scheduler.passes(PASSES, 20).await?;
    assert_eq!(
        rbs.get("weighted").await?.resource_version(),
        rv,
        "a future trigger is honoured once, not on every pass"
    );
    // … and a real trigger after it, though earlier than the future one, still counts.
    let third = reschedule(&rbs, "weighted", SignedDuration::ZERO).await?;
    assert!(third > second, "rescheduled again: {third} after {second}");

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
    scheduler.passes(PASSES, 20).await?;
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

    scheduler.stop().await;
    Ok(())
}
