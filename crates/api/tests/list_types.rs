//! Kubernetes list semantics in the generated CRDs: every `conditions` list is a list-map keyed
//! by `type`, the keyed lists carry the markers server-side apply needs to merge them entry by
//! entry, and every marker is one kube-apiserver accepts (its CRD validation rules for
//! `x-kubernetes-list-type`, `requireAtomicSetType` and `requireMapListKeysMapSetValidation`).
//!
//! Walks the schemas the types generate, so a new CRD or field cannot forget them.

use std::collections::BTreeSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

/// A list with `set` or `map` semantics: where it is, its type and its map keys.
type Marked = (String, String, Vec<String>);

/// A [`Marked`] list as the expectations table spells it.
type Expected = (String, &'static str, Vec<&'static str>);

const SCALARS: [&str; 4] = ["string", "integer", "number", "boolean"];

fn item_schema(node: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &node.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => Some(item),
        _ => None,
    }
}

/// Checks the list markers of one node as kube-apiserver's CRD validation does, and the
/// Flotilla rule that `conditions` lists are maps keyed by `type`. Records every non-atomic
/// list in `marked`.
fn check_lists(
    node: &JSONSchemaProps,
    path: &str,
    violations: &mut Vec<String>,
    marked: &mut Vec<Marked>,
) {
    let keys = node.x_kubernetes_list_map_keys.clone().unwrap_or_default();
    match node.x_kubernetes_list_type.as_deref() {
        None | Some("atomic") => {
            if !keys.is_empty() {
                violations.push(format!("{path}: list-map keys without list-type map"));
            }
        }
        Some(list_type) => {
            if node.type_.as_deref() != Some("array") {
                violations.push(format!("{path}: list-type {list_type} on a non-array"));
            }
            marked.push((path.to_owned(), list_type.to_owned(), keys.clone()));
            match (list_type, item_schema(node)) {
                (_, None) => {
                    violations.push(format!("{path}: {list_type} list without one item schema"))
                }
                (_, Some(item)) if item.nullable == Some(true) => violations.push(format!(
                    "{path}: {list_type} list items must not be nullable"
                )),
                ("set", Some(item)) => {
                    if !SCALARS.contains(&item.type_.as_deref().unwrap_or_default()) {
                        violations.push(format!(
                            "{path}: set list items must be scalars, not {:?}",
                            item.type_
                        ));
                    }
                    if !keys.is_empty() {
                        violations.push(format!("{path}: list-map keys on a set"));
                    }
                }
                ("map", Some(item)) => check_map_keys(item, &keys, path, violations),
                (other, _) => violations.push(format!("{path}: unknown list-type {other:?}")),
            }
        }
    }

    for (name, child) in node.properties.iter().flatten() {
        let child_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        if name == "conditions" && child.type_.as_deref() == Some("array") {
            let is_map = child.x_kubernetes_list_type.as_deref() == Some("map");
            let by_type = child.x_kubernetes_list_map_keys.as_deref() == Some(&["type".to_owned()]);
            if !(is_map && by_type) {
                violations.push(format!(
                    "{child_path}: conditions must be x-kubernetes-list-type: map with \
                     x-kubernetes-list-map-keys: [type], got {:?} {:?}",
                    child.x_kubernetes_list_type, child.x_kubernetes_list_map_keys
                ));
            }
        }
        check_lists(child, &child_path, violations, marked);
    }
    if let Some(item) = item_schema(node) {
        check_lists(item, &format!("{path}[]"), violations, marked);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &node.additional_properties {
        check_lists(value, &format!("{path}{{}}"), violations, marked);
    }
    for list in [&node.all_of, &node.any_of, &node.one_of] {
        for child in list.iter().flatten() {
            check_lists(child, path, violations, marked);
        }
    }
}

/// kube-apiserver's rules for the keys of a list-map.
fn check_map_keys(
    item: &JSONSchemaProps,
    keys: &[String],
    path: &str,
    violations: &mut Vec<String>,
) {
    if keys.is_empty() {
        violations.push(format!("{path}: list-type map without list-map keys"));
    }
    if item.type_.as_deref() != Some("object") {
        violations.push(format!("{path}: list-map items must be objects"));
    }
    if item.x_kubernetes_map_type.as_deref() == Some("atomic") {
        violations.push(format!("{path}: list-map items must not be atomic"));
    }
    let required: BTreeSet<&str> = item.required.iter().flatten().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    for key in keys {
        if !seen.insert(key) {
            violations.push(format!("{path}: duplicate list-map key {key}"));
        }
        let Some(property) = item.properties.as_ref().and_then(|p| p.get(key)) else {
            violations.push(format!(
                "{path}: list-map key {key} is not a property of the items"
            ));
            continue;
        };
        if !SCALARS.contains(&property.type_.as_deref().unwrap_or_default()) {
            violations.push(format!(
                "{path}: list-map key {key} must be a scalar, not {:?}",
                property.type_
            ));
        }
        if !required.contains(key.as_str()) && property.default.is_none() {
            violations.push(format!(
                "{path}: list-map key {key} must be required or have a default"
            ));
        }
        if property.nullable == Some(true) {
            violations.push(format!("{path}: list-map key {key} must not be nullable"));
        }
    }
}

fn schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("every Flotilla CRD has a schema")
}

