//! The requests against one member cluster: apply a manifest (server-side apply under
//! [`FIELD_MANAGER`], forced, creating its namespace when missing), read, delete and release
//! the member object a manifest became. Knows nothing of the hub: it is handed a Work's
//! identity, its manifests and the conflict setting, and answers with what happened.

use flotilla_api::{policy::ConflictResolution, work::ResourceIdentifier};
use flotilla_runtime::error::chain;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions},
};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::{
    kinds::{self, Kinds, Resolved},
    prepare::{
        FIELD_MANAGER, Manager, WorkRef, identifier, manager_of, prepare, release_patch, up_to_date,
    },
};

/// Condition reasons for what went wrong with a manifest, as the Work's `Applied` condition
/// shows them.
pub mod reasons {
    /// Every manifest is applied.
    pub const APPLIED_SUCCESSFULLY: &str = "AppliedSuccessfully";
    /// The object exists in the member, Flotilla does not manage it, and the conflict setting
    /// is `Abort`.
    pub const CONFLICT_WITH_EXISTING: &str = "ConflictWithExisting";
    /// Another Work manages the object in the member.
    pub const MANAGED_BY_ANOTHER_WORK: &str = "ManagedByAnotherWork";
    /// The member rejected the manifest (its own error text follows), or it is malformed.
    pub const INVALID_MANIFEST: &str = "InvalidManifest";
    /// The member does not serve the manifest's kind (yet: a CRD may be on its way).
    pub const KIND_NOT_SERVED: &str = "KindNotServed";
    /// The member cannot be reached, or is not Ready.
    pub const CLUSTER_UNREACHABLE: &str = "ClusterUnreachable";
    /// The member refused the request otherwise (permissions, a server error).
    pub const APPLY_FAILED: &str = "ApplyFailed";
}

/// What applying one manifest did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The object did not exist and was created.
    Created,
    /// The object was written: it drifted, the manifest changed, or it was adopted.
    Updated,
    /// The live object already held the manifest; nothing was sent.
    Unchanged,
}

/// Why a manifest was not applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The manifest is malformed or the member rejected it.
    #[error("{0}")]
    Invalid(String),
    /// An object Flotilla does not manage is in the way and the setting is `Abort`.
    #[error("{0}")]
    Conflict(String),
    /// Another Work manages the object.
    #[error("{0}")]
    TakenByOther(String),
    /// The member does not serve the kind.
    #[error("{0}")]
    NotServed(String),
    /// The member did not answer.
    #[error("{0}")]
    Unreachable(String),
    /// The member refused otherwise.
    #[error("{0}")]
    Refused(String),
}

impl ApplyError {
    /// The `Applied` condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => reasons::INVALID_MANIFEST,
            Self::Conflict(_) => reasons::CONFLICT_WITH_EXISTING,
            Self::TakenByOther(_) => reasons::MANAGED_BY_ANOTHER_WORK,
            Self::NotServed(_) => reasons::KIND_NOT_SERVED,
            Self::Unreachable(_) => reasons::CLUSTER_UNREACHABLE,
            Self::Refused(_) => reasons::APPLY_FAILED,
        }
    }

    /// Whether retrying soon may help (the member, or a CRD, may be on its way); an invalid
    /// manifest or a conflict waits for a change instead.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::NotServed(_) | Self::Unreachable(_) | Self::Refused(_)
        )
    }
}

/// What became of one manifest.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The manifest's identifier (with its plural resource once the kind resolved).
    pub identifier: Option<ResourceIdentifier>,
    /// What applying it did and the live object after, or why it was not applied.
    pub result: Result<(Applied, Value), ApplyError>,
}

/// What deleting a manifest's member object did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// The object was deleted (or is being deleted).
    Deleted,
    /// There was no such object.
    Absent,
    /// The object belongs to another Work or to nobody Flotilla knows; it was left alone.
    NotOurs,
}

