//! The Push-mode cluster-status controller, like Karmada's: every period (and when a Cluster's
//! connection settings or its Secret change — never because of a status or taint write), for
//! each Cluster with `spec.syncMode: Push`, it takes the member's client from the shared member
//! clients, probes health, collects the version, API enablements, node and resource summaries,
//! writes `Cluster.status` (field manager `flotilla-cluster-status`, only the `Ready` and
//! `CompleteAPIEnablements` conditions are its own) only when it changed, and renews the
//! cluster's heartbeat Lease. It never touches Pull clusters (their agent reports) and never
//! writes to a member. The decisions are plain functions in [`ready`], [`summary`] and
//! [`next_status`].

pub mod collect;
pub mod ready;
pub mod summary;

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use flotilla_api::{
    Cluster,
    cluster::{ApiEnablement, ClusterStatus, ClusterSyncMode, NodeSummary, ResourceSummary},
    conditions::{self, COMPLETE_API_ENABLEMENTS, READY, reasons},
    keys::field_managers::CLUSTER_STATUS,
};
use flotilla_runtime::{
    Context, Runner, Settings,
    cache::PerObject,
    members::Members,
    status::{self, StatusWrite},
};
use k8s_openapi::{
    api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{controller::Action, reflector::ObjectRef},
};
use tracing::{debug, info, warn};

use self::{
    collect::Failure,
    ready::{FailureTracker, Health, Verdict},
    summary::Completeness,
};
use crate::{
    error::{Error, Result},
    heartbeat,
};

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often each Push cluster is probed.
    pub period: Duration,
    /// How long probes of a Ready cluster must keep failing before it turns NotReady
    /// (Karmada's `--cluster-failure-threshold`).
    pub failure_threshold: Duration,
    /// How many clusters are probed at once.
    pub concurrency: u16,
    /// The longest any single request to a member may take.
    pub request_timeout: Duration,
    /// The `leaseDurationSeconds` written into each cluster's heartbeat Lease (informational:
    /// the cluster controller's grace period decides when a silent cluster turns Unknown).
    pub heartbeat_duration: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(10),
            failure_threshold: Duration::from_secs(30),
            concurrency: 5,
            request_timeout: Duration::from_secs(5),
            heartbeat_duration: Duration::from_secs(40),
        }
    }
}

/// What one pass learnt about a member.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// No usable client: the message says what is wrong (bad or missing Secret, rejected
    /// credentials).
    CollectionFailed(String),
    /// The health probe ran; when healthy, whatever could be collected.
    Probed {
        /// The probe outcome.
        health: Health,
        /// What was collected; `None` fields could not be collected and keep their old values.
        collected: Collected,
    },
}

/// What was collected from a healthy member.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Collected {
    /// `/version`'s `gitVersion`.
    pub kubernetes_version: Option<String>,
    /// API enablements and how complete they are.
    pub api_enablements: Option<(Vec<ApiEnablement>, Completeness)>,
    /// Node and resource summaries.
    pub summaries: Option<(NodeSummary, ResourceSummary)>,
}

/// Computes the next `Cluster.status` from the current one and a pass's observation. Fields
/// that could not be observed keep their values; `Ready` follows [`ready::decide`]
/// (`failing_for` from the cluster's [`FailureTracker`]); conditions keep `lastTransitionTime`
/// unless their status changes, so an unchanged member yields an identical status.
pub fn next_status(
    current: &ClusterStatus,
    generation: Option<i64>,
    observation: &Observation,
    failing_for: Option<Duration>,
    failure_threshold: Duration,
    now: Time,
) -> ClusterStatus {
    let mut next = current.clone();
    let set = |next: &mut ClusterStatus, type_: &str, verdict: Verdict| {
        conditions::set_condition(
            &mut next.conditions,
            conditions::new(
                type_,
                verdict.ready,
                verdict.reason,
                verdict.message,
                generation,
            ),
            now.clone(),
        );
    };
    match observation {
        Observation::CollectionFailed(message) => {
            set(
                &mut next,
                READY,
                Verdict::collection_failed(message.clone()),
            );
        }
        Observation::Probed { health, collected } => {
            let current_ready = conditions::find(&current.conditions, READY);
            if let Some(verdict) =
                ready::decide(current_ready, health, failing_for, failure_threshold)
            {
                set(&mut next, READY, verdict);
            }
            if let Some(version) = &collected.kubernetes_version {
                next.kubernetes_version = Some(version.clone());
            }
            if let Some((enablements, completeness)) = &collected.api_enablements {
                next.api_enablements = enablements.clone();
                set(
                    &mut next,
                    COMPLETE_API_ENABLEMENTS,
                    enablement_verdict(enablements, completeness),
                );
            }
            if let Some((nodes, resources)) = &collected.summaries {
                next.node_summary = Some(nodes.clone());
                next.resource_summary = Some(resources.clone());
            }
        }
    }
    next.observed_generation = generation;
    next
}

