//! The `Ready` decision: turns one probe's outcome into a verdict, and damps flapping the way
//! Karmada's cluster condition cache does (a Ready cluster turns NotReady only once failures
//! have persisted for the failure threshold). Pure: time comes in as arguments; never does IO.

use std::time::{Duration, Instant};

use flotilla_api::conditions::{TRUE, reasons};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The message of a True `Ready` condition.
pub const READY_MESSAGE: &str = "cluster is healthy and ready to accept workloads";

/// What one probe of a member's health endpoint found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// `/readyz` (or `/healthz`) answered ok.
    Healthy,
    /// The API server answered, but not ok; says what it answered.
    Unhealthy(String),
    /// The API server could not be reached; says why.
    Unreachable(String),
}

/// The `Ready` condition one pass wants to write (before `lastTransitionTime` is filled in).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the cluster is ready.
    pub ready: bool,
    /// The condition reason, from [`flotilla_api::conditions::reasons`].
    pub reason: &'static str,
    /// A message for users.
    pub message: String,
}

impl Verdict {
    /// The verdict for a probe outcome, without damping.
    pub fn of(health: &Health) -> Verdict {
        match health {
            Health::Healthy => Verdict {
                ready: true,
                reason: reasons::CLUSTER_READY,
                message: READY_MESSAGE.to_owned(),
            },
            Health::Unhealthy(detail) => Verdict {
                ready: false,
                reason: reasons::CLUSTER_NOT_READY,
                message: format!("cluster is not ready: {detail}"),
            },
            Health::Unreachable(detail) => Verdict {
                ready: false,
                reason: reasons::CLUSTER_NOT_REACHABLE,
                message: format!("cluster is not reachable: {detail}"),
            },
        }
    }

    /// The verdict when no client could be built for the member; never damped, because it is a
    /// configuration problem the user has to fix, not a blip.
    pub fn collection_failed(message: impl Into<String>) -> Verdict {
        Verdict {
            ready: false,
            reason: reasons::STATUS_COLLECTION_FAILED,
            message: message.into(),
        }
    }
}

/// Remembers, per cluster, since when probes have been failing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailureTracker {
    failing_since: Option<Instant>,
}

impl FailureTracker {
    /// Records a probe outcome at `now`; returns how long failures have persisted (zero on the
    /// first failure, `None` when the probe succeeded).
    pub fn observe(&mut self, healthy: bool, now: Instant) -> Option<Duration> {
        if healthy {
            self.failing_since = None;
            return None;
        }
        let since = *self.failing_since.get_or_insert(now);
        Some(now.saturating_duration_since(since))
    }
}

/// Decides the `Ready` verdict of a pass, damping flapping: when the current condition is True
/// and the probe failed, the cluster stays Ready until failures have persisted for
/// `threshold` (`failing_for` from [`FailureTracker::observe`]). A cluster that is not Ready
/// yet reports failures at once, and recovery is reported at once.
///
/// Returns `None` when the current condition must be kept as it is.
pub fn decide(
    current: Option<&Condition>,
    health: &Health,
    failing_for: Option<Duration>,
    threshold: Duration,
) -> Option<Verdict> {
    let verdict = Verdict::of(health);
    let currently_ready = current.is_some_and(|c| c.status == TRUE);
    if !verdict.ready && currently_ready && failing_for.unwrap_or_default() < threshold {
        return None;
    }
    Some(verdict)
}

#[cfg(test)]
mod tests {
    use flotilla_api::conditions::{self, READY};

    use super::*;

    fn condition(ready: bool) -> Condition {
        let reason = if ready {
            reasons::CLUSTER_READY
        } else {
            reasons::CLUSTER_NOT_REACHABLE
        };
        conditions::new(READY, ready, reason, "m", None)
    }

    /// name, current Ready condition, probe outcome, failing for, wanted (ready, reason).
    type Case = (
        &'static str,
        Option<Condition>,
        Health,
        Option<Duration>,
        Option<(bool, &'static str)>,
    );

    #[test]
    fn failures_are_damped_only_for_a_ready_cluster() {
        let down = Health::Unreachable("connection refused".to_owned());
        let sick = Health::Unhealthy("/readyz answered 500".to_owned());
        let threshold = Duration::from_secs(30);
        let secs = |s| Some(Duration::from_secs(s));
        let table: Vec<Case> = vec![
            (
                "new cluster, healthy",
                None,
                Health::Healthy,
                None,
                Some((true, reasons::CLUSTER_READY)),
            ),
            (
                "new cluster, down: at once",
                None,
                down.clone(),
                secs(0),
                Some((false, reasons::CLUSTER_NOT_REACHABLE)),
            ),
            (
                "ready, first failure: kept",
                Some(condition(true)),
                down.clone(),
                secs(0),
                None,
            ),
            (
                "ready, failing 29s: kept",
                Some(condition(true)),
                down.clone(),
                secs(29),
                None,
            ),
            (
                "ready, failing 30s: flips",
                Some(condition(true)),
                down.clone(),
                secs(30),
                Some((false, reasons::CLUSTER_NOT_REACHABLE)),
            ),
            (
                "ready, unhealthy 10s: kept",
                Some(condition(true)),
                sick.clone(),
                secs(10),
                None,
            ),
            (
                "ready, unhealthy 31s: flips",
                Some(condition(true)),
                sick.clone(),
                secs(31),
                Some((false, reasons::CLUSTER_NOT_READY)),
            ),
            (
                "not ready, failing: stays reported",
                Some(condition(false)),
                down.clone(),
                secs(1),
                Some((false, reasons::CLUSTER_NOT_REACHABLE)),
            ),
            (
                "not ready, recovers at once",
                Some(condition(false)),
                Health::Healthy,
                None,
                Some((true, reasons::CLUSTER_READY)),
            ),
        ];
        for (name, current, health, failing_for, want) in table {
            let got = decide(current.as_ref(), &health, failing_for, threshold);
            assert_eq!(got.as_ref().map(|v| (v.ready, v.reason)), want, "{name}");
        }
    }

    #[test]
    fn verdict_messages_say_what_happened() {
        assert_eq!(Verdict::of(&Health::Healthy).message, READY_MESSAGE);
        let v = Verdict::of(&Health::Unreachable("connection refused".to_owned()));
        assert_eq!(v.message, "cluster is not reachable: connection refused");
        let v = Verdict::of(&Health::Unhealthy("/readyz answered 500".to_owned()));
        assert_eq!(v.message, "cluster is not ready: /readyz answered 500");
    }

    #[test]
    fn the_tracker_measures_from_the_first_consecutive_failure() {
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let mut tracker = FailureTracker::default();
        assert_eq!(tracker.observe(false, at(0)), Some(Duration::ZERO));
        assert_eq!(
            tracker.observe(false, at(10)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            tracker.observe(false, at(25)),
            Some(Duration::from_secs(25))
        );
        assert_eq!(tracker.observe(true, at(26)), None);
        assert_eq!(tracker.observe(false, at(40)), Some(Duration::ZERO));
        assert_eq!(tracker.observe(false, at(45)), Some(Duration::from_secs(5)));
    }
}
