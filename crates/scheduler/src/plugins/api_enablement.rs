//! APIEnablement: filter clusters that do not serve the template's group/version/kind, per
//! `status.apiEnablements`. Clusters already in the result are kept, so a partial API report
//! never evicts a running workload.

use crate::{
    framework::{Context, FilterPlugin},
    snapshot::ClusterInfo,
};

/// The APIEnablement filter.
#[derive(Debug, Clone, Copy)]
pub struct ApiEnablement;

/// The rejection reason.
pub const REASON: &str = "cluster(s) did not have the API resource";

impl FilterPlugin for ApiEnablement {
    fn name(&self) -> &'static str {
        "APIEnablement"
    }

    fn filter(&self, ctx: &Context<'_>, cluster: &ClusterInfo) -> Result<(), String> {
        let resource = &ctx.spec.resource;
        let enabled = cluster.cluster.status.as_ref().is_some_and(|status| {
            status.api_enablements.iter().any(|e| {
                e.group_version == resource.api_version
                    && e.resources.iter().any(|r| r.kind == resource.kind)
            })
        });
        if enabled || ctx.targets(&cluster.name) {
            Ok(())
        } else {
            Err(REASON.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

    use crate::plugins::test_support::run_filter;

    #[test]
    fn api_enablement_filter_table() {
        let deployment = || BindingBuilder::new().resource("apps/v1", "Deployment");
        let table: Vec<(&str, ClusterBuilder, BindingBuilder, bool)> = vec![
            (
                "served",
                ClusterBuilder::new("m1").api("apps/v1", "Deployment"),
                deployment(),
                true,
            ),
            (
                "nothing reported",
                ClusterBuilder::new("m1").no_apis(),
                deployment(),
                false,
            ),
            (
                "other kind",
                ClusterBuilder::new("m1")
                    .no_apis()
                    .api("apps/v1", "StatefulSet"),
                deployment(),
                false,
            ),
            (
                "other version",
                ClusterBuilder::new("m1")
                    .no_apis()
                    .api("apps/v1beta1", "Deployment"),
                deployment(),
                false,
            ),
            (
                "core group",
                ClusterBuilder::new("m1").no_apis().api("v1", "ConfigMap"),
                BindingBuilder::new().resource("v1", "ConfigMap"),
                true,
            ),
            (
                "already targeted",
                ClusterBuilder::new("m1").no_apis(),
                deployment().previous(&[("m1", 2)]),
                true,
            ),
        ];
        for (name, cluster, binding, want) in table {
            let got = run_filter(&ApiEnablement, &binding.build(), cluster.build());
            assert_eq!(got.is_ok(), want, "{name}: {got:?}");
        }
    }
}
