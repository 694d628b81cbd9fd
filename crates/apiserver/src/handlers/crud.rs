//! The CRUD verbs with kube-apiserver semantics: create (generateName, uid, timestamps,
//! generation, namespace checks), get, list (selectors, pagination), update (optimistic
//! concurrency, generation, status subresource), patch (JSON and merge), delete (finalizers,
//! preconditions, namespace termination, CRD removal) and deletecollection.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::app::{ResourceRequest, json_response};
use crate::codec;
use crate::errors::{Cause, Error, Result};
use crate::gc;
use crate::handlers::admission::{self, FieldProblems, FieldValidation, Warnings};
use crate::registry::{CRD_KEY, NAMESPACE_KEY, ResourceInfo};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::storage::Txn;

/// Current time as a Kubernetes timestamp.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Render a stored object for the requested version.
pub(crate) fn render(info: &ResourceInfo, obj: &Value) -> Vec<u8> {
    let api_version = info.api_version();
    if info.schema.as_ref().is_some_and(|s| s.has_defaults())
        && admission::defaults_missing_on_read(info, obj)
    {
        // A CRD's defaults apply on read too, as kube-apiserver applies them when decoding
        // from storage.
        let mut o = obj.clone();
        admission::default_on_read(info, &mut o);
        if let Some(m) = o.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(api_version));
        }
        return serde_json::to_vec(&o).unwrap_or_default();
    }
    if obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
        serde_json::to_vec(obj).unwrap_or_default()
    } else {
        let mut o = obj.clone();
        if let Some(m) = o.as_object_mut() {
            m.insert("apiVersion".into(), Value::String(api_version));
        }
        serde_json::to_vec(&o).unwrap_or_default()
    }
}

/// A built-in kind's list item as kube-apiserver writes it: without `apiVersion` and `kind`
/// (the list says both).
fn render_untyped(obj: &Value, out: &mut Vec<u8>) {
    let Some(map) = obj.as_object() else {
        out.extend(serde_json::to_vec(obj).unwrap_or_default());
        return;
    };
    out.push(b'{');
    let mut first = true;
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend(serde_json::to_vec(k).unwrap_or_default());
        out.push(b':');
        out.extend(serde_json::to_vec(v).unwrap_or_default());
    }
    out.push(b'}');
}

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(o) = obj else {
        unreachable!("replaced by an object above")
    };
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    let Value::Object(m) = m else {
        unreachable!("replaced by an object above")
    };
    m
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn dry_run(rr: &ResourceRequest) -> bool {
    rr.query.get("dryRun").is_some_and(|v| v == "All")
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

fn check_type(info: &ResourceInfo, obj: &mut Value) -> Result<()> {
    let api_version = info.api_version();
    let o = obj
        .as_object_mut()
        .ok_or_else(|| Error::bad_request("body must be an object"))?;
    if let Some(kind) = o.get("kind").and_then(Value::as_str)
        && !kind.is_empty()
        && kind != info.kind
    {
        return Err(Error::bad_request(format!(
            "the kind in the request body ({kind}) does not match the resource ({})",
            info.kind
        )));
    }
    if let Some(av) = o.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
        && av != api_version
    {
        // Other served versions of the same group are stored as-is (no conversion).
        let same_group = match av.split_once('/') {
            Some((g, _)) => g == info.group,
            None => info.group.is_empty(),
        };
        if !same_group {
            return Err(Error::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({api_version})"
            )));
        }
    }
    o.insert("apiVersion".into(), json!(api_version));
    o.insert("kind".into(), json!(info.kind));
    Ok(())
}

fn check_namespace(rr: &ResourceRequest, obj: &mut Value) -> Result<String> {
    if !rr.info.namespaced {
        meta_mut(obj).remove("namespace");
        return Ok(String::new());
    }
    let url_ns = rr.namespace.clone().ok_or_else(|| {
        Error::bad_request(format!(
            "{} is namespaced: use a namespaces/<ns>/ path",
            rr.info.plural
        ))
    })?;
    let m = meta_mut(obj);
    match m.get("namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() && ns != url_ns => {
            return Err(Error::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    m.insert("namespace".into(), json!(url_ns));
    Ok(url_ns)
}

/// Why `name` is not a valid path segment (what kube-apiserver requires of RBAC object names,
/// such as `system:controller:foo`), or `None`.
fn path_segment_problem(name: &str) -> Option<&'static str> {
    match name {
        "." => Some("may not be '.'"),
        ".." => Some("may not be '..'"),
        _ if name.contains('/') => Some("may not contain '/'"),
        _ if name.contains('%') => Some("may not contain '%'"),
        _ => None,
    }
}

fn validate_name(info: &ResourceInfo, name: &str) -> Result<()> {
    let rule = if info.group == "rbac.authorization.k8s.io" {
        path_segment_problem(name)
    } else if info.plural == "namespaces" {
        (!is_dns_label(name)).then_some(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        )
    } else {
        (!is_dns_subdomain(name)).then_some(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        )
    };
    let Some(rule) = rule else {
        return Ok(());
    };
    Err(Error::invalid(
        &info.group,
        &info.kind,
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: \"{name}\": {rule}"),
            field: "metadata.name".into(),
        }],
    ))
}

fn is_qualified_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty() && is_dns_subdomain(prefix) && is_qualified_name_part(name)
        }
        None => is_qualified_name_part(key),
    }
}

fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_qualified_name_part(v)
}

/// Labels and annotations: types (400) and syntax (422), like kube-apiserver.
fn validate_metadata(info: &ResourceInfo, name: &str, obj: &Value) -> Result<()> {
    let Some(m) = meta(obj) else { return Ok(()) };
    let mut causes = Vec::new();
    for field in ["labels", "annotations"] {
        let Some(v) = m.get(field) else { continue };
        if v.is_null() {
            continue;
        }
        let map = v.as_object().ok_or_else(|| {
            Error::bad_request(format!("metadata.{field} must be a map of strings"))
        })?;
        let mut size = 0;
        for (k, val) in map {
            let val = val.as_str().ok_or_else(|| {
                Error::bad_request(format!("metadata.{field}[{k:?}] must be a string"))
            })?;
            size += k.len() + val.len();
            if !is_qualified_name(k) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters, with an optional DNS subdomain prefix and '/')"),
                    field: format!("metadata.{field}"),
                });
            }
            if field == "labels" && !is_label_value(val) {
                causes.push(Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"{val}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63 characters)"),
                    field: "metadata.labels".into(),
                });
            }
        }
        if field == "annotations" && size > 256 * 1024 {
            causes.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: "Too long: must have at most 262144 bytes".into(),
                field: "metadata.annotations".into(),
            });
        }
    }
    if let Some(f) = m.get("finalizers")
        && !f.is_null()
        && !f.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(Error::bad_request(
            "metadata.finalizers must be a list of strings",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(&info.group, &info.kind, name, causes))
    }
}

/// ConfigMaps and Secrets marked `immutable: true` keep their data.
fn check_immutable(info: &ResourceInfo, name: &str, old: &Value, new: &Value) -> Result<()> {
    if !info.group.is_empty() || !(info.plural == "configmaps" || info.plural == "secrets") {
        return Ok(());
    }
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let mut causes = Vec::new();
    for field in ["data", "binaryData", "immutable"] {
        if old.get(field) != new.get(field) {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: field is immutable when `immutable` is set".into(),
                field: field.into(),
            });
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(&info.group, &info.kind, name, causes))
    }
}

