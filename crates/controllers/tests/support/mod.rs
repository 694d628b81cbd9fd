//! Helpers shared by the controller integration tests: tracing, polling, object creation,
//! Ready Clusters, and a client that counts its writes. Each test binary uses some of them.
#![allow(dead_code)]

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, Result};
use flotilla_api::Cluster;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

/// Logs at `RUST_LOG` (default `warn`) into the test's output.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// Polls `probe` until it returns `Some`, for up to 30 s.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(30), what, probe).await
}

/// Creates `object` (JSON) through `api`.
pub async fn create<K>(api: &Api<K>, object: Value) -> Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object)?;
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| format!("create {}", object.name_any()))
}

/// Creates the namespace `name` unless it exists.
pub async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    match create(
        &api,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.downcast_ref::<kube::Error>()
                .is_some_and(|e| matches!(e, kube::Error::Api(s) if s.code == 409)) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Creates each Cluster and then its status (the status subresource ignores status on create).
pub async fn create_clusters(client: &Client, clusters: Vec<Cluster>) -> Result<()> {
    let api: Api<Cluster> = Api::all(client.clone());
    for cluster in clusters {
        let name = cluster.name_any();
        api.create(&PostParams::default(), &cluster)
            .await
            .with_context(|| format!("create Cluster {name}"))?;
        if cluster.status.is_some() {
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": cluster.status})),
            )
            .await?;
        }
    }
    Ok(())
}

/// A client that sends through `client` and counts the writes (POST, PUT, PATCH, DELETE)
/// whose path `counted` accepts: a tower service in front of the controllers' client, so the
/// count holds on any server.
pub fn counting_writes(client: &Client, counted: fn(&str) -> bool) -> (Client, Arc<AtomicU64>) {
    let writes = Arc::new(AtomicU64::new(0));
    let counter = writes.clone();
    let inner = client.clone();
    let service = tower::ServiceBuilder::new()
        .map_request(move |request: http::Request<kube::client::Body>| {
            let write = [
                http::Method::POST,
                http::Method::PUT,
                http::Method::PATCH,
                http::Method::DELETE,
            ]
            .contains(request.method());
            if write && counted(request.uri().path()) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            request
        })
        .service_fn(move |request| {
            let inner = inner.clone();
            async move { inner.send(request).await }
        });
    (
        Client::new(service, client.default_namespace().to_owned()),
        writes,
    )
}

/// How many reconciles the runner `controller` of `controllers` finished.
pub fn reconciles(controllers: &flotilla_testing::Controllers, controller: &str) -> u64 {
    let text = controllers.ctx.metrics().render();
    let prefix = format!("flotilla_controller_reconcile_total{{controller=\"{controller}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
