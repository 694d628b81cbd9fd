//! The cluster controller (Karmada's `cluster` controller, its taint part): keeps the
//! `cluster.flotilla.io/not-ready` and `cluster.flotilla.io/unreachable` `NoSchedule` taints in
//! step with each Cluster's `Ready` condition, so the scheduler's taint filter keeps new
//! placements off unhealthy members. It writes only `spec.taints` (field manager
//! `flotilla-cluster`), only when [`taints::desired_taints`] asks for a change, and never adds,
//! edits or removes a taint it does not own. It never writes status: health is the
//! cluster-status controller's (Push) or the agent's (Pull) to report.

pub mod taints;

use std::{sync::Arc, time::Duration};

use flotilla_api::{Cluster, keys::field_managers::CLUSTER};
use flotilla_runtime::Backoff;
use futures::StreamExt;
use k8s_openapi::{api::core::v1::Taint, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::{self, Action},
        watcher,
    },
};
use serde_json::{Value, json};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::{Error, Result};

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How often each Cluster is looked at again when nothing changed (changes arrive by watch).
    pub resync: Duration,
    /// How many Clusters are reconciled at once.
    pub concurrency: u16,
    /// Longest wait after repeated failures to write a Cluster.
    pub max_backoff: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
            concurrency: 5,
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// Shared state of the controller.
struct Context {
    hub: Client,
    options: Options,
    /// Per cluster: consecutive failed passes, for backoff.
    backoff: Backoff,
}

async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action> {
    let name = cluster.name_any();
    if cluster.meta().deletion_timestamp.is_some() {
        ctx.backoff.reset(&name);
        return Ok(Action::await_change());
    }
    let ready = cluster.ready_condition();
    if let Some(next) = taints::desired_taints(&cluster.spec.taints, ready, Time(Timestamp::now()))
    {
        write_taints(&ctx.hub, &cluster, &next).await?;
        let keys: Vec<String> = next
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        info!(
            ready = ready.map(|c| c.status.as_str()).unwrap_or_default(),
            taints = ?keys,
            "updated the cluster's health taints"
        );
    }
    ctx.backoff.reset(&name);
    Ok(Action::requeue(ctx.options.resync))
}

/// Writes `spec.taints` with a JSON merge patch guarded by the resourceVersion the decision was
/// made on, so a concurrent edit (a user adding a taint) is never overwritten: the write fails
/// with a conflict and the next pass decides again on the new object. Not server-side apply:
/// `taints` is an atomic list, so applying it would make this controller own (and, forced,
/// overwrite) the users' taints too.
async fn write_taints(hub: &Client, cluster: &Cluster, taints: &[Taint]) -> Result<()> {
    let name = cluster.name_any();
    let failed = |source| Error::Kube {
        action: format!("write the taints of Cluster {name}"),
        source,
    };
    let value = if taints.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(taints).map_err(|e| failed(kube::Error::SerdeError(e)))?
    };
    let patch = json!({
        "metadata": {"resourceVersion": cluster.resource_version()},
        "spec": {"taints": value},
    });
    let params = PatchParams {
        field_manager: Some(CLUSTER.to_owned()),
        ..Default::default()
    };
    let api: Api<Cluster> = Api::all(hub.clone());
    api.patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(failed)?;
    Ok(())
}

fn error_policy(cluster: Arc<Cluster>, error: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.backoff.failed(&cluster.name_any());
    let conflict = matches!(
        error,
        Error::Kube { source: kube::Error::Api(status), .. } if status.code == 409
    );
    if conflict {
        debug!(%error, cluster = %cluster.name_any(), retry_in = ?delay, "the cluster changed while its taints were decided");
    } else {
        warn!(%error, cluster = %cluster.name_any(), retry_in = ?delay, "cluster pass failed");
    }
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
        backoff: Backoff::new(Duration::from_millis(200), options.max_backoff),
        options,
    });
    info!("starting the cluster controller");
    controller
        .run(
            |cluster, ctx| {
                let span = info_span!("cluster", cluster = %cluster.name_any());
                reconcile(cluster, ctx).instrument(span)
            },
            error_policy,
            ctx,
        )
        .for_each(|result| {
            if let Err(error) = result {
                debug!(%error, "cluster reconcile ended with an error");
            }
            futures::future::ready(())
        })
        .await;
    Ok(())
}