fn enablement_verdict(enablements: &[ApiEnablement], completeness: &Completeness) -> Verdict {
    match completeness {
        Completeness::Complete => Verdict {
            ready: true,
            reason: reasons::COMPLETE,
            message: format!("collected all {} API group-versions", enablements.len()),
        },
        Completeness::Partial(failed) if failed.is_empty() => Verdict {
            ready: false,
            reason: reasons::PARTIAL,
            message: "the list of API groups could not be read completely".to_owned(),
        },
        Completeness::Partial(failed) => Verdict {
            ready: false,
            reason: reasons::PARTIAL,
            message: format!("could not collect the resources of {}", failed.join(", ")),
        },
        Completeness::Empty => Verdict {
            ready: false,
            reason: reasons::EMPTY,
            message: "no API group-version could be collected".to_owned(),
        },
    }
}

/// The conditions this controller owns in `Cluster.status`.
pub const OWNED_CONDITIONS: [&str; 2] = [READY, COMPLETE_API_ENABLEMENTS];

/// The controller's own state beside the shared context.
struct State {
    hub: Client,
    options: Options,
    members: Arc<Members>,
    /// Per cluster: since when probes have failed.
    trackers: PerObject<Cluster, FailureTracker>,
}

impl State {
    fn observe_health(&self, name: &str, healthy: bool) -> Option<Duration> {
        self.trackers
            .lock()
            .entry(ObjectRef::new(name))
            .or_default()
            .observe(healthy, Instant::now())
    }

    fn forget(&self, name: &str) {
        self.trackers.lock().remove(&ObjectRef::new(name));
    }
}

/// Probes one member and collects what it can. Only hub failures are errors; everything the
/// member does is part of the observation.
async fn observe(state: &State, cluster: &Cluster) -> Result<Observation> {
    let client = match state.members.client(cluster).await {
        Ok(client) => client,
        Err(flotilla_runtime::Error::MemberClient(message)) => {
            return Ok(Observation::CollectionFailed(message));
        }
        Err(other) => return Err(other.into()),
    };
    let timeout = state.options.request_timeout;
    let health = collect::probe(&client, timeout).await;
    let mut collected = Collected::default();
    if health != Health::Healthy {
        return Ok(Observation::Probed { health, collected });
    }
    let denied = |failure: &Failure| {
        let secret = cluster
            .spec
            .secret_ref
            .as_ref()
            .map(|r| format!("{}/{}", r.namespace, r.name))
            .unwrap_or_default();
        Observation::CollectionFailed(format!(
            "the member refused the credentials in Secret {secret} ({failure}); give the token \
             permission to discover APIs and list nodes and pods"
        ))
    };

    match collect::version(&client, timeout).await {
        Ok(version) => collected.kubernetes_version = Some(version),
        Err(failure) => warn!(%failure, "collecting the Kubernetes version failed"),
    }
    match collect::discover(&client, timeout).await {
        Ok(discovered) => {
            collected.api_enablements = Some(summary::api_enablements(
                &discovered.lists,
                discovered.failed,
            ));
        }
        Err(failure) => return Ok(denied(&failure)),
    }
    match collect::nodes_and_pods(&client, timeout).await {
        Ok((nodes, pods)) => {
            let (resources, skipped) = summary::resource_summary(&nodes, &pods);
            for error in skipped {
                warn!(%error, "skipped a malformed quantity");
            }
            collected.summaries = Some((summary::node_summary(&nodes), resources));
        }
        Err(failure) if failure.is_denied() => return Ok(denied(&failure)),
        Err(failure) => warn!(%failure, "listing nodes and pods failed"),
    }
    Ok(Observation::Probed { health, collected })
}

