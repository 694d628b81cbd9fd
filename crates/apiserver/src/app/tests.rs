//! API semantics checked through the router without TLS, with a short bookmark period and
//! small watch histories no `Config` exposes: discovery documents, error Status codes, watch
//! edge cases (410, selector transitions), status subresource by PUT, CRD validation and name
//! conflicts, deletecollection.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::app::{AppState, app};
use crate::storage::ClusterStore;
use anyhow::Result;
use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const TOKEN: &str = "test-token";
const CA: &str = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";

async fn router(history_limit: usize) -> Result<Router> {
    let store = Arc::new(ClusterStore::with_history_limit("default", history_limit));
    crate::seed(&store).await?;
    let mut clusters = HashMap::new();
    clusters.insert("default".to_string(), store);
    Ok(app(Arc::new(AppState {
        clusters: RwLock::new(clusters),
        token: TOKEN.into(),
        ca_pem: Arc::from(CA),
        persist: None,
        bookmark_interval: std::time::Duration::from_millis(200),
        requests: Default::default(),
        version: crate::handlers::discovery::Version::built_in(),
    })))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value, String)> {
    call_as(app, TOKEN, method, path, ct, body).await
}

async fn call_as(
    app: &Router,
    token: &str,
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value, String)> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let body = body
        .map(|b| serde_json::to_vec(&b))
        .transpose()?
        .unwrap_or_default();
    let resp = app.clone().oneshot(req.body(Body::from(body))?).await?;
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok((
        code,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text,
    ))
}

fn events(text: &str) -> Vec<(String, Value)> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["type"].as_str().unwrap_or("").to_string(),
                v["object"].clone(),
            )
        })
        .collect()
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn discovery_lists_names_verbs_and_subresources() -> Result<()> {
    let app = router(100).await?;
    let (code, v, _) = call(&app, "GET", "/version", None, None).await?;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
    let (_, api, _) = call(&app, "GET", "/api", None, None).await?;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, core, _) = call(&app, "GET", "/api/v1", None, None).await?;
    let cm = core["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "configmaps"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["singularName"], "configmap");
    assert_eq!(cm["namespaced"], true);
    assert_eq!(cm["shortNames"], json!(["cm"]));
    assert!(cm["verbs"].as_array().is_some_and(|v| v.len() == 8));
    let (_, apps, _) = call(&app, "GET", "/apis/apps/v1", None, None).await?;
    let names: Vec<&str> = apps["resources"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"deployments/scale") && names.contains(&"daemonsets/status"),
        "{names:?}"
    );
    assert!(!names.contains(&"daemonsets/scale"));
    let (_, groups, _) = call(&app, "GET", "/apis", None, None).await?;
    let gnames: Vec<&str> = groups["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    for g in [
        "apps",
        "batch",
        "coordination.k8s.io",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "certificates.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(gnames.contains(&g), "{g} missing from {gnames:?}");
    }
    let (code, g, _) = call(&app, "GET", "/apis/apps", None, None).await?;
    assert_eq!(
        (code, g["preferredVersion"]["groupVersion"].as_str()),
        (200, Some("apps/v1"))
    );
    let (code, _, _) = call(&app, "GET", "/apis/nope.example.com/v1", None, None).await?;
    assert_eq!(code, 404);
    Ok(())
}

#[tokio::test]
async fn unauthenticated_requests_get_401_status() -> Result<()> {
    let app = router(100).await?;
    let resp = app
        .clone()
        .oneshot(http::Request::get(CMS).body(Body::empty())?)
        .await?;
    assert_eq!(resp.status().as_u16(), 401);
    let bytes = resp.into_body().collect().await?.to_bytes();
    let status: Value = serde_json::from_slice(&bytes)?;
    assert_eq!(
        (status["kind"].as_str(), status["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    Ok(())
}

#[tokio::test]
async fn service_account_token_secrets_are_filled_and_authenticate_while_their_account_lives()
-> Result<()> {
    use base64::Engine as _;
    let app = router(100).await?;
    let json = Some("application/json");
    let sas = "/api/v1/namespaces/default/serviceaccounts";
    let secrets = "/api/v1/namespaces/default/secrets";
    let (code, sa, _) = call(
        &app,
        "POST",
        sas,
        json,
        Some(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})),
    )
    .await?;
    assert_eq!(code, 201, "{sa}");
    let secret = |name: &str, account: &str| {
        json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}}})
    };
    let (code, filled, _) = call(
        &app,
        "POST",
        secrets,
        json,
        Some(secret("robot-token", "robot")),
    )
    .await?;
    assert_eq!(code, 201, "{filled}");
    let decode = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let token = decode(&filled["data"]["token"]);
    assert!(token.len() >= 32, "a token: {filled}");
    assert_eq!(decode(&filled["data"]["ca.crt"]), CA);
    assert_eq!(decode(&filled["data"]["namespace"]), "default");
    assert_eq!(
        filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        sa["metadata"]["uid"]
    );
    // The token is a credential for this cluster.
    let (code, _, _) = call_as(&app, &token, "GET", CMS, None, None).await?;
    assert_eq!(code, 200);
    // A Secret naming a missing account gets no token; an Opaque one is left alone.
    let (_, orphan, _) = call(
        &app,
        "POST",
        secrets,
        json,
        Some(secret("nobody-token", "nobody")),
    )
    .await?;
    assert!(orphan["data"]["token"].is_null(), "{orphan}");
    let (_, opaque, _) = call(
        &app,
        "POST",
        secrets,
        json,
        Some(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "plain",
        "annotations": {"kubernetes.io/service-account.name": "robot"}}})),
    )
    .await?;
    assert!(opaque["data"]["token"].is_null(), "{opaque}");
    // A token someone made up, or one of a deleted account, is refused.
    let (code, _, _) = call_as(&app, "made-up", "GET", CMS, None, None).await?;
    assert_eq!(code, 401);
    let (code, _, _) = call(&app, "DELETE", &format!("{sas}/robot"), None, None).await?;
    assert_eq!(code, 200);
    let (code, v, _) = call_as(&app, &token, "GET", CMS, None, None).await?;
    assert_eq!(code, 401, "{v}");
    Ok(())
}

