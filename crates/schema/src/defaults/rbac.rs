//! rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

use serde_json::{Value, json};

use super::util::*;
use crate::Cause;

const GROUP: &str = "rbac.authorization.k8s.io";

/// Defaults of an RBAC kind: roles always carry `rules` (`null` when absent, as the Go type has
/// no `omitempty`); User and Group subjects get the RBAC API group.
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    match kind {
        "Role" | "ClusterRole" => {
            obj.entry("rules").or_insert(Value::Null);
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            for sub in each_obj(obj, "subjects") {
                let k = sub.get("kind").and_then(Value::as_str).unwrap_or("");
                if (k == "User" || k == "Group")
                    && sub
                        .get("apiGroup")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                {
                    sub.insert("apiGroup".into(), json!(GROUP));
                }
            }
        }
        _ => {}
    }
}

/// Validation of an RBAC kind; `old` on update.
pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut late = Vec::new();
    match kind {
        "Role" | "ClusterRole" => {
            for (i, r) in arr(obj, "rules").iter().enumerate() {
                rule(&mut out, &mut late, r, kind == "Role", &index("rules", i));
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            binding(&mut out, &mut late, obj, kind == "ClusterRoleBinding");
            if let Some(old) = old
                && get(obj, "roleRef") != get(old, "roleRef")
            {
                let r = get(obj, "roleRef").cloned().unwrap_or(json!({}));
                let rendered = format!(
                    "{{\"APIGroup\":{},\"Kind\":{},\"Name\":{}}}",
                    fmt_value(&json!(s(&r, "apiGroup"))),
                    fmt_value(&json!(s(&r, "kind"))),
                    fmt_value(&json!(s(&r, "name")))
                );
                out.push(invalid_raw("roleRef", &rendered, "field is immutable"));
            }
        }
        _ => {}
    }
    // kube 1.37 reports the declaratively validated `Required` fields after the others.
    out.extend(late);
    out
}

fn rule(out: &mut Vec<Cause>, late: &mut Vec<Cause>, r: &Value, namespaced: bool, p: &str) {
    if empty(r, "verbs") {
        late.push(required(child(p, "verbs"), ""));
    }
    if !empty(r, "nonResourceURLs") {
        let urls = r.get("nonResourceURLs").cloned().unwrap_or(Value::Null);
        if namespaced {
            out.push(invalid(
                child(p, "nonResourceURLs"),
                &urls,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !empty(r, "apiGroups") || !empty(r, "resources") || !empty(r, "resourceNames") {
            out.push(invalid(
                child(p, "nonResourceURLs"),
                &urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if empty(r, "apiGroups") {
        out.push(required(
            child(p, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if empty(r, "resources") {
        out.push(required(
            child(p, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

fn binding(out: &mut Vec<Cause>, late: &mut Vec<Cause>, obj: &Value, cluster: bool) {
    let empty_ref = json!({});
    let rr = get(obj, "roleRef").unwrap_or(&empty_ref);
    let group = s(rr, "apiGroup");
    if group != GROUP {
        out.push(not_supported("roleRef.apiGroup", &json!(group), &[GROUP]));
    }
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    let k = s(rr, "kind");
    if !kinds.contains(&k) {
        out.push(not_supported("roleRef.kind", &json!(k), kinds));
    }
    let mut late_ref = Vec::new();
    if s(rr, "name").is_empty() {
        late_ref.push(required("roleRef.name", ""));
    }
    for (i, sub) in arr(obj, "subjects").iter().enumerate() {
        let p = index("subjects", i);
        let name = s(sub, "name");
        let group = s(sub, "apiGroup");
        if name.is_empty() {
            late.push(required(child(&p, "name"), ""));
        }
        match s(sub, "kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    name_errors(out, &child(&p, "name"), name, dns1123_subdomain(name));
                }
                if !group.is_empty() {
                    out.push(not_supported(child(&p, "apiGroup"), &json!(group), &[""]));
                }
                if cluster && s(sub, "namespace").is_empty() {
                    out.push(required(child(&p, "namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != GROUP {
                    out.push(not_supported(
                        child(&p, "apiGroup"),
                        &json!(group),
                        &[GROUP],
                    ));
                }
            }
            other => out.push(not_supported(
                child(&p, "kind"),
                &json!(other),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    late.extend(late_ref);
}
