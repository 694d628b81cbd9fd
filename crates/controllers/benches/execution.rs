//! Execution to members, on the embedded API server with its members as logical clusters (in
//! memory, real HTTPS through kube-rs, every controller in this process as `flotilla up` runs
//! them). Three figures, each printed as a table row:
//!
//! (a) latency from a template's create to its object present in every target member: 1,000
//!     Deployments (`EXECUTION_LATENCY_TEMPLATES`), each Duplicated to 3 members; p50 and p99
//!     over the templates. Twice: created at a steady rate (`EXECUTION_LATENCY_RATE`, default
//!     20 per second, the way ClusterLoader2 loads Karmada for its distribution-latency SLO),
//!     and as a burst, 16 at a time as fast as they go (queueing, so mostly throughput). The
//!     requests each template cost on the hub and members are printed after each.
//! (b) cold start: the hub already holds N Deployments and N ConfigMaps
//!     (`EXECUTION_COLD_TEMPLATES`, default 5,000) with policies sending each to 2 members; the
//!     controllers start; the clock runs until all 4·N member objects exist.
//! (c) the direct-write floor in the same run: the same 4·N member objects written straight into
//!     fresh members by one client with the execution controller's concurrency
//!     (`EXECUTION_CONCURRENCY`, default 10, used for both), and the ratio of (b) to it.
//!
//! `EXECUTION_METRICS=1` also prints each controller's reconcile count and summed duration
//! after (b), to see which stage the time goes to.
//!
//! Peak RSS is the whole process's (API server, members and controllers together).
//! Run with `cargo bench -p flotilla-controllers --bench execution`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use flotilla_controllers::{binding, cluster_status, detector, execution};
use flotilla_testing::{Controllers, MemberServer, TestHub};
use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::{Value, json};

const NAMESPACE: &str = "default";

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "yes"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "yes"}},
        "data": {"key": name}})
}

fn policy(kind: &str, api_version: &str, clusters: &[&str]) -> Value {
    json!({"apiVersion": "policy.flotilla.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": format!("all-{}", kind.to_lowercase()), "namespace": NAMESPACE},
        "spec": {"resourceSelectors": [{"apiVersion": api_version, "kind": kind}],
            "placement": {"clusterAffinity": {"clusterNames": clusters},
                "replicaScheduling": {"replicaSchedulingType": "Duplicated"}}}})
}

async fn apply(client: &Client, api_version: &str, plural: &str, object: &Value) -> Result<()> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = kube::api::ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: object["kind"].as_str().unwrap_or_default().to_owned(),
        plural: plural.to_owned(),
    };
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource);
    api.patch(
        name,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("apply {name}"))?;
    Ok(())
}

/// Every controller that takes a template to its member objects, with a short status period.
fn start_controllers(client: &Client) -> Result<Controllers> {
    Controllers::start(client, |ctx| {
        Ok(vec![
            cluster_status::controller(
                ctx,
                cluster_status::Options {
                    period: Duration::from_secs(1),
                    ..Default::default()
                },
            )?
            .boxed(),
            detector::controller(
                ctx,
                detector::Options {
                    concurrency: 32,
                    ..Default::default()
                },
            )?
            .boxed(),
            flotilla_scheduler::controller::controller(
                ctx,
                flotilla_scheduler::controller::Options {
                    concurrency: 32,
                    ..Default::default()
                },
            )?
            .boxed(),
            binding::controller(
                ctx,
                binding::Options {
                    concurrency: 32,
                    ..Default::default()
                },
            )?
            .boxed(),
            execution::controller(
                ctx,
                execution::Options {
                    concurrency: env("EXECUTION_CONCURRENCY", 10) as u16,
                    ..Default::default()
                },
            )?
            .boxed(),
        ])
    })
}

/// The first time each object name is seen in a member, from a watch.
type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_member<K>(client: Client, seen: Seen) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(client, NAMESPACE);
    tokio::spawn(
        watcher(api, watcher::Config::default())
            .applied_objects()
            .for_each(move |object| {
                if let Ok(object) = object {
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(object.name_any())
                        .or_insert_with(Instant::now);
                }
                futures::future::ready(())
            }),
    )
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn members(hub: &TestHub, names: &[&str]) -> Result<Vec<Client>> {
    let mut clients = Vec::new();
    for name in names {
        let member = hub.add_member(name, BTreeMap::new()).await?;
        clients.push(MemberServer::of(&member)?.client().await?);
    }
    Ok(clients)
}

