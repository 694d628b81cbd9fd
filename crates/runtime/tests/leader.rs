//! The leadership write guard: a client built with it sends reads but refuses every write
//! while the process is not the leader, before anything reaches the API server.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use flotilla_runtime::leader::Leadership;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
    client::ClientBuilder,
};
use serde_json::json;

#[tokio::test]
async fn a_process_that_is_not_the_leader_reads_but_never_writes() {
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    let service = tower::service_fn(move |_: Request<kube::client::Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        let body = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default", "resourceVersion": "1"},
        });
        async move {
            Ok::<_, Infallible>(Response::new(
                Full::new(Bytes::from(body.to_string())).boxed_unsync(),
            ))
        }
    });
    let leadership = Arc::new(Leadership::default());
    let client = ClientBuilder::new(service, "default")
        .with_layer(&leadership.guard())
        .build();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    assert!(api.get("a").await.is_ok(), "reads pass");
    assert_eq!(sent.load(Ordering::SeqCst), 1);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("b".to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    let refused = api.create(&PostParams::default(), &cm).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("not the leader")),
        "{refused:?}"
    );
    assert!(api.delete("a", &Default::default()).await.is_err());
    assert_eq!(
        sent.load(Ordering::SeqCst),
        1,
        "no write reached the server"
    );
}
