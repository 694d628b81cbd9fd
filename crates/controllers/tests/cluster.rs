//! The cluster controller against the hub API server (embedded, or real with
//! `FLOTILLA_TEST_SERVER=kube`), beside the cluster-status
//! controller: a member that dies gets the not-ready taint once the failure threshold has
//! passed, healthy members stay untainted, users' taints survive tainting and untainting, a
//! member that comes back is untainted, Ready Unknown means the unreachable taint; and the
//! scheduler keeps new Duplicated bindings off a tainted member until it recovers.

use std::{
    collections::BTreeMap,
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use flotilla_api::{
    Cluster, ResourceBinding,
    cluster::{ClusterSpec, ClusterSyncMode},
    conditions::{self, SCHEDULED},
    keys::taints::{NOT_READY, UNREACHABLE},
};
use flotilla_controllers::{cluster, cluster_status};
use flotilla_testing::{Controllers, TestHub};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Taint;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;

const PERIOD: Duration = Duration::from_millis(200);
const THRESHOLD: Duration = Duration::from_millis(1500);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// Cluster-status settings with a short period and failure threshold.
fn status_options() -> cluster_status::Options {
    cluster_status::Options {
        period: PERIOD,
        failure_threshold: THRESHOLD,
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// The cluster-status controller with a short period and failure threshold, and the cluster
/// controller; with the scheduler too when `scheduler` is set.
fn start_controllers(client: &Client, scheduler: bool) -> Result<Controllers> {
    let options = status_options();
    Controllers::start(client, |ctx| {
        let mut running = vec![
            cluster_status::controller(ctx, options)?.boxed(),
            cluster::controller(ctx, cluster::Options::default())?.boxed(),
        ];
        if scheduler {
            let options = flotilla_scheduler::controller::Options {
                resync: Duration::from_millis(300),
                ..Default::default()
            };
            running.push(flotilla_scheduler::controller::controller(ctx, options)?.boxed());
        }
        Ok(running)
    })
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(20), what, probe).await
}

fn user_taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_owned(),
        value: Some("by-hand".to_owned()),
        effect: effect.to_owned(),
        time_added: None,
    }
}

fn keys(cluster: &Cluster) -> Vec<(String, String)> {
    cluster
        .spec
        .taints
        .iter()
        .map(|t| (t.key.clone(), t.effect.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, e)| ((*k).to_owned(), (*e).to_owned()))
        .collect()
}

fn ready_status(cluster: &Cluster) -> Option<String> {
    cluster.ready_condition().map(|c| c.status.clone())
}

/// Waits until the Cluster's Ready status is `ready` and its taints (key, effect) are `want`.
async fn wait_taints(
    api: &Api<Cluster>,
    name: &str,
    ready: &str,
    want: &[(&str, &str)],
) -> Result<Cluster> {
    let want = pairs(want);
    eventually(
        &format!("{name} Ready {ready} with taints {want:?}"),
        || async {
            let cluster = api.get(name).await?;
            let done = ready_status(&cluster).as_deref() == Some(ready) && keys(&cluster) == want;
            Ok(done.then_some(cluster))
        },
    )
    .await
}

