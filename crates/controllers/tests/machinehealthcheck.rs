//! Machine health checking end to end on a hub with one member (embedded, or real control
//! planes with `FLOTILLA_TEST_SERVER=kube`): the MachineSet, Machine and MachineHealthCheck
//! controllers, with the test as the provider and kubelet of every machine (a providerID,
//! `InfrastructureReady`, and a Ready Node in the member). A node that stays not-Ready past the
//! check's timeout gets its machine marked and replaced by its MachineSet; when more machines
//! are unhealthy than `triggerIf` allows, they are marked unhealthy but not remediated, and the
//! check says why.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Result, ensure};
use flotilla_api::provisioning::{Machine, MachineHealthCheck, MachineSet};
use flotilla_controllers::{machine, machinehealthcheck, machineset};
use flotilla_testing::{Controllers, MemberServer, TestHub};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Node;
use kube::{
    Api, Client, ResourceExt,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

mod support;

use support::{create, create_namespace, eventually, init_tracing};

fn start(client: &Client) -> Result<Controllers> {
    Controllers::push(client, |ctx| {
        Ok(vec![
            machineset::controller(ctx, machineset::Options::default())?.boxed(),
            machine::controller(
                ctx,
                machine::Options {
                    resync: Duration::from_millis(500),
                    ..machine::Options::default()
                },
            )?
            .boxed(),
            machinehealthcheck::controller(
                ctx,
                machinehealthcheck::Options {
                    resync: Duration::from_secs(1),
                    ..machinehealthcheck::Options::default()
                },
            )?
            .boxed(),
        ])
    })
}

fn condition<'a>(m: &'a Machine, type_: &str) -> Option<(&'a str, &'a str)> {
    m.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.as_str(), c.reason.as_str()))
}

async fn node_ready(nodes: &Api<Node>, name: &str, ready: &str) -> Result<()> {
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"conditions": [{"type": "Ready", "status": ready,
                "reason": "KubeletReady", "message": "set by the test",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}]}})),
        )
        .await?;
    Ok(())
}

/// The test as every machine's provider and kubelet: a machine without a providerID gets one,
/// `InfrastructureReady`, and a Ready Node of the same name in the member.
async fn provide(machines: Api<Machine>, nodes: Api<Node>) -> Result<()> {
    loop {
        for m in machines.list(&ListParams::default()).await?.items {
            if m.spec.provider_id.is_some() || m.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let name = m.name_any();
            let provider_id = format!("test://edge1/{name}");
            machines
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"spec": {"providerID": provider_id}})),
                )
                .await?;
            machines
                .patch_status(
                    &name,
                    &PatchParams::apply("test-provider").force(),
                    &Patch::Apply(&json!({
                        "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "Machine",
                        "status": {"conditions": [{"type": "InfrastructureReady", "status": "True",
                            "reason": "Provisioned", "message": "made by the test",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
                    })),
                )
                .await?;
            let node: Node = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name}, "spec": {"providerID": provider_id}}))?;
            match nodes.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
            node_ready(&nodes, &name, "True").await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn all_healthy(machines: &Api<Machine>, n: usize) -> Result<Vec<Machine>> {
    eventually(&format!("{n} healthy, ready machines"), || async {
        let list = machines.list(&ListParams::default()).await?.items;
        let good = list.len() == n
            && list.iter().all(|m| {
                condition(m, "Ready") == Some(("True", "MachineReady"))
                    && condition(m, "HealthCheckSucceeded") == Some(("True", "Healthy"))
            });
        Ok(good.then_some(list))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn unhealthy_machines_are_replaced_within_the_trigger() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let member = hub.add_member("edge1", BTreeMap::new()).await?;
    let member_client = MemberServer::of(&member)?.client().await?;
    let ns = "health";
    create_namespace(client, ns).await?;
    let machines: Api<Machine> = Api::namespaced(client.clone(), ns);
    let nodes: Api<Node> = Api::all(member_client);
    let provider = tokio::spawn(provide(machines.clone(), nodes.clone()));
    let _controllers = start(client)?;
    let sets: Api<MachineSet> = Api::namespaced(client.clone(), ns);
    create(
        &sets,
        json!({"apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "MachineSet",
            "metadata": {"name": "pool"},
            "spec": {"clusterName": "edge1", "replicas": 3,
                "selector": {"matchLabels": {"pool": "pool"}},
                "template": {"metadata": {"labels": {"pool": "pool"}},
                    "spec": {"clusterName": "edge1", "role": "Worker",
                        "infrastructureRef": {"provider": "test"}}}}}),
    )
    .await?;
    let checks: Api<MachineHealthCheck> = Api::namespaced(client.clone(), ns);
    create(
        &checks,
        json!({"apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "MachineHealthCheck",
            "metadata": {"name": "check"},
            "spec": {"clusterName": "edge1", "selector": {"matchLabels": {"pool": "pool"}},
                "checks": {"unhealthyNodeConditions": [
                    {"type": "Ready", "status": "False", "timeoutSeconds": 1},
                    {"type": "Ready", "status": "Unknown", "timeoutSeconds": 1}]},
                "remediation": {"triggerIf": {"unhealthyLessThanOrEqualTo": 1}}}}),
    )
    .await?;
    let first = all_healthy(&machines, 3).await?;
    let check = eventually("the check counting three healthy machines", || async {
        Ok(checks.get_opt("check").await?.filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.expected_machines == 3 && s.current_healthy == 3 && s.remediations_allowed == 1
            })
        }))
    })
    .await?;
    ensure!(
        check.status.as_ref().is_some_and(|s| s.targets.len() == 3),
        "{check:?}"
    );

    // One node not Ready past its 1 s: that machine is replaced.
    let sick = first[0].name_any();
    node_ready(&nodes, &sick, "False").await?;
    eventually("the sick machine replaced", || async {
        let list = machines.list(&ListParams::default()).await?.items;
        let names: Vec<String> = list.iter().map(|m| m.name_any()).collect();
        Ok((list.len() == 3 && !names.contains(&sick)).then_some(()))
    })
    .await?;
    all_healthy(&machines, 3).await?;

    // Two unhealthy when one is allowed: marked, not remediated, and the check says why.
    let now = machines.list(&ListParams::default()).await?.items;
    for m in &now[..2] {
        node_ready(&nodes, &m.name_any(), "False").await?;
    }
    eventually("remediation short-circuited", || async {
        Ok(checks.get_opt("check").await?.filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.current_healthy == 1
                    && s.conditions.iter().any(|c| {
                        c.type_ == "RemediationAllowed"
                            && c.status == "False"
                            && c.reason == "TooManyUnhealthy"
                    })
            })
        }))
    })
    .await?;
    // The pass that wrote that status marked the machines first.
    for m in &now[..2] {
        let m = machines.get(&m.name_any()).await?;
        ensure!(
            condition(&m, "HealthCheckSucceeded") == Some(("False", "UnhealthyNode")),
            "{m:?}"
        );
        ensure!(condition(&m, "OwnerRemediated").is_none(), "{m:?}");
    }
    provider.abort();
    Ok(())
}
