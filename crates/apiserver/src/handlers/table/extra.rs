//! kubectl's columns for the cluster-level kinds, as kube-apiserver 1.37's printers define them
//! (names, types, formats, descriptions and cells read off the real server):
//! HorizontalPodAutoscaler, Endpoints, EndpointSlice, NetworkPolicy, IngressClass,
//! ResourceQuota, PodTemplate, ControllerRevision, RuntimeClass, CSIDriver, CSINode,
//! VolumeAttachment, CertificateSigningRequest, ServiceAccount and CustomResourceDefinition.
//! Built-in kinds kube has no printer for (Role, ClusterRole, LimitRange) get kube's default
//! table: NAME and CREATED AT.

use serde_json::{Value, json};

use super::{
    Cell, Column, age_column, column, documented, human_duration, int_at, labels_string,
    name_column, or_none, placeholder, selector_string, str_at, wide,
};
use crate::registry::ResourceInfo;

/// The strings of the array at `pointer` (empty when absent).
fn strings_at<'a>(o: &'a Value, pointer: &str) -> Vec<&'a str> {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn bool_at(o: &Value, pointer: &str, default: bool) -> Value {
    json!(
        o.pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    )
}

/// The first `max` items joined by `,`, then ` + N more...` as kubectl abbreviates long lists.
fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else {
        shown
    }
}

/// kube's `CREATED AT` column (a `date`: the raw timestamp) of kinds without a printer.
pub(super) fn created_at_column() -> Column {
    Column {
        name: "Created At".into(),
        ty: "date",
        ..age_column()
    }
    .with_cell(Cell::Created)
}

