//! HTTP routing: authentication, the `/clusters/<name>` prefix that selects a logical cluster,
//! and dispatch of discovery and resource paths to the handlers. Owns the shared server state
//! (the set of logical clusters); never implements verb semantics itself.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::errors::{Error, Result};
use crate::handlers::serviceaccounts::User;
use crate::handlers::{crud, discovery, watch};
use crate::registry::ResourceInfo;
use crate::requests::{RequestLog, Verb};
use crate::storage::ClusterStore;
use crate::storage::sqlite::Writer;

/// Name of the logical cluster served at the root.
pub(crate) const DEFAULT_CLUSTER: &str = "default";

/// Largest accepted request body.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// State shared by every request.
pub(crate) struct AppState {
    /// Logical clusters by name.
    pub(crate) clusters: RwLock<HashMap<String, Arc<ClusterStore>>>,
    /// The admin bearer token.
    pub(crate) token: String,
    /// The serving CA (PEM), which ServiceAccount token Secrets carry as `ca.crt`.
    pub(crate) ca_pem: Arc<str>,
    /// Durable storage, when not in memory.
    pub(crate) persist: Option<Writer>,
    /// How often watches that allow bookmarks get one.
    pub(crate) bookmark_interval: std::time::Duration,
    /// Counts of the resource requests served, for `Server::request_counts`.
    pub(crate) requests: RequestLog,
    /// The Kubernetes version `/version` reports.
    pub(crate) version: crate::handlers::discovery::Version,
}

impl AppState {
    /// Look up a logical cluster.
    pub(crate) fn cluster(&self, name: &str) -> Option<Arc<ClusterStore>> {
        self.clusters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }
}

/// The router for the whole server.
pub(crate) fn app(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Parsed query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        let Some(q) = q else { return Query::default() };
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// First value of a parameter.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Boolean parameter (`true`/`1`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request for a resource path.
#[derive(Debug, Clone)]
pub(crate) struct ResourceRequest {
    /// The logical cluster.
    pub(crate) cluster: Arc<ClusterStore>,
    /// The resource.
    pub(crate) info: Arc<ResourceInfo>,
    /// Namespace from the URL (namespaced resources only).
    pub(crate) namespace: Option<String>,
    /// Object name from the URL (for a watch, only on a deprecated `/watch/` path).
    pub(crate) name: Option<String>,
    /// Subresource (`status`, `scale`).
    pub(crate) sub: Option<String>,
    /// Query parameters.
    pub(crate) query: Query,
    /// Bookmark period for watches.
    pub(crate) bookmark_interval: std::time::Duration,
    /// The client's User-Agent (names the field manager when `fieldManager` is not given).
    pub(crate) user_agent: Option<String>,
    /// The `meta.k8s.io` Table version the Accept header asks for, if any.
    pub(crate) table: Option<&'static str>,
    /// The serving CA (PEM).
    pub(crate) ca_pem: Arc<str>,
    /// Who sent the request.
    pub(crate) user: User,
}

/// Who the request's bearer token says it is: the admin, or a ServiceAccount of `cluster`
/// (see `handlers::serviceaccounts`).
fn authenticate(
    state: &AppState,
    cluster: Option<&ClusterStore>,
    headers: &HeaderMap,
) -> Option<User> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)?;
    if constant_time_eq(token.as_bytes(), state.token.as_bytes()) {
        return Some(User::admin());
    }
    cluster?.read(|st| crate::handlers::serviceaccounts::identify(st, token, &state.token))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Marks a streamed answer (a watch), which is never re-encoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Streamed;

/// Whether the client asks for YAML first (`Accept: application/yaml`).
fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/yaml"))
}

/// Whether the Accept header asks for protobuf first (as client-go configured for protobuf does).
fn wants_protobuf(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next())
        .is_some_and(|first| first.trim() == "application/vnd.kubernetes.protobuf")
}