async fn wait_ready(client: &Client, names: &[&str]) -> Result<()> {
    let clusters: Api<flotilla_api::Cluster> = Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in names {
        loop {
            let ready = clusters
                .get(name)
                .await?
                .ready_condition()
                .is_some_and(|c| c.status == "True");
            if ready {
                break;
            }
            if Instant::now() > deadline {
                bail!("{name} is not Ready");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The requests each template cost, per cluster, verb and resource (those of at least one per
/// ten templates), from the embedded server's counters.
fn print_requests(hub: &TestHub, before: &flotilla_apiserver::RequestCounts, templates: usize) {
    let Some(server) = hub.embedded() else {
        return;
    };
    let after = server.request_counts();
    let mut rows: Vec<(String, f64)> = after
        .iter()
        .map(|(key, n)| {
            let earlier = before.get(&key.cluster, key.verb, &key.group, &key.resource);
            (
                format!("{} {:?} {}", key.cluster, key.verb, key.resource),
                (n - earlier) as f64 / templates as f64,
            )
        })
        .filter(|(_, per)| *per >= 0.1)
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = rows.iter().map(|(_, per)| per).sum();
    println!("requests per template: {total:.1} in all");
    for (what, per) in rows {
        println!("  {per:6.2}  {what}");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// How templates arrive in the latency run.
#[derive(Clone, Copy)]
enum Arrivals {
    /// A steady rate (templates per second), as ClusterLoader2 drives Karmada's SLO runs.
    Paced(f64),
    /// As fast as 16 concurrent creators go: the pipeline's queues fill, so this measures
    /// throughput under a burst more than latency.
    Burst,
}

async fn latency(n: usize, arrivals: Arrivals) -> Result<()> {
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let names = ["m1", "m2", "m3"];
    let member_clients = members(&hub, &names).await?;
    apply(
        &client,
        "policy.flotilla.io/v1alpha1",
        "propagationpolicies",
        &policy("Deployment", "apps/v1", &names),
    )
    .await?;
    let controllers = start_controllers(&client)?;
    wait_ready(&client, &names).await?;
    let seen: Vec<Seen> = names.iter().map(|_| Seen::default()).collect();
    let watches: Vec<_> = member_clients
        .iter()
        .zip(&seen)
        .map(|(c, s)| watch_member::<Deployment>(c.clone(), s.clone()))
        .collect();
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let before = hub
        .embedded()
        .map(flotilla_apiserver::Server::request_counts)
        .unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let start = Instant::now();
    let create = |i: usize| {
        let deployments = deployments.clone();
        let created = created.clone();
        async move {
            let name = format!("lat-{i:05}");
            let object: Deployment = serde_json::from_value(deployment(&name))?;
            let at = Instant::now();
            deployments.create(&PostParams::default(), &object).await?;
            created
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name, at);
            anyhow::Ok(())
        }
    };
    match arrivals {
        Arrivals::Burst => {
            stream::iter(0..n)
                .map(create)
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<_>>>()?;
        }
        Arrivals::Paced(rate) => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut pending = Vec::with_capacity(n);
            for i in 0..n {
                tick.tick().await;
                pending.push(tokio::spawn(create(i)));
            }
            for task in pending {
                task.await??;
            }
        }
    }
    let everywhere = || {
        seen.iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .min()
            .unwrap_or(0)
    };
    while everywhere() < n {
        if start.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {} of {n} Deployments in every member after 600 s",
                everywhere()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created = created
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut latencies: Vec<Duration> = created
        .iter()
        .map(|(name, at)| {
            seen.iter()
                .filter_map(|s| {
                    s.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get(name)
                        .copied()
                })
                .max()
                .map_or(Duration::ZERO, |last| last.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    let how = match arrivals {
        Arrivals::Paced(rate) => format!("{rate} created per second"),
        Arrivals::Burst => "16 created at a time, as fast as they go".to_owned(),
    };
    println!(
        "| (a) template create → object in every member (1 Deployment Duplicated to 3 members, {n} templates, {how}) | p50 {:.0} ms | p99 {:.0} ms |",
        percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
    print_requests(&hub, &before, n);
    for watch in watches {
        watch.abort();
    }
    controllers.stop().await;
    Ok(())
}

/// Writes `n` Deployments and `n` ConfigMaps into each of `clients`, `concurrency` at a time.
async fn write_all(clients: &[Client], n: usize, concurrency: usize, prefix: &str) -> Result<()> {
    let jobs: Vec<(Client, &str, &str, Value)> = clients
        .iter()
        .flat_map(|c| {
            (0..n).flat_map(move |i| {
                let name = format!("{prefix}-{i:06}");
                [
                    (c.clone(), "apps/v1", "deployments", deployment(&name)),
                    (c.clone(), "v1", "configmaps", config_map(&name)),
                ]
            })
        })
        .collect();
    stream::iter(jobs)
        .map(|(client, api_version, plural, object)| async move {
            apply(&client, api_version, plural, &object).await
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(())
}

async fn cold_start(n: usize) -> Result<()> {
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let names = ["m1", "m2"];
    let member_clients = members(&hub, &names).await?;
    for (kind, api_version) in [("Deployment", "apps/v1"), ("ConfigMap", "v1")] {
        apply(
            &client,
            "policy.flotilla.io/v1alpha1",
            "propagationpolicies",
            &policy(kind, api_version, &names),
        )
        .await?;
    }
    let load = Instant::now();
    write_all(std::slice::from_ref(&client), n, 64, "cold").await?;
    println!(
        "loaded {n} Deployments and {n} ConfigMaps into the hub in {:.1} s",
        load.elapsed().as_secs_f64()
    );
    let seen: Vec<(Seen, Seen)> = names.iter().map(|_| Default::default()).collect();
    let mut watches = Vec::new();
    for (c, (d, m)) in member_clients.iter().zip(&seen) {
        watches.push(watch_member::<Deployment>(c.clone(), d.clone()));
        watches.push(watch_member::<ConfigMap>(c.clone(), m.clone()));
    }
    let count = || {
        seen.iter()
            .map(|(d, m)| {
                let d = d
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len();
                // Every member has kube-root-ca.crt-like ConfigMaps of its own? Count ours only.
                let m = m
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .keys()
                    .filter(|k| k.starts_with("cold-"))
                    .count();
                d + m
            })
            .sum::<usize>()
    };
    let start = Instant::now();
    let controllers = start_controllers(&client)?;
    let want = 2 * 2 * n;
    while count() < want {
        if start.elapsed() > Duration::from_secs(1800) {
            bail!("only {} of {want} member objects after 1800 s", count());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cold = start.elapsed();
    if std::env::var_os("EXECUTION_METRICS").is_some() {
        for line in controllers.ctx.metrics().render().lines() {
            if !line.starts_with('#')
                && (line.contains("reconcile_total") || line.contains("duration_seconds_sum"))
            {
                println!("  {line}");
            }
        }
    }
    for watch in watches {
        watch.abort();
    }
    controllers.stop().await;

    // The floor: the same member objects written straight into two fresh members.
    let floor_members = members(&hub, &["f1", "f2"]).await?;
    let floor_start = Instant::now();
    let concurrency = env("EXECUTION_CONCURRENCY", 10);
    write_all(&floor_members, n, concurrency, "cold").await?;
    let floor = floor_start.elapsed();
    println!(
        "| (b) cold start: hub holding {n} Deployments + {n} ConfigMaps, each to 2 members | {want} member objects in {:.1} s | {:.0} objects/s |",
        cold.as_secs_f64(),
        want as f64 / cold.as_secs_f64()
    );
    println!(
        "| (c) direct-write floor: the same {want} objects applied straight into 2 members, {concurrency} at a time (the execution controller's concurrency) | {:.1} s | (b)/(c) = {:.2}× |",
        floor.as_secs_f64(),
        cold.as_secs_f64() / floor.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let templates = env("EXECUTION_LATENCY_TEMPLATES", 1_000);
    let rate = env("EXECUTION_LATENCY_RATE", 20);
    latency(templates, Arrivals::Paced(rate as f64)).await?;
    latency(templates, Arrivals::Burst).await?;
    cold_start(env("EXECUTION_COLD_TEMPLATES", 5_000)).await?;
    println!(
        "peak RSS of the process (API server, members, controllers): {:.0} MiB",
        peak_rss_mib()
    );
    Ok(())
}
