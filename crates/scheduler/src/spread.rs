//! Cluster selection under spread constraints: by cluster alone (Karmada's algorithm), and by
//! region, zone, provider or label value with minGroups/maxGroups (Karmada's region algorithm,
//! generalised to any grouping). Works on candidates already filtered, scored and ordered; never
//! divides replicas.
//!
//! # Group selection (region, zone, provider, label)
//!
//! Karmada implements only region (+cluster). Flotilla runs the same algorithm over any
//! grouping key:
//! 1. group the candidates by key (a label group is the label's value; a cluster spanning
//!    several zones belongs to each of their groups, and cluster counts of a combination count
//!    each cluster once). Clusters without the key
//!    never get here: the SpreadConstraint filter removed them;
//! 2. fail when there are fewer groups than the group constraint's minGroups;
//! 3. score every group: Duplicated `1000·#fit + avg score of fit` (fit = clusters that can hold
//!    all replicas); Divided `t = ⌈replicas/minGroups⌉`, `k = max(cluster minGroups, group
//!    minGroups)`, take clusters in order until ≥ k are taken and Σavailable ≥ t, score
//!    `1000·t + Σscore/#taken`, or `1000·Σavailable + Σscore/#all` when the group cannot reach t;
//! 4. order groups by (cluster count asc, score desc, key asc) — the DFS order;
//! 5. search as Karmada's `selectGroups` does: depth-first in that order, a path of groups is
//!    feasible when it has [minGroups, maxGroups] groups (maxGroups 0 = all) and holds at least
//!    the cluster constraint's minGroups clusters; a feasible path is recorded and not extended.
//!    Each recorded path lists its groups by (score desc, key asc). Paths are ranked by (Σscore
//!    desc, cluster count desc, discovery order); the first is chosen, and scanning down the
//!    ranking the choice switches to any path that is a strict prefix of it (fewer groups win).
//!    Up to [`EXHAUSTIVE_LIMIT`] candidate combinations this is exact; beyond that the choice is
//!    built greedily (top groups by score, groups swapped for larger ones until the cluster
//!    minimum is met, then the shortest feasible prefix);
//! 6. the chosen groups keep that listing order;
//! 7. take the best cluster of every chosen group, then fill up to the cluster constraint's
//!    maxGroups (0 = every cluster of the chosen groups) with the remaining clusters of the
//!    chosen groups in (score desc, available desc, name asc) order.
//!
//! Several non-cluster constraints at once (say region and zone) are applied hierarchically,
//! coarsest first (provider, region, zone, label): each level chooses its groups among the
//! clusters of the groups chosen above it, and only the last level picks clusters. The same field
//! or label twice is rejected as unsupported.

use std::collections::BTreeMap;

use flotilla_api::{
    Cluster,
    policy::{SpreadByField, SpreadConstraint},
};

use crate::snapshot::ClusterInfo;

/// Above this many combinations, group selection switches from exhaustive search to greedy.
pub const EXHAUSTIVE_LIMIT: u64 = 20_000;

/// A candidate cluster: filtered, scored, and ordered by (score desc, available desc, name asc).
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The cluster.
    pub info: &'a ClusterInfo,
    /// The cluster's score: the weighted sum of the registry's score plugins, by default
    /// Karmada's `ClusterScore` (ClusterLocality 0/100 + ClusterAffinity 0). It is the first
    /// key of the candidate order and the only score group scores and group ranking read;
    /// capacity enters through `available`, never through the score.
    pub score: i64,
    /// What the cluster can still take (estimate only).
    pub allocatable: i64,
    /// `allocatable` plus the replicas the previous result gave it.
    pub available: i64,
}

/// How selection treats capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Return every candidate; spread constraints do not apply (static weights).
    Everything,
    /// Capacity does not matter (Duplicated).
    IgnoreResources,
    /// The selected clusters must be able to hold this many replicas.
    Replicas(i64),
}

/// Why selection failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// The constraints cannot be met with these candidates.
    Unschedulable(String),
    /// The constraints are not supported.
    Unsupported(String),
}

/// The sort order of candidates: score desc, available desc, name asc (the snapshot index,
/// which follows the name, so only integers are compared).
pub fn order(a: &Candidate<'_>, b: &Candidate<'_>) -> std::cmp::Ordering {
    b.score
        .cmp(&a.score)
        .then(b.available.cmp(&a.available))
        .then(a.info.index.cmp(&b.info.index))
}

