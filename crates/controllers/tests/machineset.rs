//! The MachineSet controller on the test hub (embedded, or a real control plane with
//! `FLOTILLA_TEST_SERVER=kube`). No Machine controller runs: the test stands in for it by
//! setting machines' `Ready` condition. A set makes its machines (owned, labelled, named by its
//! template), reports them in its status and conditions, scales through the scale subresource
//! (a marked machine first), rolls a template change out one machine at a time within
//! `maxSurge: 1, maxUnavailable: 0`, replaces a machine its health check marked, refuses a
//! selector that does not match its template, and its machines go with it.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use flotilla_api::{
    keys::{annotations, labels},
    provisioning::{Machine, MachineSet},
};
use flotilla_controllers::machineset;
use flotilla_testing::{Controllers, TestHub};
use futures::FutureExt;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

mod support;

use support::{create, create_namespace, eventually, init_tracing};

fn start(client: &Client) -> Result<Controllers> {
    Controllers::push(client, |ctx| {
        Ok(vec![
            machineset::controller(
                ctx,
                machineset::Options {
                    resync: std::time::Duration::from_secs(2),
                    ..machineset::Options::default()
                },
            )?
            .boxed(),
        ])
    })
}

fn set(name: &str, replicas: i32, version: &str) -> Value {
    json!({
        "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "MachineSet",
        "metadata": {"name": name},
        "spec": {
            "clusterName": "edge1",
            "replicas": replicas,
            "selector": {"matchLabels": {"pool": name}},
            "template": {
                "metadata": {"labels": {"pool": name}},
                "spec": {"clusterName": "edge1", "role": "Worker", "version": version,
                    "infrastructureRef": {"provider": "local"}},
            },
            "strategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        },
    })
}

async fn machines_of(api: &Api<Machine>, set: &str) -> Result<Vec<Machine>> {
    Ok(api
        .list(&ListParams::default().labels(&format!("{}={set}", labels::MACHINE_SET_NAME)))
        .await?
        .items)
}

fn ready(machine: &Machine) -> bool {
    machine.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// A status patch holding these `(type, status, reason)` conditions and no others.
fn set_conditions(conditions: &[(&str, &str, &str)]) -> Value {
    let list: Vec<Value> = conditions
        .iter()
        .map(|(type_, status, reason)| {
            json!({"type": type_, "status": status, "reason": reason,
                "message": "set by the test", "lastTransitionTime": "2026-01-01T00:00:00Z"})
        })
        .collect();
    json!({"status": {"conditions": list}})
}

fn set_condition(type_: &str, status: &str, reason: &str) -> Value {
    set_conditions(&[(type_, status, reason)])
}

/// Marks every machine of `set` that is not being deleted Ready, as a machine controller
/// would once its node is up; returns the machines seen.
async fn make_ready(api: &Api<Machine>, set: &str) -> Result<Vec<Machine>> {
    let machines = machines_of(api, set).await?;
    for m in &machines {
        if !ready(m) && m.metadata.deletion_timestamp.is_none() {
            api.patch_status(
                &m.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&set_condition("Ready", "True", "NodeReady")),
            )
            .await?;
        }
    }
    Ok(machines)
}

fn condition<'a>(set: &'a MachineSet, type_: &str) -> Option<(&'a str, &'a str)> {
    set.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

async fn set_state(
    sets: &Api<MachineSet>,
    name: &str,
    what: &str,
    check: impl Fn(&MachineSet) -> bool,
) -> Result<MachineSet> {
    eventually(what, || async {
        Ok(sets.get_opt(name).await?.filter(|s| check(s)))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn machine_sets_create_scale_roll_out_and_remediate() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let ns = "machines";
    create_namespace(client, ns).await?;
    let _controllers = start(client)?;
    let sets: Api<MachineSet> = Api::namespaced(client.clone(), ns);
    let machines: Api<Machine> = Api::namespaced(client.clone(), ns);
    let made = create(&sets, set("workers", 3, "v1.34.0")).await?;

    // Three machines, owned by the set, labelled, named after the set and its template.
    let first = eventually("three machines", || async {
        let list = machines_of(&machines, "workers").await?;
        Ok((list.len() == 3).then_some(list))
    })
    .await?;
    for m in &first {
        let owner = m.owner_references().first().cloned().unwrap_or_default();
        ensure!(
            owner.uid == made.uid().unwrap_or_default() && owner.controller == Some(true),
            "{m:?}"
        );
        ensure!(
            m.labels().get("pool").map(String::as_str) == Some("workers"),
            "{m:?}"
        );
        ensure!(
            m.labels()
                .get(labels::MACHINE_CLUSTER_NAME)
                .map(String::as_str)
                == Some("edge1")
        );
        ensure!(m.name_any().starts_with("workers-"), "{}", m.name_any());
        ensure!(m.spec.version.as_deref() == Some("v1.34.0"));
    }
    let pending = set_state(
        &sets,
        "workers",
        "status counting three unready machines",
        |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.replicas == 3 && st.ready_replicas == Some(0))
                && condition(s, "Available") == Some(("False", "InsufficientMachines"))
        },
    )
    .await?;
    ensure!(
        pending.status.as_ref().and_then(|s| s.selector.as_deref()) == Some("pool=workers"),
        "{pending:?}"
    );
    make_ready(&machines, "workers").await?;
    set_state(&sets, "workers", "Available and up to date", |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.available_replicas == Some(3) && st.up_to_date_replicas == Some(3))
            && condition(s, "Available") == Some(("True", "MinimumMachinesAvailable"))
            && condition(s, "Progressing") == Some(("True", "MachinesUpToDate"))
    })
    .await?;

    // Scale through the scale subresource (as `kubectl scale machineset` does): up to 4,
    // then down to 2 with a marked machine going first.
    let scale = |n: i32| json!({"spec": {"replicas": n}});
    sets.patch_scale("workers", &PatchParams::default(), &Patch::Merge(&scale(4)))
        .await?;
    eventually("four machines", || async {
        let list = make_ready(&machines, "workers").await?;
        Ok((list.len() == 4 && list.iter().all(ready)).then_some(()))
    })
    .await?;
    let marked = machines_of(&machines, "workers").await?[2].name_any();
    machines
        .patch(
            &marked,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"annotations": {annotations::DELETE_MACHINE: "yes"}}}),
            ),
        )
        .await?;
    sets.patch_scale("workers", &PatchParams::default(), &Patch::Merge(&scale(3)))
        .await?;
    eventually("the marked machine gone first", || async {
        let list = machines_of(&machines, "workers").await?;
        Ok((list.len() == 3 && list.iter().all(|m| m.name_any() != marked)).then_some(()))
    })
    .await?;

    // A new version rolls out one machine at a time, never below 3 ready or above 4 machines.
    let before: Vec<String> = machines_of(&machines, "workers")
        .await?
        .iter()
        .map(|m| m.name_any())
        .collect();
    sets.patch(
        "workers",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"template": {"spec": {"version": "v1.35.0"}}}})),
    )
    .await?;
    let violations = std::sync::Mutex::new(Vec::<String>::new());
    eventually("every machine on v1.35.0", || async {
        let list = machines_of(&machines, "workers").await?;
        let live: Vec<&Machine> = list
            .iter()
            .filter(|m| m.metadata.deletion_timestamp.is_none())
            .collect();
        let ready_now = live.iter().filter(|m| ready(m)).count();
        if list.len() > 4 || ready_now < 3 {
            violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{} machines, {ready_now} ready", list.len()));
        }
        make_ready(&machines, "workers").await?;
        let done = live.len() == 3
            && list.len() == 3
            && live
                .iter()
                .all(|m| m.spec.version.as_deref() == Some("v1.35.0") && ready(m));
        Ok(done.then_some(()))
    })
    .await?;
    let seen = violations.into_inner().unwrap_or_else(|p| p.into_inner());
    ensure!(
        seen.is_empty(),
        "the rollout broke maxSurge 1 / maxUnavailable 0: {seen:?}"
    );
    let after: Vec<String> = machines_of(&machines, "workers")
        .await?
        .iter()
        .map(|m| m.name_any())
        .collect();
    ensure!(
        before.iter().all(|n| !after.contains(n)),
        "{before:?} → {after:?}"
    );
    set_state(&sets, "workers", "rolled out", |s| {
        condition(s, "Progressing") == Some(("True", "MachinesUpToDate"))
            && s.status.as_ref().and_then(|st| st.up_to_date_replicas) == Some(3)
    })
    .await?;

    // A machine its health check failed is replaced. A merge patch replaces the whole
    // condition list, so the patch keeps `Ready` (else `make_ready` below would put `Ready`
    // back and drop `OwnerRemediated` before the controller saw it).
    let sick = after[0].clone();
    let marked = set_conditions(&[
        ("Ready", "True", "NodeReady"),
        ("OwnerRemediated", "False", "WaitingForRemediation"),
    ]);
    machines
        .patch_status(&sick, &PatchParams::default(), &Patch::Merge(&marked))
        .await?;
    eventually("the unhealthy machine replaced", || async {
        let list = make_ready(&machines, "workers").await?;
        let names: Vec<String> = list.iter().map(|m| m.name_any()).collect();
        Ok((list.len() == 3 && !names.contains(&sick) && list.iter().all(ready)).then_some(()))
    })
    .await?;

    // A selector that does not match the template makes nothing and says why.
    let mut bad = set("bad", 2, "v1.34.0");
    bad["spec"]["selector"] = json!({"matchLabels": {"pool": "elsewhere"}});
    create(&sets, bad).await?;
    let refused = set_state(&sets, "bad", "InvalidSpec", |s| {
        condition(s, "Progressing") == Some(("False", "InvalidSpec"))
    })
    .await?;
    ensure!(
        refused.status.as_ref().is_some_and(|s| s.replicas == 0),
        "{refused:?}"
    );

    // The set's machines go with it.
    sets.delete("workers", &DeleteParams::background()).await?;
    eventually("the machines gone with their set", || async {
        Ok(machines_of(&machines, "workers")
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;
    Ok(())
}

/// An orphan machine of the set's cluster that its selector matches is adopted and counted.
#[tokio::test(flavor = "multi_thread")]
async fn matching_orphans_are_adopted() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let ns = "orphans";
    create_namespace(client, ns).await?;
    let machines: Api<Machine> = Api::namespaced(client.clone(), ns);
    let mut stray_labels = BTreeMap::new();
    stray_labels.insert("pool".to_string(), "adopter".to_string());
    create(
        &machines,
        json!({"apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "Machine",
            "metadata": {"name": "stray", "labels": stray_labels},
            "spec": {"clusterName": "edge1", "role": "Worker", "infrastructureRef": {"provider": "local"}}}),
    )
    .await?;
    let _controllers = start(client)?;
    let sets: Api<MachineSet> = Api::namespaced(client.clone(), ns);
    let made = create(&sets, set("adopter", 2, "v1.34.0")).await?;
    let stray = eventually("the stray machine adopted", || async {
        Ok(machines.get_opt("stray").await?.filter(|m| {
            m.owner_references()
                .iter()
                .any(|r| Some(&r.uid) == made.uid().as_ref())
        }))
    })
    .await?;
    ensure!(stray.owner_references().len() == 1, "{stray:?}");
    // Adopted from another template, it is replaced by the rollout; the set ends with two of
    // its own.
    eventually("two machines from the set's template", || async {
        let list: Vec<Machine> = machines
            .list(&ListParams::default().labels("pool=adopter"))
            .await?
            .items;
        make_ready(&machines, "adopter").await?;
        for m in &list {
            if !ready(m) && m.name_any() == "stray" {
                machines
                    .patch_status(
                        "stray",
                        &PatchParams::default(),
                        &Patch::Merge(&set_condition("Ready", "True", "NodeReady")),
                    )
                    .await?;
            }
        }
        let own = list
            .iter()
            .filter(|m| m.labels().contains_key(labels::MACHINE_TEMPLATE_HASH))
            .count();
        Ok((list.len() == 2 && own == 2).then_some(()))
    })
    .await?;
    Ok(())
}
