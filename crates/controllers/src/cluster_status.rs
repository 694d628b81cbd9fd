//! The Push-mode cluster-status controller, like Karmada's: every period, for each Cluster with
//! `spec.syncMode: Push`, it builds a client from the Cluster and its Secret, probes health,
//! collects the version, API enablements, node and resource summaries, and writes
//! `Cluster.status` (field manager `flotilla-cluster-status`) only when it changed. It never
//! writes a heartbeat, never touches Pull clusters (their agent reports), and never writes to a
//! member. The decisions are plain functions in [`ready`], [`summary`] and [`next_status`].

pub mod collect;
pub mod member;
pub mod ready;
pub mod summary;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flotilla_api::{
    Cluster,
    cluster::{ApiEnablement, ClusterStatus, ClusterSyncMode, NodeSummary, ResourceSummary},
    conditions::{self, COMPLETE_API_ENABLEMENTS, READY, reasons},
    keys::field_managers::CLUSTER_STATUS,
};
use flotilla_runtime::{Backoff, ServerSideApply};
use futures::StreamExt;
use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::{self, Action},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde_json::{Value, json};
use tracing::{Instrument, debug, info, info_span, warn};

use self::{
    collect::Failure,
    ready::{FailureTracker, Health, Verdict},
    summary::Completeness,
};
use crate::error::{Error, Result};

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
    /// Longest wait after repeated failures to write a status.
    pub max_backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            period: Duration::from_secs(10),
            failure_threshold: Duration::from_secs(30),
            concurrency: 5,
            request_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
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

/// An RFC 7386 JSON merge patch that turns `before` into `after`: changed values, and `null`
/// for removed keys (so a resource that vanished from a summary is removed, not kept).
pub fn merge_patch(before: &Value, after: &Value) -> Value {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) if previous == value => {}
                    Some(previous) => {
                        patch.insert(key.clone(), merge_patch(previous, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => after.clone(),
    }
}

/// Shared state of the controller.
struct Context {
    hub: Client,
    options: Options,
    store: Store<Cluster>,
    apply: ServerSideApply,
    /// Per cluster: the fingerprint a client was built for, and the client.
    clients: Mutex<HashMap<String, (String, Client)>>,
    /// Per cluster: since when probes have failed.
    trackers: Mutex<HashMap<String, FailureTracker>>,
    /// Per cluster: consecutive failed passes, for backoff.
    backoff: Backoff,
}

impl Context {
    /// Drops per-cluster state of clusters that are gone or no longer Push.
    fn prune(&self, keep: impl Fn(&str) -> bool) {
        fn retain<V>(map: &Mutex<HashMap<String, V>>, keep: &dyn Fn(&str) -> bool) {
            map.lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|name, _| keep(name));
        }
        retain(&self.clients, &keep);
        retain(&self.trackers, &keep);
        self.backoff.retain(&keep);
    }

    async fn member_client(&self, cluster: &Cluster) -> Result<Client> {
        let name = cluster.name_any();
        let secret = member::load_secret(&self.hub, cluster).await?;
        let fingerprint = member::fingerprint(cluster, &secret);
        if let Some((cached, client)) = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
            && *cached == fingerprint
        {
            return Ok(client.clone());
        }
        let config = member::config(cluster, &secret, self.options.request_timeout).await?;
        let client = member::client(config, cluster)?;
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, (fingerprint, client.clone()));
        Ok(client)
    }

    fn observe_health(&self, name: &str, healthy: bool) -> Option<Duration> {
        self.trackers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_default()
            .observe(healthy, Instant::now())
    }
}

/// Probes one member and collects what it can. Only hub failures are errors; everything the
/// member does is part of the observation.
async fn observe(ctx: &Context, cluster: &Cluster) -> Result<Observation> {
    let client = match ctx.member_client(cluster).await {
        Ok(client) => client,
        Err(Error::MemberClient(message)) => return Ok(Observation::CollectionFailed(message)),
        Err(other) => return Err(other),
    };
    let timeout = ctx.options.request_timeout;
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

async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action> {
    let name = cluster.name_any();
    ctx.prune(|n| {
        ctx.store
            .get(&ObjectRef::new(n))
            .is_some_and(|c| c.spec.sync_mode == ClusterSyncMode::Push)
    });
    if cluster.spec.sync_mode != ClusterSyncMode::Push {
        debug!("not a Push cluster; its agent reports its status");
        return Ok(Action::await_change());
    }
    if cluster.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }

    let observation = observe(&ctx, &cluster).await?;
    let failing_for = match &observation {
        Observation::CollectionFailed(_) => ctx.observe_health(&name, true),
        Observation::Probed { health, .. } => ctx.observe_health(&name, *health == Health::Healthy),
    };
    let current = cluster.status.clone().unwrap_or_default();
    let next = next_status(
        &current,
        cluster.meta().generation,
        &observation,
        failing_for,
        ctx.options.failure_threshold,
        Time(Timestamp::now()),
    );
    if next != current {
        write_status(&ctx, &cluster, &current, &next).await?;
        if let Some(ready) = conditions::find(&next.conditions, READY)
            && conditions::find(&current.conditions, READY) != Some(ready)
        {
            info!(status = %ready.status, reason = %ready.reason, message = %ready.message, "Ready changed");
        }
    }
    ctx.backoff.reset(&name);
    Ok(Action::requeue(ctx.options.period))
}

