//! ClusterEviction: filter clusters the binding is being evicted from
//! (`spec.gracefulEvictionTasks[].fromCluster`), so a failover never lands back on them.

use crate::{
    framework::{Context, FilterPlugin},
    snapshot::ClusterInfo,
};

/// The ClusterEviction filter.
#[derive(Debug, Clone, Copy)]
pub struct ClusterEviction;

/// The rejection reason.
pub const REASON: &str = "cluster(s) is in the process of eviction";

impl FilterPlugin for ClusterEviction {
    fn name(&self) -> &'static str {
        "ClusterEviction"
    }

    fn filter(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String> {
        if ctx
            .spec
            .graceful_eviction_tasks
            .iter()
            .any(|t| t.from_cluster == cluster.name)
        {
            Err(REASON.to_owned())
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

    use crate::plugins::test_support::run_filter;

    #[test]
    fn cluster_eviction_filter_table() {
        let table = [
            ("no tasks", BindingBuilder::new(), true),
            (
                "evicted from this cluster",
                BindingBuilder::new().evicting("m1"),
                false,
            ),
            (
                "evicted from another cluster",
                BindingBuilder::new().evicting("m2"),
                true,
            ),
        ];
        for (name, binding, want) in table {
            let got = run_filter(
                &ClusterEviction,
                &binding.build(),
                ClusterBuilder::new("m1").build(),
            );
            assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        }
    }
}