async fn set_taints(api: &Api<Cluster>, name: &str, taints: &[Taint]) -> Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"taints": taints}})),
    )
    .await
    .with_context(|| format!("set the taints of {name}"))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_member_is_tainted_not_ready_and_untainted_when_it_returns() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    hub.add_member("member1", BTreeMap::new()).await?;
    hub.add_member("member2", BTreeMap::new()).await?;
    let running = start_controllers(&client, false)?;
    let clusters: Api<Cluster> = Api::all(client.clone());

    wait_taints(&clusters, "member1", "True", &[]).await?;
    wait_taints(&clusters, "member2", "True", &[]).await?;
    let gpu = user_taint("example.com/gpu", "NoSchedule");
    set_taints(&clusters, "member1", std::slice::from_ref(&gpu)).await?;
    // Healthy members get no taint, and a user's taint is left alone: the cluster controller
    // looked again (the taint edit triggers it) and the members were probed a few times.
    running.passes("cluster", 2).await?;
    running.passes("cluster-status", 6).await?;
    assert_eq!(
        keys(&clusters.get("member1").await?),
        pairs(&[("example.com/gpu", "NoSchedule")])
    );
    assert_eq!(keys(&clusters.get("member2").await?), pairs(&[]));

    // A dead member turns NotReady after the damping threshold, and then gets the taint.
    let removed_at = Instant::now();
    hub.stop_member("member1").await?;
    let tainted = wait_taints(
        &clusters,
        "member1",
        "False",
        &[("example.com/gpu", "NoSchedule"), (NOT_READY, "NoSchedule")],
    )
    .await?;
    let elapsed = removed_at.elapsed();
    assert!(
        elapsed >= THRESHOLD,
        "tainted after {elapsed:?}, before the {THRESHOLD:?} failure threshold"
    );
    assert_eq!(tainted.spec.taints[0], gpu, "the user's taint is unchanged");
    let added = tainted.spec.taints[1].time_added.clone();
    assert!(added.is_some(), "timeAdded is set when the taint is added");
    assert_eq!(tainted.spec.taints[1].value, None);

    // The taint write bumps the generation, so the status controller records it once more
    // (status.observedGeneration); wait for that single follow-up write before the baseline.
    let tainted = flotilla_testing::eventually(
        Duration::from_secs(10),
        "status to observe the taint write",
        || async {
            let cluster = clusters.get("member1").await?;
            let observed = cluster.status.as_ref().and_then(|s| s.observed_generation);
            Ok((observed.is_some() && observed == cluster.metadata.generation).then_some(cluster))
        },
    )
    .await?;
    // The taint stays as it is while the member stays down: the Cluster is not rewritten.
    running.passes("cluster-status", 8).await?;
    let later = clusters.get("member1").await?;
    assert_eq!(later.resource_version(), tainted.resource_version());
    assert_eq!(later.spec.taints, tainted.spec.taints);
    // The healthy member is untouched.
    let member2 = clusters.get("member2").await?;
    assert_eq!(ready_status(&member2).as_deref(), Some("True"));
    assert_eq!(keys(&member2), pairs(&[]));

    // A user adds a taint while the member is down; it survives the recovery.
    let mut edited = later.spec.taints.clone();
    let maintenance = user_taint("example.com/maintenance", "PreferNoSchedule");
    edited.push(maintenance.clone());
    set_taints(&clusters, "member1", &edited).await?;

    // The member comes back: same name, registered again.
    hub.add_member("member1", BTreeMap::new()).await?;
    let recovered = wait_taints(
        &clusters,
        "member1",
        "True",
        &[
            ("example.com/gpu", "NoSchedule"),
            ("example.com/maintenance", "PreferNoSchedule"),
        ],
    )
    .await?;
    assert_eq!(recovered.spec.taints, vec![gpu, maintenance]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_unknown_means_unreachable_and_false_means_not_ready() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let running = start_controllers(&client, false)?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    // A Pull cluster: its agent (here, the test) reports Ready; cluster-status leaves it alone.
    let pulled = Cluster::new(
        "pulled",
        ClusterSpec {
            sync_mode: ClusterSyncMode::Pull,
            ..Default::default()
        },
    );
    clusters.create(&PostParams::default(), &pulled).await?;
    let report = |status: &str| {
        json!({"status": {"conditions": [{
            "type": "Ready", "status": status, "reason": "Reported",
            "message": "set by the test", "lastTransitionTime": "2025-01-01T00:00:00Z",
        }]}})
    };
    // No Ready condition yet: not tainted, once the cluster controller has looked at it.
    running.passes("cluster", 1).await?;
    assert_eq!(keys(&clusters.get("pulled").await?), pairs(&[]));

    let table: &[(&str, &[(&str, &str)])] = &[
        ("Unknown", &[(UNREACHABLE, "NoSchedule")]),
        ("False", &[(NOT_READY, "NoSchedule")]),
        ("Unknown", &[(UNREACHABLE, "NoSchedule")]),
        ("True", &[]),
    ];
    for (status, want) in table {
        clusters
            .patch_status(
                "pulled",
                &PatchParams::default(),
                &Patch::Merge(&report(status)),
            )
            .await?;
        wait_taints(&clusters, "pulled", status, want).await?;
    }
    Ok(())
}

fn targets(rb: &ResourceBinding) -> Vec<String> {
    rb.spec.clusters.iter().map(|t| t.name.clone()).collect()
}

async fn create_duplicated(api: &Api<ResourceBinding>, name: &str) -> Result<()> {
    let spec = serde_json::from_value(json!({
        "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": name},
        "replicas": 1,
        "placement": {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}},
    }))?;
    let rb = ResourceBinding::new(name, spec);
    api.create(&PostParams::default(), &rb)
        .await
        .with_context(|| format!("create binding {name}"))?;
    Ok(())
}

