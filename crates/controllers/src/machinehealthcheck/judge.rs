//! Whether a machine is healthy by a MachineHealthCheck's rules, and whether remediation may
//! proceed given how many are not (Cluster API's `maxUnhealthy` / `unhealthyRange`, here
//! `triggerIf`). Plain functions over what was observed; no IO.

use std::time::Duration;

use flotilla_api::{
    conditions::reasons,
    provisioning::{MachineHealthChecks, RemediationTrigger},
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One condition as observed, with how long it has held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The condition type.
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// How long it has had this status.
    pub for_: Duration,
}

/// What is known of a machine's node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// The machine has no node yet; it was created this long ago.
    NotYet(Duration),
    /// The machine had a node, and it is gone.
    Gone,
    /// The node's conditions.
    Conditions(Vec<Held>),
    /// The node could not be looked at (its cluster is unreachable): no verdict on it.
    Unknown,
}

/// A machine's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy; if something could turn it unhealthy, look again after this long.
    Healthy(Option<Duration>),
    /// Unhealthy, with the reason and a message for the user.
    Unhealthy(&'static str, String),
}

const DEFAULT_NODE_STARTUP: Duration = Duration::from_secs(600);

fn seconds(s: i32) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// The verdict on a machine with these node and machine conditions.
pub fn judge(
    checks: &MachineHealthChecks,
    node: &NodeState,
    machine_conditions: &[Held],
) -> Verdict {
    let mut recheck: Option<Duration> = None;
    let mut soonest = |d: Duration| {
        recheck = Some(recheck.map_or(d, |r| r.min(d)));
    };
    for rule in &checks.unhealthy_machine_conditions {
        if let Some(c) = machine_conditions
            .iter()
            .find(|c| c.type_ == rule.type_ && c.status == rule.status)
        {
            let timeout = seconds(rule.timeout_seconds);
            if c.for_ >= timeout {
                return Verdict::Unhealthy(
                    reasons::UNHEALTHY_MACHINE,
                    format!(
                        "machine condition {}={} for more than {}s",
                        rule.type_, rule.status, rule.timeout_seconds
                    ),
                );
            }
            soonest(timeout - c.for_);
        }
    }
    match node {
        NodeState::NotYet(age) => {
            let timeout = checks
                .node_startup_timeout_seconds
                .map_or(DEFAULT_NODE_STARTUP, seconds);
            if timeout.is_zero() {
                return Verdict::Healthy(recheck);
            }
            if *age >= timeout {
                return Verdict::Unhealthy(
                    reasons::NODE_STARTUP_TIMEOUT,
                    format!(
                        "the machine has had no node for more than {}s",
                        timeout.as_secs()
                    ),
                );
            }
            soonest(timeout - *age);
        }
        NodeState::Gone => {
            return Verdict::Unhealthy(
                reasons::NODE_NOT_FOUND,
                "the machine's node is gone".into(),
            );
        }
        NodeState::Conditions(held) => {
            for rule in &checks.unhealthy_node_conditions {
                if let Some(c) = held
                    .iter()
                    .find(|c| c.type_ == rule.type_ && c.status == rule.status)
                {
                    let timeout = seconds(rule.timeout_seconds);
                    if c.for_ >= timeout {
                        return Verdict::Unhealthy(
                            reasons::UNHEALTHY_NODE,
                            format!(
                                "node condition {}={} for more than {}s",
                                rule.type_, rule.status, rule.timeout_seconds
                            ),
                        );
                    }
                    soonest(timeout - c.for_);
                }
            }
        }
        NodeState::Unknown => {}
    }
    Verdict::Healthy(recheck)
}

