//! `flotilla apiserver` durable storage, through the product binary: a write acknowledged before
//! `kill -9` is there after restart, watchers resume from a resourceVersion taken before the
//! crash, the CA is reused, and logical clusters survive a restart.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result};
use flotilla_apiserver::{Config, Server};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

async fn spawn(dir: &std::path::Path) -> Result<(Child, Client)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args([
            "apiserver",
            "--data-dir",
            &dir.display().to_string(),
            "--port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await??
        .context("server exited")?;
    assert!(line.contains("listening on https://127.0.0.1:"), "{line}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let kc = kube::config::Kubeconfig::read_from(dir.join("kubeconfig"))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok((child, Client::try_from(config)?))
}

fn cm(name: &str, value: &str) -> Result<ConfigMap> {
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name}, "data": {"v": value}}),
    )?)
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_kill_9() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut child, client) = spawn(dir.path()).await?;
    let ca_before = std::fs::read_to_string(dir.path().join("ca.crt"))?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("first", "0")?)
        .await?;
    let resume_rv = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .context("rv")?;

    // 300 concurrent creates; every acknowledged one must survive.
    let acked: Vec<String> = stream::iter(0..300)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("cm-{i}");
                api.create(&PostParams::default(), &cm(&name, &i.to_string())?)
                    .await?;
                Ok::<_, anyhow::Error>(name)
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await?;
    api.delete("cm-0", &DeleteParams::default()).await?;
    let mut last = api.get("cm-1").await?;
    last.data = Some([("v".to_string(), "updated".to_string())].into());
    api.replace("cm-1", &PostParams::default(), &last).await?;

    child.start_kill()?; // SIGKILL
    child.wait().await?;

    let (_child2, client) = spawn(dir.path()).await?;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.crt"))?,
        ca_before,
        "CA reused"
    );
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let names: std::collections::BTreeSet<String> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    for name in acked.iter().filter(|n| *n != "cm-0") {
        assert!(names.contains(name), "{name} lost after kill -9");
    }
    assert!(!names.contains("cm-0"), "delete survived");
    let cm1 = api.get("cm-1").await?;
    assert_eq!(
        cm1.data.and_then(|d| d.get("v").cloned()).as_deref(),
        Some("updated")
    );

    // A watcher resumes from an RV taken before the crash and sees every change in order.
    let events: Vec<WatchEvent<ConfigMap>> = api
        .watch(&WatchParams::default().timeout(3), &resume_rv)
        .await?
        .take(302)
        .try_collect()
        .await?;
    assert_eq!(events.len(), 302);
    let mut rvs = Vec::new();
    let mut deleted = 0;
    for e in &events {
        match e {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => rvs.push(o.resource_version()),
            WatchEvent::Deleted(o) => {
                deleted += 1;
                rvs.push(o.resource_version())
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(deleted, 1);
    let rvs: Vec<u64> = rvs
        .into_iter()
        .flatten()
        .filter_map(|r| r.parse().ok())
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "delivered in RV order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn logical_clusters_survive_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(Config::new(dir.path())).await?;
    server.create_cluster("member-a").await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(Some("member-a")).await?, "default");
    api.create(&PostParams::default(), &cm("kept", "1")?)
        .await?;
    let token = server.admin_token().to_string();
    server.shutdown().await;

    let server = Server::start(Config::new(dir.path())).await?;
    assert_eq!(server.admin_token(), token, "token reused");
    assert_eq!(
        server.clusters(),
        vec!["default".to_string(), "member-a".to_string()]
    );
    let api: Api<ConfigMap> = Api::namespaced(server.client(Some("member-a")).await?, "default");
    assert_eq!(
        api.get("kept")
            .await?
            .data
            .and_then(|d| d.get("v").cloned())
            .as_deref(),
        Some("1")
    );
    server.remove_cluster("member-a").await?;
    server.shutdown().await;
    let server = Server::start(Config::new(dir.path())).await?;
    assert_eq!(server.clusters(), vec!["default".to_string()]);
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn durable_server_starts_on_a_current_thread_runtime() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(Config::new(dir.path())).await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    api.create(&PostParams::default(), &cm("x", "1")?).await?;
    server.shutdown().await;
    Ok(())
}

/// Waits (up to 30 s) for `check` to hold.
async fn eventually<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await? {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Garbage collection pending at `kill -9` finishes after the restart: an owner deleted in the
/// foreground still waits for its blocking dependent and goes once it is released, and a
/// dependent whose owner's kind was not served yet is collected once a CRD serves it (the
/// collector's work is rebuilt from the stored objects, not kept in memory).
#[tokio::test(flavor = "multi_thread")]
async fn garbage_collection_pending_at_kill_9_finishes_after_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut child, client) = spawn(dir.path()).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", "1")?)
        .await?;
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep",
        "finalizers": ["test.flotilla.io/hold"],
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner.uid(), "blockOwnerDeletion": true}]}}))?;
    api.create(&PostParams::default(), &dep).await?;
    let widget_child: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "widget-child",
        "ownerReferences": [{"apiVersion": "gc.test.flotilla.io/v1", "kind": "Widget",
            "name": "w", "uid": "00000000-0000-0000-0000-00000000000a"}]}}))?;
    api.create(&PostParams::default(), &widget_child).await?;
    api.delete("owner", &DeleteParams::foreground()).await?;
    eventually("dep is being deleted", || async {
        Ok(api.get("dep").await?.metadata.deletion_timestamp.is_some())
    })
    .await?;

    child.start_kill()?; // SIGKILL
    child.wait().await?;
    let (_child2, client) = spawn(dir.path()).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = api.get("owner").await?;
    assert_eq!(owner.finalizers(), ["foregroundDeletion"]);
    assert!(api.get_opt("widget-child").await?.is_some());

    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "widgets.gc.test.flotilla.io"},
            "spec": {"group": "gc.test.flotilla.io", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}}))?,
    )
    .await?;
    eventually("widget-child is collected", || async {
        Ok(api.get_opt("widget-child").await?.is_none())
    })
    .await?;
    api.patch(
        "dep",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually("the owner is gone", || async {
        Ok(api.get_opt("owner").await?.is_none())
    })
    .await?;
    assert!(api.get_opt("dep").await?.is_none());
    Ok(())
}
