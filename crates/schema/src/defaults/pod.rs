//! Pods and pod templates: the pod-spec defaults (`SetDefaults_PodSpec`, the containers', probes'
//! and volumes' defaults) and `ValidatePodSpec`'s most-hit checks, shared by Pod and every
//! workload kind's template; plus what only a Pod gets (requests from limits,
//! `enableServiceLinks`, the admission plugins' tolerations and priority, its status).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::util::*;
use crate::Cause;

/// Defaults of a pod template (`metadata: {}` and the pod spec's).
pub(crate) fn default_template(t: &mut Obj) {
    ensure_obj(t, "metadata");
    if let Some(spec) = ensure_obj(t, "spec") {
        default_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
pub(crate) fn default_spec(spec: &mut Obj) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    // The v1 conversion keeps the deprecated `serviceAccount` in step with `serviceAccountName`.
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let dep = spec
        .get("serviceAccount")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !sa.is_empty() {
        spec.insert("serviceAccount".into(), json!(sa));
    } else if !dep.is_empty() {
        spec.insert("serviceAccountName".into(), json!(dep));
    }
    let host_network = spec
        .get("hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each_obj(spec, list) {
            default_container(c, host_network);
        }
    }
    for v in each_obj(spec, "volumes") {
        default_volume(v);
    }
}

fn default_container(c: &mut Obj, host_network: bool) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(c, "resources", json!({}));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "imagePullPolicy", json!(pull_policy(&image)));
    for p in each_obj(c, "ports") {
        set_default(p, "protocol", json!("TCP"));
        if host_network && p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0 {
            let cp = p.get("containerPort").cloned().unwrap_or(json!(0));
            p.insert("hostPort".into(), cp);
        }
    }
    for e in each_obj(c, "env") {
        if let Some(vf) = obj_at(e, "valueFrom") {
            default_value_from(vf);
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = obj_at(c, probe) {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            default_handler(p);
        }
    }
    if let Some(l) = obj_at(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = obj_at(l, hook) {
                default_handler(h);
            }
        }
    }
}

/// `Always` for `:latest` or untagged images (a digest counts as a tag), else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_handler(h: &mut Obj) {
    if let Some(g) = obj_at(h, "httpGet") {
        set_default(g, "path", json!("/"));
        set_default(g, "scheme", json!("HTTP"));
    }
    if let Some(g) = obj_at(h, "grpc") {
        set_default(g, "service", json!(""));
    }
}

