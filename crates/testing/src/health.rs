//! How two GitOps tools judge a Kubernetes object, ported so tests can ask of a hub template
//! what Argo CD and Flux would answer: [`argocd_health`] ports Argo CD's built-in health checks
//! (repository argoproj/gitops-engine, `pkg/health`) and [`kstatus`] ports kstatus, which
//! Flux's `wait` and health checks use (repository kubernetes-sigs/cli-utils,
//! `pkg/kstatus/status`). Each function names the file and function it ports; the rules are
//! restated in Rust, the messages are our own wording.
//!
//! Test support only: pure functions over a whole object as JSON, no I/O, no clock. A rule that
//! needs the clock upstream is noted where it is left out.
//!
//! Reading the object mirrors the Go originals: a missing number reads as the zero (or the
//! default the original gives), a missing string as empty. Both originals first convert the
//! object into typed structs; where that conversion would fail (a field of the wrong type) the
//! ports answer `Unknown` too.

use k8s_openapi::serde_json::Value;

/// Argo CD's health codes (`HealthStatusCode` in gitops-engine `pkg/health/health.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgoHealth {
    /// Fully healthy.
    Healthy,
    /// Not healthy yet, but may still get there.
    Progressing,
    /// Failed, or could not get healthy in time.
    Degraded,
    /// Paused or suspended on purpose.
    Suspended,
    /// The object does not exist.
    Missing,
    /// Health could not be assessed.
    Unknown,
}

/// kstatus's statuses (`Status` constants in cli-utils `pkg/kstatus/status/status.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KStatus {
    /// The object's controller has not finished reconciling it.
    InProgress,
    /// Reconciling failed or stalled.
    Failed,
    /// The object is reconciled.
    Current,
    /// The object is being deleted.
    Terminating,
    /// The object does not exist.
    NotFound,
    /// The status could not be computed.
    Unknown,
}

/// The object's API group and kind (`""` for the core group).
fn group_kind(object: &Value) -> (&str, &str) {
    let api_version = text(object, &["apiVersion"]).unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    (group, text(object, &["kind"]).unwrap_or_default())
}

fn at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |value, key| value.get(key))
        .filter(|value| !value.is_null())
}

fn text<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(object, path).and_then(Value::as_str)
}

/// An integer field: `Ok(None)` when absent, an error naming the field when it is not an
/// integer (the typed conversion of the Go originals fails there).
fn int(object: &Value, path: &[&str]) -> Result<Option<i64>, String> {
    match at(object, path) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!(".{} is not an integer: {value}", path.join("."))),
    }
}

/// An integer field read the way a typed Go struct reads it: zero when absent.
fn int_or_zero(object: &Value, path: &[&str]) -> Result<i64, String> {
    Ok(int(object, path)?.unwrap_or(0))
}

/// The object's `status.conditions` that are objects.
fn conditions(object: &Value) -> impl Iterator<Item = &Value> {
    at(object, &["status", "conditions"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|condition| condition.is_object())
}

fn condition_field<'a>(condition: &'a Value, field: &str) -> &'a str {
    text(condition, &[field]).unwrap_or_default()
}

/// The first condition of `kind`, as gitops-engine's `getAppsv1DeploymentCondition` finds it.
fn first_condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions(object).find(|c| condition_field(c, "type") == kind)
}

