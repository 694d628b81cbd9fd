//! core/v1: Pod, Service, ConfigMap, Secret, ServiceAccount, PersistentVolumeClaim, Namespace.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::pod;
use super::util::*;
use crate::Cause;

/// Defaults of a core/v1 kind.
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    match kind {
        "Pod" => pod::default_pod(obj),
        "Service" => default_service(obj),
        "Secret" => {
            if let Some(Value::Object(sd)) = obj.remove("stringData")
                && let Some(data) = ensure_obj(obj, "data")
            {
                for (k, v) in sd {
                    let raw = v.as_str().unwrap_or("");
                    data.insert(k, json!(base64_encode(raw.as_bytes())));
                }
            }
            set_default(obj, "type", json!("Opaque"));
        }
        "PersistentVolumeClaim" => {
            if let Some(spec) = ensure_obj(obj, "spec") {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(st) = ensure_obj(obj, "status") {
                set_default(st, "phase", json!("Pending"));
            }
        }
        "Endpoints" => {
            for subset in each_obj(obj, "subsets") {
                for port in each_obj(subset, "ports") {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
        "LimitRange" => {
            if let Some(spec) = obj_at(obj, "spec") {
                for item in each_obj(spec, "limits") {
                    default_limit_range_item(item);
                }
            }
        }
        "PodTemplate" => {
            if let Some(t) = ensure_obj(obj, "template") {
                pod::default_template(t);
            }
        }
        "PersistentVolume" => {
            if let Some(spec) = ensure_obj(obj, "spec") {
                set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
                set_default(spec, "volumeMode", json!("Filesystem"));
                if let Some(h) = obj_at(spec, "hostPath") {
                    set_default(h, "type", json!(""));
                }
            }
        }
        "Namespace" => {
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !name.is_empty()
                && let Some(meta) = ensure_obj(obj, "metadata")
                && let Some(labels) = ensure_obj(meta, "labels")
            {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        _ => {}
    }
}

/// `SetDefaults_LimitRangeItem`: a container's default limit is its max, its default request
/// the default limit, else the min; empty maps are left out as Go leaves them.
fn default_limit_range_item(item: &mut Obj) {
    if item.get("type").and_then(Value::as_str) != Some("Container") {
        return;
    }
    let copy_missing = |item: &mut Obj, from: &str, to: &str| {
        let Some(Value::Object(src)) = item.get(from).cloned() else {
            return;
        };
        let mut dst = match item.remove(to) {
            Some(Value::Object(d)) => d,
            _ => Obj::new(),
        };
        for (k, v) in src {
            dst.entry(k).or_insert(v);
        }
        if !dst.is_empty() {
            item.insert(to.to_string(), Value::Object(dst));
        }
    };
    copy_missing(item, "max", "default");
    copy_missing(item, "default", "defaultRequest");
    copy_missing(item, "min", "defaultRequest");
}

/// What the core strategies fill when an object is created, after its managed fields are
/// recorded (so no manager owns them): a Namespace's `kubernetes` finalizer and phase, a
/// Service's IP families.
pub(crate) fn prepare_for_create(kind: &str, obj: &mut Obj) {
    match kind {
        "Namespace" => {
            if let Some(spec) = ensure_obj(obj, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(st) = ensure_obj(obj, "status") {
                set_default(st, "phase", json!("Active"));
            }
        }
        "Service" => {
            let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
                default_service_families(spec);
            }
        }
        "Pod" => pod::admit_pod(obj),
        // A new quota's status is empty until the quota controller computes it.
        "ResourceQuota" => {
            ensure_obj(obj, "status");
        }
        // A new PersistentVolume waits for a claim.
        "PersistentVolume" => {
            if let Some(st) = ensure_obj(obj, "status") {
                set_default(st, "phase", json!("Pending"));
                set_default(
                    st,
                    "lastPhaseTransitionTime",
                    json!(
                        jiff::Timestamp::now()
                            .strftime("%Y-%m-%dT%H:%M:%SZ")
                            .to_string()
                    ),
                );
            }
        }
        // Go's Event writes these even when empty.
        "Event" => {
            set_default(obj, "eventTime", Value::Null);
            set_default(obj, "reportingComponent", json!(""));
            set_default(obj, "reportingInstance", json!(""));
        }
        // The TaintNodesByCondition admission plugin taints a new Node not-ready (the node
        // lifecycle controller lifts it once the node reports Ready); its status starts empty.
        "Node" => {
            if let Some(spec) = ensure_obj(obj, "spec") {
                let taints = spec
                    .entry("taints")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = taints
                    && !list
                        .iter()
                        .any(|t| t["key"] == "node.kubernetes.io/not-ready")
                {
                    list.push(
                        json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}),
                    );
                }
            }
            if let Some(st) = ensure_obj(obj, "status") {
                set_default(
                    st,
                    "daemonEndpoints",
                    json!({"kubeletEndpoint": {"Port": 0}}),
                );
                set_default(
                    st,
                    "nodeInfo",
                    json!({"architecture": "", "bootID": "", "containerRuntimeVersion": "",
                        "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "",
                        "machineID": "", "operatingSystem": "", "osImage": "", "systemUUID": ""}),
                );
            }
        }
        _ => {}
    }
}

fn default_service(obj: &mut Obj) {
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP")
        && let Some(c) = ensure_obj(spec, "sessionAffinityConfig")
        && let Some(ip) = ensure_obj(c, "clientIP")
    {
        set_default(ip, "timeoutSeconds", json!(10800));
    }
    for p in each_obj(spec, "ports") {
        set_default(p, "protocol", json!("TCP"));
        let unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(x)) => x.is_empty(),
            Some(_) => false,
        };
        if unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".into(), port);
        }
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if ty != "ExternalName" {
        default_service_ips(spec, &ty);
    }
    if let Some(st) = ensure_obj(obj, "status") {
        set_default(st, "loadBalancer", json!({}));
    }
}

/// The cluster-IP side of a Service's defaults: `clusterIPs`, IP families, traffic policies.
fn default_service_ips(spec: &mut Obj, ty: &str) {
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ips_empty = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if !cluster_ip.is_empty() && ips_empty {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    } else if cluster_ip.is_empty()
        && let Some(first) = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
    {
        spec.insert("clusterIP".into(), first);
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
}

/// A Service's IP family policy and families, as the service REST storage fills them.
fn default_service_families(spec: &mut Obj) {
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let headless_no_selector = cluster_ip == "None"
        && spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty());
    let families_empty = spec
        .get("ipFamilies")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if headless_no_selector {
        set_default(spec, "ipFamilyPolicy", json!("RequireDualStack"));
        if families_empty {
            spec.insert("ipFamilies".into(), json!(["IPv4", "IPv6"]));
        }
    } else {
        let policy = if spec
            .get("ipFamilies")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1)
        {
            "PreferDualStack"
        } else {
            "SingleStack"
        };
        set_default(spec, "ipFamilyPolicy", json!(policy));
        if families_empty {
            let fam = if cluster_ip.contains(':') {
                "IPv6"
            } else {
                "IPv4"
            };
            spec.insert("ipFamilies".into(), json!([fam]));
        }
    }
}

