//! `policy.flotilla.io/v1alpha1`: PropagationPolicy and ClusterPropagationPolicy (which
//! templates go where) and OverridePolicy and ClusterOverridePolicy (how they change per
//! cluster), plus the selector and placement types they share with bindings.
//!
//! Field names and JSON shapes follow Karmada's `policy.karmada.io`. Types only.

use std::{collections::BTreeMap, ops::Deref};

use k8s_openapi::{
    api::core::v1::{NodeSelectorRequirement, Toleration},
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of the policy kinds.
pub const GROUP: &str = "policy.flotilla.io";

// ---------------------------------------------------------------------------------------------
// Selectors and placement, shared with work.flotilla.io bindings.
// ---------------------------------------------------------------------------------------------

/// Selects resource templates by API version, kind and optionally namespace, name or labels.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSelector {
    /// The API version of the target resources, such as `apps/v1`.
    pub api_version: String,
    /// The kind of the target resources, such as `Deployment`.
    pub kind: String,
    /// The namespace of the target resources. A namespaced policy only ever selects in its own
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name of the target resource. When set, `labelSelector` is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A label query over the target resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

/// Which clusters a placement (or an override rule, or a static weight) applies to.
///
/// A cluster in `exclude` never matches. Otherwise every non-empty part must match; when all
/// parts are empty, every cluster matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinity {
    /// A label query over clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// A query over cluster fields: `provider`, `region` or `zone`, with `In` or `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<FieldSelector>,
    /// Clusters selected by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub cluster_names: Vec<String>,
    /// Clusters never selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub exclude: Vec<String>,
}

/// A query over cluster fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldSelector {
    /// Requirements, all of which must hold. Keys are `provider`, `region` or `zone`;
    /// operators are `In` or `NotIn`.
    #[serde(default)]
    pub match_expressions: Vec<NodeSelectorRequirement>,
}

/// The field keys a [`FieldSelector`] accepts.
pub const FIELD_SELECTOR_KEYS: [&str; 3] = ["provider", "region", "zone"];

/// One term of an ordered list of cluster affinities: the scheduler tries the terms in order
/// and keeps the first one that schedules.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAffinityTerm {
    /// The name of the term, 1 to 32 characters, unique within the list.
    pub affinity_name: String,
    /// The affinity of this term.
    #[serde(flatten)]
    pub affinity: ClusterAffinity,
    /// Lower-priority tiers that replicas overflow into when this term's clusters are full.
    /// Accepted for compatibility with Karmada manifests; not supported yet, so `validate()`
    /// rejects a non-empty list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overflow_affinities: Vec<OverflowAffinityTerm>,
}

/// One overflow tier of a cluster affinity term.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverflowAffinityTerm {
    /// The name of the tier, 1 to 32 characters.
    pub affinity_name: String,
    /// The clusters of the tier.
    #[serde(flatten)]
    pub affinity: ClusterAffinity,
}

/// Where a template's copies go and how many replicas each gets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// The clusters to choose from. Cannot be combined with `clusterAffinities`. When both are
    /// empty, every cluster is a candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_affinity: Option<ClusterAffinity>,
    /// Ordered alternatives: the first term that schedules wins, later terms are fallbacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_affinities: Vec<ClusterAffinityTerm>,
    /// Cluster taints this placement tolerates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_tolerations: Vec<Toleration>,
    /// How to spread over clusters, regions, zones, providers or label values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread_constraints: Vec<SpreadConstraint>,
    /// How replicas are scheduled. When absent, every selected cluster gets all replicas
    /// (Duplicated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_scheduling: Option<ReplicaSchedulingStrategy>,
    /// Co-locate with, or keep apart from, other workloads of the same group. Accepted for
    /// compatibility with Karmada manifests; not supported yet, so `validate()` rejects it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_affinity: Option<WorkloadAffinity>,
}

/// Inter-workload affinity and anti-affinity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinity {
    /// Place the workload with the others of its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<WorkloadAffinityTerm>,
    /// Keep the workload away from the others of its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anti_affinity: Option<WorkloadAffinityTerm>,
}

/// How workloads are grouped for workload affinity.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAffinityTerm {
    /// The label whose value names the group.
    pub group_by_label_key: String,
}

/// A spread constraint: the selected clusters must fall into between `minGroups` and
/// `maxGroups` groups of the given field or label.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpreadConstraint {
    /// Spread by a cluster field. Cannot be combined with `spreadByLabel`; when both are
    /// empty, the constraint spreads by `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_by_field: Option<SpreadByField>,
    /// Spread by the value of a cluster label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_by_label: Option<String>,
    /// The most groups to select; 0 means no upper limit.
    #[serde(default)]
    pub max_groups: i32,
    /// The fewest groups to select.
    #[serde(default)]
    pub min_groups: i32,
}

