//! The MachineHealthCheck controller (Cluster API's): marks the machines a check selects
//! healthy or not. A machine is unhealthy when one of `unhealthyMachineConditions` or (read off
//! its Node in the member) `unhealthyNodeConditions` has held past its timeout, when it has had
//! no node for `nodeStartupTimeoutSeconds` (600 by default, 0 disables), or when its node is
//! gone. Each machine gets `HealthCheckSucceeded`; an unhealthy one also `OwnerRemediated=False`
//! (`WaitingForRemediation`), which its owner (a MachineSet) acts on by replacing it — unless
//! more machines are unhealthy than `triggerIf` allows, when remediation stops and the check's
//! `RemediationAllowed=False` (`TooManyUnhealthy`) says so. The check's status counts expected
//! and healthy machines and the remediations still allowed. Its conditions on Machines are
//! written under its own field manager, `flotilla-machinehealthcheck`.

pub mod judge;

use std::{future::Future, sync::Arc, time::Duration};

use flotilla_api::{
    Cluster,
    conditions::{
        self, HEALTH_CHECK_SUCCEEDED, NODE_HEALTHY, OWNER_REMEDIATED, REMEDIATION_ALLOWED, reasons,
    },
    keys::{
        annotations,
        field_managers::{MACHINE_HEALTH_CHECK, PROVISIONING},
    },
    provisioning::{Machine, MachineHealthCheck, MachineHealthCheckStatus},
};
use flotilla_runtime::{
    Context, Runner, Settings,
    members::Members,
    status::{self, StatusWrite},
};
use flotilla_scheduler::selector::label_selector_matches;
use k8s_openapi::{api::core::v1::Node, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Client, Resource, ResourceExt,
    runtime::{
        controller::Action,
        reflector::{ObjectRef, Store},
    },
};
use serde_json::json;
use tracing::info;

use crate::error::{Error, Result};
use judge::{Held, NodeState, Verdict};

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many MachineHealthChecks are reconciled at once.
    pub concurrency: u16,
    /// How often a check looks again when no timeout is pending.
    pub resync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 4,
            resync: Duration::from_secs(10),
        }
    }
}

struct State {
    hub: Client,
    machines: Store<Machine>,
    clusters: Store<Cluster>,
    members: Arc<Members>,
    resync: Duration,
}

fn age(time: &Time) -> Duration {
    let secs = Timestamp::now().as_second() - time.0.as_second();
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn held_conditions<'a>(
    conditions: impl Iterator<Item = (&'a str, &'a str, Option<&'a Time>)>,
) -> Vec<Held> {
    conditions
        .map(|(type_, status, since)| Held {
            type_: type_.into(),
            status: status.into(),
            for_: since.map(age).unwrap_or_default(),
        })
        .collect()
}

/// What is known of `machine`'s node.
async fn node_state(state: &State, cluster: Option<&Cluster>, machine: &Machine) -> NodeState {
    let status = machine.status.clone().unwrap_or_default();
    let Some(node_ref) = status.node_ref else {
        let gone = status
            .conditions
            .iter()
            .any(|c| c.type_ == NODE_HEALTHY && c.reason == reasons::NODE_NOT_FOUND);
        if gone {
            return NodeState::Gone;
        }
        return NodeState::NotYet(
            machine
                .creation_timestamp()
                .as_ref()
                .map(age)
                .unwrap_or_default(),
        );
    };
    let Some(cluster) = cluster else {
        return NodeState::Unknown;
    };
    let Ok(client) = state.members.client(cluster).await else {
        return NodeState::Unknown;
    };
    let nodes: Api<Node> = Api::all(client);
    match nodes.get_opt(&node_ref.name).await {
        Ok(None) => NodeState::Gone,
        Ok(Some(node)) => NodeState::Conditions(held_conditions(
            node.status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .map(|c| {
                    (
                        c.type_.as_str(),
                        c.status.as_str(),
                        c.last_transition_time.as_ref(),
                    )
                }),
        )),
        Err(_) => NodeState::Unknown,
    }
}

async fn reconcile(check: Arc<MachineHealthCheck>, state: Arc<State>) -> Result<Action> {
    if check.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = check.namespace().unwrap_or_default();
    let cluster = state
        .clusters
        .get(&ObjectRef::new(&check.spec.cluster_name));
    if cluster
        .as_deref()
        .is_some_and(|c| c.annotations().contains_key(annotations::PAUSED))
    {
        return Ok(Action::await_change());
    }
    let mut targets: Vec<Arc<Machine>> = state
        .machines
        .state()
        .into_iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(namespace.as_str())
                && m.spec.cluster_name == check.spec.cluster_name
                && m.meta().deletion_timestamp.is_none()
                && label_selector_matches(&check.spec.selector, m.labels())
        })
        .collect();
    targets.sort_by_key(|m| m.name_any());
    let mut verdicts = Vec::with_capacity(targets.len());
    for machine in &targets {
        let node = node_state(&state, cluster.as_deref(), machine).await;
        let own = held_conditions(machine.status.iter().flat_map(|s| s.conditions.iter()).map(
            |c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    Some(&c.last_transition_time),
                )
            },
        ));
        verdicts.push(judge::judge(&check.spec.checks, &node, &own));
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let unhealthy = count(
        verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Unhealthy(..)))
            .count(),
    );
    let expected = count(targets.len());
    let allowed = judge::remediations_allowed(
        check
            .spec
            .remediation
            .as_ref()
            .and_then(|r| r.trigger_if.as_ref()),
        expected,
        unhealthy,
    );
    for (machine, verdict) in targets.iter().zip(&verdicts) {
        mark(&state, &check, machine, verdict, allowed.is_ok()).await?;
    }
    write_status(
        &state,
        &check,
        &targets,
        expected,
        expected - unhealthy,
        &allowed,
    )
    .await?;
    let recheck = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Healthy(Some(d)) => Some(*d),
            _ => None,
        })
        .min()
        .map_or(state.resync, |d| {
            d.clamp(Duration::from_millis(500), state.resync)
        });
    Ok(Action::requeue(recheck))
}

