//! The taint decision of the cluster controller: which `NoSchedule` taints a Cluster's `Ready`
//! condition calls for, as Karmada's `taintClusterByCondition` decides. Owns only the taints
//! with a key from [`flotilla_api::keys::taints`] and effect `NoSchedule`; every other taint —
//! a user's, or one of our keys with another effect — is returned untouched. Pure: time comes
//! in as an argument; never does IO.

use flotilla_api::{
    conditions::{FALSE, TRUE, UNKNOWN},
    keys::taints::{NOT_READY, UNREACHABLE},
};
use k8s_openapi::{
    api::core::v1::Taint,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
};

/// The effect of the taints this controller manages.
pub const NO_SCHEDULE: &str = "NoSchedule";

/// Whether `taint` is the managed taint with `key` (Karmada's `MatchTaint`: key and effect;
/// the value and `timeAdded` do not matter).
fn is_managed(taint: &Taint, key: &str) -> bool {
    taint.key == key && taint.effect == NO_SCHEDULE
}

/// The taints a Cluster should carry given its `Ready` condition, or `None` when `current`
/// is already right (so nothing is written).
///
/// - `Ready` False: `cluster.flotilla.io/not-ready:NoSchedule`, no `unreachable`.
/// - `Ready` Unknown: `cluster.flotilla.io/unreachable:NoSchedule`, no `not-ready`.
/// - `Ready` True: neither.
/// - No `Ready` condition (or a status that is none of the three): no change. A new cluster
///   has none of these taints, so it is not tainted until its health is known; as in Karmada.
///
/// Taints that stay keep their place, value and `timeAdded`; a taint that is added is appended
/// with `timeAdded: now`, so the spec changes only when the health does.
pub fn desired_taints(
    current: &[Taint],
    ready: Option<&Condition>,
    now: Time,
) -> Option<Vec<Taint>> {
    let (add, remove): (Option<&str>, &[&str]) = match ready.map(|c| c.status.as_str()) {
        Some(FALSE) => (Some(NOT_READY), &[UNREACHABLE]),
        Some(UNKNOWN) => (Some(UNREACHABLE), &[NOT_READY]),
        Some(TRUE) => (None, &[NOT_READY, UNREACHABLE]),
        _ => return None,
    };
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !remove.iter().any(|key| is_managed(t, key)))
        .cloned()
        .collect();
    if let Some(key) = add
        && !next.iter().any(|t| is_managed(t, key))
    {
        next.push(Taint {
            key: key.to_owned(),
            value: None,
            effect: NO_SCHEDULE.to_owned(),
            time_added: Some(now),
        });
    }
    (next != current).then_some(next)
}

#[cfg(test)]
mod tests {
    use flotilla_api::conditions::{READY, reasons};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap_or_default())
    }

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.to_owned(),
            value: None,
            effect: effect.to_owned(),
            time_added: added.map(at),
        }
    }

    fn ready(status: &str) -> Condition {
        let mut condition =
            flotilla_api::conditions::new(READY, true, reasons::CLUSTER_READY, "", None);
        condition.status = status.to_owned();
        condition
    }

    const NOW: i64 = 100;

    #[test]
    fn check_desired_taints() {
        let user = taint("example.com/gpu", "NoSchedule", None);
        let user_prefer = taint("dedicated", "PreferNoSchedule", Some(5));
        let not_ready_old = taint(NOT_READY, NO_SCHEDULE, Some(10));
        let unreachable_old = taint(UNREACHABLE, NO_SCHEDULE, Some(10));
        let not_ready_now = taint(NOT_READY, NO_SCHEDULE, Some(NOW));
        let unreachable_now = taint(UNREACHABLE, NO_SCHEDULE, Some(NOW));
        let not_ready_execute = taint(NOT_READY, "NoExecute", Some(1));
        let mut not_ready_valued = not_ready_old.clone();
        not_ready_valued.value = Some("set-by-hand".to_owned());

        #[allow(clippy::type_complexity)]
        let table: Vec<(&str, Vec<Taint>, Option<&str>, Option<Vec<Taint>>)> = vec![
            ("no condition, no taints", vec![], None, None),
            (
                "no condition leaves even our taints alone",
                vec![not_ready_old.clone()],
                None,
                None,
            ),
            (
                "an unknown status value changes nothing",
                vec![],
                Some("Maybe"),
                None,
            ),
            (
                "False adds not-ready",
                vec![],
                Some(FALSE),
                Some(vec![not_ready_now.clone()]),
            ),
            (
                "False appends after user taints",
                vec![user.clone(), user_prefer.clone()],
                Some(FALSE),
                Some(vec![
                    user.clone(),
                    user_prefer.clone(),
                    not_ready_now.clone(),
                ]),
            ),
            (
                "False keeps an existing not-ready taint and its timeAdded",
                vec![user.clone(), not_ready_old.clone()],
                Some(FALSE),
                None,
            ),
            (
                "a not-ready taint with a value is still ours",
                vec![not_ready_valued.clone()],
                Some(FALSE),
                None,
            ),
            (
                "False swaps unreachable for not-ready",
                vec![unreachable_old.clone(), user.clone()],
                Some(FALSE),
                Some(vec![user.clone(), not_ready_now.clone()]),
            ),
            (
                "Unknown adds unreachable",
                vec![],
                Some(UNKNOWN),
                Some(vec![unreachable_now.clone()]),
            ),
            (
                "Unknown swaps not-ready for unreachable",
                vec![user.clone(), not_ready_old.clone()],
                Some(UNKNOWN),
                Some(vec![user.clone(), unreachable_now.clone()]),
            ),
            (
                "Unknown keeps an existing unreachable taint",
                vec![unreachable_old.clone()],
                Some(UNKNOWN),
                None,
            ),
            (
                "True removes both and keeps user taints in order",
                vec![
                    user_prefer.clone(),
                    not_ready_old.clone(),
                    user.clone(),
                    unreachable_old.clone(),
                ],
                Some(TRUE),
                Some(vec![user_prefer.clone(), user.clone()]),
            ),
            (
                "True with only user taints changes nothing",
                vec![user.clone()],
                Some(TRUE),
                None,
            ),
            (
                "True leaves our key with another effect alone",
                vec![not_ready_execute.clone()],
                Some(TRUE),
                None,
            ),
            (
                "False adds NoSchedule beside a user's NoExecute of the same key",
                vec![not_ready_execute.clone()],
                Some(FALSE),
                Some(vec![not_ready_execute.clone(), not_ready_now.clone()]),
            ),
        ];
        for (name, current, status, want) in table {
            let condition = status.map(ready);
            let got = desired_taints(&current, condition.as_ref(), at(NOW));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn applying_the_decision_twice_changes_nothing() {
        for status in [FALSE, UNKNOWN, TRUE] {
            let start = vec![
                taint(NOT_READY, NO_SCHEDULE, Some(1)),
                taint("u", "NoExecute", None),
            ];
            let condition = ready(status);
            let once = desired_taints(&start, Some(&condition), at(NOW)).unwrap_or(start);
            assert_eq!(
                desired_taints(&once, Some(&condition), at(NOW + 50)),
                None,
                "{status}"
            );
        }
    }
}
