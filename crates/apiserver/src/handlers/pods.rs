//! The Pod subresources that need no kubelet, as kube-apiserver serves them: `binding` (what a
//! scheduler posts: the pod gets its node and `PodScheduled=True`), `eviction` (a delete that
//! honours the PodDisruptionBudget covering the pod), and `log`, `exec`, `attach` and
//! `portforward`, which answer a clear error because no container runs behind a simulated pod.

use axum::response::Response;
use serde_json::{Value, json};

use crate::app::{ResourceRequest, json_response};
use crate::codec;
use crate::errors::{Cause, Error, Result};
use crate::handlers::crud::{self, DeleteOptions};
use crate::registry::ResourceInfo;
use crate::selectors::LabelSelector;

const PODS: &str = "/pods";
const PDBS: &str = "policy/poddisruptionbudgets";

/// The subresources of pods this module serves, and the method each takes.
pub(crate) fn serves(info: &ResourceInfo, sub: &str) -> bool {
    info.group.is_empty()
        && info.plural == "pods"
        && matches!(
            sub,
            "binding" | "eviction" | "log" | "exec" | "attach" | "portforward"
        )
}

fn created() -> Response {
    json_response(
        201,
        serde_json::to_vec(
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "code": 201}),
        )
        .unwrap_or_default(),
    )
}

fn body_name_matches(rr: &ResourceRequest, body: &Value, kind: &str) -> Result<()> {
    match body.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if Some(n) != rr.name.as_deref() => Err(Error::bad_request(format!(
            "name in URL does not match name in {kind} object"
        ))),
        _ => Ok(()),
    }
}

fn now() -> String {
    crud::now()
}

/// `POST pods/<name>/binding`.
pub(crate) async fn binding(
    rr: &ResourceRequest,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let binding = codec::decode_object(content_type, body)?;
    body_name_matches(rr, &binding, "Binding")?;
    let name = rr.name.clone().unwrap_or_default();
    let ns = rr.namespace.clone().unwrap_or_default();
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "",
                "Binding",
                &name,
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "target.name".into(),
                }],
            )
        })?
        .to_string();
    let info = rr.info.clone();
    rr.cluster
        .write(|txn| {
            let pod = txn
                .state()
                .get(PODS, &ns, &name)
                .ok_or_else(|| Error::not_found("", "pods", &name))?;
            let conflict = |why: String| Error::conflict("", "pods/binding", &name, &why);
            if pod
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
            {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            if let Some(bound) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(conflict(format!(
                    "pod {name} is already assigned to node {bound:?}"
                )));
            }
            let mut pod = (*pod).clone();
            pod["spec"]["nodeName"] = json!(node);
            if let Some(Value::Object(extra)) = binding.pointer("/metadata/annotations") {
                let meta = &mut pod["metadata"];
                if !meta["annotations"].is_object() {
                    meta["annotations"] = json!({});
                }
                for (k, v) in extra {
                    meta["annotations"][k] = v.clone();
                }
            }
            if !pod["status"].is_object() {
                pod["status"] = json!({});
            }
            let status = &mut pod["status"];
            if !status["conditions"].is_array() {
                status["conditions"] = json!([]);
            }
            if let Value::Array(conditions) = &mut status["conditions"] {
                conditions.retain(|c| c["type"] != "PodScheduled");
                conditions.push(json!({"type": "PodScheduled", "status": "True",
                    "lastProbeTime": null, "lastTransitionTime": now()}));
            }
            crud::store_or_finish(txn, &info, &ns, &name, pod);
            Ok(())
        })
        .await?;
    Ok(created())
}