fn name_of(object: &Value) -> &str {
    text(object, &["metadata", "name"]).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Argo CD
// ---------------------------------------------------------------------------------------------

/// Argo CD's health of `object` (the whole object; `null` for one that does not exist).
///
/// Ports gitops-engine `pkg/health/health.go` `GetResourceHealth` without a health override:
/// an object being deleted is Progressing unless it carries Argo CD's hook finalizer
/// (`argocd.argoproj.io/hook-finalizer`, `pkg/sync/hook` `HasHookFinalizer`); otherwise the
/// built-in check `GetHealthCheckFunc` picks by group and kind. Ported checks: `apps/v1`
/// Deployment, StatefulSet, ReplicaSet and DaemonSet. Other `apps` versions are Unknown (the
/// originals reject them as unsupported); kinds without a ported check are Unknown, where Argo
/// CD would report no health at all. A `null` or non-object input is Missing, as Argo CD's
/// application controller reports an absent live object.
pub fn argocd_health(object: &Value) -> (ArgoHealth, String) {
    if !object.is_object() {
        return (ArgoHealth::Missing, "the object does not exist".to_owned());
    }
    let deleting = text(object, &["metadata", "deletionTimestamp"]).is_some();
    let hook_finalizer = at(object, &["metadata", "finalizers"])
        .and_then(Value::as_array)
        .is_some_and(|finalizers| {
            finalizers
                .iter()
                .any(|f| f.as_str() == Some("argocd.argoproj.io/hook-finalizer"))
        });
    if deleting && !hook_finalizer {
        return (ArgoHealth::Progressing, "deletion pending".to_owned());
    }
    let (group, kind) = group_kind(object);
    let check: fn(&Value) -> Result<(ArgoHealth, String), String> = match (group, kind) {
        ("apps", "Deployment") => argo_deployment,
        ("apps", "StatefulSet") => argo_stateful_set,
        ("apps", "ReplicaSet") => argo_replica_set,
        ("apps", "DaemonSet") => argo_daemon_set,
        _ => {
            return (
                ArgoHealth::Unknown,
                format!("no built-in health check ported for {group}/{kind}"),
            );
        }
    };
    if text(object, &["apiVersion"]) != Some("apps/v1") {
        return (
            ArgoHealth::Unknown,
            format!(
                "{kind} version {} is not supported",
                text(object, &["apiVersion"]).unwrap_or_default()
            ),
        );
    }
    check(object).unwrap_or_else(|error| (ArgoHealth::Unknown, error))
}

/// Ports gitops-engine `pkg/health/health_deployment.go` `getAppsv1DeploymentHealth`: paused is
/// Suspended; once the controller has observed the generation, a `Progressing` condition with
/// reason `ProgressDeadlineExceeded` is Degraded, and fewer updated replicas than
/// `spec.replicas`, old replicas still running, or updated replicas not all available are
/// Progressing; an unobserved generation is Progressing; otherwise Healthy. The `Available`
/// condition is not read.
fn argo_deployment(object: &Value) -> Result<(ArgoHealth, String), String> {
    if at(object, &["spec", "paused"]).and_then(Value::as_bool) == Some(true) {
        return Ok((ArgoHealth::Suspended, "the Deployment is paused".to_owned()));
    }
    let generation = int_or_zero(object, &["metadata", "generation"])?;
    let observed = int_or_zero(object, &["status", "observedGeneration"])?;
    if generation > observed {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout pending: generation {generation} observed only up to {observed}"),
        ));
    }
    let want = int(object, &["spec", "replicas"])?;
    let replicas = int_or_zero(object, &["status", "replicas"])?;
    let updated = int_or_zero(object, &["status", "updatedReplicas"])?;
    let available = int_or_zero(object, &["status", "availableReplicas"])?;
    if first_condition(object, "Progressing")
        .is_some_and(|c| condition_field(c, "reason") == "ProgressDeadlineExceeded")
    {
        return Ok((
            ArgoHealth::Degraded,
            format!(
                "Deployment {} did not progress within its deadline",
                name_of(object)
            ),
        ));
    }
    if let Some(want) = want
        && updated < want
    {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout in progress: {updated} of {want} replicas updated"),
        ));
    }
    if replicas > updated {
        return Ok((
            ArgoHealth::Progressing,
            format!(
                "rollout in progress: {} old replicas still terminating",
                replicas - updated
            ),
        ));
    }
    if available < updated {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout in progress: {available} of {updated} updated replicas available"),
        ));
    }
    Ok((ArgoHealth::Healthy, String::new()))
}

/// Ports gitops-engine `pkg/health/health_statefulset.go` `getAppsv1StatefulSetHealth`: an
/// unobserved (or never observed) generation and fewer ready pods than `spec.replicas` are
/// Progressing; with a `RollingUpdate` strategy that has a `rollingUpdate` block, Healthy once
/// the pods above the partition are updated (revisions are not compared); `OnDelete` is
/// Healthy; otherwise Progressing until `currentRevision` equals `updateRevision`.
fn argo_stateful_set(object: &Value) -> Result<(ArgoHealth, String), String> {
    let generation = int_or_zero(object, &["metadata", "generation"])?;
    let observed = int_or_zero(object, &["status", "observedGeneration"])?;
    if observed == 0 || generation > observed {
        return Ok((
            ArgoHealth::Progressing,
            "waiting for the StatefulSet controller to observe the spec".to_owned(),
        ));
    }
    let want = int(object, &["spec", "replicas"])?;
    let ready = int_or_zero(object, &["status", "readyReplicas"])?;
    let updated = int_or_zero(object, &["status", "updatedReplicas"])?;
    if let Some(want) = want
        && ready < want
    {
        return Ok((
            ArgoHealth::Progressing,
            format!("{} pods not ready yet", want - ready),
        ));
    }
    let strategy = text(object, &["spec", "updateStrategy", "type"]).unwrap_or_default();
    let rolling = at(object, &["spec", "updateStrategy", "rollingUpdate"]);
    if strategy == "RollingUpdate" && rolling.is_some() {
        let partition = int(
            object,
            &["spec", "updateStrategy", "rollingUpdate", "partition"],
        )?;
        if let (Some(want), Some(partition)) = (want, partition)
            && updated < want - partition
        {
            return Ok((
                ArgoHealth::Progressing,
                format!(
                    "partitioned rollout in progress: {updated} of {} pods updated",
                    want - partition
                ),
            ));
        }
        return Ok((
            ArgoHealth::Healthy,
            format!("partitioned rollout done: {updated} pods updated"),
        ));
    }
    if strategy == "OnDelete" {
        return Ok((ArgoHealth::Healthy, format!("{ready} pods ready")));
    }
    let current = text(object, &["status", "currentRevision"]).unwrap_or_default();
    let update = text(object, &["status", "updateRevision"]).unwrap_or_default();
    if current != update {
        return Ok((
            ArgoHealth::Progressing,
            format!("rolling update in progress: {updated} pods at revision {update}"),
        ));
    }
    Ok((
        ArgoHealth::Healthy,
        format!("rolling update done: revision {current}"),
    ))
}