/// Validation of a core/v1 kind; `old` on update.
pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let empty = json!({});
    match kind {
        "Pod" => pod::validate_spec(&mut out, get(obj, "spec").unwrap_or(&empty), "spec"),
        "Service" => service(
            &mut out,
            get(obj, "spec").unwrap_or(&empty),
            old.and_then(|o| get(o, "spec")),
        ),
        "ConfigMap" => configmap(&mut out, obj, old),
        "Secret" => secret(&mut out, obj, old),
        "PersistentVolumeClaim" => {
            let spec = get(obj, "spec").unwrap_or(&empty);
            validate_pvc_spec(&mut out, spec, "spec");
            if let Some(ospec) = old.and_then(|o| get(o, "spec")) {
                let strip = |s: &Value| {
                    let mut s = s.clone();
                    if let Some(r) = s.get_mut("resources").and_then(Value::as_object_mut) {
                        r.remove("requests");
                    }
                    if let Some(o) = s.as_object_mut() {
                        o.remove("volumeAttributesClassName");
                        // A claim bound later gets its volume name from the binder.
                        if ospec
                            .get("volumeName")
                            .is_none_or(|v| v.as_str() == Some(""))
                        {
                            o.remove("volumeName");
                        }
                    }
                    s
                };
                let (n, o) = (strip(spec), strip(ospec));
                if n != o {
                    out.push(forbidden(
                        "spec",
                        "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                    ));
                }
            }
        }
        "Namespace" => {
            for (i, f) in arr(get(obj, "spec").unwrap_or(&empty), "finalizers")
                .iter()
                .enumerate()
            {
                let _ = i;
                let x = f.as_str().unwrap_or("");
                if !qualified_name(x) {
                    out.push(invalid("spec.finalizers", &json!(x), QUALIFIED_NAME_MSG));
                }
            }
        }
        _ => {}
    }
    out
}

const QUALIFIED_NAME_MSG: &str = "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";

/// apimachinery's `IsQualifiedName` (a label key), as a yes/no.
fn qualified_name(x: &str) -> bool {
    let (prefix, name) = match x.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, x),
    };
    if prefix.is_some_and(|p| p.is_empty() || !dns1123_subdomain(p).is_empty()) {
        return false;
    }
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `ValidatePersistentVolumeClaimSpec`'s common checks at `path`.
pub(crate) fn validate_pvc_spec(out: &mut Vec<Cause>, spec: &Value, path: &str) {
    let modes = arr(spec, "accessModes");
    let supported = [
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];
    if modes.is_empty() && get(spec, "dataSource").is_none() {
        out.push(required(
            child(path, "accessModes"),
            "at least 1 access mode is required",
        ));
    }
    for m in modes {
        let x = m.as_str().unwrap_or("");
        if !supported.contains(&x) {
            out.push(not_supported(
                child(path, "accessModes"),
                &json!(x),
                &supported,
            ));
        }
    }
    let storage = get(spec, "resources")
        .and_then(|r| get(r, "requests"))
        .and_then(|r| get(r, "storage"));
    match storage {
        None => out.push(required(key(&child(path, "resources"), "storage"), "")),
        Some(q) => {
            if quantity(q).is_some_and(|v| v <= 0.0) {
                let rendered = q
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| q.to_string());
                out.push(invalid(
                    key(&child(path, "resources"), "storage"),
                    &json!(rendered),
                    "must be greater than zero",
                ));
            }
        }
    }
    if let Some(m) = get(spec, "volumeMode").and_then(Value::as_str)
        && !["Block", "Filesystem"].contains(&m)
    {
        out.push(not_supported(
            child(path, "volumeMode"),
            &json!(m),
            &["Block", "Filesystem"],
        ));
    }
}

