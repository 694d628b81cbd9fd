//! The simulated Nodes: created (or taken back after a restart) by server-side apply, with the
//! status a kubelet reports (capacity, allocatable, the pressure conditions and `Ready` with
//! reason `KubeletReady`, node info, addresses that are only data), a Lease per node in
//! `kube-node-lease` renewed every heartbeat, and the Ready condition's `lastHeartbeatTime`
//! refreshed at the slower node-status period or whenever the status changes, as a kubelet does.
//! Clears the `not-ready`/`unreachable` taints kube-apiserver puts on a new Node (kube's node
//! lifecycle controller would, once the node is Ready). Also tells the scheduler's book each
//! node's room. Never heartbeats a Node it does not label; with the workload controllers it
//! also plays kube-controller-manager's node lifecycle for the others (conditions `Unknown` once
//! a node's heartbeats stop).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use flotilla_api::{names::fnv32a, quantity::Totals};
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Namespace, Node},
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    runtime::controller::Action,
};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::{
    CPU_ANNOTATION, FIELD_MANAGER, MEMORY_ANNOTATION, NodeSize, Options, POOL_LABEL,
    error::{Error, Result},
    names,
    schedule::Room,
    state::{Sim, lock},
    status,
};

/// Where node Leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Whether `node` is one of the simulator's (it carries [`POOL_LABEL`] with the prefix).
pub(crate) fn is_ours(node: &Node, options: &Options) -> bool {
    node.labels().get(POOL_LABEL) == Some(&options.node_prefix)
}

/// The ordinal in a node name `<prefix>-node-<n>`, else a number derived from the name.
fn ordinal(name: &str) -> u32 {
    name.rsplit_once("-node-")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| fnv32a(name.as_bytes()) % 60_000 + 1)
}

/// The node's InternalIP: `127.0.x.y` from its ordinal. Only data; nothing listens there.
pub(crate) fn address(name: &str) -> String {
    let n = ordinal(name);
    format!("127.0.{}.{}", (n / 250) % 256, n % 250 + 2)
}

fn node_body(name: &str, options: &Options) -> Value {
    let mut labels = options.node_labels.clone();
    labels.extend([
        ("kubernetes.io/hostname".to_owned(), name.to_owned()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
        (
            "node.kubernetes.io/instance-type".to_owned(),
            "simulated".to_owned(),
        ),
        (POOL_LABEL.to_owned(), options.node_prefix.clone()),
    ]);
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"providerID": format!("flotilla-simulator://{name}")},
    })
}

/// A uuid-shaped identifier derived from `seed`.
fn uuid_like(seed: &str) -> String {
    let part = |salt: &str| fnv32a(format!("{seed}/{salt}").as_bytes());
    let (a, b, c, d) = (part("a"), part("b"), part("c"), part("d"));
    format!(
        "{a:08x}-{:04x}-{:04x}-{:04x}-{:04x}{d:08x}",
        b >> 16,
        b & 0xffff,
        c >> 16,
        c & 0xffff
    )
}

/// The status a kubelet would report for `name`, keeping transition times (and, unless
/// `heartbeat`, heartbeat times) from `previous`.
fn status_body(
    name: &str,
    size: &NodeSize,
    kubelet_version: &str,
    previous: Option<&Value>,
    heartbeat: bool,
) -> Value {
    let now = status::now();
    let stamp = serde_json::to_value(&now).unwrap_or(Value::Null);
    let conditions: Vec<Value> = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    .into_iter()
    .map(|(type_, state, reason, message)| {
        let mut c = status::condition(previous, type_, state, reason, message, &now, false);
        let before = previous
            .and_then(Value::as_array)
            .and_then(|l| l.iter().find(|c| c["type"] == type_))
            .and_then(|c| c.get("lastHeartbeatTime"))
            .filter(|t| !t.is_null() && !heartbeat)
            .cloned();
        if let Some(o) = c.as_object_mut() {
            o.insert(
                "lastHeartbeatTime".into(),
                before.unwrap_or_else(|| stamp.clone()),
            );
        }
        c
    })
    .collect();
    json!({
        "capacity": size.capacity,
        "allocatable": size.allocatable,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": address(name)},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": uuid_like(&format!("{name}/boot")),
            "containerRuntimeVersion": "simulated://1.0.0",
            "kernelVersion": "6.1.0-flotilla-simulated",
            "kubeProxyVersion": kubelet_version,
            "kubeletVersion": kubelet_version,
            "machineID": uuid_like(&format!("{name}/machine")).replace('-', ""),
            "operatingSystem": "linux",
            "osImage": "Flotilla simulated node",
            "systemUUID": uuid_like(&format!("{name}/system")),
        },
    })
}

