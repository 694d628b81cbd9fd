//! The checked-in CRDs in config/crd are exactly what the Rust types generate, and every one
//! is a structural apiextensions.k8s.io/v1 schema that kube-apiserver would accept.

use std::{fs, path::PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/crd")
}

#[test]
fn config_crd_matches_the_types() {
    let dir = crd_dir();
    let rendered = flotilla::crds::rendered().expect("render CRDs");
    for (name, content) in &rendered {
        let on_disk = fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("config/crd/{name} is missing ({e}); run `make crds`"));
        assert!(
            on_disk == *content,
            "config/crd/{name} is stale; run `make crds`"
        );
    }
    let mut files: Vec<String> = fs::read_dir(&dir)
        .expect("read config/crd")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut expected: Vec<String> = rendered.into_iter().map(|(name, _)| name).collect();
    expected.sort();
    assert_eq!(
        files, expected,
        "config/crd has files no type generates; run `make crds`"
    );
}

/// Checks one schema node against the structural-schema rules and returns every violation.
fn check_structural(
    node: &JSONSchemaProps,
    path: &str,
    in_logic: bool,
    violations: &mut Vec<String>,
) {
    let exempt = node.x_kubernetes_preserve_unknown_fields == Some(true)
        || node.x_kubernetes_int_or_string == Some(true);
    if in_logic {
        // Inside anyOf/allOf/oneOf/not only value validations are allowed.
        if node.type_.is_some()
            || node.description.is_some()
            || node.default.is_some()
            || node.nullable.is_some()
            || node.additional_properties.is_some()
        {
            violations.push(format!(
                "{path}: type/description/default/nullable inside a logical junctor"
            ));
        }
    } else if node.type_.as_deref().unwrap_or_default().is_empty() && !exempt {
        violations.push(format!("{path}: no type"));
    }
    if node.ref_path.is_some() {
        violations.push(format!("{path}: $ref is not allowed"));
    }
    if node.properties.is_some() && !in_logic && node.type_.as_deref() != Some("object") {
        violations.push(format!(
            "{path}: has properties but type is {:?}",
            node.type_
        ));
    }
    if node.properties.is_some() && node.additional_properties.is_some() {
        violations.push(format!(
            "{path}: properties and additionalProperties together"
        ));
    }
    if node.items.is_some() && !in_logic && node.type_.as_deref() != Some("array") {
        violations.push(format!("{path}: has items but type is {:?}", node.type_));
    }
    if node.type_.as_deref() == Some("array") && node.items.is_none() {
        violations.push(format!("{path}: array without items"));
    }
    for (name, child) in node.properties.iter().flatten() {
        check_structural(child, &format!("{path}.{name}"), in_logic, violations);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(child)) = &node.additional_properties {
        check_structural(child, &format!("{path}[*]"), in_logic, violations);
    }
    match &node.items {
        Some(JSONSchemaPropsOrArray::Schema(child)) => {
            check_structural(child, &format!("{path}[]"), in_logic, violations)
        }
        Some(JSONSchemaPropsOrArray::Schemas(children)) => {
            violations.push(format!("{path}: tuple items are not structural"));
            for child in children {
                check_structural(child, &format!("{path}[]"), in_logic, violations);
            }
        }
        None => {}
    }
    for (junctor, list) in [
        ("anyOf", &node.any_of),
        ("allOf", &node.all_of),
        ("oneOf", &node.one_of),
    ] {
        for (i, child) in list.iter().flatten().enumerate() {
            check_structural(child, &format!("{path}.{junctor}[{i}]"), true, violations);
        }
    }
}

#[test]
fn every_crd_is_structural_and_well_formed() {
    let rendered = flotilla::crds::rendered().expect("render CRDs");
    assert_eq!(rendered.len(), 12, "every Flotilla kind has a CRD");
    for (name, _) in rendered {
        let text = fs::read_to_string(crd_dir().join(&name)).expect("read CRD file");
        let crd: CustomResourceDefinition =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: not a CRD: {e}"));
        let spec = &crd.spec;
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{}.{}", spec.names.plural, spec.group).as_str()),
            "{name}: metadata.name must be <plural>.<group>"
        );
        assert!(
            spec.group.ends_with(".flotilla.io"),
            "{name}: group {}",
            spec.group
        );
        assert!(
            spec.names
                .categories
                .iter()
                .flatten()
                .any(|c| c == "flotilla"),
            "{name}: kubectl get flotilla must list it"
        );
        assert!(
            spec.names.short_names.iter().flatten().next().is_some(),
            "{name}: short name"
        );
        assert_eq!(spec.versions.len(), 1);
        let version = &spec.versions[0];
        assert!(
            version.served && version.storage,
            "{name}: served storage version"
        );
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .unwrap_or_else(|| panic!("{name}: no schema"));
        let mut violations = Vec::new();
        check_structural(schema, "<root>", false, &mut violations);
        assert!(
            violations.is_empty(),
            "{name} is not structural:\n{}",
            violations.join("\n")
        );
        let has_status = schema
            .properties
            .as_ref()
            .is_some_and(|p| p.contains_key("status"));
        let status_subresource = version
            .subresources
            .as_ref()
            .is_some_and(|s| s.status.is_some());
        assert_eq!(
            has_status, status_subresource,
            "{name}: status subresource iff status field"
        );
        for column in version.additional_printer_columns.iter().flatten() {
            assert!(
                column.json_path.starts_with('.'),
                "{name}: column {}",
                column.name
            );
        }
    }
}

#[test]
fn structural_check_rejects_untyped_and_mistyped_nodes() {
    let bad: JSONSchemaProps = serde_json::from_value(serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "mistyped": {"type": "string", "properties": {"a": {"type": "string"}}},
            "junctor": {"type": "string", "anyOf": [{"type": "string"}]},
            "fine": {"x-kubernetes-preserve-unknown-fields": true},
        },
    }))
    .expect("schema");
    let mut violations = Vec::new();
    check_structural(&bad, "<root>", false, &mut violations);
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("<root>.untyped: no type"))
    );
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("<root>.mistyped: has properties"))
    );
    assert!(
        violations
            .iter()
            .any(|v| v.starts_with("<root>.junctor.anyOf[0]"))
    );
}