/// A JSON answer re-encoded in the media type the client asked for (`application/yaml`, as
/// kube-apiserver serves it; protobuf for built-in kinds); a watch stream, an answer that is not
/// JSON, or one `encode` has no form for (a custom resource or a discovery document in
/// protobuf) stays as it is.
async fn reencode(
    resp: Response,
    media_type: &'static str,
    encode: impl FnOnce(&Value) -> Option<Vec<u8>>,
) -> Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !json || resp.extensions().get::<Streamed>().is_some() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Error::internal("reading the answer").into_response();
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|value| encode(&value));
    let Some(encoded) = encoded else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(media_type),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(encoded))
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let yaml = wants_yaml(req.headers());
    let protobuf = wants_protobuf(req.headers());
    let resp = match route(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let resp = if yaml {
        reencode(resp, "application/yaml", |v| {
            serde_saphyr::to_string(v).ok().map(String::into_bytes)
        })
        .await
    } else if protobuf {
        reencode(
            resp,
            "application/vnd.kubernetes.protobuf",
            crate::codec::encode_protobuf,
        )
        .await
    } else {
        resp
    };
    tracing::debug!(%method, %uri, status = resp.status().as_u16(), "request");
    resp
}

async fn route(state: Arc<AppState>, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let mut segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let mut cluster_name = DEFAULT_CLUSTER.to_string();
    if segs.len() >= 2 && segs[0] == "clusters" {
        cluster_name = segs[1].clone();
        segs.drain(..2);
    }
    let public = matches!(
        segs.first().map(String::as_str),
        Some("version" | "healthz" | "readyz" | "livez")
    );
    let cluster = state.cluster(&cluster_name);
    let user = authenticate(&state, cluster.as_deref(), &parts.headers);
    if !public && user.is_none() {
        return Err(Error::unauthorized());
    }
    let cluster = cluster.ok_or_else(Error::path_not_found)?;
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = parts.method.clone();
    let get_only = |r: Result<Response>| {
        if method == Method::GET {
            r
        } else {
            Err(Error::method_not_allowed("only GET is allowed here"))
        }
    };
    let aggregated = discovery::aggregated(&parts.headers);
    match s.as_slice() {
        ["version"] => return get_only(Ok(discovery::version(&state.version))),
        ["healthz" | "readyz" | "livez", ..] => return get_only(Ok("ok".into_response())),
        ["api" | "apis"] if aggregated.is_some() => {
            let version = aggregated.unwrap_or("v2");
            let core = s[0] == "api";
            return get_only(Ok(discovery::aggregated_list(&cluster, core, version)));
        }
        ["api"] => return get_only(Ok(discovery::api_versions(&parts.headers))),
        ["apis"] => return get_only(Ok(discovery::api_groups(&cluster))),
        ["api", "v1"] => return get_only(discovery::resource_list(&cluster, "", "v1")),
        ["apis", group] => return get_only(discovery::api_group(&cluster, group)),
        ["apis", group, version] => {
            return get_only(discovery::resource_list(&cluster, group, version));
        }
        ["openapi", "v3"] => return get_only(Ok(discovery::openapi_root(&cluster))),
        ["openapi", "v3", "api", "v1"] => {
            return get_only(discovery::openapi_group_version(&cluster, "", "v1"));
        }
        ["openapi", "v3", "apis", group, version] => {
            return get_only(discovery::openapi_group_version(&cluster, group, version));
        }
        _ => {}
    }
    let (group, version, rest) = match s.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(Error::path_not_found()),
    };
    // The deprecated `/watch/` form: `.../watch/[namespaces/<ns>/]<resource>[/<name>]`.
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        rest => (false, rest),
    };
    let lookup = |plural: &str| cluster.read(|st| st.registry.get(group, version, plural));
    // Namespaced form: namespaces/<ns>/<resource>[/<name>[/<sub>]].
    let (info, namespace, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if lookup(plural).is_some_and(|i| i.namespaced) => {
            (lookup(plural), Some(ns.to_string()), tail)
        }
        [plural, tail @ ..] => (lookup(plural), None, tail),
        [] => return Err(Error::path_not_found()),
    };
    let info = info.ok_or_else(Error::path_not_found)?;
    let (name, sub) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub]
            if (*sub == "status" && info.status)
                || (*sub == "scale" && info.scale.is_some())
                || (*sub == "token"
                    && info.group.is_empty()
                    && info.plural == "serviceaccounts")
                || crate::handlers::pods::serves(&info, sub) =>
        {
            (Some(name.to_string()), Some(sub.to_string()))
        }
        _ => return Err(Error::path_not_found()),
    };
    let verb = match (&method, name.is_some(), sub.is_some()) {
        (_, _, true) if legacy_watch => return Err(Error::path_not_found()),
        (&Method::GET, _, _) if legacy_watch => Verb::Watch,
        (_, _, _) if legacy_watch => {
            return Err(Error::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
        (&Method::POST, false, false) if info.review => Verb::Create,
        _ if info.review => {
            return Err(Error::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
        (&Method::GET, false, _) if query.flag("watch") => Verb::Watch,
        (&Method::GET, false, _) => Verb::List,
        (&Method::POST, true, true) if sub.as_deref() == Some("token") => Verb::Create,
        (m, true, true) if crate::handlers::pods::serves(&info, sub.as_deref().unwrap_or("")) => {
            match (m, sub.as_deref()) {
                (&Method::POST, Some(s)) if s != "log" => Verb::Create,
                (&Method::GET, Some(s)) if !matches!(s, "binding" | "eviction") => Verb::Get,
                _ => {
                    return Err(Error::method_not_allowed(format!(
                        "the server does not allow this method on the requested resource ({m})"
                    )));
                }
            }
        }
        (_, _, true) if sub.as_deref() == Some("token") => {
            return Err(Error::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
        (&Method::POST, false, _) => Verb::Create,
        (&Method::DELETE, false, _) => Verb::DeleteCollection,
        (&Method::GET, true, _) => Verb::Get,
        (&Method::PUT, true, _) => Verb::Update,
        (&Method::PATCH, true, _) => Verb::Patch,
        (&Method::DELETE, true, false) => Verb::Delete,
        (m, _, _) => {
            return Err(Error::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({m})"
            )));
        }
    };
    state.requests.record(
        &cluster_name,
        verb,
        &info.group,
        &info.plural,
        sub.as_deref(),
    );
    let rr = ResourceRequest {
        cluster,
        info: info.clone(),
        namespace,
        name,
        sub,
        query,
        bookmark_interval: state.bookmark_interval,
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        table: crate::handlers::table::requested(
            parts
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        ),
        ca_pem: state.ca_pem.clone(),
        user: user.unwrap_or_else(User::admin),
    };
    let read_body = || async {
        axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|e| Error::bad_request(format!("read request body: {e}")))
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let ct = content_type.as_deref();
    let pod_action = rr
        .sub
        .clone()
        .filter(|s| crate::handlers::pods::serves(&rr.info, s));
    // A deprecated resource's warning comes with every answer.
    let deprecation = rr.info.deprecation.clone();
    let answer = async move {
        match (verb, pod_action.as_deref()) {
            (Verb::Create, Some("binding")) => {
                return crate::handlers::pods::binding(&rr, ct, &read_body().await?).await;
            }
            (Verb::Create, Some("eviction")) => {
                return crate::handlers::pods::eviction(&rr, ct, &read_body().await?).await;
            }
            (_, Some(sub)) => return crate::handlers::pods::no_kubelet(&rr, sub).await,
            _ => {}
        }
        match verb {
            Verb::Watch => watch::watch(rr),
            Verb::List => crud::list(&rr).await,
            Verb::Create if rr.sub.is_some() => {
                crate::handlers::serviceaccounts::token_request(
                    &rr,
                    ct,
                    &read_body().await?,
                    &state.token,
                )
                .await
            }
            Verb::Create if rr.info.review => {
                crate::handlers::serviceaccounts::review(&rr, ct, &read_body().await?, &rr.user)
            }
            Verb::Create => crud::create(&rr, ct, &read_body().await?).await,
            Verb::DeleteCollection => crud::delete_collection(&rr, ct, &read_body().await?).await,
            Verb::Get => crud::get(&rr).await,
            Verb::Update => crud::update(&rr, ct, &read_body().await?).await,
            Verb::Patch => crud::patch(&rr, ct, &read_body().await?).await,
            Verb::Delete => crud::delete(&rr, ct, &read_body().await?).await,
        }
    }
    .await;
    match deprecation {
        // Errors carry it too.
        Some(text) => {
            let resp = answer.unwrap_or_else(IntoResponse::into_response);
            let mut w = crate::handlers::admission::Warnings::default();
            w.push(text);
            Ok(w.attach(resp))
        }
        None => answer,
    }
}

/// A JSON response with the given status code.
pub(crate) fn json_response(code: u16, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(Bytes::from(body)));
    *resp.status_mut() =
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests;
