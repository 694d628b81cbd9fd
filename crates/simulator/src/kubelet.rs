//! The scheduler and the kubelet of the simulated nodes, for every pod in the member whatever
//! created it. An unbound pod (for the default scheduler) is placed on the node with most room
//! that takes it and bound through `pods/binding`; one that fits nowhere stays Pending with
//! `PodScheduled=False`, reason `Unschedulable` and kube-scheduler's message, and is tried again
//! when room frees. A pod bound to a simulated node is accepted (Pending, `startTime`, host IP,
//! containers `ContainerCreating`), then Running and Ready once its startup deadline passes
//! ([`crate::Options::startup_delay`] plus jitter), and, unless it restarts `Always`, Succeeded
//! after [`crate::Options::completion_delay`]. A terminating pod on a simulated node is deleted
//! for good, as a kubelet confirms a pod stopped. Never writes a pod's spec.

use std::{sync::Arc, time::Duration, time::Instant};

use flotilla_api::{keys::DEFAULT_SCHEDULER_NAME, names::fnv32a};
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, PostParams, Preconditions},
    runtime::controller::Action,
};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::{
    FIELD_MANAGER,
    error::{Error, Result},
    schedule::{Constraints, Fit, PodKey, requests},
    state::{Sim, lock},
    status, workloads,
};

/// What the simulator last made of a pod, read from its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Nothing yet (a new pod).
    New,
    /// Pending with this `Unschedulable` (or other scheduling) message.
    Unscheduled(String),
    /// Accepted by its node's kubelet: Pending, containers being created.
    Accepted,
    /// Running (and Ready).
    Running,
    /// Finished.
    Finished,
}

/// The stage a pod's status shows.
pub(crate) fn stage(pod: &Pod) -> Stage {
    let Some(status) = pod.status.as_ref() else {
        return Stage::New;
    };
    match status.phase.as_deref() {
        Some("Succeeded" | "Failed") => return Stage::Finished,
        Some("Running") => return Stage::Running,
        _ => {}
    }
    if status.host_ip.is_some() && status.start_time.is_some() {
        return Stage::Accepted;
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| Stage::Unscheduled(c.message.clone().unwrap_or_default()))
        .unwrap_or(Stage::New)
}

/// Whether a pod is Ready.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When a Ready pod became Ready.
pub(crate) fn ready_since(
    pod: &Pod,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.clone().unwrap_or_else(status::now))
}

/// Whether a pod has finished (Succeeded or Failed).
pub(crate) fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// A pod condition as a kubelet writes it (no reason or message when there is none).
fn condition(
    previous: Option<&Value>,
    type_: &str,
    state: &str,
    reason: &str,
    message: &str,
) -> Value {
    let mut c = status::condition(
        previous,
        type_,
        state,
        reason,
        message,
        &status::now(),
        false,
    );
    if let Some(o) = c.as_object_mut() {
        if reason.is_empty() {
            o.remove("reason");
        }
        if message.is_empty() {
            o.remove("message");
        }
        o.insert("lastProbeTime".into(), Value::Null);
    }
    c
}

fn containers(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

fn init_containers(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

fn digest(seed: &str) -> String {
    (0..8)
        .map(|i| format!("{:08x}", fnv32a(format!("{seed}/{i}").as_bytes())))
        .collect()
}

fn image_id(image: &str) -> String {
    let repo = image.split(['@', ':']).next().unwrap_or(image);
    format!("{repo}@sha256:{}", digest(image))
}

fn container_id(pod: &Pod, name: &str) -> String {
    format!(
        "containerd://{}",
        digest(&format!("{}/{name}", pod.uid().unwrap_or_default()))
    )
}

fn previous_conditions(pod: &Pod) -> Option<Value> {
    serde_json::to_value(pod.status.as_ref()?.conditions.as_ref()?).ok()
}

/// The pod's `startTime` as written, else now.
fn start_time(pod: &Pod) -> Value {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| serde_json::to_value(status::now()).unwrap_or(Value::Null))
}

fn unready_message(pod: &Pod) -> String {
    let names: Vec<String> = containers(pod).into_iter().map(|(n, _)| n).collect();
    format!("containers with unready status: [{}]", names.join(" "))
}

/// The status of a pod no node takes.
fn unscheduled_status(pod: &Pod, reason: &str, message: &str) -> Value {
    let previous = previous_conditions(pod);
    json!({
        "phase": "Pending",
        "conditions": [condition(previous.as_ref(), "PodScheduled", "False", reason, message)],
    })
}

fn init_terminated(pod: &Pod, now: &Value) -> Vec<Value> {
    init_containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": image_id(&image),
                   "containerID": container_id(pod, &name), "ready": true, "restartCount": 0,
                   "started": false,
                   "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                            "startedAt": now, "finishedAt": now,
                                            "containerID": container_id(pod, &name)}}})
        })
        .collect()
}

