//! What kube-apiserver checks about a body against a kind's schema: unknown fields (pruned, and
//! reported for `fieldValidation`), duplicate fields, type mismatches of built-in kinds (the Go
//! decoder's 400), CRD structural-schema validation (422 causes), CRD defaults, and whether a
//! CRD's own schema is structural.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::Cause;
use crate::builtin::builtins;
use crate::schema::{Node, Schema, Type};

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes every field the schema does not declare (kube-apiserver drops them: the Go decoder
/// for built-in kinds, pruning for CRDs) and `null`s where the schema does not allow them, and
/// returns the dropped fields' paths (`spec.template.spec.containers[0].imagee`), which
/// `fieldValidation=Strict` rejects and `Warn` reports. `custom` selects CRD rules: the root's
/// `apiVersion`, `kind` and `metadata` are always allowed and `metadata` is pruned to ObjectMeta.
pub fn prune(obj: &mut Value, node: Node<'_>, custom: bool) -> Vec<String> {
    let mut out = Vec::new();
    if custom && let Some(o) = obj.as_object_mut() {
        for (k, v) in o.iter_mut() {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => prune_meta(v, "metadata", &mut out),
                _ => {}
            }
        }
        let mut keys: Vec<String> = o.keys().cloned().collect();
        keys.retain(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
        for k in keys {
            match node.field(&k) {
                Some(child) => {
                    if let Some(v) = o.get_mut(&k) {
                        if v.is_null() && !child.schema().nullable {
                            o.remove(&k);
                        } else {
                            prune_at(v, child, &k, custom, &mut out);
                        }
                    }
                }
                None if node.accepts_unknown_fields() => {
                    if let (Some(v), Some(child)) = (o.get_mut(&k), node.additional()) {
                        prune_at(v, child, &k, custom, &mut out);
                    }
                }
                None => {
                    o.remove(&k);
                    out.push(k);
                }
            }
        }
        return out;
    }
    prune_at(obj, node, "", custom, &mut out);
    out
}

fn prune_meta(v: &mut Value, path: &str, out: &mut Vec<String>) {
    if let Some(meta) = builtins().definitions().named(OBJECT_META) {
        prune_at(v, meta, path, false, out);
    }
}

fn prune_at(v: &mut Value, node: Node<'_>, path: &str, custom: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if node.is_embedded_resource() {
                for (k, x) in o.iter_mut() {
                    if k == "metadata" {
                        prune_meta(x, &join(path, k), out);
                    }
                }
            }
            if node.ty() != Type::Object && node.ty() != Type::Unspecified {
                return;
            }
            let opaque = node.schema().properties.is_empty()
                && node.schema().additional_properties.is_none();
            // Built-in kinds: an object type without declared fields is raw JSON to the Go
            // decoder (FieldsV1, RawExtension); CRDs: an object without properties keeps
            // nothing unless it preserves unknown fields.
            let preserve = node.preserves_unknown_fields()
                || (node.ty() == Type::Unspecified && !custom)
                || (node.ty() == Type::Unspecified && node.schema().properties.is_empty())
                || (node.ty() == Type::Object && !custom && opaque);
            let additional = node.additional();
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if node.is_embedded_resource()
                    && matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    continue;
                }
                let child = node.field(&k).or(additional);
                let Some(child) = child else {
                    if !preserve && !node.schema().additional_any {
                        o.remove(&k);
                        out.push(join(path, &k));
                    }
                    continue;
                };
                let Some(x) = o.get_mut(&k) else { continue };
                if x.is_null() && !child.schema().nullable {
                    // A null is no value: the Go decoder leaves the zero value, pruning drops it.
                    o.remove(&k);
                    continue;
                }
                prune_at(x, child, &join(path, &k), custom, out);
            }
        }
        Value::Array(xs) => {
            if let Some(items) = node.items() {
                for (i, x) in xs.iter_mut().enumerate() {
                    prune_at(x, items, &format!("{path}[{i}]"), custom, out);
                }
            }
        }
        _ => {}
    }
}