/// Creates the simulated Nodes, or takes back the ones an earlier run created (server-side
/// apply is idempotent), each with a Ready status.
///
/// # Errors
///
/// When a Node or its status cannot be written.
pub(crate) async fn ensure(
    client: &Client,
    options: &Options,
    kubelet_version: &str,
) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for n in 1..=options.nodes {
        let name = names::node(&options.node_prefix, n);
        let node = api
            .patch(&name, &params, &Patch::Apply(node_body(&name, options)))
            .await
            .map_err(|source| Error::ApplyNode {
                node: name.clone(),
                source,
            })?;
        let previous = serde_json::to_value(&node.status)
            .ok()
            .and_then(|mut s| s.get_mut("conditions").map(Value::take));
        let status = status_body(
            &name,
            &options.node_size,
            kubelet_version,
            previous.as_ref(),
            true,
        );
        api.patch_status(
            &name,
            &params,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node", "status": status})),
        )
        .await
        .map_err(|source| Error::WriteNodeStatus {
            node: name.clone(),
            source,
        })?;
    }
    info!(nodes = options.nodes, prefix = %options.node_prefix, "simulated nodes applied");
    Ok(())
}

/// The node as the scheduler sees it.
pub(crate) fn room_of(node: &Node) -> Room {
    let status = node.status.as_ref();
    let mut allocatable = Totals::default();
    if let Some(list) = status.and_then(|s| s.allocatable.as_ref()) {
        let _ = allocatable.add_list(list);
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    Room {
        allocatable,
        schedulable: ready && !cordoned,
        labels: node.labels().clone(),
        taints: node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default(),
        address: status
            .and_then(|s| s.addresses.as_ref())
            .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
            .map(|a| a.address.clone())
            .unwrap_or_else(|| address(&node.name_any())),
    }
}

/// The taints kube puts on a Node whose Ready condition is not True (or unknown); a simulated
/// node is always Ready.
const CONDITION_TAINTS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

fn has_condition_taints(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| CONDITION_TAINTS.contains(&t.key.as_str())))
}

/// The lease duration a kubelet announces (40 s), longer when heartbeats are slower.
fn lease_seconds(heartbeat: Duration) -> u64 {
    (heartbeat.as_secs() * 4).max(40)
}

async fn renew(sim: &Sim, node: &Node) -> Result<()> {
    let name = node.name_any();
    let api: Api<Lease> = Api::namespaced(sim.client.clone(), LEASE_NAMESPACE);
    let body = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                 "uid": node.uid().unwrap_or_default()}],
        },
        "spec": {
            "holderIdentity": name,
            "leaseDurationSeconds": lease_seconds(sim.options.heartbeat),
            "renewTime": status::now_micro(),
        },
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let error = |source| Error::RenewLease {
        node: name.clone(),
        source,
    };
    match api.patch(&name, &params, &Patch::Apply(&body)).await {
        Ok(_) => Ok(()),
        Err(e) if flotilla_runtime::error::is_not_found(&e) => {
            // A member without the namespace kube-apiserver makes on start.
            let namespaces: Api<Namespace> = Api::all(sim.client.clone());
            let namespace: Namespace = serde_json::from_value(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}}),
            )
            .unwrap_or_default();
            match namespaces.create(&PostParams::default(), &namespace).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(error(e)),
            }
            api.patch(&name, &params, &Patch::Apply(&body))
                .await
                .map(|_| ())
                .map_err(error)
        }
        Err(e) => Err(error(e)),
    }
}

/// The node's size: [`CPU_ANNOTATION`] and [`MEMORY_ANNOTATION`] when it carries them (a
/// provider that creates the Node sets them from its machine's settings), else `default`.
pub(crate) fn size_of(node: &Node, default: &NodeSize) -> NodeSize {
    let annotation = |key: &str| {
        node.annotations()
            .get(key)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|v| *v > 0)
    };
    match (annotation(CPU_ANNOTATION), annotation(MEMORY_ANNOTATION)) {
        (None, None) => default.clone(),
        (cpu, memory) => {
            let quantity = |key: &str, fallback: u32| {
                default
                    .capacity
                    .get(key)
                    .and_then(|q| q.0.trim_end_matches("Gi").parse().ok())
                    .unwrap_or(fallback)
            };
            NodeSize::new(
                cpu.unwrap_or_else(|| quantity("cpu", 4)),
                memory.unwrap_or_else(|| quantity("memory", 16)),
            )
        }
    }
}

