//! Built-in kinds: the defaults kube-apiserver 1.37 fills on create and update, and the
//! validation errors (422 causes) it reports, for the kinds users propagate: apps Deployment,
//! StatefulSet, DaemonSet, ReplicaSet; batch Job, CronJob; core Pod, Service, ConfigMap, Secret,
//! ServiceAccount, PersistentVolumeClaim, Namespace; networking.k8s.io Ingress; and the RBAC
//! roles and bindings. The cluster-level kinds get their defaults too (HorizontalPodAutoscaler
//! with its validation; Endpoints, EndpointSlice, LimitRange, PodTemplate, PersistentVolume,
//! ResourceQuota, NetworkPolicy, IngressClass, CSIDriver, CSINode, VolumeAttachment). Every pod template goes through one shared pod-spec defaulter and
//! validator ([`pod`]).
//!
//! Expectations in the tests were read off a real kube-apiserver v1.37.2 (`?dryRun=All`).
//!
//! Besides the `SetDefaults_*` functions, [`default`] fills what the v1 conversion, the
//! registry strategies' `PrepareForCreate` and the default admission plugins make visible in
//! `kubectl get -o yaml` and that needs no lookup: the deprecated `serviceAccount`, the empty
//! status of a new object, the DaemonSet's template-generation annotation, the Job's generated
//! selector and labels, a Pod's tolerations, priority and `default` service account.

mod apps;
mod autoscaling;
mod batch;
mod core;
mod networking;
mod pod;
mod rbac;
mod storage;
mod util;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::Cause;

/// Fill the defaults kube-apiserver fills on create and update for this kind (group `""` for
/// core). The Job's generated selector uses `metadata.uid`, which the server sets before this
/// call. Idempotent; fields the user set are kept; objects of other kinds are left alone.
pub fn default(group: &str, kind: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match group {
        "" => core::default(kind, o),
        "apps" => {
            if matches!(
                kind,
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
            ) {
                apps::default(kind, o);
            }
        }
        "autoscaling" => autoscaling::default(kind, o),
        "batch" => batch::default(kind, o),
        "discovery.k8s.io" if kind == "EndpointSlice" => storage::default_endpoint_slice(o),
        "networking.k8s.io" => networking::default(kind, o),
        "rbac.authorization.k8s.io" => rbac::default(kind, o),
        "storage.k8s.io" => storage::default(kind, o),
        _ => {}
    }
}

/// What kube-apiserver's strategies fill when an object is created, after its managed fields
/// are recorded (no manager owns these): a Job's generated selector and labels, a Namespace's
/// finalizer and phase, a Service's IP families. Call after [`default`], before [`validate`].
pub fn prepare_for_create(group: &str, kind: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match group {
        "" => core::prepare_for_create(kind, o),
        "autoscaling" => autoscaling::prepare_for_create(kind, o),
        "batch" => batch::prepare_for_create(kind, o),
        "storage.k8s.io" => storage::prepare_for_create(kind, o),
        // A new request is neither approved nor denied.
        "certificates.k8s.io" if kind == "CertificateSigningRequest" => {
            util::ensure_obj(o, "status");
        }
        // A new PodDisruptionBudget's status, as its strategy leaves it.
        "policy" if kind == "PodDisruptionBudget" => {
            if let Some(st) = util::ensure_obj(o, "status") {
                for k in [
                    "currentHealthy",
                    "desiredHealthy",
                    "disruptionsAllowed",
                    "expectedPods",
                ] {
                    util::set_default(st, k, serde_json::json!(0));
                }
            }
        }
        _ => {}
    }
}

/// What kube-apiserver fills on update after managed fields are recorded: a Service that newly
/// needs a ClusterIP (e.g. ExternalName → ClusterIP) gets its IP family policy and families.
pub fn prepare_for_update(group: &str, kind: &str, obj: &mut Value) {
    if group.is_empty()
        && kind == "Service"
        && let Some(o) = obj.as_object_mut()
        && o.get("spec").and_then(|s| s.get("ipFamilies")).is_none()
    {
        core::prepare_for_create(kind, o);
    }
}

/// The validation errors kube-apiserver reports (422 causes) for this (defaulted) object, in
/// kube's order; `old` is `Some` on update, for the immutable fields. Empty when valid or when
/// the kind is not one of this module's.
pub fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    match group {
        "" => core::validate(kind, obj, old),
        "apps"
            if matches!(
                kind,
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
            ) =>
        {
            apps::validate(kind, obj, old)
        }
        "autoscaling" => autoscaling::validate(kind, obj, old),
        "batch" => batch::validate(kind, obj, old),
        "networking.k8s.io" => networking::validate(kind, obj, old),
        "rbac.authorization.k8s.io" => rbac::validate(kind, obj, old),
        _ => Vec::new(),
    }
}

/// The warnings kube-apiserver's strategies give on a create or update of this (defaulted,
/// valid) object, as `Warning` header texts.
pub fn warnings(group: &str, kind: &str, obj: &Value) -> Vec<String> {
    match group {
        "storage.k8s.io" => storage::warnings(kind, obj),
        _ => Vec::new(),
    }
}
