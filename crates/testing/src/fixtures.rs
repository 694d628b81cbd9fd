//! Fixture builders for Clusters and ResourceBindings, shared by the scheduler's unit tests,
//! integration tests and benchmarks: `ClusterBuilder::new("m1").region("r1")
//! .allocatable(&[("cpu", "8")]).build()` and `BindingBuilder::new().dynamic().replicas(3)`.
//! Plain data only: builds `flotilla_api` objects, never talks to a server or schedules.

use std::collections::BTreeMap;

use flotilla_api::{
    Cluster,
    cluster::{ApiEnablement, ApiResource, ClusterSpec, ClusterStatus, ResourceSummary},
    policy::{
        ClusterAffinity, ClusterAffinityTerm, ClusterPreferences, DynamicWeightFactor, Placement,
        ReplicaDivisionPreference, ReplicaSchedulingStrategy, ReplicaSchedulingType, SpreadByField,
        SpreadConstraint, StaticClusterWeight,
    },
    work::{
        ObjectReference, ReplicaRequirements, ResourceBinding, ResourceBindingSpec,
        ResourceBindingStatus, TargetCluster,
    },
};
use k8s_openapi::{
    api::core::v1::{Taint, Toleration},
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{ObjectMeta, Time},
    },
};

/// A taint.
pub fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        value: value.map(Into::into),
        effect: effect.into(),
        time_added: None,
    }
}

/// A toleration.
pub fn toleration(
    key: Option<&str>,
    operator: &str,
    value: Option<&str>,
    effect: Option<&str>,
) -> Toleration {
    Toleration {
        key: key.map(Into::into),
        operator: Some(operator.into()),
        value: value.map(Into::into),
        effect: effect.map(Into::into),
        toleration_seconds: None,
    }
}

/// A timestamp `seconds` after the epoch.
pub fn time(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or_default())
}

/// Builds a [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterBuilder {
    cluster: Cluster,
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

impl ClusterBuilder {
    /// A Push cluster with no labels, location, taints or resource summary, serving
    /// `apps/v1` Deployments and `v1` ConfigMaps (see [`Self::no_apis`]).
    pub fn new(name: &str) -> Self {
        let mut cluster = Cluster::new(name, ClusterSpec::default());
        cluster.status = Some(ClusterStatus::default());
        Self { cluster }
            .api("apps/v1", "Deployment")
            .api("v1", "ConfigMap")
    }

    /// Forgets every API enablement.
    pub fn no_apis(mut self) -> Self {
        self.status().api_enablements.clear();
        self
    }

    fn status(&mut self) -> &mut ClusterStatus {
        self.cluster.status.get_or_insert_with(Default::default)
    }

    fn summary(&mut self) -> &mut ResourceSummary {
        self.status()
            .resource_summary
            .get_or_insert_with(Default::default)
    }

    /// Sets `spec.region`.
    pub fn region(mut self, region: &str) -> Self {
        self.cluster.spec.region = Some(region.into());
        self
    }

    /// Sets `spec.provider`.
    pub fn provider(mut self, provider: &str) -> Self {
        self.cluster.spec.provider = Some(provider.into());
        self
    }

    /// Sets `spec.zones`.
    pub fn zones(mut self, zones: &[&str]) -> Self {
        self.cluster.spec.zones = zones.iter().map(|z| (*z).to_owned()).collect();
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.cluster
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        self
    }

    /// Adds a taint.
    pub fn taint(mut self, key: &str, effect: &str) -> Self {
        self.cluster.spec.taints.push(taint(key, None, effect));
        self
    }

    /// Sets `status.resourceSummary.allocatable`.
    pub fn allocatable(mut self, pairs: &[(&str, &str)]) -> Self {
        self.summary().allocatable = quantities(pairs);
        self
    }

    /// Sets `status.resourceSummary.allocated`.
    pub fn allocated(mut self, pairs: &[(&str, &str)]) -> Self {
        self.summary().allocated = quantities(pairs);
        self
    }

    /// Sets `status.resourceSummary.allocating`.
    pub fn allocating(mut self, pairs: &[(&str, &str)]) -> Self {
        self.summary().allocating = quantities(pairs);
        self
    }

    /// Room for exactly `n` replicas of a binding built with [`BindingBuilder`] defaults
    /// (which request nothing): allocatable pods = `n`.
    pub fn pods(self, n: i64) -> Self {
        self.allocatable(&[("pods", &n.to_string())])
    }

    /// Declares that the cluster serves `kind` in `group_version`.
    pub fn api(mut self, group_version: &str, kind: &str) -> Self {
        let status = self.status();
        let resource = ApiResource {
            name: format!("{}s", kind.to_lowercase()),
            kind: kind.into(),
        };
        match status
            .api_enablements
            .iter_mut()
            .find(|e| e.group_version == group_version)
        {
            Some(e) => e.resources.push(resource),
            None => status.api_enablements.push(ApiEnablement {
                group_version: group_version.into(),
                resources: vec![resource],
            }),
        }
        self
    }

