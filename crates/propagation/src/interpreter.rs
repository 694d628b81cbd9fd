//! The built-in resource interpreter: what a resource template asks for and depends on, how a
//! cluster's share is written into a rendered manifest, and how member statuses and health are
//! read back. One submodule per question; every function is pure over `serde_json::Value`
//! objects, so it runs the same in the hub's controllers and in `flotilla render`.
//!
//! This module does no I/O and never decides *where* a workload goes (the scheduler does) or
//! *when* a status is written (the status controllers do). Kinds it does not know (any CRD,
//! ConfigMap, Service…) get the neutral answer: no replicas, no dependencies, the whole
//! status reflected, only the standard `Ready` / `Reconciling` / `Stalled` conditions and
//! `observedGeneration` aggregated, Healthy when present.
//!
//! Kinds are recognised by API group and kind, whatever the version (`apps/v1` and a future
//! `apps/v2` Deployment are read alike); Karmada keys its interpreters on the exact
//! group-version-kind.
//!
//! - [`workloads`]: replicas and per-replica requirements, revising replicas, Job completions.
//! - [`requests`]: kube's effective pod resource requests.
//! - [`dependencies`]: ConfigMaps, Secrets, ServiceAccounts and PVCs a pod template references.
//! - [`status`]: reflecting a member object's status and aggregating reflected statuses.
//! - [`health`]: whether a member object is healthy.

pub mod dependencies;
pub mod health;
pub mod requests;
pub mod status;
pub mod workloads;

pub use dependencies::{Dependency, dependencies};
pub use health::health;
pub use requests::pod_requests;
pub use status::{aggregate_status, reflect_status};
pub use workloads::{
    Replicas, divide_job_completions, replicas, revise_job_completions, revise_replicas,
};

use serde_json::Value;

/// The kinds the built-in interpreter knows, by API group and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `apps` Deployment.
    Deployment,
    /// `apps` StatefulSet.
    StatefulSet,
    /// `apps` ReplicaSet.
    ReplicaSet,
    /// `apps` DaemonSet.
    DaemonSet,
    /// `batch` Job.
    Job,
    /// `batch` CronJob.
    CronJob,
    /// Core Pod.
    Pod,
    /// Core Service.
    Service,
    /// Core PersistentVolume.
    PersistentVolume,
    /// Core PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// `networking.k8s.io` Ingress.
    Ingress,
    /// `policy` PodDisruptionBudget.
    PodDisruptionBudget,
    /// `autoscaling` HorizontalPodAutoscaler.
    HorizontalPodAutoscaler,
    /// Anything else: CRDs, ConfigMaps, Secrets, …
    Other,
}

impl Kind {
    /// The kind of an `apiVersion` and `kind` pair.
    pub fn of(api_version: &str, kind: &str) -> Self {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        match (group, kind) {
            ("apps", "Deployment") => Self::Deployment,
            ("apps", "StatefulSet") => Self::StatefulSet,
            ("apps", "ReplicaSet") => Self::ReplicaSet,
            ("apps", "DaemonSet") => Self::DaemonSet,
            ("batch", "Job") => Self::Job,
            ("batch", "CronJob") => Self::CronJob,
            ("", "Pod") => Self::Pod,
            ("", "Service") => Self::Service,
            ("", "PersistentVolume") => Self::PersistentVolume,
            ("", "PersistentVolumeClaim") => Self::PersistentVolumeClaim,
            ("networking.k8s.io", "Ingress") => Self::Ingress,
            ("policy", "PodDisruptionBudget") => Self::PodDisruptionBudget,
            ("autoscaling", "HorizontalPodAutoscaler") => Self::HorizontalPodAutoscaler,
            _ => Self::Other,
        }
    }

    /// The kind of an object, from its `apiVersion` and `kind`.
    pub fn of_object(object: &Value) -> Self {
        Self::of(
            str_at(object, &["apiVersion"]).unwrap_or_default(),
            str_at(object, &["kind"]).unwrap_or_default(),
        )
    }
}

/// The value at `path`, if every step is an object field.
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(key))
}

/// The string at `path`.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// The integer at `path`.
pub(crate) fn int_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

/// The array at `path`, empty when absent or not an array.
pub(crate) fn array_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `metadata.namespace`, when set and non-empty.
pub(crate) fn namespace_of(object: &Value) -> Option<&str> {
    str_at(object, &["metadata", "namespace"]).filter(|ns| !ns.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_recognised_by_group_and_kind_whatever_the_version() {
        let cases = [
            ("apps/v1", "Deployment", Kind::Deployment),
            ("apps/v2", "Deployment", Kind::Deployment),
            ("extensions/v1beta1", "Deployment", Kind::Other),
            ("v1", "Pod", Kind::Pod),
            ("v1", "ConfigMap", Kind::Other),
            ("batch/v1", "CronJob", Kind::CronJob),
            ("example.com/v1", "Pod", Kind::Other),
            (
                "policy/v1",
                "PodDisruptionBudget",
                Kind::PodDisruptionBudget,
            ),
            ("networking.k8s.io/v1", "Ingress", Kind::Ingress),
        ];
        for (api_version, kind, expect) in cases {
            assert_eq!(Kind::of(api_version, kind), expect, "{api_version} {kind}");
        }
    }
}