fn default_value_from(vf: &mut Obj) {
    if let Some(f) = obj_at(vf, "fieldRef") {
        set_default(f, "apiVersion", json!("v1"));
    }
    if let Some(r) = obj_at(vf, "resourceFieldRef") {
        set_default(r, "divisor", json!("0"));
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Obj) {
    if VOLUME_SOURCES.iter().all(|k| absent(v, k)) {
        v.insert("emptyDir".into(), json!({}));
    }
    for k in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(src) = obj_at(v, k) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(h) = obj_at(v, "hostPath") {
        set_default(h, "type", json!(""));
    }
    if let Some(d) = obj_at(v, "downwardAPI") {
        default_downward_items(d);
    }
    if let Some(p) = obj_at(v, "projected") {
        for src in each_obj(p, "sources") {
            if let Some(d) = obj_at(src, "downwardAPI") {
                default_downward_items(d);
            }
            if let Some(t) = obj_at(src, "serviceAccountToken") {
                set_default(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(e) = obj_at(v, "ephemeral")
        && let Some(t) = obj_at(e, "volumeClaimTemplate")
    {
        ensure_obj(t, "metadata");
        if let Some(spec) = ensure_obj(t, "spec") {
            set_default(spec, "volumeMode", json!("Filesystem"));
        }
    }
}

fn default_downward_items(d: &mut Obj) {
    for item in each_obj(d, "items") {
        if let Some(f) = obj_at(item, "fieldRef") {
            set_default(f, "apiVersion", json!("v1"));
        }
    }
}

/// A Pod: the pod-spec defaults, then what `SetDefaults_Pod` adds (requests copied from limits,
/// `enableServiceLinks`) and the status of a new Pod. The admission plugins' part is
/// [`admit_pod`].
pub(crate) fn default_pod(obj: &mut Obj) {
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    for list in ["initContainers", "containers"] {
        for c in each_obj(spec, list) {
            if let Some(r) = obj_at(c, "resources") {
                let limits = r.get("limits").and_then(Value::as_object).cloned();
                if let Some(limits) = limits.filter(|l| !l.is_empty())
                    && let Some(req) = ensure_obj(r, "requests")
                {
                    for (k, v) in limits {
                        req.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
    default_spec(spec);
    set_default(spec, "enableServiceLinks", json!(true));
    let qos = qos_class(&Value::Object(spec.clone()));
    if let Some(status) = ensure_obj(obj, "status") {
        set_default(status, "phase", json!("Pending"));
        set_default(status, "qosClass", json!(qos));
    }
}

/// What the default admission plugins add to a new Pod after its managed fields are recorded
/// (so no manager owns them): the ServiceAccount plugin's `default` account,
/// DefaultTolerationSeconds' tolerations, Priority's priority and preemption policy.
pub(crate) fn admit_pod(obj: &mut Obj) {
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        spec.insert("serviceAccountName".into(), json!("default"));
        spec.insert("serviceAccount".into(), json!("default"));
    }
    default_tolerations(spec);
    if spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        set_default(spec, "priority", json!(0));
    }
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// DefaultTolerationSeconds: tolerate `not-ready` and `unreachable` for 300s unless the pod
/// already tolerates them.
fn default_tolerations(spec: &mut Obj) {
    let existing: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tolerates = |k: &str| {
        existing.iter().any(|t| {
            let effect = s(t, "effect");
            (s(t, "key") == k || (s(t, "key").is_empty() && s(t, "operator") == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        })
    };
    let mut add = Vec::new();
    for k in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        if !tolerates(k) {
            add.push(json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    if add.is_empty() {
        return;
    }
    let mut all = existing;
    all.extend(add);
    spec.insert("tolerations".into(), Value::Array(all));
}

/// The pod's QoS class from its containers' requests and limits.
fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in arr(spec, "initContainers")
        .iter()
        .chain(arr(spec, "containers"))
    {
        let r = get(c, "resources");
        let req = r.and_then(|r| get(r, "requests"));
        let lim = r.and_then(|r| get(r, "limits"));
        let nonzero = |m: Option<&Value>| {
            m.and_then(Value::as_object).is_some_and(|m| {
                m.iter().any(|(k, v)| {
                    (k == "cpu" || k == "memory") && quantity(v).is_some_and(|q| q != 0.0)
                })
            })
        };
        if nonzero(req) || nonzero(lim) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res)).and_then(quantity);
            let q = req.and_then(|q| q.get(res)).and_then(quantity);
            if l.is_none() || (q.is_some() && q != l) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `ValidatePodTemplateSpec`'s pod-spec part for a template at `path` (`spec.template`).
pub(crate) fn validate_template(out: &mut Vec<Cause>, t: Option<&Value>, path: &str) {
    let empty = json!({});
    let spec = t.and_then(|t| get(t, "spec")).unwrap_or(&empty);
    validate_spec(out, spec, &child(path, "spec"));
}

/// The checks of `ValidatePodSpec` kube users hit most, in kube's order.
pub(crate) fn validate_spec(out: &mut Vec<Cause>, spec: &Value, path: &str) {
    let volumes = validate_volumes(out, spec, &child(path, "volumes"));
    let containers = arr(spec, "containers");
    let cpath = child(path, "containers");
    if containers.is_empty() {
        out.push(required(&cpath, ""));
    }
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(&cpath, i);
        validate_container_common(out, c, &volumes, &p);
        let name = s(c, "name");
        if !names.insert(name.to_string()) {
            out.push(duplicate(child(&p, "name"), &json!(name)));
        }
        validate_probe(
            out,
            get(c, "livenessProbe"),
            &child(&p, "livenessProbe"),
            true,
        );
        validate_probe(
            out,
            get(c, "readinessProbe"),
            &child(&p, "readinessProbe"),
            false,
        );
        validate_probe(
            out,
            get(c, "startupProbe"),
            &child(&p, "startupProbe"),
            true,
        );
    }
    host_port_conflicts(out, containers, &cpath);
    let ipath = child(path, "initContainers");
    let mut init_names = HashSet::new();
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = index(&ipath, i);
        validate_container_common(out, c, &volumes, &p);
        let name = s(c, "name");
        if names.contains(name) || !init_names.insert(name.to_string()) {
            out.push(duplicate(child(&p, "name"), &json!(name)));
        }
        let sidecar = s(c, "restartPolicy") == "Always";
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if get(c, probe).is_some() && !sidecar {
                out.push(forbidden(
                    child(&p, probe),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
    let rp = s(spec, "restartPolicy");
    if !["Always", "OnFailure", "Never"].contains(&rp) {
        if rp.is_empty() {
            out.push(required(child(path, "restartPolicy"), ""));
        } else {
            out.push(not_supported(
                child(path, "restartPolicy"),
                &json!(rp),
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    let dns = s(spec, "dnsPolicy");
    let dns_ok = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if !dns_ok.contains(&dns) {
        if dns.is_empty() {
            out.push(required(child(path, "dnsPolicy"), ""));
        } else {
            out.push(not_supported(
                child(path, "dnsPolicy"),
                &json!(dns),
                &dns_ok,
            ));
        }
    }
    let sa = s(spec, "serviceAccountName");
    if !sa.is_empty() {
        name_errors(
            out,
            &child(path, "serviceAccountName"),
            sa,
            dns1123_subdomain(sa),
        );
    }
    for k in ["hostname", "subdomain"] {
        let v = s(spec, k);
        if !v.is_empty() {
            name_errors(out, &child(path, k), v, dns1123_label(v));
        }
    }
}

/// Volumes: names (DNS labels, unique). Returns the names for the mounts' check.
fn validate_volumes(out: &mut Vec<Cause>, spec: &Value, path: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let p = index(path, i);
        let name = s(v, "name");
        if name.is_empty() {
            out.push(required(child(&p, "name"), ""));
        } else {
            name_errors(out, &child(&p, "name"), name, dns1123_label(name));
        }
        if !names.insert(name.to_string()) {
            out.push(duplicate(child(&p, "name"), &json!(name)));
        }
    }
    names
}

/// `validateContainerCommon`: name, image, termination-message policy, ports, env, mounts,
/// pull policy, resources.
fn validate_container_common(out: &mut Vec<Cause>, c: &Value, volumes: &HashSet<String>, p: &str) {
    let name = s(c, "name");
    if name.is_empty() {
        out.push(required(child(p, "name"), ""));
    } else {
        name_errors(out, &child(p, "name"), name, dns1123_label(name));
    }
    if s(c, "image").is_empty() {
        out.push(required(child(p, "image"), ""));
    }
    let tmp = s(c, "terminationMessagePolicy");
    if !["File", "FallbackToLogsOnError"].contains(&tmp) {
        if tmp.is_empty() {
            out.push(required(child(p, "terminationMessagePolicy"), ""));
        } else {
            out.push(not_supported(
                child(p, "terminationMessagePolicy"),
                &json!(tmp),
                &["File", "FallbackToLogsOnError"],
            ));
        }
    }
    validate_ports(out, c, &child(p, "ports"));
    validate_env(out, c, &child(p, "env"));
    let mpath = child(p, "volumeMounts");
    let mut mount_paths = HashSet::new();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let mp = index(&mpath, i);
        let vname = s(m, "name");
        if vname.is_empty() {
            out.push(required(child(&mp, "name"), ""));
        } else if !volumes.contains(vname) {
            out.push(not_found(child(&mp, "name"), &json!(vname)));
        }
        let path = s(m, "mountPath");
        if path.is_empty() {
            out.push(required(child(&mp, "mountPath"), ""));
        } else if !mount_paths.insert(path.to_string()) {
            out.push(invalid(
                child(&mp, "mountPath"),
                &json!(path),
                "must be unique",
            ));
        }
    }
    let pp = s(c, "imagePullPolicy");
    let pp_ok = ["Always", "IfNotPresent", "Never"];
    if !pp_ok.contains(&pp) {
        if pp.is_empty() {
            out.push(required(child(p, "imagePullPolicy"), ""));
        } else {
            out.push(not_supported(
                child(p, "imagePullPolicy"),
                &json!(pp),
                &pp_ok,
            ));
        }
    }
    if let Some(r) = get(c, "resources") {
        let req = get(r, "requests").and_then(Value::as_object);
        let lim = get(r, "limits").and_then(Value::as_object);
        if let (Some(req), Some(lim)) = (req, lim) {
            for (k, q) in req {
                if let Some(l) = lim.get(k)
                    && let (Some(qv), Some(lv)) = (quantity(q), quantity(l))
                    && qv > lv
                {
                    let lrender = l
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| l.to_string());
                    out.push(invalid(
                        child(&child(p, "resources"), "requests"),
                        &json!(
                            q.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| q.to_string())
                        ),
                        &format!("must be less than or equal to {k} limit of {lrender}"),
                    ));
                }
            }
        }
    }
}

fn validate_ports(out: &mut Vec<Cause>, c: &Value, path: &str) {
    let mut names = HashSet::new();
    for (i, port) in arr(c, "ports").iter().enumerate() {
        let p = index(path, i);
        let name = s(port, "name");
        if !name.is_empty() {
            name_errors(out, &child(&p, "name"), name, port_name(name));
            if !names.insert(name.to_string()) {
                out.push(duplicate(child(&p, "name"), &json!(name)));
            }
        }
        match int(port, "containerPort").unwrap_or(0) {
            0 => out.push(required(child(&p, "containerPort"), "")),
            n => port_range(out, &child(&p, "containerPort"), n),
        }
        if let Some(h) = int(port, "hostPort")
            && h != 0
        {
            port_range(out, &child(&p, "hostPort"), h);
        }
        let proto = s(port, "protocol");
        if proto.is_empty() {
            out.push(required(child(&p, "protocol"), ""));
        } else if !["SCTP", "TCP", "UDP"].contains(&proto) {
            out.push(not_supported(
                child(&p, "protocol"),
                &json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
}

fn validate_env(out: &mut Vec<Cause>, c: &Value, path: &str) {
    for (i, e) in arr(c, "env").iter().enumerate() {
        let p = index(path, i);
        let name = s(e, "name");
        if name.is_empty() {
            out.push(required(child(&p, "name"), ""));
        } else if name.contains('=') || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            out.push(invalid(
                child(&p, "name"),
                &json!(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        if get(e, "valueFrom").is_some() && !s(e, "value").is_empty() {
            out.push(invalid(
                child(&p, "valueFrom"),
                &json!(""),
                "may not be specified when `value` is not empty",
            ));
        }
    }
}

fn validate_probe(out: &mut Vec<Cause>, probe: Option<&Value>, path: &str, success_one: bool) {
    let Some(probe) = probe else {
        return;
    };
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(out, probe, k, &child(path, k));
    }
    if success_one
        && let Some(n) = int(probe, "successThreshold")
        && n != 1
    {
        out.push(invalid(
            child(path, "successThreshold"),
            &json!(n),
            "must be 1",
        ));
    }
    let handlers = ["exec", "httpGet", "tcpSocket", "grpc"];
    let n = handlers.iter().filter(|h| get(probe, h).is_some()).count();
    if n == 0 {
        out.push(required(path, "must specify a handler type"));
    } else if n > 1 {
        out.push(forbidden(path, "may not specify more than 1 handler type"));
    }
}

/// `checkHostPortConflicts`: the same `hostPort/protocol` twice across a pod's containers.
fn host_port_conflicts(out: &mut Vec<Cause>, containers: &[Value], path: &str) {
    let mut seen = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in arr(c, "ports").iter().enumerate() {
            let h = int(port, "hostPort").unwrap_or(0);
            if h == 0 {
                continue;
            }
            let proto = match s(port, "protocol") {
                "" => "TCP",
                p => p,
            };
            let key = format!("{proto}/{}/{h}", s(port, "hostIP"));
            if !seen.insert(key.clone()) {
                out.push(duplicate(
                    child(&index(&child(&index(path, i), "ports"), j), "hostPort"),
                    &json!(key),
                ));
            }
        }
    }
}
