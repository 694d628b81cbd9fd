//! The crate's one error type and the per-cluster diagnosis attached to "no fit" errors.
//! Owns only error shapes and their messages; never decides anything.

use std::{collections::BTreeMap, fmt};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// At most this many clusters are named one by one in a diagnosis message (the histogram
/// still counts all of them), so a condition stays small in a large fleet.
pub const MAX_LISTED: usize = 50;

/// Why each rejected cluster was rejected, by cluster name. Deterministic (sorted by name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// How many clusters were considered.
    pub total: usize,
    /// Cluster name → the reason the first failing filter gave.
    pub rejected: BTreeMap<String, String>,
}

impl Diagnosis {
    /// A Karmada-style histogram: `2 cluster(s) had untolerated taints, 1 cluster(s) ...`,
    /// reasons sorted by text so the message is stable.
    pub fn histogram(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for reason in self.rejected.values() {
            *counts.entry(reason.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total == 0 {
            return f.write_str(
                "there are no Clusters to schedule onto: register a member cluster (a Cluster \
                 object) first",
            );
        }
        let available = self.total.saturating_sub(self.rejected.len());
        write!(f, "{available}/{} clusters are available", self.total)?;
        if !self.rejected.is_empty() {
            write!(f, ": {}", self.histogram())?;
            let mut per_cluster: Vec<String> = self
                .rejected
                .iter()
                .take(MAX_LISTED)
                .map(|(cluster, reason)| format!("{cluster}: {reason}"))
                .collect();
            if self.rejected.len() > MAX_LISTED {
                per_cluster.push(format!("and {} more", self.rejected.len() - MAX_LISTED));
            }
            write!(f, " ({})", per_cluster.join("; "))?;
        }
        Ok(())
    }
}

/// How many replicas one candidate cluster (a cluster that passed every filter) can hold, for
/// the message of a capacity failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The cluster name.
    pub cluster: String,
    /// Karmada's AvailableReplicas: what the estimator says still fits, plus `placed`.
    pub available: i64,
    /// The replicas the previous result already gave this cluster.
    pub placed: i64,
}

/// Renders rooms as `m1 2, m2 5 including 1 already placed`, naming at most [`MAX_LISTED`].
struct Rooms<'a>(&'a [Room]);

impl fmt::Display for Rooms<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, room) in self.0.iter().take(MAX_LISTED).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", room.cluster, room.available)?;
            if room.placed > 0 {
                write!(f, " including {} already placed", room.placed)?;
            }
        }
        if self.0.len() > MAX_LISTED {
            write!(f, ", and {} more", self.0.len() - MAX_LISTED)?;
        }
        Ok(())
    }
}

fn unschedulable_message(reason: &str, rooms: &[Room], diagnosis: &Diagnosis) -> String {
    if rooms.is_empty() {
        format!("{reason} ({diagnosis})")
    } else {
        format!(
            "{reason} (available replicas per cluster: {}; {diagnosis})",
            Rooms(rooms)
        )
    }
}

/// Everything that can go wrong in the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No cluster passed the filters.
    #[error("no cluster fits: {diagnosis}.")]
    NoClusterFit {
        /// Why each cluster was rejected.
        diagnosis: Diagnosis,
    },

    /// Clusters passed the filters, but they cannot hold the replicas or satisfy the spread
    /// constraints. The message lists what every candidate cluster can hold.
    #[error("{}", unschedulable_message(reason, rooms, diagnosis))]
    Unschedulable {
        /// What could not be satisfied.
        reason: String,
        /// What each candidate cluster can hold, sorted by name (empty for non-workloads,
        /// whose replicas are not counted).
        rooms: Vec<Room>,
        /// Which clusters were rejected by the filters, for context.
        diagnosis: Diagnosis,
    },

    /// The placement asks for something the scheduler does not support.
    #[error("unsupported placement: {0}")]
    UnsupportedPlacement(String),

    /// A quantity in a Cluster's resource summary or a binding's requests could not be parsed.
    #[error(transparent)]
    ParseQuantity(#[from] flotilla_api::quantity::QuantityError),

    /// The what-if input could not be read.
    #[error("invalid scheduling input: {0}")]
    WhatIfInput(String),

    /// The what-if result could not be rendered.
    #[error("rendering the result failed: {0}")]
    Render(String),

    /// Writing a binding's `spec.clusters` failed.
    #[error("failed to write spec.clusters of {binding}: {source}")]
    WriteSpec {
        /// The binding, as `namespace/name` or `name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Writing a binding's scheduling status failed.
    #[error("failed to write the status of {binding}: {source}")]
    WriteStatus {
        /// The binding, as `namespace/name` or `name`.
        binding: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// The controller platform failed (a cache asked for after the caches started).
    #[error(transparent)]
    Platform(#[from] flotilla_runtime::Error),
}

impl flotilla_runtime::ReconcileError for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::NoClusterFit { .. } => "NoClusterFit",
            Self::Unschedulable { .. } => "Unschedulable",
            Self::UnsupportedPlacement(_) => "UnsupportedPlacement",
            Self::ParseQuantity(_) => "ParseQuantity",
            Self::WhatIfInput(_) => "WhatIfInput",
            Self::Render(_) => "Render",
            Self::WriteSpec { .. } => "WriteSpec",
            Self::WriteStatus { .. } => "WriteStatus",
            Self::Platform(_) => "Platform",
        }
    }

    fn is_conflict(&self) -> bool {
        match self {
            Self::WriteSpec { source, .. } | Self::WriteStatus { source, .. } => {
                flotilla_runtime::error::is_conflict(source)
            }
            _ => false,
        }
    }
}

impl Error {
    /// The `Scheduled` condition reason for this error (constants from `flotilla_api`).
    pub fn condition_reason(&self) -> &'static str {
        use flotilla_api::conditions::reasons;
        match self {
            Self::NoClusterFit { .. } => reasons::NO_CLUSTER_FIT,
            Self::Unschedulable { .. } | Self::UnsupportedPlacement(_) => reasons::UNSCHEDULABLE,
            _ => reasons::SCHEDULER_ERROR,
        }
    }

    /// Whether a user can fix this error by changing the placement or the fleet (as opposed to
    /// an internal or API failure).
    pub fn is_user_fixable(&self) -> bool {
        matches!(
            self,
            Self::NoClusterFit { .. }
                | Self::Unschedulable { .. }
                | Self::UnsupportedPlacement(_)
                | Self::ParseQuantity(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_fleet_says_clusters_must_be_registered() {
        let text = Error::NoClusterFit {
            diagnosis: Diagnosis::default(),
        }
        .to_string();
        assert_eq!(
            text,
            "no cluster fits: there are no Clusters to schedule onto: register a member cluster \
             (a Cluster object) first."
        );
    }

    #[test]
    fn diagnosis_names_at_most_fifty_clusters_but_counts_all() {
        let rejected: BTreeMap<String, String> = (0..120)
            .map(|i| {
                (
                    format!("m{i:03}"),
                    "cluster(s) had untolerated taint {x:NoSchedule}".to_owned(),
                )
            })
            .collect();
        let diagnosis = Diagnosis {
            total: 130,
            rejected,
        };
        let text = diagnosis.to_string();
        assert!(text.starts_with("10/130 clusters are available: 120 cluster(s) had untolerated taint {x:NoSchedule} (m000: "), "{text}");
        assert!(
            text.contains("m049: ") && !text.contains("m050: "),
            "{text}"
        );
        assert!(text.ends_with("; and 70 more)"), "{text}");
    }
}