/// The columns of `info`'s kind, when it is one of this module's.
pub(super) fn columns(info: &ResourceInfo) -> Option<Vec<Column>> {
    let mut out = vec![name_column()];
    match (info.group.as_str(), info.kind.as_str()) {
        ("autoscaling", "HorizontalPodAutoscaler") => {
            out.push(documented(
                info,
                "Reference",
                "string",
                &["spec", "scaleTargetRef"],
                Cell::Builtin(|o| {
                    json!(format!(
                        "{}/{}",
                        str_at(o, "/spec/scaleTargetRef/kind"),
                        str_at(o, "/spec/scaleTargetRef/name")
                    ))
                }),
            ));
            out.push(documented(
                info,
                "Targets",
                "string",
                &["spec", "metrics"],
                Cell::Builtin(|o| json!(hpa_targets(o))),
            ));
            out.push(documented(
                info,
                "MinPods",
                "string",
                &["spec", "minReplicas"],
                Cell::Builtin(
                    |o| match o.pointer("/spec/minReplicas").and_then(Value::as_i64) {
                        Some(n) => json!(n.to_string()),
                        None => json!("<unset>"),
                    },
                ),
            ));
            out.push(documented(
                info,
                "MaxPods",
                "string",
                &["spec", "maxReplicas"],
                Cell::Builtin(|o| json!(int_at(o, "/spec/maxReplicas"))),
            ));
            out.push(documented(
                info,
                "Replicas",
                "string",
                &["status", "currentReplicas"],
                Cell::Builtin(|o| json!(int_at(o, "/status/currentReplicas"))),
            ));
            out.push(age_column());
        }
        ("", "Endpoints") => {
            out.push(documented(
                info,
                "Endpoints",
                "string",
                &["subsets"],
                Cell::Builtin(|o| json!(endpoints(o))),
            ));
            out.push(age_column());
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            out.push(documented(
                info,
                "AddressType",
                "string",
                &["addressType"],
                Cell::Builtin(|o| json!(str_at(o, "/addressType"))),
            ));
            out.push(documented(
                info,
                "Ports",
                "string",
                &["ports"],
                Cell::Builtin(|o| {
                    let ports: Vec<String> = o
                        .pointer("/ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
                            (Some(n), _) => n.to_string(),
                            (None, Some(name)) => name.to_string(),
                            (None, None) => "*".to_string(),
                        })
                        .collect();
                    placeholder(&list_with_more(&ports, 3), "<unset>")
                }),
            ));
            out.push(documented(
                info,
                "Endpoints",
                "string",
                &["endpoints"],
                Cell::Builtin(|o| {
                    let addresses: Vec<String> = o
                        .pointer("/endpoints")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .flat_map(|e| strings_at(e, "/addresses"))
                        .map(str::to_string)
                        .collect();
                    placeholder(&list_with_more(&addresses, 3), "<unset>")
                }),
            ));
            out.push(age_column());
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            out.push(documented(
                info,
                "Pod-Selector",
                "string",
                &["spec", "podSelector"],
                Cell::Builtin(|o| or_none(selector_string(o.pointer("/spec/podSelector")))),
            ));
            out.push(age_column());
        }
        ("networking.k8s.io", "IngressClass") => {
            out.push(column(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
                Cell::Builtin(|o| json!(str_at(o, "/spec/controller"))),
            ));
            out.push(column(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
                Cell::Builtin(|o| {
                    let Some(p) = o.pointer("/spec/parameters").filter(|p| p.is_object()) else {
                        return json!("<none>");
                    };
                    let mut kind = str_at(p, "/kind").to_string();
                    if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                        kind = format!("{kind}.{group}");
                    }
                    json!(format!("{kind}/{}", str_at(p, "/name")))
                }),
            ));
            out.push(age_column());
        }
        ("", "ResourceQuota") => {
            out.push(column(
                "Request",
                "string",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
                Cell::Builtin(|o| json!(quota_usage(o, false))),
            ));
            out.push(column(
                "Limit",
                "string",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
                Cell::Builtin(|o| json!(quota_usage(o, true))),
            ));
            out.push(age_column());
        }
        ("", "PodTemplate") => {
            out.push(column(
                "Containers",
                "string",
                "Names of each container in the template.",
                Cell::Builtin(|o| template_containers(o, "name")),
            ));
            out.push(column(
                "Images",
                "string",
                "Images referenced by each container in the template.",
                Cell::Builtin(|o| template_containers(o, "image")),
            ));
            out.push(column(
                "Pod Labels",
                "string",
                "The labels for the pod template.",
                Cell::Builtin(|o| or_none(labels_string(o.pointer("/template/metadata/labels")))),
            ));
        }
        ("apps", "ControllerRevision") => {
            out.push(column(
                "Controller",
                "string",
                "Controller of the object",
                Cell::Builtin(|o| json!(controller_of(o))),
            ));
            out.push(documented(
                info,
                "Revision",
                "string",
                &["revision"],
                Cell::Builtin(|o| json!(int_at(o, "/revision"))),
            ));
            out.push(age_column());
        }
        ("node.k8s.io", "RuntimeClass") => {
            out.push(column(
                "Handler",
                "string",
                "",
                Cell::Builtin(|o| json!(str_at(o, "/handler"))),
            ));
            out.push(age_column());
        }
        ("storage.k8s.io", "CSIDriver") => {
            out.push(documented(
                info,
                "AttachRequired",
                "boolean",
                &["spec", "attachRequired"],
                Cell::Builtin(|o| bool_at(o, "/spec/attachRequired", true)),
            ));
            out.push(documented(
                info,
                "PodInfoOnMount",
                "boolean",
                &["spec", "podInfoOnMount"],
                Cell::Builtin(|o| bool_at(o, "/spec/podInfoOnMount", false)),
            ));
            out.push(documented(
                info,
                "StorageCapacity",
                "boolean",
                &["spec", "storageCapacity"],
                Cell::Builtin(|o| bool_at(o, "/spec/storageCapacity", false)),
            ));
            out.push(documented(
                info,
                "TokenRequests",
                "string",
                &["spec", "tokenRequests"],
                Cell::Builtin(|o| {
                    let audiences: Vec<&str> = o
                        .pointer("/spec/tokenRequests")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|t| str_at(t, "/audience"))
                        .collect();
                    placeholder(&audiences.join(","), "<unset>")
                }),
            ));
            out.push(documented(
                info,
                "RequiresRepublish",
                "boolean",
                &["spec", "requiresRepublish"],
                Cell::Builtin(|o| bool_at(o, "/spec/requiresRepublish", false)),
            ));
            out.push(documented(
                info,
                "Modes",
                "string",
                &["spec", "volumeLifecycleModes"],
                Cell::Builtin(|o| or_none(strings_at(o, "/spec/volumeLifecycleModes").join(","))),
            ));
            out.push(age_column());
        }
        ("storage.k8s.io", "CSINode") => {
            out.push(column(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
                Cell::Builtin(|o| {
                    json!(
                        o.pointer("/spec/drivers")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len)
                    )
                }),
            ));
            out.push(age_column());
        }
        ("storage.k8s.io", "VolumeAttachment") => {
            out.push(Column {
                format: "name".into(),
                ..documented(
                    info,
                    "Attacher",
                    "string",
                    &["spec", "attacher"],
                    Cell::Builtin(|o| json!(str_at(o, "/spec/attacher"))),
                )
            });
            out.push(documented(
                info,
                "PV",
                "string",
                &["spec", "source", "persistentVolumeName"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/source/persistentVolumeName"))),
            ));
            out.push(documented(
                info,
                "Node",
                "string",
                &["spec", "nodeName"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/nodeName"))),
            ));
            out.push(documented(
                info,
                "Attached",
                "boolean",
                &["status", "attached"],
                Cell::Builtin(|o| bool_at(o, "/status/attached", false)),
            ));
            out.push(age_column());
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            out.push(age_column());
            // kube describes these columns with its internal type's documentation.
            out.push(column(
                "SignerName",
                "string",
                "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`.",
                Cell::Builtin(|o| json!(str_at(o, "/spec/signerName"))),
            ));
            out.push(column(
                "Requestor",
                "string",
                "Base64-encoded PKCS#10 CSR data",
                Cell::Builtin(|o| json!(str_at(o, "/spec/username"))),
            ));
            out.push(documented(
                info,
                "RequestedDuration",
                "string",
                &["spec", "expirationSeconds"],
                Cell::Builtin(|o| {
                    match o.pointer("/spec/expirationSeconds").and_then(Value::as_i64) {
                        Some(s) => json!(human_duration(s)),
                        None => json!("<none>"),
                    }
                }),
            ));
            out.push(column(
                "Condition",
                "string",
                "Conditions applied to the request, such as approval or denial.",
                Cell::Builtin(|o| json!(csr_condition(o))),
            ));
        }
        ("", "ServiceAccount") => out.push(age_column()),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            out.push(column(
                "Scope",
                "string",
                "Cluster/Namespaced",
                Cell::Builtin(|o| json!(str_at(o, "/spec/scope"))),
            ));
            out.push(column(
                "Versions",
                "string",
                "Served versions",
                Cell::Builtin(|o| {
                    let served: Vec<String> = o
                        .pointer("/spec/versions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|v| v["served"].as_bool() == Some(true))
                        .map(|v| {
                            let name = str_at(v, "/name");
                            if v["storage"].as_bool() == Some(true) {
                                format!("{name}(storage)")
                            } else {
                                name.to_string()
                            }
                        })
                        .collect();
                    json!(served.join(","))
                }),
            ));
            out.push(created_at_column());
            out.push(wide(column(
                "Group",
                "string",
                "API group",
                Cell::Builtin(|o| json!(str_at(o, "/spec/group"))),
            )));
            out.push(wide(column(
                "Kind",
                "string",
                "CustomResource kind",
                Cell::Builtin(|o| json!(str_at(o, "/spec/names/kind"))),
            )));
            out.push(wide(column(
                "ShortNames",
                "string",
                "Short names",
                Cell::Builtin(|o| json!(strings_at(o, "/spec/names/shortNames").join(","))),
            )));
            out.push(wide(column(
                "Established",
                "boolean",
                "Established status",
                Cell::Builtin(|o| {
                    json!(
                        o.pointer("/status/conditions")
                            .and_then(Value::as_array)
                            .is_some_and(|cs| cs
                                .iter()
                                .any(|c| c["type"] == "Established" && c["status"] == "True"))
                    )
                }),
            )));
        }
        ("", "LimitRange") | ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => {
            out.push(created_at_column());
        }
        _ => return None,
    }
    Some(out)
}

