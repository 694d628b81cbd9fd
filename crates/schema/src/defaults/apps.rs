//! apps/v1: Deployment, StatefulSet, DaemonSet, ReplicaSet.

use serde_json::{Value, json};

use super::pod;
use super::util::*;
use crate::Cause;

/// Defaults of an apps/v1 kind.
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    let generation = obj
        .get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    if let Some(t) = ensure_obj(spec, "template") {
        pod::default_template(t);
    }
    match kind {
        "Deployment" => {
            set_default(spec, "replicas", json!(1));
            if let Some(st) = ensure_obj(spec, "strategy") {
                set_default(st, "type", json!("RollingUpdate"));
                if st.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                    && let Some(ru) = ensure_obj(st, "rollingUpdate")
                {
                    set_default(ru, "maxUnavailable", json!("25%"));
                    set_default(ru, "maxSurge", json!("25%"));
                }
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
        }
        "StatefulSet" => {
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            if let Some(st) = ensure_obj(spec, "updateStrategy") {
                set_default(st, "type", json!("RollingUpdate"));
                if st.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                    && let Some(ru) = ensure_obj(st, "rollingUpdate")
                {
                    set_default(ru, "partition", json!(0));
                    set_default(ru, "maxUnavailable", json!(1));
                }
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
            if let Some(p) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
                set_default(p, "whenDeleted", json!("Retain"));
                set_default(p, "whenScaled", json!("Retain"));
            }
            set_default(spec, "serviceName", json!(""));
            for pvc in each_obj(spec, "volumeClaimTemplates") {
                set_default(pvc, "kind", json!("PersistentVolumeClaim"));
                set_default(pvc, "apiVersion", json!("v1"));
                if let Some(s) = ensure_obj(pvc, "spec") {
                    set_default(s, "volumeMode", json!("Filesystem"));
                }
                if let Some(st) = ensure_obj(pvc, "status") {
                    set_default(st, "phase", json!("Pending"));
                }
            }
        }
        "DaemonSet" => {
            if let Some(st) = ensure_obj(spec, "updateStrategy") {
                set_default(st, "type", json!("RollingUpdate"));
                if st.get("type").and_then(Value::as_str) == Some("RollingUpdate")
                    && let Some(ru) = ensure_obj(st, "rollingUpdate")
                {
                    set_default(ru, "maxUnavailable", json!(1));
                    set_default(ru, "maxSurge", json!(0));
                }
            }
            set_default(spec, "revisionHistoryLimit", json!(10));
        }
        "ReplicaSet" => set_default(spec, "replicas", json!(1)),
        _ => {}
    }
    if kind == "DaemonSet"
        && let Some(meta) = ensure_obj(obj, "metadata")
        && let Some(ann) = ensure_obj(meta, "annotations")
    {
        set_default(
            ann,
            "deprecated.daemonset.template.generation",
            json!(generation.to_string()),
        );
    }
    let status = match kind {
        "Deployment" => json!({}),
        "StatefulSet" => json!({"replicas": 0, "availableReplicas": 0}),
        "DaemonSet" => json!({
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0
        }),
        _ => json!({"replicas": 0}),
    };
    if let (Some(st), Value::Object(defaults)) = (ensure_obj(obj, "status"), status) {
        for (k, v) in defaults {
            st.entry(k).or_insert(v);
        }
    }
}

/// Validation of an apps/v1 kind; `old` on update.
pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let empty = json!({});
    let spec = get(obj, "spec").unwrap_or(&empty);
    match kind {
        "Deployment" => deployment(&mut out, spec),
        "StatefulSet" => statefulset(&mut out, spec),
        "DaemonSet" => daemonset(&mut out, spec),
        _ => replicaset(&mut out, spec),
    }
    if let Some(old) = old {
        let ospec = get(old, "spec").unwrap_or(&empty);
        immutable(&mut out, spec, ospec, "selector", "spec.selector");
        if kind == "StatefulSet" {
            let vct = |s: &Value| {
                let mut v = s
                    .get("volumeClaimTemplates")
                    .cloned()
                    .unwrap_or(Value::Null);
                // Only the claims' names and specs are compared (their status is not).
                if let Some(a) = v.as_array_mut() {
                    for c in a.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("status");
                    }
                }
                v
            };
            if vct(spec) != vct(ospec) {
                out.push(invalid(
                    "spec.volumeClaimTemplates",
                    &spec
                        .get("volumeClaimTemplates")
                        .cloned()
                        .unwrap_or(Value::Null),
                    "field is immutable",
                ));
            }
            immutable(&mut out, spec, ospec, "serviceName", "spec.serviceName");
            immutable(
                &mut out,
                spec,
                ospec,
                "podManagementPolicy",
                "spec.podManagementPolicy",
            );
        }
    }
    out
}