/// Namespace must exist and not be terminating.
fn require_namespace(txn: &Txn<'_>, namespace: &str) -> Result<()> {
    let ns = txn
        .state()
        .get(NAMESPACE_KEY, "", namespace)
        .ok_or_else(|| Error::not_found("", "namespaces", namespace))?;
    if meta_str(&ns, "deletionTimestamp").is_some() {
        return Err(Error::forbidden(format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        )));
    }
    Ok(())
}

/// Whether two objects differ outside metadata, status, apiVersion and kind: the change that
/// bumps `metadata.generation`. Compares in place, without copying either object.
fn generation_changes(old: &Value, new: &Value) -> bool {
    const IGNORED: [&str; 4] = ["metadata", "status", "apiVersion", "kind"];
    fn counted(m: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
        m.iter().filter(|(k, _)| !IGNORED.contains(&k.as_str()))
    }
    match (old.as_object(), new.as_object()) {
        (Some(a), Some(b)) => !counted(a).eq(counted(b)),
        _ => old != new,
    }
}

/// CRD strategy: validate and compute status (acceptedNames, conditions, storedVersions).
fn prepare_crd(txn: &Txn<'_>, obj: &mut Value, old: Option<&Value>) -> Result<()> {
    let name = meta_str(obj, "name").unwrap_or("").to_string();
    let mut causes = Vec::new();
    let mut cause = |field: &str, reason: &str, message: &str| {
        causes.push(Cause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        })
    };
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() {
        cause("spec.group", "FieldValueRequired", "Required value");
    }
    if plural.is_empty() {
        cause("spec.names.plural", "FieldValueRequired", "Required value");
    }
    if kind.is_empty() {
        cause("spec.names.kind", "FieldValueRequired", "Required value");
    }
    let scope = spec.get("scope").and_then(Value::as_str).unwrap_or("");
    if scope != "Namespaced" && scope != "Cluster" {
        cause(
            "spec.scope",
            "FieldValueNotSupported",
            "Unsupported value: supported values: \"Cluster\", \"Namespaced\"",
        );
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count()
        != 1
    {
        cause(
            "spec.versions",
            "FieldValueInvalid",
            "must have exactly one version marked as storage version",
        );
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        cause(
            "metadata.name",
            "FieldValueInvalid",
            &format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        );
    }
    // Every version needs a structural schema. Identical schemas are checked once, under the
    // path kube-apiserver reports them at (it folds them into `spec.validation`).
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| v.pointer("/schema/openAPIV3Schema"))
        .collect();
    for (i, s) in schemas.iter().enumerate() {
        if s.is_none() {
            cause(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "FieldValueRequired",
                "Required value",
            );
        }
    }
    let present: Vec<&Value> = schemas.iter().flatten().copied().collect();
    let shared = present.len() == schemas.len() && present.windows(2).all(|w| w[0] == w[1]);
    for (i, s) in schemas.iter().enumerate() {
        let Some(s) = s else { continue };
        let base = if shared {
            if i > 0 {
                break;
            }
            "spec.validation.openAPIV3Schema".to_string()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        let found = flotilla_schema::validate::structural_errors(s, &base);
        if found.is_empty()
            && let Err(e) = flotilla_schema::Schema::from_openapi(s)
        {
            // A schema the validator cannot read would serve its objects unchecked.
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: {}", e.message),
                field: format!("{base}.{}", e.path),
            });
        }
        for c in found {
            causes.push(Cause {
                reason: c.reason,
                message: c.message,
                field: c.field,
            });
        }
    }
    if !causes.is_empty() {
        return Err(Error::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &name,
            causes,
        ));
    }
    let conflict = txn
        .state()
        .registry
        .names_conflict(&name, group, plural, kind);
    // The names as defaulted on admission (singular, listKind).
    let accepted = spec.get("names").cloned().unwrap_or(json!({}));
    let storage: Vec<Value> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let old_cond = |t: &str| -> Option<Value> {
        old?.pointer("/status/conditions")?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
            .cloned()
    };
    let now = now();
    let cond = |t: &str, status: &str, reason: &str, message: &str| {
        let ltt = old_cond(t)
            .filter(|c| c.get("status").and_then(Value::as_str) == Some(status))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now));
        json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": ltt})
    };
    let conditions = if conflict {
        vec![
            cond(
                "NamesAccepted",
                "False",
                "NameConflict",
                "the plural or kind is already in use",
            ),
            cond(
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
            ),
        ]
    } else {
        vec![
            cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
            cond(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ]
    };
    if let Some(o) = obj.as_object_mut() {
        o.insert(
            "status".into(),
            json!({
                "acceptedNames": if conflict { json!({"plural": "", "kind": ""}) } else { accepted },
                "conditions": conditions,
                "storedVersions": storage,
            }),
        );
    }
    // kube-apiserver's controllers record their status write only when the status changed.
    if old.and_then(|o| o.get("status")) != obj.get("status") {
        record_crd_status_manager(obj);
    }
    Ok(())
}

/// The managed-fields entry kube-apiserver's CRD controllers leave when they write a CRD's
/// status (manager `kube-apiserver`, through the status subresource), first in the list.
fn record_crd_status_manager(obj: &mut Value) {
    let mut fields = serde_json::Map::new();
    if let Some(names) = obj
        .pointer("/status/acceptedNames")
        .and_then(Value::as_object)
    {
        let owned: serde_json::Map<String, Value> = names
            .keys()
            .map(|k| (format!("f:{k}"), json!({})))
            .collect();
        fields.insert("f:acceptedNames".into(), Value::Object(owned));
    }
    if let Some(conds) = obj.pointer("/status/conditions").and_then(Value::as_array) {
        let mut owned = serde_json::Map::new();
        for c in conds {
            let Some(t) = c.get("type") else { continue };
            let mut item = serde_json::Map::from_iter([(".".to_string(), json!({}))]);
            if let Some(keys) = c.as_object() {
                for k in keys.keys() {
                    item.insert(format!("f:{k}"), json!({}));
                }
            }
            owned.insert(format!("k:{}", json!({"type": t})), Value::Object(item));
        }
        fields.insert("f:conditions".into(), Value::Object(owned));
    }
    let entry = json!({
        "manager": "kube-apiserver",
        "operation": "Update",
        "apiVersion": "apiextensions.k8s.io/v1",
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": fields},
        "subresource": "status",
    });
    let m = meta_mut(obj);
    let entries = m.entry("managedFields").or_insert_with(|| json!([]));
    if let Some(list) = entries.as_array_mut() {
        list.retain(|e| {
            !(e.get("manager").and_then(Value::as_str) == Some("kube-apiserver")
                && e.get("subresource").and_then(Value::as_str) == Some("status"))
        });
        list.insert(0, entry);
    }
}

/// Store an object and keep the CRD registry in step.
fn put_object(
    txn: &mut Txn<'_>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    obj: Value,
) -> Arc<Value> {
    let stored = txn.put(&info.storage_key(), ns, name, obj);
    if info.storage_key() == CRD_KEY
        && stored
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            })
    {
        txn.registry_mut().register_crd(&stored);
    }
    stored
}

