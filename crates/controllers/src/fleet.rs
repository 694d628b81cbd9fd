//! Setting up a hub: installing the Flotilla CRDs and registering member clusters (a
//! credentials Secret plus a Push Cluster object). Speaks only `kube::Client`, so it works
//! against any hub API server; used by `flotilla up`, and later by `flotilla join`.

use std::{collections::BTreeMap, time::Duration};

use flotilla_api::{
    Cluster,
    cluster::{ClusterSpec, ClusterSyncMode, LocalSecretReference},
    keys,
};
use k8s_openapi::{
    ByteString,
    api::core::v1::{Namespace, Secret},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use serde_json::Value;

/// The field manager `flotilla up` writes with.
pub const FIELD_MANAGER: &str = "flotilla-up";

use flotilla_runtime::ServerSideApply;

use crate::error::{Error, Result};

/// How [`apply`] writes an object that already exists when the server does not implement
/// server-side apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fallback {
    /// Replace the whole object at its current resourceVersion: `up` owns all of it (CRDs,
    /// the credentials Secret), and keys it no longer sets must go.
    Replace,
    /// Merge-patch only the keys `up` sets; every other key — labels, taints or spec fields a
    /// user added — is left as it is, as server-side apply would leave another manager's fields.
    /// For objects users edit (Clusters) or own (Namespaces).
    MergeOwned,
}

/// Writes `object` with server-side apply; when the server does not implement apply patches
/// (415), creates it, or writes the existing object as `fallback` says.
async fn apply<K>(api: &Api<K>, object: &K, fallback: Fallback) -> kube::Result<K>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let ssa = ServerSideApply::default();
    if let Some(applied) = ssa
        .try_apply(api.patch(&name, &params, &Patch::Apply(object)))
        .await?
    {
        return Ok(applied);
    }
    let post = PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..Default::default()
    };
    match (api.get_opt(&name).await?, fallback) {
        (None, _) => api.create(&post, object).await,
        (Some(current), Fallback::Replace) => {
            let mut desired = object.clone();
            desired.meta_mut().resource_version = current.meta().resource_version.clone();
            api.replace(&name, &post, &desired).await
        }
        (Some(_), Fallback::MergeOwned) => {
            let patch =
                owned_fields(serde_json::to_value(object).map_err(kube::Error::SerdeError)?);
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..Default::default()
            };
            api.patch(&name, &params, &Patch::Merge(&patch)).await
        }
    }
}

