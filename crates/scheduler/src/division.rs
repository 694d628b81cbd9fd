//! Replica division: the Webster/Sainte-Laguë dispenser and the Duplicated, StaticWeight,
//! DynamicWeight and Aggregated strategies with Steady and Fresh modes, exactly as Karmada ≥ 1.16
//! divides (reference §3.5). Pure arithmetic over names and numbers; it never filters or scores.
//!
//! Priorities are compared exactly in integers: party a beats b when
//! `v_a·(2·s_b+1) > v_b·(2·s_a+1)` (i128). Ties go to fewer current seats, then the name —
//! ascending, or descending when `fnv32a(binding uid)` is odd.

use std::{cmp::Ordering, collections::BinaryHeap};

use flotilla_api::{Cluster, names::fnv32a, policy::ClusterPreferences, work::TargetCluster};

use crate::selector::cluster_matches;

/// How ties between equal priorities are broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TieBreak {
    /// Fewer seats first, then name ascending (even or empty UID hash).
    NameAscending,
    /// Fewer seats first, then name descending (odd UID hash).
    NameDescending,
}

impl TieBreak {
    /// The tie-break of a binding UID.
    pub fn for_uid(uid: &str) -> Self {
        if !uid.is_empty() && fnv32a(uid.as_bytes()) % 2 == 1 {
            Self::NameDescending
        } else {
            Self::NameAscending
        }
    }
}

/// One party of a Webster allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Party<'a> {
    /// The cluster name.
    pub name: &'a str,
    /// Votes (weight); never negative.
    pub votes: i64,
    /// Seats held; starts at the initial seats.
    pub seats: i64,
}

struct Entry<'p, 'a> {
    party: &'p Party<'a>,
    index: usize,
    seats: i64,
    tie: TieBreak,
}

impl Entry<'_, '_> {
    /// `Greater` means this entry gets the next seat before `other`.
    fn compare(&self, other: &Self) -> Ordering {
        let lhs = i128::from(self.party.votes) * (2 * i128::from(other.seats) + 1);
        let rhs = i128::from(other.party.votes) * (2 * i128::from(self.seats) + 1);
        lhs.cmp(&rhs)
            .then_with(|| other.seats.cmp(&self.seats))
            .then_with(|| match self.tie {
                TieBreak::NameAscending => other.party.name.cmp(self.party.name),
                TieBreak::NameDescending => self.party.name.cmp(other.party.name),
            })
    }
}

impl PartialEq for Entry<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}
impl Eq for Entry<'_, '_> {}
impl PartialOrd for Entry<'_, '_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry<'_, '_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

