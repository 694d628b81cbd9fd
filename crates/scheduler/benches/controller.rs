//! End-to-end scheduling throughput: bindings/s through the scheduler controller against the
//! embedded API server (in memory, real HTTPS through kube-rs, client and server in one
//! process). N bindings are created first, then the scheduler starts; the clock stops when every
//! binding has `Scheduled=True` and its clusters. Run with
//! `cargo bench -p flotilla-scheduler --bench controller` (`SCHEDULER_E2E_BINDINGS` sets N).

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use flotilla_api::{Cluster, ResourceBinding, conditions};
use flotilla_scheduler::controller::{Options, controller};
use flotilla_testing::{
    TestHub,
    fixtures::{BindingBuilder, ClusterBuilder},
};
use futures::{StreamExt, stream};
use kube::{
    Api, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("SCHEDULER_E2E_BINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let clusters: Api<Cluster> = Api::all(client.clone());
    for i in 0..20 {
        let cluster = ClusterBuilder::new(&format!("member-{i:02}"))
            .region(&format!("region-{}", i % 4))
            .allocatable(&[("cpu", "64"), ("memory", "256Gi"), ("pods", "110")])
            .build();
        clusters.create(&PostParams::default(), &cluster).await?;
        clusters
            .patch_status(
                &cluster.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": cluster.status})),
            )
            .await?;
    }
    let rbs: Api<ResourceBinding> = Api::namespaced(client.clone(), "default");
    let created = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let rbs = rbs.clone();
            async move {
                let builder = BindingBuilder::new()
                    .replicas(3 + (i % 7) as i32)
                    .request(&[("cpu", "250m")]);
                let mut binding = match i % 3 {
                    0 => builder.dynamic(),
                    1 => builder.static_weights(&[
                        ("member-00", 2),
                        ("member-01", 1),
                        ("member-02", 1),
                    ]),
                    _ => builder.duplicated().spread(
                        flotilla_api::policy::SpreadByField::Cluster,
                        1,
                        3,
                    ),
                }
                .build();
                binding.metadata.name = Some(format!("app-{i:06}"));
                binding.metadata.uid = None;
                rbs.create(&PostParams::default(), &binding)
                    .await
                    .context("create binding")
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    println!("created {n} ResourceBindings in {:.2?}", created.elapsed());

    let start = Instant::now();
    let options = Options {
        concurrency: 32,
        ..Options::default()
    };
    let scheduler = flotilla_testing::Controllers::start(&client, |ctx| {
        Ok(vec![Box::pin(controller(ctx, options)?)])
    })?;
    loop {
        let list = rbs.list(&ListParams::default()).await?;
        let done =
            list.items
                .iter()
                .filter(|rb| {
                    !rb.spec.clusters.is_empty()
                        && rb.status.as_ref().is_some_and(|s| {
                            conditions::is_true(&s.conditions, conditions::SCHEDULED)
                        })
                })
                .count();
        if done == n {
            break;
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("only {done} of {n} bindings scheduled after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "| bindings scheduled end to end (20 clusters, concurrency 32) | {n} in {:.2} s | {:.0} bindings/s |",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    scheduler.stop().await;
    Ok(())
}
