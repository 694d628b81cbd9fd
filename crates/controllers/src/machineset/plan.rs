//! What one MachineSet pass does, as plain arithmetic over what it owns: how many machines to
//! create from the current template and which to delete, honouring the rollout limits
//! (`maxSurge`, `maxUnavailable`, as a Deployment rolls its ReplicaSets) or `OnDelete`, the
//! remediation of machines their health check failed, and the scale-down order. No IO.

use flotilla_api::provisioning::{
    MachineDeletionOrder, MachineRolloutStrategy, MachineRolloutStrategyType,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// One machine the set owns, as the plan needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owned {
    /// The Machine's name.
    pub name: String,
    /// Its creation time (RFC 3339, so it sorts as text).
    pub created: String,
    /// Made from the current template.
    pub up_to_date: bool,
    /// Its `Ready` condition is True.
    pub ready: bool,
    /// Being deleted already.
    pub deleting: bool,
    /// Its health check failed and its owner must replace it (`OwnerRemediated=False`).
    pub remediate: bool,
    /// Marked for deletion first (the `cluster.flotilla.io/delete-machine` annotation).
    pub marked: bool,
}

/// The rollout limits of a set, resolved against its replica count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The desired number of machines.
    pub replicas: i32,
    /// How many machines above `replicas` may exist during a rollout.
    pub max_surge: i32,
    /// How many machines below `replicas` may be unavailable during a rollout.
    pub max_unavailable: i32,
    /// Replace machines only when someone deletes them.
    pub on_delete: bool,
    /// Which machines go first when scaling down.
    pub order: MachineDeletionOrder,
}

/// What to do in this pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Machines to create from the current template.
    pub create: i32,
    /// Machines to delete, by name, in order.
    pub delete: Vec<String>,
}

/// A percentage or count against `total`: percentages round up for the surge and down for
/// unavailability, as Kubernetes' rollouts do.
fn scaled(
    value: Option<&IntOrString>,
    total: i32,
    default: i32,
    round_up: bool,
) -> Result<i32, String> {
    match value {
        None => Ok(default),
        Some(IntOrString::Int(n)) if *n >= 0 => Ok(*n),
        Some(IntOrString::Int(n)) => Err(format!("must not be negative, got {n}")),
        Some(IntOrString::String(s)) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    format!("{s:?} is neither a count nor a percentage such as \"25%\"")
                })?;
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99) / 100
            } else {
                product / 100
            };
            i32::try_from(value).map_err(|_| format!("{s} of {total} is too large"))
        }
    }
}

/// The limits of a set with `replicas` desired machines and this strategy. `maxSurge`
/// defaults to 1 and `maxUnavailable` to 0; both 0 could never make progress.
///
/// # Errors
///
/// A message for the user when a limit is malformed or both are 0.
pub fn limits(
    replicas: i32,
    strategy: Option<&MachineRolloutStrategy>,
    order: MachineDeletionOrder,
) -> Result<Limits, String> {
    let on_delete = strategy.is_some_and(|s| s.type_ == MachineRolloutStrategyType::OnDelete);
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let max_surge = scaled(
        rolling.and_then(|r| r.max_surge.as_ref()),
        replicas,
        1,
        true,
    )
    .map_err(|e| format!("spec.strategy.rollingUpdate.maxSurge {e}"))?;
    let max_unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        0,
        false,
    )
    .map_err(|e| format!("spec.strategy.rollingUpdate.maxUnavailable {e}"))?;
    if !on_delete && max_surge == 0 && max_unavailable == 0 {
        return Err(
            "spec.strategy.rollingUpdate: maxSurge and maxUnavailable may not both be 0".into(),
        );
    }
    Ok(Limits {
        replicas,
        max_surge,
        max_unavailable,
        on_delete,
        order,
    })
}

/// `machines` in the order they should go: marked ones, then unhealthy (not ready) ones, then
/// by the set's order (Random: a stable shuffle by name).
fn deletion_order<'a>(machines: &[&'a Owned], order: MachineDeletionOrder) -> Vec<&'a Owned> {
    let mut sorted = machines.to_vec();
    sorted.sort_by(|a, b| {
        let first = (!a.marked, a.ready).cmp(&(!b.marked, b.ready));
        first
            .then_with(|| match order {
                MachineDeletionOrder::Newest => b.created.cmp(&a.created),
                MachineDeletionOrder::Oldest => a.created.cmp(&b.created),
                MachineDeletionOrder::Random => flotilla_api::names::fnv32a(a.name.as_bytes())
                    .cmp(&flotilla_api::names::fnv32a(b.name.as_bytes())),
            })
            .then_with(|| a.name.cmp(&b.name))
    });
    sorted
}