/// Remove an object for good, with the side effects of its kind.
fn remove_object(txn: &mut Txn<'_>, key: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
    let removed = txn.remove(key, ns, name)?;
    if key == CRD_KEY {
        if let Some(served) = txn.registry_mut().unregister_crd(name) {
            txn.remove_all(&served);
        }
    } else if let Some(crd) = crd_name_for_key(key) {
        maybe_finish_crd(txn, &crd);
    }
    if !ns.is_empty() {
        maybe_finish_namespace(txn, ns);
    }
    if key == crate::handlers::serviceaccounts::SERVICE_ACCOUNTS && name == "default" {
        crate::handlers::serviceaccounts::ensure_default(txn, ns);
    }
    Some(removed)
}

/// The CRD that would serve a storage key `<group>/<plural>`.
fn crd_name_for_key(key: &str) -> Option<String> {
    let (group, plural) = key.split_once('/')?;
    (!group.is_empty() && key != CRD_KEY).then(|| format!("{plural}.{group}"))
}

/// Storage key of a CRD object's resources.
fn crd_storage_key(crd: &Value) -> Option<String> {
    let group = crd.pointer("/spec/group")?.as_str()?;
    let plural = crd.pointer("/spec/names/plural")?.as_str()?;
    Some(format!("{group}/{plural}"))
}

fn crd_terminating(txn: &Txn<'_>, key: &str) -> bool {
    crd_name_for_key(key)
        .and_then(|n| txn.state().get(CRD_KEY, "", &n))
        .is_some_and(|c| meta_str(&c, "deletionTimestamp").is_some())
}

/// A terminating CRD goes away once its objects are gone and it has no finalizers.
fn maybe_finish_crd(txn: &mut Txn<'_>, crd_name: &str) {
    let Some(crd) = txn.state().get(CRD_KEY, "", crd_name) else {
        return;
    };
    if meta_str(&crd, "deletionTimestamp").is_none() || !finalizers(&crd).is_empty() {
        return;
    }
    let empty = crd_storage_key(&crd)
        .and_then(|k| txn.state().objects(&k).map(|o| o.is_empty()))
        .unwrap_or(true);
    if empty {
        remove_object(txn, CRD_KEY, "", crd_name);
    }
}

/// Mark an object deleted (finalizers pending) or remove it.
fn delete_or_mark(txn: &mut Txn<'_>, key: &str, ns: &str, name: &str) {
    let Some(o) = txn.state().get(key, ns, name) else {
        return;
    };
    if finalizers(&o).is_empty() {
        remove_object(txn, key, ns, name);
    } else if meta_str(&o, "deletionTimestamp").is_none() {
        let mut o = (*o).clone();
        mark_deleting(&mut o);
        txn.put(key, ns, name, o);
    }
}

/// Marks an object deleted, as kube's `BeforeDelete` does: a deletionTimestamp, no grace
/// period, and the next generation (for kinds that track one).
fn mark_deleting(obj: &mut Value) {
    let m = meta_mut(obj);
    m.insert("deletionTimestamp".into(), json!(now()));
    m.insert("deletionGracePeriodSeconds".into(), json!(0));
    if let Some(g) = m
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
    {
        m.insert("generation".into(), json!(g + 1));
    }
}

/// A terminating namespace goes away once it is empty and has no finalizers.
fn maybe_finish_namespace(txn: &mut Txn<'_>, ns: &str) {
    let Some(obj) = txn.state().get(NAMESPACE_KEY, "", ns) else {
        return;
    };
    if meta_str(&obj, "deletionTimestamp").is_some()
        && finalizers(&obj).is_empty()
        && txn.state().count_in_namespace(ns) == 0
    {
        txn.remove(NAMESPACE_KEY, "", ns);
    }
}

/// `POST` a collection.
pub(crate) async fn create(
    rr: &ResourceRequest,
    ct: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let mut w = Write::new(rr, "CreateOptions", ct, body)?;
    let obj = codec::decode_object(ct, body)?;
    create_object(rr, obj, &mut w).await
}

/// What one write carries besides the object: field validation, warnings for the response,
/// and whether server-side apply already recorded the managed fields.
pub(crate) struct Write {
    /// The verb's options kind (`CreateOptions`, `UpdateOptions`, `PatchOptions`) for errors.
    options: &'static str,
    validation: FieldValidation,
    problems: FieldProblems,
    warnings: Warnings,
    applied: bool,
}

impl Write {
    fn new(
        rr: &ResourceRequest,
        options: &'static str,
        ct: Option<&str>,
        body: &[u8],
    ) -> Result<Self> {
        Ok(Write {
            options,
            validation: FieldValidation::of(rr, options)?,
            problems: FieldProblems::of_body(ct, body),
            warnings: Warnings::default(),
            applied: false,
        })
    }

    fn respond(&mut self, resp: Response) -> Response {
        std::mem::take(&mut self.warnings).attach(resp)
    }
}

/// Whether two objects are the same but for their managed-field entries' times (a no-op write
/// keeps the stored object). Compares in place: no copy of either object.
fn same_but_times(a: &Value, b: &Value) -> bool {
    /// Equal but for the key `skip` (present, different or absent on either side).
    fn same_map(a: &Map<String, Value>, b: &Map<String, Value>, skip: &str) -> bool {
        let others = |m: &Map<String, Value>| m.len() - usize::from(m.contains_key(skip));
        others(a) == others(b)
            && a.iter()
                .all(|(k, v)| k == skip || b.get(k).is_some_and(|w| w == v))
    }
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if !same_map(a, b, "metadata") {
        return false;
    }
    let (Some(ma), Some(mb)) = (
        a.get("metadata").and_then(Value::as_object),
        b.get("metadata").and_then(Value::as_object),
    ) else {
        return a.get("metadata") == b.get("metadata");
    };
    if !same_map(ma, mb, "managedFields") {
        return false;
    }
    match (ma.get("managedFields"), mb.get("managedFields")) {
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(e, f)| match (e.as_object(), f.as_object()) {
                        (Some(e), Some(f)) => same_map(e, f, "time"),
                        _ => e == f,
                    })
        }
        (x, y) => x == y,
    }
}

async fn create_object(rr: &ResourceRequest, mut obj: Value, w: &mut Write) -> Result<Response> {
    let info = rr.info.clone();
    check_type(&info, &mut obj)?;
    let ns = check_namespace(rr, &mut obj)?;
    let m = meta_mut(&mut obj);
    let mut name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        match m.get("generateName").and_then(Value::as_str) {
            Some(g) if !g.is_empty() => name = format!("{g}{}", random_suffix()),
            _ => {
                return Err(Error::invalid(
                    &info.group,
                    &info.kind,
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
        }
    }
    validate_name(&info, &name)?;
    validate_metadata(&info, &name, &obj)?;
    let m = meta_mut(&mut obj);
    m.insert("name".into(), json!(name));
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now()));
    m.remove("resourceVersion");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("selfLink");
    if info.generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    if info.status
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    admission::admit(
        &info,
        &mut obj,
        &mut w.problems,
        w.validation,
        &mut w.warnings,
    )?;
    if !w.applied {
        obj = admission::record_update(rr, w.options, None, &obj)?;
    }
    admission::prepare_for_create(&info, &mut obj);
    if !info.custom {
        crate::protection::admit(&info.storage_key(), &mut obj);
    }
    if info.group == "certificates.k8s.io" && info.kind == "CertificateSigningRequest" {
        set_requester(&mut obj, &rr.user);
    }
    admission::validate(&info, &name, &obj, None, &mut w.warnings)?;
    let dry = dry_run(rr);
    let stored = rr
        .cluster
        .write(|txn| {
            if info.namespaced {
                require_namespace(txn, &ns)?;
            }
            if info.custom && crd_terminating(txn, &info.storage_key()) {
                return Err(Error::method_not_allowed(format!(
                    "create not allowed while custom resource definition {} is terminating",
                    crate::errors::qualified(&info.group, &info.plural)
                )));
            }
            if txn.state().get(&info.storage_key(), &ns, &name).is_some() {
                return Err(Error::already_exists(&info.group, &info.plural, &name));
            }
            if info.storage_key() == CRD_KEY {
                prepare_crd(txn, &mut obj, None)?;
            }
            if is_service(&info) {
                crate::handlers::services::allocate(txn.state(), &ns, &name, &mut obj, None)?;
            }
            if is_secret(&info) {
                crate::handlers::serviceaccounts::populate(txn.state(), &ns, &mut obj, &rr.ca_pem);
            }
            if dry {
                return Ok(Arc::new(obj));
            }
            let stored = put_object(txn, &info, &ns, &name, obj);
            if info.storage_key() == NAMESPACE_KEY {
                crate::handlers::serviceaccounts::ensure_default(txn, &name);
            }
            Ok(stored)
        })
        .await?;
    Ok(w.respond(json_response(201, render(&info, &stored))))
}