/// The reason and message kube-controller-manager's node lifecycle controller writes on the
/// conditions of a node whose kubelet went silent.
const SILENT_REASON: &str = "NodeStatusUnknown";
const SILENT_MESSAGE: &str = "Kubelet stopped posting node status.";

/// kube-controller-manager's node lifecycle controller, for a member that has none (it runs
/// with the workload controllers): a Node nobody heartbeats any more (no simulator pool claims
/// it) has its conditions turned `Unknown` once neither its Lease nor its Ready heartbeat has
/// been renewed for [`Options::node_monitor_grace_period`].
async fn watch_silence(node: &Node, sim: &Sim) -> Result<Action> {
    let Some(conditions) = node.status.as_ref().and_then(|s| s.conditions.as_ref()) else {
        return Ok(Action::await_change());
    };
    let Some(ready) = conditions.iter().find(|c| c.type_ == "Ready") else {
        return Ok(Action::await_change());
    };
    if ready.status == "Unknown" {
        return Ok(Action::await_change());
    }
    let name = node.name_any();
    let leases: Api<Lease> = Api::namespaced(sim.client.clone(), LEASE_NAMESPACE);
    let renewed = leases
        .get_opt(&name)
        .await
        .map_err(|source| Error::RenewLease {
            node: name.clone(),
            source,
        })?
        .and_then(|l| l.spec)
        .and_then(|s| s.renew_time)
        .map(|t| t.0);
    let heartbeat = ready.last_heartbeat_time.as_ref().map(|t| t.0);
    let Some(last) = renewed.into_iter().chain(heartbeat).max() else {
        return Ok(Action::await_change());
    };
    let grace = sim.options.node_monitor_grace_period;
    let silent = status::elapsed(&Time(last));
    if silent < grace {
        return Ok(Action::requeue(
            (grace - silent).max(Duration::from_millis(100)),
        ));
    }
    let now = status::now();
    let stamp = serde_json::to_value(&now).unwrap_or(Value::Null);
    let unknown: Vec<Value> = conditions
        .iter()
        .map(|c| {
            let mut c = serde_json::to_value(c).unwrap_or(Value::Null);
            c["status"] = json!("Unknown");
            c["reason"] = json!(SILENT_REASON);
            c["message"] = json!(SILENT_MESSAGE);
            c["lastTransitionTime"] = stamp.clone();
            c
        })
        .collect();
    let api: Api<Node> = Api::all(sim.client.clone());
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node",
            "status": {"conditions": unknown}})),
    )
    .await
    .map_err(|source| Error::WriteNodeStatus {
        node: name.clone(),
        source,
    })?;
    info!(node = %name, silent = ?silent, "node stopped posting status: conditions Unknown");
    Ok(Action::await_change())
}