/// Seats with priority above `V/(2x)` for every party, never below its current seats.
fn seats_above(parties: &[Party<'_>], total_votes: i128, x: i128) -> Vec<i64> {
    parties
        .iter()
        .map(|p| {
            let q = i128::from(p.votes) * 2 * x;
            let count = if q > 0 {
                ((q - 1) / total_votes + 1) / 2
            } else {
                0
            };
            i64::try_from(count).unwrap_or(i64::MAX).max(p.seats)
        })
        .collect()
}

/// Webster's sequential method: hands `new_seats` seats, one at a time, to the party with the
/// largest `votes/(2·seats+1)`; `seats` start at the initial seats. Parties are updated in place.
///
/// Large allocations are fast-forwarded exactly: every seat whose priority is strictly above a
/// threshold λ is awarded before any other seat whatever the tie-break, so when those seats do not
/// exceed the total they are handed out in one step (λ found by binary search), and only the
/// last seats go through the heap.
pub fn webster(new_seats: i64, parties: &mut [Party<'_>], tie: TieBreak) {
    if new_seats <= 0 || parties.is_empty() {
        return;
    }
    let mut remaining = new_seats;
    let total_votes: i128 = parties.iter().map(|p| i128::from(p.votes.max(0))).sum();
    let fast_forward_above = 4 * parties.len() as i64 + 64;
    if remaining > fast_forward_above && total_votes > 0 {
        let total: i128 =
            parties.iter().map(|p| i128::from(p.seats)).sum::<i128>() + i128::from(remaining);
        let (mut lo, mut hi) = (0i128, total);
        while lo < hi {
            let mid = (lo + hi + 1) / 2;
            let sum: i128 = seats_above(parties, total_votes, mid)
                .iter()
                .map(|s| i128::from(*s))
                .sum();
            if sum <= total { lo = mid } else { hi = mid - 1 }
        }
        if lo > 0 {
            let seats = seats_above(parties, total_votes, lo);
            for (party, seats) in parties.iter_mut().zip(seats) {
                remaining -= seats - party.seats;
                party.seats = seats;
            }
        }
    }
    let snapshot: Vec<Party<'_>> = parties.to_vec();
    let mut heap: BinaryHeap<Entry<'_, '_>> = snapshot
        .iter()
        .enumerate()
        .map(|(index, party)| Entry {
            party,
            index,
            seats: party.seats,
            tie,
        })
        .collect();
    for _ in 0..remaining {
        let Some(mut top) = heap.pop() else { break };
        top.seats += 1;
        heap.push(top);
    }
    for entry in heap {
        parties[entry.index].seats = entry.seats;
    }
}

/// Karmada's dispenser: `n` new seats by weight on top of `init`. When every weight is 0
/// nothing changes. Returns every party (weighted or initial), sorted by name.
pub fn dispense<'a>(
    n: i64,
    weights: &[(&'a str, i64)],
    init: &[(&'a str, i64)],
    tie: TieBreak,
) -> Vec<(&'a str, i64)> {
    let mut out = dispense_unsorted(n, weights, init, tie);
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// [`dispense`] without the final sort by name (strategies sort their own result).
fn dispense_unsorted<'a>(
    n: i64,
    weights: &[(&'a str, i64)],
    init: &[(&'a str, i64)],
    tie: TieBreak,
) -> Vec<(&'a str, i64)> {
    let mut parties: Vec<Party<'a>> = Vec::with_capacity(weights.len() + init.len());
    for (name, votes) in weights {
        parties.push(Party {
            name,
            votes: (*votes).max(0),
            seats: 0,
        });
    }
    for (name, seats) in init {
        match parties.iter_mut().find(|p| p.name == *name) {
            Some(p) => p.seats += *seats,
            None => parties.push(Party {
                name,
                votes: 0,
                seats: *seats,
            }),
        }
    }
    if weights.iter().map(|(_, w)| (*w).max(0)).sum::<i64>() > 0 {
        webster(n, &mut parties, tie);
    }
    parties.into_iter().map(|p| (p.name, p.seats)).collect()
}

/// How a workload's replicas are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Every cluster gets all replicas.
    Duplicated,
    /// Divided by static weights.
    StaticWeight,
    /// Divided by what each cluster can hold.
    DynamicWeight,
    /// Packed into as few clusters as capacity allows.
    Aggregated,
}

/// A selected cluster, in candidate order, with what division needs to know about it.
#[derive(Clone, Copy, Debug)]
pub struct Selected<'a> {
    /// The cluster name.
    pub name: &'a str,
    /// The Cluster (for static weight rules).
    pub cluster: &'a Cluster,
    /// The replicas the cluster can still take (estimate, without its previous replicas).
    pub allocatable: i64,
}

/// The inputs of one division.
#[derive(Clone, Copy, Debug)]
pub struct Division<'a> {
    /// How to split.
    pub strategy: Strategy,
    /// `spec.replicas`.
    pub replicas: i64,
    /// The previous result.
    pub previous: &'a [TargetCluster],
    /// Fresh (ignore history) or Steady.
    pub fresh: bool,
    /// The tie-break from the binding UID.
    pub tie: TieBreak,
    /// The weight preference of `Weighted` division.
    pub weights: Option<&'a ClusterPreferences>,
}

/// Divides replicas over the selected clusters. Zero-replica entries are removed; the result
/// is sorted by name. `Err` carries an "unschedulable" message.
pub fn assign<'a>(
    division: &Division<'_>,
    selected: &[Selected<'a>],
) -> Result<Vec<(&'a str, i64)>, String> {
    if selected.is_empty() {
        return Err("no clusters available to schedule".to_owned());
    }
    let mut out = match division.strategy {
        Strategy::Duplicated => selected
            .iter()
            .map(|s| (s.name, division.replicas))
            .collect(),
        Strategy::StaticWeight => static_weight(division, selected),
        Strategy::DynamicWeight | Strategy::Aggregated => dynamic(division, selected)?,
    };
    out.retain(|(_, r)| *r > 0);
    out.sort_by(|a, b| a.0.cmp(b.0));
    Ok(out)
}

fn static_weight<'a>(division: &Division<'_>, selected: &[Selected<'a>]) -> Vec<(&'a str, i64)> {
    let rules = division
        .weights
        .map(|w| w.static_weight_list.as_slice())
        .unwrap_or_default();
    // Rules that only name clusters (the common form) become one lookup table; the others are
    // matched cluster by cluster. Same result as matching every rule, in O(rules + clusters).
    let names_only = |r: &&flotilla_api::policy::StaticClusterWeight| {
        let t = &r.target_cluster;
        t.label_selector.is_none()
            && t.field_selector.is_none()
            && t.exclude.is_empty()
            && !t.cluster_names.is_empty()
    };
    let mut by_name: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for rule in rules.iter().filter(names_only) {
        for name in &rule.target_cluster.cluster_names {
            let w = by_name.entry(name.as_str()).or_insert(rule.weight);
            *w = (*w).max(rule.weight);
        }
    }
    let general: Vec<_> = rules.iter().filter(|r| !names_only(r)).collect();
    let mut weights: Vec<(&'a str, i64)> = selected
        .iter()
        .map(|s| {
            let weight = if division.weights.is_none() {
                1
            } else {
                let named = by_name.get(s.name).copied();
                let matched = general
                    .iter()
                    .filter(|r| cluster_matches(s.cluster, &r.target_cluster))
                    .map(|r| r.weight)
                    .max();
                named.max(matched).unwrap_or(0)
            };
            (s.name, weight.max(0))
        })
        .collect();
    if weights.iter().all(|(_, w)| *w == 0) {
        weights.iter_mut().for_each(|(_, w)| *w = 1);
    } else {
        weights.retain(|(_, w)| *w > 0);
    }
    dispense_unsorted(division.replicas, &weights, &[], division.tie)
}

fn dynamic<'a>(
    division: &Division<'_>,
    selected: &[Selected<'a>],
) -> Result<Vec<(&'a str, i64)>, String> {
    // `scheduled`: the previous replicas of clusters that are still selected, in candidate order.
    let scheduled: Vec<(&'a str, i64)> = selected
        .iter()
        .filter_map(|s| {
            let replicas: i64 = division
                .previous
                .iter()
                .filter(|t| t.name == s.name)
                .map(|t| i64::from(t.replicas))
                .sum();
            (replicas > 0).then_some((s.name, replicas))
        })
        .collect();
    let assigned: i64 = scheduled.iter().map(|(_, r)| r).sum();
    let by_value_desc =
        |list: &mut Vec<(&'a str, i64)>| list.sort_by_key(|entry| std::cmp::Reverse(entry.1));

    if division.fresh {
        let mut available: Vec<(&'a str, i64)> = selected
            .iter()
            .map(|s| {
                (
                    s.name,
                    s.allocatable
                        .saturating_add(scheduled_of(&scheduled, s.name)),
                )
            })
            .collect();
        by_value_desc(&mut available);
        return divide(division, division.replicas, available, &[]);
    }
    match assigned.cmp(&division.replicas) {
        Ordering::Equal => Ok(scheduled),
        Ordering::Greater => {
            let mut available = scheduled;
            by_value_desc(&mut available);
            divide(division, division.replicas, available, &[])
        }
        Ordering::Less => {
            let mut available: Vec<(&'a str, i64)> =
                selected.iter().map(|s| (s.name, s.allocatable)).collect();
            by_value_desc(&mut available);
            let added = divide(
                division,
                division.replicas - assigned,
                available,
                &scheduled,
            )?;
            // Only clusters that gained replicas need merging (keeps this linear in practice).
            let previous_len = scheduled.len();
            let mut merged = scheduled;
            for (name, replicas) in added.into_iter().filter(|(_, r)| *r > 0) {
                match merged[..previous_len].iter_mut().find(|(n, _)| *n == name) {
                    Some((_, r)) => *r += replicas,
                    None => merged.push((name, replicas)),
                }
            }
            Ok(merged)
        }
    }
}

fn scheduled_of(scheduled: &[(&str, i64)], name: &str) -> i64 {
    scheduled
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, r)| *r)
}

fn divide<'a>(
    division: &Division<'_>,
    target: i64,
    mut available: Vec<(&'a str, i64)>,
    prior: &[(&'a str, i64)],
) -> Result<Vec<(&'a str, i64)>, String> {
    let sum: i128 = available.iter().map(|(_, v)| i128::from(*v)).sum();
    if sum < i128::from(target) {
        return Err(format!(
            "Clusters available replicas {sum} are not enough to schedule."
        ));
    }
    if division.strategy == Strategy::Aggregated {
        // Clusters that already run replicas first (stable), then the rest.
        available.sort_by_key(|(name, _)| !prior.iter().any(|(n, r)| n == name && *r > 0));
        let mut acc: i128 = 0;
        let keep = available
            .iter()
            .position(|(_, v)| {
                acc += i128::from(*v);
                acc >= i128::from(target)
            })
            .map_or(available.len(), |i| i + 1);
        available.truncate(keep);
    }
    Ok(dispense_unsorted(target, &available, &[], division.tie))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// name, votes, seats, expected seats.
    type WebsterCase = (
        &'static str,
        Vec<(&'static str, i64)>,
        i64,
        Vec<(&'static str, i64)>,
    );

    fn webster_table(
        votes: &[(&'static str, i64)],
        seats: i64,
        tie: TieBreak,
    ) -> Vec<(&'static str, i64)> {
        dispense(seats, votes, &[], tie)
    }

    #[test]
    fn webster_worked_examples() {
        use TieBreak::NameAscending as Asc;
        let table: Vec<WebsterCase> = vec![
            (
                "230k votes over 8 seats",
                vec![("a", 100_000), ("b", 80_000), ("c", 30_000), ("d", 20_000)],
                8,
                vec![("a", 3), ("b", 3), ("c", 1), ("d", 1)],
            ),
            (
                "170:110:60 at 5",
                vec![("a", 170), ("b", 110), ("c", 60)],
                5,
                vec![("a", 2), ("b", 2), ("c", 1)],
            ),
            (
                "170:110:60 at 6",
                vec![("a", 170), ("b", 110), ("c", 60)],
                6,
                vec![("a", 3), ("b", 2), ("c", 1)],
            ),
            (
                "zero seats",
                vec![("a", 1), ("b", 2)],
                0,
                vec![("a", 0), ("b", 0)],
            ),
            (
                "3:2:1 at 12",
                vec![("a", 3), ("b", 2), ("c", 1)],
                12,
                vec![("a", 6), ("b", 4), ("c", 2)],
            ),
            (
                "3:2:1 at 13",
                vec![("a", 3), ("b", 2), ("c", 1)],
                13,
                vec![("a", 7), ("b", 4), ("c", 2)],
            ),
            (
                "3:2:1 at 14",
                vec![("a", 3), ("b", 2), ("c", 1)],
                14,
                vec![("a", 7), ("b", 5), ("c", 2)],
            ),
            (
                "1:1 at 3",
                vec![("a", 1), ("b", 1)],
                3,
                vec![("a", 2), ("b", 1)],
            ),
            (
                "2:1:1:1 at 7",
                vec![("a", 2), ("b", 1), ("c", 1), ("d", 1)],
                7,
                vec![("a", 3), ("b", 2), ("c", 1), ("d", 1)],
            ),
            (
                "2:1:1:1 at 8",
                vec![("a", 2), ("b", 1), ("c", 1), ("d", 1)],
                8,
                vec![("a", 3), ("b", 2), ("c", 2), ("d", 1)],
            ),
            (
                "2:1:1:1 at 9",
                vec![("a", 2), ("b", 1), ("c", 1), ("d", 1)],
                9,
                vec![("a", 3), ("b", 2), ("c", 2), ("d", 2)],
            ),
            (
                "1:1 at 0",
                vec![("a", 1), ("b", 1)],
                0,
                vec![("a", 0), ("b", 0)],
            ),
            (
                "all zero weights change nothing",
                vec![("a", 0), ("b", 0)],
                4,
                vec![("a", 0), ("b", 0)],
            ),
        ];
        for (name, votes, seats, want) in table {
            assert_eq!(webster_table(&votes, seats, Asc), want, "{name}");
        }
    }

    #[test]
    fn dispenser_counts_initial_seats() {
        let got = dispense(
            2,
            &[("A", 1), ("B", 2), ("C", 3)],
            &[("A", 1), ("B", 2), ("C", 3)],
            TieBreak::NameAscending,
        );
        assert_eq!(got, vec![("A", 1), ("B", 3), ("C", 4)]);
        // A party with only initial seats keeps them and gets nothing new.
        let got = dispense(3, &[("A", 1)], &[("Z", 5)], TieBreak::NameAscending);
        assert_eq!(got, vec![("A", 3), ("Z", 5)]);
    }

    #[test]
    fn uid_parity_flips_the_name_tie_break() {
        use flotilla_testing::fixtures::{EVEN_UID, ODD_UID};
        assert_eq!(TieBreak::for_uid(EVEN_UID), TieBreak::NameAscending);
        assert_eq!(TieBreak::for_uid(ODD_UID), TieBreak::NameDescending);
        assert_eq!(TieBreak::for_uid(""), TieBreak::NameAscending);
        let even = dispense(5, &[("A", 1), ("B", 1)], &[], TieBreak::for_uid(EVEN_UID));
        let odd = dispense(5, &[("A", 1), ("B", 1)], &[], TieBreak::for_uid(ODD_UID));
        assert_eq!(even, vec![("A", 3), ("B", 2)]);
        assert_eq!(odd, vec![("A", 2), ("B", 3)]);
    }

    /// The naive one-seat-at-a-time method, to check the fast-forward against.
    fn naive(new_seats: i64, parties: &mut [Party<'_>], tie: TieBreak) {
        for _ in 0..new_seats {
            let snapshot = parties.to_vec();
            let best = (0..snapshot.len())
                .max_by(|a, b| {
                    let ea = Entry {
                        party: &snapshot[*a],
                        index: *a,
                        seats: snapshot[*a].seats,
                        tie,
                    };
                    let eb = Entry {
                        party: &snapshot[*b],
                        index: *b,
                        seats: snapshot[*b].seats,
                        tie,
                    };
                    ea.compare(&eb)
                })
                .expect("parties");
            parties[best].seats += 1;
        }
    }

    #[test]
    fn fast_forward_gives_exactly_the_sequential_result() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for case in 0..300 {
            let n = 1 + next(names.len() as u64) as usize;
            let tie = if case % 2 == 0 {
                TieBreak::NameAscending
            } else {
                TieBreak::NameDescending
            };
            let mut fast: Vec<Party<'_>> = names[..n]
                .iter()
                .map(|name| Party {
                    name,
                    votes: next(50) as i64 + i64::from(case % 3 == 0),
                    seats: next(4) as i64 * (case % 2) as i64,
                })
                .collect();
            let mut slow = fast.clone();
            let seats = 60 + next(400) as i64;
            webster(seats, &mut fast, tie);
            naive(seats, &mut slow, tie);
            assert_eq!(fast, slow, "case {case}: {seats} seats");
        }
    }

    #[test]
    fn huge_replica_counts_are_fast_and_proportional() {
        let got = dispense(
            2_000_000_000,
            &[("a", 3), ("b", 1)],
            &[],
            TieBreak::NameAscending,
        );
        assert_eq!(got, vec![("a", 1_500_000_000), ("b", 500_000_000)]);
    }
}
