//! autoscaling/v2: HorizontalPodAutoscaler.

use serde_json::{Value, json};

use super::util::*;
use crate::Cause;

/// `SetDefaults_HorizontalPodAutoscaler`: `minReplicas: 1`, the 80% average CPU metric when
/// none is given, and a given `behavior`'s scale-up and scale-down rules.
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    if kind != "HorizontalPodAutoscaler" {
        return;
    }
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    set_default(spec, "minReplicas", json!(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(behavior) = obj_at(spec, "behavior") {
        if let Some(up) = ensure_obj(behavior, "scaleUp") {
            set_default(up, "stabilizationWindowSeconds", json!(0));
            set_default(up, "selectPolicy", json!("Max"));
            if up
                .get("policies")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                up.insert(
                    "policies".into(),
                    json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                        {"type": "Percent", "value": 100, "periodSeconds": 15}]),
                );
            }
        }
        if let Some(down) = ensure_obj(behavior, "scaleDown") {
            set_default(down, "selectPolicy", json!("Max"));
            if down
                .get("policies")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                down.insert(
                    "policies".into(),
                    json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
                );
            }
        }
    }
}

/// A new autoscaler's status as its strategy leaves it (Go writes these zero values).
pub(crate) fn prepare_for_create(kind: &str, obj: &mut Obj) {
    if kind == "HorizontalPodAutoscaler"
        && let Some(st) = ensure_obj(obj, "status")
    {
        set_default(st, "currentMetrics", Value::Null);
        set_default(st, "desiredReplicas", json!(0));
    }
}

/// `ValidateHorizontalPodAutoscalerSpec`'s checks, in kube's order.
pub(crate) fn validate(kind: &str, obj: &Value, _old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    if kind != "HorizontalPodAutoscaler" {
        return out;
    }
    let empty = json!({});
    let spec = get(obj, "spec").unwrap_or(&empty);
    let min = int(spec, "minReplicas");
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if let Some(m) = min
        && m < 0
    {
        out.push(invalid(
            "spec.minReplicas",
            &json!(m),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(m) = min
        && max < m
    {
        out.push(invalid(
            "spec.maxReplicas",
            &json!(max),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let target = get(spec, "scaleTargetRef").unwrap_or(&empty);
    for key in ["kind", "name"] {
        let v = s(target, key);
        if v.is_empty() {
            out.push(required(format!("spec.scaleTargetRef.{key}"), ""));
        } else if v.contains('/') || v.contains('%') || v == "." || v == ".." {
            out.push(invalid(
                format!("spec.scaleTargetRef.{key}"),
                &json!(v),
                "may not contain '/' or '%'",
            ));
        }
    }
    let api_version = s(target, "apiVersion");
    if !api_version.contains('/') {
        out.push(invalid(
            "spec.scaleTargetRef.apiVersion",
            &json!(api_version),
            "apiVersion must specify API group",
        ));
    }
    let metrics = arr(spec, "metrics");
    if min == Some(0)
        && !metrics
            .iter()
            .any(|m| matches!(s(m, "type"), "Object" | "External"))
    {
        out.push(forbidden(
            "spec.metrics",
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
    for (i, m) in metrics.iter().enumerate() {
        let path = index("spec.metrics", i);
        for source in ["resource", "containerResource"] {
            let Some(r) = get(m, source) else { continue };
            let t = get(r, "target").unwrap_or(&empty);
            let tpath = format!("{path}.{source}.target");
            if ["averageUtilization", "value", "averageValue"]
                .iter()
                .all(|k| get(t, k).is_none())
            {
                out.push(required(
                    format!("{tpath}.averageUtilization"),
                    "must set either a target raw value or a target utilization",
                ));
            }
        }
    }
    if max == 0 {
        out.push(required("spec.maxReplicas", ""));
    }
    out
}