/// An HPA's metrics as `current/target` (`cpu: 40%/80%`, `memory: <unknown>/100Mi`), at most
/// two and then `+ N more...`.
fn hpa_targets(o: &Value) -> String {
    let specs = o
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = o
        .pointer("/status/currentMetrics")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let quantity = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let unknown = || "<unknown>".to_string();
    let items: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i);
            let current = |source: &str, field: &str| {
                quantity(status.and_then(|s| s.pointer(&format!("/{source}/current/{field}"))))
                    .unwrap_or_else(unknown)
            };
            let target = |source: &str, field: &str| {
                quantity(spec.pointer(&format!("/{source}/target/{field}"))).unwrap_or_default()
            };
            match spec["type"].as_str().unwrap_or_default() {
                ty @ ("External" | "Object") => {
                    let source = if ty == "External" {
                        "external"
                    } else {
                        "object"
                    };
                    if spec
                        .pointer(&format!("/{source}/target/averageValue"))
                        .is_some()
                    {
                        format!(
                            "{}/{} (avg)",
                            current(source, "averageValue"),
                            target(source, "averageValue")
                        )
                    } else {
                        format!("{}/{}", current(source, "value"), target(source, "value"))
                    }
                }
                "Pods" => format!(
                    "{}/{}",
                    current("pods", "averageValue"),
                    target("pods", "averageValue")
                ),
                ty @ ("Resource" | "ContainerResource") => {
                    let source = if ty == "Resource" {
                        "resource"
                    } else {
                        "containerResource"
                    };
                    let name = str_at(spec, &format!("/{source}/name"));
                    if spec
                        .pointer(&format!("/{source}/target/averageValue"))
                        .is_some()
                    {
                        format!(
                            "{name}: {}/{}",
                            current(source, "averageValue"),
                            target(source, "averageValue")
                        )
                    } else {
                        let percent =
                            |v: Option<&Value>| v.and_then(Value::as_i64).map(|n| format!("{n}%"));
                        let now = percent(status.and_then(|s| {
                            s.pointer(&format!("/{source}/current/averageUtilization"))
                        }))
                        .unwrap_or_else(unknown);
                        let goal =
                            percent(spec.pointer(&format!("/{source}/target/averageUtilization")))
                                .unwrap_or_else(|| "<auto>".into());
                        format!("{name}: {now}/{goal}")
                    }
                }
                _ => "<unknown type>".into(),
            }
        })
        .collect();
    if items.len() > 2 {
        format!("{} + {} more...", items[..2].join(", "), items.len() - 2)
    } else {
        items.join(", ")
    }
}

