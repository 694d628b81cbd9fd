//! The kinds of resource templates, found at run time: an `apiVersion` and `kind` resolved
//! through the API server's discovery (`/api/v1`, `/apis/<group>/<version>`) to the resource
//! and scope a dynamic client needs, remembered until told to forget, and the read of one
//! template by its reference. Shared by the hub's controllers and the execution path; owns no
//! decision about what a template means.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use flotilla_api::work::ObjectReference;
use flotilla_runtime::error::is_not_found;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind},
    discovery::{self, Scope},
};
use serde_json::Value;

/// A kind the API server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// What a dynamic client needs to reach it.
    pub resource: ApiResource,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
}

/// A failed lookup.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// Discovery failed (not "no such kind", which is an answer).
    #[error("failed to discover the API resource of {kind}: {source}")]
    Discover {
        /// `apiVersion/kind`.
        kind: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Reading an object failed.
    #[error("failed to read the resource template {template}: {source}")]
    Get {
        /// `kind namespace/name`.
        template: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
}

impl KindError {
    /// The client error.
    pub fn source_error(&self) -> &kube::Error {
        match self {
            Self::Discover { source, .. } | Self::Get { source, .. } => source,
        }
    }
}

/// The group, version and kind of `api_version` and `kind`.
pub fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

/// `apiVersion` of a group and version.
pub fn api_version(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        gvk.version.clone()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    }
}

/// `kind namespace/name` of a reference, for messages.
pub fn label(reference: &ObjectReference) -> String {
    match &reference.namespace {
        Some(ns) => format!("{} {ns}/{}", reference.kind, reference.name),
        None => format!("{} {}", reference.kind, reference.name),
    }
}

/// Discovery answers, remembered per kind.
#[derive(Clone)]
pub struct Kinds {
    client: Client,
    resolved: Arc<Mutex<HashMap<GroupVersionKind, Resolved>>>,
}

impl Kinds {
    /// Kinds resolved through `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            resolved: Arc::default(),
        }
    }

    /// The kind, remembered or discovered now; `None` when the server does not serve it (no
    /// such group, version or kind).
    ///
    /// # Errors
    ///
    /// When discovery fails otherwise.
    pub async fn resolve(&self, gvk: &GroupVersionKind) -> Result<Option<Resolved>, KindError> {
        if let Some(resolved) = self.remembered(gvk) {
            return Ok(Some(resolved));
        }
        match discovery::pinned_kind(&self.client, gvk).await {
            Ok((resource, capabilities)) => {
                let resolved = Resolved {
                    resource,
                    namespaced: capabilities.scope == Scope::Namespaced,
                };
                self.resolved
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(gvk.clone(), resolved.clone());
                Ok(Some(resolved))
            }
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(KindError::Discover {
                kind: format!("{}/{}", api_version(gvk), gvk.kind),
                source,
            }),
        }
    }

    /// The kind as last discovered, without asking the server.
    pub fn remembered(&self, gvk: &GroupVersionKind) -> Option<Resolved> {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(gvk)
            .cloned()
    }

    /// Discovers `gvk` again next time (its CRD may have changed or gone).
    pub fn forget(&self, gvk: &GroupVersionKind) {
        self.resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(gvk);
    }

    /// The object `reference` names, or `None` when it (or its kind) does not exist. A missing
    /// object makes its kind be discovered again next time.
    ///
    /// # Errors
    ///
    /// When discovery or the read fails.
    pub async fn get(&self, reference: &ObjectReference) -> Result<Option<Value>, KindError> {
        let gvk = gvk(&reference.api_version, &reference.kind);
        let Some(resolved) = self.resolve(&gvk).await? else {
            return Ok(None);
        };
        let api: Api<DynamicObject> = match &reference.namespace {
            Some(ns) if resolved.namespaced => {
                Api::namespaced_with(self.client.clone(), ns, &resolved.resource)
            }
            _ => Api::all_with(self.client.clone(), &resolved.resource),
        };
        let failed = |source| KindError::Get {
            template: label(reference),
            source,
        };
        match api.get_opt(&reference.name).await.map_err(failed)? {
            Some(object) => serde_json::to_value(object)
                .map(Some)
                .map_err(|e| failed(kube::Error::SerdeError(e))),
            None => {
                self.forget(&gvk);
                Ok(None)
            }
        }
    }
}
