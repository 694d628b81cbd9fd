//! Capacity score: how many replicas a candidate can hold, normalised to 0..=100 against the
//! roomiest candidate (⌊100·available/max⌋). Monotone in available replicas, so it orders
//! clusters of equal locality exactly as Karmada's "available replicas descending" tie-break.

use crate::framework::{Context, MAX_SCORE, ScoreInput, ScorePlugin};

/// The capacity score plugin.
#[derive(Debug, Clone, Copy)]
pub struct Capacity;

impl ScorePlugin for Capacity {
    fn name(&self) -> &'static str {
        "Capacity"
    }

    fn score(&self, _ctx: &Context<'_>, candidate: ScoreInput<'_>) -> i64 {
        candidate.available.max(0)
    }

    fn normalize(&self, scores: &mut [i64]) {
        let max = scores.iter().copied().max().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max <= 0 {
                0
            } else {
                i64::try_from(i128::from(*s) * i128::from(MAX_SCORE) / i128::from(max)).unwrap_or(0)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_scores_are_proportional_to_the_roomiest_cluster() {
        let table: Vec<(Vec<i64>, Vec<i64>)> = vec![
            (vec![0, 0], vec![0, 0]),
            (vec![10, 5, 0], vec![100, 50, 0]),
            (vec![3, 1], vec![100, 33]),
            (vec![i64::MAX, 1], vec![100, 0]),
        ];
        for (raw, want) in table {
            let mut scores = raw.clone();
            Capacity.normalize(&mut scores);
            assert_eq!(scores, want, "{raw:?}");
        }
    }
}
