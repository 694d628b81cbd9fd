//! The differential fidelity report: the same requests against the embedded API server and a
//! real kube-apiserver, compared on what a client sees — status code, reason, the fields named
//! in causes, and the returned object less what each server assigns (uid, resourceVersion,
//! timestamps, managedFields). Prints one line per divergence (`make fidelity`); every line
//! must be listed, with its reason, under "Known divergences from kube-apiserver" in
//! `crates/apiserver/STATUS.md`, and every listed line must still happen, so the list stays
//! true. Runs on the `kube` tier (it needs both servers).

use std::{collections::BTreeSet, path::PathBuf};

use anyhow::{Context as _, Result};
use flotilla_testing::{ServerKind, TestHub};
use http::{Method, Request};
use kube::Client;
use serde_json::{Value, json};

/// One request of the probe sequence.
struct Probe {
    id: &'static str,
    method: Method,
    path: &'static str,
    content_type: &'static str,
    accept: &'static str,
    body: Value,
}

const NS: &str = "/api/v1/namespaces/fidelity";
const JSON: &str = "application/json";

fn probe(id: &'static str, method: Method, path: &'static str, body: Value) -> Probe {
    Probe {
        id,
        method,
        path,
        content_type: JSON,
        accept: JSON,
        body,
    }
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "fidelity"}}, "data": data})
}

/// The sequence, run in order on a fresh server; later probes see what earlier ones wrote.
fn probes() -> Vec<Probe> {
    let cms = "/api/v1/namespaces/fidelity/configmaps";
    vec![
        probe(
            "create-namespace",
            Method::POST,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fidelity"}}),
        ),
        probe(
            "create-configmap",
            Method::POST,
            cms,
            configmap("a", json!({"k": "v"})),
        ),
        probe(
            "create-duplicate",
            Method::POST,
            cms,
            configmap("a", json!({"k": "v"})),
        ),
        probe(
            "create-invalid-name",
            Method::POST,
            cms,
            configmap("Not_Valid", json!({})),
        ),
        probe(
            "create-wrong-type",
            Method::POST,
            cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typed"}, "data": {"k": 2}}),
        ),
        probe(
            "create-namespace-mismatch",
            Method::POST,
            cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}}),
        ),
        probe(
            "create-missing-namespace",
            Method::POST,
            "/api/v1/namespaces/nowhere/configmaps",
            configmap("b", json!({})),
        ),
        Probe {
            id: "create-strict-unknown-field",
            path: "/api/v1/namespaces/fidelity/configmaps?fieldValidation=Strict",
            ..probe(
                "",
                Method::POST,
                "",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, "bogus": 1}),
            )
        },
        probe(
            "get",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps/a",
            Value::Null,
        ),
        probe(
            "get-missing",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps/missing",
            Value::Null,
        ),
        probe(
            "list-label-selector",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?labelSelector=app%3Dfidelity",
            Value::Null,
        ),
        probe(
            "list-bad-label-selector",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?labelSelector=%3D%3D",
            Value::Null,
        ),
        probe(
            "list-unsupported-field-selector",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?fieldSelector=data.k%3Dv",
            Value::Null,
        ),
        probe(
            "list-bad-continue",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?continue=notatoken",
            Value::Null,
        ),
        probe(
            "update-stale-resource-version",
            Method::PUT,
            "/api/v1/namespaces/fidelity/configmaps/a",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "stale"}}),
        ),
        Probe {
            content_type: "application/merge-patch+json",
            ..probe(
                "patch-merge",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!({"data": {"merged": "yes"}}),
            )
        },
        Probe {
            content_type: "application/json-patch+json",
            ..probe(
                "patch-json",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!([{"op": "add", "path": "/data/json", "value": "yes"}]),
            )
        },
        Probe {
            content_type: "application/json-patch+json",
            ..probe(
                "patch-json-failed-test",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!([{"op": "test", "path": "/data/k", "value": "nope"}]),
            )
        },
        Probe {
            content_type: "application/strategic-merge-patch+json",
            ..probe(
                "patch-strategic",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!({"data": {"strategic": "yes"}}),
            )
        },
        Probe {
            content_type: "application/apply-patch+yaml",
            path: "/api/v1/namespaces/fidelity/configmaps/applied?fieldManager=fidelity",
            ..probe(
                "apply-create",
                Method::PATCH,
                "",
                configmap("applied", json!({"k": "v"})),
            )
        },
        Probe {
            content_type: "application/apply-patch+yaml",
            ..probe(
                "apply-without-field-manager",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/applied",
                configmap("applied", json!({"k": "v"})),
            )
        },
        Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(
                "get-as-table",
                Method::GET,
                "/api/v1/namespaces/fidelity/configmaps",
                Value::Null,
            )
        },
        probe(
            "list-future-resource-version",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan",
            Value::Null,
        ),
        probe(
            "delete",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/a",
            Value::Null,
        ),
        probe(
            "delete-missing",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/a",
            Value::Null,
        ),
        probe("delete-namespace", Method::DELETE, NS, Value::Null),
    ]
}