/// One member cluster, reached through `client`.
#[derive(Clone)]
pub struct Member {
    client: Client,
    kinds: Kinds,
}

impl Member {
    /// The member `client` reaches.
    pub fn new(client: Client) -> Self {
        Self {
            kinds: Kinds::new(client.clone()),
            client,
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The member's kind of `identifier`, with the plural resource filled in.
    ///
    /// # Errors
    ///
    /// [`ApplyError::NotServed`] when the member does not serve it; [`ApplyError::Unreachable`]
    /// when discovery fails.
    pub async fn resolve(
        &self,
        identifier: &mut ResourceIdentifier,
    ) -> Result<Resolved, ApplyError> {
        let api_version = if identifier.group.is_empty() {
            identifier.version.clone()
        } else {
            format!("{}/{}", identifier.group, identifier.version)
        };
        let gvk = kinds::gvk(&api_version, &identifier.kind);
        match self.kinds.resolve(&gvk).await {
            Ok(Some(resolved)) => {
                identifier.resource.clone_from(&resolved.resource.plural);
                if resolved.namespaced && identifier.namespace.is_empty() {
                    identifier.namespace = "default".to_owned();
                }
                if !resolved.namespaced {
                    identifier.namespace.clear();
                }
                Ok(resolved)
            }
            Ok(None) => Err(ApplyError::NotServed(format!(
                "the member does not serve {api_version} {}; install its CRD in the member (or \
                 in the same Work, before it)",
                identifier.kind
            ))),
            Err(error) => Err(classify(error.source_error(), &error.to_string())),
        }
    }

    fn api(&self, resolved: &Resolved, identifier: &ResourceIdentifier) -> Api<DynamicObject> {
        if resolved.namespaced {
            Api::namespaced_with(
                self.client.clone(),
                &identifier.namespace,
                &resolved.resource,
            )
        } else {
            Api::all_with(self.client.clone(), &resolved.resource)
        }
    }

    /// The live object of `identifier` (resolved), or `None`.
    ///
    /// # Errors
    ///
    /// When the read fails.
    pub async fn get(
        &self,
        resolved: &Resolved,
        identifier: &ResourceIdentifier,
    ) -> Result<Option<Value>, ApplyError> {
        let object = self
            .api(resolved, identifier)
            .get_opt(&identifier.name)
            .await
            .map_err(|e| classify(&e, &describe(identifier)))?;
        Ok(object.and_then(|o| serde_json::to_value(o).ok()))
    }

    /// Applies the `ordinal`th manifest of `owner`. `live` is the member object as a watch last
    /// saw it, when it saw one; otherwise it is read first. An object another Work manages is
    /// never written; one nobody manages is adopted with `Overwrite` and left alone otherwise.
    /// Nothing is sent when the live object already holds the manifest. A namespace the member
    /// lacks is created first, unless `create_namespace` says no (the caller knows the
    /// namespace is on its way out).
    pub async fn apply(
        &self,
        owner: &WorkRef,
        ordinal: usize,
        manifest: &Value,
        conflict: ConflictResolution,
        live: Option<Value>,
        create_namespace: bool,
    ) -> Outcome {
        let mut identifier = match identifier(ordinal, manifest) {
            Ok(identifier) => identifier,
            Err(error) => {
                return Outcome {
                    identifier: None,
                    result: Err(ApplyError::Invalid(error.to_string())),
                };
            }
        };
        let result = self
            .apply_identified(
                owner,
                &mut identifier,
                manifest,
                conflict,
                live,
                create_namespace,
            )
            .await;
        Outcome {
            identifier: Some(identifier),
            result,
        }
    }

    async fn apply_identified(
        &self,
        owner: &WorkRef,
        identifier: &mut ResourceIdentifier,
        manifest: &Value,
        conflict: ConflictResolution,
        live: Option<Value>,
        create_namespace: bool,
    ) -> Result<(Applied, Value), ApplyError> {
        let resolved = self.resolve(identifier).await?;
        let what = describe(identifier);
        let (mut live, mut watched) = match live {
            Some(live) => (Some(live), true),
            None => (self.get(&resolved, identifier).await?, false),
        };
        let body = loop {
            let adopting = match live.as_ref().map(|live| manager_of(live, owner)) {
                None | Some(Manager::This) => false,
                Some(Manager::Other(work)) => {
                    return Err(ApplyError::TakenByOther(format!(
                        "{what} in the member is managed by {work}; it is left as it is"
                    )));
                }
                Some(Manager::Unmanaged) if conflict == ConflictResolution::Overwrite => true,
                Some(Manager::Unmanaged) => {
                    return Err(ApplyError::Conflict(format!(
                        "{what} already exists in the member and is not managed by Flotilla; it \
                         is left untouched (set conflictResolution: Overwrite on the policy to \
                         adopt it)"
                    )));
                }
            };
            let mut body = prepare(manifest, owner, live.as_ref());
            // The identifier's namespace is the one the kind's scope decided.
            if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                if identifier.namespace.is_empty() {
                    meta.remove("namespace");
                } else {
                    meta.insert("namespace".to_owned(), json!(identifier.namespace));
                }
            }
            if let Some(live) = &live
                && !adopting
                && up_to_date(live, &body)
            {
                return Ok((Applied::Unchanged, live.clone()));
            }
            if watched {
                // The watch's copy may lag behind the member (an autoscaler's scale a moment
                // ago, another Work's adoption): what is sent is decided on a fresh read.
                live = self.get(&resolved, identifier).await?;
                watched = false;
                continue;
            }
            if adopting {
                info!(object = %what, "adopting an existing member object (conflictResolution: Overwrite)");
            }
            break body;
        };
        let api = self.api(&resolved, identifier);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut result = api
            .patch(&identifier.name, &params, &Patch::Apply(&body))
            .await;
        if let Err(kube::Error::Api(status)) = &result
            && status.code == 404
            && resolved.namespaced
            && missing_namespace(status)
        {
            if !create_namespace {
                return Err(ApplyError::Refused(format!(
                    "{what}: namespace {} does not exist in the member and is not to be \
                     created (it is being deleted)",
                    identifier.namespace
                )));
            }
            self.create_namespace(&identifier.namespace).await?;
            result = api
                .patch(&identifier.name, &params, &Patch::Apply(&body))
                .await;
        }
        let object = result.map_err(|e| {
            if let kube::Error::Api(status) = &e
                && status.code == 404
            {
                // The kind went away under us (its CRD deleted): discover it again next time.
                self.kinds.forget(&kinds::gvk(
                    manifest["apiVersion"].as_str().unwrap_or_default(),
                    &identifier.kind,
                ));
            }
            classify(&e, &what)
        })?;
        let applied = if live.is_some() {
            Applied::Updated
        } else {
            Applied::Created
        };
        debug!(object = %what, ?applied, "applied to the member");
        let object = serde_json::to_value(object)
            .map_err(|e| ApplyError::Refused(format!("{what}: unreadable answer: {e}")))?;
        Ok((applied, object))
    }

    async fn create_namespace(&self, name: &str) -> Result<(), ApplyError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let namespace: Namespace = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        }))
        .map_err(|e| ApplyError::Invalid(format!("namespace {name}: {e}")))?;
        match api.create(&PostParams::default(), &namespace).await {
            Ok(_) => {
                info!(namespace = name, "created the namespace in the member");
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(classify(&e, &format!("Namespace {name}"))),
        }
    }

    /// The member object of `identifier` when `owner` manages it (with its resolved kind and
    /// identifier); otherwise what a delete or release answers: `Absent` (no such object, or
    /// its kind is no longer served) or `NotOurs`.
    async fn owned(
        &self,
        owner: &WorkRef,
        identifier: &ResourceIdentifier,
    ) -> Result<Result<(Resolved, ResourceIdentifier, Value), Deleted>, ApplyError> {
        let mut identifier = identifier.clone();
        let resolved = match self.resolve(&mut identifier).await {
            Ok(resolved) => resolved,
            Err(ApplyError::NotServed(_)) => return Ok(Err(Deleted::Absent)),
            Err(error) => return Err(error),
        };
        let Some(live) = self.get(&resolved, &identifier).await? else {
            return Ok(Err(Deleted::Absent));
        };
        if manager_of(&live, owner) != Manager::This {
            return Ok(Err(Deleted::NotOurs));
        }
        Ok(Ok((resolved, identifier, live)))
    }

    /// Deletes the member object of `identifier` when `owner` manages it (in the background:
    /// its dependents go after it, as `kubectl delete` does).
    ///
    /// # Errors
    ///
    /// When the member cannot be read or refuses the delete.
    pub async fn delete(
        &self,
        owner: &WorkRef,
        identifier: &ResourceIdentifier,
    ) -> Result<Deleted, ApplyError> {
        let (resolved, identifier, live) = match self.owned(owner, identifier).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        let what = describe(&identifier);
        let params = DeleteParams {
            preconditions: live
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .map(|uid| Preconditions {
                    uid: Some(uid.to_owned()),
                    resource_version: None,
                }),
            ..DeleteParams::background()
        };
        match self
            .api(&resolved, &identifier)
            .delete(&identifier.name, &params)
            .await
        {
            Ok(_) => {
                info!(object = %what, "deleted from the member");
                Ok(Deleted::Deleted)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deleted::Absent),
            // The uid changed: someone else's object now has that name.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Deleted::NotOurs),
            Err(e) => Err(classify(&e, &what)),
        }
    }

    /// Leaves the member object of `identifier` to the member: removes Flotilla's label and
    /// annotations when `owner` manages it, so no Work claims it any more.
    ///
    /// # Errors
    ///
    /// When the member cannot be read or refuses the patch.
    pub async fn release(
        &self,
        owner: &WorkRef,
        identifier: &ResourceIdentifier,
    ) -> Result<Deleted, ApplyError> {
        let (resolved, identifier, _) = match self.owned(owner, identifier).await? {
            Ok(found) => found,
            Err(answer) => return Ok(answer),
        };
        let what = describe(&identifier);
        self.api(&resolved, &identifier)
            .patch(
                &identifier.name,
                &PatchParams::default(),
                &Patch::Merge(release_patch()),
            )
            .await
            .map_err(|e| classify(&e, &what))?;
        info!(object = %what, "left to the member (preserveResourcesOnDeletion)");
        Ok(Deleted::Deleted)
    }
}

/// `Kind namespace/name` of an identifier, for messages.
pub fn describe(identifier: &ResourceIdentifier) -> String {
    if identifier.namespace.is_empty() {
        format!("{} {}", identifier.kind, identifier.name)
    } else {
        format!(
            "{} {}/{}",
            identifier.kind, identifier.namespace, identifier.name
        )
    }
}

/// Whether a 404 says the object's namespace is missing (not the object or its kind).
fn missing_namespace(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.kind == "namespaces")
        || status.message.starts_with("namespaces \"")
}

/// The [`ApplyError`] of a failed member request about `what`, with the member's own words.
fn classify(error: &kube::Error, what: &str) -> ApplyError {
    match error {
        kube::Error::Api(status) => {
            let text = format!(
                "{what}: the member answered {}: {}",
                status.code, status.message
            );
            match status.code {
                400 | 422 => ApplyError::Invalid(text),
                404 => ApplyError::NotServed(text),
                500.. => ApplyError::Unreachable(text),
                _ => ApplyError::Refused(text),
            }
        }
        other => ApplyError::Unreachable(format!(
            "{what}: the member cannot be reached: {}",
            chain(other)
        )),
    }
}