#[tokio::test]
async fn watch_from_compacted_rv_gets_410_error_event() -> Result<()> {
    let app = router(5).await?;
    for i in 0..10 {
        let (code, _, _) = call(
            &app,
            "POST",
            CMS,
            None,
            Some(json!({"metadata": {"name": format!("c{i}")}})),
        )
        .await?;
        assert_eq!(code, 201);
    }
    let (code, _, text) = call(
        &app,
        "GET",
        &format!("{CMS}?watch=true&resourceVersion=1&timeoutSeconds=1"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 200);
    let ev = events(&text);
    assert_eq!(ev.len(), 1, "{text}");
    assert_eq!(ev[0].0, "ERROR");
    assert_eq!(
        (ev[0].1["code"].as_i64(), ev[0].1["reason"].as_str()),
        (Some(410), Some("Expired"))
    );
    Ok(())
}

#[tokio::test]
async fn watch_with_selector_sees_objects_enter_and_leave() -> Result<()> {
    let app = router(100).await?;
    let (_, list, _) = call(&app, "GET", CMS, None, None).await?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "a", "labels": {"team": "x"}}})),
    )
    .await?;
    call(
        &app,
        "PATCH",
        &format!("{CMS}/a"),
        Some("application/merge-patch+json"),
        Some(json!({"data": {"k": "v"}})),
    )
    .await?;
    call(
        &app,
        "PATCH",
        &format!("{CMS}/a"),
        Some("application/merge-patch+json"),
        Some(json!({"metadata": {"labels": {"team": "y"}}})),
    )
    .await?;
    call(
        &app,
        "PATCH",
        &format!("{CMS}/a"),
        Some("application/merge-patch+json"),
        Some(json!({"metadata": {"labels": {"team": "x"}}})),
    )
    .await?;
    call(&app, "DELETE", &format!("{CMS}/a"), None, None).await?;
    let (_, _, text) = call(
        &app,
        "GET",
        &format!("{CMS}?watch=1&labelSelector=team%3Dx&resourceVersion={rv}&timeoutSeconds=1"),
        None,
        None,
    )
    .await?;
    let kinds: Vec<String> = events(&text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        vec!["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
    );
    Ok(())
}

#[tokio::test]
async fn status_subresource_update_semantics_by_put() -> Result<()> {
    let app = router(100).await?;
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 9}});
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let (code, created, _) = call(&app, "POST", path, None, Some(deploy)).await?;
    assert_eq!(code, 201, "{created}");
    assert!(created.pointer("/status/replicas").is_none(), "{created}");
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 1});
    with_status["spec"]["replicas"] = json!(3);
    let (code, after, _) = call(
        &app,
        "PUT",
        &format!("{path}/d/status"),
        None,
        Some(with_status),
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(after["status"]["replicas"], 1);
    assert_eq!(after["spec"]["replicas"], 1, "/status ignores spec");
    assert_eq!(after["metadata"]["generation"], 1);
    let (code, _, _) = call(&app, "DELETE", &format!("{path}/d/status"), None, None).await?;
    assert_eq!(code, 405);
    // Stale RV through /status conflicts too.
    let (code, s, _) = call(
        &app,
        "PUT",
        &format!("{path}/d/status"),
        None,
        Some(created),
    )
    .await?;
    assert_eq!((code, s["reason"].as_str()), (409, Some("Conflict")));
    Ok(())
}