/// Go's `omitempty` for built-in kinds: optional lists and maps that are empty are not stored
/// (kube-apiserver's decoder drops them), recursively.
pub fn drop_empty(obj: &mut Value, node: Node<'_>) {
    match obj {
        Value::Object(o) => {
            let additional = node.additional();
            for (k, x) in o.iter_mut() {
                if let Some(child) = node.field(k).or(additional) {
                    drop_empty(x, child);
                }
            }
            let required = &node.schema().required;
            o.retain(|k, v| {
                let Some(child) = node.field(k) else {
                    return true;
                };
                // Only Go slices and maps are omitted; a raw JSON value (a CRD schema's
                // `default: []`) is kept as written.
                let empty = match v {
                    Value::Array(xs) => xs.is_empty() && child.ty() == Type::Array,
                    Value::Object(m) => {
                        m.is_empty() && child.schema().additional_properties.is_some()
                    }
                    _ => false,
                };
                !empty || required.contains(k)
            });
        }
        Value::Array(xs) => {
            if let Some(items) = node.items() {
                for x in xs {
                    drop_empty(x, items);
                }
            }
        }
        _ => {}
    }
}

/// Fills CRD `default`s: a property absent (or `null` where not nullable) under an object that
/// exists gets its default; then defaults apply inside what is present, items and map values.
pub fn apply_defaults(obj: &mut Value, node: Node<'_>) {
    match obj {
        Value::Object(o) => {
            for (k, child) in node.fields() {
                let missing = match o.get(k) {
                    None => true,
                    Some(Value::Null) => !child.schema().nullable,
                    Some(_) => false,
                };
                if missing
                    && let Some(d) = child
                        .outer()
                        .default
                        .as_ref()
                        .or(child.schema().default.as_ref())
                {
                    o.insert(k.to_string(), d.clone());
                }
            }
            let additional = node.additional();
            for (k, x) in o.iter_mut() {
                if let Some(child) = node.field(k).or(additional) {
                    apply_defaults(x, child);
                }
            }
        }
        Value::Array(xs) => {
            if let Some(items) = node.items() {
                for x in xs {
                    apply_defaults(x, items);
                }
            }
        }
        _ => {}
    }
}