/// A new CertificateSigningRequest names who asked for it, whatever the body says.
fn set_requester(obj: &mut Value, user: &crate::handlers::serviceaccounts::User) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.insert("username".into(), json!(user.username));
    spec.insert("groups".into(), json!(user.groups));
    spec.remove("extra");
    if user.uid.is_empty() {
        spec.remove("uid");
    } else {
        spec.insert("uid".into(), json!(user.uid));
    }
}

fn is_service(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "services"
}

fn is_secret(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "secrets"
}

fn name_of(rr: &ResourceRequest) -> Result<&str> {
    rr.name.as_deref().ok_or_else(Error::path_not_found)
}

fn ns_of(rr: &ResourceRequest) -> String {
    if rr.info.namespaced {
        rr.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    }
}

/// How long a read at a resourceVersion the server has not reached waits for it.
const TOO_LARGE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits (up to 3 s) until the cluster has committed `rv`; 504 "Too large resource version"
/// when it does not, as kube-apiserver answers a get or list at a future resourceVersion.
async fn reach(rr: &ResourceRequest, rv: u64) -> Result<()> {
    if rr.cluster.read(|s| s.committed_rv()) >= rv {
        return Ok(());
    }
    match tokio::time::timeout(TOO_LARGE_WAIT, rr.cluster.wait_committed(rv)).await {
        Ok(done) => done,
        Err(_) => Err(Error::too_large_resource_version(
            rv,
            rr.cluster.read(|s| s.committed_rv()),
        )),
    }
}

/// `GET` one object (or its status/scale).
pub(crate) async fn get(rr: &ResourceRequest) -> Result<Response> {
    let info = &rr.info;
    let name = name_of(rr)?;
    if info.namespaced && rr.namespace.is_none() {
        return Err(Error::path_not_found());
    }
    match rr.query.get("resourceVersion") {
        Some(rv) if !rv.is_empty() => {
            let rv = rv
                .parse::<u64>()
                .map_err(|_| Error::bad_request(format!("invalid resourceVersion {rv:?}")))?;
            reach(rr, rv).await?;
        }
        _ => {}
    }
    let ns = ns_of(rr);
    let obj = rr
        .cluster
        .read_committed(|s| s.get(&info.storage_key(), &ns, name))
        .await?
        .ok_or_else(|| Error::not_found(&info.group, &info.plural, name))?;
    if rr.sub.as_deref() == Some("scale") {
        return Ok(json_response(
            200,
            serde_json::to_vec(&scale_view(info, &obj)).unwrap_or_default(),
        ));
    }
    if let Some(version) = rr.table.filter(|_| rr.sub.is_none()) {
        let include = crate::handlers::table::Include::of(rr.query.get("includeObject"))?;
        let object: Value = serde_json::from_slice(&render(info, &obj)).unwrap_or(Value::Null);
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        let t = crate::handlers::table::table(
            info,
            version,
            &[object],
            json!({"resourceVersion": rv}),
            include,
            true,
        );
        return Ok(json_response(
            200,
            serde_json::to_vec(&t).unwrap_or_default(),
        ));
    }
    Ok(json_response(200, render(info, &obj)))
}

fn dotted(path: &str) -> String {
    format!("/{}", path.trim_start_matches('.').replace('.', "/"))
}

fn scale_view(info: &ResourceInfo, obj: &Value) -> Value {
    let Some(scale) = &info.scale else {
        return Value::Null;
    };
    let spec = obj
        .pointer(&dotted(&scale.spec_replicas_path))
        .cloned()
        .unwrap_or(json!(0));
    let status = obj
        .pointer(&dotted(&scale.status_replicas_path))
        .cloned()
        .unwrap_or(json!(0));
    let selector = match &scale.label_selector_path {
        Some(p) => obj.pointer(&dotted(p)).cloned(),
        // A LabelSelector's matchLabels, or a ReplicationController's plain map.
        None => obj
            .pointer("/spec/selector/matchLabels")
            .or_else(|| {
                obj.pointer("/spec/selector")
                    .filter(|s| s.get("matchExpressions").is_none())
            })
            .and_then(Value::as_object)
            .map(|ml| {
                let mut parts: Vec<String> = ml
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                parts.sort();
                json!(parts.join(","))
            }),
    };
    let m = meta(obj);
    let mut status_doc = json!({"replicas": status});
    if let (Some(sel), Some(o)) = (selector, status_doc.as_object_mut()) {
        o.insert("selector".into(), sel);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.and_then(|m| m.get("name")),
            "namespace": m.and_then(|m| m.get("namespace")),
            "uid": m.and_then(|m| m.get("uid")),
            "resourceVersion": m.and_then(|m| m.get("resourceVersion")),
            "creationTimestamp": m.and_then(|m| m.get("creationTimestamp")),
        },
        "spec": {"replicas": spec},
        "status": status_doc,
    })
}

struct ListOptions {
    labels: LabelSelector,
    fields: FieldSelector,
}

