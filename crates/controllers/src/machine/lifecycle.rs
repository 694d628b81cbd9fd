//! What a Machine's status says, decided from what is observed: its bootstrap data, what its
//! provider reported, and its Node in the machine's cluster. Conditions decide; the phase is
//! for display. No IO.

use flotilla_api::{
    conditions::{
        BOOTSTRAP_CONFIG_READY, FALSE, INFRASTRUCTURE_READY, NODE_HEALTHY, READY, TRUE, UNKNOWN,
        reasons,
    },
    provisioning::Machine,
};
use k8s_openapi::{api::core::v1::Node, apimachinery::pkg::apis::meta::v1::Condition};

/// What was seen of the machine's Node.
#[derive(Clone, Debug)]
pub enum NodeSeen<'a> {
    /// The machine has no providerID yet: there is nothing to look for.
    NotLookedFor,
    /// The cluster could not be asked (the message says why).
    Unreachable(String),
    /// No Node carries the machine's providerID.
    Missing,
    /// The Node with the machine's providerID.
    Found(&'a Node),
}

/// A condition of any status (`True`, `False`, `Unknown`).
fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        status: status.into(),
        ..flotilla_api::conditions::new(type_, false, reason, message, generation)
    }
}

/// `BootstrapConfigReady`: the data Secret is named, or no bootstrap provider is asked for.
pub fn bootstrap(machine: &Machine) -> Condition {
    let generation = machine.metadata.generation;
    let b = &machine.spec.bootstrap;
    match (&b.data_secret_name, &b.config_ref) {
        (Some(secret), _) => condition(
            BOOTSTRAP_CONFIG_READY,
            TRUE,
            reasons::BOOTSTRAP_DATA_READY,
            format!("bootstrap data is in Secret {secret}"),
            generation,
        ),
        (None, None) => condition(
            BOOTSTRAP_CONFIG_READY,
            TRUE,
            reasons::NO_BOOTSTRAP_NEEDED,
            "no bootstrap provider is configured; the infrastructure provider bootstraps the machine".into(),
            generation,
        ),
        (None, Some(r)) => condition(
            BOOTSTRAP_CONFIG_READY,
            FALSE,
            reasons::WAITING_FOR_BOOTSTRAP_DATA,
            format!(
                "waiting for {}.{} {} to write the bootstrap data Secret",
                r.kind, r.api_group, r.name
            ),
            generation,
        ),
    }
}

fn node_condition<'a>(
    node: &'a Node,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// `NodeHealthy`: the Node's own `Ready`, or why there is no Node to judge. `had_node` says
/// whether the machine had a Node before (then a missing one is `NodeNotFound`).
pub fn node_healthy(machine: &Machine, seen: &NodeSeen<'_>, had_node: bool) -> Condition {
    let generation = machine.metadata.generation;
    match seen {
        NodeSeen::NotLookedFor => condition(
            NODE_HEALTHY,
            FALSE,
            reasons::WAITING_FOR_INFRASTRUCTURE,
            "waiting for the provider to set spec.providerID".into(),
            generation,
        ),
        NodeSeen::Unreachable(message) => condition(
            NODE_HEALTHY,
            UNKNOWN,
            reasons::CLUSTER_NOT_REACHABLE,
            message.clone(),
            generation,
        ),
        NodeSeen::Missing if had_node => condition(
            NODE_HEALTHY,
            FALSE,
            reasons::NODE_NOT_FOUND,
            "the machine's Node was deleted".into(),
            generation,
        ),
        NodeSeen::Missing => condition(
            NODE_HEALTHY,
            FALSE,
            reasons::WAITING_FOR_NODE,
            format!(
                "no Node with providerID {} in cluster {} yet",
                machine.spec.provider_id.as_deref().unwrap_or_default(),
                machine.spec.cluster_name
            ),
            generation,
        ),
        NodeSeen::Found(node) => match node_condition(node, "Ready") {
            Some(c) if c.status == TRUE => condition(
                NODE_HEALTHY,
                TRUE,
                reasons::NODE_READY,
                format!(
                    "Node {} is Ready",
                    node.metadata.name.as_deref().unwrap_or_default()
                ),
                generation,
            ),
            Some(c) => condition(
                NODE_HEALTHY,
                if c.status == FALSE { FALSE } else { UNKNOWN },
                reasons::NODE_NOT_READY,
                format!(
                    "Node {} is not Ready: {}",
                    node.metadata.name.as_deref().unwrap_or_default(),
                    c.message
                        .as_deref()
                        .unwrap_or(c.reason.as_deref().unwrap_or("no reason given"))
                ),
                generation,
            ),
            None => condition(
                NODE_HEALTHY,
                UNKNOWN,
                reasons::NODE_NOT_READY,
                format!(
                    "Node {} has not reported Ready yet",
                    node.metadata.name.as_deref().unwrap_or_default()
                ),
                generation,
            ),
        },
    }
}

