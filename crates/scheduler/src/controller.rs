//! The scheduler controller: watches (Cluster)ResourceBindings and Clusters, decides when a
//! binding needs scheduling (as Karmada's `doScheduleBinding` does), runs the pure
//! [`crate::schedule`] and writes `spec.clusters` (server-side apply, field manager
//! `flotilla-scheduler`) and the scheduler's status fields. It only speaks `kube::Client`; all
//! placement logic stays in the library, and nothing is written when nothing changed.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Debug,
    future::Future,
    hash::{Hash, Hasher},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use flotilla_api::{
    Cluster, ClusterResourceBinding, ResourceBinding,
    conditions::{self, SCHEDULED, reasons},
    keys::{DEFAULT_SCHEDULER_NAME, annotations::APPLIED_PLACEMENT, field_managers::SCHEDULER},
    policy::ReplicaSchedulingType,
    work::{ResourceBindingSpec, ResourceBindingStatus},
};
use flotilla_runtime::{
    Context as Platform, ReconcileError, Runner, Settings,
    status::{self, StatusWrite},
};
use futures::{StreamExt, future};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        reflector::Store,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::{
    algorithm::{ScheduleInput, schedule},
    error::{Error, Result},
    framework::{Context as PluginContext, Registry},
    snapshot::Snapshot,
};

/// The message of a successful `Scheduled` condition.
pub const SCHEDULED_MESSAGE: &str = "Binding has been scheduled successfully.";

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many bindings of each kind are scheduled at once.
    pub concurrency: u16,
    /// How often a binding is looked at again after a successful pass.
    pub resync: Duration,
    /// The name events are reported under.
    pub reporter: String,
    /// The reporting instance of events (such as the pod name); the hostname when `None`.
    pub instance: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 8,
            resync: Duration::from_secs(300),
            reporter: SCHEDULER.to_owned(),
            instance: None,
        }
    }
}

/// A binding kind the scheduler handles: ResourceBinding or ClusterResourceBinding.
pub trait Binding:
    Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The spec shared by both kinds.
    fn binding_spec(&self) -> &ResourceBindingSpec;
    /// The status shared by both kinds.
    fn binding_status(&self) -> Option<&ResourceBindingStatus>;
    /// The API to write this object through.
    fn api_for(&self, client: Client) -> Api<Self>;
    /// The API to watch every object of this kind.
    fn api_all(client: Client) -> Api<Self>;
}

impl Binding for ResourceBinding {
    fn binding_spec(&self) -> &ResourceBindingSpec {
        &self.spec
    }
    fn binding_status(&self) -> Option<&ResourceBindingStatus> {
        self.status.as_ref()
    }
    fn api_for(&self, client: Client) -> Api<Self> {
        Api::namespaced(
            client,
            self.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }
    fn api_all(client: Client) -> Api<Self> {
        Api::all(client)
    }
}

impl Binding for ClusterResourceBinding {
    fn binding_spec(&self) -> &ResourceBindingSpec {
        &self.spec.spec
    }
    fn binding_status(&self) -> Option<&ResourceBindingStatus> {
        self.status.as_ref()
    }
    fn api_for(&self, client: Client) -> Api<Self> {
        Api::all(client)
    }
    fn api_all(client: Client) -> Api<Self> {
        Api::all(client)
    }
}

fn input_of<K: Binding>(binding: &K) -> ScheduleInput<'_> {
    ScheduleInput {
        uid: binding.meta().uid.as_deref().unwrap_or_default(),
        generation: binding.meta().generation,
        spec: binding.binding_spec(),
        status: binding.binding_status(),
    }
}

/// Whether this scheduler handles a binding: `schedulerName` empty or `default-scheduler`.
pub fn is_ours(spec: &ResourceBindingSpec) -> bool {
    matches!(
        spec.scheduler_name.as_deref(),
        None | Some("") | Some(DEFAULT_SCHEDULER_NAME)
    )
}