/// Sorts candidates by [`order`]. Keys are unique (the index is), so an unstable sort is
/// deterministic; keys are computed once, without chasing the cluster pointer per comparison.
pub fn sort(candidates: &mut [Candidate<'_>]) {
    let mut keyed: Vec<(i64, i64, usize, Candidate<'_>)> = candidates
        .iter()
        .map(|c| (-c.score, -c.available, c.info.index, *c))
        .collect();
    keyed.sort_unstable_by_key(|k| (k.0, k.1, k.2));
    for (slot, (_, _, _, c)) in candidates.iter_mut().zip(keyed) {
        *slot = c;
    }
}

/// Appends `member` to group `id`; ids come from the candidates' own snapshot, so a miss
/// cannot happen, and is ignored if it does.
fn push_at(groups: &mut [Vec<usize>], id: u32, member: usize) {
    if let Some(group) = groups.get_mut(id as usize) {
        group.push(member);
    }
}

/// Calls `f` with every group a cluster belongs to: its region, provider or label value, or
/// every zone it spans (a multi-zone cluster is in several zone groups). Returns how many.
fn for_each_group_key<'c>(
    cluster: &'c Cluster,
    constraint: &SpreadConstraint,
    mut f: impl FnMut(&'c str),
) -> usize {
    let single = match constraint.effective_field() {
        Some(SpreadByField::Zone) => {
            let mut n = 0;
            for (i, zone) in cluster.zones().enumerate() {
                if !zone.is_empty() && !cluster.zones().take(i).any(|earlier| earlier == zone) {
                    f(zone);
                    n += 1;
                }
            }
            return n;
        }
        Some(SpreadByField::Region) => cluster.spec.region.as_deref(),
        Some(SpreadByField::Provider) => cluster.spec.provider.as_deref(),
        Some(SpreadByField::Cluster) => cluster.metadata.name.as_deref(),
        None => constraint
            .spread_by_label
            .as_deref()
            .and_then(|key| cluster.metadata.labels.as_ref()?.get(key))
            .map(String::as_str),
    };
    match single.filter(|k| !k.is_empty()) {
        Some(key) => {
            f(key);
            1
        }
        None => 0,
    }
}

fn describe(constraint: &SpreadConstraint) -> String {
    match constraint.effective_field() {
        Some(field) => field.as_str().to_owned(),
        None => format!(
            "label {}",
            constraint.spread_by_label.as_deref().unwrap_or_default()
        ),
    }
}

/// Selects the clusters to divide replicas over. `candidates` must already be ordered by
/// [`order`]. `replicas` and `duplicated` feed the group scores.
pub fn select<'a>(
    candidates: &[Candidate<'a>],
    constraints: &[SpreadConstraint],
    need: Need,
    replicas: i64,
    duplicated: bool,
) -> Result<Vec<Candidate<'a>>, SelectError> {
    if constraints.is_empty() || need == Need::Everything {
        return Ok(candidates.to_vec());
    }
    let cluster_constraint = constraints
        .iter()
        .find(|c| c.effective_field() == Some(SpreadByField::Cluster));
    let groups: Vec<&SpreadConstraint> = constraints
        .iter()
        .filter(|c| c.effective_field() != Some(SpreadByField::Cluster))
        .collect();
    match groups.as_slice() {
        [] => select_clusters(
            candidates,
            cluster_constraint.cloned().unwrap_or_default(),
            need,
        ),
        [group] => select_by_group(candidates, group, cluster_constraint, replicas, duplicated),
        _ => select_hierarchically(candidates, groups, cluster_constraint, replicas, duplicated),
    }
}

/// How coarse a grouping is: provider, then region, then zone, then labels.
fn coarseness(constraint: &SpreadConstraint) -> u8 {
    match constraint.effective_field() {
        Some(SpreadByField::Provider) => 0,
        Some(SpreadByField::Region) => 1,
        Some(SpreadByField::Zone) => 2,
        Some(SpreadByField::Cluster) => 4,
        None => 3,
    }
}

/// Several group constraints at once (for example region and zone): each level, coarsest
/// first, chooses its groups among the clusters of the groups the previous level chose; only
/// the last level picks clusters (best per group, then fill to the cluster maxGroups).
fn select_hierarchically<'a>(
    candidates: &[Candidate<'a>],
    mut groups: Vec<&SpreadConstraint>,
    cluster_constraint: Option<&SpreadConstraint>,
    replicas: i64,
    duplicated: bool,
) -> Result<Vec<Candidate<'a>>, SelectError> {
    groups.sort_by_key(|c| coarseness(c));
    for pair in groups.windows(2) {
        let same_field = pair[0].effective_field().is_some()
            && pair[0].effective_field() == pair[1].effective_field();
        let same_label = pair[0].effective_field().is_none()
            && pair[0].spread_by_label == pair[1].spread_by_label;
        if same_field || same_label {
            return Err(SelectError::Unsupported(format!(
                "{} is spread by more than once",
                describe(pair[0])
            )));
        }
    }
    let keep_all = SpreadConstraint {
        max_groups: 0,
        ..cluster_constraint.cloned().unwrap_or_default()
    };
    let mut current: Vec<Candidate<'a>> = candidates.to_vec();
    let (last, levels) = groups
        .split_last()
        .ok_or_else(|| SelectError::Unsupported("no group constraint".into()))?;
    for level in levels {
        current = select_by_group(&current, level, Some(&keep_all), replicas, duplicated)?;
        sort(&mut current);
    }
    select_by_group(&current, last, cluster_constraint, replicas, duplicated)
}