fn service(out: &mut Vec<Cause>, spec: &Value, old: Option<&Value>) {
    let ty = s(spec, "type");
    let ports = arr(spec, "ports");
    let headless = s(spec, "clusterIP") == "None";
    if ty == "ExternalName" {
        if s(spec, "externalName").is_empty() {
            out.push(required("spec.externalName", ""));
        }
    } else if ports.is_empty() && !headless {
        out.push(required("spec.ports", ""));
    }
    let mut names = HashSet::new();
    let mut seen = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = index("spec.ports", i);
        let name = s(p, "name");
        if ports.len() > 1 && name.is_empty() {
            out.push(required(child(&path, "name"), ""));
        } else if !name.is_empty() {
            name_errors(out, &child(&path, "name"), name, dns1123_label(name));
            if !names.insert(name.to_string()) {
                out.push(duplicate(child(&path, "name"), &json!(name)));
            }
        }
        port_range(out, &child(&path, "port"), int(p, "port").unwrap_or(0));
        let proto = s(p, "protocol");
        if proto.is_empty() {
            out.push(required(child(&path, "protocol"), ""));
        } else if !["SCTP", "TCP", "UDP"].contains(&proto) {
            out.push(not_supported(
                child(&path, "protocol"),
                &json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                port_range(out, &child(&path, "targetPort"), n.as_i64().unwrap_or(0))
            }
            Some(Value::String(x)) => {
                name_errors(out, &child(&path, "targetPort"), x, port_name(x))
            }
            _ => {}
        }
        if let Some(np) = int(p, "nodePort").filter(|n| *n != 0) {
            if ty == "ClusterIP" || ty == "ExternalName" {
                out.push(forbidden(
                    child(&path, "nodePort"),
                    &format!("may not be used when `type` is '{ty}'"),
                ));
            } else {
                port_range(out, &child(&path, "nodePort"), np);
            }
        }
        if name.is_empty() {
            let k = (int(p, "port").unwrap_or(0), proto.to_string());
            if !seen.insert(k) {
                let tp = match p.get("targetPort") {
                    Some(Value::String(x)) => json!(x),
                    Some(Value::Number(n)) => json!(n),
                    _ => json!(0),
                };
                let rendered = format!(
                    "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":{},\"Port\":{},\"TargetPort\":{},\"NodePort\":{}}}",
                    fmt_value(&json!(proto)),
                    fmt_value(p.get("appProtocol").unwrap_or(&Value::Null)),
                    int(p, "port").unwrap_or(0),
                    fmt_value(&tp),
                    int(p, "nodePort").unwrap_or(0)
                );
                out.push(Cause::new(
                    "FieldValueDuplicate",
                    path.clone(),
                    format!("Duplicate value: {rendered}"),
                ));
            }
        }
    }
    let sa = s(spec, "sessionAffinity");
    if !["ClientIP", "None"].contains(&sa) {
        if sa.is_empty() {
            out.push(required("spec.sessionAffinity", ""));
        } else {
            out.push(not_supported(
                "spec.sessionAffinity",
                &json!(sa),
                &["ClientIP", "None"],
            ));
        }
    }
    let types = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if !types.contains(&ty) {
        if ty.is_empty() {
            out.push(required("spec.type", ""));
        } else {
            out.push(not_supported("spec.type", &json!(ty), &types));
        }
    }
    let etp = s(spec, "externalTrafficPolicy");
    if !etp.is_empty() && ty != "NodePort" && ty != "LoadBalancer" {
        out.push(invalid(
            "spec.externalTrafficPolicy",
            &json!(etp),
            "may only be set for externally-accessible services",
        ));
    }
    if let Some(old) = old {
        let old_ip = s(old, "clusterIP");
        let new_ips = spec.get("clusterIPs").cloned().unwrap_or(Value::Null);
        if !old_ip.is_empty()
            && s(old, "type") != "ExternalName"
            && ty != "ExternalName"
            && s(spec, "clusterIP") != old_ip
        {
            let rendered = if new_ips.is_null() {
                json!([s(spec, "clusterIP")])
            } else {
                new_ips
            };
            out.push(invalid(
                "spec.clusterIPs[0]",
                &rendered,
                "may not change once set",
            ));
        }
    }
}

