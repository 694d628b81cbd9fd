//! `cluster.flotilla.io/v1alpha1` Cluster: one member of the fleet, how to reach it, where it
//! is, and what it has room for.
//!
//! Field names and JSON shapes follow Karmada's `cluster.karmada.io` Cluster, so a Karmada
//! manifest converts by changing the API group. Types only; behaviour lives in controllers.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::Taint,
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{Condition, Time},
    },
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of [`Cluster`].
pub const GROUP: &str = "cluster.flotilla.io";

/// A member cluster of the fleet.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "cluster.flotilla.io",
    version = "v1alpha1",
    kind = "Cluster",
    plural = "clusters",
    status = "ClusterStatus",
    shortname = "fcl",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "A member cluster of the Flotilla fleet",
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".status.kubernetesVersion"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.syncMode"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Region","type":"string","priority":1,"jsonPath":".spec.region"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// A unique identity of the cluster, such as the UID of its `kube-system` namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,

    /// How Works reach the cluster: `Push` (the hub applies them) or `Pull` (an agent in the
    /// member fetches them).
    pub sync_mode: ClusterSyncMode,

    /// The URL of the member's Kubernetes API server. Required for Push clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,

    /// A Secret holding the credentials to reach the member: `token` and `caBundle`
    /// (or `kubeconfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalSecretReference>,

    /// A Secret holding the token of an impersonator service account in the member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator_secret_ref: Option<LocalSecretReference>,

    /// Skip verification of the member API server's certificate. For tests only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_tls_verification: bool,

    /// An HTTP(S) or SOCKS5 proxy used to reach the member.
    #[serde(default, rename = "proxyURL", skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,

    /// Extra headers sent to the proxy.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_header: BTreeMap<String, String>,

    /// The cloud provider name, used for placement and spreading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,

    /// The region the member runs in, used for placement and spreading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// Deprecated single zone; use `zones`. Still honoured by placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,

    /// The zones the member spans, used for placement and spreading.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub zones: Vec<String>,

    /// Taints repel workloads whose placement does not tolerate them. One per key and effect;
    /// a list-map, so the cluster controller's taints and users' taints are owned separately
    /// under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key", "effect"]))]
    pub taints: Vec<Taint>,

    /// Resource models grade the member's nodes for capacity estimation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_models: Vec<ResourceModel>,

    /// When set, Flotilla creates and manages the cluster itself through Machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<ClusterProvisioning>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// How the hub and a member exchange Works.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ClusterSyncMode {
    /// The hub applies Works to the member's API server.
    #[default]
    Push,
    /// An agent in the member pulls its Works from the hub.
    Pull,
}

/// A reference to a Secret in a named namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LocalSecretReference {
    /// The namespace of the Secret.
    pub namespace: String,
    /// The name of the Secret.
    pub name: String,
}

/// One grade of node sizes in a cluster's resource model.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ResourceModel {
    /// The grade; grades are ordered by their resource ranges.
    // kube-apiserver warns on the unknown format uint32; int64 holds every u32.
    #[schemars(extend("format" = "int64"))]
    pub grade: u32,
    /// The resource ranges `[min, max)` that define the grade.
    pub ranges: Vec<ResourceModelRange>,
}

/// A `[min, max)` interval of one resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ResourceModelRange {
    /// The resource name: cpu, memory, storage or ephemeral-storage.
    pub name: String,
    /// The inclusive lower bound.
    pub min: Quantity,
    /// The exclusive upper bound.
    pub max: Quantity,
}

/// How Flotilla creates the cluster when it manages its lifecycle (see `provisioning.flotilla.io`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProvisioning {
    /// The Kubernetes version to run, such as `v1.33.1`.
    pub version: String,
    /// The infrastructure provider that creates machines, such as `local`.
    pub provider: ProvisioningProvider,
    /// The control-plane machines.
    pub control_plane: MachinePoolSpec,
    /// The worker machines.
    #[serde(default)]
    pub workers: MachinePoolSpec,
}

/// The infrastructure provider of a provisioned cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProvisioningProvider {
    /// The provider name, such as `local`.
    pub name: String,
    /// Provider-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::raw_object")]
    pub config: Option<serde_json::Value>,
}

/// A group of identical machines.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MachinePoolSpec {
    /// How many machines to run.
    #[serde(default)]
    pub replicas: i32,
}

/// What the cluster controller or agent last observed about a member.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The member's Kubernetes version, as reported by its `/version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,

    /// The group-versions and resources the member serves, one entry per group-version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["groupVersion"]))]
    pub api_enablements: Vec<ApiEnablement>,

    /// `Ready`, `CompleteAPIEnablements` and friends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// How many nodes the member has, and how many are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_summary: Option<NodeSummary>,

    /// The member's resources: allocatable, allocating (pending pods) and allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_summary: Option<ResourceSummary>,

    /// When the member (or its agent) last reported in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One group-version a member serves.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiEnablement {
    /// The group-version, such as `apps/v1`.
    pub group_version: String,
    /// The resources served in that group-version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ApiResource>,
}

/// One resource a member serves.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApiResource {
    /// The plural resource name, such as `deployments`.
    pub name: String,
    /// The kind, such as `Deployment`.
    pub kind: String,
}

/// Node counts of a member.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    /// All nodes.
    #[serde(default)]
    pub total_num: i32,
    /// Ready nodes.
    #[serde(default)]
    pub ready_num: i32,
}

/// Resource totals of a member, used by the capacity estimator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    /// What all nodes can hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, Quantity>,
    /// What pending pods request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocating: BTreeMap<String, Quantity>,
    /// What scheduled pods request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocated: BTreeMap<String, Quantity>,
    /// How many nodes fall in each resource-model grade.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocatable_modelings: Vec<AllocatableModeling>,
}

/// Node count of one resource-model grade.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct AllocatableModeling {
    /// The grade.
    #[schemars(extend("format" = "int64"))]
    pub grade: u32,
    /// How many nodes fall in it.
    pub count: i32,
}

impl Cluster {
    /// All zones of the cluster: `spec.zones` plus the deprecated `spec.zone`.
    pub fn zones(&self) -> impl Iterator<Item = &str> {
        self.spec.zone.iter().map(String::as_str).chain(
            self.spec
                .zones
                .iter()
                .map(String::as_str)
                .filter(move |z| self.spec.zone.as_deref() != Some(*z)),
        )
    }

    /// The `Ready` condition, if the cluster has reported one.
    pub fn ready_condition(&self) -> Option<&Condition> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == crate::conditions::READY)
    }
}
