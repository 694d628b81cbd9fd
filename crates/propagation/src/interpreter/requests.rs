//! kube's effective resource requests of one pod, from a pod spec: what the scheduler of a
//! member cluster reserves for one replica. Owns only the arithmetic; it never decides whether a
//! cluster has room (the scheduler's estimator does).
//!
//! The rule is kube's `PodRequests` (`k8s.io/component-helpers/resource`), sidecars included:
//!
//! - a container requests its `resources.requests`, and for every resource with a limit but no
//!   request, the limit (the API server defaults requests from limits);
//! - app containers add up, and so do restartable init containers (`restartPolicy: Always`,
//!   sidecars), which keep running beside the app containers;
//! - each ordinary init container runs alone beside the sidecars started before it, so it needs
//!   its own request plus theirs; the pod needs the largest of those peaks or the steady state
//!   (app containers plus all sidecars), per resource;
//! - pod-level `spec.resources` (requests, else limits) replaces the container total for the
//!   resources it names (kube supports `cpu`, `memory` and `hugepages-*` there);
//! - `spec.overhead` (RuntimeClass overhead) is added last.
//!
//! Quantities that do not parse are skipped, so one malformed container cannot hide the rest.

use std::collections::BTreeMap;

use flotilla_api::quantity::{Totals, parse_millis_str};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::{array_at, at, str_at};

/// The effective requests of one pod with spec `pod_spec`, as a resource list.
pub fn pod_requests(pod_spec: &Value) -> BTreeMap<String, Quantity> {
    pod_totals(pod_spec).to_quantities()
}

/// The effective requests of one pod in millis.
pub(crate) fn pod_totals(pod_spec: &Value) -> Totals {
    let mut total = Totals::default();
    for container in array_at(pod_spec, &["containers"]) {
        add(&mut total, &container_requests(container));
    }

    let mut sidecars = Totals::default();
    let mut init_peak = Totals::default();
    for container in array_at(pod_spec, &["initContainers"]) {
        let requests = container_requests(container);
        let peak = if str_at(container, &["restartPolicy"]) == Some("Always") {
            add(&mut sidecars, &requests);
            sidecars.clone()
        } else {
            let mut peak = requests;
            add(&mut peak, &sidecars);
            peak
        };
        init_peak.max_with(&peak);
    }
    add(&mut total, &sidecars);
    total.max_with(&init_peak);

    let pod_level = resource_list_with_limits(at(pod_spec, &["resources"]));
    for (resource, millis) in pod_level.0 {
        if is_pod_level_resource(&resource) {
            total.0.insert(resource, millis);
        }
    }

    add(&mut total, &resource_list(at(pod_spec, &["overhead"])));
    total
}

/// Whether kube honours `resource` in pod-level `spec.resources`.
fn is_pod_level_resource(resource: &str) -> bool {
    resource == "cpu" || resource == "memory" || resource.starts_with("hugepages-")
}

/// A container's requests, with limits standing in for missing requests.
fn container_requests(container: &Value) -> Totals {
    resource_list_with_limits(at(container, &["resources"]))
}

/// `requests` of a `ResourceRequirements`, plus `limits` for resources without a request.
fn resource_list_with_limits(resources: Option<&Value>) -> Totals {
    let Some(resources) = resources else {
        return Totals::default();
    };
    let mut totals = resource_list(resources.get("requests"));
    for (resource, millis) in resource_list(resources.get("limits")).0 {
        totals.0.entry(resource).or_insert(millis);
    }
    totals
}

/// A resource list (`{cpu: 250m, memory: 1Gi}`) in millis; bad quantities are skipped.
fn resource_list(list: Option<&Value>) -> Totals {
    let mut totals = Totals::default();
    let Some(list) = list.and_then(Value::as_object) else {
        return totals;
    };
    for (resource, quantity) in list {
        let text = match quantity {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => continue,
        };
        if let Ok(millis) = parse_millis_str(&text) {
            totals.add(resource, millis);
        }
    }
    totals
}

