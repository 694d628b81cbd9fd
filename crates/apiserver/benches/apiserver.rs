//! Benchmarks of the embedded API server over real HTTPS with kube-rs as the client (client
//! and server share this process and its 2 cores): creates/s and updates/s in memory and
//! durable, list latency at 10k objects, watch fan-out to 100 watchers, memory per 10k
//! objects, and 1,000 logical clusters × 50 objects. Run: `cargo bench -p flotilla-apiserver`.
//! Set `APISERVER_BENCH_QUICK=1` for a smaller smoke run.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use flotilla_apiserver::{Config, Server};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const CONCURRENCY: usize = 64;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn cm(name: &str, i: usize) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench", "shard": (i % 10).to_string()}},
        "data": {"key": format!("value-{i}"), "payload": "x".repeat(200)},
    }))
    .unwrap_or_default()
}

async fn create_many(api: &Api<ConfigMap>, prefix: &str, n: usize) -> Result<Duration> {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            async move {
                api.create(&PostParams::default(), &cm(&name, i))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed())
}

async fn update_many(api: &Api<ConfigMap>, prefix: &str, n: usize) -> Result<Duration> {
    let start = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            async move {
                let mut obj = cm(&name, i + 1);
                obj.metadata.resource_version = None;
                api.replace(&name, &PostParams::default(), &obj)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(start.elapsed())
}

async fn start(in_memory: bool) -> Result<(Server, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = in_memory;
    Ok((Server::start(config).await?, dir))
}

async fn throughput(in_memory: bool, n: usize) -> Result<(f64, f64)> {
    let (server, _dir) = start(in_memory).await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let c = create_many(&api, "tp", n).await?;
    let u = update_many(&api, "tp", n).await?;
    server.shutdown().await;
    Ok((n as f64 / c.as_secs_f64(), n as f64 / u.as_secs_f64()))
}

async fn list_latency(n: usize) -> Result<(Duration, Duration)> {
    let (server, _dir) = start(true).await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    create_many(&api, "list", n).await?;
    let mut all = Vec::new();
    let mut selected = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let l = api.list(&ListParams::default()).await?;
        all.push(t.elapsed());
        assert_eq!(l.items.len(), n);
        let t = Instant::now();
        api.list(&ListParams::default().labels("shard=3")).await?;
        selected.push(t.elapsed());
    }
    all.sort();
    selected.sort();
    server.shutdown().await;
    Ok((all[2], selected[2]))
}

async fn watch_fanout(watchers: usize, events: usize) -> Result<f64> {
    let (server, _dir) = start(true).await?;
    let client: Client = server.client(None).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .context("rv")?;
    let mut handles = Vec::new();
    for _ in 0..watchers {
        let stream = api.watch(&WatchParams::default().timeout(120), &rv).await?;
        handles.push(tokio::spawn(async move {
            let mut s = stream.boxed();
            let mut seen = 0usize;
            while seen < events {
                match s.try_next().await {
                    Ok(Some(WatchEvent::Added(_))) => seen += 1,
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            seen
        }));
    }
    let t = Instant::now();
    create_many(&api, "fan", events).await?;
    let mut delivered = 0;
    for h in handles {
        delivered += h.await?;
    }
    let secs = t.elapsed().as_secs_f64();
    server.shutdown().await;
    Ok(delivered as f64 / secs)
}

async fn memory_per_10k() -> Result<f64> {
    let (server, _dir) = start(true).await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    create_many(&api, "warm", 200).await?;
    let before = rss_mib();
    create_many(&api, "mem", 10_000).await?;
    let after = rss_mib();
    server.shutdown().await;
    Ok(after - before)
}

async fn many_clusters(clusters: usize, per: usize, in_memory: bool) -> Result<(f64, Duration)> {
    let (server, _dir) = start(in_memory).await?;
    let client = server.client(None).await?;
    let t = Instant::now();
    for c in 0..clusters {
        server.create_cluster(&format!("m{c}")).await?;
    }
    stream::iter(0..clusters * per)
        .map(|i| {
            let client = client.clone();
            let (c, o) = (i / per, i % per);
            async move {
                let body = serde_json::to_vec(&cm(&format!("obj-{o}"), o))?;
                let req = http::Request::post(format!(
                    "/clusters/m{c}/api/v1/namespaces/default/configmaps"
                ))
                .header("content-type", "application/json")
                .body(body)?;
                client.request::<ConfigMap>(req).await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let elapsed = t.elapsed();
    let rss = rss_mib();
    server.shutdown().await;
    Ok((rss, elapsed))
}

#[tokio::main]
async fn main() -> Result<()> {
    let quick = std::env::var("APISERVER_BENCH_QUICK").is_ok();
    let clusters = if quick { 100 } else { 1_000 };
    for arg in std::env::args().skip(1) {
        let in_memory = match arg.as_str() {
            "memory" => {
                let mem = memory_per_10k().await?;
                println!(
                    "| RSS growth per 10k ConfigMaps (~300 B data each), in memory | {mem:.1} MiB |"
                );
                return Ok(());
            }
            "clusters-memory" => true,
            "clusters-durable" => false,
            _ => continue,
        };
        let (rss, t) = many_clusters(clusters, 50, in_memory).await?;
        let label = if in_memory { "in memory" } else { "durable" };
        println!(
            "| {clusters} logical clusters × 50 ConfigMaps, {label}: process RSS | {rss:.0} MiB (setup {:.1} s) |",
            t.as_secs_f64()
        );
        return Ok(());
    }
    let n = if quick { 1_000 } else { 10_000 };
    println!("| benchmark | result |");
    println!("|---|---|");
    let (c, u) = throughput(true, n).await?;
    println!("| creates/s, in memory ({n} ConfigMaps, {CONCURRENCY} in flight) | {c:.0} |");
    println!("| updates/s, in memory | {u:.0} |");
    let (c, u) = throughput(false, n).await?;
    println!("| creates/s, durable (SQLite WAL, synchronous=FULL, group commit) | {c:.0} |");
    println!("| updates/s, durable | {u:.0} |");
    let (all, sel) = list_latency(n).await?;
    println!(
        "| list latency, {n} objects, all (median of 5) | {:.1} ms |",
        all.as_secs_f64() * 1e3
    );
    println!(
        "| list latency, {n} objects, labelSelector matching 10% | {:.1} ms |",
        sel.as_secs_f64() * 1e3
    );
    let events = if quick { 200 } else { 1_000 };
    let rate = watch_fanout(100, events).await?;
    println!("| watch fan-out: 100 watchers × {events} events, events/s delivered | {rate:.0} |");
    // Each cluster scenario runs in a fresh process so RSS is its own.
    for mode in ["memory", "clusters-memory", "clusters-durable"] {
        let out = std::process::Command::new(std::env::current_exe()?)
            .arg(mode)
            .output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            anyhow::bail!("{mode} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}
