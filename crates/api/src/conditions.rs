//! The condition vocabulary: condition types and reasons as constants, [`set_condition`], which
//! sets a condition the Kubernetes way, and [`merge_owned`], which merges the conditions one
//! controller owns into a status that several controllers share.
//!
//! Reasons are PascalCase. `lastTransitionTime` moves only when a condition's status changes,
//! so a controller that writes the same condition twice writes identical objects.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

// Condition types (positive polarity).

/// A Cluster can accept workloads; a Machine's node is ready.
pub const READY: &str = "Ready";
/// A Cluster reported every API it serves.
pub const COMPLETE_API_ENABLEMENTS: &str = "CompleteAPIEnablements";
/// A binding has been scheduled.
pub const SCHEDULED: &str = "Scheduled";
/// Every Work of a binding has been applied.
pub const FULLY_APPLIED: &str = "FullyApplied";
/// A Work's manifests have been applied to its member.
pub const APPLIED: &str = "Applied";
/// A Work is being dispatched to its member.
pub const DISPATCHING: &str = "Dispatching";
/// An aggregate (MachineSet, workload) has enough healthy members.
pub const AVAILABLE: &str = "Available";
/// An object is moving towards its desired state.
pub const PROGRESSING: &str = "Progressing";
/// A Machine's infrastructure has been provisioned.
pub const INFRASTRUCTURE_READY: &str = "InfrastructureReady";
/// A Machine's bootstrap data is ready.
pub const BOOTSTRAP_CONFIG_READY: &str = "BootstrapConfigReady";
/// A Machine's node is healthy.
pub const NODE_HEALTHY: &str = "NodeHealthy";
/// A Machine passed its MachineHealthChecks.
pub const HEALTH_CHECK_SUCCEEDED: &str = "HealthCheckSucceeded";
/// A Machine's owner has remediated it (False while remediation is pending).
pub const OWNER_REMEDIATED: &str = "OwnerRemediated";
/// MachineHealthCheck remediation is allowed.
pub const REMEDIATION_ALLOWED: &str = "RemediationAllowed";

// Condition statuses.

/// The condition holds.
pub const TRUE: &str = "True";
/// The condition does not hold.
pub const FALSE: &str = "False";
/// Whether the condition holds cannot be told.
pub const UNKNOWN: &str = "Unknown";

/// Reasons, grouped by the condition that uses them.
pub mod reasons {
    // Cluster Ready.
    /// The cluster is healthy and ready to accept workloads.
    pub const CLUSTER_READY: &str = "ClusterReady";
    /// The cluster's health endpoint did not answer ok.
    pub const CLUSTER_NOT_READY: &str = "ClusterNotReady";
    /// The cluster's API server cannot be reached.
    pub const CLUSTER_NOT_REACHABLE: &str = "ClusterNotReachable";
    /// The cluster's status went stale past the grace period.
    pub const CLUSTER_STATUS_UNKNOWN: &str = "ClusterStatusUnknown";
    /// The cluster never reported a status.
    pub const CLUSTER_STATUS_NEVER_UPDATED: &str = "ClusterStatusNeverUpdated";
    /// A client for the cluster could not be built, for example from a bad secret.
    pub const STATUS_COLLECTION_FAILED: &str = "StatusCollectionFailed";

    // Cluster CompleteAPIEnablements.
    /// Every API group-version was collected.
    pub const COMPLETE: &str = "Complete";
    /// Some API group-versions could not be collected.
    pub const PARTIAL: &str = "Partial";
    /// No API group-version could be collected.
    pub const EMPTY: &str = "Empty";

    // Binding Scheduled.
    /// The binding has been scheduled.
    pub const SUCCESS: &str = "Success";
    /// No cluster passed the filters.
    pub const NO_CLUSTER_FIT: &str = "NoClusterFit";
    /// Clusters passed the filters but cannot hold the replicas or satisfy the spread.
    pub const UNSCHEDULABLE: &str = "Unschedulable";
    /// The scheduler failed for a reason the user cannot fix.
    pub const SCHEDULER_ERROR: &str = "SchedulerError";

    // Binding FullyApplied.
    /// Every Work has been applied.
    pub const FULLY_APPLIED_SUCCESS: &str = "FullyAppliedSuccess";
    /// Some Work has not been applied.
    pub const FULLY_APPLIED_FAILED: &str = "FullyAppliedFailed";

