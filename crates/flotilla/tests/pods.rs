//! The Pod subresources that need no kubelet, on the test hub (the embedded server, or a real
//! kube-apiserver under `FLOTILLA_TEST_SERVER=kube`): `binding` (node and `PodScheduled`, a
//! second binding refused, name and target checked), `eviction` (a pod no budget covers, a
//! budget not yet processed, one allowing no disruption, one allowing one, which it spends),
//! and discovery listing them. The tests share one hub (a namespace each) on a real control plane.

#[path = "support/api.rs"]
mod api;
#[path = "support/clients.rs"]
mod clients;

use anyhow::{Context as _, Result, ensure};
use api::{ok, send};
use clients::{fresh_namespace, get_json, must_get};
use flotilla_testing::TestHub;
use http::Method;
use serde_json::{Value, json};

fn pod(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}})
}

#[tokio::test(flavor = "multi_thread")]
async fn binding_assigns_a_node_once() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "binding").await?;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    ok(c, Method::POST, &pods, &pod("p", json!({}))).await?;
    let bind = |name: &str, node: Value| {
        json!({"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "annotations": {"scheduled-by": "test"}},
            "target": {"kind": "Node", "name": node}})
    };
    let a = send(
        c,
        Method::POST,
        &format!("{pods}/p/binding"),
        &bind("p", json!("n1")),
    )
    .await?;
    ensure!(
        a.code == 201 && a.body["status"] == "Success",
        "{} {}",
        a.code,
        a.body
    );
    let p = must_get(c, &format!("{pods}/p")).await?;
    ensure!(p["spec"]["nodeName"] == "n1", "{p}");
    ensure!(
        p["metadata"]["annotations"]["scheduled-by"] == "test",
        "{p}"
    );
    let scheduled = p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
        .context("PodScheduled")?;
    ensure!(scheduled["status"] == "True", "{scheduled}");

    let again = send(
        c,
        Method::POST,
        &format!("{pods}/p/binding"),
        &bind("p", json!("n2")),
    )
    .await?;
    ensure!(again.code == 409, "{}", again.body);
    ensure!(
        again.body["message"]
            == "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"n1\"",
        "{}",
        again.body
    );
    let other = send(
        c,
        Method::POST,
        &format!("{pods}/p/binding"),
        &bind("q", json!("n2")),
    )
    .await?;
    ensure!(
        other.code == 400
            && other.body["message"] == "name in URL does not match name in Binding object",
        "{}",
        other.body
    );
    let missing = send(
        c,
        Method::POST,
        &format!("{pods}/nope/binding"),
        &bind("nope", json!("n1")),
    )
    .await?;
    ensure!(missing.code == 404, "{}", missing.body);
    // kube-apiserver answers a Binding without a target name 500; this server 422. Both refuse.
    ok(c, Method::POST, &pods, &pod("r", json!({}))).await?;
    let no_target = send(
        c,
        Method::POST,
        &format!("{pods}/r/binding"),
        &bind("r", Value::Null),
    )
    .await?;
    ensure!(no_target.code >= 400, "{}", no_target.body);
    ensure!(must_get(c, &format!("{pods}/r")).await?["spec"]["nodeName"].is_null());

    // No kubelet behind the pod: its log is refused with a reason, not a server error here
    // (kube-apiserver fails to reach the node).
    let log = send(c, Method::GET, &format!("{pods}/p/log"), &Value::Null).await?;
    ensure!(log.code >= 400, "{}", log.body);
    if hub.kind() == flotilla_testing::ServerKind::Embedded {
        ensure!(
            log.code == 400
                && log.body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("runs no kubelet")),
            "{}",
            log.body
        );
    }

    let core = must_get(c, "/api/v1").await?;
    let names: Vec<&str> = core["resources"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    for sub in [
        "pods/binding",
        "pods/eviction",
        "pods/log",
        "pods/exec",
        "pods/status",
    ] {
        ensure!(names.contains(&sub), "{sub} in discovery: {names:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn eviction_honours_the_disruption_budget() -> Result<()> {
    let hub = TestHub::shared().await?;
    // kube-rs retries a 429 (honouring Retry-After) until it gives up; the answer is the point.
    let client = api::without_retries(hub.kubeconfig()).await?;
    let c = &client;
    let ns = fresh_namespace(c, "eviction").await?;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let pdbs = format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets");
    let evict = |name: &str| json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}});
    // A running, ready pod: what budgets protect.
    let running = |name: &'static str| {
        let pods = pods.clone();
        async move {
            ok(c, Method::POST, &pods, &pod(name, json!({"app": "web"}))).await?;
            ok(
                c,
                Method::PATCH,
                &format!("{pods}/{name}/status"),
                &json!({"status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}]}}),
            )
            .await
        }
    };
    // No budget: evicted at once.
    ok(
        c,
        Method::POST,
        &pods,
        &pod("free", json!({"app": "other"})),
    )
    .await?;
    let a = send(
        c,
        Method::POST,
        &format!("{pods}/free/eviction"),
        &evict("free"),
    )
    .await?;
    ensure!(a.code == 201, "{}", a.body);
    api::until("free is gone", || async {
        Ok(get_json(c, &format!("{pods}/free"))
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;

    running("a").await?;
    running("b").await?;
    ok(
        c,
        Method::POST,
        &pdbs,
        &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await?;
    // Not processed yet (no disruption controller has written its status).
    let a = send(c, Method::POST, &format!("{pods}/a/eviction"), &evict("a")).await?;
    ensure!(a.code == 429, "{}", a.body);
    ensure!(
        a.body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
            && a.body["details"]["causes"][0]["message"]
                == "The disruption budget web is still being processed by the server.",
        "{}",
        a.body
    );
    let status = |allowed: i64| {
        json!({"status": {"observedGeneration": 1, "disruptionsAllowed": allowed,
            "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}})
    };
    ok(c, Method::PATCH, &format!("{pdbs}/web/status"), &status(0)).await?;
    let a = send(c, Method::POST, &format!("{pods}/a/eviction"), &evict("a")).await?;
    ensure!(a.code == 429, "{}", a.body);
    ensure!(
        a.body["details"]["causes"][0]["message"]
            == "The disruption budget web does not allow evicting pods currently",
        "{}",
        a.body
    );
    ensure!(get_json(c, &format!("{pods}/a")).await?.is_some());
    ok(c, Method::PATCH, &format!("{pdbs}/web/status"), &status(1)).await?;
    let a = send(c, Method::POST, &format!("{pods}/a/eviction"), &evict("a")).await?;
    ensure!(a.code == 201, "{}", a.body);
    let budget = must_get(c, &format!("{pdbs}/web")).await?;
    ensure!(
        budget["status"]["disruptionsAllowed"] == 0
            && budget["status"]["disruptedPods"]["a"].is_string(),
        "the disruption is spent: {budget}"
    );
    let b = send(c, Method::POST, &format!("{pods}/b/eviction"), &evict("b")).await?;
    ensure!(b.code == 429, "{}", b.body);
    let wrong = send(c, Method::POST, &format!("{pods}/b/eviction"), &evict("a")).await?;
    ensure!(wrong.code == 400, "{}", wrong.body);
    Ok(())
}