/// The status a kubelet writes when it takes a pod: Pending, containers being created.
fn accepted_status(pod: &Pod, host_ip: &str) -> Value {
    let previous = previous_conditions(pod);
    let p = previous.as_ref();
    let now = serde_json::to_value(status::now()).unwrap_or(Value::Null);
    let unready = unready_message(pod);
    let containers: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": "", "ready": false,
                   "restartCount": 0, "started": false,
                   "state": {"waiting": {"reason": "ContainerCreating"}}})
        })
        .collect();
    let mut status = json!({
        "phase": "Pending",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": now,
        "conditions": [
            condition(p, "PodReadyToStartContainers", "False", "", ""),
            condition(p, "Initialized", "True", "", ""),
            condition(p, "Ready", "False", "ContainersNotReady", &unready),
            condition(p, "ContainersReady", "False", "ContainersNotReady", &unready),
            condition(p, "PodScheduled", "True", "", ""),
        ],
        "containerStatuses": containers,
    });
    let init = init_terminated(pod, &now);
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    status
}

/// The pod's IP: `10.<node>.x.y` from its uid. Only data.
fn pod_ip(pod: &Pod, host_ip: &str) -> String {
    let node = host_ip
        .rsplit('.')
        .next()
        .and_then(|n| n.parse::<u8>().ok())
        .unwrap_or(1);
    let h = fnv32a(pod.uid().unwrap_or_default().as_bytes());
    format!("10.{node}.{}.{}", (h >> 8) & 0xff, (h & 0xff).max(1))
}

/// The status of a Running, Ready pod.
fn running_status(pod: &Pod, host_ip: &str) -> Value {
    let previous = previous_conditions(pod);
    let p = previous.as_ref();
    let now = serde_json::to_value(status::now()).unwrap_or(Value::Null);
    let ip = pod_ip(pod, host_ip);
    let containers: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": image_id(&image),
                   "containerID": container_id(pod, &name), "ready": true, "restartCount": 0,
                   "started": true, "state": {"running": {"startedAt": now}}})
        })
        .collect();
    let mut status = json!({
        "phase": "Running",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time(pod),
        "conditions": [
            condition(p, "PodReadyToStartContainers", "True", "", ""),
            condition(p, "Initialized", "True", "", ""),
            condition(p, "Ready", "True", "", ""),
            condition(p, "ContainersReady", "True", "", ""),
            condition(p, "PodScheduled", "True", "", ""),
        ],
        "containerStatuses": containers,
    });
    let init = init_terminated(pod, &now);
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    status
}

/// The status of a pod whose containers all exited 0 (on the node at `host_ip`).
fn succeeded_status(pod: &Pod, host_ip: &str) -> Value {
    let previous = previous_conditions(pod);
    let p = previous.as_ref();
    let now = serde_json::to_value(status::now()).unwrap_or(Value::Null);
    let started = |name: &str| -> Value {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|l| l.iter().find(|c| c.name == name))
            .and_then(|c| c.state.as_ref()?.running.as_ref()?.started_at.clone())
            .and_then(|t| serde_json::to_value(t).ok())
            .unwrap_or_else(|| now.clone())
    };
    let containers: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": image_id(&image),
                   "containerID": container_id(pod, &name), "ready": false, "restartCount": 0,
                   "started": false,
                   "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                            "startedAt": started(&name), "finishedAt": now,
                                            "containerID": container_id(pod, &name)}}})
        })
        .collect();
    let ip = pod_ip(pod, host_ip);
    json!({
        "phase": "Succeeded",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time(pod),
        "conditions": [
            condition(p, "PodReadyToStartContainers", "False", "", ""),
            condition(p, "Initialized", "True", "PodCompleted", ""),
            condition(p, "Ready", "False", "PodCompleted", ""),
            condition(p, "ContainersReady", "False", "PodCompleted", ""),
            condition(p, "PodScheduled", "True", "", ""),
        ],
        "containerStatuses": containers,
    })
}

/// How long a pod takes to start: the startup delay plus its share of the jitter, fixed by
/// its uid so a restart keeps the deadline.
pub(crate) fn startup(delay: Duration, jitter: f64, uid: &str) -> Duration {
    let share = f64::from(fnv32a(uid.as_bytes())) / f64::from(u32::MAX);
    let jitter = jitter.clamp(0.0, 100.0);
    delay.mul_f64(1.0 + jitter * share)
}