    // Work Applied and Dispatching.
    /// The manifests have been applied.
    pub const APPLIED_SUCCESSFUL: &str = "AppliedSuccessful";
    /// Some manifest could not be applied.
    pub const APPLIED_FAILED: &str = "AppliedFailed";
    /// The Work is being dispatched.
    pub const DISPATCHING: &str = "Dispatching";
    /// Dispatching is suspended.
    pub const SUSPEND_DISPATCHING: &str = "SuspendDispatching";

    // Machines.
    /// Waiting for the bootstrap data.
    pub const WAITING_FOR_BOOTSTRAP_DATA: &str = "WaitingForBootstrapData";
    /// Waiting for the infrastructure.
    pub const WAITING_FOR_INFRASTRUCTURE: &str = "WaitingForInfrastructure";
    /// The node has not started within the startup timeout.
    pub const NODE_STARTUP_TIMEOUT: &str = "NodeStartupTimeout";
    /// The node is gone.
    pub const NODE_NOT_FOUND: &str = "NodeNotFound";
    /// A node condition has been unhealthy for too long.
    pub const UNHEALTHY_NODE: &str = "UnhealthyNode";
    /// Remediation is short-circuited because too many machines are unhealthy.
    pub const TOO_MANY_UNHEALTHY: &str = "TooManyUnhealthy";
    /// The machine is waiting for its owner to replace it.
    pub const WAITING_FOR_REMEDIATION: &str = "WaitingForRemediation";

    /// The bootstrap data Secret is named.
    pub const BOOTSTRAP_DATA_READY: &str = "BootstrapDataReady";
    /// No bootstrap provider is configured: the infrastructure provider bootstraps the machine.
    pub const NO_BOOTSTRAP_NEEDED: &str = "NoBootstrapNeeded";
    /// The machine is provisioned but no Node carries its providerID yet.
    pub const WAITING_FOR_NODE: &str = "WaitingForNode";
    /// The machine's Node is Ready.
    pub const NODE_READY: &str = "NodeReady";
    /// The machine's Node is not Ready (or never said).
    pub const NODE_NOT_READY: &str = "NodeNotReady";
    /// Bootstrap, infrastructure and node are all ready.
    pub const MACHINE_READY: &str = "MachineReady";
    /// The machine passed every check of its MachineHealthChecks.
    pub const HEALTHY: &str = "Healthy";
    /// A machine condition has been unhealthy for too long.
    pub const UNHEALTHY_MACHINE: &str = "UnhealthyMachine";
    /// Remediation may proceed.
    pub const REMEDIATION_ALLOWED: &str = "RemediationAllowed";
    /// The machine's node is being drained before it is deleted.
    pub const DRAINING_NODE: &str = "DrainingNode";

    // MachineSet Available and Progressing.
    /// At least `replicas - maxUnavailable` machines are available.
    pub const MINIMUM_MACHINES_AVAILABLE: &str = "MinimumMachinesAvailable";
    /// Fewer machines are available than the set needs.
    pub const INSUFFICIENT_MACHINES: &str = "InsufficientMachines";
    /// Every machine is made from the current template, available, and there are `replicas`.
    pub const MACHINES_UP_TO_DATE: &str = "MachinesUpToDate";
    /// Machines are being replaced with ones from a new template.
    pub const ROLLING_OUT: &str = "RollingOut";
    /// Machines are being added or removed to reach `replicas`.
    pub const SCALING: &str = "Scaling";
    /// The spec cannot be acted on (the message says why).
    pub const INVALID_SPEC: &str = "InvalidSpec";
}

/// Sets `condition` in `conditions`, keeping `lastTransitionTime` when the status did not
/// change. `now` is used only when the status changed (or the condition is new).
///
/// Returns whether anything in `conditions` changed, so callers can skip a no-op write.
pub fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition, now: Time) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            condition.last_transition_time = if existing.status == condition.status {
                existing.last_transition_time.clone()
            } else {
                now
            };
            if *existing == condition {
                false
            } else {
                *existing = condition;
                true
            }
        }
        None => {
            condition.last_transition_time = now;
            conditions.push(condition);
            true
        }
    }
}

/// Merges the conditions one controller owns into a status that several controllers share.
///
/// Returns `existing` with each condition of `owned` set as [`set_condition`] sets it
/// (`lastTransitionTime` kept when the status did not change, `now` otherwise), and every
/// other condition kept untouched and in place. Owned conditions not yet present are appended
/// in the order given; an owned condition absent from `owned` is left as it is, never removed.
/// Compare the result with `existing` to skip a no-op write.
pub fn merge_owned(existing: &[Condition], owned: &[Condition], now: Time) -> Vec<Condition> {
    let mut merged = existing.to_vec();
    for condition in owned {
        set_condition(&mut merged, condition.clone(), now.clone());
    }
    merged
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of that type is present and True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == TRUE)
}