fn take(out: &mut Vec<String>, candidates: &[&Owned], order: MachineDeletionOrder, n: i32) {
    let n = usize::try_from(n).unwrap_or(0);
    out.extend(
        deletion_order(candidates, order)
            .into_iter()
            .take(n)
            .map(|m| m.name.clone()),
    );
}

fn count(machines: &[&Owned]) -> i32 {
    i32::try_from(machines.len()).unwrap_or(i32::MAX)
}

/// The pass for a set with these limits owning these machines.
pub fn plan(limits: &Limits, machines: &[Owned]) -> Plan {
    let mut out = Plan::default();
    // Machines their health check failed are replaced first, whatever the strategy.
    out.delete.extend(
        machines
            .iter()
            .filter(|m| !m.deleting && m.remediate)
            .map(|m| m.name.clone()),
    );
    let live: Vec<&Owned> = machines
        .iter()
        .filter(|m| !m.deleting && !m.remediate)
        .collect();
    let going = count(&machines.iter().collect::<Vec<_>>()) - count(&live);
    let (new, old): (Vec<&Owned>, Vec<&Owned>) = live.iter().partition(|m| m.up_to_date);
    let desired = limits.replicas.max(0);
    if limits.on_delete {
        let excess = count(&live) - desired;
        if excess > 0 {
            // Old machines go first: that is the only way OnDelete moves a set forward.
            let mut ordered = deletion_order(&old, limits.order);
            ordered.extend(deletion_order(&new, limits.order));
            out.delete.extend(
                ordered
                    .into_iter()
                    .take(excess as usize)
                    .map(|m| m.name.clone()),
            );
        } else {
            out.create = -excess;
        }
        return out;
    }
    // New machines beyond the desired count (the set was scaled down).
    let mut new = new;
    if count(&new) > desired {
        let surplus: Vec<String> = deletion_order(&new, limits.order)
            .into_iter()
            .take((count(&new) - desired) as usize)
            .map(|m| m.name.clone())
            .collect();
        new.retain(|m| !surplus.contains(&m.name));
        out.delete.extend(surplus);
    }
    let new_count = count(&new);
    // Scale up: no more machines in all (being deleted included) than replicas + maxSurge.
    let room = desired + limits.max_surge - (count(&live) + going);
    out.create = (desired - new_count).min(room).max(0);
    if old.is_empty() {
        return out;
    }
    // Scale down old machines as a Deployment scales down old ReplicaSets: keep
    // replicas - maxUnavailable available, counting new machines that are not ready yet as
    // unavailable.
    let min_available = desired - limits.max_unavailable;
    let new_unready = count(&new.iter().filter(|m| !m.ready).copied().collect::<Vec<_>>());
    let all = new_count + count(&old);
    let mut budget = all - min_available - new_unready;
    if budget <= 0 {
        return out;
    }
    // Old machines that are not ready cost no availability.
    let unready: Vec<&Owned> = old.iter().filter(|m| !m.ready).copied().collect();
    let n = budget.min(count(&unready));
    take(&mut out.delete, &unready, limits.order, n);
    budget -= n;
    let ready_old: Vec<&Owned> = old.iter().filter(|m| m.ready).copied().collect();
    let available = count(
        &new.iter()
            .chain(old.iter())
            .filter(|m| m.ready)
            .copied()
            .collect::<Vec<_>>(),
    );
    let n = budget.min(available - min_available).min(count(&ready_old));
    if n > 0 {
        take(&mut out.delete, &ready_old, limits.order, n);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_api::provisioning::MachineRollingUpdate;

    fn m(name: &str, up_to_date: bool, ready: bool) -> Owned {
        Owned {
            name: name.into(),
            created: format!("2026-01-01T00:00:0{}Z", name.len() % 10),
            up_to_date,
            ready,
            ..Owned::default()
        }
    }

    fn rolling(
        surge: Option<IntOrString>,
        unavailable: Option<IntOrString>,
    ) -> MachineRolloutStrategy {
        MachineRolloutStrategy {
            type_: MachineRolloutStrategyType::RollingUpdate,
            rolling_update: Some(MachineRollingUpdate {
                max_surge: surge,
                max_unavailable: unavailable,
            }),
        }
    }

    #[test]
    fn limits_resolve_counts_and_percentages() {
        let pct = |s: &str| Some(IntOrString::String(s.into()));
        let int = |n: i32| Some(IntOrString::Int(n));
        let random = MachineDeletionOrder::Random;
        for (replicas, strategy, want) in [
            (3, None, Ok((1, 0))),
            (10, Some(rolling(pct("25%"), pct("25%"))), Ok((3, 2))),
            (3, Some(rolling(int(0), int(1))), Ok((0, 1))),
            (4, Some(rolling(pct("50%"), None)), Ok((2, 0))),
            (
                3,
                Some(rolling(int(0), int(0))),
                Err("spec.strategy.rollingUpdate: maxSurge and maxUnavailable may not both be 0".to_string()),
            ),
            (
                3,
                Some(rolling(pct("lots"), None)),
                Err("spec.strategy.rollingUpdate.maxSurge \"lots\" is neither a count nor a percentage such as \"25%\"".to_string()),
            ),
            (
                3,
                Some(rolling(int(-1), None)),
                Err("spec.strategy.rollingUpdate.maxSurge must not be negative, got -1".to_string()),
            ),
        ] {
            let got = limits(replicas, strategy.as_ref(), random)
                .map(|l| (l.max_surge, l.max_unavailable));
            assert_eq!(got, want, "{replicas} {strategy:?}");
        }
        let on_delete = MachineRolloutStrategy {
            type_: MachineRolloutStrategyType::OnDelete,
            rolling_update: Some(MachineRollingUpdate {
                max_surge: int(0),
                max_unavailable: int(0),
            }),
        };
        assert!(limits(3, Some(&on_delete), random).is_ok_and(|l| l.on_delete));
    }

    fn lim(replicas: i32, max_surge: i32, max_unavailable: i32) -> Limits {
        Limits {
            replicas,
            max_surge,
            max_unavailable,
            on_delete: false,
            order: MachineDeletionOrder::Oldest,
        }
    }

    #[test]
    fn rolling_updates_step_within_surge_and_unavailability() {
        let (old, new) = (false, true);
        for (what, limits, machines, want_create, want_delete) in [
            (
                "a new set creates every machine",
                lim(3, 1, 0),
                vec![],
                3,
                vec![],
            ),
            (
                "surge 1: one new machine first, no old one deleted yet",
                lim(3, 1, 0),
                vec![m("a", old, true), m("bb", old, true), m("ccc", old, true)],
                1,
                vec![],
            ),
            (
                "the new machine is not ready: nothing more",
                lim(3, 1, 0),
                vec![
                    m("a", old, true),
                    m("bb", old, true),
                    m("ccc", old, true),
                    m("n1", new, false),
                ],
                0,
                vec![],
            ),
            (
                "the new machine is ready: the oldest old one goes",
                lim(3, 1, 0),
                vec![
                    m("a", old, true),
                    m("bb", old, true),
                    m("ccc", old, true),
                    m("n1", new, true),
                ],
                0,
                vec!["a"],
            ),
            (
                "a deleting machine still counts against the surge",
                lim(3, 1, 0),
                vec![
                    Owned {
                        deleting: true,
                        ..m("a", old, true)
                    },
                    m("bb", old, true),
                    m("ccc", old, true),
                    m("n1", new, true),
                ],
                0,
                vec![],
            ),
            (
                "maxUnavailable 1 without surge: one old goes first",
                lim(3, 0, 1),
                vec![m("a", old, true), m("bb", old, true), m("ccc", old, true)],
                0,
                vec!["a"],
            ),
            (
                "unready old machines go before ready ones, costing no availability",
                lim(3, 1, 0),
                vec![
                    m("a", old, true),
                    m("bb", old, false),
                    m("ccc", old, true),
                    m("n1", new, true),
                ],
                0,
                vec!["bb"],
            ),
            (
                "scaled down: surplus new machines go, oldest first",
                lim(1, 1, 0),
                vec![m("a", new, true), m("bb", new, true), m("ccc", new, true)],
                0,
                vec!["a", "bb"],
            ),
            (
                "rollout done: nothing to do",
                lim(2, 1, 0),
                vec![m("a", new, true), m("bb", new, true)],
                0,
                vec![],
            ),
            (
                "a machine to remediate is deleted at once and replaced within the surge",
                lim(2, 1, 0),
                vec![
                    Owned {
                        remediate: true,
                        ..m("a", new, false)
                    },
                    m("bb", new, true),
                ],
                1,
                vec!["a"],
            ),
        ] {
            let got = plan(&limits, &machines);
            assert_eq!(
                (got.create, got.delete),
                (
                    want_create,
                    want_delete
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                ),
                "{what}"
            );
        }
    }

    #[test]
    fn a_rollout_converges_and_never_breaks_its_limits() {
        // Simulate passes: created machines become ready the pass after, deleted ones vanish.
        for (replicas, surge, unavailable) in
            [(3, 1, 0), (3, 0, 1), (5, 2, 1), (1, 1, 0), (4, 3, 3)]
        {
            let limits = lim(replicas, surge, unavailable);
            let mut machines: Vec<Owned> = (0..replicas)
                .map(|i| m(&format!("old{i}"), false, true))
                .collect();
            let mut next = 0;
            for pass in 0.. {
                assert!(pass < 50, "{limits:?} did not converge");
                for machine in &mut machines {
                    machine.ready = true;
                }
                let p = plan(&limits, &machines);
                machines.retain(|m| !p.delete.contains(&m.name));
                for _ in 0..p.create {
                    next += 1;
                    machines.push(m(&format!("new{next}"), true, false));
                }
                let total = i32::try_from(machines.len()).unwrap_or_default();
                let ready =
                    i32::try_from(machines.iter().filter(|m| m.ready).count()).unwrap_or_default();
                assert!(total <= replicas + surge, "{limits:?}: {total} machines");
                assert!(ready >= replicas - unavailable, "{limits:?}: {ready} ready");
                if p == Plan::default() {
                    break;
                }
            }
            assert_eq!(machines.len(), replicas as usize, "{limits:?}");
            assert!(machines.iter().all(|m| m.up_to_date), "{limits:?}");
        }
    }

    #[test]
    fn scale_down_order_puts_marked_and_unhealthy_machines_first() {
        let machines = [
            Owned {
                created: "2026-01-01T00:00:01Z".into(),
                ..m("a", true, true)
            },
            Owned {
                created: "2026-01-01T00:00:02Z".into(),
                ..m("b", true, true)
            },
            Owned {
                created: "2026-01-01T00:00:03Z".into(),
                ..m("c", true, false)
            },
            Owned {
                created: "2026-01-01T00:00:04Z".into(),
                marked: true,
                ..m("d", true, true)
            },
            Owned {
                created: "2026-01-01T00:00:05Z".into(),
                ..m("e", true, true)
            },
        ];
        for (order, want) in [
            (MachineDeletionOrder::Oldest, vec!["d", "c", "a"]),
            (MachineDeletionOrder::Newest, vec!["d", "c", "e"]),
        ] {
            let limits = Limits {
                order,
                ..lim(2, 1, 0)
            };
            assert_eq!(plan(&limits, &machines).delete, want, "{order:?}");
        }
        let random = Limits {
            order: MachineDeletionOrder::Random,
            ..lim(2, 1, 0)
        };
        let got = plan(&random, &machines).delete;
        assert_eq!(&got[..2], ["d", "c"]);
        assert_eq!(got.len(), 3);
        assert_eq!(got, plan(&random, &machines).delete, "stable");
    }

    #[test]
    fn on_delete_keeps_old_machines_and_only_fills_or_trims_the_count() {
        let limits = Limits {
            on_delete: true,
            ..lim(3, 0, 0)
        };
        let old = [
            m("a", false, true),
            m("bb", false, true),
            m("ccc", false, true),
        ];
        assert_eq!(plan(&limits, &old), Plan::default());
        assert_eq!(plan(&limits, &old[..2]).create, 1);
        let scaled = Limits {
            replicas: 2,
            ..limits
        };
        let mixed = [
            m("a", false, true),
            m("n", true, true),
            m("ccc", false, true),
        ];
        assert_eq!(plan(&scaled, &mixed).delete, ["a"]);
    }
}