/// The selector checks shared by the replica-set-like kinds; returns whether the selector is
/// present.
fn selector(out: &mut Vec<Cause>, spec: &Value, required_msg: bool, empty_kind: &str) {
    match get(spec, "selector") {
        None if required_msg => out.push(required("spec.selector", "")),
        None => {}
        Some(sel) if selector_empty(sel) => out.push(invalid(
            "spec.selector",
            sel,
            &format!("empty selector is invalid for {empty_kind}"),
        )),
        Some(_) => {}
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`: the selector matches the template's labels, the
/// pod spec is valid, and the restart policy is `Always`.
fn template_for_replicas(out: &mut Vec<Cause>, spec: &Value) {
    let t = get(spec, "template");
    selector_selects_template(out, spec, "spec.template.metadata.labels".into());
    pod::validate_template(out, t, "spec.template");
    let rp = t
        .and_then(|t| get(t, "spec"))
        .map(|x| s(x, "restartPolicy"))
        .unwrap_or("");
    if rp != "Always" {
        out.push(not_supported(
            "spec.template.spec.restartPolicy",
            &json!(rp),
            &["Always"],
        ));
    }
    if let Some(ads) = t
        .and_then(|t| get(t, "spec"))
        .and_then(|s| get(s, "activeDeadlineSeconds"))
    {
        out.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            ads,
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
}

/// An `intstr` that must be a non-negative integer or a percentage of at most 100.
fn int_or_percent(
    out: &mut Vec<Cause>,
    v: Option<&Value>,
    field: &str,
    at_most_100: bool,
) -> Option<f64> {
    match v? {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                out.push(invalid(
                    field,
                    &json!(n),
                    "must be greater than or equal to 0",
                ));
            }
            Some(n as f64)
        }
        Value::String(x) => {
            let num = x
                .strip_suffix('%')
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            match num.and_then(|d| d.parse::<u64>().ok()) {
                None => {
                    out.push(invalid(field, &json!(x), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
                    None
                }
                Some(p) => {
                    if at_most_100 && p > 100 {
                        out.push(invalid(field, &json!(x), "must not be greater than 100%"));
                    }
                    Some(p as f64)
                }
            }
        }
        _ => None,
    }
}

/// Go's rendering of an internal strategy struct (`{"Type":"Foo","RollingUpdate":null}`).
fn go_strategy(st: &Value, fields: &[&str]) -> String {
    let ru = match get(st, "rollingUpdate") {
        None => "null".to_string(),
        Some(r) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    let mut cap = f.to_string();
                    if let Some(c) = cap.get_mut(0..1) {
                        c.make_ascii_uppercase();
                    }
                    format!("\"{cap}\":{}", fmt_value(r.get(*f).unwrap_or(&Value::Null)))
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    };
    format!(
        "{{\"Type\":{},\"RollingUpdate\":{ru}}}",
        fmt_value(st.get("type").unwrap_or(&json!("")))
    )
}

fn deployment(out: &mut Vec<Cause>, spec: &Value) {
    non_negative(out, spec, "replicas", "spec.replicas");
    selector(out, spec, true, "deployment");
    template_for_replicas(out, spec);
    if let Some(st) = get(spec, "strategy") {
        match s(st, "type") {
            "Recreate" => {
                if get(st, "rollingUpdate").is_some() {
                    out.push(forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = get(st, "rollingUpdate") {
                    let surge = int_or_percent(
                        out,
                        get(ru, "maxSurge"),
                        "spec.strategy.rollingUpdate.maxSurge",
                        false,
                    );
                    let unavail = int_or_percent(
                        out,
                        get(ru, "maxUnavailable"),
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        true,
                    );
                    if surge == Some(0.0) && unavail == Some(0.0) {
                        out.push(invalid(
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            ru.get("maxUnavailable").unwrap_or(&Value::Null),
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                }
            }
            _ => out.push(not_supported_raw(
                "spec.strategy",
                &go_strategy(st, &["maxUnavailable", "maxSurge"]),
                &["Recreate", "RollingUpdate"],
            )),
        }
    }
    non_negative(out, spec, "minReadySeconds", "spec.minReadySeconds");
    non_negative(
        out,
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
    );
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        non_negative(
            out,
            spec,
            "progressDeadlineSeconds",
            "spec.progressDeadlineSeconds",
        );
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            out.push(invalid(
                "spec.progressDeadlineSeconds",
                &json!(pds),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn statefulset(out: &mut Vec<Cause>, spec: &Value) {
    let pmp = s(spec, "podManagementPolicy");
    if !["OrderedReady", "Parallel"].contains(&pmp) {
        out.push(invalid(
            "spec.podManagementPolicy",
            &json!(pmp),
            "must be 'OrderedReady' or 'Parallel'",
        ));
    }
    if let Some(st) = get(spec, "updateStrategy") {
        match s(st, "type") {
            "OnDelete" => {
                if let Some(ru) = get(st, "rollingUpdate") {
                    let rendered = format!(
                        "{{\"Partition\":{},\"MaxUnavailable\":{}}}",
                        fmt_value(ru.get("partition").unwrap_or(&json!(0))),
                        fmt_value(ru.get("maxUnavailable").unwrap_or(&Value::Null))
                    );
                    out.push(invalid_raw(
                        "spec.updateStrategy.rollingUpdate",
                        &rendered,
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = get(st, "rollingUpdate") {
                    non_negative(
                        out,
                        ru,
                        "partition",
                        "spec.updateStrategy.rollingUpdate.partition",
                    );
                    let f = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    if let Some(mu) = get(ru, "maxUnavailable")
                        && int_or_percent(out, Some(mu), f, true) == Some(0.0)
                    {
                        out.push(invalid(f, mu, "cannot be 0"));
                    }
                }
            }
            _ => out.push(invalid_raw(
                "spec.updateStrategy",
                &go_strategy(st, &["partition", "maxUnavailable"]),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
    }
    if let Some(p) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for k in ["whenDeleted", "whenScaled"] {
            let v = s(p, k);
            if !["Retain", "Delete"].contains(&v) {
                out.push(not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{k}"),
                    &json!(v),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    for (i, pvc) in arr(spec, "volumeClaimTemplates").iter().enumerate() {
        let p = format!("spec.volumeClaimTemplates[{i}].spec");
        let empty = json!({});
        super::core::validate_pvc_spec(out, get(pvc, "spec").unwrap_or(&empty), &p);
    }
    non_negative(out, spec, "replicas", "spec.replicas");
    non_negative(out, spec, "minReadySeconds", "spec.minReadySeconds");
    selector(out, spec, true, "statefulset");
    template_for_replicas(out, spec);
}

fn daemonset(out: &mut Vec<Cause>, spec: &Value) {
    selector(out, spec, false, "daemonset");
    template_for_replicas(out, spec);
    non_negative(out, spec, "minReadySeconds", "spec.minReadySeconds");
    if let Some(st) = get(spec, "updateStrategy") {
        match s(st, "type") {
            "OnDelete" => {}
            "RollingUpdate" => {
                if let Some(ru) = get(st, "rollingUpdate") {
                    let f = "spec.updateStrategy.rollingUpdate";
                    let unavail = int_or_percent(
                        out,
                        get(ru, "maxUnavailable"),
                        &format!("{f}.maxUnavailable"),
                        true,
                    );
                    let surge =
                        int_or_percent(out, get(ru, "maxSurge"), &format!("{f}.maxSurge"), true);
                    if unavail.unwrap_or(0.0) == 0.0 && surge.unwrap_or(0.0) == 0.0 {
                        out.push(required(
                            format!("{f}.maxUnavailable"),
                            "cannot be 0 when maxSurge is 0",
                        ));
                    }
                }
            }
            _ => out.push(not_supported_raw(
                "spec.updateStrategy",
                &go_strategy(st, &["maxUnavailable", "maxSurge"]),
                &["RollingUpdate", "OnDelete"],
            )),
        }
    }
    non_negative(
        out,
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
    );
}

fn replicaset(out: &mut Vec<Cause>, spec: &Value) {
    non_negative(out, spec, "replicas", "spec.replicas");
    non_negative(out, spec, "minReadySeconds", "spec.minReadySeconds");
    selector(out, spec, true, "deployment");
    template_for_replicas(out, spec);
}