    /// Marks the cluster as being deleted.
    pub fn deleting(mut self) -> Self {
        self.cluster.metadata.deletion_timestamp = Some(time(1));
        self
    }

    /// The cluster.
    pub fn build(self) -> Cluster {
        self.cluster
    }
}

/// Builds a [`ResourceBinding`] for an `apps/v1` Deployment named `app` in `default`.
#[derive(Clone, Debug)]
pub struct BindingBuilder {
    binding: ResourceBinding,
}

impl Default for BindingBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BindingBuilder {
    /// A binding with 0 replicas, an empty placement and an even UID.
    pub fn new() -> Self {
        let spec = ResourceBindingSpec {
            resource: ObjectReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("default".into()),
                name: "app".into(),
                ..Default::default()
            },
            placement: Some(Placement::default()),
            ..Default::default()
        };
        let mut binding = ResourceBinding::new("app-deployment", spec);
        binding.metadata = ObjectMeta {
            name: Some("app-deployment".into()),
            namespace: Some("default".into()),
            uid: Some(EVEN_UID.into()),
            ..Default::default()
        };
        Self { binding }
    }

    fn placement(&mut self) -> &mut Placement {
        self.binding
            .spec
            .placement
            .get_or_insert_with(Default::default)
    }

    /// Sets `metadata.uid`.
    pub fn uid(mut self, uid: &str) -> Self {
        self.binding.metadata.uid = Some(uid.into());
        self
    }

    /// Sets `metadata.generation`.
    pub fn generation(mut self, generation: i64) -> Self {
        self.binding.metadata.generation = Some(generation);
        self
    }

    /// Marks the binding `Scheduled=True` at its current generation, as the scheduler does
    /// after a successful pass.
    pub fn scheduled(self) -> Self {
        let success = flotilla_api::conditions::reasons::SUCCESS;
        self.scheduled_condition(true, success, "Binding has been scheduled successfully.")
    }

    /// Marks the binding `Scheduled=False` (the last attempt failed) at its current generation.
    pub fn schedule_failed(self) -> Self {
        let reason = flotilla_api::conditions::reasons::NO_CLUSTER_FIT;
        self.scheduled_condition(false, reason, "no cluster fits")
    }

    fn scheduled_condition(mut self, status: bool, reason: &str, message: &str) -> Self {
        let generation = self.binding.metadata.generation;
        let conditions = &mut self
            .binding
            .status
            .get_or_insert_with(ResourceBindingStatus::default)
            .conditions;
        let condition = flotilla_api::conditions::new(
            flotilla_api::conditions::SCHEDULED,
            status,
            reason,
            message,
            generation,
        );
        flotilla_api::conditions::set_condition(conditions, condition, time(0));
        self
    }

    /// Sets `spec.replicas`.
    pub fn replicas(mut self, n: i32) -> Self {
        self.binding.spec.replicas = n;
        self
    }

    /// Sets the per-replica resource request.
    pub fn request(mut self, pairs: &[(&str, &str)]) -> Self {
        self.binding.spec.replica_requirements = Some(ReplicaRequirements {
            resource_request: quantities(pairs),
            ..Default::default()
        });
        self
    }

    /// Sets the template's API version and kind.
    pub fn resource(mut self, api_version: &str, kind: &str) -> Self {
        self.binding.spec.resource.api_version = api_version.into();
        self.binding.spec.resource.kind = kind.into();
        self
    }

    /// Sets the previous scheduling result.
    pub fn previous(mut self, clusters: &[(&str, i32)]) -> Self {
        self.binding.spec.clusters = clusters
            .iter()
            .map(|(name, replicas)| TargetCluster {
                name: (*name).into(),
                replicas: *replicas,
            })
            .collect();
        self
    }

    /// Sets `placement.clusterAffinity`.
    pub fn affinity(mut self, affinity: ClusterAffinity) -> Self {
        self.placement().cluster_affinity = Some(affinity);
        self
    }

    /// Appends a `placement.clusterAffinities` term.
    pub fn affinity_term(mut self, name: &str, affinity: ClusterAffinity) -> Self {
        self.placement()
            .cluster_affinities
            .push(ClusterAffinityTerm {
                affinity_name: name.into(),
                affinity,
                ..Default::default()
            });
        self
    }

    /// Adds a toleration.
    pub fn tolerate(mut self, toleration: Toleration) -> Self {
        self.placement().cluster_tolerations.push(toleration);
        self
    }

    /// Adds a spread constraint by field.
    pub fn spread(mut self, field: SpreadByField, min: i32, max: i32) -> Self {
        self.placement().spread_constraints.push(SpreadConstraint {
            spread_by_field: Some(field),
            spread_by_label: None,
            min_groups: min,
            max_groups: max,
        });
        self
    }

    /// Adds a spread constraint by label.
    pub fn spread_by_label(mut self, label: &str, min: i32, max: i32) -> Self {
        self.placement().spread_constraints.push(SpreadConstraint {
            spread_by_field: None,
            spread_by_label: Some(label.into()),
            min_groups: min,
            max_groups: max,
        });
        self
    }

    /// `Duplicated`.
    pub fn duplicated(mut self) -> Self {
        self.placement().replica_scheduling = Some(ReplicaSchedulingStrategy {
            replica_scheduling_type: ReplicaSchedulingType::Duplicated,
            ..Default::default()
        });
        self
    }

    /// `Divided` + `Aggregated`.
    pub fn aggregated(mut self) -> Self {
        self.placement().replica_scheduling = Some(ReplicaSchedulingStrategy {
            replica_scheduling_type: ReplicaSchedulingType::Divided,
            replica_division_preference: Some(ReplicaDivisionPreference::Aggregated),
            weight_preference: None,
        });
        self
    }

    /// `Divided` + `Weighted` by dynamic weight (available replicas).
    pub fn dynamic(mut self) -> Self {
        self.placement().replica_scheduling = Some(ReplicaSchedulingStrategy {
            replica_scheduling_type: ReplicaSchedulingType::Divided,
            replica_division_preference: Some(ReplicaDivisionPreference::Weighted),
            weight_preference: Some(ClusterPreferences {
                static_weight_list: vec![],
                dynamic_weight: Some(DynamicWeightFactor::AvailableReplicas),
            }),
        });
        self
    }

    /// `Divided` + `Weighted` by static weights, one rule per named cluster.
    pub fn static_weights(mut self, weights: &[(&str, i64)]) -> Self {
        let list = weights
            .iter()
            .map(|(name, weight)| StaticClusterWeight {
                target_cluster: ClusterAffinity {
                    cluster_names: vec![(*name).into()],
                    ..Default::default()
                },
                weight: *weight,
            })
            .collect();
        self.placement().replica_scheduling = Some(ReplicaSchedulingStrategy {
            replica_scheduling_type: ReplicaSchedulingType::Divided,
            replica_division_preference: Some(ReplicaDivisionPreference::Weighted),
            weight_preference: Some(ClusterPreferences {
                static_weight_list: list,
                dynamic_weight: None,
            }),
        });
        self
    }

    /// `Divided` + `Weighted` with no weight preference (every cluster weighs 1).
    pub fn weighted_evenly(mut self) -> Self {
        self.placement().replica_scheduling = Some(ReplicaSchedulingStrategy {
            replica_scheduling_type: ReplicaSchedulingType::Divided,
            replica_division_preference: Some(ReplicaDivisionPreference::Weighted),
            weight_preference: None,
        });
        self
    }

    /// Sets `rescheduleTriggeredAt` and `status.lastScheduledTime`.
    pub fn times(mut self, triggered: Option<i64>, last_scheduled: Option<i64>) -> Self {
        self.binding.spec.reschedule_triggered_at = triggered.map(time);
        self.binding
            .status
            .get_or_insert_with(ResourceBindingStatus::default)
            .last_scheduled_time = last_scheduled.map(time);
        self
    }

    /// Sets `status.schedulerObservingAffinityName`.
    pub fn observed_term(mut self, name: &str) -> Self {
        self.binding
            .status
            .get_or_insert_with(ResourceBindingStatus::default)
            .scheduler_observing_affinity_name = Some(name.into());
        self
    }

    /// Adds a graceful eviction task from `cluster`.
    pub fn evicting(mut self, cluster: &str) -> Self {
        self.binding
            .spec
            .graceful_eviction_tasks
            .push(flotilla_api::work::GracefulEvictionTask {
                from_cluster: cluster.into(),
                reason: "TaintUntolerated".into(),
                producer: "test".into(),
                ..Default::default()
            });
        self
    }

    /// The binding.
    pub fn build(self) -> ResourceBinding {
        self.binding
    }
}

/// A UID whose FNV-1a hash is even (name-ascending tie-break).
pub const EVEN_UID: &str = "uid-even-1";
/// A UID whose FNV-1a hash is odd (name-descending tie-break).
pub const ODD_UID: &str = "uid-odd-1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_fixtures_have_the_parity_their_names_say() {
        assert_eq!(flotilla_api::names::fnv32a(EVEN_UID.as_bytes()) % 2, 0);
        assert_eq!(flotilla_api::names::fnv32a(ODD_UID.as_bytes()) % 2, 1);
    }
}
