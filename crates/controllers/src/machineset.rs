//! The MachineSet controller (Cluster API's MachineSet and MachineDeployment rollout in one):
//! keeps `replicas` Machines made from the set's template. It owns its machines by a
//! controller ownerReference (adopting matching orphans of the same cluster), names them
//! `<set>-<template hash>-<suffix>` (a suffix never reused; machines it created that the cache
//! does not show yet count as made, as a ReplicaSet's expectations), replaces machines made from an older
//! template within `maxSurge` / `maxUnavailable` (or only when deleted, with `OnDelete`),
//! deletes the machines their health check marked for remediation, scales down in the set's
//! order, and reports `replicas`, `readyReplicas`, `availableReplicas`, `upToDateReplicas`,
//! the selector (for the scale subresource, so `kubectl scale machineset` works) and the
//! `Available` and `Progressing` conditions (field manager `flotilla-provisioning`). It never
//! provisions anything: the Machine controller and the providers do that. Deleting a set
//! deletes its machines through garbage collection.

pub mod plan;

use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use flotilla_api::{
    conditions::{self, AVAILABLE, FALSE, PROGRESSING, TRUE, reasons},
    keys::{annotations, field_managers::PROVISIONING, labels},
    names,
    provisioning::{Machine, MachineSet, MachineSetStatus, MachineSpec},
};
use flotilla_runtime::{
    Context, Runner, Settings,
    status::{self, StatusWrite},
};
use flotilla_scheduler::selector::label_selector_matches;
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::{controller::Action, reflector::ObjectRef, reflector::Store},
};
use serde_json::json;
use tracing::info;

use crate::error::{Error, Result};
use plan::Owned;

/// Controller settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many MachineSets are reconciled at once.
    pub concurrency: u16,
    /// How often a set is looked at when nothing changes.
    pub resync: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 4,
            resync: Duration::from_secs(60),
        }
    }
}

struct State {
    hub: Client,
    machines: Store<Machine>,
    resync: Duration,
    /// Per set (uid): machines created that the cache may not show yet, with when (kube's
    /// ReplicaSet "expectations"), so a quick second pass does not create them again.
    expected:
        std::sync::Mutex<std::collections::HashMap<String, Vec<(String, std::time::Instant)>>>,
}

/// How long a created machine is expected before the cache must show it.
const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// The hash of what makes two machines interchangeable: the template's spec, less the
/// fields a provider fills and the timeouts that apply in place (as Cluster API rolls out).
pub fn template_hash(spec: &MachineSpec) -> String {
    let mut spec = spec.clone();
    spec.provider_id = None;
    spec.node_drain_timeout_seconds = None;
    spec.node_deletion_timeout_seconds = None;
    let bytes = serde_json::to_vec(&spec).unwrap_or_default();
    format!("{:08x}", names::fnv32a(&bytes))
}

/// `k=v,k2=v2` for the scale subresource (`status.selector`), as a ReplicaSet reports it.
fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other}", e.key),
        });
    }
    parts.join(",")
}

fn condition_is(machine: &Machine, type_: &str, status: &str) -> bool {
    machine.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == status)
    })
}