/// What a client sees of one answer, less what each server assigns.
fn seen(code: u16, body: &str) -> Value {
    let mut value: Value = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    if value.get("kind").and_then(Value::as_str) == Some("Status") {
        let mut fields: Vec<String> = value
            .pointer("/details/causes")
            .and_then(Value::as_array)
            .map(|causes| {
                causes
                    .iter()
                    .filter_map(|c| c.get("field").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        fields.sort();
        return json!({"code": code, "reason": value.get("reason"), "fields": fields});
    }
    strip(&mut value);
    json!({"code": code, "object": value})
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "managedFields",
                "deletionTimestamp",
                "selfLink",
                "continue",
                "remainingItemCount",
            ] {
                map.remove(key);
            }
            // Server-populated details that do not change what a client reads.
            if let Some(Value::Object(labels)) = map.get_mut("labels") {
                labels.remove("kubernetes.io/metadata.name");
            }
            for child in map.values_mut() {
                strip(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

async fn answer(client: &Client, probe: &Probe) -> Result<Value> {
    let body = if probe.body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&probe.body)?
    };
    let request = Request::builder()
        .method(probe.method.clone())
        .uri(probe.path)
        .header("content-type", probe.content_type)
        .header("accept", probe.accept)
        .body(body)?;
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .with_context(|| format!("{} {}", probe.method, probe.path))?;
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    Ok(seen(code, &String::from_utf8_lossy(&bytes)))
}

/// [`answer`], or a note that none came within 10 s.
async fn bounded(client: &Client, probe: &Probe) -> Result<Value> {
    match tokio::time::timeout(std::time::Duration::from_secs(10), answer(client, probe)).await {
        Ok(seen) => seen,
        Err(_) => Ok(json!("no answer within 10s")),
    }
}

/// The probe ids listed as known divergences in `crates/apiserver/STATUS.md`.
fn listed() -> Result<BTreeSet<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../apiserver/STATUS.md");
    let text = std::fs::read_to_string(&path)?;
    let section = text
        .split("## Known divergences from kube-apiserver")
        .nth(1)
        .context("STATUS.md has no \"Known divergences from kube-apiserver\" section")?;
    let section = section.split("\n## ").next().unwrap_or_default();
    Ok(section
        .lines()
        .filter_map(|line| line.strip_prefix("- `")?.split('`').next())
        .map(str::to_owned)
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn fidelity_report_lists_every_divergence_from_kube_apiserver() -> Result<()> {
    if ServerKind::from_env()? != ServerKind::Kube {
        println!("SKIPPED: the fidelity report needs a real kube-apiserver (make fidelity)");
        return Ok(());
    }
    let (embedded, real) = tokio::try_join!(
        TestHub::start_on(ServerKind::Embedded),
        TestHub::start_on(ServerKind::Kube)
    )?;
    let mut divergences = BTreeSet::new();
    for probe in probes() {
        let (ours, theirs) = tokio::try_join!(
            bounded(&embedded.client, &probe),
            bounded(&real.client, &probe)
        )?;
        if ours != theirs {
            println!(
                "DIVERGENCE {}: {} {}\n  embedded: {ours}\n  kube-apiserver: {theirs}",
                probe.id, probe.method, probe.path
            );
            divergences.insert(probe.id.to_owned());
        }
    }
    println!("{} divergences", divergences.len());
    let listed = listed()?;
    let unlisted: Vec<_> = divergences.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&divergences).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "crates/apiserver/STATUS.md must list exactly the divergences: unlisted {unlisted:?}, \
         no longer diverging {stale:?}"
    );
    Ok(())
}