/// The placement as recorded in the `applied-placement` annotation.
pub fn placement_annotation(spec: &ResourceBindingSpec) -> String {
    serde_json::to_string(&spec.placement).unwrap_or_default()
}

/// Why a binding must be scheduled now, or `None` when its current result stands. Mirrors
/// Karmada's triggers: never scheduled or last attempt failed; placement changed (against the
/// `applied-placement` annotation); replicas changed; a manual reschedule; Duplicated and
/// non-workload bindings (always re-evaluated, so new, recovered and changed clusters are picked
/// up); and — beyond Karmada — a target cluster that is gone, being deleted or no longer passes
/// the filters (for example it no longer matches the affinity, or an eviction from it began).
/// Taints never reject a target cluster (see the TaintToleration plugin), so a new NoExecute
/// taint moves nothing here; eviction is the taint manager's job.
pub fn schedule_reason(
    input: &ScheduleInput<'_>,
    annotations: &BTreeMap<String, String>,
    snapshot: &Snapshot,
) -> Option<&'static str> {
    let spec = input.spec;
    let scheduled = input
        .status
        .is_some_and(|s| conditions::is_true(&s.conditions, SCHEDULED));
    if !scheduled {
        return Some("not scheduled yet or the last attempt failed");
    }
    if annotations.get(APPLIED_PLACEMENT) != Some(&placement_annotation(spec)) {
        return Some("placement changed");
    }
    if input.is_fresh() {
        return Some("reschedule requested");
    }
    let duplicated = spec
        .placement
        .as_ref()
        .and_then(|p| p.replica_scheduling.as_ref())
        .is_none_or(|s| s.replica_scheduling_type == ReplicaSchedulingType::Duplicated);
    if input.is_workload() {
        let changed = if duplicated {
            spec.clusters.iter().any(|t| t.replicas != spec.replicas)
        } else {
            spec.clusters
                .iter()
                .map(|t| i64::from(t.replicas))
                .sum::<i64>()
                != i64::from(spec.replicas)
        };
        if changed {
            return Some("replicas changed");
        }
    }
    if duplicated || !input.is_workload() {
        return Some("duplicated or non-workload bindings follow every cluster change");
    }
    if targets_lost_eligibility(input, snapshot) {
        return Some("a target cluster is gone, being deleted or no longer fits");
    }
    None
}

/// Whether some cluster in `spec.clusters` is missing from the fleet, being deleted, or
/// rejected by the filters.
pub fn targets_lost_eligibility(input: &ScheduleInput<'_>, snapshot: &Snapshot) -> bool {
    let default_placement = Default::default();
    let placement = input.spec.placement.as_ref().unwrap_or(&default_placement);
    let observed = input
        .status
        .and_then(|s| s.scheduler_observing_affinity_name.as_deref());
    let affinity = placement.cluster_affinity.as_ref().or_else(|| {
        let terms = &placement.cluster_affinities;
        terms
            .iter()
            .find(|t| Some(t.affinity_name.as_str()) == observed)
            .or(terms.first())
            .map(|t| &t.affinity)
    });
    let ctx = PluginContext {
        spec: input.spec,
        placement,
        affinity,
        previous: &input.spec.clusters,
        spread_constraints: &placement.spread_constraints,
    };
    input
        .spec
        .clusters
        .iter()
        .any(|target| match snapshot.get(&target.name) {
            None => true,
            Some(info) => info.deleting || Registry::shared().run_filters(&ctx, info).is_err(),
        })
}

/// The fleet: a reflector store of Clusters plus a snapshot rebuilt only when a cluster changed.
struct Fleet {
    store: Store<Cluster>,
    generation: AtomicU64,
    cached: Mutex<Option<(u64, Arc<Snapshot>)>>,
}

