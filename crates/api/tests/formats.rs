//! Every `format` in the generated CRD schemas is one kube-apiserver knows, so installing the
//! CRDs prints no "unrecognized format" warning (schemars writes `uint32` for a `u32`).

use serde_json::Value;

/// The formats kube-apiserver's OpenAPI validation recognises (k8s.io/kube-openapi strfmt).
const KNOWN: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "datetime",
    "duration",
    "password",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "bsonobjectid",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
];

fn formats(value: &Value, path: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(format)) = map.get("format") {
                found.push((path.to_owned(), format.clone()));
            }
            for (key, child) in map {
                formats(child, &format!("{path}.{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                formats(child, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_format_is_one_kube_apiserver_knows() {
    let mut unknown = Vec::new();
    for crd in flotilla_api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let value = serde_json::to_value(&crd.spec).expect("CRDs serialise");
        let mut found = Vec::new();
        formats(&value, &name, &mut found);
        unknown.extend(
            found
                .into_iter()
                .filter(|(_, f)| !KNOWN.contains(&f.as_str())),
        );
    }
    assert!(
        unknown.is_empty(),
        "formats kube-apiserver does not know: {unknown:?}"
    );
}
