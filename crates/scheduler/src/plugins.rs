//! The filter and score plugins, one module each. Plugins read the [`crate::framework::Context`]
//! and one cluster; they never mutate the snapshot and never divide replicas.

pub mod api_enablement;
pub mod cluster_affinity;
pub mod cluster_eviction;
pub mod locality;
pub mod spread_constraint;
pub mod taint_toleration;

#[cfg(test)]
pub(crate) mod test_support {
    //! A tiny harness to run one plugin against one cluster and binding.

    use std::sync::Arc;

    use flotilla_api::{Cluster, work::ResourceBinding};

    use crate::{
        framework::{Context, FilterPlugin},
        snapshot::Snapshot,
    };

    /// Runs `plugin` on `cluster` for `binding`, as the algorithm would for its
    /// `clusterAffinity` (or the first `clusterAffinities` term).
    pub fn run_filter(
        plugin: &dyn FilterPlugin,
        binding: &ResourceBinding,
        cluster: Cluster,
    ) -> Result<(), String> {
        let snapshot = Snapshot::new([Arc::new(cluster)]);
        let placement = binding.spec.placement.clone().unwrap_or_default();
        let affinity = placement
            .cluster_affinity
            .as_ref()
            .or_else(|| placement.cluster_affinities.first().map(|t| &t.affinity));
        let ctx = Context {
            spec: &binding.spec,
            placement: &placement,
            affinity,
            previous: &binding.spec.clusters,
            spread_constraints: &placement.spread_constraints,
        };
        plugin.filter(&ctx, &snapshot.clusters()[0])
    }
}
