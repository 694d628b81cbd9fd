//! Legacy discovery documents (`/version`, `/api`, `/apis`, `/apis/<g>`, APIResourceLists).
//! The aggregated-discovery Accept header is answered with these same JSON documents, which
//! kubectl, client-go, kube-rs and the Python client all accept.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::json_response;
use crate::errors::{Error, Result};
use crate::registry::discovery_entries;
use crate::storage::ClusterStore;

/// The Kubernetes version this server reports (kubectl's dispatcher picks kubectl.1.33).
pub const MAJOR: &str = "1";
/// Minor version.
pub const MINOR: &str = "33";

fn ok(v: &Value) -> Response {
    json_response(200, serde_json::to_vec(v).unwrap_or_default())
}

/// `GET /version`.
pub fn version() -> Response {
    ok(&json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-flotilla"),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    }))
}

/// `GET /api`.
pub fn api_versions(headers: &HeaderMap) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    ok(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }))
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `GET /apis`.
pub fn api_groups(cluster: &ClusterStore) -> Response {
    let groups = cluster.read(|s| s.registry.group_versions());
    let docs: Vec<Value> = groups
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    ok(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs}))
}

/// `GET /apis/<group>`.
pub fn api_group(cluster: &ClusterStore, group: &str) -> Result<Response> {
    let groups = cluster.read(|s| s.registry.group_versions());
    let versions = groups
        .get(group)
        .filter(|_| !group.is_empty())
        .ok_or_else(Error::path_not_found)?;
    let mut doc = group_doc(group, versions);
    if let Some(o) = doc.as_object_mut() {
        o.insert("kind".into(), json!("APIGroup"));
        o.insert("apiVersion".into(), json!("v1"));
    }
    Ok(ok(&doc))
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`.
pub fn resource_list(cluster: &ClusterStore, group: &str, version: &str) -> Result<Response> {
    let resources: Vec<Value> = cluster.read(|s| {
        s.registry
            .all()
            .filter(|i| i.group == group && i.version == version)
            .flat_map(|i| discovery_entries(i))
            .collect()
    });
    if resources.is_empty() {
        return Err(Error::path_not_found());
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(ok(&json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })))
}