fn select_clusters<'a>(
    candidates: &[Candidate<'a>],
    constraint: SpreadConstraint,
    need: Need,
) -> Result<Vec<Candidate<'a>>, SelectError> {
    let min = usize::try_from(constraint.min_groups).unwrap_or(0);
    if candidates.len() < min {
        return Err(SelectError::Unschedulable(format!(
            "the number of feasible clusters ({}) is less than spreadConstraint.minGroups ({min})",
            candidates.len()
        )));
    }
    let n = match usize::try_from(constraint.max_groups).unwrap_or(0) {
        0 => candidates.len(),
        max => max.min(candidates.len()),
    };
    let mut selected = candidates[..n].to_vec();
    if let Need::Replicas(need) = need {
        let sum = |s: &[Candidate<'_>]| s.iter().map(|c| i128::from(c.available)).sum::<i128>();
        let mut rest: Vec<Candidate<'a>> = candidates[n..].to_vec();
        let mut position = selected.len();
        while sum(&selected) < i128::from(need) && position > 0 && !rest.is_empty() {
            position -= 1;
            let current = selected[position].available;
            // The roomiest remaining cluster that beats the current one (first in order on ties).
            let best = rest
                .iter()
                .enumerate()
                .filter(|(_, c)| c.available > current)
                .fold(None::<(usize, i64)>, |best, (i, c)| match best {
                    Some((_, v)) if v >= c.available => best,
                    _ => Some((i, c.available)),
                });
            if let Some((i, _)) = best {
                // Swap: the displaced cluster goes back to the rest, where an earlier position
                // may still take it (Karmada's behaviour).
                std::mem::swap(&mut selected[position], &mut rest[i]);
            }
        }
        if sum(&selected) < i128::from(need) {
            return Err(SelectError::Unschedulable(format!(
                "no enough resource when selecting {n} clusters: they can hold {} of {need} replicas",
                sum(&selected)
            )));
        }
    }
    Ok(selected)
}

struct Group<'a> {
    key: &'a str,
    /// Indexes into the candidates, in candidate order.
    members: Vec<usize>,
    score: i64,
}

