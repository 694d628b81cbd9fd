//! The plugin framework: filter and score plugin traits, the per-decision [`Context`] they
//! read, and the one [`Registry`] that lists every plugin with its score weight. Owns plugin
//! wiring only; what a plugin decides lives in `plugins/`.

use std::sync::LazyLock;

use flotilla_api::{
    policy::{ClusterAffinity, Placement, SpreadConstraint},
    work::{ResourceBindingSpec, TargetCluster},
};

use crate::{
    plugins::{
        api_enablement::ApiEnablement, cluster_affinity::ClusterAffinityPlugin,
        cluster_eviction::ClusterEviction, locality::ClusterLocality,
        spread_constraint::SpreadConstraintFilter, taint_toleration::TaintToleration,
    },
    snapshot::ClusterInfo,
};

/// The highest score a plugin may give after normalisation.
pub const MAX_SCORE: i64 = 100;

/// What plugins may read about the binding being scheduled. Built once per decision (and per
/// affinity term); read-only.
#[derive(Debug)]
pub struct Context<'a> {
    /// The binding spec.
    pub spec: &'a ResourceBindingSpec,
    /// The placement (an empty one when the binding has none).
    pub placement: &'a Placement,
    /// The affinity in force: `clusterAffinity`, or the `clusterAffinities` term being tried.
    pub affinity: Option<&'a ClusterAffinity>,
    /// The previous result, `spec.clusters`.
    pub previous: &'a [TargetCluster],
    /// The spread constraints (same as `placement.spreadConstraints`).
    pub spread_constraints: &'a [SpreadConstraint],
}

impl Context<'_> {
    /// Whether the previous result places the binding on `cluster` (Karmada's
    /// `TargetContains`).
    pub fn targets(&self, cluster: &str) -> bool {
        self.previous.iter().any(|t| t.name == cluster)
    }

    /// The replicas the previous result gave `cluster`.
    pub fn previous_replicas(&self, cluster: &str) -> i64 {
        self.previous
            .iter()
            .filter(|t| t.name == cluster)
            .map(|t| i64::from(t.replicas))
            .sum()
    }
}

/// A filter plugin: rejects clusters that cannot run the binding. Must not mutate anything.
pub trait FilterPlugin: Send + Sync {
    /// The plugin name, as used to switch it off.
    fn name(&self) -> &'static str;
    /// `Err(reason)` rejects the cluster; the reason reads after a count, such as
    /// `cluster(s) had untolerated taint {key:NoSchedule}`.
    fn filter(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String>;
}

/// What a score plugin sees about one candidate.
#[derive(Clone, Copy, Debug)]
pub struct ScoreInput<'a> {
    /// The cluster.
    pub cluster: &'a ClusterInfo,
    /// The replicas the cluster can hold (estimate plus its previous replicas).
    pub available: i64,
}

/// A score plugin: ranks the clusters that passed every filter.
pub trait ScorePlugin: Send + Sync {
    /// The plugin name, as used to switch it off.
    fn name(&self) -> &'static str;
    /// The raw score of one candidate.
    fn score(&self, ctx: &Context<'_>, candidate: ScoreInput<'_>) -> i64;
    /// Brings raw scores into `0..=MAX_SCORE`. The default clamps.
    fn normalize(&self, scores: &mut [i64]) {
        for s in scores {
            *s = (*s).clamp(0, MAX_SCORE);
        }
    }
}

/// Every plugin, with the weight of each score plugin. The weighted sum of the score plugins is
/// a candidate's score ([`crate::spread::Candidate::score`]), Karmada's `ClusterScore`; with the
/// default registry it equals Karmada's exactly.
pub struct Registry {
    /// Filters, run in order; the first rejection is the cluster's diagnosis.
    pub filters: Vec<Box<dyn FilterPlugin>>,
    /// Score plugins and their weights.
    pub scores: Vec<(Box<dyn ScorePlugin>, i64)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field(
                "filters",
                &self.filters.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field(
                "scores",
                &self
                    .scores
                    .iter()
                    .map(|(p, w)| (p.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Registry {
    /// Every plugin, with Karmada's score plugins only (ClusterLocality 0/100, ClusterAffinity
    /// 0), each weighing 1: Karmada sums its plugins' scores unweighted, and that sum is the
    /// cluster score its candidate order, group scores and group ranking read. Any other score
    /// plugin or weight would change Karmada-defined placements, so there is deliberately no
    /// capacity score: capacity orders candidates only through `available`, the second key of
    /// the candidate order (score desc, available desc, name asc), exactly as in Karmada.
    fn default() -> Self {
        Self {
            filters: vec![
                Box::new(ClusterAffinityPlugin),
                Box::new(TaintToleration),
                Box::new(ApiEnablement),
                Box::new(SpreadConstraintFilter),
                Box::new(ClusterEviction),
            ],
            scores: vec![
                (Box::new(ClusterLocality), 1),
                (Box::new(ClusterAffinityPlugin), 1),
            ],
        }
    }
}

impl Registry {
    /// The default registry, built once.
    pub fn shared() -> &'static Registry {
        static DEFAULT: LazyLock<Registry> = LazyLock::new(Registry::default);
        &DEFAULT
    }

    /// The registry without the named plugins (filters and scores).
    pub fn without(mut self, names: &[&str]) -> Self {
        self.filters.retain(|p| !names.contains(&p.name()));
        self.scores.retain(|(p, _)| !names.contains(&p.name()));
        self
    }

    /// Runs the filters on one cluster; the first rejection wins.
    pub fn run_filters(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String> {
        self.filters.iter().try_for_each(|p| p.filter(ctx, cluster))
    }

    /// Scores every candidate: each plugin's raw scores are normalised, weighted and summed.
    pub fn run_scores(
        &self,
        ctx: &Context<'_>,
        candidates: &[ScoreInput<'_>],
        totals: &mut Vec<i64>,
    ) {
        totals.clear();
        totals.resize(candidates.len(), 0);
        let mut scratch = vec![0; candidates.len()];
        for (plugin, weight) in &self.scores {
            for (slot, candidate) in scratch.iter_mut().zip(candidates) {
                *slot = plugin.score(ctx, *candidate);
            }
            plugin.normalize(&mut scratch);
            for (total, s) in totals.iter_mut().zip(&scratch) {
                *total += s * weight;
            }
        }
    }
}
