//! Kubernetes object semantics as pure functions over `serde_json::Value`, shared by the
//! embedded API server: the schema model ([`schema`]) with the built-in kinds' schemas
//! ([`builtin`]), strategic merge patch ([`strategic`]), server-side apply with managed fields
//! ([`managed`]), field validation and CRD structural schemas ([`validate`]), and the defaults and
//! validation kube-apiserver applies to the built-in kinds ([`defaults`]).
//!
//! Nothing here does I/O; every function is table-tested in its module.

pub mod builtin;
pub mod defaults;
pub mod managed;
pub mod schema;
pub mod strategic;
pub mod validate;

pub use schema::{Definitions, ListKind, Node, Schema, SchemaError, Type};

/// One field error, as kube-apiserver reports it in a 422 Status's `details.causes`:
/// `reason` such as `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
/// `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`, `FieldValueTypeInvalid`;
/// `field` a path such as `spec.template.spec.containers[0].image`; `message` such as
/// `Required value` or `Invalid value: -1: must be greater than or equal to 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: reason.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}
