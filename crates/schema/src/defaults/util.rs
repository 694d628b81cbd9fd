//! Helpers shared by the per-group defaulters and validators: map access that treats `null` as
//! absent (as the Go decoder does for pointers), kube's field-error messages, and the name,
//! quantity and label-selector checks of apimachinery.

use serde_json::{Map, Value, json};

use crate::Cause;

/// A JSON object.
pub(crate) type Obj = Map<String, Value>;

/// Whether `key` is absent or `null` in `m`.
pub(crate) fn absent(m: &Obj, key: &str) -> bool {
    m.get(key).is_none_or(Value::is_null)
}

/// Sets `key` to `v` when it is absent or `null`.
pub(crate) fn set_default(m: &mut Obj, key: &str, v: Value) {
    if absent(m, key) {
        m.insert(key.to_string(), v);
    }
}

/// The object at `key`, created (`{}`) when absent or `null`; `None` when it is another type.
pub(crate) fn ensure_obj<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    if absent(m, key) {
        m.insert(key.to_string(), json!({}));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key` when it is one.
pub(crate) fn obj_at<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Every object in the array at `key`.
pub(crate) fn each_obj<'a>(m: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|a| a.iter_mut().filter_map(Value::as_object_mut))
}

/// A string field, `""` when absent or not a string.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An integer field, when present and integral.
pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// A field, `None` when absent or `null`.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The elements of an array field (empty when absent).
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Whether a map or array field is absent or empty.
pub(crate) fn empty(v: &Value, key: &str) -> bool {
    match v.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(x)) => x.is_empty(),
        Some(_) => false,
    }
}

/// `base.key`, or `key` when `base` is empty.
pub(crate) fn child(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// `base[i]`.
pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `base[key]`, kube's path for a map entry.
pub(crate) fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// A value as kube-apiserver 1.37 prints it in an error: strings quoted, numbers bare, `null`,
/// and JSON for objects and arrays.
pub(crate) fn fmt_value(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `Required value` (with `: detail` when given).
pub(crate) fn required(field: impl Into<String>, detail: &str) -> Cause {
    let msg = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    Cause::new("FieldValueRequired", field, msg)
}

/// `Invalid value: <v>: detail`.
pub(crate) fn invalid(field: impl Into<String>, v: &Value, detail: &str) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {}: {detail}", fmt_value(v)),
    )
}

/// `Invalid value: <v>: detail` with the value already rendered.
pub(crate) fn invalid_raw(field: impl Into<String>, rendered: &str, detail: &str) -> Cause {
    Cause::new(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {rendered}: {detail}"),
    )
}

/// `Unsupported value: <v>: supported values: "a", "b"`.
pub(crate) fn not_supported(field: impl Into<String>, v: &Value, supported: &[&str]) -> Cause {
    not_supported_raw(field, &fmt_value(v), supported)
}

/// [`not_supported`] with the value already rendered.
pub(crate) fn not_supported_raw(
    field: impl Into<String>,
    rendered: &str,
    supported: &[&str],
) -> Cause {
    let list: Vec<String> = supported.iter().map(|x| format!("\"{x}\"")).collect();
    Cause::new(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: {rendered}: supported values: {}",
            list.join(", ")
        ),
    )
}

/// `Duplicate value: <v>`.
pub(crate) fn duplicate(field: impl Into<String>, v: &Value) -> Cause {
    Cause::new(
        "FieldValueDuplicate",
        field,
        format!("Duplicate value: {}", fmt_value(v)),
    )
}

/// `Forbidden: detail`.
pub(crate) fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
    Cause::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
}

/// `Not found: <v>`.
pub(crate) fn not_found(field: impl Into<String>, v: &Value) -> Cause {
    Cause::new(
        "FieldValueNotFound",
        field,
        format!("Not found: {}", fmt_value(v)),
    )
}

/// `Invalid value: <v>: must be greater than or equal to 0` when the integer at `key` is negative.
pub(crate) fn non_negative(out: &mut Vec<Cause>, v: &Value, key: &str, field: &str) {
    if let Some(n) = int(v, key)
        && n < 0
    {
        out.push(invalid(
            field,
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// A field that may not change on update: `Invalid value: <new>: field is immutable`.
pub(crate) fn immutable(out: &mut Vec<Cause>, new: &Value, old: &Value, key: &str, field: &str) {
    let n = new.get(key).cloned().unwrap_or(Value::Null);
    let o = old.get(key).cloned().unwrap_or(Value::Null);
    if n != o {
        out.push(invalid(field, &n, "field is immutable"));
    }
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn label_shape(x: &str) -> bool {
    let b = x.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// apimachinery's `IsDNS1123Label`.
pub(crate) fn dns1123_label(x: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if x.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !label_shape(x) {
        errs.push(DNS1123_LABEL_MSG.to_string());
    }
    errs
}

/// apimachinery's `IsDNS1123Subdomain`.
pub(crate) fn dns1123_subdomain(x: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if x.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !x.split('.').all(label_shape) {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    errs
}

/// apimachinery's `IsConfigMapKey` (also used for Secret keys).
pub(crate) fn config_key(x: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if x.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let ok = !x.is_empty()
        && x.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !ok {
        errs.push(CONFIG_KEY_MSG.to_string());
    }
    if x == "." {
        errs.push("must not be '.'".to_string());
    } else if x == ".." {
        errs.push("must not be '..'".to_string());
    } else if x.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// apimachinery's `IsValidPortName` (IANA service names: container port names, named target
/// ports).
pub(crate) fn port_name(x: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if x.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if x.is_empty()
        || !x
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !x.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if x.contains("--") {
        errs.push("must not contain consecutive hyphens (-)".to_string());
    }
    if x.starts_with('-') || x.ends_with('-') {
        errs.push("must not begin or end with a hyphen (-)".to_string());
    }
    errs
}

/// One `Invalid` cause per message of a name check.
pub(crate) fn name_errors(out: &mut Vec<Cause>, field: &str, x: &str, errs: Vec<String>) {
    for e in errs {
        out.push(invalid(field, &json!(x), &e));
    }
}

/// A port number check: `must be between 1 and 65535, inclusive`.
pub(crate) fn port_range(out: &mut Vec<Cause>, field: &str, n: i64) {
    if !(1..=65535).contains(&n) {
        out.push(invalid(
            field,
            &json!(n),
            "must be between 1 and 65535, inclusive",
        ));
    }
}

/// A resource quantity (`500m`, `1Gi`, `1e3`) as a number, for comparisons; `None` when it does
/// not parse.
pub(crate) fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let x = v.as_str()?.trim();
    let split = x
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(x.len());
    let (num, suffix) = x.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// A selector that is not empty must select the template's labels; else kube's 422 on
/// `field` (the template's labels).
pub(crate) fn selector_selects_template(out: &mut Vec<Cause>, spec: &Value, field: String) {
    let labels = get(spec, "template")
        .and_then(|t| get(t, "metadata"))
        .and_then(|m| get(m, "labels"));
    let sel = get(spec, "selector");
    if !sel.is_some_and(selector_empty) && !selector_matches(sel, labels) {
        out.push(invalid(
            field,
            labels.unwrap_or(&Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
}

/// Whether a label selector (`matchLabels`, `matchExpressions`) matches `labels`. A missing
/// selector matches nothing; an empty one matches everything.
pub(crate) fn selector_matches(sel: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(sel) = sel.filter(|x| !x.is_null()) else {
        return false;
    };
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if label(k) != v.as_str() {
                return false;
            }
        }
    }
    for e in arr(sel, "matchExpressions") {
        let k = s(e, "key");
        let values: Vec<&str> = arr(e, "values").iter().filter_map(Value::as_str).collect();
        let ok = match s(e, "operator") {
            "In" => label(k).is_some_and(|l| values.contains(&l)),
            "NotIn" => label(k).is_none_or(|l| !values.contains(&l)),
            "Exists" => label(k).is_some(),
            "DoesNotExist" => label(k).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a selector has neither `matchLabels` nor `matchExpressions`.
pub(crate) fn selector_empty(sel: &Value) -> bool {
    empty(sel, "matchLabels") && empty(sel, "matchExpressions")
}