fn list_options(rr: &ResourceRequest) -> Result<ListOptions> {
    Ok(ListOptions {
        labels: LabelSelector::parse(rr.query.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(
            rr.query.get("fieldSelector").unwrap_or(""),
            &rr.info.kind,
            &rr.info.api_version(),
        )?,
    })
}

/// Objects matching a list request, in (namespace, name) order, after `start`.
fn matching(
    state: &crate::storage::ClusterState,
    rr: &ResourceRequest,
    opts: &ListOptions,
    start: Option<&(String, String)>,
) -> Vec<Arc<Value>> {
    match state.objects(&rr.info.storage_key()) {
        Some(objs) => matching_in(objs, rr, opts, start),
        None => Vec::new(),
    }
}

fn matching_in(
    objs: &crate::storage::Objects,
    rr: &ResourceRequest,
    opts: &ListOptions,
    start: Option<&(String, String)>,
) -> Vec<Arc<Value>> {
    let ns = rr.namespace.clone().filter(|_| rr.info.namespaced);
    let lower = match (&ns, start) {
        (_, Some(s)) => std::ops::Bound::Excluded(s.clone()),
        (Some(ns), None) => std::ops::Bound::Included((ns.clone(), String::new())),
        (None, None) => std::ops::Bound::Unbounded,
    };
    objs.range((lower, std::ops::Bound::Unbounded))
        .take_while(|((ons, _), _)| ns.as_ref().is_none_or(|n| n == ons))
        .filter(|((_, oname), obj)| {
            opts.fields.exact_name().is_none_or(|n| n == oname)
                && opts.labels.matches(obj)
                && opts.fields.matches(obj)
        })
        .map(|(_, v)| v.clone())
        .collect()
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&json!({"rv": rv, "ns": ns, "name": name})).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<(u64, String, String)> {
    let bad = || Error::bad_request("continue key is not valid: ask for a fresh list");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["ns"].as_str().ok_or_else(bad)?.to_string(),
        v["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

/// `GET` a collection.
pub(crate) async fn list(rr: &ResourceRequest) -> Result<Response> {
    let opts = list_options(rr)?;
    let limit: usize = match rr.query.get("limit") {
        Some(l) if !l.is_empty() => l
            .parse::<i64>()
            .map_err(|_| Error::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
        _ => 0,
    };
    let cont = match rr.query.get("continue") {
        Some(c) if !c.is_empty() => Some(decode_continue(c)?),
        _ => None,
    };
    let requested_rv = match rr.query.get("resourceVersion") {
        Some(rv) if !rv.is_empty() => Some(
            rv.parse::<u64>()
                .map_err(|_| Error::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
        _ => None,
    };
    // Pages of a paginated list, and resourceVersionMatch=Exact, are served as of one RV,
    // rebuilt from the watch history when it has moved on (410 once it no longer reaches).
    let at_rv = match (&cont, rr.query.get("resourceVersionMatch"), requested_rv) {
        (Some((rv, _, _)), _, _) => Some(*rv),
        (None, Some("Exact"), Some(rv)) => Some(rv),
        _ => None,
    };
    let start = cont
        .as_ref()
        .map(|(_, ns, name)| (ns.clone(), name.clone()));
    let key = rr.info.storage_key();
    if let Some(rv) = requested_rv {
        reach(rr, rv).await?;
    }
    let (mut items, list_rv) = rr.cluster.read_committed(|s| match at_rv {
        Some(at) if at > s.rv => Err(Error::too_large_resource_version(at, s.committed_rv())),
        Some(at) if at < s.rv => {
            let objs = s.objects_at(&key, at).ok_or_else(|| {
                Error::gone(if cont.is_some() {
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".to_string()
                } else {
                    format!("too old resource version: {at} ({})", s.history_start() + 1)
                })
            })?;
            Ok((matching_in(&objs, rr, &opts, start.as_ref()), at))
        }
        _ => Ok((matching(s, rr, &opts, start.as_ref()), s.rv)),
    })
    .await??;
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            let ns = meta_str(last, "namespace").unwrap_or("");
            let name = meta_str(last, "name").unwrap_or("");
            meta["continue"] = json!(encode_continue(list_rv, ns, name));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    let info = &rr.info;
    if let Some(version) = rr.table {
        let include = crate::handlers::table::Include::of(rr.query.get("includeObject"))?;
        let objects: Vec<Value> = items
            .iter()
            .map(|o| serde_json::from_slice(&render(info, o)).unwrap_or(Value::Null))
            .collect();
        let t = crate::handlers::table::table(info, version, &objects, meta, include, true);
        return Ok(json_response(
            200,
            serde_json::to_vec(&t).unwrap_or_default(),
        ));
    }
    let mut out = Vec::with_capacity(64 + items.len() * 512);
    out.extend_from_slice(b"{\"kind\":");
    out.extend(serde_json::to_vec(&info.list_kind).unwrap_or_default());
    out.extend_from_slice(b",\"apiVersion\":");
    out.extend(serde_json::to_vec(&info.api_version()).unwrap_or_default());
    out.extend_from_slice(b",\"metadata\":");
    out.extend(serde_json::to_vec(&meta).unwrap_or_default());
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if info.custom {
            out.extend(render(info, item));
        } else {
            render_untyped(item, &mut out);
        }
    }
    out.extend_from_slice(b"]}");
    Ok(json_response(200, out))
}

enum Mode {
    Main,
    Status,
}

/// Merge an incoming object onto the stored one with update semantics and write it.
/// Returns the stored result.
/// The uid names one object for its whole life, as in kube-apiserver: an update carrying
/// another object's uid fails its precondition (409), a patch or apply that changes it is
/// invalid (422). An update without a uid keeps the object's.
fn check_uid(info: &ResourceInfo, name: &str, old: &Value, new: &Value, w: &Write) -> Result<()> {
    let Some(uid) = meta_str(new, "uid").filter(|uid| !uid.is_empty()) else {
        return Ok(());
    };
    let current = meta_str(old, "uid").unwrap_or("");
    if uid == current {
        return Ok(());
    }
    if w.options == "UpdateOptions" {
        return Err(Error::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {current}"
            ),
        ));
    }
    Err(Error::invalid(
        &info.group,
        &info.kind,
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {uid:?}: field is immutable"),
            field: "metadata.uid".into(),
        }],
    ))
}

fn apply_update(
    txn: &mut Txn<'_>,
    rr: &ResourceRequest,
    old: &Value,
    mut new: Value,
    mode: Mode,
    dry: bool,
    w: &mut Write,
) -> Result<Arc<Value>> {
    let info = &rr.info;
    let name = name_of(rr)?.to_string();
    let ns = ns_of(rr);
    if let Some(rv) = meta_str(&new, "resourceVersion").filter(|rv| !rv.is_empty())
        && Some(rv) != meta_str(old, "resourceVersion")
    {
        return Err(Error::conflict(
            &info.group,
            &info.plural,
            &name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    check_uid(info, &name, old, &new, w)?;
    check_type(info, &mut new)?;
    if let Some(n) = meta_str(&new, "name")
        && n != name
    {
        return Err(Error::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let mut merged = match mode {
        Mode::Main => {
            if info.status
                && let Some(o) = new.as_object_mut()
            {
                match old.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            new
        }
        Mode::Status => {
            let mut m = old.clone();
            if let Some(o) = m.as_object_mut() {
                match new.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            // Server-side apply through /status recorded its manager in the applied result.
            if w.applied
                && let Some(mf) = new.pointer("/metadata/managedFields")
            {
                meta_mut(&mut m).insert("managedFields".into(), mf.clone());
            }
            m
        }
    };
    if info.namespaced {
        let m = meta_mut(&mut merged);
        if let Some(n) = m.get("namespace").and_then(Value::as_str)
            && n != ns
        {
            return Err(Error::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        m.insert("namespace".into(), json!(ns));
    }
    if is_service(info) {
        crate::handlers::services::carry_over(old, &mut merged);
    }
    admission::admit(
        info,
        &mut merged,
        &mut w.problems,
        w.validation,
        &mut w.warnings,
    )?;
    // Fields clients cannot change.
    let old_meta = meta(old).cloned().unwrap_or_default();
    let m = meta_mut(&mut merged);
    m.insert("name".into(), json!(name));
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    m.insert(
        "resourceVersion".into(),
        old_meta
            .get("resourceVersion")
            .cloned()
            .unwrap_or(Value::Null),
    );
    if info.generation && generation_changes(old, &merged) {
        let g = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(&mut merged).insert("generation".into(), json!(g));
    }
    validate_metadata(info, &name, &merged)?;
    check_immutable(info, &name, old, &merged)?;
    // Managed fields: a write that leaves them out keeps the stored ones; a no-op write changes
    // nothing (not even a manager's time); any other write records its manager.
    if merged.pointer("/metadata/managedFields").is_none()
        && let Some(mf) = old.pointer("/metadata/managedFields")
    {
        meta_mut(&mut merged).insert("managedFields".into(), mf.clone());
    }
    if same_but_times(&merged, old) {
        return Ok(Arc::new(old.clone()));
    }
    if !w.applied {
        merged = admission::record_update(rr, w.options, Some(old), &merged)?;
    }
    if is_service(info) {
        crate::handlers::services::allocate(txn.state(), &ns, &name, &mut merged, Some(old))?;
    }
    if is_secret(info) {
        crate::handlers::serviceaccounts::populate(txn.state(), &ns, &mut merged, &rr.ca_pem);
    }
    admission::prepare_for_update(info, &mut merged);
    admission::validate(info, &name, &merged, Some(old), &mut w.warnings)?;
    if info.storage_key() == CRD_KEY {
        prepare_crd(txn, &mut merged, Some(old))?;
    }
    if dry {
        return Ok(Arc::new(merged));
    }
    Ok(store_or_finish(txn, info, &ns, &name, merged))
}

/// Store a changed object, or remove it when it is being deleted and has no finalizers left
/// (a namespace or CRD goes once it is also empty). Returns what is stored, or the last state.
pub(crate) fn store_or_finish(
    txn: &mut Txn<'_>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    obj: Value,
) -> Arc<Value> {
    let deleting = meta_str(&obj, "deletionTimestamp").is_some();
    let key = info.storage_key();
    let (is_crd, is_namespace) = (key == CRD_KEY, key == NAMESPACE_KEY);
    if deleting && finalizers(&obj).is_empty() && !is_namespace && !is_crd {
        return match remove_object(txn, &key, ns, name) {
            Some(removed) => removed,
            None => Arc::new(obj),
        };
    }
    let stored = put_object(txn, info, ns, name, obj);
    if deleting && is_namespace {
        maybe_finish_namespace(txn, name);
    }
    if deleting && is_crd {
        maybe_finish_crd(txn, name);
        if let Some(current) = txn.state().get(CRD_KEY, "", name) {
            return current;
        }
    }
    stored
}

fn scale_apply(info: &ResourceInfo, old: &Value, scale: &Value) -> Result<Value> {
    let Some(spec) = &info.scale else {
        return Err(Error::path_not_found());
    };
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            Error::invalid(
                "autoscaling",
                "Scale",
                meta_str(old, "name").unwrap_or(""),
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: "spec.replicas".into(),
                }],
            )
        })?;
    let mut new = old.clone();
    let path = dotted(&spec.spec_replicas_path);
    let mut cur = &mut new;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        let Some(o) = cur.as_object_mut() else {
            return Err(Error::internal("scale path is not an object"));
        };
        if i + 1 == parts.len() {
            o.insert((*p).to_string(), json!(replicas));
            break;
        }
        cur = o.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
    if let Some(rv) = scale.pointer("/metadata/resourceVersion") {
        meta_mut(&mut new).insert("resourceVersion".into(), rv.clone());
    }
    Ok(new)
}

/// `PUT` an object (or its status/scale).
pub(crate) async fn update(
    rr: &ResourceRequest,
    ct: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let mut w = Write::new(rr, "UpdateOptions", ct, body)?;
    let new = codec::decode_object(ct, body)?;
    write_with(rr, &mut w, move |_old| Ok(new)).await
}

async fn write_with(
    rr: &ResourceRequest,
    w: &mut Write,
    compute: impl FnOnce(&Value) -> Result<Value>,
) -> Result<Response> {
    let info = rr.info.clone();
    let name = name_of(rr)?.to_string();
    if info.namespaced && rr.namespace.is_none() {
        return Err(Error::path_not_found());
    }
    let ns = ns_of(rr);
    let dry = dry_run(rr);
    let sub = rr.sub.clone();
    let stored = rr
        .cluster
        .write(|txn| {
            let old = txn
                .state()
                .get(&info.storage_key(), &ns, &name)
                .ok_or_else(|| Error::not_found(&info.group, &info.plural, &name))?;
            match sub.as_deref() {
                Some("scale") => {
                    let scale_in = compute(&scale_view(&info, &old))?;
                    let new = scale_apply(&info, &old, &scale_in)?;
                    apply_update(txn, rr, &old, new, Mode::Main, dry, w)
                }
                Some(_) => {
                    let new = compute(&old)?;
                    apply_update(txn, rr, &old, new, Mode::Status, dry, w)
                }
                None => {
                    let new = compute(&old)?;
                    apply_update(txn, rr, &old, new, Mode::Main, dry, w)
                }
            }
        })
        .await?;
    if sub.as_deref() == Some("scale") {
        return Ok(w.respond(json_response(
            200,
            serde_json::to_vec(&scale_view(&info, &stored)).unwrap_or_default(),
        )));
    }
    Ok(w.respond(json_response(200, render(&info, &stored))))
}

/// `PATCH` an object: JSON patch, JSON merge patch, strategic merge patch (built-in kinds) or
/// server-side apply (which creates a missing object).
pub(crate) async fn patch(rr: &ResourceRequest, ct: Option<&str>, body: &[u8]) -> Result<Response> {
    let media = codec::media_type(ct);
    let name = name_of(rr)?.to_string();
    let info = rr.info.clone();
    let mut w = Write::new(rr, "PatchOptions", ct, body)?;
    let patch_err = |e: String| {
        Error::invalid(
            &info.group,
            &info.kind,
            &name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: e,
                field: "patch".into(),
            }],
        )
    };
    match media.as_str() {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| Error::bad_request(format!("invalid JSON patch: {e}")))?;
            write_with(rr, &mut w, move |old| {
                let mut doc = old.clone();
                // kube-apiserver says no more than this about a JSON patch that cannot apply.
                let rejected = || Error::Api {
                    code: 422,
                    reason: "Invalid",
                    message: "the server rejected our request due to an error in our request"
                        .into(),
                    details: Some(Box::new(json!({}))),
                };
                for op in &p.0 {
                    // As kube-apiserver's JSON patch library does, a `test` for null passes
                    // where the path is absent (kube-runtime's finalizer helper relies on it).
                    if let json_patch::PatchOperation::Test(t) = op
                        && t.value.is_null()
                        && doc.pointer(t.path.as_str()).is_none_or(Value::is_null)
                    {
                        continue;
                    }
                    json_patch::patch(&mut doc, std::slice::from_ref(op))
                        .map_err(|_| rejected())?;
                }
                Ok(doc)
            })
            .await
        }
        "application/merge-patch+json" => {
            let p = codec::decode_json(body)?;
            if !p.is_object() {
                return Err(Error::bad_request("a merge patch must be a JSON object"));
            }
            write_with(rr, &mut w, move |old| {
                let mut doc = old.clone();
                json_patch::merge(&mut doc, &p);
                Ok(doc)
            })
            .await
        }
        "application/strategic-merge-patch+json" if !info.custom => {
            let p = codec::decode_json(body)?;
            if !p.is_object() {
                return Err(Error::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            let schema_info = info.clone();
            write_with(rr, &mut w, move |old| {
                let schema = admission::schema_of(&schema_info);
                flotilla_schema::strategic::patch(old, &p, schema).map_err(|e| patch_err(e.message))
            })
            .await
        }
        "application/apply-patch+yaml" => apply_patch(rr, body, &mut w).await,
        _ => Err(Error::api(
            415,
            "UnsupportedMediaType",
            if info.custom {
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            } else {
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
            },
        )),
    }
}

/// Server-side apply: the body is YAML (or JSON); a missing object is created.
async fn apply_patch(rr: &ResourceRequest, body: &[u8], w: &mut Write) -> Result<Response> {
    let info = rr.info.clone();
    let name = name_of(rr)?.to_string();
    if rr.sub.as_deref() == Some("scale") {
        return Err(Error::api(
            415,
            "UnsupportedMediaType",
            "server-side apply through the scale subresource is not supported by this server; apply spec.replicas on the object itself",
        ));
    }
    let mut applied = codec::decode_object(Some("application/yaml"), body)?;
    if let Some(n) = meta_str(&applied, "name")
        && n != name
    {
        return Err(Error::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    admission::check_applied(
        &info,
        &mut applied,
        &mut w.problems,
        w.validation,
        &mut w.warnings,
    )?;
    // Only the part a subresource owns is applied through it.
    let sub = rr.sub.clone();
    if info.status
        && let Some(o) = applied.as_object_mut()
    {
        if sub.as_deref() == Some("status") {
            o.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        } else {
            o.remove("status");
        }
    }
    w.applied = true;
    let result = write_with(rr, w, |old| {
        admission::server_side_apply(rr, Some(old), &applied)
    })
    .await;
    match result {
        Err(Error::Api { code: 404, .. }) if sub.is_none() => {
            // An apply naming a uid is for that object only: it never creates one.
            if let Some(uid) = meta_str(&applied, "uid").filter(|uid| !uid.is_empty()) {
                return Err(Error::conflict(
                    &info.group,
                    &info.plural,
                    &name,
                    &format!(
                        "uid mismatch: the provided object specified uid {uid}, and no existing object was found"
                    ),
                ));
            }
            let mut obj = admission::server_side_apply(rr, None, &applied)?;
            meta_mut(&mut obj).insert("name".into(), json!(name));
            match create_object(rr, obj, w).await {
                // Another applier created it meanwhile: apply onto theirs, as kube-apiserver
                // retries an apply-create as an update.
                Err(Error::Api {
                    code: 409,
                    reason: "AlreadyExists",
                    ..
                }) => {
                    write_with(rr, w, |old| {
                        admission::server_side_apply(rr, Some(old), &applied)
                    })
                    .await
                }
                other => other,
            }
        }
        other => other,
    }
}

/// How a deletion treats the object's dependents (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// The parts of `DeleteOptions` this server honours.
#[derive(Debug, Default)]
pub(crate) struct DeleteOptions {
    uid: Option<String>,
    rv: Option<String>,
    pub(crate) propagation: Option<Propagation>,
    orphan_dependents: Option<bool>,
}

impl DeleteOptions {
    /// Options that only say how to propagate (the garbage collector's deletes).
    pub(crate) fn propagating(p: Propagation) -> Self {
        DeleteOptions {
            propagation: Some(p),
            ..DeleteOptions::default()
        }
    }

    /// Neither `propagationPolicy` nor `orphanDependents` was given.
    fn default_propagation(&self) -> bool {
        self.propagation.is_none() && self.orphan_dependents.is_none()
    }
}

/// DeleteOptions from the query string and the body (which wins), validated as kube does.
fn delete_options(rr: &ResourceRequest, ct: Option<&str>, body: &[u8]) -> Result<DeleteOptions> {
    let v = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        codec::decode_object(ct, body)?
    };
    delete_options_of(rr, &v)
}

/// DeleteOptions from a decoded document (a DELETE's body, an Eviction's `deleteOptions`), with
/// the query string's where the document says nothing.
pub(crate) fn delete_options_of(rr: &ResourceRequest, v: &Value) -> Result<DeleteOptions> {
    let pre = v.get("preconditions");
    let s = |k: &str| {
        pre.and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let policy = match v.get("propagationPolicy") {
        Some(Value::String(p)) => Some(p.clone()),
        Some(Value::Null) | None => rr.query.get("propagationPolicy").map(String::from),
        Some(other) => Some(other.to_string()),
    };
    let orphan_dependents = match v.get("orphanDependents") {
        Some(Value::Bool(b)) => Some(*b),
        _ => match rr.query.get("orphanDependents") {
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(other) => {
                return Err(Error::bad_request(format!(
                    "strconv.ParseBool: parsing {other:?}: invalid syntax"
                )));
            }
            None => None,
        },
    };
    let invalid = |reason: &str, message: String| {
        Error::invalid(
            "meta.k8s.io",
            "DeleteOptions",
            "",
            vec![Cause {
                reason: reason.into(),
                message,
                field: "propagationPolicy".into(),
            }],
        )
    };
    let propagation = match policy.as_deref() {
        None => None,
        Some("Orphan") => Some(Propagation::Orphan),
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some(other) => {
            return Err(invalid(
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            ));
        }
    };
    if let (Some(p), Some(_)) = (&policy, orphan_dependents) {
        return Err(invalid(
            "FieldValueInvalid",
            format!(
                "Invalid value: {p:?}: orphanDependents and deletionPropagation cannot be both set"
            ),
        ));
    }
    Ok(DeleteOptions {
        uid: s("uid"),
        rv: s("resourceVersion"),
        propagation,
        orphan_dependents,
    })
}

/// Kinds whose dependents are orphaned when a delete names no propagation (kube keeps
/// `batch/v1` Jobs' pods for backward compatibility).
fn orphans_by_default(info: &ResourceInfo) -> bool {
    info.group == "batch" && info.kind == "Job"
}

/// The finalizers an object gets when deleted with `opts`: kube-apiserver's
/// `deletionFinalizersForGarbageCollection` (an explicit option wins, then a finalizer the
/// object already has, then the kind's default).
fn deletion_finalizers(info: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> Vec<String> {
    let current = finalizers(obj);
    let from_finalizers = || {
        current.iter().find_map(|f| match f.as_str() {
            gc::ORPHAN => Some(Propagation::Orphan),
            gc::FOREGROUND => Some(Propagation::Foreground),
            _ => None,
        })
    };
    let policy = match (opts.orphan_dependents, opts.propagation) {
        (Some(true), _) => Propagation::Orphan,
        (Some(false), _) => Propagation::Background,
        (None, Some(p)) => p,
        (None, None) => from_finalizers().unwrap_or(if orphans_by_default(info) {
            Propagation::Orphan
        } else {
            Propagation::Background
        }),
    };
    let mut out: Vec<String> = current
        .into_iter()
        .filter(|f| f != gc::ORPHAN && f != gc::FOREGROUND)
        .collect();
    match policy {
        Propagation::Orphan => out.push(gc::ORPHAN.into()),
        Propagation::Foreground => out.push(gc::FOREGROUND.into()),
        Propagation::Background => {}
    }
    out
}

pub(crate) enum Deleted {
    /// Removed now.
    Gone(Arc<Value>),
    /// Waiting for finalizers (or namespace content).
    Pending(Arc<Value>),
}

/// Delete one object with finalizer and garbage-collection semantics inside a transaction.
pub(crate) fn delete_in(
    txn: &mut Txn<'_>,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted> {
    let key = info.storage_key();
    let old = txn
        .state()
        .get(&key, ns, name)
        .ok_or_else(|| Error::not_found(&info.group, &info.plural, name))?;
    if let Some(uid) = &opts.uid
        && Some(uid.as_str()) != meta_str(&old, "uid")
    {
        return Err(Error::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(&old, "uid").unwrap_or("")
            ),
        ));
    }
    if let Some(rv) = &opts.rv
        && Some(rv.as_str()) != meta_str(&old, "resourceVersion")
    {
        return Err(Error::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&old, "resourceVersion").unwrap_or("")
            ),
        ));
    }
    let is_namespace = key == NAMESPACE_KEY;
    if is_namespace {
        let mut obj = (*old).clone();
        if meta_str(&obj, "deletionTimestamp").is_none() {
            meta_mut(&mut obj).insert("deletionTimestamp".into(), json!(now()));
            if let Some(o) = obj.as_object_mut() {
                o.insert("status".into(), json!({"phase": "Terminating"}));
            }
            txn.put(&key, "", name, obj.clone());
        }
        // The answer is the namespace as the delete left it, Terminating, even when emptying
        // it lets it go at once (kube's namespace controller finishes it a moment later).
        let terminating = Arc::new(obj);
        // Empty the namespace.
        let keys: Vec<String> = txn.state().objects.keys().map(|k| k.to_string()).collect();
        for k in keys {
            let names: Vec<String> = txn
                .state()
                .objects(&k)
                .map(|objs| {
                    objs.range((name.to_string(), String::new())..)
                        .take_while(|((n, _), _)| n == name)
                        .map(|((_, n), _)| n.clone())
                        .collect()
                })
                .unwrap_or_default();
            for obj_name in names {
                delete_or_mark(txn, &k, name, &obj_name);
            }
        }
        maybe_finish_namespace(txn, name);
        return Ok(match txn.state().get(&key, "", name) {
            Some(o) => Deleted::Pending(o),
            None => Deleted::Gone(terminating),
        });
    }
    if key == CRD_KEY {
        // Like kube's customresourcecleanup finalizer: delete the objects (honouring their
        // finalizers), keep serving them until they are gone, then remove the CRD.
        if meta_str(&old, "deletionTimestamp").is_none() {
            let mut obj = (*old).clone();
            mark_deleting(&mut obj);
            put_object(txn, info, ns, name, obj);
        }
        if let Some(skey) = crd_storage_key(&old) {
            let names: Vec<(String, String)> = txn
                .state()
                .objects(&skey)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            for (ons, oname) in names {
                delete_or_mark(txn, &skey, &ons, &oname);
            }
        }
        maybe_finish_crd(txn, name);
        return Ok(match txn.state().get(&key, "", name) {
            Some(o) => Deleted::Pending(o),
            None => Deleted::Gone(old),
        });
    }
    let wanted = deletion_finalizers(info, &old, opts);
    if !wanted.is_empty() {
        let current = finalizers(&old);
        let same = wanted.len() == current.len() && wanted.iter().all(|f| current.contains(f));
        if same && meta_str(&old, "deletionTimestamp").is_some() {
            return Ok(Deleted::Pending(old));
        }
        let mut obj = (*old).clone();
        if !same {
            meta_mut(&mut obj).insert("finalizers".into(), json!(wanted));
        }
        if meta_str(&obj, "deletionTimestamp").is_none() {
            mark_deleting(&mut obj);
        }
        return Ok(Deleted::Pending(put_object(txn, info, ns, name, obj)));
    }
    let removed = remove_object(txn, &key, ns, name).unwrap_or(old);
    Ok(Deleted::Gone(removed))
}

/// `DELETE` one object.
pub(crate) async fn delete(
    rr: &ResourceRequest,
    ct: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let info = rr.info.clone();
    let name = name_of(rr)?.to_string();
    if info.namespaced && rr.namespace.is_none() {
        return Err(Error::path_not_found());
    }
    let ns = ns_of(rr);
    let opts = delete_options(rr, ct, body)?;
    let mut warnings = Warnings::default();
    if orphans_by_default(&info) && opts.default_propagation() {
        warnings.push("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning");
    }
    if dry_run(rr) {
        let obj = rr
            .cluster
            .read_committed(|s| s.get(&info.storage_key(), &ns, &name))
            .await?
            .ok_or_else(|| Error::not_found(&info.group, &info.plural, &name))?;
        return Ok(warnings.attach(json_response(200, render(&info, &obj))));
    }
    let outcome = rr
        .cluster
        .write(|txn| delete_in(txn, &info, &ns, &name, &opts))
        .await?;
    let is_crd = info.storage_key() == CRD_KEY;
    Ok(warnings.attach(match outcome {
        // A deleted CRD answers as kube-apiserver's does: the object, marked for deletion and
        // held by the cleanup finalizer (here the cleanup runs inside the delete, so the
        // finalizer is only shown).
        Deleted::Pending(obj) | Deleted::Gone(obj) if is_crd => {
            let mut shown = (*obj).clone();
            let m = meta_mut(&mut shown);
            m.entry("deletionTimestamp").or_insert_with(|| json!(now()));
            m.remove("deletionGracePeriodSeconds");
            m.insert(
                "finalizers".into(),
                json!(["customresourcecleanup.apiextensions.k8s.io"]),
            );
            if let Some(Value::Array(conds)) = shown.pointer_mut("/status/conditions")
                && !conds.iter().any(|c| c["type"] == "Terminating")
            {
                conds.push(json!({"type": "Terminating", "status": "True",
                    "reason": "InstanceDeletionPending",
                    "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
                    "lastTransitionTime": now()}));
            }
            json_response(200, render(&info, &shown))
        }
        Deleted::Pending(obj) => json_response(200, render(&info, &obj)),
        Deleted::Gone(obj) if info.custom || info.plural == "namespaces" => {
            json_response(200, render(&info, &obj))
        }
        Deleted::Gone(obj) => {
            let status = json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": info.group,
                    "kind": info.plural,
                    "uid": meta_str(&obj, "uid"),
                },
            });
            json_response(200, serde_json::to_vec(&status).unwrap_or_default())
        }
    }))
}

