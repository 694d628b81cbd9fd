//! One scheduling decision: filter → score → select (spread) → divide, over a [`Snapshot`] and
//! one binding, with ordered `clusterAffinities` fallback. Pure: no IO, no clock, the snapshot
//! is only read. Owns the pipeline, not the plugins' or division's rules.

use flotilla_api::{
    ClusterResourceBinding, ResourceBinding,
    conditions::{self, SCHEDULED},
    policy::{ClusterAffinity, Placement, ReplicaDivisionPreference, ReplicaSchedulingType},
    work::{ResourceBindingSpec, ResourceBindingStatus, TargetCluster},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::{
    division::{self, Division, Selected, Strategy, TieBreak},
    error::{Diagnosis, Error, Result, Room},
    estimator::{Requests, max_available_replicas},
    framework::{Context, Registry, ScoreInput},
    snapshot::Snapshot,
    spread::{self, Candidate, Need, SelectError},
};

/// Everything the scheduler reads about one binding.
#[derive(Clone, Copy, Debug)]
pub struct ScheduleInput<'a> {
    /// `metadata.uid` (the tie-break parity); empty when unknown.
    pub uid: &'a str,
    /// `metadata.generation`, when known: a reschedule trigger is honoured once per generation
    /// (see [`Self::is_fresh`]).
    pub generation: Option<i64>,
    /// The binding spec: replicas, requirements, placement, previous clusters, eviction tasks,
    /// rescheduleTriggeredAt.
    pub spec: &'a ResourceBindingSpec,
    /// The binding status: lastScheduledTime and the observed affinity term.
    pub status: Option<&'a ResourceBindingStatus>,
}

impl<'a> ScheduleInput<'a> {
    /// The input of a ResourceBinding.
    pub fn from_resource_binding(binding: &'a ResourceBinding) -> Self {
        Self {
            uid: binding.metadata.uid.as_deref().unwrap_or_default(),
            generation: binding.metadata.generation,
            spec: &binding.spec,
            status: binding.status.as_ref(),
        }
    }

    /// The input of a ClusterResourceBinding.
    pub fn from_cluster_resource_binding(binding: &'a ClusterResourceBinding) -> Self {
        Self {
            uid: binding.metadata.uid.as_deref().unwrap_or_default(),
            generation: binding.metadata.generation,
            spec: &binding.spec.spec,
            status: binding.status.as_ref(),
        }
    }

    /// Whether this is a workload: replicas > 0 or per-replica requirements.
    pub fn is_workload(&self) -> bool {
        self.spec.replicas > 0 || self.spec.replica_requirements.is_some()
    }

    /// Fresh mode: `rescheduleTriggeredAt` is later than `lastScheduledTime` (Karmada's rule),
    /// and the binding has not been scheduled successfully at its current generation since.
    ///
    /// The second half only matters when `lastScheduledTime` cannot catch up with the trigger:
    /// the scheduler never writes a `lastScheduledTime` later than its clock, so a trigger in
    /// the future (clock skew, or a typo) stays later than it. Such a trigger means "reschedule
    /// now", once: setting it changes the spec, so the generation moves; after a successful
    /// Fresh pass at that generation (`Scheduled=True` observing it) the trigger is spent, and
    /// the next trigger (a new spec generation) is honoured again, whatever its time.
    pub fn is_fresh(&self) -> bool {
        reschedule_requested(
            self.spec.reschedule_triggered_at.as_ref(),
            self.status.and_then(|s| s.last_scheduled_time.as_ref()),
        ) && !self.scheduled_at_current_generation()
    }

    /// Whether `Scheduled=True` was written for the binding's current generation.
    fn scheduled_at_current_generation(&self) -> bool {
        self.generation.is_some()
            && self
                .status
                .and_then(|s| conditions::find(&s.conditions, SCHEDULED))
                .is_some_and(|c| {
                    c.status == conditions::TRUE && c.observed_generation == self.generation
                })
    }
}

