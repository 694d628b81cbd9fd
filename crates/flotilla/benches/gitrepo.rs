//! A GitRepo of 1,000 manifests (`GITREPO_BENCH_OBJECTS`, default 1000 ConfigMaps, plus their
//! Namespace) on a local fleet as `flotilla up` starts it (on-disk state, every hub controller,
//! three simulated members), placed on two members. Figures, printed as table rows:
//!
//! - GitRepo created → every object applied on the hub and present in both target members
//!   (the first fetch, build, validation, apply and propagation);
//! - a commit changing every object, announced through the push webhook on the hub's HTTP
//!   endpoint → every member object carries the new value;
//! - the same through polling alone (`interval: 5s`, so up to 5 s of it is waiting);
//! - the controller's on-disk Git cache, and the process's RSS growth over the run (the whole
//!   fleet shares the process, so this bounds the controller's memory from above).
//!
//! Run with `cargo bench -p flotilla --bench gitrepo`.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail, ensure};
use flotilla::up::{Fleet, UpOptions};
use flotilla_api::GitRepo;
use flotilla_testing::git::Repo;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(600);
const NAMESPACE: &str = "bench";
const TARGETS: [&str; 2] = ["member1", "member2"];
const SECRET: &str = "bench-webhook-secret";

fn kib_of_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn write_revision(repo: &Repo, objects: usize, value: &str) -> Result<String> {
    repo.write(
        "shop/namespace.yaml",
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n"),
    )?;
    for i in 0..objects {
        repo.write(
            &format!("shop/config-{i:04}.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: config-{i:04}, labels: {{app: bench}}}}\ndata: {{value: \"{value}\", index: \"{i}\"}}\n"
            ),
        )?;
    }
    repo.commit(value)
}

/// How many ConfigMaps in `bench` on `client` carry `value`.
async fn carrying(client: &Client, value: &str) -> Result<usize> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let list = api.list(&ListParams::default().labels("app=bench")).await?;
    Ok(list
        .items
        .iter()
        .filter(|c| {
            c.data
                .as_ref()
                .and_then(|d| d.get("value"))
                .is_some_and(|v| v == value)
        })
        .count())
}

/// Waits until the GitRepo applied `revision` and the hub and every target member hold
/// `objects` ConfigMaps carrying `value`.
async fn everywhere(
    fleet: &Fleet,
    members: &[Client],
    revision: &str,
    objects: usize,
    value: &str,
) -> Result<()> {
    let repos: Api<GitRepo> = Api::namespaced(fleet.hub.clone(), "default");
    let started = Instant::now();
    let mut clients = vec![fleet.hub.clone()];
    clients.extend(members.iter().cloned());
    loop {
        let applied = repos
            .get("bench")
            .await?
            .status
            .and_then(|s| s.last_applied_revision)
            .is_some_and(|r| r == revision);
        let mut done = applied;
        for client in &clients {
            if !done {
                break;
            }
            done = carrying(client, value).await? == objects;
        }
        if done {
            return Ok(());
        }
        if started.elapsed() > TIMEOUT {
            bail!("{value} not everywhere after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs the push webhook with the shared secret as a bearer token.
fn announce(address: SocketAddr) -> Result<()> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "POST /hooks/gitrepo/default/bench HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {SECRET}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    ensure!(answer.starts_with("HTTP/1.1 202"), "webhook: {answer}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let objects: usize = std::env::var("GITREPO_BENCH_OBJECTS")
        .unwrap_or_else(|_| "1000".to_owned())
        .parse()
        .context("GITREPO_BENCH_OBJECTS")?;
    let dir = tempfile::tempdir()?;
    let endpoint = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut options = UpOptions::in_process(
        dir.path().join("data"),
        3,
        false,
        Default::default(),
        Some(flotilla_simulator::Options::default()),
    )?;
    options.hub.metrics_bind_address = Some(endpoint);
    let fleet = Fleet::start(options).await?;
    let waiting = fleet.wait_ready(TIMEOUT).await?;
    ensure!(waiting.is_empty(), "members not Ready: {waiting:?}");
    let mut members = Vec::new();
    for name in TARGETS {
        members.push(fleet.server.client(Some(name)).await?);
    }

    let repo = Repo::new()?;
    let first = write_revision(&repo, objects, "v1")?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(fleet.hub.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "bench-git"},
                "stringData": {"webhook": SECRET},
            }))?,
        )
        .await?;
    let rss_before = kib_of_status("VmRSS:");
    let repos: Api<GitRepo> = Api::namespaced(fleet.hub.clone(), "default");
    let gitrepo: GitRepo = serde_json::from_value(json!({
        "apiVersion": "gitops.flotilla.io/v1alpha1", "kind": "GitRepo",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "url": repo.url(),
            "ref": {"branch": "main"},
            "paths": ["shop"],
            "interval": "5s",
            "targetNamespace": NAMESPACE,
            "secretRef": {"name": "bench-git"},
            "placement": {"clusterAffinity": {"clusterNames": TARGETS}},
        },
    }))?;
    let created = Instant::now();
    repos
        .patch(
            "bench",
            &PatchParams::apply("bench"),
            &Patch::Apply(&gitrepo),
        )
        .await?;
    everywhere(&fleet, &members, &first, objects, "v1").await?;
    let initial = created.elapsed();

    let second = write_revision(&repo, objects, "v2")?;
    let committed = Instant::now();
    announce(endpoint)?;
    everywhere(&fleet, &members, &second, objects, "v2").await?;
    let pushed = committed.elapsed();

    let third = write_revision(&repo, objects, "v3")?;
    let committed = Instant::now();
    everywhere(&fleet, &members, &third, objects, "v3").await?;
    let polled = committed.elapsed();

    let cache = disk_bytes(&dir.path().join("data/gitrepo"));
    let rss_after = kib_of_status("VmRSS:");
    let peak = kib_of_status("VmHWM:");
    let repo_bytes = disk_bytes(&repo.bare);
    fleet.stop().await;

    println!("| figure | {objects} ConfigMaps + 1 Namespace, 2 target members |");
    println!("|---|---|");
    println!(
        "| GitRepo created → applied on the hub and present in both members | {:.2} s |",
        initial.as_secs_f64()
    );
    println!(
        "| commit + webhook → every member object updated | {:.2} s |",
        pushed.as_secs_f64()
    );
    println!(
        "| commit, polling (interval 5s) → every member object updated | {:.2} s |",
        polled.as_secs_f64()
    );
    println!(
        "| on-disk Git cache (the repository itself: {:.1} MiB) | {:.1} MiB |",
        repo_bytes as f64 / 1048576.0,
        cache as f64 / 1048576.0
    );
    println!(
        "| process RSS growth over the run (whole fleet in one process; peak {:.0} MiB) | {:.0} MiB |",
        peak as f64 / 1024.0,
        rss_after.saturating_sub(rss_before) as f64 / 1024.0
    );
    Ok(())
}
