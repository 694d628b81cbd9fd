//! Label selectors (equality- and set-based) and the field selectors kube-apiserver supports
//! generically (`metadata.name`, `metadata.namespace`). Parsing and matching only.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::errors::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector(Vec<Req>);

/// Split on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl LabelSelector {
    /// Parse the `labelSelector` query syntax.
    pub(crate) fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::bad_request(format!("unable to parse requirement: {why}"));
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Req::NotExists(key.trim().to_string())
            } else if let Some((key, rest)) = split_set_op(part) {
                let (op, rest) = rest;
                let inner = rest
                    .trim()
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| bad(&format!("{part:?}: expected a parenthesised value set")))?;
                let values: BTreeSet<String> =
                    inner.split(',').map(|v| v.trim().to_string()).collect();
                if let Some(v) = values.iter().find(|v| !valid_value(v)) {
                    return Err(bad(&format!("invalid label value {v:?}")));
                }
                if op == "in" {
                    Req::In(key.to_string(), values)
                } else {
                    Req::NotIn(key.to_string(), values)
                }
            } else if let Some((k, v)) = part.split_once("!=") {
                Req::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else {
                Req::Exists(part.to_string())
            };
            let (key, value) = match &req {
                Req::Eq(k, v) | Req::NotEq(k, v) => (k, Some(v)),
                Req::In(k, _) | Req::NotIn(k, _) | Req::Exists(k) | Req::NotExists(k) => (k, None),
            };
            if !valid_key(key) {
                return Err(bad(&format!("invalid label key {key:?}")));
            }
            if let Some(v) = value
                && !valid_value(v)
            {
                return Err(bad(&format!("invalid label value {v:?}")));
            }
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// A `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`); an empty one
    /// matches everything. An unknown operator matches nothing.
    pub(crate) fn of_object(selector: &Value) -> Self {
        let mut reqs = Vec::new();
        if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Req::Eq(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        for e in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: BTreeSet<String> = e["values"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            reqs.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => Req::In(key, values),
                "NotIn" => Req::NotIn(key, values),
                "Exists" => Req::Exists(key),
                "DoesNotExist" => Req::NotExists(key),
                _ => Req::In(key, BTreeSet::new()),
            });
        }
        LabelSelector(reqs)
    }

    /// Match against an object's `metadata.labels`.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let labels = object.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, set) => get(k).is_some_and(|v| set.contains(v)),
            Req::NotIn(k, set) => get(k).is_none_or(|v| !set.contains(v)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

fn split_set_op(part: &str) -> Option<(&str, (&'static str, &str))> {
    for op in [" notin ", " in "] {
        if let Some(idx) = part.find(op) {
            let key = part[..idx].trim();
            let rest = &part[idx + op.len()..];
            return Some((key, (op.trim(), rest)));
        }
    }
    for op in ["notin(", "in("] {
        if let Some(idx) = part.find(op) {
            let key = part[..idx].trim();
            let rest = &part[idx + op.len() - 1..];
            return Some((key, (op.trim_end_matches('('), rest)));
        }
    }
    None
}

/// Where a field selector's requirement reads its value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
    /// One of the kind's own labels: a JSON pointer and how the value renders.
    Own(&'static str, FieldType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    field: Field,
    value: String,
    equal: bool,
}

/// A parsed field selector over `metadata.name` / `metadata.namespace`, and the kind's own
/// field labels (see [`kind_fields`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector(Vec<FieldReq>);

/// How a field label's value is read: a string, or a boolean or integer rendered as text with
/// Go's zero value when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Str,
    Bool,
    Int,
}

/// The field labels kube-apiserver's strategies add for a kind (`GetAttrs`), with where each
/// is read from.
fn kind_fields(group: &str, kind: &str) -> &'static [(&'static str, &'static str, FieldType)] {
    use FieldType::{Bool, Int, Str};
    match (group, kind) {
        ("", "Pod") => &[
            ("spec.nodeName", "/spec/nodeName", Str),
            ("spec.restartPolicy", "/spec/restartPolicy", Str),
            ("spec.schedulerName", "/spec/schedulerName", Str),
            ("spec.serviceAccountName", "/spec/serviceAccountName", Str),
            ("spec.hostNetwork", "/spec/hostNetwork", Bool),
            ("status.phase", "/status/phase", Str),
            ("status.podIP", "/status/podIP", Str),
            ("status.nominatedNodeName", "/status/nominatedNodeName", Str),
        ],
        ("", "Node") => &[("spec.unschedulable", "/spec/unschedulable", Bool)],
        ("", "Secret") => &[("type", "/type", Str)],
        ("", "Namespace") => &[("status.phase", "/status/phase", Str)],
        ("", "ReplicationController") | ("apps", "ReplicaSet") => {
            &[("status.replicas", "/status/replicas", Int)]
        }
        ("batch", "Job") => &[("status.successful", "/status/succeeded", Int)],
        ("", "Event") => &[
            ("involvedObject.kind", "/involvedObject/kind", Str),
            ("involvedObject.namespace", "/involvedObject/namespace", Str),
            ("involvedObject.name", "/involvedObject/name", Str),
            ("involvedObject.uid", "/involvedObject/uid", Str),
            (
                "involvedObject.apiVersion",
                "/involvedObject/apiVersion",
                Str,
            ),
            (
                "involvedObject.resourceVersion",
                "/involvedObject/resourceVersion",
                Str,
            ),
            ("involvedObject.fieldPath", "/involvedObject/fieldPath", Str),
            ("reason", "/reason", Str),
            ("reportingComponent", "/reportingComponent", Str),
            ("source", "/source/component", Str),
            ("type", "/type", Str),
        ],
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            &[("spec.signerName", "/spec/signerName", Str)]
        }
        _ => &[],
    }
}

