//! Propagation throughput: templates/s from template create to Works written, through the
//! resource detector, the scheduler and the binding controller against the embedded API
//! server (in memory, real HTTPS through kube-rs, client and server in one process). A
//! PropagationPolicy divides every Deployment of a namespace between two clusters; the
//! controllers run; N Deployments are created (64 at a time); the clock runs from the first
//! create until all 2·N Works exist. Run with
//! `cargo bench -p flotilla-controllers --bench propagation` (`PROPAGATION_TEMPLATES` sets N,
//! default 10,000).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use flotilla_api::{Cluster, PropagationPolicy, Work};
use flotilla_controllers::{binding, detector};
use flotilla_testing::{Controllers, TestHub, fixtures::ClusterBuilder};
use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Namespace};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{reflector, watcher},
};
use serde_json::json;

const NAMESPACE: &str = "bench";

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("PROPAGATION_TEMPLATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let namespace: Namespace = serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    for name in ["m1", "m2"] {
        let cluster = ClusterBuilder::new(name).build();
        clusters.create(&PostParams::default(), &cluster).await?;
        clusters
            .patch_status(
                &cluster.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": cluster.status})),
            )
            .await?;
    }
    let policy: PropagationPolicy = serde_json::from_value(json!({
        "apiVersion": "policy.flotilla.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": "all", "namespace": NAMESPACE},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": {"clusterAffinity": {"clusterNames": ["m1", "m2"]},
                "replicaScheduling": {"replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted",
                    "weightPreference": {"staticWeightList": [
                        {"targetCluster": {"clusterNames": ["m1"]}, "weight": 1},
                        {"targetCluster": {"clusterNames": ["m2"]}, "weight": 1}]}}}}}))?;
    Api::<PropagationPolicy>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &policy)
        .await?;
    let controllers = Controllers::start(&client, |ctx| {
        Ok(vec![
            detector::controller(
                ctx,
                detector::Options {
                    concurrency: 32,
                    ..detector::Options::default()
                },
            )?
            .boxed(),
            flotilla_scheduler::controller::controller(
                ctx,
                flotilla_scheduler::controller::Options {
                    concurrency: 32,
                    ..flotilla_scheduler::controller::Options::default()
                },
            )?
            .boxed(),
            binding::controller(
                ctx,
                binding::Options {
                    concurrency: 32,
                    ..binding::Options::default()
                },
            )?
            .boxed(),
        ])
    })?;
    // Wait until the controllers' caches are filled.
    while !controllers.ctx.caches().synced() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Works are counted from a watch (a reflector's store), which costs the server one event
    // per Work instead of a list of every Work per poll.
    let (works, writer) = reflector::store::<Work>();
    let watch = tokio::spawn(
        reflector::reflector(
            writer,
            watcher(Api::<Work>::all(client.clone()), watcher::Config::default()),
        )
        .for_each(|_| futures::future::ready(())),
    );
    works.wait_until_ready().await?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let deployments = deployments.clone();
            async move {
                let name = format!("app-{i:06}");
                let deployment: Deployment = serde_json::from_value(json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"replicas": 4, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                "resources": {"requests": {"cpu": "100m"}}}]}}}}))?;
                deployments
                    .create(&PostParams::default(), &deployment)
                    .await
                    .context("create Deployment")
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let created = start.elapsed();
    println!("created {n} Deployments in {created:.2?}");
    loop {
        let done = works.len();
        if done == 2 * n {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            bail!("only {done} of {} Works written after 600 s", 2 * n);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "| templates propagated end to end (detector + scheduler + binding, 2 clusters, concurrency 32) | {n} in {:.2} s | {:.0} templates/s |",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    if std::env::var_os("PROPAGATION_METRICS").is_some() {
        for line in controllers.ctx.metrics().render().lines() {
            if line.starts_with("flotilla_controller_reconcile_total")
                || line.starts_with("flotilla_controller_reconcile_errors_total")
                || line.starts_with("flotilla_controller_reconcile_duration_seconds_sum")
            {
                println!("{line}");
            }
        }
    }
    watch.abort();
    controllers.stop().await;
    Ok(())
}