async fn reconcile(cluster: Arc<Cluster>, state: Arc<State>) -> Result<Action> {
    let name = cluster.name_any();
    if cluster.spec.sync_mode != ClusterSyncMode::Push {
        debug!("not a Push cluster; its agent reports its status");
        state.forget(&name);
        return Ok(Action::await_change());
    }
    if cluster.meta().deletion_timestamp.is_some() {
        state.forget(&name);
        return Ok(Action::await_change());
    }

    let observation = observe(&state, &cluster).await?;
    let failing_for = match &observation {
        Observation::CollectionFailed(_) => state.observe_health(&name, true),
        Observation::Probed { health, .. } => {
            state.observe_health(&name, *health == Health::Healthy)
        }
    };
    let current = cluster.status.clone().unwrap_or_default();
    let next = next_status(
        &current,
        cluster.meta().generation,
        &observation,
        failing_for,
        state.options.failure_threshold,
        Time(Timestamp::now()),
    );
    if next != current {
        write_status(&state, &cluster, &next).await?;
        if let Some(ready) = conditions::find(&next.conditions, READY)
            && conditions::find(&current.conditions, READY) != Some(ready)
        {
            info!(status = %ready.status, reason = %ready.reason, message = %ready.message, "Ready changed");
        }
    }
    heartbeat::renew(
        &state.hub,
        &cluster,
        CLUSTER_STATUS,
        state.options.heartbeat_duration,
    )
    .await
    .map_err(|source| Error::RenewHeartbeat {
        cluster: name,
        source,
    })?;
    Ok(Action::requeue(state.options.period))
}

/// Writes the status: server-side apply of every field it reports and only its own
/// conditions.
async fn write_status(state: &State, cluster: &Cluster, next: &ClusterStatus) -> Result<()> {
    let name = cluster.name_any();
    let failed = |source| Error::WriteClusterStatus {
        cluster: name.clone(),
        source,
    };
    let to_json = |status: &ClusterStatus| {
        serde_json::to_value(status).map_err(|e| failed(kube::Error::SerdeError(e)))
    };
    let mut owned = next.clone();
    owned.conditions = status::owned(&next.conditions, &OWNED_CONDITIONS);
    let write = StatusWrite {
        field_manager: CLUSTER_STATUS,
        owned: to_json(&owned)?,
    };
    let api: Api<Cluster> = Api::all(state.hub.clone());
    status::write(&api, cluster, write)
        .await
        .map(|_| ())
        .map_err(failed)
}

/// Builds the controller: one `cluster-status` runner over the shared Cluster cache, woken
/// when a Cluster's connection settings or its Secret change, and on its period.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let members = ctx.members()?;
    let settings = Settings {
        backoff_max: options.period.max(Duration::from_millis(500)),
        ..Settings::new(options.concurrency)
    };
    let runner = Runner::<Cluster>::new(ctx, "cluster-status", settings)?.trigger_when_changed(
        |cluster: &Cluster| {
            let spec = &cluster.spec;
            (
                format!("{:?}", spec.sync_mode),
                spec.api_endpoint.clone(),
                spec.secret_ref
                    .as_ref()
                    .map(|r| (r.namespace.clone(), r.name.clone())),
                spec.insecure_skip_tls_verification,
                spec.proxy_url.clone(),
                cluster.meta().deletion_timestamp.is_some(),
            )
        },
    );
    let clusters = runner.store();
    let runner = runner.watches(move |secret: Arc<Secret>| {
        let (namespace, name) = (secret.namespace(), secret.name_any());
        clusters
            .state()
            .iter()
            .filter(|c| {
                c.spec
                    .secret_ref
                    .as_ref()
                    .is_some_and(|r| Some(&r.namespace) == namespace.as_ref() && r.name == name)
            })
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect::<Vec<_>>()
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        options,
        members,
        trackers: PerObject::new(&*ctx.caches().get::<Cluster>()?),
    });
    info!(period = ?state.options.period, "starting the cluster-status controller");
    Ok(runner.run(reconcile, state))
}

