//! The general capacity estimator: how many more replicas of a binding a cluster can hold,
//! from `status.resourceSummary` (Karmada's general estimator). Owns only the arithmetic; it
//! never looks at placement or previous results.
//!
//! available = min over requested resources r of ⌊(allocatable_r − allocated_r − allocating_r) /
//! request_r⌋, also bounded by `pods` (allocatable − allocated − allocating, floored at 0) when the
//! cluster reports `pods`. A resource the cluster does not report gives 0. A cluster without a
//! resource summary has no capacity.
//!
//! When the cluster has resource models (`spec.resourceModels`) and reports how many nodes fall
//! in each (`status.resourceSummary.allocatableModelings`, by position), the models are used
//! instead of the totals, as Karmada does with CustomizedClusterResourceModeling: the first grade
//! whose lower bound covers every request is the smallest node that fits a replica; every node of
//! that grade and above holds ⌊min_r / request_r⌋ replicas (at least 1); the sum, bounded by pods,
//! is the estimate. Models that do not describe a requested resource are ignored.

use std::collections::BTreeMap;

use flotilla_api::{
    Cluster,
    cluster::{ResourceModel, ResourceSummary},
    work::ReplicaRequirements,
};

use flotilla_api::quantity::parse_millis;

use crate::error::Result;

/// Returned when nothing bounds the estimate (no `pods` and no requests).
pub const UNBOUNDED: i64 = i64::MAX;

/// What a cluster has left, parsed once per snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Resource name → allocatable − allocated − allocating, in thousandths.
    remaining: BTreeMap<String, i128>,
    /// Pods the cluster can still start, when it reports `pods`.
    allowed_pods: Option<i64>,
    /// Resource-model grades with their node counts, in model order; empty when unused.
    grades: Vec<Grade>,
}

/// One resource-model grade: the lower bound of each resource and how many nodes it has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Grade {
    mins: BTreeMap<String, i128>,
    nodes: i64,
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
            grades: Vec::new(),
        }
    }

    /// Parses a cluster's resource summary and resource models; `None` without a summary.
    pub fn from_cluster(cluster: &Cluster) -> Option<Self> {
        let summary = cluster.status.as_ref()?.resource_summary.as_ref()?;
        let mut capacity = Self::from_summary(summary);
        if !summary.allocatable_modelings.is_empty() {
            capacity.grades = grades(&cluster.spec.resource_models, summary);
        }
        Some(capacity)
    }
}

/// The grades of a cluster's models, in model order, with the node count reported at the same
/// position. A model whose bounds do not parse makes the models unusable (empty).
fn grades(models: &[ResourceModel], summary: &ResourceSummary) -> Vec<Grade> {
    let mut out = Vec::with_capacity(models.len());
    for (i, model) in models.iter().enumerate() {
        let mut mins = BTreeMap::new();
        for range in &model.ranges {
            match parse_millis(&range.min) {
                Ok(min) => mins.insert(range.name.clone(), min),
                Err(_) => return Vec::new(),
            };
        }
        let nodes = summary
            .allocatable_modelings
            .get(i)
            .map_or(0, |m| i64::from(m.count.max(0)));
        out.push(Grade { mins, nodes });
    }
    out
}

/// The estimate from resource models, or `None` when the models cannot answer.
fn by_models(grades: &[Grade], requests: &Requests) -> Option<i64> {
    if grades.is_empty() {
        return None;
    }
    let mut first = 0;
    for (name, request) in &requests.items {
        if !grades.iter().all(|g| g.mins.contains_key(name)) {
            return None;
        }
        match grades
            .iter()
            .position(|g| g.mins.get(name).is_some_and(|min| min >= request))
        {
            Some(i) => first = first.max(i),
            None => return Some(0),
        }
    }
    let mut total: i64 = 0;
    for grade in grades[first..].iter().filter(|g| g.nodes > 0) {
        let per_node = requests
            .items
            .iter()
            .map(|(name, request)| {
                let min = grade.mins.get(name).copied().unwrap_or(0);
                i64::try_from(min / request).unwrap_or(i64::MAX)
            })
            .min()
            .unwrap_or(0)
            .max(1);
        total = total.saturating_add(grade.nodes.saturating_mul(per_node));
    }
    Some(total)
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
    if requests.items.is_empty() {
        return best;
    }
    if let Some(modelled) = by_models(&capacity.grades, requests) {
        return best.min(modelled);
    }
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
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

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
    fn resource_models_count_nodes_that_fit_a_replica() {
        use flotilla_api::cluster::{AllocatableModeling, ResourceModel, ResourceModelRange};
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let grade = |grade: u32, min: &str, max: &str| ResourceModel {
            grade,
            ranges: vec![ResourceModelRange {
                name: "cpu".into(),
                min: Quantity(min.into()),
                max: Quantity(max.into()),
            }],
        };
        let modelled = |counts: &[i32]| {
            let mut cluster = ClusterBuilder::new("m")
                .allocatable(&[("cpu", "1000"), ("memory", "64Gi"), ("pods", "15")])
                .build();
            cluster.spec.resource_models =
                vec![grade(0, "0", "1"), grade(1, "1", "2"), grade(2, "2", "4")];
            if let Some(summary) = cluster
                .status
                .as_mut()
                .and_then(|s| s.resource_summary.as_mut())
            {
                summary.allocatable_modelings = counts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| AllocatableModeling {
                        grade: i as u32,
                        count: *c,
                    })
                    .collect();
            }
            cluster
        };
        let estimate = |cluster: &Cluster, cpu: &str| {
            let binding = BindingBuilder::new().request(&[("cpu", cpu)]).build();
            let requests =
                Requests::parse(binding.spec.replica_requirements.as_ref()).expect("valid");
            max_available_replicas(Capacity::from_cluster(cluster).as_ref(), &requests)
        };
        let table: Vec<(&str, Vec<i32>, &str, i64)> = vec![
            // 1.5 cpu only fits grade 2 nodes (min 2): 2 nodes × 1.
            ("needs the biggest grade", vec![10, 5, 2], "1500m", 2),
            // 1 cpu fits grade 1 (1 per node × 5) and grade 2 (2 per node × 2).
            (
                "sums grades from the first that fits",
                vec![10, 5, 2],
                "1",
                9,
            ),
            // 500m: grade 1 gives 2 × 5, grade 2 gives 4 × 2 = 18, capped by 15 pods.
            ("bounded by pods", vec![10, 5, 2], "500m", 15),
            ("no grade is big enough", vec![10, 5, 2], "5", 0),
            ("empty grades are skipped", vec![10, 0, 1], "1", 2),
        ];
        for (name, counts, cpu, want) in table {
            assert_eq!(estimate(&modelled(&counts), cpu), want, "{name}");
        }
        // Without allocatableModelings the totals are used (1000 cpu, 15 pods).
        assert_eq!(estimate(&modelled(&[]), "1"), 15);
        // Models that do not describe a requested resource are ignored: the totals give 15 (pods),
        // where the models would have given 9.
        let binding = BindingBuilder::new()
            .request(&[("cpu", "1"), ("memory", "1Gi")])
            .build();
        let requests = Requests::parse(binding.spec.replica_requirements.as_ref()).expect("valid");
        assert_eq!(
            max_available_replicas(
                Capacity::from_cluster(&modelled(&[10, 5, 2])).as_ref(),
                &requests
            ),
            15
        );
    }

    #[test]
    fn invalid_request_is_an_error() {
        let binding = BindingBuilder::new().request(&[("cpu", "lots")]).build();
        assert!(Requests::parse(binding.spec.replica_requirements.as_ref()).is_err());
    }
}