fn condition_true(obj: &Value, ty: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// kube's 429 for an eviction a budget stops (retry after 10 s while the budget is processed).
fn too_many_requests(cause: String, retry: bool) -> Error {
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry {
        details["retryAfterSeconds"] = json!(10);
    }
    Error::Api {
        code: 429,
        reason: "TooManyRequests",
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
        details: Some(Box::new(details)),
    }
}

/// `POST pods/<name>/eviction`: kube's eviction rules. A pod that is not running (or already
/// being deleted) is deleted at once; otherwise the one PodDisruptionBudget selecting it must
/// have been processed and allow a disruption (spent here), or the pod must be unhealthy while
/// the budget is met; more than one budget is kube's 500.
pub(crate) async fn eviction(
    rr: &ResourceRequest,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let eviction = codec::decode_object(content_type, body)?;
    body_name_matches(rr, &eviction, "Eviction")?;
    let name = rr.name.clone().unwrap_or_default();
    let ns = rr.namespace.clone().unwrap_or_default();
    let options = match eviction.get("deleteOptions") {
        Some(o) if o.is_object() => crud::delete_options_of(rr, o)?,
        _ => DeleteOptions::default(),
    };
    let info = rr.info.clone();
    let pdb_info = rr.cluster.read(|s| s.registry.by_storage_key(PDBS));
    rr.cluster
        .write(|txn| {
            let pod = txn
                .state()
                .get(PODS, &ns, &name)
                .ok_or_else(|| Error::not_found("", "pods", &name))?;
            let phase = pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Pending");
            let deleting = pod
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            if deleting || matches!(phase, "Succeeded" | "Failed" | "Pending") {
                crud::delete_in(txn, &info, &ns, &name, &options)?;
                return Ok(());
            }
            let budgets: Vec<_> = txn
                .state()
                .objects(PDBS)
                .map(|objs| {
                    objs.range((ns.clone(), String::new())..)
                        .take_while(|((n, _), _)| *n == ns)
                        .filter(|(_, pdb)| {
                            pdb.pointer("/spec/selector")
                                .is_some_and(|s| LabelSelector::of_object(s).matches(&pod))
                        })
                        .map(|(_, pdb)| pdb.clone())
                        .collect()
                })
                .unwrap_or_default();
            let pdb = match budgets.as_slice() {
                [] => {
                    crud::delete_in(txn, &info, &ns, &name, &options)?;
                    return Ok(());
                }
                [one] => one.clone(),
                _ => {
                    return Err(Error::internal(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    ));
                }
            };
            let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let (current, desired) = (
                int(&pdb, "/status/currentHealthy"),
                int(&pdb, "/status/desiredHealthy"),
            );
            if !condition_true(&pod, "Ready") {
                let always = pdb.pointer("/spec/unhealthyPodEvictionPolicy")
                    == Some(&json!("AlwaysAllow"));
                if always || (desired > 0 && current >= desired) {
                    crud::delete_in(txn, &info, &ns, &name, &options)?;
                    return Ok(());
                }
            }
            if int(&pdb, "/status/observedGeneration") < int(&pdb, "/metadata/generation") {
                return Err(too_many_requests(
                    format!(
                        "The disruption budget {pdb_name} is still being processed by the server."
                    ),
                    true,
                ));
            }
            let allowed = int(&pdb, "/status/disruptionsAllowed");
            if allowed < 0 {
                return Err(Error::api(
                    403,
                    "Forbidden",
                    "pdb disruptions allowed is negative",
                ));
            }
            if allowed == 0 {
                return Err(too_many_requests(
                    format!(
                        "The disruption budget {pdb_name} does not allow evicting pods currently"
                    ),
                    false,
                ));
            }
            let mut spent = (*pdb).clone();
            spent["status"]["disruptionsAllowed"] = json!(allowed - 1);
            if !spent["status"]["disruptedPods"].is_object() {
                spent["status"]["disruptedPods"] = json!({});
            }
            spent["status"]["disruptedPods"][&name] = json!(now());
            if let Some(pdb_info) = &pdb_info {
                let recorded = crate::handlers::admission::record_update_by(
                    pdb_info,
                    "kube-apiserver",
                    "status",
                    &pdb_name,
                    Some(&pdb),
                    &spent,
                )?;
                crud::store_or_finish(txn, pdb_info, &ns, &pdb_name, recorded);
            }
            crud::delete_in(txn, &info, &ns, &name, &options)?;
            Ok(())
        })
        .await?;
    Ok(created())
}

/// `pods/<name>/log|exec|attach|portforward`: there is no kubelet, so no container to reach.
pub(crate) async fn no_kubelet(rr: &ResourceRequest, sub: &str) -> Result<Response> {
    let name = rr.name.clone().unwrap_or_default();
    let ns = rr.namespace.clone().unwrap_or_default();
    rr.cluster
        .read_committed(|s| s.get(PODS, &ns, &name))
        .await?
        .ok_or_else(|| Error::not_found("", "pods", &name))?;
    let what = match sub {
        "log" => "logs to read",
        "portforward" => "ports to forward to",
        _ => "containers to attach or exec into",
    };
    Err(Error::bad_request(format!(
        "pod {name:?} has no {what}: this cluster's API server runs no kubelet (its pods are simulated)"
    )))
}
