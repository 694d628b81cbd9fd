//! The Machine controller on a hub with one member (embedded, or real control planes with
//! `FLOTILLA_TEST_SERVER=kube`). The test is the provider (it sets `providerID` and applies
//! `InfrastructureReady` under its own field manager) and the node's kubelet (it makes the Node
//! and its Ready condition). A machine goes Provisioning → Provisioned → Running by its
//! conditions, mirrors its node's health, and on deletion cordons and drains its node (a pod
//! evicted; a disruption budget holding another until the drain timeout) and deletes it.

use std::collections::BTreeMap;

use anyhow::{Result, ensure};
use flotilla_api::{keys::finalizers::MACHINE_CONTROLLER, provisioning::Machine};
use flotilla_controllers::machine;
use flotilla_testing::{Controllers, MemberServer, TestHub};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

mod support;

use support::{create, create_namespace, eventually, init_tracing};

fn start(client: &Client) -> Result<Controllers> {
    Controllers::push(client, |ctx| {
        Ok(vec![
            machine::controller(
                ctx,
                machine::Options {
                    resync: std::time::Duration::from_millis(500),
                    ..machine::Options::default()
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

fn phase(m: &Machine) -> Option<&str> {
    m.status.as_ref()?.phase.as_deref()
}

async fn machine_state(
    api: &Api<Machine>,
    name: &str,
    what: &str,
    check: impl Fn(&Machine) -> bool,
) -> Result<Machine> {
    eventually(what, || async {
        Ok(api.get_opt(name).await?.filter(|m| check(m)))
    })
    .await
}

/// As a provider: the machine's providerID, and `InfrastructureReady` applied under the
/// provider's own field manager.
async fn provision(api: &Api<Machine>, name: &str, provider_id: &str) -> Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"providerID": provider_id}})),
    )
    .await?;
    api.patch_status(
        name,
        &PatchParams::apply("test-provider").force(),
        &Patch::Apply(&json!({
            "apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "Machine",
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.0.0.7"}],
                "initialization": {"infrastructureProvisioned": true},
                "conditions": [{"type": "InfrastructureReady", "status": "True",
                    "reason": "Provisioned", "message": "made by the test",
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            },
        })),
    )
    .await?;
    Ok(())
}

/// As a kubelet: the node's Ready condition.
async fn node_ready(nodes: &Api<Node>, name: &str, ready: &str) -> Result<()> {
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"status": {"conditions": [{"type": "Ready", "status": ready,
                "reason": "KubeletReady", "message": "set by the test",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}),
            ),
        )
        .await?;
    Ok(())
}

fn pod(name: &str, node: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1"}]}})
}

/// Gone, or being deleted (a real member keeps an evicted pod Terminating: it has no kubelet).
async fn pod_going(pods: &Api<Pod>, name: &str) -> Result<()> {
    eventually(&format!("pod {name} evicted"), || async {
        Ok(match pods.get_opt(name).await? {
            None => Some(()),
            Some(p) => p.metadata.deletion_timestamp.map(|_| ()),
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_follows_its_provider_and_node_and_drains_on_deletion() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let member = hub.add_member("edge1", BTreeMap::new()).await?;
    let member_client = MemberServer::of(&member)?.client().await?;
    create_namespace(client, "machines").await?;
    let _controllers = start(client)?;
    let machines: Api<Machine> = Api::namespaced(client.clone(), "machines");
    create(
        &machines,
        json!({"apiVersion": "provisioning.flotilla.io/v1alpha1", "kind": "Machine",
            "metadata": {"name": "m1"},
            "spec": {"clusterName": "edge1", "role": "Worker", "version": "v1.35.0",
                "infrastructureRef": {"provider": "test"}, "nodeDrainTimeoutSeconds": 3}}),
    )
    .await?;

    let waiting = machine_state(&machines, "m1", "waiting for its provider", |m| {
        phase(m) == Some("Provisioning")
            && condition(m, "Ready") == Some(("False", "WaitingForInfrastructure"))
    })
    .await?;
    ensure!(
        waiting.finalizers().iter().any(|f| f == MACHINE_CONTROLLER),
        "{waiting:?}"
    );
    ensure!(condition(&waiting, "BootstrapConfigReady") == Some(("True", "NoBootstrapNeeded")));

    provision(&machines, "m1", "test://edge1/m1").await?;
    machine_state(&machines, "m1", "provisioned, waiting for its node", |m| {
        phase(m) == Some("Provisioned")
            && condition(m, "NodeHealthy") == Some(("False", "WaitingForNode"))
    })
    .await?;

    let nodes: Api<Node> = Api::all(member_client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n1"}, "spec": {"providerID": "test://edge1/m1"}}))?,
        )
        .await?;
    node_ready(&nodes, "n1", "True").await?;
    let running = machine_state(&machines, "m1", "running on a Ready node", |m| {
        phase(m) == Some("Running") && condition(m, "Ready") == Some(("True", "MachineReady"))
    })
    .await?;
    ensure!(
        running
            .status
            .as_ref()
            .and_then(|s| s.node_ref.as_ref())
            .map(|r| r.name.as_str())
            == Some("n1"),
        "{running:?}"
    );
    // The provider's condition stays the provider's.
    ensure!(condition(&running, "InfrastructureReady") == Some(("True", "Provisioned")));

    node_ready(&nodes, "n1", "False").await?;
    machine_state(&machines, "m1", "its node's trouble mirrored", |m| {
        condition(m, "NodeHealthy") == Some(("False", "NodeNotReady"))
            && condition(m, "Ready") == Some(("False", "NodeNotReady"))
    })
    .await?;

    // Deletion: cordon, evict, a budget holding one pod until the 3 s drain timeout, then
    // the node goes and so does the machine.
    let pods: Api<Pod> = Api::namespaced(member_client.clone(), "default");
    for name in ["app", "guarded"] {
        create(&pods, pod(name, "n1")).await?;
        // Running (a Pending pod is evicted whatever its budget says).
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
        )
        .await?;
    }
    let budgets: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(member_client.clone(), "default");
    create(
        &budgets,
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guard"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}),
    )
    .await?;
    machines.delete("m1", &DeleteParams::default()).await?;
    eventually("the node cordoned", || async {
        Ok(nodes
            .get_opt("n1")
            .await?
            .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
            .map(|_| ()))
    })
    .await?;
    pod_going(&pods, "app").await?;
    eventually("the node deleted after the drain timeout", || async {
        Ok(nodes.get_opt("n1").await?.is_none().then_some(()))
    })
    .await?;
    let guarded = pods.get_opt("guarded").await?;
    ensure!(
        guarded.is_some_and(|p| p.metadata.deletion_timestamp.is_none()),
        "the pod its budget protects was evicted"
    );
    eventually("the machine gone", || async {
        Ok(machines.get_opt("m1").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}