/// The provider's `InfrastructureReady`, when it has written one.
pub fn infrastructure(machine: &Machine) -> Option<&Condition> {
    machine
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == INFRASTRUCTURE_READY)
}

/// `Ready`: bootstrap, infrastructure and node all True; otherwise False with the first step
/// that is not done.
pub fn ready(machine: &Machine, bootstrap: &Condition, node: &Condition) -> Condition {
    let generation = machine.metadata.generation;
    let waiting_infra;
    let infra = match infrastructure(machine) {
        Some(c) => c,
        None => {
            waiting_infra = condition(
                INFRASTRUCTURE_READY,
                FALSE,
                reasons::WAITING_FOR_INFRASTRUCTURE,
                format!(
                    "waiting for provider {:?} to provision the machine",
                    machine.spec.infrastructure_ref.provider
                ),
                generation,
            );
            &waiting_infra
        }
    };
    for step in [bootstrap, infra, node] {
        if step.status != TRUE {
            let status = if step.status == UNKNOWN {
                UNKNOWN
            } else {
                FALSE
            };
            return condition(
                READY,
                status,
                &step.reason,
                format!("{}: {}", step.type_, step.message),
                generation,
            );
        }
    }
    condition(
        READY,
        TRUE,
        reasons::MACHINE_READY,
        "the machine's Node is Ready".into(),
        generation,
    )
}

/// The phase shown to users (Cluster API's): Pending, Provisioning, Provisioned, Running or
/// Deleting.
pub fn phase(machine: &Machine, bootstrap: &Condition, has_node: bool) -> &'static str {
    if machine.metadata.deletion_timestamp.is_some() {
        "Deleting"
    } else if has_node {
        "Running"
    } else if infrastructure(machine).is_some_and(|c| c.status == TRUE) {
        "Provisioned"
    } else if bootstrap.status == TRUE {
        "Provisioning"
    } else {
        "Pending"
    }
}

