//! Durable mode never shows an uncommitted write: watch events are published only after their
//! SQLite commit, in RV order across concurrent writers, and a failed commit makes the logical
//! cluster refuse requests (500 "storage failed") instead of serving state the disk does not have. Uses the
//! writer's fault-injection point (`Server::storage_faults`) rather than timing.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use flotilla_apiserver::{Config, Server};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn cm(name: &str) -> Result<ConfigMap> {
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name}, "data": {"v": name}}),
    )?)
}

fn rv_of(cm: &ConfigMap) -> Result<u64> {
    Ok(cm.resource_version().context("rv")?.parse()?)
}

fn api_code<T>(r: &Result<T, kube::Error>) -> Option<u16> {
    match r {
        Err(kube::Error::Api(s)) => Some(s.code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_see_a_write_only_after_its_commit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(Config::new(dir.path())).await?;
    let faults = server.storage_faults().context("durable")?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    api.create(&PostParams::default(), &cm("before")?).await?;
    let list_rv = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .context("rv")?;
    let mut resumed = api
        .watch(&WatchParams::default().timeout(30), &list_rv)
        .await?
        .boxed();

    faults.pause();
    let commits_before = faults.commits();
    let create = tokio::spawn({
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &cm("held")?)
                .await
                .map_err(anyhow::Error::from)
        }
    });
    // Give the create time to reach the (held) writer; a GET and a current-state watch
    // started meanwhile must not show it either.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let get = tokio::spawn({
        let api = api.clone();
        async move { api.get("held").await }
    });
    let mut current = api
        .watch(&WatchParams::default().timeout(30), "0")
        .await?
        .boxed();
    let quiet = tokio::time::timeout(Duration::from_millis(500), async {
        tokio::select! {
            e = resumed.next() => format!("resumed watch got {e:?}"),
            e = current.next() => format!("current-state watch got {e:?}"),
        }
    })
    .await;
    if let Ok(what) = quiet {
        bail!("uncommitted write visible: {what}");
    }
    assert!(!create.is_finished(), "create answered before its commit");
    assert!(
        !get.is_finished(),
        "GET answered with an uncommitted object"
    );
    assert_eq!(
        faults.commits(),
        commits_before,
        "nothing committed while paused"
    );

    faults.resume();
    let event = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await?
        .context("watch ended")??;
    assert!(
        faults.commits() > commits_before,
        "the watch event arrived before the commit completed"
    );
    let WatchEvent::Added(seen) = event else {
        bail!("unexpected event {event:?}");
    };
    assert_eq!(seen.name_any(), "held");
    let created = create.await??;
    assert_eq!(rv_of(&created)?, rv_of(&seen)?);
    assert_eq!(rv_of(&get.await??)?, rv_of(&created)?);
    // The current-state watch lists both objects (after the commit) and nothing twice.
    let mut names = Vec::new();
    while names.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), current.next())
            .await?
            .context("watch ended")??
        {
            WatchEvent::Added(o) => names.push(o.name_any()),
            other => bail!("unexpected event {other:?}"),
        }
    }
    names.sort();
    assert_eq!(names, ["before", "held"]);
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_durable_writers_are_watched_once_in_rv_order() -> Result<()> {
    const TASKS: usize = 8;
    const PER_TASK: usize = 200;
    let dir = tempfile::tempdir()?;
    let server = Server::start(Config::new(dir.path())).await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let watch = api.watch(&WatchParams::default().timeout(120), "0").await?;
    let collector = tokio::spawn(async move {
        watch
            .take(TASKS * PER_TASK)
            .try_collect::<Vec<WatchEvent<ConfigMap>>>()
            .await
    });
    let mut writers = Vec::new();
    for t in 0..TASKS {
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            let mut rvs = Vec::new();
            for i in 0..PER_TASK {
                let created = api
                    .create(&PostParams::default(), &cm(&format!("w{t}-{i}"))?)
                    .await?;
                rvs.push((created.name_any(), rv_of(&created)?));
            }
            Ok::<_, anyhow::Error>(rvs)
        }));
    }
    let mut acked = std::collections::BTreeMap::new();
    for w in writers {
        acked.extend(w.await??);
    }
    let events = tokio::time::timeout(Duration::from_secs(60), collector).await???;
    assert_eq!(events.len(), TASKS * PER_TASK);
    let mut last = 0;
    let mut seen = BTreeSet::new();
    for e in &events {
        let WatchEvent::Added(o) = e else {
            bail!("unexpected event {e:?}");
        };
        let rv = rv_of(o)?;
        assert!(rv > last, "RV {rv} after {last}: not strictly increasing");
        last = rv;
        assert!(
            seen.insert(o.name_any()),
            "{} delivered twice",
            o.name_any()
        );
        assert_eq!(acked.get(&o.name_any()), Some(&rv), "event RV = acked RV");
    }
    assert_eq!(seen.len(), acked.len());
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_is_never_served() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(Config::new(dir.path())).await?;
    let faults = server.storage_faults().context("durable")?;
    server.create_cluster("other").await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let kept = api.create(&PostParams::default(), &cm("kept")?).await?;
    let watch = api
        .watch(
            &WatchParams::default().timeout(30),
            &rv_of(&kept)?.to_string(),
        )
        .await?
        .boxed();

    faults.fail_next(1);
    let lost = api.create(&PostParams::default(), &cm("lost")?).await;
    assert_eq!(api_code(&lost), Some(500), "{lost:?}");

    // The cluster now refuses service instead of serving the unpersisted change.
    for r in [
        api_code(&api.get("lost").await),
        api_code(&api.get("kept").await),
        api_code(&api.list(&ListParams::default()).await),
        api_code(&api.create(&PostParams::default(), &cm("later")?).await),
    ] {
        assert_eq!(r, Some(500));
    }
    let reason = match api.get("kept").await {
        Err(kube::Error::Api(s)) => s.message,
        other => bail!("expected 500, got {other:?}"),
    };
    assert!(reason.contains("restart the server"), "{reason}");
    // The open watch ends without ever showing the lost object.
    let rest: Vec<_> =
        tokio::time::timeout(Duration::from_secs(10), watch.collect::<Vec<_>>()).await?;
    for e in rest {
        if let Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) = e {
            bail!("watch saw {}", o.name_any());
        }
    }
    // Other logical clusters had nothing in the failed commit and keep working.
    let other: Api<ConfigMap> = Api::namespaced(server.client(Some("other")).await?, "default");
    other.create(&PostParams::default(), &cm("fine")?).await?;
    server.shutdown().await;

    let server = Server::start(Config::new(dir.path())).await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let names: BTreeSet<String> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert!(names.contains("kept"));
    assert!(
        !names.contains("lost"),
        "the failed write survived the restart"
    );
    let next = api.create(&PostParams::default(), &cm("after")?).await?;
    assert!(rv_of(&next)? > rv_of(&kept)?);
    // A watch resumed from the last RV any client saw gets exactly the new change.
    let events: Vec<WatchEvent<ConfigMap>> = api
        .watch(
            &WatchParams::default().timeout(2),
            &rv_of(&kept)?.to_string(),
        )
        .await?
        .try_collect()
        .await?;
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) => Some(o.name_any()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["after"]);
    let other: Api<ConfigMap> = Api::namespaced(server.client(Some("other")).await?, "default");
    other.get("fine").await?;
    server.shutdown().await;
    Ok(())
}