fn controller_uid(machine: &Machine) -> Option<&str> {
    machine
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

fn owned(machine: &Machine, hash: &str) -> Owned {
    Owned {
        name: machine.name_any(),
        created: machine
            .creation_timestamp()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        up_to_date: machine
            .labels()
            .get(labels::MACHINE_TEMPLATE_HASH)
            .map(String::as_str)
            == Some(hash),
        ready: condition_is(machine, conditions::READY, TRUE),
        deleting: machine.meta().deletion_timestamp.is_some(),
        remediate: condition_is(machine, conditions::OWNER_REMEDIATED, FALSE),
        marked: machine
            .annotations()
            .contains_key(annotations::DELETE_MACHINE),
    }
}

fn owner_reference(set: &MachineSet) -> OwnerReference {
    OwnerReference {
        api_version: MachineSet::api_version(&()).into_owned(),
        kind: MachineSet::kind(&()).into_owned(),
        name: set.name_any(),
        uid: set.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The Machine the set's template makes under `name`.
fn machine_for(set: &MachineSet, name: &str, hash: &str) -> Machine {
    let template = &set.spec.template;
    let mut labels: BTreeMap<String, String> = template.metadata.labels.clone();
    labels.insert(labels::MACHINE_SET_NAME.into(), set.name_any());
    labels.insert(
        labels::MACHINE_CLUSTER_NAME.into(),
        set.spec.cluster_name.clone(),
    );
    labels.insert(labels::MACHINE_TEMPLATE_HASH.into(), hash.into());
    if template.spec.role == flotilla_api::provisioning::MachineRole::ControlPlane {
        labels.insert(labels::MACHINE_CONTROL_PLANE.into(), String::new());
    }
    let mut machine = Machine::new(
        name,
        MachineSpec {
            cluster_name: set.spec.cluster_name.clone(),
            provider_id: None,
            ..template.spec.clone()
        },
    );
    machine.metadata.namespace = set.namespace();
    machine.metadata.labels = Some(labels);
    if !template.metadata.annotations.is_empty() {
        machine.metadata.annotations = Some(template.metadata.annotations.clone());
    }
    machine.metadata.owner_references = Some(vec![owner_reference(set)]);
    machine
}

/// What is wrong with the spec, if anything the controller cannot act on.
fn invalid_spec(set: &MachineSet) -> Option<String> {
    let selector = &set.spec.selector;
    let empty = selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty);
    if empty {
        return Some("spec.selector must select something: it would match every machine".into());
    }
    if !label_selector_matches(selector, &set.spec.template.metadata.labels) {
        return Some(
            "spec.selector does not match spec.template.metadata.labels: the set could never see the machines it makes".into(),
        );
    }
    None
}

async fn reconcile(set: Arc<MachineSet>, state: Arc<State>) -> Result<Action> {
    if set.meta().deletion_timestamp.is_some() {
        // Garbage collection deletes the machines.
        return Ok(Action::await_change());
    }
    let name = set.name_any();
    let namespace = set.namespace().unwrap_or_default();
    let uid = set.uid().unwrap_or_default();
    let machines_api: Api<Machine> = Api::namespaced(state.hub.clone(), &namespace);
    let hash = template_hash(&set.spec.template.spec);
    let desired = set.spec.replicas.unwrap_or(1);
    let in_namespace: Vec<Arc<Machine>> = state
        .machines
        .state()
        .into_iter()
        .filter(|m| m.namespace().as_deref() == Some(namespace.as_str()))
        .collect();
    let invalid = invalid_spec(&set);
    if invalid.is_none() {
        adopt_orphans(&set, &machines_api, &in_namespace).await?;
    }
    let mine: Vec<Arc<Machine>> = in_namespace
        .into_iter()
        .filter(|m| controller_uid(m) == Some(uid.as_str()))
        .collect();
    let mut observed: Vec<Owned> = mine.iter().map(|m| owned(m, &hash)).collect();
    // Machines this process created that the cache does not show yet count as made.
    let pending: Vec<String> = {
        let mut expected = state.expected.lock().unwrap_or_else(|p| p.into_inner());
        let list = expected.entry(uid.clone()).or_default();
        list.retain(|(n, at)| {
            at.elapsed() < EXPECTATION_TTL && !mine.iter().any(|m| m.name_any() == *n)
        });
        list.iter().map(|(n, _)| n.clone()).collect()
    };
    let seen = observed.len();
    observed.extend(pending.iter().map(|n| Owned {
        name: n.clone(),
        up_to_date: true,
        ..Owned::default()
    }));
    let order = set.spec.deletion.clone().unwrap_or_default().order;
    let limits = match invalid {
        Some(message) => Err(message),
        None => plan::limits(desired, set.spec.strategy.as_ref(), order),
    };
    let mut acted = false;
    if let Ok(limits) = &limits {
        let todo = plan::plan(limits, &observed);
        acted = todo != plan::Plan::default();
        let made = create_machines(&set, &machines_api, &hash, todo.create).await;
        if !made.is_empty() {
            let now = std::time::Instant::now();
            state
                .expected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(uid.clone())
                .or_default()
                .extend(made.iter().map(|n| (n.clone(), now)));
        }
        made.into_result()?;
        for machine in todo.delete.iter().filter(|m| !pending.contains(m)) {
            match machines_api
                .delete(machine, &DeleteParams::background())
                .await
            {
                Ok(_) => info!(set = %name, %machine, "deleted a machine"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(source) => {
                    return Err(Error::DeleteMachine {
                        set: name.clone(),
                        machine: machine.clone(),
                        source,
                    });
                }
            }
        }
    }
    // The status counts what the cache shows.
    write_status(
        &state,
        &set,
        &observed[..seen],
        limits.as_ref().map_err(String::as_str),
    )
    .await?;
    // Machine changes wake the set; a pass that acted looks again soon in case a change was
    // missed meanwhile.
    Ok(Action::requeue(if acted {
        Duration::from_secs(5).min(state.resync)
    } else {
        state.resync
    }))
}

/// The machines one pass created, and the error that stopped it, if any.
struct Made {
    names: Vec<String>,
    error: Option<Error>,
}

impl Made {
    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = &String> {
        self.names.iter()
    }

    fn into_result(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

/// Creates `n` machines from the current template, each under a name never used before.
async fn create_machines(set: &MachineSet, api: &Api<Machine>, hash: &str, n: i32) -> Made {
    let set_name = set.name_any();
    let params = PostParams {
        field_manager: Some(PROVISIONING.into()),
        ..PostParams::default()
    };
    let mut made = Made {
        names: Vec::new(),
        error: None,
    };
    let mut attempt: u32 = 0;
    while i32::try_from(made.names.len()).unwrap_or(i32::MAX) < n && attempt < 3 * n.max(1) as u32 {
        attempt += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = format!("{}/{nanos}/{attempt}", set.uid().unwrap_or_default());
        let machine_name = names::machine_name(&set_name, hash, seed.as_bytes());
        match api
            .create(&params, &machine_for(set, &machine_name, hash))
            .await
        {
            Ok(_) => {
                info!(set = %set_name, machine = %machine_name, "created a machine");
                made.names.push(machine_name);
            }
            // The name is taken: try another.
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => {
                made.error = Some(Error::CreateMachine {
                    set: set_name,
                    machine: machine_name,
                    source,
                });
                break;
            }
        }
    }
    made
}

/// Takes machines of the set's cluster that match its selector and have no controller.
async fn adopt_orphans(
    set: &MachineSet,
    api: &Api<Machine>,
    machines: &[Arc<Machine>],
) -> Result<()> {
    for machine in machines {
        let labels: BTreeMap<String, String> = machine.labels().clone();
        if controller_uid(machine).is_some()
            || machine.meta().deletion_timestamp.is_some()
            || machine.spec.cluster_name != set.spec.cluster_name
            || !label_selector_matches(&set.spec.selector, &labels)
        {
            continue;
        }
        let mut references = machine.owner_references().to_vec();
        references.push(owner_reference(set));
        let patch = json!({"metadata": {
            "resourceVersion": machine.resource_version(),
            "ownerReferences": references,
        }});
        let params = PatchParams {
            field_manager: Some(PROVISIONING.into()),
            ..PatchParams::default()
        };
        match api
            .patch(&machine.name_any(), &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                info!(set = %set.name_any(), machine = %machine.name_any(), "adopted a machine")
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(source) => {
                return Err(Error::AdoptMachine {
                    set: set.name_any(),
                    machine: machine.name_any(),
                    source,
                });
            }
        }
    }
    Ok(())
}

async fn write_status(
    state: &State,
    set: &MachineSet,
    machines: &[Owned],
    limits: std::result::Result<&plan::Limits, &str>,
) -> Result<()> {
    let generation = set.meta().generation;
    let desired = set.spec.replicas.unwrap_or(1);
    let count = |f: &dyn Fn(&Owned) -> bool| {
        i32::try_from(machines.iter().filter(|m| f(m)).count()).unwrap_or(i32::MAX)
    };
    let ready = count(&|m| m.ready && !m.deleting);
    let available = count(&|m| m.ready && !m.deleting && !m.remediate);
    let up_to_date = count(&|m| m.up_to_date && !m.deleting);
    let replicas = i32::try_from(machines.len()).unwrap_or(i32::MAX);
    let current = set.status.clone().unwrap_or_default();
    let mut next_conditions = current.conditions.clone();
    let now = Time(Timestamp::now());
    let (available_cond, progressing) = match limits {
        Err(message) => (
            conditions::new(
                AVAILABLE,
                available >= desired,
                reasons::INVALID_SPEC,
                message.to_owned(),
                generation,
            ),
            conditions::new(
                PROGRESSING,
                false,
                reasons::INVALID_SPEC,
                message.to_owned(),
                generation,
            ),
        ),
        Ok(limits) => {
            let needed = desired - limits.max_unavailable;
            let enough = available >= needed;
            let available_cond = conditions::new(
                AVAILABLE,
                enough,
                if enough {
                    reasons::MINIMUM_MACHINES_AVAILABLE
                } else {
                    reasons::INSUFFICIENT_MACHINES
                },
                format!("{available} of {desired} machines available (at least {needed} needed)"),
                generation,
            );
            let done = up_to_date == desired && replicas == desired && available == desired;
            let (reason, message) = if done {
                (
                    reasons::MACHINES_UP_TO_DATE,
                    format!("{desired} machines up to date and available"),
                )
            } else if up_to_date < replicas.min(desired)
                || machines.iter().any(|m| !m.up_to_date && !m.deleting)
            {
                (
                    reasons::ROLLING_OUT,
                    format!("{up_to_date} of {desired} machines made from the current template"),
                )
            } else {
                (
                    reasons::SCALING,
                    format!("{replicas} machines, {available} available, {desired} wanted"),
                )
            };
            (
                available_cond,
                conditions::new(PROGRESSING, true, reason, message, generation),
            )
        }
    };
    conditions::set_condition(&mut next_conditions, available_cond, now.clone());
    conditions::set_condition(&mut next_conditions, progressing, now);
    let next = MachineSetStatus {
        replicas,
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        up_to_date_replicas: Some(up_to_date),
        selector: Some(selector_string(&set.spec.selector)),
        conditions: next_conditions,
        observed_generation: generation,
    };
    if next == current {
        return Ok(());
    }
    let api: Api<MachineSet> =
        Api::namespaced(state.hub.clone(), &set.namespace().unwrap_or_default());
    let write = StatusWrite {
        field_manager: PROVISIONING,
        owned: serde_json::to_value(&next).map_err(|e| Error::WriteMachineSetStatus {
            set: set.name_any(),
            source: kube::Error::SerdeError(e),
        })?,
    };
    status::write(&api, set, write)
        .await
        .map_err(|source| Error::WriteMachineSetStatus {
            set: set.name_any(),
            source,
        })?;
    Ok(())
}

/// Builds the controller: one `machineset` runner over the shared MachineSet cache, woken by
/// changes of the machines a set controls (and of orphans, which any set may adopt).
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(
    ctx: &Arc<Context>,
    options: Options,
) -> Result<impl Future<Output = ()> + Send + use<>> {
    let sets = ctx.caches().get::<MachineSet>()?.store();
    let machines = ctx.caches().get::<Machine>()?.store();
    let runner = Runner::<MachineSet>::new(
        ctx,
        "machineset",
        Settings {
            backoff_base: Duration::from_millis(200),
            ..Settings::new(options.concurrency)
        },
    )?
    .watches(move |machine: Arc<Machine>| {
        let namespace = machine.namespace().unwrap_or_default();
        match machine
            .owner_references()
            .iter()
            .find(|r| r.controller == Some(true))
        {
            Some(r) if r.kind == "MachineSet" => {
                vec![ObjectRef::<MachineSet>::new(&r.name).within(&namespace)]
            }
            Some(_) => Vec::new(),
            // An orphan: every set of its namespace may want it.
            None => sets
                .state()
                .iter()
                .filter(|s| s.namespace().as_deref() == Some(namespace.as_str()))
                .map(|s| ObjectRef::from_obj(&**s))
                .collect(),
        }
    })?;
    let state = Arc::new(State {
        hub: ctx.client().clone(),
        machines,
        resync: options.resync,
        expected: std::sync::Mutex::default(),
    });
    info!(resync = ?options.resync, "starting the machineset controller");
    Ok(runner.run(reconcile, state))
}