fn key_of(pod: &Pod) -> PodKey {
    (pod.namespace().unwrap_or_default(), pod.name_any())
}

fn pod_name(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

async fn write(sim: &Sim, pod: &Pod, status: Value) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(sim.client.clone(), &pod.namespace().unwrap_or_default());
    match status::write(&api, pod, status).await {
        Ok(_) => Ok(()),
        // Gone meanwhile: its gone notice settles the rest.
        Err(e) if flotilla_runtime::error::is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::WritePodStatus {
            pod: pod_name(pod),
            source,
        }),
    }
}

/// Deletes a pod (this very pod: uid precondition); `now` deletes it at once, as a kubelet
/// does once the containers stopped.
pub(crate) async fn delete(sim: &Sim, pod: &Pod, now: bool) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(sim.client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: now.then_some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    if let Some(uid) = pod.uid() {
        lock(&sim.deleting).insert(uid);
    }
    match api.delete(&pod.name_any(), &params).await {
        Ok(_) => Ok(()),
        Err(e)
            if flotilla_runtime::error::is_not_found(&e)
                || flotilla_runtime::error::is_conflict(&e) =>
        {
            Ok(())
        }
        Err(source) => {
            if let Some(uid) = pod.uid() {
                lock(&sim.deleting).remove(&uid);
            }
            Err(Error::DeletePod {
                pod: pod_name(pod),
                source,
            })
        }
    }
}

/// The kubelet and scheduler for one pod.
pub(crate) async fn reconcile(pod: Arc<Pod>, sim: Arc<Sim>) -> Result<Action> {
    let resync = Action::requeue(sim.options.resync);
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    if pod.metadata.deletion_timestamp.is_some() {
        if node.as_deref().is_some_and(|n| sim.is_ours(n)) {
            delete(&sim, &pod, true).await?;
        }
        return Ok(Action::await_change());
    }
    match node {
        None => schedule(&pod, &sim).await,
        Some(node) if sim.is_ours(&node) => run(&pod, &node, &sim).await,
        Some(_) => Ok(resync),
    }
}

async fn schedule(pod: &Pod, sim: &Sim) -> Result<Action> {
    let resync = Action::requeue(sim.options.resync);
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(resync);
    };
    let scheduler = spec.scheduler_name.as_deref().unwrap_or("");
    if !scheduler.is_empty() && scheduler != DEFAULT_SCHEDULER_NAME {
        return Ok(resync);
    }
    if is_finished(pod) {
        return Ok(resync);
    }
    let key = key_of(pod);
    let uid = pod.uid();
    let fit = lock(&sim.ledger).place(
        &key,
        uid.as_deref(),
        &Constraints::of(spec),
        &requests(spec),
    );
    match fit {
        Fit::Nowhere(message) => {
            debug!(pod = %pod_name(pod), %message, "no node takes the pod");
            write(sim, pod, unscheduled_status(pod, "Unschedulable", &message)).await?;
            Ok(resync)
        }
        Fit::Node(node) if sim.binding => {
            let api: Api<Pod> =
                Api::namespaced(sim.client.clone(), &pod.namespace().unwrap_or_default());
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": pod.name_any(), "namespace": pod.namespace(), "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            });
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PostParams::default()
            };
            match api
                .create_subresource::<Value, Value>("binding", &pod.name_any(), &params, &binding)
                .await
            {
                Ok(_) => {
                    debug!(pod = %pod_name(pod), %node, "bound");
                    Ok(resync)
                }
                Err(source) => {
                    lock(&sim.ledger).forget(&key, uid.as_deref());
                    if flotilla_runtime::error::is_not_found(&source)
                        || flotilla_runtime::error::is_conflict(&source)
                    {
                        // Gone, or bound by someone else meanwhile.
                        return Ok(resync);
                    }
                    Err(Error::BindPod {
                        pod: pod_name(pod),
                        node,
                        source,
                    })
                }
            }
        }
        Fit::Node(node) if sim.workloads.is_some() && workloads::is_managed_child(pod) => {
            // No pods/binding on this member: the workload controller places the pods it
            // creates, so the waiting pod makes way for one created on the node that has room
            // now (the room stays reserved until this pod is gone).
            info!(pod = %pod_name(pod), %node, "room for a waiting pod; replacing it with one created on the node");
            delete(sim, pod, true).await?;
            Ok(Action::await_change())
        }
        Fit::Node(_) => {
            lock(&sim.ledger).forget(&key, uid.as_deref());
            write(
                sim,
                pod,
                unscheduled_status(
                    pod,
                    "SchedulerError",
                    "the member's API server does not serve pods/binding, so the simulator can place only the pods its own controllers create; set spec.nodeName to one of the simulated nodes",
                ),
            )
            .await?;
            Ok(resync)
        }
    }
}