#[tokio::test]
async fn selectors_and_bad_requests_answer_with_status() -> Result<()> {
    let app = router(100).await?;
    let (code, s, _) = call(
        &app,
        "GET",
        &format!("{CMS}?fieldSelector=spec.x%3Dy"),
        None,
        None,
    )
    .await?;
    assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _, _) = call(
        &app,
        "GET",
        &format!("{CMS}?labelSelector=a%20in%20b"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 400);
    let (code, s, _) = call(&app, "POST", CMS, None, Some(json!({"metadata": {}}))).await?;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    let (code, _, _) = call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "x", "namespace": "other"}})),
    )
    .await?;
    assert_eq!(code, 400);
    let (code, _, _) = call(
        &app,
        "PATCH",
        &format!("{CMS}/missing"),
        Some("application/merge-patch+json"),
        Some(json!({})),
    )
    .await?;
    assert_eq!(code, 404);
    let (code, s, _) = call(
        &app,
        "PATCH",
        &format!("{CMS}/missing"),
        Some("application/apply-patch+yaml"),
        Some(json!({})),
    )
    .await?;
    // Server-side apply needs a field manager (kube-apiserver's 422 on PatchOptions).
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    Ok(())
}

#[tokio::test]
async fn deletecollection_honours_label_selector() -> Result<()> {
    let app = router(100).await?;
    for (n, team) in [("a", "x"), ("b", "x"), ("c", "y")] {
        call(
            &app,
            "POST",
            CMS,
            None,
            Some(json!({"metadata": {"name": n, "labels": {"team": team}}})),
        )
        .await?;
    }
    let (code, deleted, _) = call(
        &app,
        "DELETE",
        &format!("{CMS}?labelSelector=team%3Dx"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(deleted["items"].as_array().map(Vec::len), Some(2));
    let (_, list, _) = call(&app, "GET", CMS, None, None).await?;
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|o| o["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["c"]);
    Ok(())
}

fn crd(name: &str, plural: &str, kind: &str, scope: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": "example.com", "scope": scope,
            "names": {"plural": plural, "kind": kind, "shortNames": ["gz"], "categories": ["all"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v1", "served": true, "storage": true,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.count", "statusReplicasPath": ".status.count"}}}
            ]}
    })
}

#[tokio::test]
async fn crds_validate_detect_conflicts_and_serve_versions() -> Result<()> {
    let app = router(100).await?;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let (code, s, _) = call(
        &app,
        "POST",
        crds,
        None,
        Some(crd("wrong.example.com", "gizmos", "Gizmo", "Cluster")),
    )
    .await?;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    let (code, created, _) = call(
        &app,
        "POST",
        crds,
        None,
        Some(crd("gizmos.example.com", "gizmos", "Gizmo", "Cluster")),
    )
    .await?;
    assert_eq!(code, 201);
    let conds = created["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "NamesAccepted" && c["status"] == "True")
    );
    let (_, rl, _) = call(&app, "GET", "/apis/example.com/v1", None, None).await?;
    let main = rl["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["name"] == "gizmos"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (main["namespaced"].as_bool(), main["categories"].clone()),
        (Some(false), json!(["all"]))
    );
    let names: Vec<&str> = rl["resources"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["gizmos", "gizmos/status", "gizmos/scale"]);
    let (_, g, _) = call(&app, "GET", "/apis/example.com", None, None).await?;
    assert_eq!(g["preferredVersion"]["version"], "v1");
    // Served in both versions, scale via the CRD's paths.
    let (code, _, _) = call(&app, "POST", "/apis/example.com/v1beta1/gizmos", None, Some(json!({"apiVersion": "example.com/v1beta1", "kind": "Gizmo", "metadata": {"name": "g"}, "spec": {"count": 2}}))).await?;
    assert_eq!(code, 201);
    let (_, scale, _) = call(
        &app,
        "GET",
        "/apis/example.com/v1/gizmos/g/scale",
        None,
        None,
    )
    .await?;
    assert_eq!(scale["spec"]["replicas"], 2);
    let (code, g1, _) = call(&app, "GET", "/apis/example.com/v1/gizmos/g", None, None).await?;
    assert_eq!(
        (code, g1["apiVersion"].as_str()),
        (200, Some("example.com/v1"))
    );
    // A second CRD claiming the same plural is not accepted.
    let mut dup = crd("gizmos2.example.com", "gizmos", "Gizmo2", "Cluster");
    dup["spec"]["names"]["plural"] = json!("gizmos");
    dup["metadata"]["name"] = json!("gizmos.example.com");
    let (code, _, _) = call(&app, "POST", crds, None, Some(dup)).await?;
    assert_eq!(code, 409, "same name already exists");
    let mut other_kind = crd("widgets.example.com", "widgets", "Gizmo", "Namespaced");
    other_kind["spec"]["names"]["shortNames"] = json!([]);
    let (code, c2, _) = call(&app, "POST", crds, None, Some(other_kind)).await?;
    assert_eq!(code, 201);
    let conds = c2["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "NamesAccepted" && c["status"] == "False"),
        "{conds:?}"
    );
    let (code, _, _) = call(
        &app,
        "GET",
        "/apis/example.com/v1/namespaces/default/widgets",
        None,
        None,
    )
    .await?;
    assert_eq!(code, 404, "a CRD whose names conflict is not served");
    Ok(())
}

