//! `provisioning.flotilla.io/v1alpha1`: Machine, MachineSet and MachineHealthCheck, shaped
//! after Cluster API v1beta2, for the clusters Flotilla creates itself. Types only; the
//! lifecycle controllers and providers act on them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::{
    apis::meta::v1::{Condition, LabelSelector, Time},
    util::intstr::IntOrString,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of the provisioning kinds.
pub const GROUP: &str = "provisioning.flotilla.io";

/// One machine (a node) of a cluster Flotilla provisions.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "provisioning.flotilla.io",
    version = "v1alpha1",
    kind = "Machine",
    plural = "machines",
    namespaced,
    status = "MachineStatus",
    shortname = "ma",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "One machine of a cluster Flotilla provisions",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterName"}"#,
    printcolumn = r#"{"name":"Role","type":"string","jsonPath":".spec.role"}"#,
    printcolumn = r#"{"name":"NodeName","type":"string","jsonPath":".status.nodeRef.name"}"#,
    printcolumn = r#"{"name":"ProviderID","type":"string","priority":1,"jsonPath":".spec.providerID"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MachineSpec {
    /// The Cluster (cluster.flotilla.io) this machine belongs to.
    pub cluster_name: String,
    /// ControlPlane or Worker.
    pub role: MachineRole,
    /// The Kubernetes version the machine runs, such as `v1.33.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The infrastructure provider that creates the machine.
    pub infrastructure_ref: InfrastructureReference,
    /// Where the machine's bootstrap data comes from.
    #[serde(default)]
    pub bootstrap: Bootstrap,
    /// The provider's identity of the machine; must match the Node's `spec.providerID`.
    /// Set by the provider.
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    /// The failure domain (zone) to place the machine in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_domain: Option<String>,
    /// How long draining the node may take before it is deleted anyway; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_drain_timeout_seconds: Option<i32>,
    /// How long deleting the Node may take; 10 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_deletion_timeout_seconds: Option<i32>,
}

/// What a machine runs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum MachineRole {
    /// An API server (and its store) of the cluster.
    ControlPlane,
    /// A node that runs workloads.
    #[default]
    Worker,
}

/// The infrastructure provider of a machine, and optionally a provider object with its
/// settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InfrastructureReference {
    /// The provider name, such as `local`.
    pub provider: String,
    /// The API group of a provider object with machine settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// The kind of that object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The name of that object, in the machine's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where a machine's bootstrap data comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    /// A bootstrap provider object that writes the data Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_ref: Option<ContractVersionedObjectReference>,
    /// The Secret that holds the bootstrap data, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_secret_name: Option<String>,
}

/// A reference to a provider object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContractVersionedObjectReference {
    /// The API group.
    pub api_group: String,
    /// The kind.
    pub kind: String,
    /// The name.
    pub name: String,
}

/// What the machine controller last observed about a machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineStatus {
    /// Pending, Provisioning, Provisioned, Running, Deleting, Deleted or Unknown. For display
    /// only: controllers decide on conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The machine's addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<MachineAddress>,
    /// The Node the machine became.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_ref: Option<MachineNodeReference>,
    /// Which setup steps are done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization: Option<MachineInitialization>,
    /// `Ready`, `InfrastructureReady`, `BootstrapConfigReady`, `NodeHealthy`,
    /// `HealthCheckSucceeded`, `OwnerRemediated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the phase last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Time>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One address of a machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MachineAddress {
    /// Hostname, ExternalIP, InternalIP, ExternalDNS or InternalDNS.
    #[serde(rename = "type")]
    pub type_: String,
    /// The address.
    pub address: String,
}

/// The Node a machine became.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MachineNodeReference {
    /// The Node name in the machine's cluster.
    pub name: String,
}

/// Which setup steps of a machine are done.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineInitialization {
    /// The provider has created the machine.
    #[serde(default)]
    pub infrastructure_provisioned: bool,
    /// The bootstrap data Secret exists.
    #[serde(default)]
    pub bootstrap_data_secret_created: bool,
}

/// Keeps a number of identical machines running, like a ReplicaSet does pods.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "provisioning.flotilla.io",
    version = "v1alpha1",
    kind = "MachineSet",
    plural = "machinesets",
    namespaced,
    status = "MachineSetStatus",
    shortname = "ms",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "Keeps a number of identical machines running",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterName"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.replicas"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.readyReplicas"}"#,
    printcolumn = r#"{"name":"Available","type":"integer","jsonPath":".status.availableReplicas"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MachineSetSpec {
    /// The Cluster the machines belong to.
    pub cluster_name: String,
    /// How many machines to run; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Selects the machines this set owns; must match the template's labels.
    pub selector: LabelSelector,
    /// The machines to create.
    pub template: MachineTemplateSpec,
    /// How machines are replaced when the template changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<MachineRolloutStrategy>,
    /// Which machines go first when scaling down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<MachineDeletionSpec>,
}