async fn run(pod: &Pod, node: &str, sim: &Sim) -> Result<Action> {
    let resync = Action::requeue(sim.options.resync);
    let uid = pod.uid().unwrap_or_default();
    let host_ip = lock(&sim.ledger)
        .room(node)
        .map(|r| r.address.clone())
        .unwrap_or_else(|| crate::nodes::address(node));
    let since = lock(&sim.since).get(&uid).copied();
    let completes = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .is_some_and(|p| p != "Always");
    match stage(pod) {
        Stage::New | Stage::Unscheduled(_) => {
            write(sim, pod, accepted_status(pod, &host_ip)).await?;
            lock(&sim.since).insert(uid.clone(), Instant::now());
            Ok(Action::requeue(startup(
                sim.options.startup_delay,
                sim.options.startup_jitter,
                &uid,
            )))
        }
        Stage::Accepted => {
            let took = since.map(|s| s.elapsed()).unwrap_or_else(|| {
                pod.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(status::elapsed)
                    .unwrap_or_default()
            });
            let needs = startup(sim.options.startup_delay, sim.options.startup_jitter, &uid);
            if took < needs {
                return Ok(Action::requeue(needs - took));
            }
            write(sim, pod, running_status(pod, &host_ip)).await?;
            lock(&sim.since).insert(uid, Instant::now());
            Ok(if completes {
                Action::requeue(sim.options.completion_delay)
            } else {
                resync
            })
        }
        Stage::Running if completes => {
            let ran = since.map(|s| s.elapsed()).unwrap_or_else(|| {
                ready_since(pod)
                    .as_ref()
                    .map(status::elapsed)
                    .unwrap_or_default()
            });
            let needs = sim.options.completion_delay;
            if ran < needs {
                return Ok(Action::requeue(needs - ran));
            }
            write(sim, pod, succeeded_status(pod, &host_ip)).await?;
            lock(&sim.since).remove(&uid);
            Ok(resync)
        }
        Stage::Running | Stage::Finished => Ok(resync),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u-1"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "side", "image": "envoy"}]},
            "status": status,
        }))
        .unwrap_or_default()
    }

    #[test]
    fn each_status_the_kubelet_writes_reads_back_as_its_stage() {
        let new = pod(json!({"phase": "Pending"}));
        assert_eq!(stage(&new), Stage::New);
        let unscheduled = pod(unscheduled_status(
            &new,
            "Unschedulable",
            "0/3 nodes are available: 3 Insufficient cpu.",
        ));
        assert_eq!(
            stage(&unscheduled),
            Stage::Unscheduled("0/3 nodes are available: 3 Insufficient cpu.".into())
        );
        let accepted = pod(accepted_status(&unscheduled, "127.0.0.3"));
        assert_eq!(stage(&accepted), Stage::Accepted);
        assert!(!is_ready(&accepted));
        let running = pod(running_status(&accepted, "127.0.0.3"));
        assert_eq!(stage(&running), Stage::Running);
        assert!(is_ready(&running));
        let ip = running
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        assert!(ip.starts_with("10.3."), "{ip}");
        let done = pod(succeeded_status(&running, "127.0.0.3"));
        assert_eq!(stage(&done), Stage::Finished);
        assert!(is_finished(&done) && !is_ready(&done));
        // Every status keeps the fields the ones before set (an apply drops what it leaves out).
        for status in [&running, &done] {
            let s = status.status.clone().unwrap_or_default();
            assert!(s.start_time.is_some() && s.host_ip.is_some() && s.pod_ip.is_some());
        }
    }

    #[test]
    fn accepted_pods_say_which_containers_are_not_ready() {
        let accepted = pod(accepted_status(&pod(json!({})), "127.0.0.3"));
        let ready = accepted
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.message);
        assert_eq!(
            ready.as_deref(),
            Some("containers with unready status: [app side]")
        );
    }

    #[test]
    fn startup_jitter_is_within_bounds_and_fixed_per_pod() {
        let delay = Duration::from_secs(2);
        for uid in ["a", "b", "c", "d"] {
            let d = startup(delay, 0.5, uid);
            assert!(d >= delay && d <= Duration::from_secs(3), "{d:?}");
            assert_eq!(d, startup(delay, 0.5, uid));
        }
        assert_eq!(startup(delay, 0.0, "a"), delay);
    }
}
