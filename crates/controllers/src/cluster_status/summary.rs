//! Pure summaries of what a member serves and holds: API enablements from discovery data, node
//! counts, and resource totals (allocatable, allocated, allocating) from Nodes and Pods. Plain
//! functions over plain data; never does IO and never decides readiness.

use std::collections::BTreeSet;

use flotilla_api::cluster::{ApiEnablement, ApiResource, NodeSummary, ResourceSummary};
use k8s_openapi::{
    api::core::v1::{Node, Pod},
    apimachinery::pkg::apis::meta::v1::APIResource,
};

use flotilla_api::quantity::{QuantityError, Totals};

/// The resource name under which pod counts are reported.
pub const PODS: &str = "pods";

/// What discovery returned for one group-version: its resources, or why they could not be
/// listed.
#[derive(Clone, Debug)]
pub struct GroupVersionResources {
    /// The group-version, such as `apps/v1` or `v1`.
    pub group_version: String,
    /// The resources served, or the error message when the list failed.
    pub resources: Result<Vec<APIResource>, String>,
}

/// How complete the collected API enablements are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Every group-version was listed.
    Complete,
    /// Some group-versions (named, sorted) could not be listed.
    Partial(Vec<String>),
    /// Nothing could be listed.
    Empty,
}

/// Builds `status.apiEnablements`: one entry per group-version that was listed, sorted by
/// group-version, each with its resources sorted by name. Subresources (names with a `/`) are
/// skipped and duplicates removed. `discovery_failed` says whether the list of groups itself
/// failed, which makes the result at best Partial.
pub fn api_enablements(
    lists: &[GroupVersionResources],
    discovery_failed: bool,
) -> (Vec<ApiEnablement>, Completeness) {
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut enablements: Vec<ApiEnablement> = Vec::new();
    for list in lists {
        match &list.resources {
            Ok(resources) => {
                let unique: BTreeSet<(&str, &str)> = resources
                    .iter()
                    .filter(|r| !r.name.contains('/'))
                    .map(|r| (r.name.as_str(), r.kind.as_str()))
                    .collect();
                enablements.push(ApiEnablement {
                    group_version: list.group_version.clone(),
                    resources: unique
                        .into_iter()
                        .map(|(name, kind)| ApiResource {
                            name: name.to_owned(),
                            kind: kind.to_owned(),
                        })
                        .collect(),
                });
            }
            Err(_) => {
                failed.insert(list.group_version.clone());
            }
        }
    }
    enablements.sort_by(|a, b| a.group_version.cmp(&b.group_version));
    enablements.dedup_by(|a, b| a.group_version == b.group_version);
    let completeness = if enablements.is_empty() {
        Completeness::Empty
    } else if !failed.is_empty() || discovery_failed {
        Completeness::Partial(failed.into_iter().collect())
    } else {
        Completeness::Complete
    };
    (enablements, completeness)
}

/// Counts all nodes and the nodes whose `Ready` condition is True.
pub fn node_summary(nodes: &[Node]) -> NodeSummary {
    let ready = nodes.iter().filter(|node| node_is_ready(node)).count();
    NodeSummary {
        total_num: i32::try_from(nodes.len()).unwrap_or(i32::MAX),
        ready_num: i32::try_from(ready).unwrap_or(i32::MAX),
    }
}

fn node_is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// Whether a pod holds resources on its node: bound to a node and neither Succeeded nor Failed.
pub fn is_allocated(pod: &Pod) -> bool {
    bound_node(pod).is_some() && !is_terminated(pod)
}

/// Whether a pod is waiting for a node: not bound, and Pending (or with no phase yet).
pub fn is_allocating(pod: &Pod) -> bool {
    bound_node(pod).is_none()
        && matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            None | Some("Pending")
        )
}