impl SpreadConstraint {
    /// The field this constraint spreads by, after defaulting (`cluster` when neither a field
    /// nor a label is given); `None` for label constraints.
    pub fn effective_field(&self) -> Option<SpreadByField> {
        match (&self.spread_by_field, &self.spread_by_label) {
            (Some(field), _) => Some(*field),
            (None, Some(label)) if !label.is_empty() => None,
            (None, _) => Some(SpreadByField::Cluster),
        }
    }
}

/// The cluster fields a spread constraint can use.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum SpreadByField {
    /// Each cluster is its own group.
    Cluster,
    /// Group by `spec.region`.
    Region,
    /// Group by `spec.zones`.
    Zone,
    /// Group by `spec.provider`.
    Provider,
}

impl SpreadByField {
    /// The field name as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Region => "region",
            Self::Zone => "zone",
            Self::Provider => "provider",
        }
    }
}

/// How replicas are scheduled over the selected clusters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSchedulingStrategy {
    /// `Duplicated` gives every cluster all replicas; `Divided` (the default) splits them.
    #[serde(default)]
    pub replica_scheduling_type: ReplicaSchedulingType,
    /// How `Divided` splits: `Weighted` (the default) or `Aggregated` (as few clusters as
    /// possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_division_preference: Option<ReplicaDivisionPreference>,
    /// The weights of `Weighted` division. When absent, every cluster weighs the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_preference: Option<ClusterPreferences>,
}

/// Whether replicas are copied to or divided between clusters.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReplicaSchedulingType {
    /// Every selected cluster runs all replicas.
    Duplicated,
    /// Replicas are divided between the selected clusters.
    #[default]
    Divided,
}

/// How divided replicas are split.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ReplicaDivisionPreference {
    /// Pack replicas into as few clusters as capacity allows.
    Aggregated,
    /// Split by static or dynamic weights.
    Weighted,
}

/// Weights for `Weighted` division.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPreferences {
    /// Static weights; a cluster's weight is the largest weight among the rules it matches,
    /// and clusters matching no rule get no replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_weight_list: Vec<StaticClusterWeight>,
    /// Weigh clusters by what they can still hold. Overrides `staticWeightList`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_weight: Option<DynamicWeightFactor>,
}

/// A static weight for the clusters a selector matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticClusterWeight {
    /// The clusters the weight applies to.
    pub target_cluster: ClusterAffinity,
    /// The weight, at least 1.
    pub weight: i64,
}

/// What a dynamic weight is computed from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DynamicWeightFactor {
    /// The number of replicas a cluster can still hold.
    AvailableReplicas,
}

// ---------------------------------------------------------------------------------------------
// PropagationPolicy and ClusterPropagationPolicy.
// ---------------------------------------------------------------------------------------------

/// Propagates the resource templates it selects in its own namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "policy.flotilla.io",
    version = "v1alpha1",
    kind = "PropagationPolicy",
    plural = "propagationpolicies",
    namespaced,
    shortname = "pp",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "Selects resource templates in its namespace and says which clusters they go to",
    printcolumn = r#"{"name":"Priority","type":"integer","jsonPath":".spec.priority"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PropagationSpec {
    /// The resource templates to propagate; at least one.
    pub resource_selectors: Vec<ResourceSelector>,
    /// Also propagate the ConfigMaps, Secrets, PersistentVolumeClaims and ServiceAccounts the
    /// selected workloads refer to.
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagate_deps: bool,
    /// Where the templates go.
    #[serde(default)]
    pub placement: Placement,
    /// When several policies match a template, the highest priority wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Whether this policy may take templates already claimed by a lower-priority policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption: Option<PreemptionPolicy>,
    /// OverridePolicies that must exist before this policy takes effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub dependent_overrides: Vec<String>,
    /// The scheduler that handles the bindings; `default-scheduler` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_name: Option<String>,
    /// Application and cluster failover behaviour; no failover when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverBehavior>,
    /// What to do when a member already has an object Flotilla does not manage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_resolution: Option<ConflictResolution>,
    /// `Lazy` applies policy changes only when a template next changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_preference: Option<ActivationPreference>,
    /// Pause dispatching Works, to every cluster or to some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    /// Keep member objects when the template is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_resources_on_deletion: Option<bool>,
    /// The scheduling-queue priority of the bindings. Accepted and carried to bindings; the
    /// scheduler does not order its queue by it yet (placements do not depend on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_priority: Option<SchedulePriority>,
    /// Deprecated alias of `propagateDeps`, kept so Karmada manifests convert unchanged;
    /// dependencies are propagated when either is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub association: Option<bool>,
}