/// Whether a manual reschedule is pending: `triggered` set and later than `last` (or no `last`).
pub fn reschedule_requested(triggered: Option<&Time>, last: Option<&Time>) -> bool {
    match (triggered, last) {
        (Some(t), Some(l)) => t.0 > l.0,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The new `spec.clusters`, sorted by name.
    pub clusters: Vec<TargetCluster>,
    /// The `clusterAffinities` term used, when the placement has terms.
    pub affinity_name: Option<String>,
}

/// Schedules one binding with the default plugins.
pub fn schedule(snapshot: &Snapshot, input: &ScheduleInput<'_>) -> Result<Decision> {
    schedule_with(Registry::shared(), snapshot, input)
}

/// Refuses Karmada features the API accepts but this scheduler does not implement, so they are
/// reported on the binding instead of being silently ignored.
fn reject_unsupported(spec: &ResourceBindingSpec, placement: &Placement) -> Result<()> {
    let unsupported = if placement.workload_affinity.is_some() {
        Some("placement.workloadAffinity is not supported yet")
    } else if placement
        .cluster_affinities
        .iter()
        .any(|t| !t.overflow_affinities.is_empty())
    {
        Some("placement.clusterAffinities[].overflowAffinities is not supported yet")
    } else if !spec.components.is_empty() {
        Some("multi-template workloads (spec.components) are not supported yet")
    } else {
        None
    };
    match unsupported {
        Some(reason) => Err(Error::UnsupportedPlacement(reason.to_owned())),
        None => Ok(()),
    }
}

/// Schedules one binding with the given plugins. With ordered `clusterAffinities`, the terms
/// are tried from the observed term on (from the first on a Fresh reschedule); the first that
/// schedules wins, and when none does the first term's error is returned.
pub fn schedule_with(
    registry: &Registry,
    snapshot: &Snapshot,
    input: &ScheduleInput<'_>,
) -> Result<Decision> {
    let default_placement = Placement::default();
    let placement = input.spec.placement.as_ref().unwrap_or(&default_placement);
    reject_unsupported(input.spec, placement)?;
    let requests = Requests::parse(input.spec.replica_requirements.as_ref())?;
    if placement.cluster_affinities.is_empty() {
        let clusters = schedule_term(
            registry,
            snapshot,
            input,
            placement,
            placement.cluster_affinity.as_ref(),
            &requests,
        )?;
        return Ok(Decision {
            clusters,
            affinity_name: None,
        });
    }
    let observed = input
        .status
        .and_then(|s| s.scheduler_observing_affinity_name.as_deref());
    let start = match observed {
        Some(name) if !input.is_fresh() => placement
            .cluster_affinities
            .iter()
            .position(|t| t.affinity_name == name)
            .unwrap_or(0),
        _ => 0,
    };
    let mut first_error = None;
    for term in &placement.cluster_affinities[start..] {
        match schedule_term(
            registry,
            snapshot,
            input,
            placement,
            Some(&term.affinity),
            &requests,
        ) {
            Ok(clusters) => {
                return Ok(Decision {
                    clusters,
                    affinity_name: Some(term.affinity_name.clone()),
                });
            }
            Err(error @ (Error::NoClusterFit { .. } | Error::Unschedulable { .. })) => {
                first_error.get_or_insert(error);
            }
            Err(other) => return Err(other),
        }
    }
    Err(first_error
        .unwrap_or_else(|| Error::UnsupportedPlacement("no clusterAffinities term to try".into())))
}

fn strategy(placement: &Placement) -> Strategy {
    match &placement.replica_scheduling {
        None => Strategy::Duplicated,
        Some(s) if s.replica_scheduling_type == ReplicaSchedulingType::Duplicated => {
            Strategy::Duplicated
        }
        Some(s) => match (s.replica_division_preference, &s.weight_preference) {
            (Some(ReplicaDivisionPreference::Aggregated), _) => Strategy::Aggregated,
            (_, Some(w)) if w.dynamic_weight.is_some() => Strategy::DynamicWeight,
            _ => Strategy::StaticWeight,
        },
    }
}

fn schedule_term(
    registry: &Registry,
    snapshot: &Snapshot,
    input: &ScheduleInput<'_>,
    placement: &Placement,
    affinity: Option<&ClusterAffinity>,
    requests: &Requests,
) -> Result<Vec<TargetCluster>> {
    let ctx = Context {
        spec: input.spec,
        placement,
        affinity,
        previous: &input.spec.clusters,
        spread_constraints: &placement.spread_constraints,
    };
    let replicas = i64::from(input.spec.replicas.max(0));
    let workload = input.is_workload();

    // Filter.
    let mut diagnosis = Diagnosis {
        total: snapshot.len(),
        ..Default::default()
    };
    let mut passed = Vec::with_capacity(snapshot.len());
    for info in snapshot.clusters() {
        let verdict = if info.deleting {
            Err("cluster(s) is being deleted".to_owned())
        } else {
            registry.run_filters(&ctx, info)
        };
        match verdict {
            Ok(()) => passed.push(info),
            Err(reason) => {
                diagnosis.rejected.insert(info.name.clone(), reason);
            }
        }
    }
    if passed.is_empty() {
        return Err(Error::NoClusterFit { diagnosis });
    }

    // Estimate and score.
    let mut candidates: Vec<Candidate<'_>> = passed
        .iter()
        .map(|info| {
            let estimate = if workload {
                max_available_replicas(info.capacity.as_ref(), requests)
            } else {
                i64::MAX
            };
            let allocatable = if estimate >= i64::from(i32::MAX) {
                replicas
            } else {
                estimate
            };
            let available = allocatable.saturating_add(ctx.previous_replicas(&info.name));
            Candidate {
                info,
                score: 0,
                allocatable,
                available,
            }
        })
        .collect();
    let inputs: Vec<ScoreInput<'_>> = candidates
        .iter()
        .map(|c| ScoreInput {
            cluster: c.info,
            available: c.available,
        })
        .collect();
    let mut totals = Vec::new();
    registry.run_scores(&ctx, &inputs, &mut totals);
    for (candidate, total) in candidates.iter_mut().zip(totals) {
        candidate.score = total;
    }
    spread::sort(&mut candidates);
    // What each candidate can hold, for the message of a capacity failure.
    let rooms = || -> Vec<Room> {
        if !workload {
            return Vec::new();
        }
        let mut rooms: Vec<Room> = candidates
            .iter()
            .map(|c| Room {
                cluster: c.info.name.clone(),
                available: c.available,
                placed: ctx.previous_replicas(&c.info.name),
            })
            .collect();
        rooms.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        rooms
    };

    // Select.
    let strategy = if workload {
        Some(strategy(placement))
    } else {
        None
    };
    let need = match strategy {
        Some(Strategy::StaticWeight) => Need::Everything,
        Some(Strategy::Duplicated) => Need::IgnoreResources,
        None => Need::Replicas(0),
        Some(_) => Need::Replicas(replicas),
    };
    let selected = spread::select(
        &candidates,
        &placement.spread_constraints,
        need,
        replicas,
        strategy == Some(Strategy::Duplicated),
    )
    .map_err(|e| match e {
        SelectError::Unschedulable(reason) => Error::Unschedulable {
            reason,
            rooms: rooms(),
            diagnosis: diagnosis.clone(),
        },
        SelectError::Unsupported(reason) => Error::UnsupportedPlacement(reason),
    })?;

    // Divide.
    let Some(strategy) = strategy else {
        let mut out: Vec<TargetCluster> = selected
            .iter()
            .map(|c| TargetCluster {
                name: c.info.name.clone(),
                replicas: 0,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(out);
    };
    let chosen: Vec<Selected<'_>> = selected
        .iter()
        .map(|c| Selected {
            name: &c.info.name,
            cluster: &c.info.cluster,
            allocatable: c.allocatable,
        })
        .collect();
    let division = Division {
        strategy,
        replicas,
        previous: &input.spec.clusters,
        fresh: input.is_fresh(),
        tie: TieBreak::for_uid(input.uid),
        weights: placement
            .replica_scheduling
            .as_ref()
            .and_then(|s| s.weight_preference.as_ref()),
    };
    let assigned = division::assign(&division, &chosen).map_err(|reason| Error::Unschedulable {
        reason,
        rooms: rooms(),
        diagnosis,
    })?;
    Ok(assigned
        .into_iter()
        .map(|(name, replicas)| TargetCluster {
            name: name.to_owned(),
            replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
        })
        .collect())
}

#[cfg(test)]
mod tests;