/// How many more machines may be remediated with `unhealthy` of `targets` unhealthy, or why
/// none may.
///
/// # Errors
///
/// The message for `RemediationAllowed=False` (`TooManyUnhealthy`), or a malformed trigger.
pub fn remediations_allowed(
    trigger: Option<&RemediationTrigger>,
    targets: i32,
    unhealthy: i32,
) -> Result<i32, String> {
    if let Some(range) = trigger.and_then(|t| t.unhealthy_in_range.as_deref()) {
        let (low, high) = range
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.trim().parse::<i32>().ok()?, b.trim().parse::<i32>().ok()?)))
            .filter(|(a, b)| a <= b)
            .ok_or_else(|| {
                format!("spec.remediation.triggerIf.unhealthyInRange {range:?} is not a range such as \"[1-3]\"")
            })?;
        if unhealthy < low || unhealthy > high {
            return Err(format!(
                "{unhealthy} of {targets} machines are unhealthy, outside [{low}-{high}]: remediation is short-circuited"
            ));
        }
        return Ok(high - unhealthy);
    }
    let max = match trigger.and_then(|t| t.unhealthy_less_than_or_equal_to.as_ref()) {
        None => targets,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    format!("spec.remediation.triggerIf.unhealthyLessThanOrEqualTo {s:?} is neither a count nor a percentage")
                })?;
            // Rounded down, as Cluster API scales maxUnhealthy.
            i32::try_from(percent * i64::from(targets) / 100).unwrap_or(i32::MAX)
        }
    };
    if unhealthy > max {
        return Err(format!(
            "{unhealthy} of {targets} machines are unhealthy, more than the {max} allowed: remediation is short-circuited"
        ));
    }
    Ok(max - unhealthy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_api::provisioning::UnhealthyCondition;

    fn held(t: &str, s: &str, secs: u64) -> Held {
        Held {
            type_: t.into(),
            status: s.into(),
            for_: Duration::from_secs(secs),
        }
    }

    fn checks() -> MachineHealthChecks {
        MachineHealthChecks {
            node_startup_timeout_seconds: Some(60),
            unhealthy_node_conditions: vec![
                UnhealthyCondition {
                    type_: "Ready".into(),
                    status: "False".into(),
                    timeout_seconds: 30,
                },
                UnhealthyCondition {
                    type_: "Ready".into(),
                    status: "Unknown".into(),
                    timeout_seconds: 30,
                },
            ],
            unhealthy_machine_conditions: vec![UnhealthyCondition {
                type_: "Ready".into(),
                status: "False".into(),
                timeout_seconds: 300,
            }],
        }
    }

    #[test]
    fn verdicts_follow_the_rules_and_their_timeouts() {
        let c = checks();
        for (what, node, machine, want) in [
            (
                "a Ready node",
                NodeState::Conditions(vec![held("Ready", "True", 5)]),
                vec![],
                Verdict::Healthy(None),
            ),
            (
                "not ready for 10 of 30 s: look again in 20",
                NodeState::Conditions(vec![held("Ready", "False", 10)]),
                vec![],
                Verdict::Healthy(Some(Duration::from_secs(20))),
            ),
            (
                "not ready past the timeout",
                NodeState::Conditions(vec![held("Ready", "Unknown", 31)]),
                vec![],
                Verdict::Unhealthy(
                    "UnhealthyNode",
                    "node condition Ready=Unknown for more than 30s".into(),
                ),
            ),
            (
                "no node within the startup timeout",
                NodeState::NotYet(Duration::from_secs(61)),
                vec![],
                Verdict::Unhealthy(
                    "NodeStartupTimeout",
                    "the machine has had no node for more than 60s".into(),
                ),
            ),
            (
                "still starting",
                NodeState::NotYet(Duration::from_secs(50)),
                vec![],
                Verdict::Healthy(Some(Duration::from_secs(10))),
            ),
            (
                "node gone",
                NodeState::Gone,
                vec![],
                Verdict::Unhealthy("NodeNotFound", "the machine's node is gone".into()),
            ),
            (
                "cluster unreachable: no verdict",
                NodeState::Unknown,
                vec![],
                Verdict::Healthy(None),
            ),
            (
                "a machine condition past its timeout",
                NodeState::Conditions(vec![held("Ready", "True", 5)]),
                vec![held("Ready", "False", 301)],
                Verdict::Unhealthy(
                    "UnhealthyMachine",
                    "machine condition Ready=False for more than 300s".into(),
                ),
            ),
        ] {
            assert_eq!(judge(&c, &node, &machine), want, "{what}");
        }
        let off = MachineHealthChecks {
            node_startup_timeout_seconds: Some(0),
            ..checks()
        };
        assert_eq!(
            judge(&off, &NodeState::NotYet(Duration::from_secs(9999)), &[]),
            Verdict::Healthy(None)
        );
        let default = MachineHealthChecks {
            node_startup_timeout_seconds: None,
            ..checks()
        };
        assert_eq!(
            judge(&default, &NodeState::NotYet(Duration::from_secs(599)), &[]),
            Verdict::Healthy(Some(Duration::from_secs(1)))
        );
    }

    #[test]
    fn triggers_bound_remediation() {
        let at_most = |v: IntOrString| RemediationTrigger {
            unhealthy_less_than_or_equal_to: Some(v),
            unhealthy_in_range: None,
        };
        let range = |r: &str| RemediationTrigger {
            unhealthy_less_than_or_equal_to: None,
            unhealthy_in_range: Some(r.into()),
        };
        assert_eq!(remediations_allowed(None, 3, 3), Ok(0));
        assert_eq!(remediations_allowed(None, 3, 1), Ok(2));
        assert_eq!(
            remediations_allowed(Some(&at_most(IntOrString::Int(1))), 3, 1),
            Ok(0)
        );
        assert!(
            remediations_allowed(Some(&at_most(IntOrString::Int(1))), 3, 2)
                .is_err_and(|e| e.contains("more than the 1 allowed"))
        );
        assert_eq!(
            remediations_allowed(Some(&at_most(IntOrString::String("40%".into()))), 5, 1),
            Ok(1)
        );
        assert!(
            remediations_allowed(Some(&at_most(IntOrString::String("40%".into()))), 5, 3).is_err()
        );
        assert_eq!(remediations_allowed(Some(&range("[1-3]")), 5, 2), Ok(1));
        assert!(
            remediations_allowed(Some(&range("[2-3]")), 5, 1)
                .is_err_and(|e| e.contains("outside [2-3]"))
        );
        assert!(
            remediations_allowed(Some(&range("1-3")), 5, 1)
                .is_err_and(|e| e.contains("not a range"))
        );
    }
}