async fn wait_placed(api: &Api<ResourceBinding>, name: &str, want: &[&str]) -> Result<()> {
    eventually(&format!("{name} placed on {want:?}"), || async {
        let rb = api.get(name).await?;
        let scheduled = rb
            .status
            .as_ref()
            .is_some_and(|s| conditions::is_true(&s.conditions, SCHEDULED));
        Ok((scheduled && targets(&rb) == want).then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_keeps_new_bindings_off_a_tainted_member_until_it_recovers() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    hub.add_member("member1", BTreeMap::new()).await?;
    hub.add_member("member2", BTreeMap::new()).await?;
    let _running = start_controllers(&client, true)?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    let bindings: Api<ResourceBinding> = Api::namespaced(client.clone(), "default");

    wait_taints(&clusters, "member1", "True", &[]).await?;
    wait_taints(&clusters, "member2", "True", &[]).await?;
    create_duplicated(&bindings, "before").await?;
    wait_placed(&bindings, "before", &["member1", "member2"]).await?;

    hub.stop_member("member2").await?;
    wait_taints(&clusters, "member2", "False", &[(NOT_READY, "NoSchedule")]).await?;
    create_duplicated(&bindings, "during").await?;
    wait_placed(&bindings, "during", &["member1"]).await?;

    hub.add_member("member2", BTreeMap::new()).await?;
    wait_taints(&clusters, "member2", "True", &[]).await?;
    // Duplicated bindings are re-evaluated: the recovered member is picked up again.
    wait_placed(&bindings, "during", &["member1", "member2"]).await?;
    create_duplicated(&bindings, "after").await?;
    wait_placed(&bindings, "after", &["member1", "member2"]).await?;
    Ok(())
}

/// The cluster-status controller with a short period, alone on its own context, so a test can
/// stop it while the cluster controller keeps running.
fn start_status_reporter(client: &Client) -> Result<Controllers> {
    let options = status_options();
    Controllers::start(client, |ctx| {
        Ok(vec![cluster_status::controller(ctx, options)?.boxed()])
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_nobody_reports_turns_unknown_and_unreachable_and_recovers_when_reports_resume()
-> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    hub.add_member("member1", BTreeMap::new()).await?;
    let options = cluster::Options {
        monitor_period: Duration::from_millis(200),
        grace_period: Duration::from_millis(1500),
        startup_grace_period: Duration::from_millis(1500),
        ..Default::default()
    };
    let _cluster = Controllers::start(&client, |ctx| {
        Ok(vec![cluster::controller(ctx, options)?.boxed()])
    })?;
    let reporter = start_status_reporter(&client)?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    wait_taints(&clusters, "member1", "True", &[]).await?;

    // A condition another writer owns, beside the two controllers' own.
    let mut conditions = clusters
        .get("member1")
        .await?
        .status
        .unwrap_or_default()
        .conditions;
    conditions.push(conditions::new(
        "Reviewed",
        true,
        "ByHand",
        "checked by an admin",
        None,
    ));
    clusters
        .patch_status(
            "member1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"conditions": conditions}})),
        )
        .await?;

    // The reporter stops: past the grace period Ready turns Unknown and the cluster is tainted
    // unreachable, though the member itself is fine.
    reporter.stop().await;
    let stale = wait_taints(
        &clusters,
        "member1",
        "Unknown",
        &[(UNREACHABLE, "NoSchedule")],
    )
    .await?;
    let status = stale.status.unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .context("Ready")?;
    assert_eq!(ready.reason, "ClusterStatusUnknown");
    for kept in ["Reviewed", "CompleteAPIEnablements"] {
        assert!(
            conditions::find(&status.conditions, kept).is_some(),
            "the cluster controller's write kept {kept}: {:?}",
            status.conditions
        );
    }

    // Reports resume: Ready again, untainted, and the other writers' conditions still there.
    let _reporter = start_status_reporter(&client)?;
    let back = wait_taints(&clusters, "member1", "True", &[]).await?;
    let status = back.status.unwrap_or_default();
    assert!(conditions::find(&status.conditions, "Reviewed").is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hub_controllers_share_one_watch_per_kind() -> Result<()> {
    use flotilla_apiserver::Verb;
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    hub.add_member("member1", BTreeMap::new()).await?;
    let _running = start_controllers(&client, true)?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    wait_taints(&clusters, "member1", "True", &[]).await?;
    let Some(server) = hub.embedded() else {
        println!("SKIPPED on a real kube-apiserver: watches are counted by the embedded server");
        return Ok(());
    };
    let counts = server.request_counts();
    let watches = |group: &str, resource: &str| counts.get("default", Verb::Watch, group, resource);
    for (group, resource) in [
        ("cluster.flotilla.io", "clusters"),
        ("", "secrets"),
        ("coordination.k8s.io", "leases"),
        ("work.flotilla.io", "resourcebindings"),
        ("work.flotilla.io", "clusterresourcebindings"),
    ] {
        assert_eq!(
            watches(group, resource),
            1,
            "watches of {group}/{resource}: {:?}",
            counts.iter().collect::<Vec<_>>()
        );
    }
    Ok(())
}
