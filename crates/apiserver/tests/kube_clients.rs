//! kube-rs against the embedded API server over real HTTPS: typed and dynamic CRUD, CRDs,
//! watch semantics, reflectors, a Controller, logical clusters, auth and body encodings.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use flotilla_apiserver::{Config, Server};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Client, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "Widget", namespaced)]
#[kube(status = "WidgetStatus", shortname = "wd", category = "all")]
struct WidgetSpec {
    size: i64,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
struct WidgetStatus {
    observed_size: i64,
}

async fn start() -> Result<(Server, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    let server = Server::start(config).await?;
    Ok((server, dir))
}

fn cm(name: &str, labels: serde_json::Value) -> Result<ConfigMap> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))?)
}

async fn install_widget_crd(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd()).await?;
    let established = kube::runtime::wait::await_condition(
        crds.clone(),
        "widgets.example.com",
        kube::runtime::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(10), established).await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_configmap_crud_follows_kube_semantics() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = api
        .create(&PostParams::default(), &cm("one", json!({"app": "web"}))?)
        .await?;
    assert!(created.metadata.uid.is_some(), "uid set");
    assert!(
        created.metadata.creation_timestamp.is_some(),
        "creationTimestamp set"
    );
    let rv1 = created.resource_version().context("rv")?;

    let dup = api
        .create(&PostParams::default(), &cm("one", json!({}))?)
        .await;
    assert!(
        matches!(dup, Err(kube::Error::Api(ref s)) if s.code == 409 && s.reason == "AlreadyExists"),
        "{dup:?}"
    );

    api.create(&PostParams::default(), &cm("two", json!({"app": "db"}))?)
        .await?;
    let web = api
        .list(&ListParams::default().labels("app in (web,cache)"))
        .await?;
    assert_eq!(
        web.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        vec!["one"]
    );
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=two"))
        .await?;
    assert_eq!(by_name.items.len(), 1);

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = api.replace("one", &PostParams::default(), &changed).await?;
    assert_ne!(updated.resource_version().context("rv")?, rv1);
    // Replaying the stale resourceVersion conflicts.
    let stale = api.replace("one", &PostParams::default(), &changed).await;
    assert!(
        matches!(stale, Err(kube::Error::Api(ref s)) if s.code == 409 && s.reason == "Conflict"),
        "{stale:?}"
    );

    let patched = api
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "x"}})),
        )
        .await?;
    assert_eq!(
        patched
            .data
            .as_ref()
            .and_then(|d| d.get("extra"))
            .map(String::as_str),
        Some("x")
    );
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/extra"}]))?;
    let patched = api
        .patch("one", &PatchParams::default(), &Patch::Json::<()>(jp))
        .await?;
    assert!(
        patched
            .data
            .as_ref()
            .is_some_and(|d| !d.contains_key("extra"))
    );

    let strategic = api
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"a": "b"}})),
        )
        .await;
    let strategic = strategic?;
    assert_eq!(
        strategic
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("b")
    );

    api.delete("one", &DeleteParams::default()).await?;
    let gone = api.get("one").await;
    assert!(
        matches!(gone, Err(kube::Error::Api(ref s)) if s.code == 404 && s.reason == "NotFound"),
        "{gone:?}"
    );

    let missing_ns: Api<ConfigMap> = Api::namespaced(client, "nope");
    let r = missing_ns
        .create(&PostParams::default(), &cm("x", json!({}))?)
        .await;
    assert!(
        matches!(r, Err(kube::Error::Api(ref s)) if s.code == 404),
        "{r:?}"
    );
    server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pagination_and_generate_name() -> Result<()> {
    let (server, _dir) = start().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    for _ in 0..7 {
        let obj: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}}))?;
        let c = api.create(&PostParams::default(), &obj).await?;
        assert!(
            c.name_any().starts_with("gen-") && c.name_any().len() == 9,
            "{}",
            c.name_any()
        );
    }
    let mut names = Vec::new();
    let mut lp = ListParams::default().limit(3);
    loop {
        let page = api.list(&lp).await?;
        assert!(page.items.len() <= 3);
        names.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    assert_eq!(names.len(), 7);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "pages do not overlap");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn crd_serves_dynamic_objects_with_status_and_generation() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    install_widget_crd(&client).await?;

    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 1}, "status": {"observed_size": 99},
    }))?;
    let created = api.create(&PostParams::default(), &obj).await?;
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );

    // Status-only change via the main resource is ignored, and does not bump generation.
    let p = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observed_size": 5}})),
        )
        .await?;
    assert!(p.data.get("status").is_none());
    assert_eq!(p.metadata.generation, Some(1));
    // The status subresource changes only status.
    let s = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 50}, "status": {"observed_size": 1}})),
        )
        .await?;
    assert_eq!(s.data["status"]["observed_size"], 1);
    assert_eq!(s.data["spec"]["size"], 1);
    assert_eq!(s.metadata.generation, Some(1));
    // A spec change bumps generation.
    let g = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await?;
    assert_eq!(g.metadata.generation, Some(2));

    // Discovery lists the resource with its names and subresource.
    let discovery = kube::Discovery::new(client.clone()).run().await?;
    let (res, caps) = discovery.resolve_gvk(&gvk).context("widgets discovered")?;
    assert_eq!(res.plural, "widgets");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));

    // Deleting the CRD stops serving and removes the objects.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await?;
    let after = api.get("w1").await;
    assert!(
        matches!(after, Err(kube::Error::Api(ref s)) if s.code == 404),
        "{after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_scale_subresource() -> Result<()> {
    let (server, _dir) = start().await?;
    let api: Api<Deployment> = Api::namespaced(server.client(None).await?, "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))?;
    api.create(&PostParams::default(), &d).await?;
    let scale = api.get_scale("web").await?;
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(2));
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await?;
    let d = api.get("web").await?;
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(5));
    assert_eq!(d.metadata.generation, Some(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn finalizers_and_namespace_termination() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "team"}}))?,
    )
    .await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )?;
    api.create(&PostParams::default(), &held).await?;
    api.create(&PostParams::default(), &cm("free", json!({}))?)
        .await?;

    nss.delete("team", &DeleteParams::default()).await?;
    let ns = nss.get("team").await?;
    assert!(ns.metadata.deletion_timestamp.is_some());
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert!(matches!(api.get("free").await, Err(kube::Error::Api(ref s)) if s.code == 404));
    let held = api.get("held").await?;
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "finalized object is only marked"
    );
    let r = api
        .create(&PostParams::default(), &cm("late", json!({}))?)
        .await;
    assert!(
        matches!(r, Err(kube::Error::Api(ref s)) if s.code == 403),
        "{r:?}"
    );

    // Wrong precondition conflicts.
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert!(matches!(api.delete("held", &dp).await, Err(kube::Error::Api(ref s)) if s.code == 409));

    // Clearing the finalizer removes the object, then the namespace.
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    assert!(matches!(api.get("held").await, Err(kube::Error::Api(ref s)) if s.code == 404));
    assert!(matches!(nss.get("team").await, Err(kube::Error::Api(ref s)) if s.code == 404));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_resource_version_semantics() -> Result<()> {
    let (server, _dir) = start().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({}))?)
        .await?;
    let rv_a = a.resource_version().context("rv")?;
    api.create(&PostParams::default(), &cm("b", json!({}))?)
        .await?;
    api.delete("a", &DeleteParams::default()).await?;

    // From rv_a: b ADDED, a DELETED, in order.
    let stream = api.watch(&WatchParams::default().timeout(2), &rv_a).await?;
    let events: Vec<_> = stream.take(2).try_collect().await?;
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.name_any()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(e) => format!("ERROR {}", e.code),
        })
        .collect();
    assert_eq!(kinds, vec!["ADDED b", "DELETED a"]);

    // From "0": the current state as ADDED, then live changes.
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), "0")
        .await?
        .boxed();
    let first = stream.try_next().await?.context("event")?;
    assert!(matches!(first, WatchEvent::Added(ref o) if o.name_any() == "b"));
    api.create(&PostParams::default(), &cm("c", json!({}))?)
        .await?;
    let next = stream.try_next().await?.context("event")?;
    assert!(matches!(next, WatchEvent::Added(ref o) if o.name_any() == "c"));

    // Streaming lists end the initial events with a bookmark.
    let wp = WatchParams::streaming_lists().timeout(2);
    let events: Vec<_> = api.watch(&wp, "").await?.take(3).try_collect().await?;
    assert!(
        matches!(events.last(), Some(WatchEvent::Bookmark(b)) if b.metadata.annotations.contains_key("k8s.io/initial-events-end")),
        "{events:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn reflector_and_watcher_track_changes() -> Result<()> {
    let (server, _dir) = start().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let (reader, writer) = reflector::store::<ConfigMap>();
    let rf = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .for_each(|_| async {});
    let handle = tokio::spawn(rf);
    reader.wait_until_ready().await?;
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("r{i}"), json!({}))?)
            .await?;
    }
    api.delete("r0", &DeleteParams::default()).await?;
    // Wait for the store to hold exactly the expected set: four objects may also be r0..r3
    // before the last create and the delete arrive.
    let names = || {
        let mut names: Vec<String> = reader.state().iter().map(|c| c.name_any()).collect();
        names.sort();
        names
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while names() != ["r1", "r2", "r3", "r4"] && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(names(), vec!["r1", "r2", "r3", "r4"]);
    handle.abort();
    Ok(())
}

