//! An immutable, pre-parsed view of the fleet for one or many scheduling decisions: every
//! Cluster plus its parsed capacity, sorted by name. Owns parsing of cluster state; it is never
//! mutated by plugins or the algorithm.

use std::{collections::HashMap, sync::Arc};

use flotilla_api::Cluster;

use crate::estimator::Capacity;

/// One cluster in a snapshot.
#[derive(Clone, Debug)]
pub struct ClusterInfo {
    /// The cluster name.
    pub name: String,
    /// The Cluster object as observed.
    pub cluster: Arc<Cluster>,
    /// Parsed `status.resourceSummary`, when the cluster reports one.
    pub capacity: Option<Capacity>,
    /// Whether the cluster carries a deletionTimestamp.
    pub deleting: bool,
    /// Position in the snapshot; snapshots are sorted by name, so comparing indexes compares
    /// names (cheaply).
    pub index: usize,
    /// Region, provider and zones as small integers, so spreading groups without hashing.
    pub topology: Topology,
}

/// A cluster's location as ids into a name table shared by the whole snapshot.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// `spec.region`, if set and not empty.
    pub region: Option<u32>,
    /// `spec.provider`, if set and not empty.
    pub provider: Option<u32>,
    /// Every zone (`spec.zone` and `spec.zones`), without duplicates or empty names.
    pub zones: Vec<u32>,
    /// The snapshot's name table: id → region, provider or zone name.
    pub names: Arc<[String]>,
}

/// The fleet as the scheduler sees it for one decision.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    clusters: Vec<ClusterInfo>,
}

impl Snapshot {
    /// Builds a snapshot. Clusters without a name are ignored; clusters are sorted by name so
    /// every decision is independent of watch order.
    pub fn new(clusters: impl IntoIterator<Item = Arc<Cluster>>) -> Self {
        let mut clusters: Vec<ClusterInfo> = clusters
            .into_iter()
            .filter_map(|cluster| {
                let name = cluster.metadata.name.clone().filter(|n| !n.is_empty())?;
                let capacity = Capacity::from_cluster(&cluster);
                let deleting = cluster.metadata.deletion_timestamp.is_some();
                Some(ClusterInfo {
                    name,
                    cluster,
                    capacity,
                    deleting,
                    index: 0,
                    topology: Topology::default(),
                })
            })
            .collect();
        clusters.sort_by(|a, b| a.name.cmp(&b.name));
        clusters.dedup_by(|a, b| a.name == b.name);
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut intern = |name: &str| -> Option<u32> {
            if name.is_empty() {
                return None;
            }
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            Some(*ids.entry(name.to_owned()).or_insert(next))
        };
        for (index, info) in clusters.iter_mut().enumerate() {
            info.index = index;
            let spec = &info.cluster.spec;
            info.topology.region = spec.region.as_deref().and_then(&mut intern);
            info.topology.provider = spec.provider.as_deref().and_then(&mut intern);
            let mut zones: Vec<u32> = info.cluster.zones().filter_map(&mut intern).collect();
            zones.sort_unstable();
            zones.dedup();
            info.topology.zones = zones;
        }
        let mut names = vec![String::new(); ids.len()];
        for (name, id) in ids {
            if let Some(slot) = names.get_mut(id as usize) {
                *slot = name;
            }
        }
        let names: Arc<[String]> = names.into();
        for info in &mut clusters {
            info.topology.names = names.clone();
        }
        Self { clusters }
    }

    /// Builds a snapshot from owned clusters.
    pub fn from_clusters(clusters: impl IntoIterator<Item = Cluster>) -> Self {
        Self::new(clusters.into_iter().map(Arc::new))
    }

    /// Every cluster, sorted by name.
    pub fn clusters(&self) -> &[ClusterInfo] {
        &self.clusters
    }

    /// A cluster by name.
    pub fn get(&self, name: &str) -> Option<&ClusterInfo> {
        self.clusters
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.clusters[i])
    }

    /// How many clusters the snapshot holds.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    /// Whether the snapshot is empty.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }
}
