//! Discovery documents: `/version`, the legacy ones (`/api`, `/apis`, `/apis/<g>`,
//! APIResourceLists) and aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1
//! `APIGroupDiscoveryList` on `/api` and `/apis`, which kubectl 1.30+ and client-go ask for
//! first), both built from the same registry entries.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::json_response;
use crate::errors::{Error, Result};
use crate::registry::{ResourceInfo, discovery_entries};
use crate::storage::ClusterStore;

/// The Kubernetes version this server reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

impl Version {
    /// The version of the k8s-openapi types the server is built with (its schemas' version).
    pub(crate) fn built_in() -> Self {
        // One of these expands: the k8s-openapi version feature the workspace enables.
        let mut minor: Option<u32> = None;
        k8s_openapi::k8s_if_1_33! { minor = minor.or(Some(33)); }
        k8s_openapi::k8s_if_1_34! { minor = minor.or(Some(34)); }
        k8s_openapi::k8s_if_1_35! { minor = minor.or(Some(35)); }
        k8s_openapi::k8s_if_1_36! { minor = minor.or(Some(36)); }
        k8s_openapi::k8s_if_1_37! { minor = minor.or(Some(37)); }
        let minor = minor.unwrap_or(35);
        Version {
            major: 1,
            minor,
            patch: 0,
        }
    }

    /// `1.34`, `v1.34` or `v1.34.2`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let mut parts = s.strip_prefix('v').unwrap_or(s).split('.');
        let mut next = || parts.next().map(str::parse::<u32>);
        let major = next()?.ok()?;
        let minor = next()?.ok()?;
        let patch = match next() {
            None => 0,
            Some(p) => p.ok()?,
        };
        next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }

    pub(crate) fn git(&self) -> String {
        format!("v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn ok(v: &Value) -> Response {
    json_response(200, serde_json::to_vec(v).unwrap_or_default())
}

/// `GET /version`.
pub(crate) fn version(v: &Version) -> Response {
    ok(&json!({
        "major": v.major.to_string(),
        "minor": v.minor.to_string(),
        "gitVersion": v.git(),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    }))
}

/// The aggregated discovery version the Accept header asks for first (`v2` or `v2beta1`), if
/// it asks for one before anything else it accepts.
pub(crate) fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|h| h.to_str().ok())?;
    let first = accept.split(',').next()?;
    let params: Vec<&str> = first.split(';').map(str::trim).collect();
    if !params.contains(&"as=APIGroupDiscoveryList") || !params.contains(&"g=apidiscovery.k8s.io") {
        return None;
    }
    if params.contains(&"v=v2") {
        Some("v2")
    } else if params.contains(&"v=v2beta1") {
        Some("v2beta1")
    } else {
        None
    }
}

/// One resource in aggregated form: the registry's legacy entries folded together (the main
/// resource, its subresources nested with their response kinds).
fn aggregated_resource(info: &ResourceInfo) -> Value {
    let entries = discovery_entries(info);
    let kind_of = |e: &Value| {
        json!({
            "group": e.get("group").cloned().unwrap_or(json!("")),
            "version": e.get("version").cloned().unwrap_or(json!("")),
            "kind": e["kind"],
        })
    };
    let Some((main, subs)) = entries.split_first() else {
        return Value::Null;
    };
    let mut out = json!({
        "resource": info.plural,
        "responseKind": kind_of(main),
        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": info.singular,
        "verbs": main["verbs"],
    });
    if let Some(o) = out.as_object_mut() {
        for key in ["shortNames", "categories"] {
            if let Some(v) = main.get(key) {
                o.insert(key.into(), v.clone());
            }
        }
        let mut subresources: Vec<Value> = subs
            .iter()
            .map(|e| {
                let name = e["name"].as_str().unwrap_or_default();
                json!({
                    "subresource": name.split_once('/').map(|(_, s)| s).unwrap_or(name),
                    "responseKind": kind_of(e),
                    "verbs": e["verbs"],
                })
            })
            .collect();
        subresources.sort_by(|a, b| a["subresource"].as_str().cmp(&b["subresource"].as_str()));
        if !subresources.is_empty() {
            o.insert("subresources".into(), Value::Array(subresources));
        }
    }
    out
}

/// `GET /api` or `GET /apis` asking for aggregated discovery: every group (the core one for
/// `/api`) with every served version, preferred first, and its resources.
pub(crate) fn aggregated_list(cluster: &ClusterStore, core: bool, version: &str) -> Response {
    let items: Vec<Value> = cluster.read(|s| {
        s.registry
            .group_versions()
            .iter()
            .filter(|(g, _)| g.is_empty() == core)
            .map(|(g, versions)| {
                let versions: Vec<Value> = versions
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> = s
                            .registry
                            .all()
                            .filter(|i| &i.group == g && &i.version == v)
                            .map(|i| aggregated_resource(i))
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                let metadata = if core { json!({}) } else { json!({"name": g}) };
                json!({"metadata": metadata, "versions": versions})
            })
            .collect()
    });
    let doc = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    });
    let mut resp = ok(&doc);
    if let Ok(ct) = axum::http::HeaderValue::from_str(&format!(
        "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    )) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, ct);
    }
    resp.headers_mut().insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("Accept"),
    );
    resp
}