fn walk(crd: &CustomResourceDefinition) -> (Vec<String>, Vec<Marked>) {
    let (mut violations, mut marked) = (Vec::new(), Vec::new());
    check_lists(schema(crd), "", &mut violations, &mut marked);
    (violations, marked)
}

#[test]
fn every_list_marker_is_one_kube_apiserver_accepts_and_conditions_are_maps_by_type() {
    let mut conditions = 0;
    for crd in flotilla_api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let (violations, marked) = walk(&crd);
        assert!(violations.is_empty(), "{name}:\n{}", violations.join("\n"));
        conditions += marked
            .iter()
            .filter(|(path, _, _)| path.ends_with(".conditions"))
            .count();
    }
    // Cluster, ResourceBinding, ClusterResourceBinding, Work, Machine, MachineSet,
    // MachineHealthCheck and GitRepo each have status.conditions.
    assert_eq!(conditions, 8, "every status with conditions was walked");
}

/// The lists that merge entry by entry, per CRD. Every other list is atomic: ordered lists whose
/// order is their meaning (affinity terms, override rules, resource selectors, manifests),
/// lists without a required or defaulted scalar key (tolerations, spread constraints, requiredBy
/// whose namespace is optional, manifestStatuses keyed by an object), and lists one writer
/// always replaces whole (resource models, machine addresses, which repeat a type).
#[test]
fn keyed_lists_carry_their_markers() {
    let affinity = |at: &str| {
        vec![
            (format!("{at}.clusterNames"), "set", vec![]),
            (format!("{at}.exclude"), "set", vec![]),
        ]
    };
    let placement = |at: &str| {
        let mut lists = affinity(&format!("{at}.clusterAffinity"));
        lists.extend(affinity(&format!("{at}.clusterAffinities[]")));
        lists.extend(affinity(&format!(
            "{at}.clusterAffinities[].overflowAffinities[]"
        )));
        lists.extend(affinity(&format!(
            "{at}.replicaScheduling.weightPreference.staticWeightList[].targetCluster"
        )));
        lists
    };
    let conditions = || ("status.conditions".to_owned(), "map", vec!["type"]);
    let binding = || {
        let mut lists = vec![
            ("spec.clusters".to_owned(), "map", vec!["name"]),
            (
                "spec.gracefulEvictionTasks".to_owned(),
                "map",
                vec!["fromCluster"],
            ),
            (
                "spec.gracefulEvictionTasks[].clustersBeforeFailover".to_owned(),
                "set",
                vec![],
            ),
            ("spec.requiredBy[].clusters".to_owned(), "map", vec!["name"]),
            (
                "spec.suspension.dispatchingOnClusters.clusterNames".to_owned(),
                "set",
                vec![],
            ),
            conditions(),
            (
                "status.aggregatedStatus".to_owned(),
                "map",
                vec!["clusterName"],
            ),
        ];
        lists.extend(placement("spec.placement"));
        lists
    };
    let propagation = || {
        let mut lists = vec![
            ("spec.dependentOverrides".to_owned(), "set", vec![]),
            (
                "spec.suspension.dispatchingOnClusters.clusterNames".to_owned(),
                "set",
                vec![],
            ),
        ];
        lists.extend(placement("spec.placement"));
        lists
    };
    let overrides = || {
        let mut lists = affinity("spec.overrideRules[].targetCluster");
        lists.extend(affinity("spec.targetCluster"));
        lists
    };
    let table: Vec<(&str, Vec<Expected>)> = vec![
        (
            "clusters.cluster.flotilla.io",
            vec![
                ("spec.taints".to_owned(), "map", vec!["key", "effect"]),
                ("spec.zones".to_owned(), "set", vec![]),
                (
                    "status.apiEnablements".to_owned(),
                    "map",
                    vec!["groupVersion"],
                ),
                conditions(),
            ],
        ),
        ("propagationpolicies.policy.flotilla.io", propagation()),
        (
            "clusterpropagationpolicies.policy.flotilla.io",
            propagation(),
        ),
        ("overridepolicies.policy.flotilla.io", overrides()),
        ("clusteroverridepolicies.policy.flotilla.io", overrides()),
        ("resourcebindings.work.flotilla.io", binding()),
        ("clusterresourcebindings.work.flotilla.io", binding()),
        ("works.work.flotilla.io", vec![conditions()]),
        ("machines.provisioning.flotilla.io", vec![conditions()]),
        ("machinesets.provisioning.flotilla.io", vec![conditions()]),
        (
            "machinehealthchecks.provisioning.flotilla.io",
            vec![("status.targets".to_owned(), "set", vec![]), conditions()],
        ),
        ("gitrepos.gitops.flotilla.io", {
            let mut lists = placement("spec.placement");
            lists.push(conditions());
            lists.push((
                "status.propagation.clusters".to_owned(),
                "map",
                vec!["name"],
            ));
            lists
        }),
    ];
    let crds = flotilla_api::crds::all();
    assert_eq!(table.len(), crds.len(), "the table covers every CRD");
    for (name, expected) in table {
        let crd = crds
            .iter()
            .find(|crd| crd.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no CRD {name}"));
        let (_, marked) = walk(crd);
        let got: BTreeSet<Marked> = marked.into_iter().collect();
        let want: BTreeSet<Marked> = expected
            .into_iter()
            .map(|(path, list_type, keys)| {
                (
                    path,
                    list_type.to_owned(),
                    keys.into_iter().map(str::to_owned).collect(),
                )
            })
            .collect();
        let missing: Vec<_> = want.difference(&got).collect();
        let unexpected: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && unexpected.is_empty(),
            "{name}: missing markers {missing:#?}\nmarkers not in this table {unexpected:#?}"
        );
    }
}