/// Writes the check's conditions on one machine (only when they change).
async fn mark(
    state: &State,
    check: &MachineHealthCheck,
    machine: &Machine,
    verdict: &Verdict,
    remediate: bool,
) -> Result<()> {
    let generation = machine.metadata.generation;
    let current = machine.status.clone().unwrap_or_default().conditions;
    let mut next = current.clone();
    let now = Time(Timestamp::now());
    let mut owned_types = vec![HEALTH_CHECK_SUCCEEDED];
    match verdict {
        Verdict::Healthy(_) => {
            conditions::set_condition(
                &mut next,
                conditions::new(
                    HEALTH_CHECK_SUCCEEDED,
                    true,
                    reasons::HEALTHY,
                    format!("passes MachineHealthCheck {}", check.name_any()),
                    generation,
                ),
                now,
            );
            next.retain(|c| c.type_ != OWNER_REMEDIATED);
        }
        Verdict::Unhealthy(reason, message) => {
            conditions::set_condition(
                &mut next,
                conditions::new(
                    HEALTH_CHECK_SUCCEEDED,
                    false,
                    reason,
                    message.clone(),
                    generation,
                ),
                now.clone(),
            );
            owned_types.push(OWNER_REMEDIATED);
            if remediate {
                conditions::set_condition(
                    &mut next,
                    conditions::new(
                        OWNER_REMEDIATED,
                        false,
                        reasons::WAITING_FOR_REMEDIATION,
                        "waiting for the machine's owner to replace it",
                        generation,
                    ),
                    now,
                );
            }
        }
    }
    if next == current {
        return Ok(());
    }
    if let Verdict::Unhealthy(reason, _) = verdict {
        info!(check = %check.name_any(), machine = %machine.name_any(), %reason, remediate, "machine unhealthy");
    }
    let api: Api<Machine> =
        Api::namespaced(state.hub.clone(), &machine.namespace().unwrap_or_default());
    status::write(
        &api,
        machine,
        StatusWrite {
            field_manager: MACHINE_HEALTH_CHECK,
            owned: json!({"conditions": status::owned(&next, &owned_types)}),
        },
    )
    .await
    .map_err(|source| Error::MarkMachine {
        check: check.name_any(),
        machine: machine.name_any(),
        source,
    })?;
    Ok(())
}

async fn write_status(
    state: &State,
    check: &MachineHealthCheck,
    targets: &[Arc<Machine>],
    expected: i32,
    healthy: i32,
    allowed: &std::result::Result<i32, String>,
) -> Result<()> {
    let generation = check.meta().generation;
    let current = check.status.clone().unwrap_or_default();
    let mut conditions_next = current.conditions.clone();
    let verdict = match allowed {
        Ok(n) => conditions::new(
            REMEDIATION_ALLOWED,
            true,
            reasons::REMEDIATION_ALLOWED,
            format!("{n} more machines may be remediated"),
            generation,
        ),
        Err(message) => conditions::new(
            REMEDIATION_ALLOWED,
            false,
            reasons::TOO_MANY_UNHEALTHY,
            message.clone(),
            generation,
        ),
    };
    conditions::set_condition(&mut conditions_next, verdict, Time(Timestamp::now()));
    let next = MachineHealthCheckStatus {
        expected_machines: expected,
        current_healthy: healthy,
        remediations_allowed: allowed.as_ref().map_or(0, |n| (*n).max(0)),
        targets: targets.iter().map(|m| m.name_any()).collect(),
        conditions: conditions_next,
        observed_generation: generation,
    };
    if next == current {
        return Ok(());
    }
    let api: Api<MachineHealthCheck> =
        Api::namespaced(state.hub.clone(), &check.namespace().unwrap_or_default());
    let owned = serde_json::to_value(&next).map_err(|e| Error::WriteMachineHealthCheckStatus {
        check: check.name_any(),
        source: kube::Error::SerdeError(e),
    })?;
    status::write(
        &api,
        check,
        StatusWrite {
            field_manager: PROVISIONING,
            owned,
        },
    )
    .await
    .map_err(|source| Error::WriteMachineHealthCheckStatus {
        check: check.name_any(),
        source,
    })?;
    Ok(())
}

/// Builds the controller: one `machinehealthcheck` runner over the shared MachineHealthCheck
/// cache, woken by changes of the machines in its namespace, and when a timeout comes due.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let checks = ctx.caches().get::<MachineHealthCheck>()?.store();
    let runner = Runner::<MachineHealthCheck>::new(
        ctx,
        "machinehealthcheck",
        Settings {
            backoff_base: Duration::from_millis(200),
            ..Settings::new(options.concurrency)
        },
    )?
    .watches(move |machine: Arc<Machine>| {
        let namespace = machine.namespace().unwrap_or_default();
        checks
            .state()
            .iter()
            .filter(|c| {
                c.namespace().as_deref() == Some(namespace.as_str())
                    && c.spec.cluster_name == machine.spec.cluster_name
            })
            .map(|c| ObjectRef::from_obj(&**c))
            .collect::<Vec<_>>()
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        machines: ctx.caches().get::<Machine>()?.store(),
        clusters: ctx.caches().get::<Cluster>()?.store(),
        members: ctx.members()?,
        resync: options.resync,
    });
    info!("starting the machinehealthcheck controller");
    Ok(runner.run(reconcile, state))
}
