//! ClusterAffinity: filter clusters that do not match the affinity in force (`clusterAffinity`
//! or the current `clusterAffinities` term). Its score is always 0, as in Karmada, so placements
//! match Karmada's; it stays registered as a weighted extension point.

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
    use crate::{
        plugins::test_support::run_filter,
        testing::{BindingBuilder, ClusterBuilder},
    };

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