/// Writes the status with server-side apply; when the API server does not implement apply
/// patches (415), with a JSON merge patch from `current` guarded by `resourceVersion`.
async fn write_status(
    ctx: &Context,
    cluster: &Cluster,
    current: &ClusterStatus,
    next: &ClusterStatus,
) -> Result<()> {
    let name = cluster.name_any();
    let api: Api<Cluster> = Api::all(ctx.hub.clone());
    let failed = |source| Error::Kube {
        action: format!("write the status of Cluster {name}"),
        source,
    };
    let to_json = |status: &ClusterStatus| {
        serde_json::to_value(status).map_err(|e| failed(kube::Error::SerdeError(e)))
    };
    let next_json = to_json(next)?;
    let patch = json!({
        "apiVersion": Cluster::api_version(&()),
        "kind": Cluster::kind(&()),
        "status": next_json,
    });
    let params = PatchParams::apply(CLUSTER_STATUS).force();
    let apply = Patch::Apply(&patch);
    let applied = ctx
        .apply
        .try_apply(api.patch_status(&name, &params, &apply));
    if applied.await.map_err(failed)?.is_some() {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"resourceVersion": cluster.resource_version()},
        "status": merge_patch(&to_json(current)?, &next_json),
    });
    let params = PatchParams {
        field_manager: Some(CLUSTER_STATUS.to_owned()),
        ..Default::default()
    };
    api.patch_status(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(failed)?;
    Ok(())
}

fn error_policy(cluster: Arc<Cluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx
        .backoff
        .failed(&cluster.name_any())
        .min(ctx.options.period.max(Duration::from_millis(500)));
    warn!(%error, cluster = %cluster.name_any(), retry_in = ?delay, "cluster status pass failed");
    Action::requeue(delay)
}

/// Runs the controller until its watch ends (it retries forever, so in practice until the task
/// is dropped).
///
/// # Errors
///
/// None today; the signature leaves room for start-up checks.
pub async fn run(client: Client, options: Options) -> Result<()> {
    let clusters: Api<Cluster> = Api::all(client.clone());
    let controller = Controller::new(clusters, watcher::Config::default())
        .with_config(controller::Config::default().concurrency(options.concurrency));
    let ctx = Arc::new(Context {
        hub: client,
        store: controller.store(),
        backoff: Backoff::new(Duration::from_secs(1), options.max_backoff),
        options,
        apply: ServerSideApply::default(),
        clients: Mutex::default(),
        trackers: Mutex::default(),
    });
    info!(period = ?ctx.options.period, "starting the cluster-status controller");
    controller
        .run(
            |cluster, ctx| {
                let span = info_span!("cluster_status", cluster = %cluster.name_any());
                reconcile(cluster, ctx).instrument(span)
            },
            error_policy,
            ctx,
        )
        .for_each(|result| {
            if let Err(error) = result {
                debug!(%error, "cluster-status reconcile ended with an error");
            }
            futures::future::ready(())
        })
        .await;
    Ok(())
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

    #[test]
    fn merge_patches_null_removed_keys_and_keep_equal_ones() {
        let table: Vec<(Value, Value, Value)> = vec![
            (json!({"a": 1}), json!({"a": 1}), json!({})),
            (json!({"a": 1}), json!({"a": 2}), json!({"a": 2})),
            (
                json!({"m": {"cpu": "1", "gpu": "2"}, "x": 1}),
                json!({"m": {"cpu": "1"}, "x": 1}),
                json!({"m": {"gpu": null}}),
            ),
            (json!({"l": [1, 2]}), json!({"l": [2]}), json!({"l": [2]})),
            (json!({}), json!({"n": {"a": 1}}), json!({"n": {"a": 1}})),
            (json!({"gone": true}), json!({}), json!({"gone": null})),
        ];
        for (before, after, want) in table {
            assert_eq!(merge_patch(&before, &after), want, "{before} -> {after}");
        }
    }
}