/// Whether [`apply_defaults`] would change `obj`: some property with a default is absent (or
/// `null` where not nullable) under an object that exists. Reads only, so callers can skip
/// copying an object that already has every default (as stored objects do).
pub fn defaults_missing(obj: &Value, node: Node<'_>) -> bool {
    match obj {
        Value::Object(o) => {
            let absent = node.fields().any(|(k, child)| {
                let missing = match o.get(k) {
                    None => true,
                    Some(Value::Null) => !child.schema().nullable,
                    Some(_) => false,
                };
                missing && (child.outer().default.is_some() || child.schema().default.is_some())
            });
            let additional = node.additional();
            absent
                || o.iter().any(|(k, x)| {
                    node.field(k)
                        .or(additional)
                        .is_some_and(|child| defaults_missing(x, child))
                })
        }
        Value::Array(xs) => node
            .items()
            .is_some_and(|items| xs.iter().any(|x| defaults_missing(x, items))),
        _ => false,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn quote(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn type_matches(ty: Type, v: &Value) -> bool {
    match ty {
        Type::Unspecified => true,
        Type::Object => v.is_object(),
        Type::Array => v.is_array(),
        Type::String => v.is_string(),
        Type::Boolean => v.is_boolean(),
        Type::Number => v.is_number(),
        Type::Integer => json_type(v) == "integer",
    }
}

/// Validates a custom resource against its CRD's structural schema as kube-apiserver does,
/// returning one cause per failing field (the root's `apiVersion`, `kind` and `metadata` are
/// the server's business, not the schema's).
pub fn validate_custom(obj: &Value, node: Node<'_>) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Value::Object(o) = obj {
        let stripped: Map<String, Value> = o
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        validate_at(&Value::Object(stripped), node, "", &mut out);
    } else {
        validate_at(obj, node, "", &mut out);
    }
    out
}

fn field_name(path: &str) -> String {
    if path.is_empty() {
        "<root>".into()
    } else {
        path.to_string()
    }
}

fn validate_at(v: &Value, node: Node<'_>, path: &str, out: &mut Vec<Cause>) {
    let s = node.schema();
    let name = field_name(path);
    if v.is_null() {
        if !s.nullable && s.ty != Type::Unspecified {
            out.push(Cause::new(
                "FieldValueTypeInvalid",
                name.clone(),
                format!(
                    "Invalid value: \"null\": {name} in body must be of type {}: \"null\"",
                    s.ty.as_str()
                ),
            ));
        }
        return;
    }
    if node.is_int_or_string() {
        let t = json_type(v);
        if t != "integer" && t != "string" {
            out.push(Cause::new(
                "FieldValueTypeInvalid",
                name.clone(),
                format!(
                    "Invalid value: \"{t}\": {name} in body must be of type integer,string: \"{t}\""
                ),
            ));
            return;
        }
    } else if !type_matches(s.ty, v) {
        let t = json_type(v);
        out.push(Cause::new(
            "FieldValueTypeInvalid",
            name.clone(),
            format!(
                "Invalid value: \"{t}\": {name} in body must be of type {}: \"{t}\"",
                s.ty.as_str()
            ),
        ));
        return;
    }
    if !s.enumeration.is_empty() && !s.enumeration.contains(v) {
        let supported: Vec<String> = s.enumeration.iter().map(quote).collect();
        out.push(Cause::new(
            "FieldValueNotSupported",
            name.clone(),
            format!(
                "Unsupported value: {}: supported values: {}",
                quote(v),
                supported.join(", ")
            ),
        ));
    }
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let shown = v.to_string();
            if let Some(min) = s.minimum
                && (f < min || (s.exclusive_minimum && f == min))
            {
                let op = if s.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(Cause::new(
                    "FieldValueInvalid",
                    name.clone(),
                    format!(
                        "Invalid value: {shown}: {name} in body should be {op} {}",
                        num(min)
                    ),
                ));
            }
            if let Some(max) = s.maximum
                && (f > max || (s.exclusive_maximum && f == max))
            {
                let op = if s.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                out.push(Cause::new(
                    "FieldValueInvalid",
                    name.clone(),
                    format!(
                        "Invalid value: {shown}: {name} in body should be {op} {}",
                        num(max)
                    ),
                ));
            }
            if let Some(m) = s.multiple_of
                && m > 0.0
                && ((f / m) - (f / m).round()).abs() > 1e-9
            {
                out.push(Cause::new(
                    "FieldValueInvalid",
                    name.clone(),
                    format!(
                        "Invalid value: {shown}: {name} in body should be a multiple of {}",
                        num(m)
                    ),
                ));
            }
        }
        Value::String(st) => validate_string(st, s, &name, out),
        Value::Array(xs) => {
            if let Some(max) = s.max_items
                && xs.len() as u64 > max
            {
                out.push(Cause::new(
                    "FieldValueTooMany",
                    name.clone(),
                    format!("Too many: {}: must have at most {max} items", xs.len()),
                ));
            }
            if let Some(min) = s.min_items
                && (xs.len() as u64) < min
            {
                out.push(Cause::new(
                    "FieldValueInvalid",
                    name.clone(),
                    format!(
                        "Invalid value: {}: {name} in body should have at least {min} items",
                        xs.len()
                    ),
                ));
            }
            if s.unique_items || node.list_kind() == crate::ListKind::Set {
                let mut seen = HashSet::with_capacity(xs.len());
                for (i, x) in xs.iter().enumerate() {
                    if !seen.insert(serde_json::to_string(x).unwrap_or_default()) {
                        out.push(Cause::new(
                            "FieldValueDuplicate",
                            format!("{name}[{i}]"),
                            format!("Duplicate value: {}", quote(x)),
                        ));
                    }
                }
            }
            if let crate::ListKind::Map(keys) = node.list_kind() {
                let mut seen = HashSet::new();
                for (i, x) in xs.iter().enumerate() {
                    let key: Vec<Value> = keys
                        .iter()
                        .map(|k| x.get(k).cloned().unwrap_or(Value::Null))
                        .collect();
                    if !seen.insert(serde_json::to_string(&key).unwrap_or_default()) {
                        let shown: Vec<String> = keys
                            .iter()
                            .zip(&key)
                            .map(|(k, v)| format!("\"{k}\":{v}"))
                            .collect();
                        out.push(Cause::new(
                            "FieldValueDuplicate",
                            format!("{name}[{i}]"),
                            format!(
                                "Duplicate value: map[string]interface {{}}{{{}}}",
                                shown.join(", ")
                            ),
                        ));
                    }
                }
            }
            if let Some(items) = node.items() {
                for (i, x) in xs.iter().enumerate() {
                    validate_at(x, items, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(o) => {
            for r in &s.required {
                if !o.contains_key(r) {
                    out.push(Cause::new(
                        "FieldValueRequired",
                        join(path, r),
                        "Required value",
                    ));
                }
            }
            if let Some(max) = s.max_properties
                && o.len() as u64 > max
            {
                out.push(Cause::new(
                    "FieldValueTooMany",
                    name.clone(),
                    format!("Too many: {}: must have at most {max} items", o.len()),
                ));
            }
            if let Some(min) = s.min_properties
                && (o.len() as u64) < min
            {
                out.push(Cause::new(
                    "FieldValueInvalid",
                    name.clone(),
                    format!(
                        "Invalid value: {}: {name} in body should have at least {min} properties",
                        o.len()
                    ),
                ));
            }
            let additional = node.additional();
            for (k, x) in o {
                if let Some(child) = node.field(k).or(additional) {
                    validate_at(x, child, &join(path, k), out);
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
    for sub in &s.all_of {
        validate_at(v, node.definitions().node(sub), path, out);
    }
    if !s.any_of.is_empty() || !s.one_of.is_empty() {
        let passes = |sub: &Schema| {
            let mut errs = Vec::new();
            validate_at(v, node.definitions().node(sub), path, &mut errs);
            errs.is_empty()
        };
        if !s.any_of.is_empty() && !s.any_of.iter().any(passes) {
            out.push(Cause::new(
                "FieldValueInvalid",
                name.clone(),
                format!("Invalid value: {}: {name} in body must be of one of the allowed schemas (anyOf)", quote_short(v)),
            ));
        }
        if !s.one_of.is_empty() && s.one_of.iter().filter(|x| passes(x)).count() != 1 {
            out.push(Cause::new(
                "FieldValueInvalid",
                name.clone(),
                format!("Invalid value: {}: {name} in body must validate one and only one schema (oneOf)", quote_short(v)),
            ));
        }
    }
    if let Some(not) = &s.not {
        let mut errs = Vec::new();
        validate_at(v, node.definitions().node(not), path, &mut errs);
        if errs.is_empty() {
            out.push(Cause::new(
                "FieldValueInvalid",
                name,
                format!(
                    "Invalid value: {}: {} in body should not match the schema (not)",
                    quote_short(v),
                    field_name(path)
                ),
            ));
        }
    }
}

fn quote_short(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => format!("\"{}\"", json_type(v)),
        other => quote(other),
    }
}

fn num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn validate_string(st: &str, s: &Schema, name: &str, out: &mut Vec<Cause>) {
    let chars = st.chars().count() as u64;
    // kube-apiserver reports only the first failing check of a string.
    if let Some(min) = s.min_length
        && chars < min
    {
        out.push(Cause::new(
            "FieldValueInvalid",
            name,
            format!("Invalid value: {st:?}: {name} in body should be at least {min} chars long"),
        ));
        return;
    }
    if let Some(max) = s.max_length
        && chars > max
    {
        out.push(Cause::new(
            "FieldValueTooLong",
            name,
            format!("Too long: may not be more than {max} bytes"),
        ));
        return;
    }
    if let Some(p) = &s.pattern {
        match compiled(p) {
            Some(re) if !re.is_match(st) => {
                out.push(Cause::new(
                    "FieldValueInvalid",
                    name,
                    format!("Invalid value: {st:?}: {name} in body should match '{p}'"),
                ));
                return;
            }
            _ => {}
        }
    }
    if let Some(f) = &s.format
        && !format_ok(f, st)
    {
        out.push(Cause::new(
            "FieldValueTypeInvalid",
            name,
            format!("Invalid value: {st:?}: {name} in body must be of type {f}: {st:?}"),
        ));
    }
}

/// Compiled `pattern`s, shared by every validation (a CRD's patterns are few; one compile each,
/// not one per value). Bounded: cleared when it reaches [`PATTERN_CACHE`] entries.
fn compiled(pattern: &str) -> Option<std::sync::Arc<regex::Regex>> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Arc<regex::Regex>>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(re) = cache.get(pattern) {
        return re.clone();
    }
    if cache.len() >= PATTERN_CACHE {
        cache.clear();
    }
    let re = regex::Regex::new(pattern).ok().map(Arc::new);
    cache.insert(pattern.to_string(), re.clone());
    re
}

const PATTERN_CACHE: usize = 4096;

/// The string formats kube-apiserver checks in CRD schemas (others are accepted as written).
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => {
            jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.f%:z", s.replace('Z', "+00:00")).is_ok()
                || s.parse::<jiff::Timestamp>().is_ok()
        }
        "date" => s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10,
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        "uuid" => is_uuid(s),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
        }),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        _ => true,
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The first type mismatch of a built-in kind's body, worded as the Go decoder words it
/// (kube-apiserver answers 400 with it): `json: cannot unmarshal string into Go struct field
/// DeploymentSpec.spec.replicas of type int32`.
pub fn builtin_type_error(obj: &Value, node: Node<'_>) -> Option<String> {
    let owner = node.reference().map(short_name).unwrap_or_default();
    type_error_at(obj, node, "", &owner)
}

fn short_name(def: &str) -> String {
    def.rsplit('.').next().unwrap_or(def).to_string()
}

fn go_type(node: Node<'_>) -> String {
    let s = node.schema();
    if let Some(r) = node.reference() {
        let mut parts = r.rsplit('.');
        let kind = parts.next().unwrap_or(r);
        let version = parts.next().unwrap_or("");
        return match r {
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => "resource.Quantity".into(),
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => "intstr.IntOrString".into(),
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => {
                format!("{version}.{kind}")
            }
            _ => format!("{version}.{kind}"),
        };
    }
    match s.ty {
        Type::String => "string".into(),
        Type::Boolean => "bool".into(),
        Type::Integer => match s.format.as_deref() {
            Some("int32") => "int32".into(),
            _ => "int64".into(),
        },
        Type::Number => "float64".into(),
        Type::Array => format!(
            "[]{}",
            node.items()
                .map(go_type)
                .unwrap_or_else(|| "interface {}".into())
        ),
        Type::Object => match node.additional() {
            Some(a) => format!("map[string]{}", go_type(a)),
            None => "map[string]interface {}".into(),
        },
        Type::Unspecified => "interface {}".into(),
    }
}

fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

fn is_quantity(node: Node<'_>) -> bool {
    node.reference() == Some("io.k8s.apimachinery.pkg.api.resource.Quantity")
}

fn type_error_at(v: &Value, node: Node<'_>, path: &str, owner: &str) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let mismatch = || {
        Some(format!(
            "json: cannot unmarshal {} into Go struct field {owner}.{path} of type {}",
            go_json_type(v),
            go_type(node)
        ))
    };
    if node.is_int_or_string() || is_quantity(node) {
        return if v.is_string() || v.is_number() {
            None
        } else {
            mismatch()
        };
    }
    let s = node.schema();
    match s.ty {
        Type::Unspecified => None,
        Type::Integer if json_type(v) != "integer" => mismatch(),
        Type::Integer | Type::Number | Type::String | Type::Boolean if !type_matches(s.ty, v) => {
            mismatch()
        }
        Type::Array => {
            let Value::Array(xs) = v else {
                return mismatch();
            };
            let items = node.items()?;
            xs.iter().find_map(|x| type_error_at(x, items, path, owner))
        }
        Type::Object => {
            let Value::Object(o) = v else {
                return mismatch();
            };
            let child_owner = node.reference().map(short_name);
            let owner = child_owner.as_deref().unwrap_or(owner);
            let additional = node.additional();
            o.iter().find_map(|(k, x)| {
                // Go names struct fields in the path, never map keys.
                match node.field(k) {
                    Some(child) => type_error_at(x, child, &join(path, k), owner),
                    None => type_error_at(x, additional?, path, owner),
                }
            })
        }
        _ => None,
    }
}

/// Paths of fields that appear twice in a JSON body (`spec.replicas`,
/// `spec.template.spec.containers[0].name`), which `fieldValidation=Strict` rejects and `Warn`
/// reports. A body that is not JSON has none (its parse error is reported elsewhere).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Walk {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    out
}

struct Walk<'a> {
    path: String,
    out: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walk {
                path: format!("{}[{i}]", self.path),
                out: &mut *self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = join(&self.path, &k);
            if !seen.insert(k) {
                self.out.push(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

/// Whether a CRD version's `openAPIV3Schema` is structural, as kube-apiserver requires; one
/// cause per violation, paths under `base` (e.g. `spec.validation.openAPIV3Schema`).
pub fn structural_errors(schema: &Value, base: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(t) = schema.get("type").and_then(Value::as_str)
        && t != "object"
    {
        out.push(Cause::new(
            "FieldValueInvalid",
            format!("{base}.type"),
            format!("Invalid value: {t:?}: must be object at the root"),
        ));
        return out;
    }
    let mut forbidden = Vec::new();
    structural_at(schema, base, true, &mut forbidden, &mut out);
    if !forbidden.is_empty() {
        return forbidden;
    }
    out
}

fn structural_at(
    s: &Value,
    path: &str,
    root: bool,
    forbidden: &mut Vec<Cause>,
    out: &mut Vec<Cause>,
) {
    let Some(o) = s.as_object() else { return };
    if o.contains_key("$ref") {
        forbidden.push(Cause::new(
            "FieldValueForbidden",
            format!("{path}.$ref"),
            "Forbidden: $ref is not supported",
        ));
    }
    if o.contains_key("properties") && o.contains_key("additionalProperties") {
        forbidden.push(Cause::new(
            "FieldValueForbidden",
            format!("{path}.additionalProperties"),
            "Forbidden: additionalProperties and properties are mutual exclusive",
        ));
    }
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
    if ty.is_empty()
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
        && !root
    {
        out.push(Cause::new(
            "FieldValueRequired",
            format!("{path}.type"),
            "Required value: must not be empty for specified object fields",
        ));
    }
    if ty.is_empty() && root {
        out.push(Cause::new(
            "FieldValueRequired",
            format!("{path}.type"),
            "Required value: must not be empty at the root",
        ));
    }
    if let Some(p) = o.get("pattern").and_then(Value::as_str)
        && compiled(p).is_none()
    {
        out.push(Cause::new(
            "FieldValueInvalid",
            format!("{path}.pattern"),
            format!("Invalid value: {p:?}: must be a valid regular expression, but isn't"),
        ));
    }
    if ty == "array" && !o.contains_key("items") {
        out.push(Cause::new(
            "FieldValueRequired",
            format!("{path}.items"),
            "Required value: must be specified",
        ));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            structural_at(v, &format!("{path}.properties[{k}]"), false, forbidden, out);
        }
    }
    if let Some(items) = o.get("items") {
        structural_at(items, &format!("{path}.items"), false, forbidden, out);
    }
    if let Some(a) = o.get("additionalProperties").filter(|a| a.is_object()) {
        structural_at(
            a,
            &format!("{path}.additionalProperties"),
            false,
            forbidden,
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The schema of the CRD these expectations were read off kube-apiserver 1.37.2 with.
    fn widget() -> Schema {
        Schema::from_openapi(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "minItems": 1},
                "opt": {"type": "object", "nullable": true, "properties": {"a": {"type": "string", "default": "x"}}},
                "port": {"x-kubernetes-int-or-string": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "emb": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "properties": {"foo": {"type": "string"}}},
                "ratio": {"type": "number", "multipleOf": 0.5},
                "when": {"type": "string", "format": "date-time"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}
            }},
            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
        }}))
        .unwrap()
    }

    fn causes(obj: Value) -> Vec<(String, String, String)> {
        let s = widget();
        let mut c: Vec<_> = validate_custom(&obj, Node::standalone(&s))
            .into_iter()
            .map(|c| (c.field, c.reason, c.message))
            .collect();
        c.sort();
        c
    }

    fn cause(field: &str, reason: &str, message: &str) -> (String, String, String) {
        (field.into(), reason.into(), message.into())
    }

    #[test]
    fn custom_resources_get_kube_apiservers_causes() {
        let cases = vec![
            (
                json!({"spec": {}}),
                vec![cause("spec.size", "FieldValueRequired", "Required value")],
            ),
            (
                json!({"spec": {"size": "x", "color": "green", "name": "A", "tags": [], "ratio": 0.3,
                                "when": "notadate", "labels": {"a": 1}}}),
                vec![
                    cause(
                        "spec.color",
                        "FieldValueNotSupported",
                        "Unsupported value: \"green\": supported values: \"red\", \"blue\"",
                    ),
                    cause(
                        "spec.labels.a",
                        "FieldValueTypeInvalid",
                        "Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\"",
                    ),
                    cause(
                        "spec.name",
                        "FieldValueInvalid",
                        "Invalid value: \"A\": spec.name in body should be at least 2 chars long",
                    ),
                    cause(
                        "spec.ratio",
                        "FieldValueInvalid",
                        "Invalid value: 0.3: spec.ratio in body should be a multiple of 0.5",
                    ),
                    cause(
                        "spec.size",
                        "FieldValueTypeInvalid",
                        "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
                    ),
                    cause(
                        "spec.tags",
                        "FieldValueInvalid",
                        "Invalid value: 0: spec.tags in body should have at least 1 items",
                    ),
                    cause(
                        "spec.when",
                        "FieldValueTypeInvalid",
                        "Invalid value: \"notadate\": spec.when in body must be of type date-time: \"notadate\"",
                    ),
                ],
            ),
            (
                json!({"spec": {"size": 11, "name": "abcdefg", "tags": ["a", "b", "c"]}}),
                vec![
                    cause(
                        "spec.name",
                        "FieldValueTooLong",
                        "Too long: may not be more than 5 bytes",
                    ),
                    cause(
                        "spec.size",
                        "FieldValueInvalid",
                        "Invalid value: 11: spec.size in body should be less than or equal to 10",
                    ),
                    cause(
                        "spec.tags",
                        "FieldValueTooMany",
                        "Too many: 3: must have at most 2 items",
                    ),
                ],
            ),
            (
                json!({"spec": {"size": 5, "name": "ab1", "port": 1.5}}),
                vec![
                    cause(
                        "spec.name",
                        "FieldValueInvalid",
                        "Invalid value: \"ab1\": spec.name in body should match '^[a-z]+$'",
                    ),
                    cause(
                        "spec.port",
                        "FieldValueTypeInvalid",
                        "Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\"",
                    ),
                ],
            ),
            (
                json!({"spec": {"size": 5, "port": "http", "opt": null, "when": "2026-12-02T02:09:03Z"},
                       "metadata": {"name": "anything"}, "apiVersion": "example.com/v1", "kind": "Widget"}),
                vec![],
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(causes(obj.clone()), want, "{obj}");
        }
    }

    #[test]
    fn pruning_defaulting_and_unknown_fields_as_kube_apiserver() {
        let s = widget();
        let node = Node::standalone(&s);
        let mut obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1", "bogus": 1},
            "spec": {"size": 3, "unknown": 1, "opt": {}, "free": {"z": 1}, "color": null,
                     "labels": {"a": null},
                     "emb": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "bogus": 1},
                             "foo": "y", "bar": 2}},
            "extra": 1});
        let mut unknown = prune(&mut obj, node, true);
        unknown.sort();
        assert_eq!(
            unknown,
            [
                "extra",
                "metadata.bogus",
                "spec.emb.bar",
                "spec.emb.metadata.bogus",
                "spec.unknown"
            ]
        );
        assert!(
            defaults_missing(&obj, node),
            "color has a default and is absent"
        );
        apply_defaults(&mut obj, node);
        assert!(!defaults_missing(&obj, node), "every default is in place");
        assert_eq!(
            obj,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
                "spec": {"size": 3, "opt": {"a": "x"}, "free": {"z": 1}, "color": "red", "labels": {},
                         "emb": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n"}, "foo": "y"}}})
        );
        // A nullable null stays null and is not defaulted.
        let mut obj = json!({"spec": {"size": 1, "opt": null}});
        prune(&mut obj, node, true);
        assert!(defaults_missing(&obj, node));
        apply_defaults(&mut obj, node);
        assert!(
            !defaults_missing(&obj, node),
            "a nullable null needs no default"
        );
        assert_eq!(
            obj,
            json!({"spec": {"size": 1, "opt": null, "color": "red"}})
        );
    }

    #[test]
    fn built_in_kinds_report_unknown_fields_and_go_decoder_type_errors() {
        let b = builtins();
        let d = b.kind("apps", "v1", "Deployment").unwrap();
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d1", "labels": {"a": "b"}},
            "spec": {"replcas": 1, "replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i", "imagee": "x",
                        "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                        "ports": [{"containerPort": "80"}]}]}}}});
        assert_eq!(
            prune(&mut obj, d, false),
            ["spec.replcas", "spec.template.spec.containers[0].imagee"]
        );
        assert_eq!(
            builtin_type_error(&obj, d).as_deref(),
            Some(
                "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"
            )
        );
        let cases = [
            (
                json!({"spec": {"replicas": "two"}}),
                Some(
                    "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
                ),
            ),
            (
                json!({"metadata": {"labels": {"a": 1}}}),
                Some(
                    "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
                ),
            ),
            (
                json!({"spec": {"paused": "yes"}}),
                Some(
                    "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool",
                ),
            ),
            (
                json!({"spec": {"replicas": 2, "paused": null, "template": {"spec": {"containers": [{"name": "a"}]}}}}),
                None,
            ),
        ];
        for (obj, want) in cases {
            assert_eq!(builtin_type_error(&obj, d).as_deref(), want, "{obj}");
        }
    }

    #[test]
    fn omitempty_drops_empty_lists_and_maps_but_not_raw_json() {
        let b = builtins();
        let d = b.kind("apps", "v1", "Deployment").unwrap();
        let mut obj = json!({"metadata": {"finalizers": [], "labels": {}, "name": "x"},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "args": [], "resources": {}}]}}}});
        drop_empty(&mut obj, d);
        assert_eq!(
            obj,
            json!({"metadata": {"name": "x"},
                "spec": {"template": {"spec": {"containers": [{"name": "a", "resources": {}}]}}}})
        );
        let crd = b
            .kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            .unwrap();
        let mut obj = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"m": {"type": "array", "default": [], "items": {"type": "string"}}}}}}]}});
        let want = obj.clone();
        drop_empty(&mut obj, crd);
        assert_eq!(obj, want);
    }

    #[test]
    fn duplicate_fields_are_found_with_their_paths() {
        let body = br#"{"a":1,"spec":{"replicas":1,"replicas":2,"list":[{"x":1,"x":2}]},"a":3}"#;
        assert_eq!(
            duplicate_fields(body),
            ["spec.replicas", "spec.list[0].x", "a"]
        );
        assert!(duplicate_fields(b"not json").is_empty());
    }

    #[test]
    fn crd_schemas_must_be_structural() {
        let base = "spec.validation.openAPIV3Schema";
        let fields = |s: Value| {
            let mut f: Vec<(String, String)> = structural_errors(&s, base)
                .into_iter()
                .map(|c| (c.field, c.message))
                .collect();
            f.sort();
            f
        };
        assert_eq!(
            fields(
                json!({"type": "object", "properties": {"spec": {"properties": {
                "a": {"type": "array"}, "d": {"type": "object", "properties": {"y": {}}}}}}})
            ),
            vec![
                (
                    format!("{base}.properties[spec].properties[a].items"),
                    "Required value: must be specified".to_string()
                ),
                (
                    format!("{base}.properties[spec].properties[d].properties[y].type"),
                    "Required value: must not be empty for specified object fields".to_string()
                ),
                (
                    format!("{base}.properties[spec].type"),
                    "Required value: must not be empty for specified object fields".to_string()
                ),
            ]
        );
        assert_eq!(
            fields(
                json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "b": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
                "c": {"$ref": "#/x"}, "e": {"type": "array"}}}}})
            ),
            vec![
                (
                    format!("{base}.properties[spec].properties[b].additionalProperties"),
                    "Forbidden: additionalProperties and properties are mutual exclusive"
                        .to_string()
                ),
                (
                    format!("{base}.properties[spec].properties[c].$ref"),
                    "Forbidden: $ref is not supported".to_string()
                ),
            ]
        );
        assert_eq!(
            fields(json!({"type": "string"})),
            vec![(
                format!("{base}.type"),
                "Invalid value: \"string\": must be object at the root".to_string()
            )]
        );
        assert!(fields(json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true}, "p": {"x-kubernetes-int-or-string": true}}})).is_empty());
    }
}