/// Ports gitops-engine `pkg/health/health_replicaset.go` `getAppsv1ReplicaSetHealth`: once the
/// generation is observed, a True `ReplicaFailure` condition is Degraded and fewer available
/// replicas than `spec.replicas` Progressing; an unobserved generation is Progressing.
fn argo_replica_set(object: &Value) -> Result<(ArgoHealth, String), String> {
    let generation = int_or_zero(object, &["metadata", "generation"])?;
    let observed = int_or_zero(object, &["status", "observedGeneration"])?;
    if generation > observed {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout pending: generation {generation} observed only up to {observed}"),
        ));
    }
    if let Some(failure) = first_condition(object, "ReplicaFailure")
        && condition_field(failure, "status") == "True"
    {
        return Ok((
            ArgoHealth::Degraded,
            condition_field(failure, "message").to_owned(),
        ));
    }
    let available = int_or_zero(object, &["status", "availableReplicas"])?;
    if let Some(want) = int(object, &["spec", "replicas"])?
        && available < want
    {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout in progress: {available} of {want} replicas available"),
        ));
    }
    Ok((ArgoHealth::Healthy, String::new()))
}

/// Ports gitops-engine `pkg/health/health_daemonset.go` `getAppsv1DaemonSetHealth`: once the
/// generation is observed, `OnDelete` is Healthy, and fewer updated or available pods than
/// `desiredNumberScheduled` are Progressing; an unobserved generation is Progressing.
fn argo_daemon_set(object: &Value) -> Result<(ArgoHealth, String), String> {
    let generation = int_or_zero(object, &["metadata", "generation"])?;
    let observed = int_or_zero(object, &["status", "observedGeneration"])?;
    if generation > observed {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout pending: generation {generation} observed only up to {observed}"),
        ));
    }
    let desired = int_or_zero(object, &["status", "desiredNumberScheduled"])?;
    let updated = int_or_zero(object, &["status", "updatedNumberScheduled"])?;
    let available = int_or_zero(object, &["status", "numberAvailable"])?;
    if text(object, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return Ok((
            ArgoHealth::Healthy,
            format!("{updated} of {desired} pods updated"),
        ));
    }
    if updated < desired {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout in progress: {updated} of {desired} pods updated"),
        ));
    }
    if available < desired {
        return Ok((
            ArgoHealth::Progressing,
            format!("rollout in progress: {available} of {desired} pods available"),
        ));
    }
    Ok((ArgoHealth::Healthy, String::new()))
}

// ---------------------------------------------------------------------------------------------
// kstatus
// ---------------------------------------------------------------------------------------------

/// kstatus's status of `object` (the whole object; `null` for one that does not exist, which
/// kstatus's poller reports as NotFound).
///
/// Ports cli-utils `pkg/kstatus/status/status.go` `Compute`: the generic rules first
/// ([`kstatus_generic`]); when they decide nothing, the rule for the object's group and kind
/// (`core.go` `GetLegacyConditionsFn`, keyed by group and kind whatever the version); for any
/// other kind, Current. kstatus reads only `Reconciling` and `Stalled` among the standard
/// conditions: a `Ready` condition on its own changes nothing (a custom resource with just
/// `Ready: False` and its generation observed is Current).
pub fn kstatus(object: &Value) -> (KStatus, String) {
    if !object.is_object() {
        return (KStatus::NotFound, "the object does not exist".to_owned());
    }
    let computed = kstatus_generic(object).and_then(|decided| match decided {
        Some(result) => Ok(result),
        None => kstatus_legacy(object),
    });
    computed.unwrap_or_else(|error| (KStatus::Unknown, error))
}

/// Ports cli-utils `pkg/kstatus/status/generic.go` `checkGenericProperties` and
/// `checkGeneration`: a non-empty `metadata.deletionTimestamp` is Terminating; a
/// `status.observedGeneration` that is present and differs from `metadata.generation` is
/// InProgress; then the first condition that is `Reconciling: True` (InProgress) or
/// `Stalled: True` (Failed) decides, in list order.
fn kstatus_generic(object: &Value) -> Result<Option<(KStatus, String)>, String> {
    if text(object, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_empty()) {
        return Ok(Some((
            KStatus::Terminating,
            "deletion scheduled".to_owned(),
        )));
    }
    if let Some(generation) = int(object, &["metadata", "generation"])?
        && let Some(observed) = int(object, &["status", "observedGeneration"])?
        && observed != generation
    {
        let (_, kind) = group_kind(object);
        return Ok(Some((
            KStatus::InProgress,
            format!("{kind} is at generation {generation}; its controller observed {observed}"),
        )));
    }
    for condition in conditions(object) {
        let is_true = condition_field(condition, "status") == "True";
        let message = condition_field(condition, "message").to_owned();
        match condition_field(condition, "type") {
            "Reconciling" if is_true => return Ok(Some((KStatus::InProgress, message))),
            "Stalled" if is_true => return Ok(Some((KStatus::Failed, message))),
            _ => {}
        }
    }
    Ok(None)
}