/// (method, path, content type, body, expected code).
type Case<'a> = (&'a str, String, Option<&'a str>, Option<Value>, u16);

#[tokio::test]
async fn malformed_input_gets_4xx_never_a_panic() -> Result<()> {
    let app = router(100).await?;
    call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "a"}})),
    )
    .await?;
    let cases: Vec<Case<'_>> = vec![
        (
            "POST",
            CMS.to_string(),
            None,
            Some(json!({"metadata": {"name": "l", "labels": {"bad key!": "v"}}})),
            422,
        ),
        (
            "POST",
            CMS.to_string(),
            None,
            Some(json!({"metadata": {"name": "l", "labels": {"k": "bad value!"}}})),
            422,
        ),
        (
            "POST",
            CMS.to_string(),
            None,
            Some(json!({"metadata": {"name": "l", "labels": {"k": 1}}})),
            400,
        ),
        (
            "POST",
            CMS.to_string(),
            None,
            Some(json!({"metadata": {"name": "l", "finalizers": "x"}})),
            400,
        ),
        (
            "PATCH",
            format!("{CMS}/a"),
            Some("application/merge-patch+json"),
            Some(json!({"metadata": {"labels": {"-x": "y"}}})),
            422,
        ),
        ("POST", CMS.to_string(), None, Some(json!([1, 2])), 400),
        (
            "POST",
            CMS.to_string(),
            None,
            Some(json!({"kind": "Secret", "metadata": {"name": "k"}})),
            400,
        ),
        (
            "POST",
            CMS.to_string(),
            None,
            Some(json!({"apiVersion": "apps/v1", "metadata": {"name": "k"}})),
            400,
        ),
        (
            "POST",
            "/api/v1/configmaps".to_string(),
            None,
            Some(json!({"metadata": {"name": "k"}})),
            400,
        ),
        ("GET", format!("{CMS}?continue=garbage"), None, None, 400),
        ("GET", format!("{CMS}?limit=abc"), None, None, 400),
        (
            "GET",
            format!("{CMS}?watch=true&resourceVersion=abc"),
            None,
            None,
            400,
        ),
        (
            "GET",
            format!("{CMS}?watch=true&timeoutSeconds=-1"),
            None,
            None,
            400,
        ),
        (
            "PATCH",
            format!("{CMS}/a"),
            Some("application/json-patch+json"),
            Some(json!({"not": "a patch"})),
            400,
        ),
        (
            "PATCH",
            format!("{CMS}/a"),
            Some("application/json-patch+json"),
            Some(json!([{"op": "test", "path": "/data/x", "value": 1}])),
            422,
        ),
        (
            "PATCH",
            format!("{CMS}/a"),
            Some("application/merge-patch+json"),
            Some(json!("str")),
            400,
        ),
        (
            "PUT",
            format!("{CMS}/a"),
            None,
            Some(json!({"metadata": {"name": "b"}})),
            400,
        ),
        (
            "PUT",
            format!("{CMS}/zzz"),
            None,
            Some(json!({"metadata": {"name": "zzz"}})),
            404,
        ),
        (
            "DELETE",
            format!("{CMS}/a"),
            None,
            Some(json!({"preconditions": {"resourceVersion": "1"}})),
            409,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/a/status".to_string(),
            None,
            None,
            404,
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/a/scale/extra".to_string(),
            None,
            None,
            404,
        ),
        (
            "GET",
            "/clusters/nope/api/v1/namespaces".to_string(),
            None,
            None,
            404,
        ),
        (
            "POST",
            "/api/v1/namespaces".to_string(),
            None,
            Some(json!({"metadata": {"name": "has.dot"}})),
            422,
        ),
    ];
    for (method, path, ct, body, want) in cases {
        let (code, status, text) = call(&app, method, &path, ct, body).await?;
        assert_eq!(code, want, "{method} {path}: {text}");
        assert_eq!(status["kind"], "Status", "{method} {path}: {text}");
    }
    Ok(())
}

#[tokio::test]
async fn cluster_wide_list_spans_namespaces() -> Result<()> {
    let app = router(100).await?;
    call(
        &app,
        "POST",
        "/api/v1/namespaces",
        None,
        Some(json!({"metadata": {"name": "other"}})),
    )
    .await?;
    call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "a"}})),
    )
    .await?;
    call(
        &app,
        "POST",
        "/api/v1/namespaces/other/configmaps",
        None,
        Some(json!({"metadata": {"name": "b"}})),
    )
    .await?;
    let (_, all, _) = call(&app, "GET", "/api/v1/configmaps", None, None).await?;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(2));
    let (_, one, _) = call(
        &app,
        "GET",
        "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dother",
        None,
        None,
    )
    .await?;
    assert_eq!(one["items"][0]["metadata"]["name"], "b");
    let (_, ns, _) = call(&app, "GET", "/api/v1/namespaces/other", None, None).await?;
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "other"
    );
    assert_eq!(ns["status"]["phase"], "Active");
    Ok(())
}

