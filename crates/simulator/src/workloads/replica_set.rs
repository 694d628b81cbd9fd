//! The ReplicaSet controller: keeps `spec.replicas` active pods (surplus deleted in kube's
//! order), collects ReplicaSets whose Deployment is gone, and writes `replicas`,
//! `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas` and `observedGeneration`.

use std::{collections::HashSet, sync::Arc};

use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
use kube::{Api, ResourceExt, runtime::controller::Action};
use serde_json::json;
use tracing::warn;

use super::{
    BURST, Counts, create_pods, delete_pods, free_names, is_active, name_of, next,
    pod_from_template, rank_for_deletion, template_problem,
};
use crate::{
    error::{Error, Result},
    names,
    state::Sim,
    status,
};

/// One ReplicaSet.
pub(crate) async fn reconcile(rs: Arc<ReplicaSet>, sim: Arc<Sim>) -> Result<Action> {
    if rs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = rs.spec.as_ref() else {
        return Ok(next(&sim, false, None));
    };
    let Some(template) = spec.template.as_ref() else {
        warn!(replica_set = %name_of(&*rs), "skipped: the ReplicaSet has no pod template");
        return Ok(next(&sim, false, None));
    };
    if let Some(problem) = template_problem(&spec.selector, template) {
        warn!(replica_set = %name_of(&*rs), %problem, "skipped");
        return Ok(next(&sim, false, None));
    }
    let desired = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let uid = rs.uid().unwrap_or_default();
    let pods = sim.pods_of(&uid);
    let mut active: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| is_active(&sim, p))
        .cloned()
        .collect();
    let mut more = false;
    if active.len() < desired {
        let wanted = (desired - active.len()).min(BURST);
        more = desired - active.len() > BURST;
        let taken: HashSet<String> = pods.iter().map(|p| p.name_any()).collect();
        let name = rs.name_any();
        let new: Vec<Pod> = free_names(wanted, &taken, |slot| names::slot_pod(&name, &uid, slot))
            .into_iter()
            .map(|pod| pod_from_template(&*rs, template, pod, [], []))
            .collect();
        if create_pods(&sim, new).await? > 0 {
            more = true;
        }
    } else if active.len() > desired {
        rank_for_deletion(&mut active);
        let surplus: Vec<Arc<Pod>> = active.drain(..active.len() - desired).collect();
        delete_pods(&sim, &surplus).await?;
    }

    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let counts = Counts::of(&active, min_ready);
    let api: Api<ReplicaSet> =
        Api::namespaced(sim.client.clone(), &rs.namespace().unwrap_or_default());
    status::write(
        &api,
        &*rs,
        json!({
            "replicas": counts.pods,
            "fullyLabeledReplicas": counts.pods,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.available,
            "observedGeneration": rs.metadata.generation,
        }),
    )
    .await
    .map_err(|source| Error::WriteStatus {
        kind: "ReplicaSet",
        name: name_of(&*rs),
        source,
    })?;
    Ok(next(&sim, more, counts.next))
}
