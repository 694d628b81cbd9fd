//! JSON-schema helpers for fields whose shape the API does not constrain (raw manifests, raw
//! status, arbitrary JSON values), so the generated CRDs stay structural.
//!
//! Owns only schema functions referenced from `#[schemars(schema_with = ..)]`.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An arbitrary embedded Kubernetes object (a manifest or a raw status): an object whose fields
/// are kept as they are.
pub fn raw_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Any JSON value (string, number, object, list …), kept as it is.
pub fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A value that is either an integer or a string (such as `25%`).
pub fn int_or_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
    })
}