/// `ip:port` for every ready address and port of every subset, at most three.
fn endpoints(o: &Value) -> String {
    let subsets = o
        .pointer("/subsets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut items = Vec::new();
    for ss in subsets {
        let ips: Vec<&str> = ss
            .pointer("/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| str_at(a, "/ip"))
            .collect();
        let ports = ss
            .pointer("/ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if ports.is_empty() {
            // A headless service's addresses without ports.
            items.extend(ips.iter().map(|ip| ip.to_string()));
            continue;
        }
        for port in ports {
            let port = int_at(port, "/port");
            for ip in &ips {
                items.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    list_with_more(&items, 3)
}

/// `resource: used/hard, …` for the quota's (status) hard limits, `limits.*` in the Limit column
/// and everything else in the Request column, sorted by resource.
fn quota_usage(o: &Value, limits: bool) -> String {
    let Some(hard) = o.pointer("/status/hard").and_then(Value::as_object) else {
        return String::new();
    };
    let mut names: Vec<&String> = hard.keys().collect();
    names.sort();
    let quantity = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    };
    names
        .into_iter()
        .filter(|n| {
            let mut pieces = n.split('.');
            let first = pieces.next();
            (first == Some("limits") && pieces.next().is_some()) == limits
        })
        .map(|n| {
            format!(
                "{n}: {}/{}",
                quantity(o.pointer("/status/used").and_then(|u| u.get(n.as_str()))),
                quantity(hard.get(n.as_str()))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn template_containers(o: &Value, field: &str) -> Value {
    let names: Vec<&str> = o
        .pointer("/template/spec/containers")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|c| c.get(field)?.as_str()).collect())
        .unwrap_or_default();
    json!(names.join(","))
}

/// The controlling owner as kubectl names it (`statefulset.apps/web`), or `<none>`.
fn controller_of(o: &Value) -> String {
    let Some(owner) = o
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|r| r["controller"].as_bool() == Some(true)))
    else {
        return "<none>".into();
    };
    let kind = str_at(owner, "/kind");
    let name = str_at(owner, "/name");
    let group = str_at(owner, "/apiVersion")
        .rsplit_once('/')
        .map_or("", |(g, _)| g);
    if kind.is_empty() {
        return name.to_string();
    }
    let kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{name}", kind.to_lowercase())
}

/// `Pending`, `Approved` or `Denied`, then `,Failed` and `,Issued` as they apply.
fn csr_condition(o: &Value) -> String {
    let types: Vec<&str> = o
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| str_at(c, "/type"))
        .collect();
    let mut out = if types.contains(&"Denied") {
        "Denied"
    } else if types.contains(&"Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if types.contains(&"Failed") {
        out.push_str(",Failed");
    }
    if !str_at(o, "/status/certificate").is_empty() {
        out.push_str(",Issued");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpa_targets_read_as_kubectls() {
        for (metrics, current, want) in [
            (json!([]), json!([]), "<none>"),
            (
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42}}}]),
                "cpu: 42%/80%",
            ),
            (
                json!([{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                    {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "10"}}}]),
                json!([]),
                "memory: <unknown>/100Mi, <unknown>/1k + 1 more...",
            ),
            (
                json!([{"type": "Object", "object": {"metric": {"name": "hits"}, "target": {"type": "AverageValue", "averageValue": "5"}}}]),
                json!([{"type": "Object", "object": {"current": {"averageValue": "3"}}}]),
                "3/5 (avg)",
            ),
            (
                json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization"}}}]),
                json!([]),
                "cpu: <unknown>/<auto>",
            ),
        ] {
            let o = json!({"spec": {"metrics": metrics}, "status": {"currentMetrics": current}});
            assert_eq!(hpa_targets(&o), want, "{metrics}");
        }
    }

    #[test]
    fn endpoints_read_as_kubectls() {
        for (subsets, want) in [
            (json!([]), "<none>"),
            (
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}]}]),
                "10.0.0.1:80,[fd00::1]:80",
            ),
            (
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]),
                "10.0.0.1,10.0.0.2",
            ),
            (
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "notReadyAddresses": [{"ip": "10.0.0.3"}],
                    "ports": [{"port": 80}, {"port": 443}]}]),
                "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
            ),
        ] {
            assert_eq!(endpoints(&json!({"subsets": subsets})), want, "{subsets}");
        }
    }

    #[test]
    fn quota_usage_splits_requests_and_limits() {
        let o = json!({"status": {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "1Gi", "limits": "3"},
            "used": {"pods": "2", "limits.memory": "512Mi"}}});
        assert_eq!(
            quota_usage(&o, false),
            "limits: 0/3, pods: 2/10, requests.cpu: 0/1"
        );
        assert_eq!(quota_usage(&o, true), "limits.memory: 512Mi/1Gi");
        assert_eq!(
            quota_usage(&json!({"spec": {"hard": {"pods": "1"}}}), false),
            ""
        );
    }

    #[test]
    fn controller_and_csr_condition_cells() {
        let owned = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "p"},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}});
        assert_eq!(controller_of(&owned), "statefulset.apps/web");
        assert_eq!(controller_of(&json!({})), "<none>");
        for (status, want) in [
            (json!({}), "Pending"),
            (
                json!({"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="}),
                "Approved,Issued",
            ),
            (
                json!({"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}),
                "Denied,Failed",
            ),
        ] {
            assert_eq!(csr_condition(&json!({"status": status})), want);
        }
    }
}
