//! A local fleet as `flotilla up` starts it (on-disk state, every hub controller, every member
//! simulated), for 3 and for 100 members (`UP_BENCH_MEMBERS`, default `3,100`). Two figures per
//! size, each printed as a table row:
//!
//! - start → every member Ready (and, being simulated, reporting allocatable capacity);
//! - the walkthrough's namespace, Deployment (6 replicas) and PropagationPolicy applied to the
//!   hub → the hub Deployment's aggregated status reading 6 ready replicas.
//!
//! Run with `cargo bench -p flotilla --bench up`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use flotilla::up::{Fleet, UpOptions};
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams},
    discovery::{ApiResource, Scope},
};

const READY_TIMEOUT: Duration = Duration::from_secs(600);

async fn apply_walkthrough(fleet: &Fleet) -> Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/walkthrough");
    let params = PatchParams::apply("bench").force();
    for file in ["00-namespace.yaml", "10-nginx.yaml"] {
        for document in flotilla::manifests::read(&dir.join(file))? {
            let object: DynamicObject = serde_json::from_value(document.object)?;
            let types = object.types.clone().context("apiVersion and kind")?;
            let gvk = kube::api::GroupVersionKind::try_from(&types)?;
            let (resource, capabilities) = kube::discovery::pinned_kind(&fleet.hub, &gvk).await?;
            let api: Api<DynamicObject> = match (capabilities.scope, &object.metadata.namespace) {
                (Scope::Namespaced, Some(ns)) => {
                    Api::namespaced_with(fleet.hub.clone(), ns, &resource)
                }
                _ => Api::all_with(fleet.hub.clone(), &resource),
            };
            let name = object.metadata.name.clone().context("name")?;
            api.patch(&name, &params, &Patch::Apply(&object)).await?;
        }
    }
    Ok(())
}

async fn ready_replicas(fleet: &Fleet) -> Result<i64> {
    let resource = ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(fleet.hub.clone(), "demo", &resource);
    Ok(api
        .get_opt("nginx")
        .await?
        .and_then(|d| {
            d.data
                .pointer("/status/readyReplicas")
                .and_then(|r| r.as_i64())
        })
        .unwrap_or(0))
}

async fn one(members: usize) -> Result<(Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let options = UpOptions::in_process(
        dir.path().to_owned(),
        members,
        false,
        Default::default(),
        Some(flotilla_simulator::Options::default()),
    )?;
    let started = Instant::now();
    let fleet = Fleet::start(options).await?;
    let waiting = fleet.wait_ready(READY_TIMEOUT).await?;
    if !waiting.is_empty() {
        bail!(
            "{} members not Ready after {READY_TIMEOUT:?}",
            waiting.len()
        );
    }
    let to_ready = started.elapsed();
    let applied = Instant::now();
    apply_walkthrough(&fleet).await?;
    loop {
        if ready_replicas(&fleet).await? == 6 {
            break;
        }
        if applied.elapsed() > READY_TIMEOUT {
            bail!("the hub Deployment never read 6 ready");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let to_available = applied.elapsed();
    fleet.stop().await;
    Ok((to_ready, to_available))
}

#[tokio::main]
async fn main() -> Result<()> {
    let sizes = std::env::var("UP_BENCH_MEMBERS").unwrap_or_else(|_| "3,100".to_owned());
    println!("| members | start → every member Ready | apply → hub Deployment 6/6 ready |");
    println!("|---|---|---|");
    for size in sizes.split(',') {
        let members: usize = size.trim().parse().context("UP_BENCH_MEMBERS")?;
        let (ready, available) = one(members).await?;
        println!(
            "| {members} | {:.2} s | {:.2} s |",
            ready.as_secs_f64(),
            available.as_secs_f64()
        );
    }
    Ok(())
}