#[cfg(test)]
mod tests {
    use flotilla_api::cluster::ApiResource;

    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap_or_default())
    }

    fn healthy(version: &str) -> Observation {
        Observation::Probed {
            health: Health::Healthy,
            collected: Collected {
                kubernetes_version: Some(version.to_owned()),
                api_enablements: Some((
                    vec![ApiEnablement {
                        group_version: "apps/v1".to_owned(),
                        resources: vec![ApiResource {
                            name: "deployments".to_owned(),
                            kind: "Deployment".to_owned(),
                        }],
                    }],
                    Completeness::Complete,
                )),
                summaries: Some((
                    NodeSummary {
                        total_num: 2,
                        ready_num: 1,
                    },
                    ResourceSummary::default(),
                )),
            },
        }
    }

    fn down() -> Observation {
        Observation::Probed {
            health: Health::Unreachable("connection refused".to_owned()),
            collected: Collected::default(),
        }
    }

    type ReadyOf = (&'static str, &'static str, Time);

    fn ready_of(status: &ClusterStatus) -> (String, String, Time) {
        let c = conditions::find(&status.conditions, READY)
            .cloned()
            .unwrap_or_else(|| conditions::new(READY, false, "Missing", "", None));
        (c.status, c.reason, c.last_transition_time)
    }

    #[test]
    fn an_unchanged_member_yields_an_identical_status() {
        let threshold = Duration::from_secs(30);
        let first = next_status(
            &ClusterStatus::default(),
            Some(1),
            &healthy("v1.35.0"),
            None,
            threshold,
            at(10),
        );
        let second = next_status(
            &first,
            Some(1),
            &healthy("v1.35.0"),
            None,
            threshold,
            at(20),
        );
        assert_eq!(first, second);
        assert_eq!(first.kubernetes_version.as_deref(), Some("v1.35.0"));
        assert_eq!(first.observed_generation, Some(1));
        assert_eq!(
            ready_of(&first),
            ("True".to_owned(), reasons::CLUSTER_READY.to_owned(), at(10))
        );
        assert!(conditions::is_true(
            &first.conditions,
            COMPLETE_API_ENABLEMENTS
        ));
        assert!(first.last_heartbeat_time.is_none());
    }

    #[test]
    fn a_ready_cluster_keeps_its_status_while_failures_are_damped() {
        let threshold = Duration::from_secs(30);
        let ready = next_status(
            &ClusterStatus::default(),
            Some(1),
            &healthy("v1"),
            None,
            threshold,
            at(10),
        );
        let table: Vec<(Option<Duration>, ReadyOf)> = vec![
            (
                Some(Duration::ZERO),
                ("True", reasons::CLUSTER_READY, at(10)),
            ),
            (
                Some(Duration::from_secs(20)),
                ("True", reasons::CLUSTER_READY, at(10)),
            ),
            (
                Some(Duration::from_secs(30)),
                ("False", reasons::CLUSTER_NOT_REACHABLE, at(50)),
            ),
        ];
        for (failing_for, (status, reason, time)) in table {
            let next = next_status(&ready, Some(1), &down(), failing_for, threshold, at(50));
            assert_eq!(
                ready_of(&next),
                (status.to_owned(), reason.to_owned(), time),
                "{failing_for:?}"
            );
            // What could not be observed keeps its value.
            assert_eq!(next.kubernetes_version.as_deref(), Some("v1"));
            assert_eq!(next.node_summary, ready.node_summary);
        }
    }

    #[test]
    fn collection_failures_are_reported_at_once_with_their_message() {
        let threshold = Duration::from_secs(30);
        let ready = next_status(
            &ClusterStatus::default(),
            Some(1),
            &healthy("v1"),
            None,
            threshold,
            at(10),
        );
        let message = "Secret flotilla-cluster/m1 named by spec.secretRef does not exist";
        let next = next_status(
            &ready,
            Some(2),
            &Observation::CollectionFailed(message.to_owned()),
            None,
            threshold,
            at(20),
        );
        let c = conditions::find(&next.conditions, READY)
            .cloned()
            .unwrap_or_else(|| conditions::new(READY, true, "Missing", "", None));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", reasons::STATUS_COLLECTION_FAILED)
        );
        assert_eq!(c.message, message);
        assert_eq!(c.observed_generation, Some(2));
        assert_eq!(next.observed_generation, Some(2));
    }

    #[test]
    fn enablement_conditions_name_what_is_missing() {
        let one = vec![ApiEnablement::default()];
        let table: Vec<(Vec<ApiEnablement>, Completeness, bool, &str, &str)> = vec![
            (
                one.clone(),
                Completeness::Complete,
                true,
                reasons::COMPLETE,
                "collected all 1 API group-versions",
            ),
            (
                one.clone(),
                Completeness::Partial(vec!["a/v1".to_owned(), "b/v2".to_owned()]),
                false,
                reasons::PARTIAL,
                "could not collect the resources of a/v1, b/v2",
            ),
            (
                vec![],
                Completeness::Empty,
                false,
                reasons::EMPTY,
                "no API group-version could be collected",
            ),
        ];
        for (enablements, completeness, ready, reason, message) in table {
            let v = enablement_verdict(&enablements, &completeness);
            assert_eq!(
                (v.ready, v.reason, v.message.as_str()),
                (ready, reason, message)
            );
        }
    }
}
