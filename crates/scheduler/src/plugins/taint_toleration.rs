//! TaintToleration: filter clusters with a NoSchedule or NoExecute taint the placement does not
//! tolerate. Clusters already in the result (`spec.clusters`) are not checked at all, as in
//! Karmada: the scheduler never moves a workload off a cluster because of a taint. Evicting
//! from a cluster with an untolerated NoExecute taint is the taint manager's job (graceful
//! eviction through `gracefulEvictionTasks`, which the ClusterEviction filter then honours),
//! not the scheduler's.

use crate::{
    framework::{Context, FilterPlugin},
    selector::tolerates,
    snapshot::ClusterInfo,
};

/// The TaintToleration filter.
#[derive(Debug, Clone, Copy)]
pub struct TaintToleration;

impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }

    fn filter(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String> {
        let taints = &cluster.cluster.spec.taints;
        if taints.is_empty() || ctx.targets(&cluster.name) {
            return Ok(());
        }
        for taint in taints {
            let relevant = matches!(taint.effect.as_str(), "NoSchedule" | "NoExecute");
            if relevant
                && !ctx
                    .placement
                    .cluster_tolerations
                    .iter()
                    .any(|t| tolerates(t, taint))
            {
                let value = taint
                    .value
                    .as_deref()
                    .map(|v| format!("={v}"))
                    .unwrap_or_default();
                return Err(format!(
                    "cluster(s) had untolerated taint {{{}{value}:{}}}",
                    taint.key, taint.effect
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder, toleration};

    use crate::plugins::test_support::run_filter;

    #[test]
    fn taint_toleration_filter_table() {
        let table: Vec<(&str, ClusterBuilder, BindingBuilder, bool)> = vec![
            (
                "no taints",
                ClusterBuilder::new("m1"),
                BindingBuilder::new(),
                true,
            ),
            (
                "untolerated NoSchedule",
                ClusterBuilder::new("m1").taint("k", "NoSchedule"),
                BindingBuilder::new(),
                false,
            ),
            (
                "untolerated NoExecute",
                ClusterBuilder::new("m1").taint("k", "NoExecute"),
                BindingBuilder::new(),
                false,
            ),
            (
                "PreferNoSchedule ignored",
                ClusterBuilder::new("m1").taint("k", "PreferNoSchedule"),
                BindingBuilder::new(),
                true,
            ),
            (
                "tolerated",
                ClusterBuilder::new("m1").taint("k", "NoSchedule"),
                BindingBuilder::new().tolerate(toleration(Some("k"), "Exists", None, None)),
                true,
            ),
            (
                "toleration for another effect",
                ClusterBuilder::new("m1").taint("k", "NoExecute"),
                BindingBuilder::new().tolerate(toleration(
                    Some("k"),
                    "Exists",
                    None,
                    Some("NoSchedule"),
                )),
                false,
            ),
            (
                "already targeted ignores NoSchedule",
                ClusterBuilder::new("m1").taint("k", "NoSchedule"),
                BindingBuilder::new().previous(&[("m1", 1)]),
                true,
            ),
            (
                "already targeted ignores NoExecute (the taint manager evicts)",
                ClusterBuilder::new("m1").taint("k", "NoExecute"),
                BindingBuilder::new().previous(&[("m1", 1)]),
                true,
            ),
            (
                "targeting another cluster does not exempt this one",
                ClusterBuilder::new("m1").taint("k", "NoExecute"),
                BindingBuilder::new().previous(&[("m2", 1)]),
                false,
            ),
        ];
        for (name, cluster, binding, want) in table {
            let got = run_filter(&TaintToleration, &binding.build(), cluster.build());
            assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        }
    }

    #[test]
    fn reason_names_the_taint() {
        let got = run_filter(
            &TaintToleration,
            &BindingBuilder::new().build(),
            ClusterBuilder::new("m1").taint("gpu", "NoSchedule").build(),
        );
        assert_eq!(
            got,
            Err("cluster(s) had untolerated taint {gpu:NoSchedule}".to_owned())
        );
    }
}