impl FieldSelector {
    /// Parse the `fieldSelector` query syntax; unknown fields are a 400 like kube-apiserver.
    pub(crate) fn parse(s: &str, kind: &str, api_version: &str) -> Result<Self> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v, equal) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, true)
            } else {
                return Err(Error::bad_request(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            let k = k.trim();
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            let own = kind_fields(group, kind);
            let field = match k {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                _ => match own.iter().find(|(label, ..)| *label == k) {
                    Some(&(_, pointer, ty)) => Field::Own(pointer, ty),
                    // Kinds with field labels of their own say only this.
                    None if !own.is_empty() => {
                        return Err(Error::bad_request(format!(
                            "field label not supported: {k}"
                        )));
                    }
                    None => {
                        return Err(Error::bad_request(format!(
                            "{k:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                        )));
                    }
                },
            };
            reqs.push(FieldReq {
                field,
                value: v.trim().to_string(),
                equal,
            });
        }
        Ok(FieldSelector(reqs))
    }

    /// The exact name asked for, if any (lets lists skip scanning).
    pub(crate) fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field == Field::Name && r.equal)
            .map(|r| r.value.as_str())
    }

    /// Match against an object.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|r| {
            let actual = match r.field {
                Field::Name => str_at(object, "/metadata/name"),
                Field::Namespace => str_at(object, "/metadata/namespace"),
                Field::Own(pointer, FieldType::Str) => str_at(object, pointer),
                Field::Own(pointer, FieldType::Bool) => object
                    .pointer(pointer)
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .to_string(),
                Field::Own(pointer, FieldType::Int) => object
                    .pointer(pointer)
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .to_string(),
            };
            (actual == r.value) == r.equal
        })
    }
}

fn str_at(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=db", false),
            ("app in (web,db)", true),
            ("app notin (web,db)", false),
            ("tier,app", true),
            ("!tier", false),
            ("!missing", true),
            ("missing notin (x)", true),
            ("app=web,tier in (back)", false),
            ("name=helm-rel,owner!=helm", false),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).expect(sel);
            assert_eq!(s.matches(&o), want, "{sel}");
        }
    }

    #[test]
    fn bad_label_selector_is_rejected() {
        assert!(LabelSelector::parse("app in web").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
    }

    #[test]
    fn field_selectors_support_name_and_namespace_only() {
        let o = obj(json!({}));
        let s = FieldSelector::parse("metadata.name=a,metadata.namespace!=x", "Pod", "v1")
            .expect("parse");
        assert!(s.matches(&o));
        assert_eq!(s.exact_name(), Some("a"));
        assert!(FieldSelector::parse("spec.foo=a", "ConfigMap", "v1").is_err());
    }

    #[test]
    fn kinds_have_their_own_field_labels() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        for (sel, want) in [
            ("spec.nodeName=n1", true),
            ("spec.nodeName!=n1", false),
            ("spec.nodeName=n2,status.phase=Running", false),
            ("status.phase=Running,metadata.name=p", true),
            ("spec.hostNetwork=false", true),
            ("spec.hostNetwork=true", false),
            ("status.podIP=", true),
        ] {
            let s = FieldSelector::parse(sel, "Pod", "v1").expect(sel);
            assert_eq!(s.matches(&pod), want, "{sel}");
        }
        let rs = json!({"metadata": {"name": "r"}, "status": {"replicas": 3}});
        let s = FieldSelector::parse("status.replicas=3", "ReplicaSet", "apps/v1").expect("rs");
        assert!(s.matches(&rs));
        let unknown = |kind, api_version| {
            FieldSelector::parse("spec.foo=a", kind, api_version)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        // Read off kube-apiserver 1.37: kinds with labels of their own give the short message.
        assert!(
            unknown("Pod", "v1").ends_with("field label not supported: spec.foo"),
            "{}",
            unknown("Pod", "v1")
        );
        assert!(
            unknown("ConfigMap", "v1").ends_with(
                r#""spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace""#
            ),
            "{}",
            unknown("ConfigMap", "v1")
        );
    }
}
