//! SpreadConstraint filter: a cluster can only join a spread by provider, region, zone or label
//! if it has that property. Group selection itself lives in `crate::spread`.

use flotilla_api::policy::SpreadByField;

use crate::{
    framework::{Context, FilterPlugin},
    snapshot::ClusterInfo,
};

/// The SpreadConstraint filter.
#[derive(Debug, Clone, Copy)]
pub struct SpreadConstraintFilter;

impl FilterPlugin for SpreadConstraintFilter {
    fn name(&self) -> &'static str {
        "SpreadConstraint"
    }

    fn filter(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String> {
        let spec = &cluster.cluster.spec;
        for constraint in ctx.spread_constraints {
            match constraint.effective_field() {
                Some(SpreadByField::Cluster) => {}
                Some(SpreadByField::Provider)
                    if spec.provider.as_deref().unwrap_or_default().is_empty() =>
                {
                    return Err("cluster(s) did not have provider property".to_owned());
                }
                Some(SpreadByField::Region)
                    if spec.region.as_deref().unwrap_or_default().is_empty() =>
                {
                    return Err("cluster(s) did not have region property".to_owned());
                }
                Some(SpreadByField::Zone) if cluster.cluster.zones().all(str::is_empty) => {
                    return Err("cluster(s) did not have zones property".to_owned());
                }
                Some(_) => {}
                None => {
                    let key = constraint.spread_by_label.as_deref().unwrap_or_default();
                    let has = cluster
                        .cluster
                        .metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(key));
                    if !has {
                        return Err(format!("cluster(s) did not have label {key}"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

    use crate::plugins::test_support::run_filter;

    #[test]
    fn spread_constraint_filter_table() {
        let bare = || ClusterBuilder::new("m1");
        let full = || {
            ClusterBuilder::new("m1")
                .region("r")
                .provider("p")
                .zones(&["z"])
                .label("rack", "a")
        };
        let by = |f| {
            BindingBuilder::new()
                .spread(SpreadByField::Cluster, 1, 0)
                .spread(f, 1, 0)
        };
        let table: Vec<(&str, ClusterBuilder, BindingBuilder, bool)> = vec![
            (
                "cluster needs nothing",
                bare(),
                BindingBuilder::new().spread(SpreadByField::Cluster, 1, 2),
                true,
            ),
            ("region missing", bare(), by(SpreadByField::Region), false),
            ("region present", full(), by(SpreadByField::Region), true),
            ("zone missing", bare(), by(SpreadByField::Zone), false),
            ("zone present", full(), by(SpreadByField::Zone), true),
            (
                "provider missing",
                bare(),
                by(SpreadByField::Provider),
                false,
            ),
            (
                "provider present",
                full(),
                by(SpreadByField::Provider),
                true,
            ),
            (
                "label missing",
                bare(),
                BindingBuilder::new().spread_by_label("rack", 1, 0),
                false,
            ),
            (
                "label present",
                full(),
                BindingBuilder::new().spread_by_label("rack", 1, 0),
                true,
            ),
        ];
        for (name, cluster, binding, want) in table {
            let got = run_filter(&SpreadConstraintFilter, &binding.build(), cluster.build());
            assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        }
    }
}