/// A template for machines.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MachineTemplateSpec {
    /// Labels and annotations of the machines.
    #[serde(default)]
    pub metadata: MachineTemplateMeta,
    /// The machines' spec.
    pub spec: MachineSpec,
}

/// Labels and annotations of templated machines.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MachineTemplateMeta {
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// How machines are replaced when the template changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineRolloutStrategy {
    /// RollingUpdate (the default) or OnDelete.
    #[serde(rename = "type", default)]
    pub type_: MachineRolloutStrategyType,
    /// Limits of a rolling update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<MachineRollingUpdate>,
}

/// The rollout strategies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MachineRolloutStrategyType {
    /// Replace machines a few at a time.
    #[default]
    RollingUpdate,
    /// Replace a machine only when someone deletes it.
    OnDelete,
}

/// Limits of a rolling update; both may not be 0.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineRollingUpdate {
    /// How many machines above the desired count may exist (a number or a percentage); 1 when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub max_surge: Option<IntOrString>,
    /// How many machines may be unavailable (a number or a percentage); 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub max_unavailable: Option<IntOrString>,
}

/// Which machines go first when scaling down.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct MachineDeletionSpec {
    /// Random (the default), Newest or Oldest.
    #[serde(default)]
    pub order: MachineDeletionOrder,
}

/// Scale-down orders.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum MachineDeletionOrder {
    /// Any machine (unhealthy ones first).
    #[default]
    Random,
    /// The newest machines first.
    Newest,
    /// The oldest machines first.
    Oldest,
}

/// What the MachineSet controller last observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineSetStatus {
    /// Machines owned by the set.
    #[serde(default)]
    pub replicas: i32,
    /// Machines whose Ready condition is True.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Machines that are ready and not being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Machines that match the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to_date_replicas: Option<i32>,
    /// The selector as a string, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// `Available`, `Progressing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Marks machines unhealthy so their owner replaces them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "provisioning.flotilla.io",
    version = "v1alpha1",
    kind = "MachineHealthCheck",
    plural = "machinehealthchecks",
    namespaced,
    status = "MachineHealthCheckStatus",
    shortname = "mhc",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "Marks unhealthy machines so their owner replaces them",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterName"}"#,
    printcolumn = r#"{"name":"ExpectedMachines","type":"integer","jsonPath":".status.expectedMachines"}"#,
    printcolumn = r#"{"name":"CurrentHealthy","type":"integer","jsonPath":".status.currentHealthy"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MachineHealthCheckSpec {
    /// The Cluster whose machines are checked.
    pub cluster_name: String,
    /// Which machines are checked.
    pub selector: LabelSelector,
    /// What counts as unhealthy.
    #[serde(default)]
    pub checks: MachineHealthChecks,
    /// When remediation may happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<MachineHealthCheckRemediation>,
}

/// What counts as unhealthy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineHealthChecks {
    /// How long a machine may take to get a Node; 600 when absent, 0 disables the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_startup_timeout_seconds: Option<i32>,
    /// Node conditions that make a machine unhealthy once they have held for their timeout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy_node_conditions: Vec<UnhealthyCondition>,
    /// Machine conditions that make a machine unhealthy once they have held for their timeout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy_machine_conditions: Vec<UnhealthyCondition>,
}

/// A condition that makes a machine unhealthy once it has held for `timeoutSeconds`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnhealthyCondition {
    /// The condition type, such as `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status that is unhealthy: True, False or Unknown.
    pub status: String,
    /// How long the condition must hold.
    pub timeout_seconds: i32,
}

/// When remediation may happen.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineHealthCheckRemediation {
    /// Remediate only while the number of unhealthy machines is within bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_if: Option<RemediationTrigger>,
}

/// Bounds on unhealthy machines within which remediation happens (Cluster API's `maxUnhealthy`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationTrigger {
    /// Remediate only while at most this many (or this percentage) are unhealthy; 100% when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::int_or_string")]
    pub unhealthy_less_than_or_equal_to: Option<IntOrString>,
    /// Remediate only while the unhealthy count is in a range such as `[2-5]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_in_range: Option<String>,
}

/// What the MachineHealthCheck controller last observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineHealthCheckStatus {
    /// Machines the check selects.
    #[serde(default)]
    pub expected_machines: i32,
    /// Selected machines that are healthy.
    #[serde(default)]
    pub current_healthy: i32,
    /// How many more machines may be remediated now.
    #[serde(default)]
    pub remediations_allowed: i32,
    /// The names of the selected machines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub targets: Vec<String>,
    /// `RemediationAllowed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
