//! The Job controller: keeps up to `parallelism` pods running until `completions` of them
//! Succeeded (a work queue without `completions`: until one did and none runs), each completion
//! index once with `completionMode: Indexed`; the simulated kubelet makes the pods Succeed after
//! [`crate::Options::completion_delay`]. Status: `startTime`, `active`, `ready`, `succeeded`,
//! `failed`, `terminating`, `completedIndexes`, and, once done, `completionTime` with the
//! `SuccessCriteriaMet` and `Complete` conditions; a suspended Job has no pods and
//! `Suspended=True`.

use std::{
    collections::{BTreeSet, HashSet},
    sync::Arc,
};

use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
use kube::{Api, ResourceExt, runtime::controller::Action};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{
    BURST, create_pods, delete_pods, free_names, is_active, is_terminating, name_of, next,
    pod_from_template, rank_for_deletion, template_problem,
};
use crate::{
    error::{Error, Result},
    kubelet::is_ready,
    names,
    state::Sim,
    status,
};

/// The annotation (and label) holding an Indexed Job pod's completion index.
pub(crate) const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.annotations().get(COMPLETION_INDEX)?.parse().ok()
}

/// Completed indexes as kube writes them: `0-2,4,6-7`.
pub(crate) fn ranges(indexes: &BTreeSet<i32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

fn done(conditions: Option<&Value>) -> bool {
    conditions.and_then(Value::as_array).is_some_and(|l| {
        l.iter().any(|c| {
            matches!(c["type"].as_str(), Some("Complete" | "Failed")) && c["status"] == "True"
        })
    })
}

/// One Job.
pub(crate) async fn reconcile(job: Arc<Job>, sim: Arc<Sim>) -> Result<Action> {
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let previous = job
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let conditions = previous.get("conditions");
    if done(conditions) {
        return Ok(next(&sim, false, None));
    }
    let Some(spec) = job.spec.as_ref() else {
        return Ok(next(&sim, false, None));
    };
    if let Some(selector) = spec.selector.as_ref()
        && let Some(problem) = template_problem(selector, &spec.template)
    {
        warn!(job = %name_of(&*job), %problem, "skipped");
        return Ok(next(&sim, false, None));
    }
    let name = job.name_any();
    let uid = job.uid().unwrap_or_default();
    let parallelism = usize::try_from(spec.parallelism.unwrap_or(1).max(0)).unwrap_or(0);
    let completions = spec
        .completions
        .map(|c| usize::try_from(c.max(0)).unwrap_or(0));
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let suspended = spec.suspend.unwrap_or(false);

    let pods = sim.pods_of(&uid);
    let succeeded: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| phase(p) == Some("Succeeded"))
        .collect();
    let failed = pods.iter().filter(|p| phase(p) == Some("Failed")).count();
    let mut active: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| is_active(&sim, p))
        .cloned()
        .collect();
    let terminating = pods.iter().filter(|p| is_terminating(&sim, p)).count();
    let succeeded_indexes: BTreeSet<i32> = succeeded.iter().filter_map(|p| index_of(p)).collect();

    let complete = match (indexed, completions) {
        (true, Some(c)) => succeeded_indexes.len() >= c,
        (false, Some(c)) => succeeded.len() >= c,
        (_, None) => !succeeded.is_empty() && active.is_empty(),
    };
    let taken: HashSet<String> = pods.iter().map(|p| p.name_any()).collect();
    let mut create: Vec<Pod> = Vec::new();
    let mut doomed: Vec<Arc<Pod>> = Vec::new();
    if suspended || complete {
        doomed.append(&mut active);
    } else if indexed {
        let count = completions.unwrap_or(0);
        let running: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        let room = parallelism.saturating_sub(active.len()).min(BURST);
        let wanted = (0..i32::try_from(count).unwrap_or(i32::MAX))
            .filter(|i| !succeeded_indexes.contains(i) && !running.contains(i))
            .take(room);
        for index in wanted {
            let pod = free_names(1, &taken, |slot| {
                names::indexed_pod(&name, &uid, index, slot)
            })
            .pop()
            .unwrap_or_else(|| names::indexed_pod(&name, &uid, index, 0));
            let i = index.to_string();
            create.push(pod_from_template(
                &*job,
                &spec.template,
                pod,
                [(COMPLETION_INDEX.to_owned(), i.clone())],
                [(COMPLETION_INDEX.to_owned(), i)],
            ));
        }
    } else {
        let want = match completions {
            Some(c) => parallelism.min(c.saturating_sub(succeeded.len())),
            None if succeeded.is_empty() => parallelism,
            None => active.len().min(parallelism),
        };
        if active.len() < want {
            let wanted = (want - active.len()).min(BURST);
            create.extend(
                free_names(wanted, &taken, |slot| names::slot_pod(&name, &uid, slot))
                    .into_iter()
                    .map(|pod| pod_from_template(&*job, &spec.template, pod, [], [])),
            );
        } else if active.len() > want {
            rank_for_deletion(&mut active);
            doomed.extend(active.drain(..active.len() - want));
        }
    }
    let created = create_pods(&sim, create).await?;
    delete_pods(&sim, &doomed).await?;

    let now = status::now();
    let stamp = serde_json::to_value(&now).unwrap_or(Value::Null);
    let active_now = if suspended || complete {
        0
    } else {
        active.len()
    };
    let ready = if suspended || complete {
        0
    } else {
        active.iter().filter(|p| is_ready(p)).count()
    };
    let mut status = json!({
        "active": active_now,
        "ready": ready,
        "succeeded": succeeded.len(),
        "failed": failed,
        "terminating": terminating,
        "uncountedTerminatedPods": {},
    });
    let start = previous.get("startTime").filter(|t| !t.is_null()).cloned();
    if !suspended {
        status["startTime"] = start.unwrap_or_else(|| stamp.clone());
    }
    if indexed {
        status["completedIndexes"] = json!(ranges(&succeeded_indexes));
    }
    let mut list: Vec<Value> = Vec::new();
    let suspended_before = conditions
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|c| c["type"] == "Suspended"));
    if suspended {
        list.push(status::condition(
            conditions,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            &now,
            false,
        ));
    } else if suspended_before {
        list.push(status::condition(
            conditions,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            &now,
            false,
        ));
    }
    if complete && !suspended {
        let message = "Reached expected number of succeeded pods";
        list.push(status::condition(
            conditions,
            "SuccessCriteriaMet",
            "True",
            "CompletionsReached",
            message,
            &now,
            false,
        ));
        list.push(status::condition(
            conditions,
            "Complete",
            "True",
            "CompletionsReached",
            message,
            &now,
            false,
        ));
        status["completionTime"] = previous
            .get("completionTime")
            .filter(|t| !t.is_null())
            .cloned()
            .unwrap_or(stamp);
        info!(job = %name_of(&*job), succeeded = succeeded.len(), "job complete");
    }
    if !list.is_empty() {
        for c in &mut list {
            if let Some(o) = c.as_object_mut() {
                let probed = o.get("lastTransitionTime").cloned().unwrap_or(Value::Null);
                o.insert("lastProbeTime".into(), probed);
            }
        }
        status["conditions"] = Value::Array(list);
    }
    let api: Api<Job> = Api::namespaced(sim.client.clone(), &job.namespace().unwrap_or_default());
    status::write(&api, &*job, status)
        .await
        .map_err(|source| Error::WriteStatus {
            kind: "Job",
            name: name_of(&*job),
            source,
        })?;
    Ok(next(&sim, created > 0, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_written_as_ranges() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(ranges(&set(&[])), "");
        assert_eq!(ranges(&set(&[0, 1, 2, 4, 6, 7])), "0-2,4,6-7");
        assert_eq!(ranges(&set(&[3])), "3");
    }
}