#[tokio::test]
async fn crd_deletion_waits_for_custom_resource_finalizers() -> Result<()> {
    let app = router(100).await?;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let (code, _, _) = call(
        &app,
        "POST",
        crds,
        None,
        Some(crd("gizmos.example.com", "gizmos", "Gizmo", "Namespaced")),
    )
    .await?;
    assert_eq!(code, 201);
    let gizmos = "/apis/example.com/v1/namespaces/default/gizmos";
    call(&app, "POST", gizmos, None, Some(json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "held", "finalizers": ["example.com/x"]}}))).await?;
    call(
        &app,
        "POST",
        gizmos,
        None,
        Some(
            json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "free"}}),
        ),
    )
    .await?;

    let (code, pending, _) = call(
        &app,
        "DELETE",
        &format!("{crds}/gizmos.example.com"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 200);
    assert!(
        pending["metadata"]["deletionTimestamp"].is_string(),
        "{pending}"
    );
    let (code, _, _) = call(&app, "GET", &format!("{gizmos}/free"), None, None).await?;
    assert_eq!(code, 404);
    let (code, held, _) = call(&app, "GET", &format!("{gizmos}/held"), None, None).await?;
    assert_eq!(code, 200, "still served while it has finalizers");
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    let (code, _, _) = call(
        &app,
        "POST",
        gizmos,
        None,
        Some(json!({"apiVersion": "example.com/v1", "kind": "Gizmo", "metadata": {"name": "new"}})),
    )
    .await?;
    assert_eq!(code, 405, "no creates while the CRD terminates");

    let (code, _, _) = call(
        &app,
        "PATCH",
        &format!("{gizmos}/held"),
        Some("application/merge-patch+json"),
        Some(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _, _) = call(
        &app,
        "GET",
        &format!("{crds}/gizmos.example.com"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 404, "CRD goes once its objects are gone");
    let (code, _, _) = call(&app, "GET", gizmos, None, None).await?;
    assert_eq!(code, 404, "no longer served");
    Ok(())
}

#[tokio::test]
async fn yaml_is_served_when_asked_for_but_never_for_a_watch() -> Result<()> {
    let app = router(100).await?;
    let (code, _, _) = call(
        &app,
        "POST",
        CMS,
        Some("application/json"),
        Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}, "data": {"k": "v"}})),
    )
    .await?;
    assert_eq!(code, 201);
    let get = |path: String, accept: &'static str| {
        let app = app.clone();
        async move {
            let req = http::Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("accept", accept)
                .body(Body::empty())?;
            let resp = app.oneshot(req).await?;
            let kind = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            anyhow::Ok((resp.status().as_u16(), kind, resp.into_body()))
        }
    };
    let (code, kind, body) = get(format!("{CMS}/y"), "application/yaml").await?;
    let text = String::from_utf8(body.collect().await?.to_bytes().to_vec())?;
    assert_eq!((code, kind.as_str()), (200, "application/yaml"));
    let parsed: Value = serde_saphyr::from_str(&text)?;
    assert_eq!(parsed["data"]["k"], "v", "{text}");
    let (code, kind, body) = get(
        format!("{CMS}/missing"),
        "application/yaml, application/json",
    )
    .await?;
    let text = String::from_utf8(body.collect().await?.to_bytes().to_vec())?;
    assert_eq!((code, kind.as_str()), (404, "application/yaml"));
    assert!(text.contains("reason: NotFound"), "{text}");
    // A watch streams JSON events whatever it asked for.
    let (code, kind, _) = get(
        format!("{CMS}?watch=true&timeoutSeconds=1"),
        "application/yaml",
    )
    .await?;
    assert_eq!((code, kind.as_str()), (200, "application/json"));
    Ok(())
}

#[tokio::test]
async fn immutable_configmaps_keep_their_data() -> Result<()> {
    let app = router(100).await?;
    call(&app, "POST", CMS, None, Some(json!({"metadata": {"name": "frozen", "labels": {"example.com/tier": "a"}}, "data": {"k": "v"}, "immutable": true}))).await?;
    let path = format!("{CMS}/frozen");
    let merge = Some("application/merge-patch+json");
    let (code, s, _) = call(
        &app,
        "PATCH",
        &path,
        merge,
        Some(json!({"data": {"k": "changed"}})),
    )
    .await?;
    assert_eq!(
        (code, s["details"]["causes"][0]["field"].as_str()),
        (422, Some("data"))
    );
    let (code, _, _) = call(
        &app,
        "PATCH",
        &path,
        merge,
        Some(json!({"immutable": false})),
    )
    .await?;
    assert_eq!(code, 422);
    let (code, _, _) = call(
        &app,
        "PATCH",
        &path,
        merge,
        Some(json!({"metadata": {"labels": {"example.com/tier": "b"}}})),
    )
    .await?;
    assert_eq!(code, 200, "metadata stays mutable");
    Ok(())
}