/// `DELETE` a collection: deletes every match and returns them as a list.
pub(crate) async fn delete_collection(
    rr: &ResourceRequest,
    ct: Option<&str>,
    body: &[u8],
) -> Result<Response> {
    let info = rr.info.clone();
    let opts = list_options(rr)?;
    let del = delete_options(rr, ct, body)?;
    let dry = dry_run(rr);
    let items = rr
        .cluster
        .write(|txn| {
            let targets = matching(txn.state(), rr, &opts, None);
            if dry {
                return Ok(targets);
            }
            let mut out = Vec::new();
            for t in targets {
                let ns = meta_str(&t, "namespace").unwrap_or("").to_string();
                let name = meta_str(&t, "name").unwrap_or("").to_string();
                match delete_in(txn, &info, &ns, &name, &del) {
                    Ok(Deleted::Gone(o) | Deleted::Pending(o)) => out.push(o),
                    Err(e) if e.code() == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
        .await?;
    let rv = rr.cluster.read_committed(|s| s.rv).await?;
    let items: Vec<Value> = items.iter().map(|o| (**o).clone()).collect();
    let list = json!({
        "kind": info.list_kind,
        "apiVersion": info.api_version(),
        "metadata": {"resourceVersion": rv.to_string()},
        "items": items,
    });
    Ok(json_response(
        200,
        serde_json::to_vec(&list).unwrap_or_default(),
    ))
}