/// Dispatches as cli-utils `pkg/kstatus/status/core.go` `GetLegacyConditionsFn` does.
fn kstatus_legacy(object: &Value) -> Result<(KStatus, String), String> {
    match group_kind(object) {
        ("apps", "Deployment") | ("extensions", "Deployment") => kstatus_deployment(object),
        ("apps", "StatefulSet") => kstatus_stateful_set(object),
        ("apps", "ReplicaSet") | ("extensions", "ReplicaSet") => kstatus_replica_set(object),
        ("apps", "DaemonSet") | ("extensions", "DaemonSet") => kstatus_daemon_set(object),
        ("batch", "Job") => kstatus_job(object),
        ("", "Service") => kstatus_service(object),
        ("", "PersistentVolumeClaim") => kstatus_pvc(object),
        ("", "Pod") => kstatus_pod(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => kstatus_crd(object),
        ("", "Secret") | ("", "ConfigMap") | ("batch", "CronJob") => {
            Ok((KStatus::Current, "always ready".to_owned()))
        }
        ("policy", "PodDisruptionBudget") => {
            Ok((KStatus::Current, "allowed disruptions computed".to_owned()))
        }
        _ => Ok((KStatus::Current, "the resource is current".to_owned())),
    }
}

fn in_progress(message: String) -> Result<(KStatus, String), String> {
    Ok((KStatus::InProgress, message))
}

/// A field as kstatus's `GetIntField` reads it: the default when absent or not an integer.
fn int_field(object: &Value, path: &[&str], default: i64) -> i64 {
    at(object, path).and_then(Value::as_i64).unwrap_or(default)
}

/// Whether some condition of `kind` has `status`, as `util.go` `hasConditionWithStatus`.
fn find_condition<'a>(object: &'a Value, kind: &str, status: &str) -> Option<&'a Value> {
    conditions(object)
        .find(|c| condition_field(c, "type") == kind && condition_field(c, "status") == status)
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `deploymentConditions`: a `Progressing`
/// condition with reason `ProgressDeadlineExceeded` is Failed; then, against `spec.replicas`
/// (default 1), too few replicas, too few updated, extra replicas, updated not all available
/// or too few ready are InProgress; then InProgress unless `Progressing` is True with reason
/// `NewReplicaSetAvailable` (or `progressDeadlineSeconds` is unset, so the controller never
/// sets it) and `Available` is True; otherwise Current.
fn kstatus_deployment(object: &Value) -> Result<(KStatus, String), String> {
    let max_int32 = i64::from(i32::MAX);
    let mut progressing =
        int_field(object, &["spec", "progressDeadlineSeconds"], max_int32) == max_int32;
    let mut available = false;
    for condition in conditions(object) {
        let is_true = condition_field(condition, "status") == "True";
        match condition_field(condition, "type") {
            "Progressing" => {
                let reason = condition_field(condition, "reason");
                if reason == "ProgressDeadlineExceeded" {
                    return Ok((KStatus::Failed, "progress deadline exceeded".to_owned()));
                }
                if is_true && reason == "NewReplicaSetAvailable" {
                    progressing = true;
                }
            }
            "Available" if is_true => available = true,
            _ => {}
        }
    }
    let want = int_field(object, &["spec", "replicas"], 1);
    let replicas = int_field(object, &["status", "replicas"], 0);
    let updated = int_field(object, &["status", "updatedReplicas"], 0);
    let ready = int_field(object, &["status", "readyReplicas"], 0);
    let ready_available = int_field(object, &["status", "availableReplicas"], 0);
    if want > replicas {
        return in_progress(format!("replicas {replicas} of {want}"));
    }
    if want > updated {
        return in_progress(format!("updated {updated} of {want}"));
    }
    if replicas > want {
        return in_progress(format!("{} replicas still terminating", replicas - want));
    }
    if updated > ready_available {
        return in_progress(format!("available {ready_available} of {updated}"));
    }
    if want > ready {
        return in_progress(format!("ready {ready} of {want}"));
    }
    if !progressing {
        return in_progress("the new ReplicaSet is not available yet".to_owned());
    }
    if !available {
        return in_progress("the Deployment is not Available".to_owned());
    }
    Ok((
        KStatus::Current,
        format!("Deployment available with {replicas} replicas"),
    ))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `stsConditions`: `OnDelete` is Current; against
/// `spec.replicas` (default 1), too few replicas, too few ready or extra replicas are
/// InProgress; with a partition, Current once the pods above it are updated; otherwise too few
/// current replicas or `currentRevision` ≠ `updateRevision` are InProgress.
fn kstatus_stateful_set(object: &Value) -> Result<(KStatus, String), String> {
    if text(object, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return Ok((KStatus::Current, "OnDelete update strategy".to_owned()));
    }
    let want = int_field(object, &["spec", "replicas"], 1);
    let ready = int_field(object, &["status", "readyReplicas"], 0);
    let current = int_field(object, &["status", "currentReplicas"], 0);
    let updated = int_field(object, &["status", "updatedReplicas"], 0);
    let replicas = int_field(object, &["status", "replicas"], 0);
    let partition = int_field(
        object,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
        -1,
    );
    if want > replicas {
        return in_progress(format!("replicas {replicas} of {want}"));
    }
    if want > ready {
        return in_progress(format!("ready {ready} of {want}"));
    }
    if replicas > want {
        return in_progress(format!("{} replicas still terminating", replicas - want));
    }
    if partition != -1 {
        if updated < want - partition {
            return in_progress(format!(
                "partitioned rollout: updated {updated} of {}",
                want - partition
            ));
        }
        return Ok((
            KStatus::Current,
            format!("partitioned rollout done, {updated} updated"),
        ));
    }
    if want > current {
        return in_progress(format!("current {current} of {want}"));
    }
    let current_revision = text(object, &["status", "currentRevision"]).unwrap_or_default();
    let update_revision = text(object, &["status", "updateRevision"]).unwrap_or_default();
    if current_revision != update_revision {
        return in_progress("the update revision is not the current one yet".to_owned());
    }
    Ok((
        KStatus::Current,
        format!("all {replicas} replicas as expected"),
    ))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `replicasetConditions`: a True
/// `ReplicaFailure` condition is InProgress; against `spec.replicas` (default 1), too few fully
/// labelled, available or ready replicas, or extra replicas, are InProgress; otherwise Current.
fn kstatus_replica_set(object: &Value) -> Result<(KStatus, String), String> {
    if find_condition(object, "ReplicaFailure", "True").is_some() {
        return in_progress("a ReplicaFailure condition is set; check the Pods".to_owned());
    }
    let want = int_field(object, &["spec", "replicas"], 1);
    let replicas = int_field(object, &["status", "replicas"], 0);
    let ready = int_field(object, &["status", "readyReplicas"], 0);
    let available = int_field(object, &["status", "availableReplicas"], 0);
    let labelled = int_field(object, &["status", "fullyLabeledReplicas"], 0);
    if want > labelled {
        return in_progress(format!("labelled {labelled} of {want}"));
    }
    if want > available {
        return in_progress(format!("available {available} of {want}"));
    }
    if want > ready {
        return in_progress(format!("ready {ready} of {want}"));
    }
    if replicas > want {
        return in_progress(format!("{} replicas still terminating", replicas - want));
    }
    Ok((
        KStatus::Current,
        format!("ReplicaSet available with {replicas} replicas"),
    ))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `daemonsetConditions` (with `checkGenerationSet`):
/// a missing `metadata.generation` or `status.observedGeneration`, or a missing
/// `desiredNumberScheduled`, is InProgress; so are fewer current, updated, available or ready
/// pods than desired; otherwise Current.
fn kstatus_daemon_set(object: &Value) -> Result<(KStatus, String), String> {
    if int(object, &["metadata", "generation"])?.is_none() {
        return in_progress("DaemonSet has no metadata.generation".to_owned());
    }
    if int(object, &["status", "observedGeneration"])?.is_none() {
        return in_progress("DaemonSet has no status.observedGeneration".to_owned());
    }
    let desired = int_field(object, &["status", "desiredNumberScheduled"], -1);
    let current = int_field(object, &["status", "currentNumberScheduled"], 0);
    let updated = int_field(object, &["status", "updatedNumberScheduled"], 0);
    let available = int_field(object, &["status", "numberAvailable"], 0);
    let ready = int_field(object, &["status", "numberReady"], 0);
    if desired == -1 {
        return in_progress("no status.desiredNumberScheduled yet".to_owned());
    }
    for (what, have) in [
        ("current", current),
        ("updated", updated),
        ("available", available),
        ("ready", ready),
    ] {
        if desired > have {
            return in_progress(format!("{what} {have} of {desired}"));
        }
    }
    Ok((KStatus::Current, format!("all {desired} pods as expected")))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `jobConditions`: the first True condition among
/// `Complete` (Current), `Failed` (Failed) and `Suspended` (Current) decides; a Job without
/// `status.startTime` is InProgress; a running Job is Current.
fn kstatus_job(object: &Value) -> Result<(KStatus, String), String> {
    let parallelism = int_field(object, &["spec", "parallelism"], 1);
    let completions = int_field(object, &["spec", "completions"], parallelism);
    let succeeded = int_field(object, &["status", "succeeded"], 0);
    let active = int_field(object, &["status", "active"], 0);
    let failed = int_field(object, &["status", "failed"], 0);
    for condition in conditions(object) {
        if condition_field(condition, "status") != "True" {
            continue;
        }
        match condition_field(condition, "type") {
            "Complete" => {
                return Ok((
                    KStatus::Current,
                    format!("Job complete, {succeeded} of {completions} succeeded"),
                ));
            }
            "Failed" => {
                return Ok((
                    KStatus::Failed,
                    format!("Job failed, {failed} of {completions} failed"),
                ));
            }
            "Suspended" => return Ok((KStatus::Current, "Job suspended".to_owned())),
            _ => {}
        }
    }
    if text(object, &["status", "startTime"])
        .unwrap_or_default()
        .is_empty()
    {
        return in_progress("Job not started yet".to_owned());
    }
    Ok((
        KStatus::Current,
        format!("Job running: {succeeded} succeeded, {active} active, {failed} failed"),
    ))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `serviceConditions`: a LoadBalancer Service
/// without `spec.clusterIP` is InProgress; every other Service is Current.
fn kstatus_service(object: &Value) -> Result<(KStatus, String), String> {
    let kind = text(object, &["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = text(object, &["spec", "clusterIP"]).unwrap_or_default();
    if kind == "LoadBalancer" && cluster_ip.is_empty() {
        return in_progress("LoadBalancer Service has no cluster IP yet".to_owned());
    }
    Ok((KStatus::Current, "Service ready".to_owned()))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `pvcConditions`: Current only when `Bound`.
fn kstatus_pvc(object: &Value) -> Result<(KStatus, String), String> {
    let phase = text(object, &["status", "phase"]).unwrap_or("unknown");
    if phase != "Bound" {
        return in_progress(format!("claim not Bound (phase {phase})"));
    }
    Ok((KStatus::Current, "claim Bound".to_owned()))
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `podConditions`, without the clock: Succeeded
/// and Failed pods are Current; a Running pod is Current when Ready, Failed when a container
/// waits in `CrashLoopBackOff`, else InProgress; a Pending pod is InProgress, or Failed when
/// `PodScheduled` is False with reason `Unschedulable` (upstream first grants 15 seconds from
/// creation, which needs the clock; this port treats the window as passed); no phase is
/// InProgress; any other phase is Unknown (an error upstream).
fn kstatus_pod(object: &Value) -> Result<(KStatus, String), String> {
    match text(object, &["status", "phase"]).unwrap_or_default() {
        "Succeeded" => Ok((KStatus::Current, "Pod succeeded".to_owned())),
        "Failed" => Ok((KStatus::Current, "Pod finished unsuccessfully".to_owned())),
        "Running" => {
            if find_condition(object, "Ready", "True").is_some() {
                return Ok((KStatus::Current, "Pod Ready".to_owned()));
            }
            let crash_looping: Vec<&str> = at(object, &["status", "containerStatuses"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| text(c, &["state", "waiting", "reason"]) == Some("CrashLoopBackOff"))
                .filter_map(|c| text(c, &["name"]))
                .collect();
            if !crash_looping.is_empty() {
                return Ok((
                    KStatus::Failed,
                    format!("containers crash looping: {}", crash_looping.join(",")),
                ));
            }
            in_progress("Pod running but not Ready".to_owned())
        }
        "Pending" => {
            if find_condition(object, "PodScheduled", "False")
                .is_some_and(|c| condition_field(c, "reason") == "Unschedulable")
            {
                return Ok((KStatus::Failed, "Pod cannot be scheduled".to_owned()));
            }
            in_progress("Pod Pending".to_owned())
        }
        "" => in_progress("Pod has no phase yet".to_owned()),
        other => Err(format!("unknown Pod phase {other}")),
    }
}

/// Ports cli-utils `pkg/kstatus/status/core.go` `crdConditions`: in condition order,
/// `NamesAccepted: False` is Failed, `Established: False` (other than while `Installing`) is
/// Failed, `Established: True` is Current; otherwise InProgress.
fn kstatus_crd(object: &Value) -> Result<(KStatus, String), String> {
    for condition in conditions(object) {
        let status = condition_field(condition, "status");
        let message = condition_field(condition, "message").to_owned();
        match condition_field(condition, "type") {
            "NamesAccepted" if status == "False" => return Ok((KStatus::Failed, message)),
            "Established"
                if status == "False" && condition_field(condition, "reason") != "Installing" =>
            {
                return Ok((KStatus::Failed, message));
            }
            "Established" if status == "True" => {
                return Ok((KStatus::Current, "CRD established".to_owned()));
            }
            _ => {}
        }
    }
    in_progress("CRD installing".to_owned())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::serde_json::json;

    use super::*;

    /// A Deployment as a real API server returns it: `spec.replicas` 3, the default progress
    /// deadline, generation 2 and the given status.
    fn deployment(status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "generation": 2},
            "spec": {"replicas": 3, "progressDeadlineSeconds": 600,
                     "strategy": {"type": "RollingUpdate"}},
            "status": status,
        })
    }

    fn condition(kind: &str, status: &str, reason: &str) -> Value {
        json!({"type": kind, "status": status, "reason": reason, "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z",
               "lastUpdateTime": "2026-01-01T00:00:00Z"})
    }

    fn done_conditions() -> Value {
        json!([
            condition("Available", "True", "MinimumReplicasAvailable"),
            condition("Progressing", "True", "NewReplicaSetAvailable"),
        ])
    }

    fn deployment_status(observed: i64, counts: [i64; 4], conditions: Value) -> Value {
        let [replicas, updated, ready, available] = counts;
        json!({"observedGeneration": observed, "replicas": replicas,
               "updatedReplicas": updated, "readyReplicas": ready,
               "availableReplicas": available, "conditions": conditions})
    }

    fn check(cases: &[(&str, Value, ArgoHealth, KStatus)]) {
        for (name, object, argo, kstat) in cases {
            assert_eq!(argocd_health(object).0, *argo, "Argo CD: {name}");
            assert_eq!(kstatus(object).0, *kstat, "kstatus: {name}");
        }
    }

    #[test]
    fn deployments_are_judged_like_argocd_and_kstatus() {
        use ArgoHealth as A;
        use KStatus as K;
        let paused = {
            let mut object = deployment(deployment_status(2, [3, 3, 3, 3], done_conditions()));
            object["spec"]["paused"] = json!(true);
            object
        };
        let deleting = {
            let mut object = deployment(deployment_status(2, [3, 3, 3, 3], done_conditions()));
            object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            object
        };
        let no_deadline = {
            let mut object = deployment(deployment_status(
                2,
                [3, 3, 3, 3],
                json!([condition("Available", "True", "MinimumReplicasAvailable")]),
            ));
            if let Some(spec) = object["spec"].as_object_mut() {
                spec.remove("progressDeadlineSeconds");
            }
            object
        };
        let cases = [
            (
                "rolled out",
                deployment(deployment_status(2, [3, 3, 3, 3], done_conditions())),
                A::Healthy,
                K::Current,
            ),
            (
                "mid rollout",
                deployment(deployment_status(
                    2,
                    [4, 1, 3, 3],
                    json!([
                        condition("Available", "True", "MinimumReplicasAvailable"),
                        condition("Progressing", "True", "ReplicaSetUpdated"),
                    ]),
                )),
                A::Progressing,
                K::InProgress,
            ),
            (
                "old replicas terminating",
                deployment(deployment_status(
                    2,
                    [4, 3, 3, 3],
                    json!([
                        condition("Available", "True", "MinimumReplicasAvailable"),
                        condition("Progressing", "True", "ReplicaSetUpdated"),
                    ]),
                )),
                A::Progressing,
                K::InProgress,
            ),
            (
                "updated but not available",
                deployment(deployment_status(
                    2,
                    [3, 3, 3, 2],
                    json!([
                        condition("Available", "True", "MinimumReplicasAvailable"),
                        condition("Progressing", "True", "ReplicaSetUpdated"),
                    ]),
                )),
                A::Progressing,
                K::InProgress,
            ),
            (
                "progress deadline exceeded",
                deployment(deployment_status(
                    2,
                    [3, 1, 2, 2],
                    json!([
                        condition("Available", "True", "MinimumReplicasAvailable"),
                        condition("Progressing", "False", "ProgressDeadlineExceeded"),
                    ]),
                )),
                A::Degraded,
                K::Failed,
            ),
            (
                "observed generation behind",
                deployment(deployment_status(1, [3, 3, 3, 3], done_conditions())),
                A::Progressing,
                K::InProgress,
            ),
            (
                // Argo CD never reads Available; kstatus waits for it.
                "counts done but not Available",
                deployment(deployment_status(
                    2,
                    [3, 3, 3, 3],
                    json!([
                        condition("Available", "False", "MinimumReplicasUnavailable"),
                        condition("Progressing", "True", "NewReplicaSetAvailable"),
                    ]),
                )),
                A::Healthy,
                K::InProgress,
            ),
            (
                // Argo CD never reads the reason unless the deadline passed; kstatus waits for
                // NewReplicaSetAvailable.
                "counts done but still ReplicaSetUpdated",
                deployment(deployment_status(
                    2,
                    [3, 3, 3, 3],
                    json!([
                        condition("Available", "True", "MinimumReplicasAvailable"),
                        condition("Progressing", "True", "ReplicaSetUpdated"),
                    ]),
                )),
                A::Healthy,
                K::InProgress,
            ),
            (
                "no progress deadline, no Progressing condition",
                no_deadline,
                A::Healthy,
                K::Current,
            ),
            ("paused", paused, A::Suspended, K::Current),
            ("being deleted", deleting, A::Progressing, K::Terminating),
            (
                "no status yet",
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "generation": 1},
                       "spec": {"replicas": 3}}),
                A::Progressing,
                K::InProgress,
            ),
            ("absent", Value::Null, A::Missing, K::NotFound),
            (
                "malformed generation",
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "generation": "two"},
                       "spec": {"replicas": 3}, "status": {"observedGeneration": 2}}),
                A::Unknown,
                K::Unknown,
            ),
        ];
        check(&cases);
    }

    fn stateful_set(update_strategy: Value, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop", "generation": 3},
            "spec": {"replicas": 3, "updateStrategy": update_strategy},
            "status": status,
        })
    }

    fn sts_status(observed: i64, ready: i64, current: i64, revisions: (&str, &str)) -> Value {
        json!({"observedGeneration": observed, "replicas": 3, "readyReplicas": ready,
               "currentReplicas": current, "updatedReplicas": 3,
               "currentRevision": revisions.0, "updateRevision": revisions.1})
    }

    #[test]
    fn stateful_sets_are_judged_like_argocd_and_kstatus() {
        use ArgoHealth as A;
        use KStatus as K;
        let rolling = json!({"type": "RollingUpdate"});
        let partitioned = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        let cases = [
            (
                "rolled out",
                stateful_set(rolling.clone(), sts_status(3, 3, 3, ("db-1", "db-1"))),
                A::Healthy,
                K::Current,
            ),
            (
                "revisions differ",
                stateful_set(rolling.clone(), sts_status(3, 3, 3, ("db-1", "db-2"))),
                A::Progressing,
                K::InProgress,
            ),
            (
                "pods not ready",
                stateful_set(rolling.clone(), sts_status(3, 2, 3, ("db-1", "db-1"))),
                A::Progressing,
                K::InProgress,
            ),
            (
                "generation not observed",
                stateful_set(rolling.clone(), sts_status(2, 3, 3, ("db-1", "db-1"))),
                A::Progressing,
                K::InProgress,
            ),
            (
                // With a partition both tools compare updated pods only, not revisions.
                "partition reached, revisions differ",
                stateful_set(partitioned, sts_status(3, 3, 0, ("db-1", "db-2"))),
                A::Healthy,
                K::Current,
            ),
            (
                "on delete",
                stateful_set(
                    json!({"type": "OnDelete"}),
                    sts_status(3, 3, 0, ("db-1", "db-2")),
                ),
                A::Healthy,
                K::Current,
            ),
        ];
        check(&cases);
    }

    #[test]
    fn replica_sets_and_daemon_sets_are_judged_like_argocd_and_kstatus() {
        use ArgoHealth as A;
        use KStatus as K;
        let replica_set = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "web-1", "generation": 1},
                   "spec": {"replicas": 2}, "status": status})
        };
        let daemon_set = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                   "metadata": {"name": "agent", "generation": 1},
                   "spec": {"updateStrategy": {"type": "RollingUpdate"}}, "status": status})
        };
        let daemon_status = |updated: i64| {
            json!({"observedGeneration": 1, "desiredNumberScheduled": 2,
                   "currentNumberScheduled": 2, "updatedNumberScheduled": updated,
                   "numberAvailable": 2, "numberReady": 2})
        };
        let cases = [
            (
                "replicaset available",
                replica_set(json!({"observedGeneration": 1, "replicas": 2,
                                   "fullyLabeledReplicas": 2, "readyReplicas": 2,
                                   "availableReplicas": 2})),
                A::Healthy,
                K::Current,
            ),
            (
                "replicaset short",
                replica_set(json!({"observedGeneration": 1, "replicas": 2,
                                   "fullyLabeledReplicas": 2, "readyReplicas": 1,
                                   "availableReplicas": 1})),
                A::Progressing,
                K::InProgress,
            ),
            (
                "replicaset failure",
                replica_set(json!({"observedGeneration": 1, "replicas": 1,
                                   "conditions": [condition("ReplicaFailure", "True",
                                                            "FailedCreate")]})),
                A::Degraded,
                K::InProgress,
            ),
            (
                "daemonset done",
                daemon_set(daemon_status(2)),
                A::Healthy,
                K::Current,
            ),
            (
                "daemonset updating",
                daemon_set(daemon_status(1)),
                A::Progressing,
                K::InProgress,
            ),
            (
                "daemonset never observed",
                daemon_set(json!({"desiredNumberScheduled": 0})),
                A::Progressing,
                K::InProgress,
            ),
        ];
        check(&cases);
    }

    #[test]
    fn kstatus_generic_rules_and_jobs() {
        let widget = |generation: i64, status: Value| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "w", "generation": generation}, "status": status})
        };
        let job = |status: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"name": "once", "generation": 1},
                   "spec": {"completions": 2}, "status": status})
        };
        let cases = [
            (
                "reconciling",
                widget(
                    1,
                    json!({"observedGeneration": 1,
                           "conditions": [condition("Reconciling", "True", "Progressing")]}),
                ),
                KStatus::InProgress,
            ),
            (
                "stalled",
                widget(
                    1,
                    json!({"observedGeneration": 1,
                           "conditions": [condition("Stalled", "True", "BadSpec")]}),
                ),
                KStatus::Failed,
            ),
            (
                // kstatus does not read Ready.
                "only Ready False",
                widget(
                    1,
                    json!({"observedGeneration": 1,
                           "conditions": [condition("Ready", "False", "Waiting")]}),
                ),
                KStatus::Current,
            ),
            (
                "generation not observed",
                widget(
                    2,
                    json!({"observedGeneration": 1,
                           "conditions": [condition("Ready", "True", "Succeeded")]}),
                ),
                KStatus::InProgress,
            ),
            ("no status at all", widget(1, json!({})), KStatus::Current),
            ("job not started", job(json!({})), KStatus::InProgress),
            (
                "job running",
                job(json!({"active": 2, "startTime": "2026-01-01T00:00:00Z"})),
                KStatus::Current,
            ),
            (
                "job failed",
                job(json!({"failed": 1, "startTime": "2026-01-01T00:00:00Z",
                           "conditions": [condition("Failed", "True", "BackoffLimitExceeded")]})),
                KStatus::Failed,
            ),
            (
                "job complete",
                job(json!({"succeeded": 2, "startTime": "2026-01-01T00:00:00Z",
                           "conditions": [condition("Complete", "True", "")]})),
                KStatus::Current,
            ),
        ];
        for (name, object, expect) in cases {
            assert_eq!(kstatus(&object).0, expect, "{name}");
        }
    }

    #[test]
    fn kinds_without_a_ported_argocd_check_are_unknown() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}});
        assert_eq!(argocd_health(&job).0, ArgoHealth::Unknown);
        let beta = json!({"apiVersion": "apps/v1beta1", "kind": "Deployment",
                          "metadata": {"name": "d"}});
        assert_eq!(argocd_health(&beta).0, ArgoHealth::Unknown);
    }
}