#[tokio::test]
async fn watches_that_allow_bookmarks_get_them_with_the_latest_rv() -> Result<()> {
    let app = router(100).await?;
    let (_, created, _) = call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "a"}})),
    )
    .await?;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, _, text) = call(
        &app,
        "GET",
        &format!("{CMS}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=1"),
        None,
        None,
    )
    .await?;
    let ev = events(&text);
    assert!(ev.len() >= 2, "{text}");
    assert!(
        ev.iter().all(|(k, o)| k == "BOOKMARK"
            && o["metadata"]["resourceVersion"] == rv.as_str()
            && o["kind"] == "ConfigMap"),
        "{text}"
    );
    let (_, _, text) = call(
        &app,
        "GET",
        &format!("{CMS}?watch=1&resourceVersion={rv}&timeoutSeconds=1"),
        None,
        None,
    )
    .await?;
    assert!(
        events(&text).is_empty(),
        "no bookmarks unless asked: {text}"
    );
    Ok(())
}

#[tokio::test]
async fn paginated_lists_are_consistent_at_the_first_page_rv() -> Result<()> {
    let app = router(1000).await?;
    for n in ["b", "c", "d", "e", "f"] {
        call(
            &app,
            "POST",
            CMS,
            None,
            Some(json!({"metadata": {"name": n}, "data": {"v": "old"}})),
        )
        .await?;
    }
    let (_, page, _) = call(&app, "GET", &format!("{CMS}?limit=2"), None, None).await?;
    let rv = page["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut token = page["metadata"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut names: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
        .collect();
    // Changes after the first page must not show up in later pages.
    call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "z"}})),
    )
    .await?;
    call(&app, "DELETE", &format!("{CMS}/f"), None, None).await?;
    call(
        &app,
        "PATCH",
        &format!("{CMS}/e"),
        Some("application/merge-patch+json"),
        Some(json!({"data": {"v": "new"}})),
    )
    .await?;
    let mut e_value = String::new();
    while !token.is_empty() {
        let (code, page, text) = call(
            &app,
            "GET",
            &format!("{CMS}?limit=2&continue={token}"),
            None,
            None,
        )
        .await?;
        assert_eq!(code, 200, "{text}");
        assert_eq!(
            page["metadata"]["resourceVersion"].as_str(),
            Some(rv.as_str())
        );
        for o in page["items"].as_array().into_iter().flatten() {
            let n = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if n == "e" {
                e_value = o["data"]["v"].as_str().unwrap_or_default().to_string();
            }
            names.push(n);
        }
        token = page["metadata"]["continue"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    assert_eq!(names, vec!["b", "c", "d", "e", "f"]);
    assert_eq!(e_value, "old");
    // resourceVersionMatch=Exact reads the past too; the future is a 504.
    let (code, exact, _) = call(
        &app,
        "GET",
        &format!("{CMS}?resourceVersion={rv}&resourceVersionMatch=Exact"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 200);
    assert_eq!(exact["items"].as_array().map(Vec::len), Some(5));
    let (code, _, _) = call(
        &app,
        "GET",
        &format!("{CMS}?resourceVersion=999999&resourceVersionMatch=Exact"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 504);
    Ok(())
}

#[tokio::test]
async fn continue_token_older_than_history_is_410() -> Result<()> {
    let app = router(3).await?;
    for n in ["a", "b", "c"] {
        call(
            &app,
            "POST",
            CMS,
            None,
            Some(json!({"metadata": {"name": n}})),
        )
        .await?;
    }
    let (_, page, _) = call(&app, "GET", &format!("{CMS}?limit=1"), None, None).await?;
    let token = page["metadata"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for i in 0..5 {
        call(
            &app,
            "POST",
            CMS,
            None,
            Some(json!({"metadata": {"name": format!("x{i}")}})),
        )
        .await?;
    }
    let (code, s, _) = call(
        &app,
        "GET",
        &format!("{CMS}?limit=1&continue={token}"),
        None,
        None,
    )
    .await?;
    assert_eq!((code, s["reason"].as_str()), (410, Some("Expired")));
    Ok(())
}

#[tokio::test]
async fn watch_from_a_future_rv_waits_for_it() -> Result<()> {
    let app = router(100).await?;
    let (_, list, _) = call(&app, "GET", CMS, None, None).await?;
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    // From two changes ahead: the first two are not shown, the third is.
    let watch = {
        let app = app.clone();
        tokio::spawn(async move {
            call(
                &app,
                "GET",
                &format!("{CMS}?watch=1&resourceVersion={}&timeoutSeconds=2", rv + 2),
                None,
                None,
            )
            .await
        })
    };
    for n in ["a", "b", "c"] {
        call(
            &app,
            "POST",
            CMS,
            None,
            Some(json!({"metadata": {"name": n}})),
        )
        .await?;
    }
    let (code, _, text) = watch.await??;
    assert_eq!(code, 200);
    let ev = events(&text);
    assert_eq!(ev.len(), 1, "{text}");
    assert_eq!(ev[0].0, "ADDED");
    assert_eq!(ev[0].1["metadata"]["name"], "c");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn reads_at_a_future_rv_wait_then_answer_504() -> Result<()> {
    let app = router(100).await?;
    call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "a"}})),
    )
    .await?;
    for path in [
        format!("{CMS}?resourceVersion=999999"),
        format!("{CMS}?resourceVersion=999999&resourceVersionMatch=NotOlderThan"),
        format!("{CMS}?resourceVersion=999999&resourceVersionMatch=Exact"),
        format!("{CMS}/a?resourceVersion=999999"),
    ] {
        let started = tokio::time::Instant::now();
        let (code, status, _) = call(&app, "GET", &path, None, None).await?;
        assert_eq!(code, 504, "{path}: {status}");
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(3),
            "{path}"
        );
        assert_eq!(status["reason"], "Timeout");
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "ResourceVersionTooLarge"
        );
        assert_eq!(status["details"]["retryAfterSeconds"], 1);
        assert!(
            status["message"].as_str().is_some_and(
                |m| m.starts_with("Timeout: Too large resource version: 999999, current: ")
            ),
            "{status}"
        );
    }
    // A resourceVersion already reached reads at once.
    let (code, _, _) = call(
        &app,
        "GET",
        &format!("{CMS}/a?resourceVersion=1"),
        None,
        None,
    )
    .await?;
    assert_eq!(code, 200);
    Ok(())
}