/// One simulated node: its room in the scheduler's book, its Lease, its status.
pub(crate) async fn reconcile(node: Arc<Node>, sim: Arc<Sim>) -> Result<Action> {
    if !is_ours(&node, &sim.options) {
        // A node that left the pool (its kubelet died) takes no more pods.
        if lock(&sim.ledger).remove_room(&node.name_any()) {
            let _ = sim.wake.all_daemon_sets.unbounded_send(());
        }
        return if sim.options.workload_controllers {
            watch_silence(&node, &sim).await
        } else {
            Ok(Action::await_change())
        };
    }
    let name = node.name_any();
    if node.metadata.deletion_timestamp.is_some() {
        if lock(&sim.ledger).remove_room(&name) {
            let _ = sim.wake.all_daemon_sets.unbounded_send(());
        }
        return Ok(Action::await_change());
    }
    if has_condition_taints(&node) {
        // Nothing else clears them on a member without kube-controller-manager's node
        // lifecycle controller: kube-apiserver taints every new Node not-ready.
        let mut cleared = (*node).clone();
        if let Some(spec) = cleared.spec.as_mut() {
            spec.taints = spec.taints.take().map(|taints| {
                taints
                    .into_iter()
                    .filter(|t| !CONDITION_TAINTS.contains(&t.key.as_str()))
                    .collect()
            });
        }
        let api: Api<Node> = Api::all(sim.client.clone());
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        api.replace(&name, &params, &cleared)
            .await
            .map_err(|source| Error::ApplyNode {
                node: name.clone(),
                source,
            })?;
        debug!(node = %name, "condition taints cleared");
        return Ok(Action::requeue(Duration::from_millis(10)));
    }
    let change = lock(&sim.ledger).set_room(&name, room_of(&node));
    if let Some(grew) = change {
        let _ = sim.wake.all_daemon_sets.unbounded_send(());
        if grew {
            sim.wake_waiting();
        }
    }

    let heartbeat = sim.options.heartbeat;
    let last = lock(&sim.renewed).get(&name).copied();
    let lease_due = match last {
        Some(at) if at.elapsed() < heartbeat => heartbeat - at.elapsed(),
        _ => {
            renew(&sim, &node).await?;
            lock(&sim.renewed).insert(name.clone(), Instant::now());
            heartbeat
        }
    };

    let period = sim.options.node_status_period;
    let current = serde_json::to_value(&node.status).unwrap_or(Value::Null);
    let conditions = current.get("conditions");
    let heartbeat_at = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_heartbeat_time.clone());
    let status_due = heartbeat_at
        .as_ref()
        .map(|at| status::remaining(at, period))
        .unwrap_or_default();
    let size = size_of(&node, &sim.options.node_size);
    let desired = status_body(
        &name,
        &size,
        &sim.kubelet_version,
        conditions,
        status_due.is_zero(),
    );
    let next_status = if status_due.is_zero() || !status::covers(&current, &desired) {
        let desired = status_body(&name, &size, &sim.kubelet_version, conditions, true);
        let api: Api<Node> = Api::all(sim.client.clone());
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Node", "status": desired})),
        )
        .await
        .map_err(|source| Error::WriteNodeStatus {
            node: name.clone(),
            source,
        })?;
        debug!(node = %name, "node status written");
        period
    } else {
        status_due
    };
    Ok(Action::requeue(
        lease_due.min(next_status).max(Duration::from_millis(10)),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn node_status_keeps_transition_and_heartbeat_times_until_a_heartbeat() {
        let options = Options::default();
        let first = status_body("sim-node-1", &options.node_size, "v1.35.0", None, true);
        let conditions = first.get("conditions").cloned();
        let ready = |s: &Value| {
            s["conditions"]
                .as_array()
                .and_then(|l| l.iter().find(|c| c["type"] == "Ready").cloned())
                .unwrap_or(Value::Null)
        };
        assert_eq!(ready(&first)["status"], "True");
        assert_eq!(ready(&first)["reason"], "KubeletReady");
        let mut old = conditions.unwrap_or(Value::Null);
        if let Some(list) = old.as_array_mut() {
            for c in list {
                c["lastHeartbeatTime"] = json!("2020-01-01T00:00:00Z");
                c["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
            }
        }
        let quiet = status_body(
            "sim-node-1",
            &options.node_size,
            "v1.35.0",
            Some(&old),
            false,
        );
        assert_eq!(ready(&quiet)["lastHeartbeatTime"], "2020-01-01T00:00:00Z");
        let beat = status_body(
            "sim-node-1",
            &options.node_size,
            "v1.35.0",
            Some(&old),
            true,
        );
        assert_ne!(ready(&beat)["lastHeartbeatTime"], "2020-01-01T00:00:00Z");
        assert_eq!(ready(&beat)["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(first["nodeInfo"]["kubeletVersion"], "v1.35.0");
        assert_eq!(first["addresses"][0]["address"], "127.0.0.3");
    }

    #[test]
    fn nodes_carry_the_pool_and_the_callers_labels() {
        let options = Options {
            node_labels: BTreeMap::from([(
                "topology.kubernetes.io/zone".to_owned(),
                "eu-1a".to_owned(),
            )]),
            ..Options::default()
        };
        let body = node_body("sim-node-2", &options);
        let labels = &body["metadata"]["labels"];
        assert_eq!(labels["topology.kubernetes.io/zone"], "eu-1a");
        assert_eq!(labels["kubernetes.io/hostname"], "sim-node-2");
        assert_eq!(labels["node.kubernetes.io/instance-type"], "simulated");
        assert_eq!(labels[POOL_LABEL], "sim");
        assert_eq!(address("sim-node-2"), "127.0.0.4");
    }
}