/// Where a binding's scheduling priority comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePriority {
    /// `KubePriorityClass`: a PriorityClass of the hub.
    pub priority_class_source: String,
    /// The PriorityClass name.
    pub priority_class_name: String,
}

/// Propagates the resource templates it selects in any namespace, and cluster-scoped ones.
///
/// Its spec is exactly a [`PropagationSpec`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "policy.flotilla.io",
    version = "v1alpha1",
    kind = "ClusterPropagationPolicy",
    plural = "clusterpropagationpolicies",
    shortname = "cpp",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "Selects resource templates in any namespace, or cluster-scoped ones, and says which clusters they go to",
    printcolumn = r#"{"name":"Priority","type":"integer","jsonPath":".spec.priority"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ClusterPropagationPolicySpec {
    /// The propagation rules, identical to a PropagationPolicy's.
    #[serde(flatten)]
    pub spec: PropagationSpec,
}

impl Deref for ClusterPropagationPolicySpec {
    type Target = PropagationSpec;
    fn deref(&self) -> &PropagationSpec {
        &self.spec
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Whether a policy may take over templates claimed by another.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PreemptionPolicy {
    /// Take over templates claimed by lower-priority policies.
    Always,
    /// Never take over a claimed template.
    #[default]
    Never,
}

/// What to do when a member already has an object Flotilla does not manage.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConflictResolution {
    /// Leave the member object alone and report the conflict.
    #[default]
    Abort,
    /// Take the member object over.
    Overwrite,
}

/// When policy changes take effect.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ActivationPreference {
    /// Apply policy changes only when a template next changes.
    Lazy,
}

/// Pauses dispatching Works.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    /// Pause dispatching to every cluster. Cannot be combined with `dispatchingOnClusters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching: Option<bool>,
    /// Pause dispatching to the named clusters only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatching_on_clusters: Option<SuspendClusters>,
}

/// Clusters whose dispatching is paused.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendClusters {
    /// The cluster names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub cluster_names: Vec<String>,
}

/// Application and cluster failover behaviour.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct FailoverBehavior {
    /// Move the application when it stays unhealthy in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<ApplicationFailoverBehavior>,
    /// What happens to the application when its cluster fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFailoverBehavior>,
}

/// Application failover: when and how an unhealthy application leaves a cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationFailoverBehavior {
    /// When the application counts as failed.
    #[serde(default)]
    pub decision_conditions: DecisionConditions,
    /// How the old copy is removed; `Gracefully` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_mode: Option<PurgeMode>,
    /// With `Gracefully`: how long to wait for the new copy before removing the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i32>,
    /// Status fields carried over to the new cluster as labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

/// When an application counts as failed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionConditions {
    /// How long the application may stay unhealthy; 300 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i32>,
}

/// Cluster failover: what happens to the application when its cluster fails.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFailoverBehavior {
    /// How the old copy is removed; `Gracefully` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_mode: Option<PurgeMode>,
    /// Status fields carried over to the new cluster as labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_preservation: Option<StatePreservation>,
}

/// How the copy in a failed cluster is removed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PurgeMode {
    /// Remove at once.
    Directly,
    /// Remove once the new copy is healthy, or after the grace period.
    Gracefully,
    /// Never remove; a person decides.
    Never,
}

/// Status fields carried over on failover.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StatePreservation {
    /// One label per preserved field.
    pub rules: Vec<StatePreservationRule>,
}

/// One preserved status field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatePreservationRule {
    /// The label that carries the value to the new cluster.
    pub alias_label_name: String,
    /// A JSONPath into the object's `.status`.
    pub json_path: String,
}

// ---------------------------------------------------------------------------------------------
// OverridePolicy and ClusterOverridePolicy.
// ---------------------------------------------------------------------------------------------