/// Builds a condition; `lastTransitionTime` is filled in by [`set_condition`].
pub fn new(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if status { TRUE } else { FALSE }.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time: Time(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("valid timestamp"))
    }

    #[test]
    fn last_transition_time_moves_only_when_status_changes() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            new(SCHEDULED, true, "Success", "ok", Some(1)),
            at(10)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));

        // Same status, new message and generation: updated, time kept.
        assert!(set_condition(
            &mut conditions,
            new(SCHEDULED, true, "Success", "ok2", Some(2)),
            at(20)
        ));
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].message, "ok2");

        // Identical: no change reported.
        assert!(!set_condition(
            &mut conditions,
            new(SCHEDULED, true, "Success", "ok2", Some(2)),
            at(30)
        ));

        // Status flips: time moves.
        assert!(set_condition(
            &mut conditions,
            new(SCHEDULED, false, "NoClusterFit", "none", Some(2)),
            at(40)
        ));
        assert_eq!(conditions[0].last_transition_time, at(40));
        assert!(!is_true(&conditions, SCHEDULED));
        assert_eq!(conditions.len(), 1);
    }

    /// A condition with an explicit `lastTransitionTime`, as it would be stored.
    fn stored(type_: &str, status: bool, reason: &str, since: i64) -> Condition {
        Condition {
            last_transition_time: at(since),
            ..new(type_, status, reason, "", Some(1))
        }
    }

    #[test]
    fn merge_owned_sets_only_owned_conditions_and_keeps_the_rest_in_place() {
        let now = 100;
        type Case = (&'static str, Vec<Condition>, Vec<Condition>, Vec<Condition>);
        // (case, existing, owned, expected)
        let table: Vec<Case> = vec![
            ("nothing owned, nothing there", vec![], vec![], vec![]),
            (
                "new owned condition is appended at now",
                vec![stored(READY, true, "ClusterReady", 5)],
                vec![new(SCHEDULED, true, "Success", "", Some(1))],
                vec![
                    stored(READY, true, "ClusterReady", 5),
                    stored(SCHEDULED, true, "Success", now),
                ],
            ),
            (
                "same status keeps lastTransitionTime, new reason is taken",
                vec![stored(SCHEDULED, false, "NoClusterFit", 7)],
                vec![new(SCHEDULED, false, "Unschedulable", "", Some(1))],
                vec![stored(SCHEDULED, false, "Unschedulable", 7)],
            ),
            (
                "status flip moves lastTransitionTime, others untouched and in place",
                vec![
                    stored(READY, true, "A", 1),
                    stored(SCHEDULED, false, "NoClusterFit", 2),
                    stored(FULLY_APPLIED, true, "FullyAppliedSuccess", 3),
                ],
                vec![new(SCHEDULED, true, "Success", "", Some(1))],
                vec![
                    stored(READY, true, "A", 1),
                    stored(SCHEDULED, true, "Success", now),
                    stored(FULLY_APPLIED, true, "FullyAppliedSuccess", 3),
                ],
            ),
            (
                "owned conditions missing from owned are not removed",
                vec![
                    stored(SCHEDULED, true, "Success", 2),
                    stored(READY, true, "A", 1),
                ],
                vec![],
                vec![
                    stored(SCHEDULED, true, "Success", 2),
                    stored(READY, true, "A", 1),
                ],
            ),
            (
                "several owned: one updated in place, one appended",
                vec![
                    stored(APPLIED, false, "AppliedFailed", 4),
                    stored(READY, true, "A", 1),
                ],
                vec![
                    new(DISPATCHING, true, "Dispatching", "", Some(1)),
                    new(APPLIED, true, "AppliedSuccessful", "", Some(1)),
                ],
                vec![
                    stored(APPLIED, true, "AppliedSuccessful", now),
                    stored(READY, true, "A", 1),
                    stored(DISPATCHING, true, "Dispatching", now),
                ],
            ),
            (
                "an identical owned condition changes nothing",
                vec![
                    stored(READY, true, "A", 1),
                    stored(SCHEDULED, true, "Success", 2),
                ],
                vec![new(SCHEDULED, true, "Success", "", Some(1))],
                vec![
                    stored(READY, true, "A", 1),
                    stored(SCHEDULED, true, "Success", 2),
                ],
            ),
        ];
        for (case, existing, owned, expected) in table {
            let merged = merge_owned(&existing, &owned, at(now));
            assert_eq!(merged, expected, "{case}");
        }
    }
}