impl Fleet {
    fn snapshot(&self) -> Arc<Snapshot> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, snapshot)) = cached.as_ref()
            && *g == generation
        {
            return snapshot.clone();
        }
        let snapshot = Arc::new(Snapshot::new(self.store.state()));
        *cached = Some((generation, snapshot.clone()));
        snapshot
    }
}

/// The scheduling-relevant part of a Cluster: labels, spec, deletion and API enablements.
/// Status heartbeats and resource summaries do not trigger re-evaluation (they still refresh
/// the snapshot used by the next decision).
fn relevance(cluster: &Cluster) -> u64 {
    let view = json!({
        "labels": cluster.metadata.labels,
        "deleting": cluster.metadata.deletion_timestamp.is_some(),
        "spec": cluster.spec,
        "apis": cluster.status.as_ref().map(|s| &s.api_enablements),
    });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    view.to_string().hash(&mut hasher);
    hasher.finish()
}

/// The scheduler's own state beside the shared context.
struct Context {
    client: Client,
    fleet: Arc<Fleet>,
    recorder: Recorder,
    options: Options,
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

async fn reconcile<K: Binding>(binding: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    reconcile_inner(binding.as_ref(), &ctx).await
}

async fn reconcile_inner<K: Binding>(binding: &K, ctx: &Context) -> Result<Action> {
    let spec = binding.binding_spec();
    // A binding without a placement is an attached one (a dependency following its workloads
    // through `requiredBy`): nothing to schedule, as in Karmada.
    if binding.meta().deletion_timestamp.is_some()
        || !is_ours(spec)
        || spec.placement.is_none()
        || spec.suspension.as_ref().and_then(|s| s.scheduling) == Some(true)
    {
        return Ok(Action::await_change());
    }
    let snapshot = ctx.fleet.snapshot();
    let input = input_of(binding);
    let empty = BTreeMap::new();
    let annotations = binding.meta().annotations.as_ref().unwrap_or(&empty);
    let api = binding.api_for(ctx.client.clone());
    let name = binding.name_any();
    let generation = binding.meta().generation;

    let Some(reason) = schedule_reason(&input, annotations, &snapshot) else {
        // Nothing to schedule; only record that this generation was seen.
        let observed = binding
            .binding_status()
            .and_then(|s| s.scheduler_observed_generation);
        if generation.is_some() && observed != generation {
            let status = binding.binding_status().cloned().unwrap_or_default();
            let mut next = status.clone();
            next.scheduler_observed_generation = generation;
            write_status(&api, binding, &status, &next).await?;
        }
        return Ok(Action::requeue(ctx.options.resync));
    };
    debug!(reason, "scheduling");
    let fresh = input.is_fresh();
    match schedule(&snapshot, &input) {
        Ok(decision) => {
            let placement = placement_annotation(spec);
            let mut generation = generation;
            let spec_changed = decision.clusters != spec.clusters
                || annotations.get(APPLIED_PLACEMENT) != Some(&placement);
            let mut status = binding.binding_status().cloned().unwrap_or_default();
            let mut rescheduled = false;
            if spec_changed {
                let patch = json!({
                    "apiVersion": K::api_version(&()),
                    "kind": K::kind(&()),
                    "metadata": {"name": name, "annotations": {APPLIED_PLACEMENT: placement}},
                    "spec": {"clusters": decision.clusters},
                });
                let updated = match apply_spec(&api, &name, &patch).await {
                    Ok(updated) => updated,
                    Err(error) => {
                        report_scheduler_error(binding, &api, &error).await;
                        return Err(error);
                    }
                };
                generation = updated.meta().generation;
                // The status to build on is the server's: a pass from a cache that lags behind
                // this scheduler's own last write finds that write already made (the same
                // clusters, no new generation, its status already observing it), and records
                // nothing new.
                status = updated.binding_status().cloned().unwrap_or_default();
                rescheduled = decision.clusters != spec.clusters
                    && status.scheduler_observed_generation != generation;
                if rescheduled {
                    info!(clusters = ?decision.clusters, reason, "scheduled");
                }
            }
            let mut next = status.clone();
            next.scheduler_observed_generation = generation;
            next.scheduler_observing_affinity_name = decision.affinity_name.clone();
            if rescheduled || fresh || status.last_scheduled_time.is_none() {
                // Never later than now, even for a trigger in the future: the Scheduled
                // condition observing this generation is what spends that trigger
                // (`ScheduleInput::is_fresh`), so later triggers still count.
                next.last_scheduled_time = Some(now());
            }
            conditions::set_condition(
                &mut next.conditions,
                conditions::new(
                    SCHEDULED,
                    true,
                    reasons::SUCCESS,
                    SCHEDULED_MESSAGE,
                    generation,
                ),
                now(),
            );
            write_status(&api, binding, &status, &next).await?;
            Ok(Action::requeue(ctx.options.resync))
        }
        Err(error) if error.is_user_fixable() => {
            let status = binding.binding_status().cloned().unwrap_or_default();
            let mut next = status.clone();
            next.scheduler_observed_generation = generation;
            let changed = conditions::set_condition(
                &mut next.conditions,
                conditions::new(
                    SCHEDULED,
                    false,
                    error.condition_reason(),
                    error.to_string(),
                    generation,
                ),
                now(),
            );
            write_status(&api, binding, &status, &next).await?;
            if changed {
                warn!(%error, "scheduling failed");
                let event = Event {
                    type_: EventType::Warning,
                    reason: "ScheduleBindingFailed".into(),
                    note: Some(truncate(&error.to_string(), 1000)),
                    action: "Schedule".into(),
                    secondary: None,
                };
                if let Err(e) = ctx.recorder.publish(&event, &binding.object_ref(&())).await {
                    warn!(error = %e, "could not record the scheduling failure event");
                }
            }
            // Cluster changes re-trigger the binding; retry anyway in a while.
            Ok(Action::requeue(Duration::from_secs(60)))
        }
        Err(error) => Err(error),
    }
}

/// Best effort: records a failed write as `Scheduled=False, SchedulerError` (a conflict is not
/// an error worth reporting: the next pass starts from the newer object).
async fn report_scheduler_error<K: Binding>(binding: &K, api: &Api<K>, error: &Error) {
    if error.is_conflict() {
        return;
    }
    let status = binding.binding_status().cloned().unwrap_or_default();
    let mut next = status.clone();
    conditions::set_condition(
        &mut next.conditions,
        conditions::new(
            SCHEDULED,
            false,
            reasons::SCHEDULER_ERROR,
            error.to_string(),
            binding.meta().generation,
        ),
        now(),
    );
    if let Err(e) = write_status(api, binding, &status, &next).await {
        warn!(error = %e, "could not record the scheduler error");
    }
}

/// Writes the scheduling decision (the target clusters and the applied-placement annotation)
/// with server-side apply under the scheduler's field manager, forced: the scheduler is the only
/// writer of those fields.
async fn apply_spec<K: Binding>(api: &Api<K>, name: &str, patch: &serde_json::Value) -> Result<K> {
    api.patch(
        name,
        &PatchParams::apply(SCHEDULER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map_err(|source| Error::WriteSpec {
        binding: name.to_owned(),
        source,
    })
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// The status fields the scheduler owns, with only its own condition, for server-side apply.
fn owned_status(status: &ResourceBindingStatus) -> Value {
    let mut owned = serde_json::Map::new();
    let fields = [
        (
            "schedulerObservedGeneration",
            json!(status.scheduler_observed_generation),
        ),
        (
            "schedulerObservingAffinityName",
            json!(status.scheduler_observing_affinity_name),
        ),
        ("lastScheduledTime", json!(status.last_scheduled_time)),
        (
            "conditions",
            json!(status::owned(&status.conditions, &[SCHEDULED])),
        ),
    ];
    for (field, value) in fields {
        if !value.is_null() {
            owned.insert(field.to_owned(), value);
        }
    }
    Value::Object(owned)
}

/// Writes the scheduler's status fields when they differ: server-side apply of only what the
/// scheduler owns (its fields and its `Scheduled` condition), so another writer's conditions
/// are never overwritten.
async fn write_status<K: Binding>(
    api: &Api<K>,
    binding: &K,
    before: &ResourceBindingStatus,
    after: &ResourceBindingStatus,
) -> Result<()> {
    if before == after {
        return Ok(());
    }
    let name = binding.name_any();
    let failed = |source| Error::WriteStatus {
        binding: name.clone(),
        source,
    };
    let write = StatusWrite {
        field_manager: SCHEDULER,
        owned: owned_status(after),
    };
    status::write(api, binding, write)
        .await
        .map(|_| ())
        .map_err(failed)
}

/// Builds the scheduler: one runner for ResourceBindings and one for
/// ClusterResourceBindings over the shared caches, both re-evaluating every binding when a
/// Cluster changes in a way that matters for placement.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    platform: &Arc<Platform>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let clusters = platform.caches().get::<Cluster>()?;
    let fleet = Arc::new(Fleet {
        store: clusters.store(),
        generation: AtomicU64::new(0),
        cached: Mutex::new(None),
    });
    let (trigger, _) = tokio::sync::watch::channel(0u64);
    let trigger = Arc::new(trigger);

    // Every Cluster change refreshes the snapshot; only placement-relevant ones re-evaluate
    // the bindings.
    let fleet_changes = {
        let fleet = fleet.clone();
        let trigger = trigger.clone();
        let mut seen: HashMap<String, u64> = HashMap::new();
        let changed = clusters.subscribe()?.map(Some);
        let gone = futures::stream::unfold(clusters.gone(), |mut gone| async move {
            let _ = gone.recv().await.ok()?;
            Some((None, gone))
        });
        let stop = platform.stop().clone();
        futures::stream::select(changed, gone)
            .take_until(async move { stop.cancelled().await })
            .for_each(move |change| {
                fleet.generation.fetch_add(1, Ordering::AcqRel);
                let relevant = match change {
                    Some(cluster) => {
                        let hash = relevance(&cluster);
                        seen.insert(cluster.name_any(), hash) != Some(hash)
                    }
                    None => {
                        seen.retain(|name, _| {
                            fleet
                                .store
                                .get(&kube::runtime::reflector::ObjectRef::new(name))
                                .is_some()
                        });
                        true
                    }
                };
                if relevant {
                    trigger.send_modify(|g| *g += 1);
                }
                future::ready(())
            })
    };

    let recorder = Recorder::new(
        platform.client().clone(),
        Reporter {
            controller: options.reporter.clone(),
            instance: options.instance.clone(),
        },
    );
    let settings = Settings::new(options.concurrency);
    let ctx = Arc::new(Context {
        client: platform.client().clone(),
        fleet,
        recorder,
        options,
    });
    let on_fleet_change = |trigger: &tokio::sync::watch::Sender<u64>| {
        futures::stream::unfold(trigger.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    };
    let rb =
        Runner::<ResourceBinding>::new(platform, "scheduler-resourcebinding", settings.clone())?
            .reconcile_all_on(on_fleet_change(&trigger))
            .run(reconcile::<ResourceBinding>, ctx.clone());
    let crb = Runner::<ClusterResourceBinding>::new(
        platform,
        "scheduler-clusterresourcebinding",
        settings,
    )?
    .reconcile_all_on(on_fleet_change(&trigger))
    .run(reconcile::<ClusterResourceBinding>, ctx);
    info!("scheduler started");
    Ok(async move {
        future::join3(fleet_changes, rb, crb).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_testing::fixtures::{BindingBuilder, ClusterBuilder};

    /// 2100-01-01T00:00:00Z, in seconds.
    const FAR_FUTURE: i64 = 4_102_444_800;

    /// Marks the binding scheduled successfully at its current generation.
    fn scheduled(mut b: ResourceBinding) -> ResourceBinding {
        let generation = b.metadata.generation;
        let status = b.status.get_or_insert_with(Default::default);
        conditions::set_condition(
            &mut status.conditions,
            conditions::new(
                SCHEDULED,
                true,
                reasons::SUCCESS,
                SCHEDULED_MESSAGE,
                generation,
            ),
            Time(Default::default()),
        );
        let placement = placement_annotation(&b.spec);
        b.metadata.annotations = Some([(APPLIED_PLACEMENT.to_owned(), placement)].into());
        b
    }

    /// The binding after a spec change the scheduler has not seen yet.
    fn generation(mut b: ResourceBinding, generation: i64) -> ResourceBinding {
        b.metadata.generation = Some(generation);
        b
    }

    fn reason(binding: &ResourceBinding, clusters: Vec<Cluster>) -> Option<&'static str> {
        let snapshot = Snapshot::from_clusters(clusters);
        let empty = BTreeMap::new();
        schedule_reason(
            &ScheduleInput::from_resource_binding(binding),
            binding.metadata.annotations.as_ref().unwrap_or(&empty),
            &snapshot,
        )
    }

    #[test]
    fn schedule_triggers_table() {
        let fleet = || {
            vec![
                ClusterBuilder::new("a").pods(10).build(),
                ClusterBuilder::new("b").pods(10).build(),
            ]
        };
        let divided = || {
            BindingBuilder::new()
                .dynamic()
                .replicas(4)
                .previous(&[("a", 2), ("b", 2)])
        };
        let mut placement_changed = scheduled(divided().build());
        placement_changed
            .spec
            .placement
            .get_or_insert_with(Default::default)
            .cluster_tolerations
            .push(Default::default());
        let table: Vec<(&str, ResourceBinding, Vec<Cluster>, Option<&str>)> = vec![
            (
                "settled divided binding",
                scheduled(divided().build()),
                fleet(),
                None,
            ),
            (
                "never scheduled",
                divided().build(),
                fleet(),
                Some("not scheduled yet or the last attempt failed"),
            ),
            (
                "placement changed",
                placement_changed,
                fleet(),
                Some("placement changed"),
            ),
            (
                "replicas changed",
                scheduled(divided().replicas(6).build()),
                fleet(),
                Some("replicas changed"),
            ),
            (
                "manual reschedule",
                scheduled(divided().times(Some(20), Some(10)).build()),
                fleet(),
                Some("reschedule requested"),
            ),
            (
                "old manual reschedule",
                scheduled(divided().times(Some(10), Some(20)).build()),
                fleet(),
                None,
            ),
            (
                "duplicated follows the fleet",
                scheduled(
                    BindingBuilder::new()
                        .duplicated()
                        .replicas(2)
                        .previous(&[("a", 2)])
                        .build(),
                ),
                fleet(),
                Some("duplicated or non-workload bindings follow every cluster change"),
            ),
            (
                "duplicated replicas changed",
                scheduled(
                    BindingBuilder::new()
                        .duplicated()
                        .replicas(3)
                        .previous(&[("a", 2)])
                        .build(),
                ),
                fleet(),
                Some("replicas changed"),
            ),
            (
                "target cluster removed",
                scheduled(divided().build()),
                vec![ClusterBuilder::new("a").pods(10).build()],
                Some("a target cluster is gone, being deleted or no longer fits"),
            ),
            (
                "target cluster being deleted",
                scheduled(divided().build()),
                vec![
                    ClusterBuilder::new("a").pods(10).build(),
                    ClusterBuilder::new("b").deleting().build(),
                ],
                Some("a target cluster is gone, being deleted or no longer fits"),
            ),
            (
                "NoExecute taint on a target is left to the taint manager",
                scheduled(divided().build()),
                vec![
                    ClusterBuilder::new("a").pods(10).build(),
                    ClusterBuilder::new("b").taint("bad", "NoExecute").build(),
                ],
                None,
            ),
            (
                "target no longer matching the affinity",
                scheduled(
                    divided()
                        .affinity(flotilla_api::policy::ClusterAffinity {
                            cluster_names: vec!["a".into()],
                            ..Default::default()
                        })
                        .build(),
                ),
                fleet(),
                Some("a target cluster is gone, being deleted or no longer fits"),
            ),
            (
                "future trigger already honoured at this generation",
                scheduled(
                    divided()
                        .times(Some(FAR_FUTURE), Some(10))
                        .generation(3)
                        .build(),
                ),
                fleet(),
                None,
            ),
            (
                "trigger set since the last successful schedule",
                generation(
                    scheduled(
                        divided()
                            .times(Some(FAR_FUTURE), Some(10))
                            .generation(3)
                            .build(),
                    ),
                    4,
                ),
                fleet(),
                Some("reschedule requested"),
            ),
            (
                "NoSchedule taint on a target keeps it",
                scheduled(divided().build()),
                vec![
                    ClusterBuilder::new("a").pods(10).build(),
                    ClusterBuilder::new("b").taint("bad", "NoSchedule").build(),
                ],
                None,
            ),
            (
                "a new cluster does not move a divided workload",
                scheduled(divided().build()),
                vec![
                    ClusterBuilder::new("a").build(),
                    ClusterBuilder::new("b").build(),
                    ClusterBuilder::new("c").pods(99).build(),
                ],
                None,
            ),
        ];
        for (name, binding, clusters, want) in table {
            assert_eq!(reason(&binding, clusters), want, "{name}");
        }
    }

    #[test]
    fn only_default_scheduler_bindings_are_ours() {
        let mut spec = ResourceBindingSpec::default();
        assert!(is_ours(&spec));
        spec.scheduler_name = Some(DEFAULT_SCHEDULER_NAME.into());
        assert!(is_ours(&spec));
        spec.scheduler_name = Some("other".into());
        assert!(!is_ours(&spec));
    }

    #[test]
    fn relevance_ignores_heartbeats_but_not_taints() {
        let base = ClusterBuilder::new("a").pods(3).build();
        let mut heartbeat = ClusterBuilder::new("a").pods(5).build();
        heartbeat
            .status
            .get_or_insert_with(Default::default)
            .last_heartbeat_time = Some(now());
        assert_eq!(relevance(&base), relevance(&heartbeat));
        let tainted = ClusterBuilder::new("a")
            .taint("x", "NoSchedule")
            .pods(3)
            .build();
        assert_ne!(relevance(&base), relevance(&tainted));
        let labelled = ClusterBuilder::new("a")
            .label("env", "prod")
            .pods(3)
            .build();
        assert_ne!(relevance(&base), relevance(&labelled));
        let no_apis = ClusterBuilder::new("a").no_apis().pods(3).build();
        assert_ne!(relevance(&base), relevance(&no_apis));
    }

    #[test]
    fn target_eligibility_uses_the_observed_affinity_term() {
        use flotilla_api::policy::ClusterAffinity;
        let names = |n: &str| ClusterAffinity {
            cluster_names: vec![n.into()],
            ..Default::default()
        };
        let binding = |observed: &str| {
            scheduled(
                BindingBuilder::new()
                    .dynamic()
                    .replicas(1)
                    .previous(&[("b", 1)])
                    .affinity_term("first", names("a"))
                    .affinity_term("second", names("b"))
                    .observed_term(observed)
                    .build(),
            )
        };
        let fleet = || {
            vec![
                ClusterBuilder::new("a").pods(1).build(),
                ClusterBuilder::new("b").pods(1).build(),
            ]
        };
        assert_eq!(reason(&binding("second"), fleet()), None);
        assert_eq!(
            reason(&binding("first"), fleet()),
            Some("a target cluster is gone, being deleted or no longer fits")
        );
    }
}