fn data_keys(out: &mut Vec<Cause>, m: Option<&Value>, field: &str) {
    if let Some(m) = m.and_then(Value::as_object) {
        for k in m.keys() {
            name_errors(out, &key(field, k), k, config_key(k));
        }
    }
}

fn immutable_data(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>, fields: &[&str]) {
    let Some(old) = old else {
        return;
    };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    for f in fields {
        if get(obj, f) != get(old, f) {
            out.push(forbidden(*f, "field is immutable when `immutable` is set"));
        }
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        out.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
}

fn configmap(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    data_keys(out, get(obj, "data"), "data");
    let binary = get(obj, "binaryData").and_then(Value::as_object);
    if let (Some(data), Some(binary)) = (get(obj, "data").and_then(Value::as_object), binary) {
        for k in data.keys() {
            if binary.contains_key(k) {
                out.push(invalid(
                    key("data", k),
                    &json!(k),
                    "duplicate of key present in binaryData",
                ));
            }
        }
    }
    data_keys(out, get(obj, "binaryData"), "binaryData");
    immutable_data(out, obj, old, &["data", "binaryData"]);
}

fn secret(out: &mut Vec<Cause>, obj: &Value, old: Option<&Value>) {
    let data = get(obj, "data");
    data_keys(out, data, "data");
    let has = |k: &str| data.and_then(|d| d.get(k)).is_some();
    let req = |out: &mut Vec<Cause>, k: &str| out.push(required(key("data", k), ""));
    match s(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let name = get(obj, "metadata")
                .and_then(|m| get(m, "annotations"))
                .map(|a| s(a, "kubernetes.io/service-account.name"))
                .unwrap_or("");
            if name.is_empty() {
                out.push(required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => {
            if has(".dockercfg") {
                json_payload(out, data, ".dockercfg");
            } else {
                req(out, ".dockercfg");
            }
        }
        "kubernetes.io/dockerconfigjson" => {
            if has(".dockerconfigjson") {
                json_payload(out, data, ".dockerconfigjson");
            } else {
                req(out, ".dockerconfigjson");
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            req(out, "username");
            req(out, "password");
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => req(out, "ssh-privatekey"),
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                req(out, "tls.crt");
            }
            if !has("tls.key") {
                req(out, "tls.key");
            }
        }
        _ => {}
    }
    if let Some(old) = old
        && get(obj, "type") != get(old, "type")
    {
        out.push(invalid(
            "type",
            obj.get("type").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
    immutable_data(out, obj, old, &["data"]);
}

/// A docker config payload (base64 in `data`) must be JSON.
fn json_payload(out: &mut Vec<Cause>, data: Option<&Value>, k: &str) {
    let Some(raw) = data.and_then(|d| d.get(k)).and_then(Value::as_str) else {
        return;
    };
    let Some(bytes) = base64_decode(raw) else {
        return;
    };
    if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let detail = match first {
            Some(c)
                if !matches!(
                    c,
                    b'{' | b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9'
                ) =>
            {
                format!(
                    "invalid character '{}' looking for beginning of value",
                    c as char
                )
            }
            None => "unexpected end of JSON input".to_string(),
            _ => e.to_string(),
        };
        out.push(invalid_raw(
            key("data", k),
            "\"<secret contents redacted>\"",
            &detail,
        ));
    }
}

fn base64_encode(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// Standard base64; `None` when it is not base64.
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(input).ok()
}