#[test]
fn the_list_check_rejects_what_kube_apiserver_rejects() {
    let bad: JSONSchemaProps = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {
            "status": {
                "type": "object",
                "properties": {
                    "conditions": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"type": {"type": "string"}}},
                    },
                },
            },
            "optionalKey": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            "defaultedKey": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port"],
                "items": {
                    "type": "object",
                    "properties": {"port": {"type": "integer", "default": 80}},
                },
            },
            "objectKey": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["id"],
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "object"}},
                },
            },
            "setOfObjects": {
                "type": "array",
                "x-kubernetes-list-type": "set",
                "items": {"type": "object"},
            },
            "nullableItems": {
                "type": "array",
                "x-kubernetes-list-type": "set",
                "items": {"type": "string", "nullable": true},
            },
        },
    }))
    .expect("schema");
    let (mut violations, mut marked) = (Vec::new(), Vec::new());
    check_lists(&bad, "", &mut violations, &mut marked);
    for expected in [
        "status.conditions: conditions must be x-kubernetes-list-type: map",
        "optionalKey: list-map key name must be required or have a default",
        "objectKey: list-map key id must be a scalar",
        "setOfObjects: set list items must be scalars",
        "nullableItems: set list items must not be nullable",
    ] {
        assert!(
            violations.iter().any(|v| v.starts_with(expected)),
            "expected {expected:?} in {violations:#?}"
        );
    }
    assert_eq!(violations.len(), 5, "defaultedKey is fine: {violations:#?}");
}