/// The pods a drain evicts: those on the node that are not DaemonSet pods, mirror pods or
/// already finished or going.
pub fn evictable(pod: &k8s_openapi::api::core::v1::Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    !daemon && !mirror && !finished && pod.metadata.deletion_timestamp.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flotilla_api::provisioning::{
        ContractVersionedObjectReference, MachineSpec, MachineStatus,
    };
    use serde_json::json;

    fn machine(spec: serde_json::Value, conditions: serde_json::Value) -> Machine {
        let mut m = Machine::new(
            "m",
            serde_json::from_value::<MachineSpec>(spec).unwrap_or_default(),
        );
        m.status = Some(MachineStatus {
            conditions: serde_json::from_value(conditions).unwrap_or_default(),
            ..MachineStatus::default()
        });
        m
    }

    fn spec() -> serde_json::Value {
        json!({"clusterName": "edge1", "role": "Worker", "infrastructureRef": {"provider": "local"},
            "providerID": "local://edge1/m"})
    }

    fn node(ready: Option<&str>) -> Node {
        let conditions = ready.map(|s| json!([{"type": "Ready", "status": s, "reason": "KubeletReady", "message": "kubelet says so"}]));
        serde_json::from_value(
            json!({"metadata": {"name": "n1"}, "status": {"conditions": conditions}}),
        )
        .unwrap_or_default()
    }

    const INFRA_OK: &str = r#"[{"type": "InfrastructureReady", "status": "True", "reason": "Provisioned", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]"#;

    #[test]
    fn conditions_follow_each_step() {
        let infra_ok: serde_json::Value = serde_json::from_str(INFRA_OK).unwrap_or_default();
        let ready_node = node(Some("True"));
        let sick_node = node(Some("False"));
        let silent_node = node(None);
        for (what, m, seen, had, want_node, want_ready, want_phase) in [
            (
                "nothing provisioned yet",
                machine(
                    json!({"clusterName": "edge1", "role": "Worker", "infrastructureRef": {"provider": "local"}}),
                    json!([]),
                ),
                NodeSeen::NotLookedFor,
                false,
                ("False", "WaitingForInfrastructure"),
                ("False", "WaitingForInfrastructure"),
                "Provisioning",
            ),
            (
                "provisioned, no node yet",
                machine(spec(), infra_ok.clone()),
                NodeSeen::Missing,
                false,
                ("False", "WaitingForNode"),
                ("False", "WaitingForNode"),
                "Provisioned",
            ),
            (
                "a ready node",
                machine(spec(), infra_ok.clone()),
                NodeSeen::Found(&ready_node),
                false,
                ("True", "NodeReady"),
                ("True", "MachineReady"),
                "Running",
            ),
            (
                "a node that is not ready",
                machine(spec(), infra_ok.clone()),
                NodeSeen::Found(&sick_node),
                true,
                ("False", "NodeNotReady"),
                ("False", "NodeNotReady"),
                "Running",
            ),
            (
                "a node that never reported",
                machine(spec(), infra_ok.clone()),
                NodeSeen::Found(&silent_node),
                true,
                ("Unknown", "NodeNotReady"),
                ("Unknown", "NodeNotReady"),
                "Running",
            ),
            (
                "the node was deleted",
                machine(spec(), infra_ok.clone()),
                NodeSeen::Missing,
                true,
                ("False", "NodeNotFound"),
                ("False", "NodeNotFound"),
                "Provisioned",
            ),
            (
                "the cluster cannot be reached",
                machine(spec(), infra_ok.clone()),
                NodeSeen::Unreachable("connection refused".into()),
                true,
                ("Unknown", "ClusterNotReachable"),
                ("Unknown", "ClusterNotReachable"),
                "Provisioned",
            ),
        ] {
            let b = bootstrap(&m);
            let n = node_healthy(&m, &seen, had);
            let r = ready(&m, &b, &n);
            let found = matches!(seen, NodeSeen::Found(_));
            assert_eq!(
                (n.status.as_str(), n.reason.as_str()),
                want_node,
                "{what}: node"
            );
            assert_eq!(
                (r.status.as_str(), r.reason.as_str()),
                want_ready,
                "{what}: ready"
            );
            assert_eq!(phase(&m, &b, found), want_phase, "{what}: phase");
        }
    }

    #[test]
    fn bootstrap_waits_for_a_configured_provider() {
        let mut m = machine(spec(), json!([]));
        assert_eq!(bootstrap(&m).reason, "NoBootstrapNeeded");
        m.spec.bootstrap.config_ref = Some(ContractVersionedObjectReference {
            api_group: "bootstrap.example.com".into(),
            kind: "Config".into(),
            name: "c".into(),
        });
        let waiting = bootstrap(&m);
        assert_eq!(
            (waiting.status.as_str(), waiting.reason.as_str()),
            ("False", "WaitingForBootstrapData")
        );
        assert_eq!(phase(&m, &waiting, false), "Pending");
        m.spec.bootstrap.data_secret_name = Some("m-bootstrap".into());
        assert_eq!(bootstrap(&m).status, "True");
    }

    #[test]
    fn drains_skip_daemon_set_mirror_and_finished_pods() {
        let pod = |v: serde_json::Value| -> k8s_openapi::api::core::v1::Pod {
            serde_json::from_value(v).unwrap_or_default()
        };
        assert!(evictable(&pod(json!({"metadata": {"name": "a"}}))));
        assert!(!evictable(&pod(
            json!({"metadata": {"name": "d", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u", "controller": true}]}})
        )));
        assert!(!evictable(&pod(
            json!({"metadata": {"name": "m", "annotations": {"kubernetes.io/config.mirror": "x"}}})
        )));
        assert!(!evictable(&pod(
            json!({"metadata": {"name": "f"}, "status": {"phase": "Succeeded"}})
        )));
        assert!(!evictable(&pod(
            json!({"metadata": {"name": "g", "deletionTimestamp": "2026-01-01T00:00:00Z"}})
        )));
    }
}
