//! ClusterLocality score: 100 for clusters the binding already runs on, 0 otherwise, so
//! rescheduling prefers to keep workloads where they are.

use crate::framework::{Context, MAX_SCORE, ScoreInput, ScorePlugin};

/// The ClusterLocality score plugin.
#[derive(Debug, Clone, Copy)]
pub struct ClusterLocality;

impl ScorePlugin for ClusterLocality {
    fn name(&self) -> &'static str {
        "ClusterLocality"
    }

    fn score(&self, ctx: &Context<'_>, candidate: ScoreInput<'_>) -> i64 {
        if ctx.targets(&candidate.cluster.name) {
            MAX_SCORE
        } else {
            0
        }
    }
}