fn bound_node(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The resources a pod requests, as the kube-scheduler counts them: the larger of the regular
/// containers plus restartable (sidecar) init containers, and the peak of the init sequence;
/// plus pod overhead. Resources named in pod-level `spec.resources.requests` take that value
/// instead. Malformed quantities are skipped and returned.
pub fn pod_requests(pod: &Pod) -> (Totals, Vec<QuantityError>) {
    let mut skipped = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return (Totals::default(), skipped);
    };
    let requests_of = |resources: &Option<k8s_openapi::api::core::v1::ResourceRequirements>,
                       skipped: &mut Vec<QuantityError>| {
        let mut totals = Totals::default();
        if let Some(requests) = resources.as_ref().and_then(|r| r.requests.as_ref()) {
            skipped.extend(totals.add_list(requests));
        }
        totals
    };

    let mut total = Totals::default();
    for container in &spec.containers {
        let requests = requests_of(&container.resources, &mut skipped);
        for (resource, millis) in &requests.0 {
            total.add(resource, *millis);
        }
    }
    let mut sidecars = Totals::default();
    let mut init_peak = Totals::default();
    for container in spec.init_containers.iter().flatten() {
        let requests = requests_of(&container.resources, &mut skipped);
        if container.restart_policy.as_deref() == Some("Always") {
            for (resource, millis) in &requests.0 {
                sidecars.add(resource, *millis);
            }
            init_peak.max_with(&sidecars);
        } else {
            let mut running = sidecars.clone();
            for (resource, millis) in &requests.0 {
                running.add(resource, *millis);
            }
            init_peak.max_with(&running);
        }
    }
    for (resource, millis) in &sidecars.0 {
        total.add(resource, *millis);
    }
    total.max_with(&init_peak);

    let pod_level = requests_of(&spec.resources, &mut skipped);
    for (resource, millis) in pod_level.0 {
        total.0.insert(resource, millis);
    }
    if let Some(overhead) = &spec.overhead {
        skipped.extend(total.add_list(overhead));
    }
    (total, skipped)
}

