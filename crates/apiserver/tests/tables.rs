//! Table output over HTTPS, as `kubectl get` asks for it: built-in kinds' columns, a CRD's
//! `additionalPrinterColumns` (JSONPath with a filter), `includeObject`, a single object, and a
//! watch whose first event alone carries the column definitions.

use std::time::Duration;

use anyhow::{Context as _, Result};
use flotilla_apiserver::{Config, Server};
use http::{Method, Request};
use kube::Client;
use serde_json::{Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

async fn start() -> Result<(Server, Client, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    let server = Server::start(config).await?;
    let client = server.client(None).await?;
    Ok((server, client, dir))
}

async fn call(
    client: &Client,
    method: Method,
    path: &str,
    accept: &str,
    body: &Value,
) -> Result<(u16, String)> {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body)?
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(bytes)?;
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
}

fn names(t: &Value) -> Vec<String> {
    t["columnDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn built_in_kinds_list_as_tables_with_kubectls_columns() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let cms = "/api/v1/namespaces/default/configmaps";
    call(&client, Method::POST, cms, "application/json",
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}})).await?;
    let (code, text) = call(&client, Method::GET, cms, TABLE, &Value::Null).await?;
    assert_eq!(code, 200, "{text}");
    let t: Value = serde_json::from_str(&text)?;
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(names(&t), ["Name", "Data", "Age"]);
    assert_eq!(t["columnDefinitions"][0]["format"], "name");
    let row = &t["rows"][0];
    assert_eq!(row["cells"][0], "a");
    assert_eq!(row["cells"][1], 2);
    assert!(
        row["cells"][2].as_str().is_some_and(|a| a.ends_with('s')),
        "{row}"
    );
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(row["object"]["metadata"]["name"], "a");
    assert!(t["metadata"]["resourceVersion"].is_string());
    // includeObject=Object carries the object; None nothing.
    let (_, text) = call(
        &client,
        Method::GET,
        &format!("{cms}?includeObject=Object"),
        TABLE,
        &Value::Null,
    )
    .await?;
    let t: Value = serde_json::from_str(&text)?;
    assert_eq!(t["rows"][0]["object"]["data"]["x"], "1");
    let (_, text) = call(
        &client,
        Method::GET,
        &format!("{cms}?includeObject=None"),
        TABLE,
        &Value::Null,
    )
    .await?;
    let t: Value = serde_json::from_str(&text)?;
    assert!(t["rows"][0].get("object").is_none());
    // One object is a one-row table.
    let (_, text) = call(
        &client,
        Method::GET,
        &format!("{cms}/a"),
        TABLE,
        &Value::Null,
    )
    .await?;
    let t: Value = serde_json::from_str(&text)?;
    assert_eq!(t["rows"].as_array().map(Vec::len), Some(1));
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    call(&client, Method::POST, deploys, "application/json", &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})).await?;
    let (_, text) = call(&client, Method::GET, deploys, TABLE, &Value::Null).await?;
    let t: Value = serde_json::from_str(&text)?;
    assert_eq!(
        names(&t),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert_eq!(t["rows"][0]["cells"][1], "0/3");
    assert_eq!(t["rows"][0]["cells"][6], "nginx:1");
    assert_eq!(t["columnDefinitions"][6]["priority"], 1, "wide only");
    assert_eq!(t["rows"][0]["cells"][7], "a=b");
    Ok(())
}

#[tokio::test]
async fn custom_resources_use_their_printer_columns_in_lists_and_watches() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Zone", "type": "string", "priority": 1, "jsonPath": ".spec.zone"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}});
    let (code, text) = call(
        &client,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "application/json",
        &crd,
    )
    .await?;
    assert_eq!(code, 201, "{text}");
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    for _ in 0..100 {
        if call(
            &client,
            Method::GET,
            widgets,
            "application/json",
            &Value::Null,
        )
        .await?
        .0 == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, text) = call(&client, Method::POST, widgets, "application/json", &json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3},
        "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}})).await?;
    assert_eq!(code, 201, "{text}");
    let (_, text) = call(&client, Method::GET, widgets, TABLE, &Value::Null).await?;
    let t: Value = serde_json::from_str(&text)?;
    assert_eq!(names(&t), ["Name", "Size", "Ready", "Zone", "Age"]);
    let cells = &t["rows"][0]["cells"];
    // status is dropped on create (status subresource), so Ready is empty: no value is null.
    assert_eq!(
        (
            cells[0].clone(),
            cells[1].clone(),
            cells[2].clone(),
            cells[3].clone()
        ),
        (json!("w"), json!(3), Value::Null, Value::Null)
    );
    assert!(
        cells[4].as_str().is_some_and(|a| a.ends_with('s')),
        "age: {cells}"
    );
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(format!("{widgets}/w/status"))
        .header("content-type", "application/merge-patch+json")
        .body(serde_json::to_vec(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )?)?;
    client.send(request.map(kube::client::Body::from)).await?;
    let (_, text) = call(&client, Method::GET, widgets, TABLE, &Value::Null).await?;
    let t: Value = serde_json::from_str(&text)?;
    assert_eq!(
        t["rows"][0]["cells"][2], "True",
        "the filter picks the Ready condition"
    );
    // A watch: one-row tables, definitions only in the first event.
    let rv = t["metadata"]["resourceVersion"]
        .as_str()
        .context("list rv")?
        .to_owned();
    for name in ["x", "y"] {
        call(
            &client,
            Method::POST,
            widgets,
            "application/json",
            &json!({"apiVersion": "example.com/v1",
            "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 1}}),
        )
        .await?;
    }
    let (_, text) = call(
        &client,
        Method::GET,
        &format!("{widgets}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
        TABLE,
        &Value::Null,
    )
    .await?;
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    let (first, second) = (&events[0]["object"], &events[1]["object"]);
    assert_eq!(
        (first["kind"].as_str(), second["kind"].as_str()),
        (Some("Table"), Some("Table"))
    );
    assert_eq!(names(first), ["Name", "Size", "Ready", "Zone", "Age"]);
    assert!(second["columnDefinitions"].is_null(), "{second}");
    assert_eq!(
        (
            first["rows"][0]["cells"][0].as_str(),
            second["rows"][0]["cells"][0].as_str()
        ),
        (Some("x"), Some("y"))
    );
    Ok(())
}