#[tokio::test]
async fn aggregated_discovery_lists_groups_versions_and_resources() -> Result<()> {
    let app = router(100).await?;
    let get = |path: &'static str, accept: &'static str| {
        let app = app.clone();
        async move {
            let req = http::Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header("accept", accept)
                .body(Body::empty())?;
            let resp = app.oneshot(req).await?;
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let bytes = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((ct, serde_json::from_slice::<Value>(&bytes)?))
        }
    };
    const V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let (ct, apis) = get("/apis", V2).await?;
    assert_eq!(
        ct,
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(apis["kind"], "APIGroupDiscoveryList");
    assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2");
    let items = apis["items"].as_array().cloned().unwrap_or_default();
    let apps = items
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .expect("apps");
    assert_eq!(apps["versions"][0]["version"], "v1");
    assert_eq!(apps["versions"][0]["freshness"], "Current");
    let deployments = apps["versions"][0]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["resource"] == "deployments"))
        .cloned()
        .expect("deployments");
    assert_eq!(
        deployments,
        json!({"resource": "deployments",
            "responseKind": {"group": "", "version": "", "kind": "Deployment"},
            "scope": "Namespaced", "singularResource": "deployment",
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": ["deploy"], "categories": ["all"],
            "subresources": [
                {"subresource": "scale",
                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                    "verbs": ["get", "patch", "update"]},
                {"subresource": "status",
                    "responseKind": {"group": "", "version": "", "kind": "Deployment"},
                    "verbs": ["get", "patch", "update"]}]})
    );
    assert!(items.iter().all(|g| g["metadata"]["name"] != ""));
    // The core group on /api, with no name; a TokenRequest subresource names its group.
    let (_, core) = get("/api", V2).await?;
    let core_items = core["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(core_items.len(), 1);
    assert_eq!(core_items[0]["metadata"], json!({}));
    let sa = core_items[0]["versions"][0]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["resource"] == "serviceaccounts"))
        .cloned()
        .expect("serviceaccounts");
    assert_eq!(
        sa["subresources"][0],
        json!({"subresource": "token",
            "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"},
            "verbs": ["create"]})
    );
    // v2beta1 first gets v2beta1; plain JSON gets the legacy documents.
    let (_, beta) = get(
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
    )
    .await?;
    assert_eq!(beta["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    let (_, legacy) = get("/apis", "application/json").await?;
    assert_eq!(legacy["kind"], "APIGroupList");
    let (_, legacy_core) = get("/api", "application/json, */*").await?;
    assert_eq!(legacy_core["kind"], "APIVersions");
    Ok(())
}

#[tokio::test]
async fn access_reviews_answer_for_everyone_and_check_their_namespace() -> Result<()> {
    let app = router(100).await?;
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}}});
    let (code, answer, _) = call(
        &app,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        None,
        Some(sar),
    )
    .await?;
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["status"]["allowed"], true);
    assert_eq!(answer["spec"]["user"], "alice");
    let local = |ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "spec": {"user": "alice", "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "pods"}}})
    };
    let path = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
    let (code, _, _) = call(&app, "POST", path, None, Some(local("default"))).await?;
    assert_eq!(code, 201);
    let (code, status, _) = call(&app, "POST", path, None, Some(local("other"))).await?;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.resourceAttributes.namespace"
    );
    let (code, rules, _) = call(
        &app,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        None,
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": "default"}}),
        ),
    )
    .await?;
    assert_eq!(code, 201);
    assert_eq!(
        rules["status"]["resourceRules"],
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
    );
    // Nothing is stored: the reviews are create-only.
    let (code, _, _) = call(
        &app,
        "GET",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        None,
        None,
    )
    .await?;
    assert_eq!(code, 405);
    Ok(())
}