fn group_score(
    members: &[usize],
    candidates: &[Candidate<'_>],
    replicas: i64,
    duplicated: bool,
    t: i64,
    k: usize,
) -> i64 {
    if duplicated {
        let fit: Vec<&Candidate<'_>> = members
            .iter()
            .map(|i| &candidates[*i])
            .filter(|c| c.available >= replicas)
            .collect();
        let avg = if fit.is_empty() {
            0
        } else {
            fit.iter().map(|c| c.score).sum::<i64>() / fit.len() as i64
        };
        return 1000 * fit.len() as i64 + avg;
    }
    let (mut taken, mut sum_available, mut sum_score) = (0usize, 0i64, 0i64);
    for i in members {
        if taken >= k && sum_available >= t {
            break;
        }
        taken += 1;
        sum_available = sum_available.saturating_add(candidates[*i].available);
        sum_score += candidates[*i].score;
    }
    if sum_available < t {
        let all: i64 = members.iter().map(|i| candidates[*i].score).sum();
        1000i64.saturating_mul(sum_available) + all / members.len().max(1) as i64
    } else {
        1000i64.saturating_mul(t) + sum_score / taken.max(1) as i64
    }
}

fn binomial_sum(n: u64, lo: u64, hi: u64) -> u64 {
    let mut total: u64 = 0;
    for k in lo..=hi.min(n) {
        let mut c: u64 = 1;
        for i in 0..k {
            c = c.saturating_mul(n - i) / (i + 1);
            if c > EXHAUSTIVE_LIMIT * 4 {
                return u64::MAX;
            }
        }
        total = total.saturating_add(c);
    }
    total
}

fn select_by_group<'a>(
    candidates: &[Candidate<'a>],
    group_constraint: &SpreadConstraint,
    cluster_constraint: Option<&SpreadConstraint>,
    replicas: i64,
    duplicated: bool,
) -> Result<Vec<Candidate<'a>>, SelectError> {
    let what = describe(group_constraint);
    let mut by_key: BTreeMap<&'a str, Vec<usize>> = BTreeMap::new();
    let mut shared = false;
    let field = group_constraint.effective_field();
    if let (
        Some(SpreadByField::Region | SpreadByField::Provider | SpreadByField::Zone),
        Some(first),
    ) = (field, candidates.first())
    {
        // Topology ids from the snapshot: group by index, no string comparisons.
        let names: &'a [String] = &first.info.topology.names;
        let mut by_id: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
        for (i, c) in candidates.iter().enumerate() {
            let t = &c.info.topology;
            match field {
                Some(SpreadByField::Region) => {
                    t.region.iter().for_each(|id| push_at(&mut by_id, *id, i))
                }
                Some(SpreadByField::Provider) => {
                    t.provider.iter().for_each(|id| push_at(&mut by_id, *id, i))
                }
                _ => {
                    shared |= t.zones.len() > 1;
                    t.zones.iter().for_each(|id| push_at(&mut by_id, *id, i));
                }
            }
        }
        for (id, members) in by_id.into_iter().enumerate() {
            if !members.is_empty() {
                by_key.insert(names[id].as_str(), members);
            }
        }
    } else {
        for (i, c) in candidates.iter().enumerate() {
            let n = for_each_group_key(&c.info.cluster, group_constraint, |key| {
                by_key.entry(key).or_default().push(i)
            });
            shared |= n > 1;
        }
    }
    let group_min = usize::try_from(group_constraint.min_groups)
        .unwrap_or(0)
        .max(1);
    if by_key.len() < group_min {
        return Err(SelectError::Unschedulable(format!(
            "the number of feasible {what} groups ({}) is less than spreadConstraint.minGroups ({group_min})",
            by_key.len()
        )));
    }
    let group_max = match usize::try_from(group_constraint.max_groups).unwrap_or(0) {
        0 => by_key.len(),
        max => max.min(by_key.len()),
    };
    if group_max < group_min {
        return Err(SelectError::Unschedulable(format!(
            "spreadConstraint.maxGroups ({}) of {what} is less than its minGroups ({group_min})",
            group_constraint.max_groups
        )));
    }
    let cluster_min = cluster_constraint.map_or(0, |c| usize::try_from(c.min_groups).unwrap_or(0));
    let cluster_max = cluster_constraint.map_or(0, |c| usize::try_from(c.max_groups).unwrap_or(0));
    let t = (replicas + group_min as i64 - 1) / group_min as i64;
    let k = cluster_min.max(group_min);
    let mut groups: Vec<Group<'a>> = by_key
        .into_iter()
        .map(|(key, members)| {
            let score = group_score(&members, candidates, replicas, duplicated, t, k);
            Group {
                key,
                members,
                score,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        a.members
            .len()
            .cmp(&b.members.len())
            .then(b.score.cmp(&a.score))
            .then(a.key.cmp(b.key))
    });

    // Distinct clusters in a combination (multi-zone clusters belong to several groups).
    let count = |combo: &[usize]| {
        if !shared {
            return combo
                .iter()
                .map(|g| groups[*g].members.len())
                .sum::<usize>();
        }
        let mut members: Vec<usize> = combo
            .iter()
            .flat_map(|g| groups[*g].members.iter().copied())
            .collect();
        members.sort_unstable();
        members.dedup();
        members.len()
    };
    let score = |combo: &[usize]| {
        combo
            .iter()
            .map(|g| i128::from(groups[*g].score))
            .sum::<i128>()
    };
    let n = groups.len();
    // Within a chosen combination, groups are listed by (score desc, key asc); the prefix rule and
    // the order of the result follow that listing.
    let listed = |mut path: Vec<usize>| {
        path.sort_by(|a, b| {
            groups[*b]
                .score
                .cmp(&groups[*a].score)
                .then(groups[*a].key.cmp(groups[*b].key))
        });
        path
    };
    let feasible = |combo: &[usize]| {
        combo.len() >= group_min && combo.len() <= group_max && count(combo) >= cluster_min
    };
    let chosen: Option<Vec<usize>> =
        if binomial_sum(n as u64, group_min as u64, group_max as u64) <= EXHAUSTIVE_LIMIT {
            // Karmada's search: DFS in group order; a path is recorded as soon as it is feasible and
            // is not extended further.
            // (Σscore, cluster count, start and length in `arena`), in discovery order.
            let mut paths: Vec<(i128, usize, usize, usize)> = Vec::new();
            let mut arena: Vec<usize> = Vec::new();
            fn dfs(
                begin: usize,
                n: usize,
                max: usize,
                stack: &mut Vec<usize>,
                visit: &mut dyn FnMut(&[usize]) -> bool,
            ) {
                for g in begin..n {
                    stack.push(g);
                    if !visit(stack) && stack.len() < max {
                        dfs(g + 1, n, max, stack, visit);
                    }
                    stack.pop();
                }
            }
            let mut visit = |combo: &[usize]| {
                if !feasible(combo) {
                    return false;
                }
                paths.push((score(combo), count(combo), arena.len(), combo.len()));
                arena.extend_from_slice(combo);
                true
            };
            dfs(0, n, group_max, &mut Vec::new(), &mut visit);
            // Rank by (Σscore desc, cluster count desc, discovery order); then, scanning down the
            // ranking, switch to any path that is a strict prefix of the current choice.
            let mut ranked: Vec<usize> = (0..paths.len()).collect();
            ranked.sort_by(|a, b| {
                paths[*b]
                    .0
                    .cmp(&paths[*a].0)
                    .then(paths[*b].1.cmp(&paths[*a].1))
                    .then(a.cmp(b))
            });
            // Listings are computed lazily: only paths shorter than the current choice can switch.
            let mut choice: Option<Vec<usize>> = None;
            for i in ranked {
                let (_, _, start, len) = paths[i];
                let path = &arena[start..start + len];
                match &choice {
                    None => choice = Some(listed(path.to_vec())),
                    Some(current) if path.len() < current.len() => {
                        let path = listed(path.to_vec());
                        if current.starts_with(&path) {
                            choice = Some(path);
                        }
                    }
                    Some(_) => {}
                }
            }
            choice
        } else {
            // Greedy: the top groups by (score desc, size desc, DFS order) …
            let mut ranked: Vec<usize> = (0..n).collect();
            ranked.sort_by(|a, b| {
                groups[*b]
                    .score
                    .cmp(&groups[*a].score)
                    .then(groups[*b].members.len().cmp(&groups[*a].members.len()))
                    .then(a.cmp(b))
            });
            let mut chosen: Vec<usize> = ranked[..group_max].to_vec();
            let mut rest: Vec<usize> = ranked[group_max..].to_vec();
            // … then swap the weakest for larger groups until the cluster minimum is met …
            let mut position = chosen.len();
            while count(&chosen) < cluster_min && position > 0 {
                position -= 1;
                let size = groups[chosen[position]].members.len();
                let larger = rest.iter().enumerate().max_by(|a, b| {
                    groups[*a.1]
                        .members
                        .len()
                        .cmp(&groups[*b.1].members.len())
                        .then(b.0.cmp(&a.0))
                });
                if let Some((i, g)) = larger.filter(|(_, g)| groups[**g].members.len() > size) {
                    let g = *g;
                    rest.remove(i);
                    chosen[position] = g;
                }
            }
            // … and prefer the shortest feasible prefix, as the search does.
            let chosen = listed(chosen);
            (1..=chosen.len())
                .map(|len| &chosen[..len])
                .find(|prefix| feasible(prefix))
                .map(<[usize]>::to_vec)
        };
    let Some(chosen) = chosen else {
        return Err(SelectError::Unschedulable(format!(
            "the number of clusters is less than the cluster spreadConstraint.minGroups ({cluster_min}) \
             in any combination of {group_min} to {group_max} {what} groups"
        )));
    };
    let chosen = chosen.as_slice();

    // The best cluster of every chosen group (a multi-zone cluster may be best in several).
    let mut taken: Vec<usize> = Vec::with_capacity(chosen.len());
    for g in chosen {
        let top = groups[*g].members[0];
        if !taken.contains(&top) {
            taken.push(top);
        }
    }
    let mut spare_indexes: Vec<usize> = chosen
        .iter()
        .flat_map(|g| groups[*g].members[1..].iter().copied())
        .filter(|i| !taken.contains(i))
        .collect();
    spare_indexes.sort_unstable();
    spare_indexes.dedup();
    let mut selected: Vec<Candidate<'a>> = taken.iter().map(|i| candidates[*i]).collect();
    let mut spare: Vec<Candidate<'a>> = spare_indexes.iter().map(|i| candidates[*i]).collect();
    sort(&mut spare);
    let room = if cluster_max == 0 {
        spare.len()
    } else {
        cluster_max.saturating_sub(selected.len())
    };
    selected.extend(spare.into_iter().take(room));
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flotilla_testing::fixtures::ClusterBuilder;

    use super::*;
    use crate::snapshot::Snapshot;

    /// (name, region/zone/provider/label value, score, available)
    type Row<'r> = (&'r str, &'r str, i64, i64);

    fn with_candidates<T>(rows: &[Row<'_>], f: impl FnOnce(&[Candidate<'_>]) -> T) -> T {
        let snapshot = Snapshot::new(rows.iter().map(|(name, group, _, _)| {
            Arc::new(
                ClusterBuilder::new(name)
                    .region(group)
                    .zones(&[group])
                    .provider(group)
                    .label("rack", group)
                    .build(),
            )
        }));
        let mut candidates: Vec<Candidate<'_>> = rows
            .iter()
            .map(|(name, _, score, available)| Candidate {
                info: snapshot.get(name).expect("cluster"),
                score: *score,
                allocatable: *available,
                available: *available,
            })
            .collect();
        sort(&mut candidates);
        f(&candidates)
    }

    fn names(selected: &[Candidate<'_>]) -> Vec<String> {
        selected.iter().map(|c| c.info.name.clone()).collect()
    }

    fn cluster(min: i32, max: i32) -> SpreadConstraint {
        SpreadConstraint {
            spread_by_field: Some(SpreadByField::Cluster),
            min_groups: min,
            max_groups: max,
            ..Default::default()
        }
    }

    fn by(field: SpreadByField, min: i32, max: i32) -> SpreadConstraint {
        SpreadConstraint {
            spread_by_field: Some(field),
            min_groups: min,
            max_groups: max,
            ..Default::default()
        }
    }

    #[test]
    fn cluster_spread_swaps_in_roomier_clusters_karmada_example() {
        let rows = [
            ("m1", "r", 20, 40),
            ("m2", "r", 40, 60),
            ("m3", "r", 30, 80),
            ("m4", "r", 60, 50),
        ];
        let table: Vec<(Need, Result<Vec<&str>, ()>)> = vec![
            (Need::Replicas(120), Ok(vec!["m4", "m3"])),
            (Need::Replicas(200), Err(())),
            (Need::Replicas(100), Ok(vec!["m4", "m2"])),
            (Need::IgnoreResources, Ok(vec!["m4", "m2"])),
        ];
        for (need, want) in table {
            let got = with_candidates(&rows, |c| {
                select(c, &[cluster(1, 2)], need, 0, false).map(|s| names(&s))
            });
            match want {
                Ok(want) => assert_eq!(
                    got,
                    Ok(want.iter().map(|s| s.to_string()).collect()),
                    "{need:?}"
                ),
                Err(()) => assert!(
                    matches!(got, Err(SelectError::Unschedulable(_))),
                    "{need:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn cluster_spread_min_groups_and_unbounded_max() {
        let rows = [("a", "r", 0, 1), ("b", "r", 0, 1), ("c", "r", 0, 1)];
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(4, 0)], Need::IgnoreResources, 0, false).map(|s| names(&s))
        });
        assert!(
            matches!(got, Err(SelectError::Unschedulable(ref m)) if m.contains("minGroups")),
            "{got:?}"
        );
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(1, 0)], Need::IgnoreResources, 0, false).map(|s| names(&s))
        });
        assert_eq!(
            got.map(|v| v.len()),
            Ok(3),
            "maxGroups 0 means no upper bound"
        );
    }

    #[test]
    fn static_weight_ignores_spread_constraints() {
        let rows = [("a", "r", 0, 1), ("b", "r", 0, 1), ("c", "r", 0, 1)];
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(1, 1)], Need::Everything, 0, false).map(|s| names(&s))
        });
        assert_eq!(got.map(|v| v.len()), Ok(3));
    }

    #[test]
    fn group_spread_prefers_fewest_groups_and_fills_clusters() {
        // Regions: r1 {a 100, b 90}, r2 {c 80}, r3 {d 70, e 60, f 50}.
        let rows = [
            ("a", "r1", 100, 10),
            ("b", "r1", 90, 10),
            ("c", "r2", 80, 10),
            ("d", "r3", 70, 10),
            ("e", "r3", 60, 10),
            ("f", "r3", 50, 10),
        ];
        for field in [
            SpreadByField::Region,
            SpreadByField::Zone,
            SpreadByField::Provider,
        ] {
            // Two groups exactly, at most 3 clusters.
            let got = with_candidates(&rows, |c| {
                select(
                    c,
                    &[cluster(2, 3), by(field, 2, 2)],
                    Need::Replicas(20),
                    20,
                    false,
                )
                .map(|s| names(&s))
            });
            let got = got.unwrap_or_else(|e| panic!("{field:?}: {e:?}"));
            assert_eq!(got.len(), 3, "{field:?}: {got:?}");
            let regions: std::collections::BTreeSet<char> = got
                .iter()
                .map(|n| n.chars().next().unwrap_or(' '))
                .collect();
            assert_eq!(regions.len(), 3, "distinct clusters {got:?}");
            // Needs 2 groups; every chosen group contributes its best cluster.
            let groups_of = |n: &str| {
                rows.iter()
                    .find(|r| r.0 == n)
                    .map(|r| r.1)
                    .unwrap_or_default()
            };
            let distinct: std::collections::BTreeSet<&str> =
                got.iter().map(|n| groups_of(n)).collect();
            assert_eq!(distinct.len(), 2, "{field:?}: {got:?}");
        }
    }

    #[test]
    fn group_spread_follows_karmadas_search() {
        // Regions r1 {a 100, b 90}, r2 {c 80}, r3 {d 70, e 60, f 50}; 5 replicas, 10 each.
        // Group scores (Divided, t = 5): r1 5100, r2 5080, r3 5070 when one cluster is needed.
        let rows = [
            ("a", "r1", 100, 10),
            ("b", "r1", 90, 10),
            ("c", "r2", 80, 10),
            ("d", "r3", 70, 10),
            ("e", "r3", 60, 10),
            ("f", "r3", 50, 10),
        ];
        let run = |constraints: &[SpreadConstraint]| {
            with_candidates(&rows, |c| {
                select(c, constraints, Need::Replicas(5), 5, false).map(|s| names(&s))
            })
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Every single region is feasible and recorded without extension; r1 scores best.
        assert_eq!(
            run(&[cluster(1, 0), by(SpreadByField::Region, 1, 3)]),
            Ok(strings(&["a", "b"]))
        );
        // Needing two clusters: [r2, r1] (listed r1, r2) ranks first, but [r1] alone is feasible
        // and a prefix of it, so fewer regions win.
        assert_eq!(
            run(&[cluster(2, 0), by(SpreadByField::Region, 1, 3)]),
            Ok(strings(&["a", "b"]))
        );
        // Exactly two regions, two to three clusters: [r2, r1] is the best pair.
        assert_eq!(
            run(&[cluster(2, 3), by(SpreadByField::Region, 2, 2)]),
            Ok(strings(&["a", "c", "b"]))
        );
    }

    #[test]
    fn a_feasible_prefix_beats_a_higher_scoring_longer_path() {
        // A {x 100} alone is too small (2 clusters needed); B {y1, y2 500} and C {z1, z2 50} are
        // not. Paths: [A, B] (listed B, A) 4600, [B] 2500, [A, C] 4150, [C] 2050: [B, A] ranks
        // first and its prefix [B] is feasible, so only B is used.
        let rows = [
            ("x", "A", 100, 10),
            ("y1", "B", 500, 10),
            ("y2", "B", 500, 10),
            ("z1", "C", 50, 10),
            ("z2", "C", 50, 10),
        ];
        let got = with_candidates(&rows, |c| {
            select(
                c,
                &[cluster(2, 0), by(SpreadByField::Region, 1, 2)],
                Need::Replicas(2),
                2,
                false,
            )
            .map(|s| names(&s))
        });
        assert_eq!(got, Ok(vec!["y1".to_string(), "y2".to_string()]));
    }

    #[test]
    fn cluster_spread_swap_returns_the_displaced_cluster_to_the_pool() {
        // Order: p (score 90, 10), q (80, 5), r (70, 30), s (60, 8). Max 2, need 40.
        // Position 1: q (5) ⇄ r (30) → [p, r] = 40: done. Position 0 is not needed.
        let rows = [
            ("p", "g", 90, 10),
            ("q", "g", 80, 5),
            ("r", "g", 70, 30),
            ("s", "g", 60, 8),
        ];
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(1, 2)], Need::Replicas(40), 0, false).map(|s| names(&s))
        });
        assert_eq!(got, Ok(vec!["p".to_string(), "r".to_string()]));
        // Need 41: position 1 takes r (30), then position 0 (p, 10) takes the best remaining
        // cluster above 10 — none (q 5 went back, s 8) — so it fails.
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(1, 2)], Need::Replicas(41), 0, false).map(|s| names(&s))
        });
        assert!(matches!(got, Err(SelectError::Unschedulable(_))), "{got:?}");
        // With q roomier than p, the displaced cluster can be taken again by an earlier position.
        let rows = [("p", "g", 90, 6), ("q", "g", 80, 9), ("r", "g", 70, 30)];
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(1, 2)], Need::Replicas(39), 0, false).map(|s| names(&s))
        });
        assert_eq!(got, Ok(vec!["q".to_string(), "r".to_string()]));
    }

    #[test]
    fn group_spread_meets_the_cluster_minimum_by_picking_bigger_groups() {
        // r1 and r2 have one cluster each and the best scores; r3 has three.
        let rows = [
            ("a", "r1", 100, 10),
            ("b", "r2", 90, 10),
            ("c", "r3", 10, 10),
            ("d", "r3", 10, 10),
            ("e", "r3", 10, 10),
        ];
        let got = with_candidates(&rows, |c| {
            select(
                c,
                &[cluster(4, 0), by(SpreadByField::Region, 1, 2)],
                Need::Replicas(4),
                4,
                false,
            )
            .map(|s| names(&s))
        });
        let got = got.expect("schedulable");
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got.contains(&"c".to_string())
                && got.contains(&"d".to_string())
                && got.contains(&"e".to_string()),
            "{got:?}"
        );
    }

    #[test]
    fn group_spread_fails_with_too_few_groups() {
        let rows = [("a", "r1", 0, 10), ("b", "r1", 0, 10)];
        let got = with_candidates(&rows, |c| {
            select(
                c,
                &[cluster(1, 0), by(SpreadByField::Region, 2, 2)],
                Need::Replicas(2),
                2,
                false,
            )
            .map(|s| names(&s))
        });
        assert!(
            matches!(got, Err(SelectError::Unschedulable(ref m)) if m.contains("region groups (1)")),
            "{got:?}"
        );
    }

    #[test]
    fn a_multi_zone_cluster_counts_for_every_zone_it_spans() {
        let snapshot = Snapshot::new([
            Arc::new(ClusterBuilder::new("wide").zones(&["z1", "z2"]).build()),
            Arc::new(ClusterBuilder::new("narrow").zones(&["z3"]).build()),
        ]);
        let mut candidates: Vec<Candidate<'_>> = snapshot
            .clusters()
            .iter()
            .map(|info| Candidate {
                info,
                score: if info.name == "wide" { 10 } else { 0 },
                allocatable: 5,
                available: 5,
            })
            .collect();
        sort(&mut candidates);
        // Two zones from one cluster: "wide" alone covers z1 and z2.
        let got = select(
            &candidates,
            &[cluster(1, 0), by(SpreadByField::Zone, 2, 2)],
            Need::Replicas(2),
            2,
            false,
        );
        assert_eq!(got.map(|s| names(&s)), Ok(vec!["wide".to_string()]));
        // Three zones need both clusters, each counted once.
        let got = select(
            &candidates,
            &[cluster(2, 0), by(SpreadByField::Zone, 3, 3)],
            Need::Replicas(2),
            2,
            false,
        );
        let mut got = got.map(|s| names(&s)).expect("schedulable");
        got.sort();
        assert_eq!(got, vec!["narrow".to_string(), "wide".to_string()]);
        // Three distinct clusters cannot be found in these zones.
        let got = select(
            &candidates,
            &[cluster(3, 0), by(SpreadByField::Zone, 1, 3)],
            Need::Replicas(2),
            2,
            false,
        );
        assert!(matches!(got, Err(SelectError::Unschedulable(_))), "{got:?}");
    }

    #[test]
    fn label_spread_groups_by_label_value() {
        let rows = [
            ("a", "rack1", 50, 10),
            ("b", "rack1", 40, 10),
            ("c", "rack2", 30, 10),
            ("d", "rack3", 20, 10),
        ];
        let label = SpreadConstraint {
            spread_by_label: Some("rack".into()),
            min_groups: 3,
            max_groups: 3,
            ..Default::default()
        };
        let got = with_candidates(&rows, |c| {
            select(c, &[cluster(3, 3), label], Need::Replicas(3), 3, false).map(|s| names(&s))
        });
        assert_eq!(
            got,
            Ok(vec!["a".to_string(), "c".to_string(), "d".to_string()]),
            "chosen groups are listed by group score"
        );
    }

    #[test]
    fn region_and_zone_spread_hierarchically() {
        // Region is the first letter's group, zone the name: r1 {a, b}, r2 {c, d}, r3 {e}.
        let snapshot = Snapshot::new(
            [
                ("a", "r1", "z1"),
                ("b", "r1", "z2"),
                ("c", "r2", "z3"),
                ("d", "r2", "z4"),
                ("e", "r3", "z5"),
            ]
            .iter()
            .map(|(name, region, zone)| {
                Arc::new(
                    ClusterBuilder::new(name)
                        .region(region)
                        .zones(&[zone])
                        .build(),
                )
            }),
        );
        let mut candidates: Vec<Candidate<'_>> = snapshot
            .clusters()
            .iter()
            .map(|info| Candidate {
                info,
                score: 0,
                allocatable: 10,
                available: 10,
            })
            .collect();
        sort(&mut candidates);
        // Exactly one region with two zones: r1 or r2 (r3 has one zone), never a mix.
        let got = select(
            &candidates,
            &[
                cluster(2, 2),
                by(SpreadByField::Zone, 2, 2),
                by(SpreadByField::Region, 1, 1),
            ],
            Need::Replicas(4),
            4,
            false,
        )
        .map(|s| names(&s));
        let got = got.expect("schedulable");
        assert!(got == ["a", "b"] || got == ["c", "d"], "{got:?}");
        // The same field twice is rejected.
        let twice = select(
            &candidates,
            &[
                cluster(1, 0),
                by(SpreadByField::Zone, 1, 1),
                by(SpreadByField::Zone, 1, 2),
            ],
            Need::Replicas(1),
            1,
            false,
        );
        assert!(
            matches!(twice, Err(SelectError::Unsupported(_))),
            "{twice:?}"
        );
        // Impossible combinations fail: two regions with two zones each is fine, three is not.
        let three = select(
            &candidates,
            &[
                cluster(1, 0),
                by(SpreadByField::Region, 3, 3),
                by(SpreadByField::Zone, 6, 6),
            ],
            Need::Replicas(1),
            1,
            false,
        );
        assert!(
            matches!(three, Err(SelectError::Unschedulable(_))),
            "{three:?}"
        );
    }

    #[test]
    fn many_groups_use_the_greedy_path_and_still_satisfy_constraints() {
        let rows: Vec<(String, String, i64, i64)> = (0..200)
            .map(|i| {
                (
                    format!("c{i:03}"),
                    format!("g{:02}", i % 40),
                    (i % 17) as i64,
                    5,
                )
            })
            .collect();
        let rows: Vec<Row<'_>> = rows
            .iter()
            .map(|(a, b, s, v)| (a.as_str(), b.as_str(), *s, *v))
            .collect();
        let got = with_candidates(&rows, |c| {
            select(
                c,
                &[cluster(10, 12), by(SpreadByField::Region, 3, 0)],
                Need::Replicas(10),
                10,
                false,
            )
            .map(|s| names(&s))
        });
        let got = got.expect("schedulable");
        assert!(got.len() >= 10 && got.len() <= 12, "{got:?}");
    }

    /// Property: on random fleets and constraints, a successful group selection always spans
    /// between minGroups and maxGroups groups and meets the cluster minimum, and a failure
    /// happens only when no combination of groups could meet both minimums.
    #[test]
    fn group_selection_respects_constraints_on_random_fleets() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let (mut successes, mut failures) = (0, 0);
        for case in 0..400 {
            let n = 1 + next(12) as usize;
            let rows: Vec<(String, String, i64, i64)> = (0..n)
                .map(|i| {
                    (
                        format!("c{i:02}"),
                        format!("g{}", next(5)),
                        next(300) as i64,
                        next(20) as i64,
                    )
                })
                .collect();
            let rows_ref: Vec<Row<'_>> = rows
                .iter()
                .map(|(a, b, s, v)| (a.as_str(), b.as_str(), *s, *v))
                .collect();
            let group_min = next(4) as i32;
            let group_max = if next(3) == 0 {
                0
            } else {
                group_min.max(1) + next(3) as i32
            };
            let cluster_min = next(6) as i32;
            let cluster_max = if next(2) == 0 {
                0
            } else {
                cluster_min + next(4) as i32
            };
            let field = [
                SpreadByField::Region,
                SpreadByField::Zone,
                SpreadByField::Provider,
            ][case % 3];
            let constraints = [
                cluster(cluster_min, cluster_max),
                by(field, group_min, group_max),
            ];
            let replicas = 1 + next(40) as i64;
            let got = with_candidates(&rows_ref, |c| {
                select(
                    c,
                    &constraints,
                    Need::Replicas(replicas),
                    replicas,
                    case % 4 == 0,
                )
                .map(|s| names(&s))
            });
            let group_of = |name: &str| {
                rows.iter()
                    .find(|r| r.0 == name)
                    .map(|r| r.1.clone())
                    .unwrap_or_default()
            };
            let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
            for r in &rows {
                *sizes.entry(r.1.clone()).or_default() += 1;
            }
            let lo = (group_min.max(1)) as usize;
            let hi = if group_max == 0 {
                sizes.len()
            } else {
                (group_max as usize).min(sizes.len())
            };
            match got {
                Ok(selected) => {
                    successes += 1;
                    let groups: std::collections::BTreeSet<String> =
                        selected.iter().map(|n| group_of(n)).collect();
                    assert!(
                        groups.len() >= lo && groups.len() <= hi,
                        "case {case}: {} groups not in {lo}..={hi}",
                        groups.len()
                    );
                    let available: usize = groups.iter().map(|g| sizes[g]).sum();
                    assert!(
                        available >= cluster_min as usize,
                        "case {case}: groups hold {available} < {cluster_min}"
                    );
                    let mut distinct = selected.clone();
                    distinct.sort();
                    distinct.dedup();
                    assert_eq!(
                        distinct.len(),
                        selected.len(),
                        "case {case}: duplicates in {selected:?}"
                    );
                    if cluster_max > 0 {
                        assert!(
                            selected.len() <= (cluster_max as usize).max(groups.len()),
                            "case {case}: too many clusters"
                        );
                    }
                    assert!(
                        selected.len() >= (cluster_min as usize).min(available),
                        "case {case}: too few clusters"
                    );
                }
                Err(SelectError::Unschedulable(_)) => {
                    failures += 1;
                    // Brute force: no subset of groups of an allowed size holds enough clusters.
                    let counts: Vec<usize> = sizes.values().copied().collect();
                    let feasible = (1u32..(1 << counts.len())).any(|mask| {
                        let k = mask.count_ones() as usize;
                        let total: usize = (0..counts.len())
                            .filter(|i| mask & (1 << i) != 0)
                            .map(|i| counts[i])
                            .sum();
                        k >= lo && k <= hi && total >= cluster_min as usize
                    });
                    assert!(
                        !feasible,
                        "case {case}: failed although a valid combination exists"
                    );
                }
                Err(other) => panic!("case {case}: {other:?}"),
            }
        }
        assert!(
            successes > 50 && failures > 20,
            "both outcomes exercised: {successes} ok, {failures} failed"
        );
    }
}