/// Changes the templates it selects in its own namespace, per cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "policy.flotilla.io",
    version = "v1alpha1",
    kind = "OverridePolicy",
    plural = "overridepolicies",
    namespaced,
    shortname = "op",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "Changes the resource templates it selects in its namespace for some clusters",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OverrideSpec {
    /// The templates to change; every template when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_selectors: Vec<ResourceSelector>,
    /// The changes, each for some clusters, applied in order.
    #[serde(default)]
    pub override_rules: Vec<RuleWithCluster>,
    /// Deprecated (use `overrideRules`): the clusters `overriders` applies to. Together they
    /// act as one more rule after `overrideRules`, as in Karmada.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// Deprecated (use `overrideRules`): changes for the clusters in `targetCluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overriders: Option<Overriders>,
}

/// Changes the templates it selects in any namespace, per cluster. Its spec is exactly an
/// [`OverrideSpec`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "policy.flotilla.io",
    version = "v1alpha1",
    kind = "ClusterOverridePolicy",
    plural = "clusteroverridepolicies",
    shortname = "cop",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "Changes the resource templates it selects in any namespace for some clusters",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct ClusterOverridePolicySpec {
    /// The override rules, identical to an OverridePolicy's.
    #[serde(flatten)]
    pub spec: OverrideSpec,
}

impl Deref for ClusterOverridePolicySpec {
    type Target = OverrideSpec;
    fn deref(&self) -> &OverrideSpec {
        &self.spec
    }
}

/// Overriders for the clusters a selector matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleWithCluster {
    /// The clusters the rule applies to; every cluster when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cluster: Option<ClusterAffinity>,
    /// The changes.
    pub overriders: Overriders,
}

/// The changes one rule makes. They run in this order: image, command, args, labels,
/// annotations, field, plaintext.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overriders {
    /// JSON-patch operations on the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plaintext: Vec<PlaintextOverrider>,
    /// Changes to container images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_overrider: Vec<ImageOverrider>,
    /// Changes to a container's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_overrider: Vec<CommandArgsOverrider>,
    /// Changes to a container's args.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args_overrider: Vec<CommandArgsOverrider>,
    /// Changes to labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_overrider: Vec<LabelAnnotationOverrider>,
    /// Changes to annotations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations_overrider: Vec<LabelAnnotationOverrider>,
    /// Changes inside JSON or YAML documents held in string fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_overrider: Vec<FieldOverrider>,
}

/// The operations an overrider can perform.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OverriderOperator {
    /// Add (or append).
    Add,
    /// Remove.
    Remove,
    /// Replace.
    Replace,
}

/// One JSON-patch operation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct PlaintextOverrider {
    /// A JSON pointer (RFC 6901) into the manifest, such as `/spec/replicas`.
    pub path: String,
    /// add, remove or replace.
    pub operator: OverriderOperator,
    /// The value for add and replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub value: Option<serde_json::Value>,
}

/// A change to one component of container images.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ImageOverrider {
    /// The image field to change. When absent, the images of Pods, ReplicaSets, Deployments,
    /// StatefulSets, DaemonSets and Jobs are found automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<ImagePredicate>,
    /// The part of the image reference to change.
    pub component: ImageComponent,
    /// add, remove or replace.
    pub operator: OverriderOperator,
    /// The new value for add and replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Points at one image field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ImagePredicate {
    /// A JSON pointer to the image field, such as `/spec/template/spec/containers/0/image`.
    pub path: String,
}

/// The parts of an image reference `registry/repository:tag`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImageComponent {
    /// The registry host, such as `docker.io`.
    Registry,
    /// The repository, such as `library/nginx`.
    Repository,
    /// The tag, such as `1.25`.
    Tag,
}

/// A change to one container's command or args.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandArgsOverrider {
    /// The container to change.
    pub container_name: String,
    /// add (append) or remove (delete matching items).
    pub operator: OverriderOperator,
    /// The items to add or remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value: Vec<String>,
}

/// A change to labels or annotations.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct LabelAnnotationOverrider {
    /// add, remove or replace.
    pub operator: OverriderOperator,
    /// The keys (and values, for add and replace).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub value: BTreeMap<String, String>,
}

/// A change inside a JSON or YAML document held in a string field, such as one key of a
/// ConfigMap's data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldOverrider {
    /// A JSON pointer to the string field.
    pub field_path: String,
    /// Operations on a JSON document. Cannot be combined with `yaml`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<SubPathPatch>,
    /// Operations on a YAML document. Cannot be combined with `json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub yaml: Vec<SubPathPatch>,
}

/// One operation inside an embedded document.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubPathPatch {
    /// A JSON pointer inside the embedded document.
    pub sub_path: String,
    /// add, remove or replace.
    pub operator: OverriderOperator,
    /// The value for add and replace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_value")]
    pub value: Option<serde_json::Value>,
}