/// Adds every resource of `other` to `totals`.
fn add(totals: &mut Totals, other: &Totals) {
    for (resource, millis) in &other.0 {
        totals.add(resource, *millis);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(pod_spec: Value, expect: &[(&str, &str)]) {
        let expect: BTreeMap<String, Quantity> = expect
            .iter()
            .map(|(resource, quantity)| ((*resource).to_owned(), Quantity((*quantity).to_owned())))
            .collect();
        assert_eq!(pod_requests(&pod_spec), expect, "{pod_spec}");
    }

    fn container(requests: Value) -> Value {
        json!({"name": "c", "resources": {"requests": requests}})
    }

    #[test]
    fn app_containers_add_up() {
        check(
            json!({"containers": [
                container(json!({"cpu": "250m", "memory": "64Mi"})),
                container(json!({"cpu": "750m", "memory": "64Mi"})),
            ]}),
            &[("cpu", "1"), ("memory", "134217728")],
        );
    }

    #[test]
    fn pod_without_requests_requests_nothing() {
        check(json!({"containers": [{"name": "c"}]}), &[]);
        check(json!({}), &[]);
    }

    #[test]
    fn limits_stand_in_for_missing_requests() {
        check(
            json!({"containers": [{"name": "c", "resources": {
                "requests": {"cpu": "100m"},
                "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": 1},
            }}]}),
            &[
                ("cpu", "100m"),
                ("memory", "1073741824"),
                ("nvidia.com/gpu", "1"),
            ],
        );
    }

    #[test]
    fn largest_init_container_wins_over_smaller_app_total() {
        check(
            json!({
                "initContainers": [
                    container(json!({"cpu": "2", "memory": "64Mi"})),
                    container(json!({"cpu": "500m", "memory": "1Gi"})),
                ],
                "containers": [container(json!({"cpu": "1", "memory": "128Mi"}))],
            }),
            &[("cpu", "2"), ("memory", "1073741824")],
        );
    }

    #[test]
    fn sidecars_add_to_app_containers_and_to_later_init_containers() {
        // Sidecar 1 cpu; init after it needs 2 + 1 = 3; steady state 1 + 1 = 2. Peak 3.
        check(
            json!({
                "initContainers": [
                    {"name": "mesh", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "1"}}},
                    container(json!({"cpu": "2"})),
                ],
                "containers": [container(json!({"cpu": "1"}))],
            }),
            &[("cpu", "3")],
        );
        // Init before the sidecar runs alone: max(2, 1 + 1) = 2.
        check(
            json!({
                "initContainers": [
                    container(json!({"cpu": "2"})),
                    {"name": "mesh", "restartPolicy": "Always",
                     "resources": {"requests": {"cpu": "1"}}},
                ],
                "containers": [container(json!({"cpu": "1500m"}))],
            }),
            &[("cpu", "2500m")],
        );
    }

    #[test]
    fn overhead_is_added_after_the_init_maximum() {
        check(
            json!({
                "initContainers": [container(json!({"cpu": "2"}))],
                "containers": [container(json!({"cpu": "1"}))],
                "overhead": {"cpu": "250m", "memory": "120Mi"},
            }),
            &[("cpu", "2250m"), ("memory", "125829120")],
        );
    }

    #[test]
    fn pod_level_resources_replace_container_totals_for_cpu_and_memory() {
        check(
            json!({
                "resources": {"requests": {"cpu": "4"}, "limits": {"memory": "2Gi"}},
                "containers": [container(json!({"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}))],
                "overhead": {"cpu": "100m"},
            }),
            &[
                ("cpu", "4100m"),
                ("ephemeral-storage", "1073741824"),
                ("memory", "2147483648"),
            ],
        );
    }

    #[test]
    fn malformed_quantities_are_skipped() {
        check(
            json!({"containers": [
                container(json!({"cpu": "lots", "memory": "1Ki"})),
                container(json!({"cpu": "1"})),
            ]}),
            &[("cpu", "1"), ("memory", "1024")],
        );
    }
}