/// The JSON merge patch that sets exactly what `desired` sets: its status (which `up` never
/// writes) and every `null` are dropped, so the patch can only add or overwrite keys, never
/// remove one.
fn owned_fields(mut desired: Value) -> Value {
    fn drop_nulls(value: &mut Value) {
        if let Value::Object(map) = value {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
    }
    if let Value::Object(map) = &mut desired {
        map.remove("status");
    }
    drop_nulls(&mut desired);
    desired
}

/// Installs (or updates) every Flotilla CRD and waits until each is Established.
///
/// # Errors
///
/// When the API server rejects a CRD or does not establish it within 30 seconds.
pub async fn install_crds(client: &Client) -> Result<()> {
    const WAIT: Duration = Duration::from_secs(30);
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in flotilla_api::crds::all() {
        let name = crd.name_any();
        apply(&api, &crd, Fallback::Replace)
            .await
            .map_err(|source| Error::InstallCrd {
                name: name.clone(),
                source,
            })?;
    }
    for crd in flotilla_api::crds::all() {
        let name = crd.name_any();
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        match tokio::time::timeout(WAIT, established).await {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => return Err(Error::WaitCrd { name, source }),
            Err(_) => {
                return Err(Error::CrdNotEstablished {
                    name,
                    seconds: WAIT.as_secs(),
                });
            }
        }
    }
    Ok(())
}

/// What the hub needs to reach a Push member.
#[derive(Clone, Debug)]
pub struct Member {
    /// The Cluster name.
    pub name: String,
    /// The member's API server URL.
    pub api_endpoint: String,
    /// A bearer token valid on the member.
    pub token: String,
    /// The CA certificate (PEM) of the member's API server.
    pub ca_pem: String,
    /// Labels of the Cluster object.
    pub labels: BTreeMap<String, String>,
    /// The member's region.
    pub region: Option<String>,
}

/// Registers a Push member: the credentials Secret in `flotilla-cluster` and the Cluster.
/// Idempotent (server-side apply). Registering again restores what `up` sets on the Cluster
/// (its labels, `apiEndpoint`, `secretRef`, `syncMode`, `provider`, `region`) and keeps
/// everything else users or controllers added, such as labels and taints.
///
/// # Errors
///
/// When the hub rejects a write.
pub async fn register_member(client: &Client, member: &Member) -> Result<()> {
    let namespace = keys::namespaces::CLUSTER;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    apply(&namespaces, &ns, Fallback::MergeOwned)
        .await
        .map_err(|source| Error::CreateNamespace {
            namespace: namespace.to_owned(),
            source,
        })?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(member.name.clone()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (
                "token".to_owned(),
                ByteString(member.token.clone().into_bytes()),
            ),
            (
                "caBundle".to_owned(),
                ByteString(member.ca_pem.clone().into_bytes()),
            ),
        ])),
        ..Default::default()
    };
    apply(&secrets, &secret, Fallback::Replace)
        .await
        .map_err(|source| Error::WriteMemberSecret {
            member: member.name.clone(),
            source,
        })?;

    let clusters: Api<Cluster> = Api::all(client.clone());
    let mut cluster = Cluster::new(
        &member.name,
        ClusterSpec {
            sync_mode: ClusterSyncMode::Push,
            api_endpoint: Some(member.api_endpoint.clone()),
            secret_ref: Some(LocalSecretReference {
                namespace: namespace.to_owned(),
                name: member.name.clone(),
            }),
            provider: Some("local".to_owned()),
            region: member.region.clone(),
            ..Default::default()
        },
    );
    cluster.metadata.labels = Some(member.labels.clone());
    apply(&clusters, &cluster, Fallback::MergeOwned)
        .await
        .map_err(|source| Error::RegisterCluster {
            member: member.name.clone(),
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn owned_fields_only_add_or_overwrite() {
        let table: Vec<(Value, Value)> = vec![
            (
                json!({"kind": "Cluster", "metadata": {"name": "m1", "labels": {"a": "b"}},
                       "spec": {"syncMode": "Push", "region": null}, "status": {"x": 1}}),
                json!({"kind": "Cluster", "metadata": {"name": "m1", "labels": {"a": "b"}},
                       "spec": {"syncMode": "Push"}}),
            ),
            (
                json!({"metadata": {"name": "ns", "annotations": null}}),
                json!({"metadata": {"name": "ns"}}),
            ),
        ];
        for (desired, want) in table {
            assert_eq!(owned_fields(desired.clone()), want, "{desired}");
        }
    }

    #[test]
    fn a_registered_cluster_patch_leaves_taints_and_status_alone() -> serde_json::Result<()> {
        let mut cluster = Cluster::new(
            "m1",
            ClusterSpec {
                api_endpoint: Some("https://m1".to_owned()),
                ..Default::default()
            },
        );
        cluster.metadata.labels = Some(BTreeMap::from([("up".to_owned(), "yes".to_owned())]));
        let patch = owned_fields(serde_json::to_value(&cluster)?);
        assert_eq!(
            patch.get("spec"),
            Some(&json!({"syncMode": "Push", "apiEndpoint": "https://m1"}))
        );
        assert_eq!(
            patch.pointer("/metadata/labels"),
            Some(&json!({"up": "yes"}))
        );
        assert_eq!(patch.get("status"), None);
        Ok(())
    }
}