/// `GET /api`.
pub(crate) fn api_versions(headers: &HeaderMap) -> Response {
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
pub(crate) fn api_groups(cluster: &ClusterStore) -> Response {
    let groups = cluster.read(|s| s.registry.group_versions());
    let docs: Vec<Value> = groups
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    ok(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs}))
}

/// `GET /apis/<group>`.
pub(crate) fn api_group(cluster: &ClusterStore, group: &str) -> Result<Response> {
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
pub(crate) fn resource_list(
    cluster: &ClusterStore,
    group: &str,
    version: &str,
) -> Result<Response> {
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

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn openapi_gv_doc(cluster: &ClusterStore, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    cluster.read(|s| {
        for info in s.registry.all().filter(|i| i.group == group && i.version == version) {
            add_schemas(info, &mut schemas);
            let prefix = gv_path(group, version);
            let item = if info.namespaced {
                format!("/{prefix}/namespaces/{{namespace}}/{}/{{name}}", info.plural)
            } else {
                format!("/{prefix}/{}/{{name}}", info.plural)
            };
            let gvk = json!({"group": group, "version": version, "kind": info.kind});
            let params = json!([
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            ]);
            let op = |action: &str| {
                json!({
                    "operationId": format!("{action}{}", info.kind),
                    "parameters": params,
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": gvk,
                })
            };
            paths.insert(
                item,
                json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
            );
        }
    });
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        // The version of the schemas this document holds.
        "info": {"title": "Kubernetes", "version": Version::built_in().git()},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The component name kube-apiserver gives a CRD's kind: the group's labels reversed, then the
/// version and kind (`widgets.example.com` v1 → `com.example.v1.Widget`).
fn crd_schema_name(info: &ResourceInfo) -> String {
    let mut labels: Vec<&str> = info.group.split('.').collect();
    labels.reverse();
    format!("{}.{}.{}", labels.join("."), info.version, info.kind)
}

/// Adds the schemas of one served kind (and every definition they refer to) to `out`.
fn add_schemas(info: &ResourceInfo, out: &mut serde_json::Map<String, Value>) {
    let builtins = flotilla_schema::builtin::builtins();
    let gvk = json!([{"group": info.group, "version": info.version, "kind": info.kind}]);
    let closure = |root: &str, out: &mut serde_json::Map<String, Value>| {
        for name in builtins.closure(root) {
            if let Some(v) = builtins.openapi().get(&name) {
                out.entry(name).or_insert_with(|| v.clone());
            }
        }
    };
    if info.custom {
        let mut schema = info
            .schema
            .as_ref()
            .map(|s| s.raw().clone())
            .unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        if let Some(o) = schema.as_object_mut() {
            let props = o.entry("properties").or_insert_with(|| json!({}));
            if let Some(p) = props.as_object_mut() {
                p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
                p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
                p.insert("metadata".into(), json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "Standard object's metadata."}));
            }
            o.insert("x-kubernetes-group-version-kind".into(), gvk);
        }
        out.insert(crd_schema_name(info), schema);
        closure("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", out);
    } else if let Some(name) = builtins.definition_name(&info.group, &info.version, &info.kind) {
        closure(name, out);
    }
}

fn hash_of(v: &Value) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(v).unwrap_or_default().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `GET /openapi/v3`: every served group-version with a hashed URL. The per-version documents
/// carry operations (with `fieldValidation`, so kubectl leaves field validation to the server),
/// GVKs, and the schemas of every served kind (built-in kinds with kube-apiserver's list and
/// patch metadata; CRDs' own schemas), so `kubectl explain` works.
pub(crate) fn openapi_root(cluster: &ClusterStore) -> Response {
    let groups = cluster.read(|s| s.registry.group_versions());
    let mut paths = serde_json::Map::new();
    for (group, versions) in groups {
        for version in versions {
            if let Some(doc) = openapi_gv_doc(cluster, &group, &version) {
                let p = gv_path(&group, &version);
                paths.insert(
                    p.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash_of(&doc))}),
                );
            }
        }
    }
    ok(&json!({"paths": paths}))
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<g>/<v>`.
pub(crate) fn openapi_group_version(
    cluster: &ClusterStore,
    group: &str,
    version: &str,
) -> Result<Response> {
    openapi_gv_doc(cluster, group, version)
        .map(|d| ok(&d))
        .ok_or_else(Error::path_not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_default_to_the_api_types() {
        assert_eq!(
            Version::parse("1.34").map(|v| v.git()),
            Some("v1.34.0".into())
        );
        assert_eq!(
            Version::parse("v1.34.2").map(|v| v.git()),
            Some("v1.34.2".into())
        );
        for bad in ["", "1", "v1.x", "1.34.2.1", "1.34.", "one.two"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        // The workspace builds k8s-openapi with its v1_35 feature.
        assert_eq!(Version::built_in().git(), "v1.35.0");
    }
}
