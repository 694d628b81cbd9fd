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
    api::{ObjectMeta, Patch, PatchParams},
    runtime::wait::{await_condition, conditions},
};

/// The field manager `flotilla up` writes with.
pub const FIELD_MANAGER: &str = "flotilla-up";

use crate::error::{Error, Result};

/// Writes `object` with server-side apply under `flotilla up`'s field manager, forced: `up`
/// owns exactly the fields it sets (keys it stops setting go; fields a user added stay theirs).
async fn apply<K>(api: &Api<K>, object: &K) -> kube::Result<K>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object)).await
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
        apply(&api, &crd)
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

/// Whether the hub API server serves every Flotilla kind (asked through discovery, which needs
/// no permission): `false` means some CRD is missing or not Established yet.
pub async fn crds_served(client: &Client) -> bool {
    for crd in flotilla_api::crds::all() {
        let Some(version) = crd.spec.versions.iter().find(|v| v.storage) else {
            continue;
        };
        let gvk =
            kube::api::GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind);
        if kube::discovery::pinned_kind(client, &gvk).await.is_err() {
            return false;
        }
    }
    true
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
    /// The member's zone.
    pub zone: Option<String>,
}

/// Registers a Push member: the credentials Secret in `flotilla-cluster` and the Cluster.
/// Idempotent (server-side apply). Registering again restores what `up` sets on the Cluster
/// (its labels, `apiEndpoint`, `secretRef`, `syncMode`, `provider`, `region`, `zone`) and keeps
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
    apply(&namespaces, &ns)
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
    apply(&secrets, &secret)
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
            zone: member.zone.clone(),
            ..Default::default()
        },
    );
    cluster.metadata.labels = Some(member.labels.clone());
    apply(&clusters, &cluster)
        .await
        .map_err(|source| Error::RegisterCluster {
            member: member.name.clone(),
            source,
        })?;
    Ok(())
}
