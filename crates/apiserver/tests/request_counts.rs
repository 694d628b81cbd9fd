//! `Server::request_counts`: what a test sees when it counts the requests clients make, per
//! logical cluster, verb and resource (the check behind "one watch per kind per process").

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use flotilla_apiserver::{Config, RequestCounts, Server, Verb};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::json;

async fn start() -> Result<(Server, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    let server = Server::start(config).await?;
    Ok((server, dir))
}

/// Counts in the default cluster for the core group.
fn core(counts: &RequestCounts, verb: Verb, resource: &str) -> u64 {
    counts.get("default", verb, "", resource)
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_and_lists_are_counted_per_cluster_verb_and_resource() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    assert_eq!(server.request_counts().total(), 0, "nothing was asked yet");

    let in_default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let everywhere: Api<ConfigMap> = Api::all(client.clone());
    let _first = in_default.watch(&WatchParams::default(), "0").await?;
    let _second = everywhere.watch(&WatchParams::default(), "0").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets.list(&ListParams::default()).await?;

    let counts = server.request_counts();
    assert_eq!(core(&counts, Verb::Watch, "configmaps"), 2, "{counts:?}");
    assert_eq!(core(&counts, Verb::List, "secrets"), 1, "{counts:?}");
    assert_eq!(core(&counts, Verb::List, "configmaps"), 0, "{counts:?}");
    assert_eq!(core(&counts, Verb::Watch, "secrets"), 0, "{counts:?}");
    assert_eq!(counts.total(), 3, "{counts:?}");
    let keys: Vec<String> = counts
        .iter()
        .map(|(k, n)| format!("{}/{}/{}/{}={n}", k.cluster, k.verb, k.group, k.resource))
        .collect();
    assert_eq!(
        keys,
        ["default/list//secrets=1", "default/watch//configmaps=2"]
    );

    // A failed request still counts; a subresource counts under `<resource>/<sub>`.
    assert!(secrets.get("absent").await.is_err());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.get_status("default").await?;
    let counts = server.request_counts();
    assert_eq!(core(&counts, Verb::Get, "secrets"), 1, "{counts:?}");
    assert_eq!(
        core(&counts, Verb::Get, "namespaces/status"),
        1,
        "{counts:?}"
    );
    assert_eq!(core(&counts, Verb::Get, "namespaces"), 0, "{counts:?}");

    // Unknown resources and discovery are not resource requests.
    client.apiserver_version().await?;
    let unknown = http::Request::get("/api/v1/nosuchthings").body(Vec::new())?;
    assert!(client.request_text(unknown).await.is_err());
    assert_eq!(server.request_counts().total(), 5);

    // Another logical cluster keeps its own counts, and loses them when it is removed.
    server.create_cluster("member").await?;
    let member = server.client(Some("member")).await?;
    let member_maps: Api<ConfigMap> = Api::namespaced(member, "default");
    let _third = member_maps.watch(&WatchParams::default(), "0").await?;
    let counts = server.request_counts();
    assert_eq!(
        counts.get("member", Verb::Watch, "", "configmaps"),
        1,
        "{counts:?}"
    );
    assert_eq!(core(&counts, Verb::Watch, "configmaps"), 2, "{counts:?}");
    server.remove_cluster("member").await?;
    let counts = server.request_counts();
    assert_eq!(counts.get("member", Verb::Watch, "", "configmaps"), 0);
    assert_eq!(counts.total(), 5, "{counts:?}");
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kube_runtime_watcher_lists_once_and_watches_once() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let stream = watcher(accounts, watcher::Config::default()).default_backoff();
    let (seen, received) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(account)) = event
                && seen.send(account.metadata.name).is_err()
            {
                return;
            }
        }
    });
    let result = watcher_settles(&server, &client, received).await;
    drain.abort();
    server.shutdown().await;
    result
}

/// Waits for the watcher's watch, makes a change, and checks it arrived without a relist.
async fn watcher_settles(
    server: &Server,
    client: &kube::Client,
    mut received: tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts = server.request_counts();
        if core(&counts, Verb::Watch, "serviceaccounts") >= 1 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the watcher never opened its watch: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let robot = json!({"metadata": {"name": "robot"}});
    let robots: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    robots
        .create(&PostParams::default(), &serde_json::from_value(robot)?)
        .await?;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(name) = received.recv().await {
            if name.as_deref() == Some("robot") {
                return Ok(());
            }
        }
        bail!("the watcher stopped")
    })
    .await
    .context("the watcher never saw the new ServiceAccount")??;
    let counts = server.request_counts();
    assert_eq!(
        core(&counts, Verb::List, "serviceaccounts"),
        1,
        "{counts:?}"
    );
    assert_eq!(
        core(&counts, Verb::Watch, "serviceaccounts"),
        1,
        "{counts:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deprecated_watch_paths_watch_one_object_and_count_as_watches() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["one", "two"] {
        let cm = json!({"metadata": {"name": name}, "data": {"k": "v"}});
        maps.create(&PostParams::default(), &serde_json::from_value(cm)?)
            .await?;
    }
    let path = "/api/v1/watch/namespaces/default/configmaps/one";
    let events = client
        .request_events::<ConfigMap>(http::Request::get(path).body(Vec::new())?)
        .await?;
    let mut events = std::pin::pin!(events);
    let first = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .context("no initial event")??;
    match first {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("one")),
        other => bail!("expected ADDED one, got {other:?}"),
    }
    // A change to another object is not delivered; one to the watched object is.
    for name in ["two", "one"] {
        let patch = json!({"data": {"k": name}});
        maps.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    }
    let next = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .context("no event for the change")??;
    match next {
        Some(WatchEvent::Modified(cm)) => {
            assert_eq!(cm.metadata.name.as_deref(), Some("one"));
            assert_eq!(
                cm.data.and_then(|d| d.get("k").cloned()).as_deref(),
                Some("one")
            );
        }
        other => bail!("expected MODIFIED one, got {other:?}"),
    }
    let collection = "/api/v1/watch/namespaces/default/configmaps";
    let _all = client
        .request_events::<ConfigMap>(http::Request::get(collection).body(Vec::new())?)
        .await?;
    let counts = server.request_counts();
    assert_eq!(core(&counts, Verb::Watch, "configmaps"), 2, "{counts:?}");
    assert_eq!(core(&counts, Verb::Get, "configmaps"), 0, "{counts:?}");
    // Only GET is served there.
    let delete = http::Request::delete(path).body(Vec::new())?;
    match client.request_text(delete).await {
        Err(kube::Error::Api(status)) if status.code == 405 => {}
        other => bail!("DELETE on a watch path must be 405: {other:?}"),
    }
    server.shutdown().await;
    Ok(())
}