#[tokio::test]
async fn protobuf_answers_for_clients_that_ask_first() -> Result<()> {
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::Unknown;
    use prost::Message as _;
    let app = router(100).await?;
    call(
        &app,
        "POST",
        CMS,
        None,
        Some(json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}})),
    )
    .await?;
    let get = |path: &'static str| {
        let app = app.clone();
        async move {
            let req = http::Request::builder()
                .uri(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .header(
                    "accept",
                    "application/vnd.kubernetes.protobuf, application/json",
                )
                .body(Body::empty())?;
            let resp = app.oneshot(req).await?;
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let bytes = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((ct, bytes.to_vec()))
        }
    };
    let unwrap = |bytes: &[u8]| -> Result<Unknown> {
        let raw = bytes
            .strip_prefix(b"k8s\x00".as_slice())
            .ok_or_else(|| anyhow::anyhow!("no envelope"))?;
        Ok(Unknown::decode(raw)?)
    };
    let (ct, bytes) = get("/api/v1/namespaces/default/configmaps/a").await?;
    assert_eq!(ct, "application/vnd.kubernetes.protobuf");
    let envelope = unwrap(&bytes)?;
    assert_eq!(
        envelope.type_meta.as_ref().and_then(|t| t.kind.as_deref()),
        Some("ConfigMap")
    );
    let cm = core::ConfigMap::decode(envelope.raw.unwrap_or_default().as_slice())?;
    assert_eq!(cm.data.get("k").map(String::as_str), Some("v"));
    let m = cm.metadata.unwrap_or_default();
    assert_eq!(m.name.as_deref(), Some("a"));
    assert!(
        m.creation_timestamp
            .and_then(|t| t.seconds)
            .is_some_and(|s| s > 0)
    );
    let (_, bytes) = get("/api/v1/namespaces/default/configmaps").await?;
    let list = core::ConfigMapList::decode(unwrap(&bytes)?.raw.unwrap_or_default().as_slice())?;
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.and_then(|m| m.resource_version).is_some());
    let (_, bytes) = get("/api/v1/namespaces/default/configmaps/missing").await?;
    let status = meta::Status::decode(unwrap(&bytes)?.raw.unwrap_or_default().as_slice())?;
    assert_eq!(
        (status.code, status.reason.as_deref()),
        (Some(404), Some("NotFound"))
    );
    // Discovery has no protobuf form here: it stays JSON.
    let (ct, _) = get("/api").await?;
    assert_eq!(ct, "application/json");
    Ok(())
}

/// The `Warning` headers of a GET.
async fn warnings_of(app: &Router, path: &str) -> Result<(u16, Vec<String>)> {
    let req = http::Request::get(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())?;
    let resp = app.clone().oneshot(req).await?;
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(String::from))
        .collect();
    Ok((resp.status().as_u16(), warnings))
}

/// Every answer about a deprecated resource warns, errors included, in kube-apiserver's words
/// (read off v1.37.2).
#[tokio::test]
async fn deprecated_resources_warn_on_every_answer() -> Result<()> {
    let app = router(100).await?;
    let endpoints =
        "299 - \"v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\"";
    for path in [
        "/api/v1/namespaces/default/endpoints",
        "/api/v1/namespaces/default/endpoints/nope",
    ] {
        let (_, w) = warnings_of(&app, path).await?;
        assert_eq!(w, [endpoints], "{path}");
    }
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let (code, _, body) = call(
        &app,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        None,
        Some(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "olds.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "olds", "kind": "Old"},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false, "deprecated": true, "schema": schema},
                    {"name": "v1alpha1", "served": true, "storage": false, "deprecated": true,
                        "deprecationWarning": "use v1", "schema": schema},
                    {"name": "v1", "served": true, "storage": true, "schema": schema},
                    {"name": "v2alpha1", "served": true, "storage": false, "deprecated": true, "schema": schema},
                    {"name": "v3", "served": true, "storage": false, "deprecated": true, "schema": schema}]}
        })),
    )
    .await?;
    assert_eq!(code, 201, "{body}");
    for (version, want) in [
        (
            "v1beta1",
            vec!["299 - \"example.com/v1beta1 Old is deprecated; use example.com/v1 Old\""],
        ),
        ("v1alpha1", vec!["299 - \"use v1\""]),
        ("v1", vec![]),
        // GA v1 ranks above a later major's alpha; nothing undeprecated ranks above v3.
        (
            "v2alpha1",
            vec!["299 - \"example.com/v2alpha1 Old is deprecated; use example.com/v1 Old\""],
        ),
        ("v3", vec!["299 - \"example.com/v3 Old is deprecated\""]),
    ] {
        let (code, w) = warnings_of(&app, &format!("/apis/example.com/{version}/olds")).await?;
        assert_eq!(
            (code, w),
            (200, want.iter().map(|s| s.to_string()).collect()),
            "{version}"
        );
    }
    Ok(())
}
