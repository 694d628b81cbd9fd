//! networking.k8s.io/v1: Ingress.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::util::*;
use crate::Cause;

/// Defaults of an Ingress (its empty status), a NetworkPolicy (`policyTypes`: Ingress, and
/// Egress when it has egress rules) and an IngressClass (parameters' `scope: Cluster`).
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    match kind {
        "Ingress" => {
            if let Some(st) = ensure_obj(obj, "status") {
                set_default(st, "loadBalancer", json!({}));
            }
        }
        "NetworkPolicy" => {
            if let Some(spec) = ensure_obj(obj, "spec")
                && spec
                    .get("policyTypes")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            {
                let egress = spec
                    .get("egress")
                    .and_then(Value::as_array)
                    .is_some_and(|e| !e.is_empty());
                let mut types = vec![json!("Ingress")];
                if egress {
                    types.push(json!("Egress"));
                }
                spec.insert("policyTypes".into(), Value::Array(types));
            }
        }
        "IngressClass" => {
            if let Some(p) = obj_at(obj, "spec").and_then(|spec| obj_at(spec, "parameters")) {
                set_default(p, "scope", json!("Cluster"));
            }
        }
        _ => {}
    }
}

const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Validation of an Ingress.
pub(crate) fn validate(kind: &str, obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    if kind != "Ingress" {
        return out;
    }
    let empty = json!({});
    let spec = get(obj, "spec").unwrap_or(&empty);
    let rules = arr(spec, "rules");
    match get(spec, "defaultBackend") {
        Some(b) => backend(&mut out, b, "spec.defaultBackend"),
        None if rules.is_empty() => out.push(invalid(
            "spec",
            &Value::Null,
            "either `defaultBackend` or `rules` must be specified",
        )),
        None => {}
    }
    for (i, r) in rules.iter().enumerate() {
        let p = index("spec.rules", i);
        let host = s(r, "host");
        if !host.is_empty() {
            host_name(&mut out, host, &child(&p, "host"));
        }
        if let Some(http) = get(r, "http") {
            let paths = arr(http, "paths");
            let pp = child(&p, "http.paths");
            if paths.is_empty() {
                out.push(required(&pp, ""));
            }
            for (j, path) in paths.iter().enumerate() {
                http_path(&mut out, path, &index(&pp, j));
            }
        }
    }
    for (i, t) in arr(spec, "tls").iter().enumerate() {
        let p = index("spec.tls", i);
        for (j, h) in arr(t, "hosts").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            host_name(&mut out, h, &index(&child(&p, "hosts"), j));
        }
        let secret = s(t, "secretName");
        if !secret.is_empty() {
            name_errors(
                &mut out,
                &child(&p, "secretName"),
                secret,
                dns1123_subdomain(secret),
            );
        }
    }
    if let Some(c) = get(spec, "ingressClassName").and_then(Value::as_str) {
        name_errors(&mut out, "spec.ingressClassName", c, dns1123_subdomain(c));
    }
    out
}

fn host_name(out: &mut Vec<Cause>, host: &str, field: &str) {
    if host.parse::<IpAddr>().is_ok() {
        out.push(invalid(
            field,
            &json!(host),
            "must be a DNS name, not an IP address",
        ));
    } else if let Some(rest) = host.strip_prefix("*.") {
        if !dns1123_subdomain(rest).is_empty() {
            out.push(invalid(field, &json!(host), WILDCARD_MSG));
        }
    } else if host.contains('*') {
        out.push(invalid(field, &json!(host), WILDCARD_MSG));
    } else {
        name_errors(out, field, host, dns1123_subdomain(host));
    }
}

fn http_path(out: &mut Vec<Cause>, path: &Value, p: &str) {
    let pt = s(path, "pathType");
    let x = s(path, "path");
    let supported = ["Exact", "ImplementationSpecific", "Prefix"];
    match pt {
        "" => out.push(required(child(p, "pathType"), "pathType must be specified")),
        "Exact" | "Prefix" => {
            if !x.starts_with('/') {
                out.push(invalid(
                    child(p, "path"),
                    &json!(x),
                    "must be an absolute path",
                ));
            }
        }
        "ImplementationSpecific" => {
            if !x.is_empty() && !x.starts_with('/') {
                out.push(invalid(
                    child(p, "path"),
                    &json!(x),
                    "must be an absolute path",
                ));
            }
        }
        _ => out.push(not_supported(child(p, "pathType"), &json!(pt), &supported)),
    }
    let empty = json!({});
    backend(
        out,
        get(path, "backend").unwrap_or(&empty),
        &child(p, "backend"),
    );
}

fn backend(out: &mut Vec<Cause>, b: &Value, p: &str) {
    let svc = get(b, "service");
    let res = get(b, "resource");
    match (svc, res) {
        (Some(_), Some(_)) => out.push(invalid(
            p,
            &json!(""),
            "cannot set both resource and service backends",
        )),
        (None, None) => out.push(invalid(
            p,
            &json!(""),
            "resource or service backend is required",
        )),
        (Some(svc), None) => {
            let name = s(svc, "name");
            if name.is_empty() {
                out.push(required(child(p, "service.name"), ""));
            } else {
                name_errors(out, &child(p, "service.name"), name, dns1123_label(name));
            }
            let port = get(svc, "port");
            let number = port.and_then(|x| int(x, "number")).filter(|n| *n != 0);
            let pname = port.map(|x| s(x, "name")).unwrap_or("");
            match (number, pname.is_empty()) {
                (Some(_), false) => out.push(invalid(
                    p,
                    &json!(""),
                    "cannot set both port name & port number",
                )),
                (None, true) => out.push(required(p, "port name or number is required")),
                (Some(n), true) => port_range(out, &child(p, "service.port.number"), n),
                (None, false) => {
                    name_errors(out, &child(p, "service.port.name"), pname, port_name(pname))
                }
            }
        }
        (None, Some(r)) => {
            if s(r, "kind").is_empty() {
                out.push(required(child(p, "resource.kind"), ""));
            }
            if s(r, "name").is_empty() {
                out.push(required(child(p, "resource.name"), ""));
            }
        }
    }
}
