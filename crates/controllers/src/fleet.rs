//! Setting up a hub: installing the Flotilla CRDs and registering member clusters (a
//! credentials Secret plus a Push Cluster object). Speaks only `kube::Client`, so it works
//! against any hub API server; used by `flotilla up` and `flotilla join` (see [`crate::join`]).

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

/// Writes `object` with server-side apply under `manager`, forced: the writer owns exactly the
/// fields it sets (keys it stops setting go; fields a user added stay theirs).
pub(crate) async fn apply<K>(api: &Api<K>, object: &K, manager: &str) -> kube::Result<K>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(manager).force();
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
        apply(&api, &crd, FIELD_MANAGER)
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

/// The credentials the hub keeps for a Push member.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A bearer token valid on the member, and the CA certificate (PEM) of its API server
    /// (empty when the certificate is publicly trusted or TLS verification is skipped).
    Token {
        /// The bearer token.
        token: String,
        /// The CA certificate (PEM).
        ca_pem: String,
    },
    /// A complete kubeconfig (its current context is used), for credentials a token cannot
    /// carry, such as a client certificate. It must hold everything inline.
    Kubeconfig(String),
}

/// What the hub needs to reach a Push member.
#[derive(Clone, Debug)]
pub struct Member {
    /// The Cluster name.
    pub name: String,
    /// The member's API server URL.
    pub api_endpoint: String,
    /// How the hub authenticates to the member.
    pub credentials: Credentials,
    /// Whether the hub skips verifying the member's serving certificate.
    pub insecure_skip_tls_verification: bool,
    /// Labels of the Cluster object.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Cluster object.
    pub annotations: BTreeMap<String, String>,
    /// The member's provider (`local` for `flotilla up` members).
    pub provider: Option<String>,
    /// The member's region.
    pub region: Option<String>,
    /// The member's zone.
    pub zone: Option<String>,
}

impl Member {
    /// A `flotilla up` member: token credentials, provider `local`, no annotations.
    pub fn local(name: &str, api_endpoint: &str, token: &str, ca_pem: &str) -> Member {
        Member {
            name: name.to_owned(),
            api_endpoint: api_endpoint.to_owned(),
            credentials: Credentials::Token {
                token: token.to_owned(),
                ca_pem: ca_pem.to_owned(),
            },
            insecure_skip_tls_verification: false,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            provider: Some("local".to_owned()),
            region: None,
            zone: None,
        }
    }
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
    register(client, member, FIELD_MANAGER).await
}

/// [`register_member`] under the field manager `manager`.
///
/// # Errors
///
/// When the hub rejects a write.
pub async fn register(client: &Client, member: &Member, manager: &str) -> Result<()> {
    let namespace = keys::namespaces::CLUSTER;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    apply(&namespaces, &ns, manager)
        .await
        .map_err(|source| Error::CreateNamespace {
            namespace: namespace.to_owned(),
            source,
        })?;

    let (secret, cluster) = objects(member);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    apply(&secrets, &secret, manager)
        .await
        .map_err(|source| Error::WriteMemberSecret {
            member: member.name.clone(),
            source,
        })?;

    let clusters: Api<Cluster> = Api::all(client.clone());
    apply(&clusters, &cluster, manager)
        .await
        .map_err(|source| Error::RegisterCluster {
            member: member.name.clone(),
            source,
        })?;
    Ok(())
}

/// The credentials Secret (in `flotilla-cluster`, named after the member) and the Push Cluster
/// that register `member`.
pub fn objects(member: &Member) -> (Secret, Cluster) {
    let namespace = keys::namespaces::CLUSTER;
    let data = match &member.credentials {
        Credentials::Token { token, ca_pem } => {
            let mut data = BTreeMap::from([(
                flotilla_runtime::members::TOKEN_KEY.to_owned(),
                ByteString(token.clone().into_bytes()),
            )]);
            if !ca_pem.trim().is_empty() {
                data.insert(
                    flotilla_runtime::members::CA_BUNDLE_KEY.to_owned(),
                    ByteString(ca_pem.clone().into_bytes()),
                );
            }
            data
        }
        Credentials::Kubeconfig(yaml) => BTreeMap::from([(
            flotilla_runtime::members::KUBECONFIG_KEY.to_owned(),
            ByteString(yaml.clone().into_bytes()),
        )]),
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(member.name.clone()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Default::default()
    };
    let mut cluster = Cluster::new(
        &member.name,
        ClusterSpec {
            sync_mode: ClusterSyncMode::Push,
            api_endpoint: Some(member.api_endpoint.clone()),
            secret_ref: Some(LocalSecretReference {
                namespace: namespace.to_owned(),
                name: member.name.clone(),
            }),
            provider: member.provider.clone(),
            region: member.region.clone(),
            zone: member.zone.clone(),
            insecure_skip_tls_verification: member.insecure_skip_tls_verification,
            ..Default::default()
        },
    );
    cluster.metadata.labels = Some(member.labels.clone());
    if !member.annotations.is_empty() {
        cluster.metadata.annotations = Some(member.annotations.clone());
    }
    (secret, cluster)
}
