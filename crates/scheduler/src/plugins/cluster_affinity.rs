//! ClusterAffinity: filter clusters that do not match the affinity in force (`clusterAffinity`
//! or the current `clusterAffinities` term), and score every candidate 0.
//!
//! The score is 0 on purpose, not a stub. Karmada's ClusterAffinity score plugin returns 0 for
//! every cluster, and a candidate's score (the sum of the score plugins) orders candidates,
//! scores spread groups and ranks group combinations; any non-zero value here would place
//! workloads differently from Karmada for the same inputs. The affinity is a hard filter, so
//! every candidate matches it equally and there is nothing to prefer among them. The plugin is
//! registered as a score plugin anyway so the score sum has exactly Karmada's terms, and so a
//! preference-style affinity (Karmada has none yet) has a place to go without new wiring.

use crate::{
    framework::{Context, FilterPlugin, ScoreInput, ScorePlugin},
    selector::cluster_matches,
    snapshot::ClusterInfo,
};

/// The ClusterAffinity filter and score plugin.
#[derive(Debug, Clone, Copy)]
pub struct ClusterAffinityPlugin;

/// The rejection reason.
pub const REASON: &str = "cluster(s) did not match the placement cluster affinity constraint";

impl FilterPlugin for ClusterAffinityPlugin {
    fn name(&self) -> &'static str {
        "ClusterAffinity"
    }

    fn filter(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String> {
        match ctx.affinity {
            Some(affinity) if !cluster_matches(&cluster.cluster, affinity) => {
                Err(REASON.to_owned())
            }
            _ => Ok(()),
        }
    }
}

impl ScorePlugin for ClusterAffinityPlugin {
    fn name(&self) -> &'static str {
        "ClusterAffinity"
    }

    /// Always 0, as Karmada's: every candidate already matches the affinity (see the module
    /// docs for why a non-zero score would break parity with Karmada).
    fn score(&self, _ctx: &Context<'_>, _candidate: ScoreInput<'_>) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use flotilla_api::policy::{ClusterAffinity, FieldSelector};
    use k8s_openapi::{
        api::core::v1::NodeSelectorRequirement, apimachinery::pkg::apis::meta::v1::LabelSelector,
    };

    use super::*;
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

    use crate::plugins::test_support::run_filter;

    fn field(key: &str, op: &str, values: &[&str]) -> FieldSelector {
        FieldSelector {
            match_expressions: vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }],
        }
    }

    #[test]
    fn cluster_affinity_filter_table() {
        let cluster = || {
            ClusterBuilder::new("m1")
                .region("eu")
                .provider("aws")
                .zones(&["eu-1a"])
                .label("env", "prod")
        };
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let prod = LabelSelector {
            match_labels: Some([("env".into(), "prod".into())].into()),
            ..Default::default()
        };
        let dev = LabelSelector {
            match_labels: Some([("env".into(), "dev".into())].into()),
            ..Default::default()
        };
        let table: Vec<(&str, Option<ClusterAffinity>, bool)> = vec![
            ("no affinity", None, true),
            ("empty affinity", Some(ClusterAffinity::default()), true),
            (
                "named",
                Some(ClusterAffinity {
                    cluster_names: names(&["m1", "m2"]),
                    ..Default::default()
                }),
                true,
            ),
            (
                "not named",
                Some(ClusterAffinity {
                    cluster_names: names(&["m2"]),
                    ..Default::default()
                }),
                false,
            ),
            (
                "excluded wins",
                Some(ClusterAffinity {
                    cluster_names: names(&["m1"]),
                    exclude: names(&["m1"]),
                    ..Default::default()
                }),
                false,
            ),
            (
                "label match",
                Some(ClusterAffinity {
                    label_selector: Some(prod.clone()),
                    ..Default::default()
                }),
                true,
            ),
            (
                "label mismatch",
                Some(ClusterAffinity {
                    label_selector: Some(dev),
                    ..Default::default()
                }),
                false,
            ),
            (
                "region in",
                Some(ClusterAffinity {
                    field_selector: Some(field("region", "In", &["eu"])),
                    ..Default::default()
                }),
                true,
            ),
            (
                "region not in",
                Some(ClusterAffinity {
                    field_selector: Some(field("region", "NotIn", &["eu"])),
                    ..Default::default()
                }),
                false,
            ),
            (
                "provider in",
                Some(ClusterAffinity {
                    field_selector: Some(field("provider", "In", &["gcp"])),
                    ..Default::default()
                }),
                false,
            ),
            (
                "zone in",
                Some(ClusterAffinity {
                    field_selector: Some(field("zone", "In", &["eu-1a"])),
                    ..Default::default()
                }),
                true,
            ),
            (
                "all parts must match",
                Some(ClusterAffinity {
                    label_selector: Some(prod),
                    field_selector: Some(field("region", "In", &["us"])),
                    ..Default::default()
                }),
                false,
            ),
        ];
        for (name, affinity, want) in table {
            let mut b = BindingBuilder::new();
            if let Some(a) = affinity {
                b = b.affinity(a);
            }
            let got = run_filter(&ClusterAffinityPlugin, &b.build(), cluster().build());
            assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        }
    }
}