/// Builds `status.resourceSummary`: the sum of every node's `status.allocatable`; the requests
/// of allocated pods (see [`is_allocated`]) and of pending unscheduled pods (see
/// [`is_allocating`]), each with a `pods` count. Malformed quantities are skipped and returned so
/// the caller can report them.
pub fn resource_summary(nodes: &[Node], pods: &[Pod]) -> (ResourceSummary, Vec<QuantityError>) {
    let mut skipped = Vec::new();
    let mut allocatable = Totals::default();
    for node in nodes {
        if let Some(list) = node.status.as_ref().and_then(|s| s.allocatable.as_ref()) {
            skipped.extend(allocatable.add_list(list));
        }
    }
    let mut allocated = Totals::default();
    let mut allocating = Totals::default();
    allocated.add(PODS, 0);
    allocating.add(PODS, 0);
    for pod in pods {
        let target = if is_allocated(pod) {
            &mut allocated
        } else if is_allocating(pod) {
            &mut allocating
        } else {
            continue;
        };
        let (requests, bad) = pod_requests(pod);
        skipped.extend(bad);
        for (resource, millis) in &requests.0 {
            target.add(resource, *millis);
        }
        target.add(PODS, 1000);
    }
    let summary = ResourceSummary {
        allocatable: allocatable.to_quantities(),
        allocating: allocating.to_quantities(),
        allocated: allocated.to_quantities(),
        allocatable_modelings: Vec::new(),
    };
    (summary, skipped)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::{
        api::core::v1::{
            Container, NodeCondition, NodeStatus, PodSpec, PodStatus, ResourceRequirements,
        },
        apimachinery::pkg::api::resource::Quantity,
    };

    use super::*;

    fn list(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect()
    }

    fn resource(name: &str, kind: &str) -> APIResource {
        APIResource {
            name: name.to_owned(),
            kind: kind.to_owned(),
            ..Default::default()
        }
    }

    fn gv(group_version: &str, resources: Result<Vec<APIResource>, &str>) -> GroupVersionResources {
        GroupVersionResources {
            group_version: group_version.to_owned(),
            resources: resources.map_err(str::to_owned),
        }
    }

    fn node(ready: Option<&str>, allocatable: &[(&str, &str)]) -> Node {
        Node {
            status: Some(NodeStatus {
                allocatable: Some(list(allocatable)),
                conditions: ready.map(|status| {
                    vec![NodeCondition {
                        type_: "Ready".to_owned(),
                        status: status.to_owned(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container(requests: &[(&str, &str)], restart_policy: Option<&str>) -> Container {
        Container {
            name: "c".to_owned(),
            restart_policy: restart_policy.map(str::to_owned),
            resources: Some(ResourceRequirements {
                requests: Some(list(requests)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(node: Option<&str>, phase: Option<&str>, containers: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                node_name: node.map(str::to_owned),
                containers,
                ..Default::default()
            }),
            status: phase.map(|p| PodStatus {
                phase: Some(p.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn api_enablements_are_sorted_deduplicated_and_skip_subresources() {
        let lists = vec![
            gv(
                "v1",
                Ok(vec![
                    resource("pods", "Pod"),
                    resource("pods/status", "Pod"),
                    resource("configmaps", "ConfigMap"),
                    resource("pods", "Pod"),
                ]),
            ),
            gv(
                "apps/v1",
                Ok(vec![
                    resource("deployments/scale", "Scale"),
                    resource("deployments", "Deployment"),
                ]),
            ),
        ];
        let (enablements, completeness) = api_enablements(&lists, false);
        assert_eq!(completeness, Completeness::Complete);
        let got: Vec<(&str, Vec<(&str, &str)>)> = enablements
            .iter()
            .map(|e| {
                (
                    e.group_version.as_str(),
                    e.resources
                        .iter()
                        .map(|r| (r.name.as_str(), r.kind.as_str()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("apps/v1", vec![("deployments", "Deployment")]),
                ("v1", vec![("configmaps", "ConfigMap"), ("pods", "Pod")]),
            ]
        );
    }

    #[test]
    fn api_enablement_completeness() {
        let ok = || Ok(vec![resource("pods", "Pod")]);
        let table: Vec<(Vec<GroupVersionResources>, bool, Completeness)> = vec![
            (vec![gv("v1", ok())], false, Completeness::Complete),
            (
                vec![gv("v1", ok()), gv("b/v1", Err("503")), gv("a/v1", Err("x"))],
                false,
                Completeness::Partial(vec!["a/v1".to_owned(), "b/v1".to_owned()]),
            ),
            (vec![gv("v1", ok())], true, Completeness::Partial(vec![])),
            (vec![gv("v1", Err("down"))], false, Completeness::Empty),
            (vec![], true, Completeness::Empty),
            (vec![], false, Completeness::Empty),
        ];
        for (i, (lists, discovery_failed, want)) in table.into_iter().enumerate() {
            assert_eq!(
                api_enablements(&lists, discovery_failed).1,
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn node_summary_counts_ready_nodes() {
        let table: Vec<(Vec<Node>, (i32, i32))> = vec![
            (vec![], (0, 0)),
            (vec![node(Some("True"), &[])], (1, 1)),
            (
                vec![
                    node(Some("True"), &[]),
                    node(Some("False"), &[]),
                    node(Some("Unknown"), &[]),
                    node(None, &[]),
                ],
                (4, 1),
            ),
        ];
        for (nodes, (total, ready)) in table {
            let summary = node_summary(&nodes);
            assert_eq!((summary.total_num, summary.ready_num), (total, ready));
        }
    }

    /// name, how to change the pod, wanted requests in millis.
    type Case = (
        &'static str,
        Box<dyn Fn(&mut PodSpec)>,
        &'static [(&'static str, i128)],
    );

    #[test]
    fn pod_requests_follow_the_scheduler_rules() {
        let mut with_init = pod(
            Some("n1"),
            Some("Running"),
            vec![
                container(&[("cpu", "500m")], None),
                container(&[("cpu", "250m")], None),
            ],
        );
        let table: Vec<Case> = vec![
            ("containers add up", Box::new(|_| {}), &[("cpu", 750)]),
            (
                "a big init container dominates",
                Box::new(|spec| {
                    spec.init_containers = Some(vec![container(&[("cpu", "2")], None)]);
                }),
                &[("cpu", 2000)],
            ),
            (
                "sidecars add to the containers",
                Box::new(|spec| {
                    spec.init_containers = Some(vec![container(
                        &[("cpu", "100m"), ("memory", "64Mi")],
                        Some("Always"),
                    )]);
                }),
                &[("cpu", 850), ("memory", 64 * 1024 * 1024 * 1000)],
            ),
            (
                "init after a sidecar runs beside it",
                Box::new(|spec| {
                    spec.init_containers = Some(vec![
                        container(&[("cpu", "300m")], Some("Always")),
                        container(&[("cpu", "800m")], None),
                    ]);
                }),
                &[("cpu", 1100)],
            ),
            (
                "overhead is added",
                Box::new(|spec| spec.overhead = Some(list(&[("cpu", "50m")]))),
                &[("cpu", 800)],
            ),
            (
                "pod-level requests win",
                Box::new(|spec| {
                    spec.resources = Some(ResourceRequirements {
                        requests: Some(list(&[("cpu", "3")])),
                        ..Default::default()
                    });
                }),
                &[("cpu", 3000)],
            ),
        ];
        for (name, edit, want) in table {
            let mut p = with_init.clone();
            if let Some(spec) = p.spec.as_mut() {
                edit(spec);
            }
            let (totals, skipped) = pod_requests(&p);
            assert!(skipped.is_empty(), "{name}");
            let want: BTreeMap<String, i128> =
                want.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
            assert_eq!(totals.0, want, "{name}");
        }
        with_init.spec = None;
        assert_eq!(pod_requests(&with_init).0, Totals::default());
    }

    #[test]
    fn resource_summary_splits_allocated_and_allocating() {
        let nodes = vec![
            node(
                Some("True"),
                &[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")],
            ),
            node(
                Some("False"),
                &[("cpu", "3500m"), ("memory", "1Gi"), ("pods", "110")],
            ),
        ];
        let cpu = |q: &str| vec![container(&[("cpu", q)], None)];
        let pods = vec![
            pod(Some("n1"), Some("Running"), cpu("1")),
            pod(Some("n2"), Some("Pending"), cpu("250m")),
            pod(Some("n1"), Some("Succeeded"), cpu("8")),
            pod(Some("n1"), Some("Failed"), cpu("8")),
            pod(None, Some("Pending"), cpu("2")),
            pod(None, None, cpu("500m")),
            pod(None, Some("Failed"), cpu("16")),
        ];
        let (summary, skipped) = resource_summary(&nodes, &pods);
        assert!(skipped.is_empty());
        assert_eq!(
            summary.allocatable,
            list(&[("cpu", "7500m"), ("memory", "9663676416"), ("pods", "220")])
        );
        assert_eq!(summary.allocated, list(&[("cpu", "1250m"), ("pods", "2")]));
        assert_eq!(summary.allocating, list(&[("cpu", "2500m"), ("pods", "2")]));

        let (empty, _) = resource_summary(&[], &[]);
        assert!(empty.allocatable.is_empty());
        assert_eq!(empty.allocated, list(&[("pods", "0")]));
    }

    #[test]
    fn a_malformed_quantity_is_skipped_and_reported() {
        let nodes = vec![
            node(Some("True"), &[("cpu", "4")]),
            node(Some("True"), &[("cpu", "four")]),
        ];
        let (summary, skipped) = resource_summary(&nodes, &[]);
        assert_eq!(summary.allocatable, list(&[("cpu", "4")]));
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].to_string().contains("four"));
    }
}