struct Ctx {
    client: Client,
}

#[derive(Debug, thiserror_like::Error)]
#[error("{0}")]
struct ReconcileError(String);

mod thiserror_like {
    pub use thiserror::Error;
}

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let api: Api<Widget> = Api::namespaced(ctx.client.clone(), &w.namespace().unwrap_or_default());
    api.patch_status(
        &w.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observed_size": w.spec.size}})),
    )
    .await
    .map_err(|e| ReconcileError(e.to_string()))?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

#[tokio::test(flavor = "multi_thread")]
async fn controller_reconciles_custom_resources() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    install_widget_crd(&client).await?;
    let api: Api<Widget> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx {
        client: client.clone(),
    });
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            ctx,
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    api.create(
        &PostParams::default(),
        &Widget::new("w", WidgetSpec { size: 7 }),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let w = api.get("w").await?;
        if w.status.as_ref().map(|s| s.observed_size) == Some(7) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "controller never reconciled: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"size": 9}})),
    )
    .await?;
    loop {
        let w = api.get("w").await?;
        if w.status.as_ref().map(|s| s.observed_size) == Some(9) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "controller missed the change: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn logical_clusters_are_isolated() -> Result<()> {
    let (server, _dir) = start().await?;
    let url = server.create_cluster("member-1").await?;
    assert!(url.ends_with("/clusters/member-1"));
    assert!(matches!(
        server.create_cluster("member-1").await,
        Err(flotilla_apiserver::Error::ClusterExists(_))
    ));
    assert!(server.create_cluster("Bad_Name").await.is_err());
    let hub: Api<ConfigMap> = Api::namespaced(server.client(None).await?, "default");
    let member: Api<ConfigMap> = Api::namespaced(server.client(Some("member-1")).await?, "default");
    hub.create(&PostParams::default(), &cm("only-hub", json!({}))?)
        .await?;
    member
        .create(&PostParams::default(), &cm("only-member", json!({}))?)
        .await?;
    let names = |l: kube::api::ObjectList<ConfigMap>| {
        l.items.iter().map(|c| c.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(hub.list(&ListParams::default()).await?),
        vec!["only-hub"]
    );
    assert_eq!(
        names(member.list(&ListParams::default()).await?),
        vec!["only-member"]
    );
    let kubeconfig = std::fs::read_to_string(server.kubeconfig_path())?;
    assert!(kubeconfig.contains("name: member-1") && kubeconfig.contains("/clusters/member-1"));
    let mut open_watch = member.watch(&WatchParams::default(), "0").await?.boxed();
    assert!(open_watch.try_next().await?.is_some(), "initial ADDED");
    server.remove_cluster("member-1").await?;
    let ended = tokio::time::timeout(Duration::from_secs(5), open_watch.try_next()).await;
    assert!(
        matches!(ended, Ok(Ok(None)) | Ok(Err(_))),
        "watch ends with its cluster: {ended:?}"
    );
    assert!(member.list(&ListParams::default()).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_the_token_get_401() -> Result<()> {
    let (server, _dir) = start().await?;
    let mut config = kube::Config::new(server.url().parse()?);
    config.root_cert = Some(vec![
        rustls_pemfile_like::der(server.ca_pem()).context("ca der")?,
    ]);
    config.auth_info.token = Some("wrong".to_string().into());
    let client = Client::try_from(config)?;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let r = api.list(&ListParams::default()).await;
    assert!(
        matches!(r, Err(kube::Error::Api(ref s)) if s.code == 401),
        "{r:?}"
    );
    Ok(())
}

mod rustls_pemfile_like {
    use base64::Engine as _;
    /// DER bytes of the first PEM certificate.
    pub fn der(pem: &str) -> Option<Vec<u8>> {
        let body: String = pem
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    }
}

async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value)> {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = client
        .send(req.body(kube::client::Body::from(body))?)
        .await?;
    let code = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    Ok((
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_in_json_yaml_and_protobuf() -> Result<()> {
    use prost::Message as _;
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    let path = "/api/v1/namespaces/default/configmaps";
    // No Content-Type means JSON.
    let (code, _) = raw(
        &client,
        "POST",
        path,
        None,
        br#"{"metadata":{"name":"plain"}}"#.to_vec(),
    )
    .await?;
    assert_eq!(code, 201);
    let (code, _) = raw(
        &client,
        "POST",
        path,
        Some("application/yaml"),
        b"metadata:\n  name: yaml\ndata:\n  a: b\n".to_vec(),
    )
    .await?;
    assert_eq!(code, 201);
    let secret = k8s_pb::api::core::v1::Secret {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("pb".into()),
            ..Default::default()
        }),
        data: [("k".to_string(), b"v".to_vec())].into(),
        ..Default::default()
    };
    // The envelope client-go sends: the magic "k8s\0", then a runtime.Unknown holding the
    // TypeMeta and the encoded object.
    let envelope = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
        }),
        raw: Some(secret.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\x00".to_vec();
    body.extend(envelope.encode_to_vec());
    let (code, obj) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/secrets",
        Some("application/vnd.kubernetes.protobuf"),
        body,
    )
    .await?;
    assert_eq!(code, 201, "{obj}");
    let s: Secret = Api::namespaced(client.clone(), "default").get("pb").await?;
    assert_eq!(
        s.data.and_then(|d| d.get("k").cloned()).map(|b| b.0),
        Some(b"v".to_vec())
    );
    let (code, status) = raw(&client, "POST", path, Some("text/plain"), b"x".to_vec()).await?;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, status) = raw(&client, "POST", path, None, b"{not json".to_vec()).await?;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, status) = raw(
        &client,
        "POST",
        path,
        None,
        br#"{"metadata":{"name":"Bad_Name"}}"#.to_vec(),
    )
    .await?;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    let (code, status) = raw(&client, "PUT", path, None, b"{}".to_vec()).await?;
    assert_eq!(
        (code, status["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    let (code, _) = raw(&client, "GET", "/api/v1/nosuchthings", None, Vec::new()).await?;
    assert_eq!(code, 404);
    Ok(())
}
