//! The general capacity estimator: how many more replicas of a binding a cluster can hold,
//! from `status.resourceSummary` (Karmada's general estimator, without resource models).
//! Owns only the arithmetic; it never looks at placement or previous results.
//!
//! available = min over requested resources r of ⌊(allocatable_r − allocated_r − allocating_r) /
//! request_r⌋, also bounded by `pods` (allocatable − allocated − allocating, floored at 0) when the
//! cluster reports `pods`. A resource the cluster does not report gives 0. A cluster without a
//! resource summary has no capacity.

use std::collections::BTreeMap;

use flotilla_api::{cluster::ResourceSummary, work::ReplicaRequirements};

use crate::{error::Result, quantity::parse_millis};

/// Returned when nothing bounds the estimate (no `pods` and no requests).
pub const UNBOUNDED: i64 = i64::MAX;

/// What a cluster has left, parsed once per snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Resource name → allocatable − allocated − allocating, in thousandths.
    remaining: BTreeMap<String, i128>,
    /// Pods the cluster can still start, when it reports `pods`.
    allowed_pods: Option<i64>,
}

impl Capacity {
    /// Parses a resource summary. A quantity that does not parse counts as nothing left of that
    /// resource, so a garbled status never over-commits a cluster.
    pub fn from_summary(summary: &ResourceSummary) -> Self {
        let mut remaining = BTreeMap::new();
        for (name, allocatable) in &summary.allocatable {
            let used = |map: &BTreeMap<String, _>| map.get(name).map(parse_millis).transpose();
            let left = match (
                parse_millis(allocatable),
                used(&summary.allocated),
                used(&summary.allocating),
            ) {
                (Ok(a), Ok(b), Ok(c)) => a - b.unwrap_or(0) - c.unwrap_or(0),
                _ => 0,
            };
            remaining.insert(name.clone(), left);
        }
        let allowed_pods = remaining
            .get("pods")
            .map(|millis| i64::try_from((*millis).max(0) / 1000).unwrap_or(i64::MAX));
        Self {
            remaining,
            allowed_pods,
        }
    }
}

/// The per-replica requests of a binding, parsed once per decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    /// (resource, thousandths) for every positive request.
    items: Vec<(String, i128)>,
}

impl Requests {
    /// Parses the requests of a binding. Zero requests are dropped (they bound nothing).
    pub fn parse(requirements: Option<&ReplicaRequirements>) -> Result<Self> {
        let mut items = Vec::new();
        for (name, quantity) in requirements.iter().flat_map(|r| r.resource_request.iter()) {
            let millis = parse_millis(quantity)?;
            if millis > 0 {
                items.push((name.clone(), millis));
            }
        }
        Ok(Self { items })
    }
}

/// How many replicas fit on a cluster with `capacity` (`None`: no resource summary).
pub fn max_available_replicas(capacity: Option<&Capacity>, requests: &Requests) -> i64 {
    let Some(capacity) = capacity else { return 0 };
    let mut best = capacity.allowed_pods.unwrap_or(UNBOUNDED);
    for (name, request) in &requests.items {
        if best == 0 {
            break;
        }
        let left = capacity.remaining.get(name).copied().unwrap_or(0);
        let fits = if left <= 0 {
            0
        } else {
            i64::try_from(left / request).unwrap_or(i64::MAX)
        };
        best = best.min(fits);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{BindingBuilder, ClusterBuilder};

    /// name, cluster, per-replica request, expected replicas.
    type EstimateCase = (
        &'static str,
        ClusterBuilder,
        &'static [(&'static str, &'static str)],
        i64,
    );

    fn estimate(cluster: ClusterBuilder, request: &[(&str, &str)]) -> i64 {
        let cluster = cluster.build();
        let capacity = cluster
            .status
            .as_ref()
            .and_then(|s| s.resource_summary.as_ref())
            .map(Capacity::from_summary);
        let binding = BindingBuilder::new().request(request).build();
        let requests =
            Requests::parse(binding.spec.replica_requirements.as_ref()).expect("valid requests");
        max_available_replicas(capacity.as_ref(), &requests)
    }

    #[test]
    fn estimates_follow_the_scarcest_resource_and_pods() {
        let c = |name| ClusterBuilder::new(name);
        let table: Vec<EstimateCase> = vec![
            ("no summary", c("a"), &[("cpu", "1")], 0),
            (
                "cpu bound",
                c("a").allocatable(&[("cpu", "10"), ("memory", "100Gi")]),
                &[("cpu", "3"), ("memory", "1Gi")],
                3,
            ),
            (
                "memory bound",
                c("a").allocatable(&[("cpu", "10"), ("memory", "4Gi")]),
                &[("cpu", "1"), ("memory", "1536Mi")],
                2,
            ),
            (
                "allocated and allocating subtract",
                c("a")
                    .allocatable(&[("cpu", "10")])
                    .allocated(&[("cpu", "4")])
                    .allocating(&[("cpu", "500m")]),
                &[("cpu", "500m")],
                11,
            ),
            (
                "pods bound",
                c("a").allocatable(&[("cpu", "100"), ("pods", "5")]),
                &[("cpu", "1")],
                5,
            ),
            (
                "pods used up",
                c("a")
                    .allocatable(&[("cpu", "100"), ("pods", "5")])
                    .allocated(&[("pods", "5")]),
                &[("cpu", "1")],
                0,
            ),
            (
                "overcommitted is zero",
                c("a")
                    .allocatable(&[("cpu", "1")])
                    .allocated(&[("cpu", "2")]),
                &[("cpu", "1")],
                0,
            ),
            (
                "missing resource is zero",
                c("a").allocatable(&[("cpu", "8")]),
                &[("nvidia.com/gpu", "1")],
                0,
            ),
            (
                "no requests, pods only",
                c("a").allocatable(&[("pods", "7")]),
                &[],
                7,
            ),
            (
                "no requests, no pods",
                c("a").allocatable(&[("cpu", "7")]),
                &[],
                UNBOUNDED,
            ),
            (
                "zero request ignored",
                c("a").allocatable(&[("cpu", "4"), ("pods", "9")]),
                &[("cpu", "0")],
                9,
            ),
            (
                "millicores",
                c("a").allocatable(&[("cpu", "2")]),
                &[("cpu", "300m")],
                6,
            ),
        ];
        for (name, cluster, request, want) in table {
            assert_eq!(estimate(cluster, request), want, "{name}");
        }
    }

    #[test]
    fn invalid_request_is_an_error() {
        let binding = BindingBuilder::new().request(&[("cpu", "lots")]).build();
        assert!(Requests::parse(binding.spec.replica_requirements.as_ref()).is_err());
    }
}
