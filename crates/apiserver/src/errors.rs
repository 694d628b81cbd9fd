//! The crate's one error type, and its rendering as a Kubernetes `metav1.Status` response.
//! Request-level failures carry the HTTP code and reason kube-apiserver would use; startup and
//! storage failures become 500 InternalError when they reach a client.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One field-level problem reported in an Invalid (422) Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// Machine-readable reason, e.g. `FieldValueInvalid`, `FieldValueRequired`.
    pub(crate) reason: String,
    /// Human-readable message.
    pub(crate) message: String,
    /// JSON path of the field, e.g. `metadata.name`.
    pub(crate) field: String,
}

/// Everything that can go wrong in the API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request failed with a Kubernetes API status (4xx, or 5xx for internal failures).
    #[error("{message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// `metav1.StatusReason`, e.g. `NotFound`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
        /// `details` object (name, group, kind, causes, retryAfterSeconds).
        details: Option<Box<Value>>,
    },
    /// Reading or writing a file in the data directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating or loading the CA or serving certificate failed.
    #[error("generate TLS certificates: {0}")]
    GenerateCertificate(#[from] rcgen::Error),
    /// Configuring rustls failed.
    #[error("configure TLS: {0}")]
    ConfigureTls(#[from] rustls::Error),
    /// The SQLite store failed.
    #[error("sqlite storage: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The storage writer thread is gone (the server is shutting down or crashed).
    #[error("storage writer stopped")]
    StorageClosed,
    /// Binding the listening socket failed.
    #[error("bind {address}: {source}")]
    Bind {
        /// Requested address.
        address: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A logical cluster with that name already exists.
    #[error("logical cluster {0:?} already exists")]
    ClusterExists(String),
    /// No logical cluster has that name.
    #[error("logical cluster {0:?} not found")]
    ClusterNotFound(String),
    /// The logical cluster name is not a DNS-1123 label (or is reserved).
    #[error("invalid logical cluster name {0:?}: use a lowercase DNS label other than \"default\"")]
    InvalidClusterName(String),
    /// Building a kube client for the server failed.
    #[error("build kube client: {0}")]
    BuildClient(String),
    /// `Config::kubernetes_version` is not a version such as `1.34` or `v1.34.2`.
    #[error(
        "invalid Kubernetes version {0:?}: use MAJOR.MINOR or vMAJOR.MINOR.PATCH, such as 1.34 or v1.34.2"
    )]
    InvalidKubernetesVersion(String),
}

impl Error {
    pub(crate) fn api(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Error::Api {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 400 BadRequest.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::api(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub(crate) fn unauthorized() -> Self {
        Self::api(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::api(403, "Forbidden", message)
    }

    /// 404 NotFound for an object, with details like kube-apiserver.
    pub(crate) fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified(group, resource);
        Error::Api {
            code: 404,
            reason: "NotFound",
            message: format!("{qualified} \"{name}\" not found"),
            details: Some(Box::new(
                json!({"name": name, "group": group, "kind": resource}),
            )),
        }
    }

    /// 404 NotFound for a path that serves nothing.
    pub(crate) fn path_not_found() -> Self {
        Self::api(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 405 MethodNotAllowed.
    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::api(405, "MethodNotAllowed", message)
    }

    /// 409 AlreadyExists.
    pub(crate) fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Error::Api {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", qualified(group, resource)),
            details: Some(Box::new(
                json!({"name": name, "group": group, "kind": resource}),
            )),
        }
    }

    /// 409 Conflict for a stale resourceVersion.
    pub(crate) fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Error::Api {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, resource)
            ),
            details: Some(Box::new(
                json!({"name": name, "group": group, "kind": resource}),
            )),
        }
    }

    /// 410 Gone (Expired) for a resourceVersion older than the retained history.
    pub(crate) fn gone(message: impl Into<String>) -> Self {
        Self::api(410, "Expired", message)
    }

    /// 504 Timeout for a resourceVersion the server has not reached (after waiting for it), as
    /// kube-apiserver answers it: `ResourceVersionTooLarge`, retry after a second.
    pub(crate) fn too_large_resource_version(rv: u64, current: u64) -> Self {
        Error::Api {
            code: 504,
            reason: "Timeout",
            message: format!("Timeout: Too large resource version: {rv}, current: {current}"),
            details: Some(Box::new(json!({
                "causes": [{"reason": "ResourceVersionTooLarge",
                    "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            }))),
        }
    }

    /// 415 UnsupportedMediaType.
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::api(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/json-patch+json, application/merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 422 Invalid with field causes.
    pub(crate) fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Error::Api {
            code: 422,
            reason: "Invalid",
            // kube-apiserver brackets an aggregate of several errors.
            message: if summary.len() == 1 {
                format!("{qualified_kind} \"{name}\" is invalid: {}", summary[0])
            } else {
                format!(
                    "{qualified_kind} \"{name}\" is invalid: [{}]",
                    summary.join(", ")
                )
            },
            // StatusDetails leaves an empty name out.
            details: Some(Box::new(if name.is_empty() {
                json!({"group": group, "kind": kind, "causes": causes_json})
            } else {
                json!({"name": name, "group": group, "kind": kind, "causes": causes_json})
            })),
        }
    }

    /// 500 InternalError.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::api(500, "InternalError", message)
    }

    /// The HTTP status code this error maps to.
    pub(crate) fn code(&self) -> u16 {
        match self {
            Error::Api { code, .. } => *code,
            Error::ClusterNotFound(_) => 404,
            _ => 500,
        }
    }

    /// The `metav1.Status` document for this error.
    pub(crate) fn to_status(&self) -> Value {
        let (code, reason, message, details) = match self {
            Error::Api {
                code,
                reason,
                message,
                details,
            } => (*code, *reason, message.clone(), details.as_deref().cloned()),
            Error::ClusterNotFound(_) => (404, "NotFound", self.to_string(), None),
            other => (500, "InternalError", other.to_string(), None),
        };
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        });
        if let (Some(details), Some(obj)) = (details, status.as_object_mut()) {
            obj.insert("details".into(), details);
        }
        status
    }
}

/// `resource` or `resource.group`, as kube-apiserver prints a GroupResource.
pub(crate) fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let status = self.to_status();
        let body = serde_json::to_vec(&status).unwrap_or_default();
        let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(s) = status
            .pointer("/details/retryAfterSeconds")
            .and_then(Value::as_u64)
            && let Ok(v) = header::HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
