//! kubectl's columns for more built-in kinds, as kube-apiserver's printers define them (names,
//! types, priorities and descriptions read off kube-apiserver 1.37): Node, ReplicaSet,
//! ReplicationController, StatefulSet, DaemonSet, Job, CronJob, Ingress, PodDisruptionBudget,
//! Lease, RoleBinding and ClusterRoleBinding.

use serde_json::{Value, json};

use super::{
    Cell, Column, age_column, age_of, column, containers, documented, int_at, labels_string,
    name_column, or_none, placeholder, selector_string, str_at, template_columns, wide,
};
use crate::registry::ResourceInfo;

fn condition_true(o: &Value, ty: &str) -> bool {
    o.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

fn pod_template_columns(out: &mut Vec<Column>) {
    template_columns(out, |o| containers(o, "name"), |o| containers(o, "image"));
}

fn selector_column(info: &ResourceInfo) -> Column {
    wide(documented(
        info,
        "Selector",
        "string",
        &["spec", "selector"],
        Cell::Builtin(|o| or_none(selector_string(o.pointer("/spec/selector")))),
    ))
}

fn node_address(o: &Value, ty: &str) -> Value {
    o.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|a| a["type"] == ty))
        .and_then(|a| a["address"].as_str())
        .map_or(json!("<none>"), |a| json!(a))
}

fn or_unknown(s: &str) -> Value {
    placeholder(s, "<unknown>")
}

/// The columns of `info`'s kind, when it is one of this module's.
pub(super) fn columns(info: &ResourceInfo) -> Option<Vec<Column>> {
    if info.group.is_empty() && info.kind == "Event" {
        return Some(event_columns());
    }
    let mut out = vec![name_column()];
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "Node") => {
            out.push(column(
                "Status",
                "string",
                "The status of the node",
                Cell::Builtin(|o| {
                    let ready = o
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                        .map(|c| c["status"] == "True");
                    let mut s = match ready {
                        Some(true) => "Ready".to_string(),
                        Some(false) => "NotReady".to_string(),
                        None => "Unknown".to_string(),
                    };
                    if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                        s.push_str(",SchedulingDisabled");
                    }
                    json!(s)
                }),
            ));
            out.push(column(
                "Roles",
                "string",
                "The roles of the node",
                Cell::Builtin(|o| {
                    let mut roles: Vec<String> = o
                        .pointer("/metadata/labels")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| {
                                    if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                                        (!r.is_empty()).then(|| r.to_string())
                                    } else if k == "kubernetes.io/role" {
                                        v.as_str().filter(|v| !v.is_empty()).map(String::from)
                                    } else {
                                        None
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    roles.sort();
                    roles.dedup();
                    or_none(roles.join(","))
                }),
            ));
            out.push(age_column());
            out.push(documented(
                info,
                "Version",
                "string",
                &["status", "nodeInfo", "kubeletVersion"],
                Cell::Builtin(|o| json!(str_at(o, "/status/nodeInfo/kubeletVersion"))),
            ));
            out.push(wide(documented(
                info,
                "Internal-IP",
                "string",
                &["status", "addresses"],
                Cell::Builtin(|o| node_address(o, "InternalIP")),
            )));
            out.push(wide(documented(
                info,
                "External-IP",
                "string",
                &["status", "addresses"],
                Cell::Builtin(|o| node_address(o, "ExternalIP")),
            )));
            out.push(wide(documented(
                info,
                "OS-Image",
                "string",
                &["status", "nodeInfo", "osImage"],
                Cell::Builtin(|o| or_unknown(str_at(o, "/status/nodeInfo/osImage"))),
            )));
            out.push(wide(documented(
                info,
                "Kernel-Version",
                "string",
                &["status", "nodeInfo", "kernelVersion"],
                Cell::Builtin(|o| or_unknown(str_at(o, "/status/nodeInfo/kernelVersion"))),
            )));
            out.push(wide(documented(
                info,
                "Container-Runtime",
                "string",
                &["status", "nodeInfo", "containerRuntimeVersion"],
                Cell::Builtin(|o| {
                    or_unknown(str_at(o, "/status/nodeInfo/containerRuntimeVersion"))
                }),
            )));
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            out.push(documented(
                info,
                "Desired",
                "integer",
                &["spec", "replicas"],
                Cell::Builtin(|o| json!(int_at(o, "/spec/replicas"))),
            ));
            out.push(documented(
                info,
                "Current",
                "integer",
                &["status", "replicas"],
                Cell::Builtin(|o| json!(int_at(o, "/status/replicas"))),
            ));
            out.push(documented(
                info,
                "Ready",
                "integer",
                &["status", "readyReplicas"],
                Cell::Builtin(|o| json!(int_at(o, "/status/readyReplicas"))),
            ));
            out.push(age_column());
            pod_template_columns(&mut out);
            if info.group.is_empty() {
                out.push(wide(documented(
                    info,
                    "Selector",
                    "string",
                    &["spec", "selector"],
                    Cell::Builtin(|o| or_none(labels_string(o.pointer("/spec/selector")))),
                )));
            } else {
                out.push(selector_column(info));
            }
        }
        ("apps", "StatefulSet") => {
            out.push(column(
                "Ready",
                "string",
                "Number of the pod with ready state",
                Cell::Builtin(|o| {
                    json!(format!(
                        "{}/{}",
                        int_at(o, "/status/readyReplicas"),
                        int_at(o, "/spec/replicas")
                    ))
                }),
            ));
            out.push(age_column());
            pod_template_columns(&mut out);
        }
        ("apps", "DaemonSet") => {
            out.push(documented(
                info,
                "Desired",
                "integer",
                &["status", "desiredNumberScheduled"],
                Cell::Builtin(|o| json!(int_at(o, "/status/desiredNumberScheduled"))),
            ));
            out.push(documented(
                info,
                "Current",
                "integer",
                &["status", "currentNumberScheduled"],
                Cell::Builtin(|o| json!(int_at(o, "/status/currentNumberScheduled"))),
            ));
            out.push(documented(
                info,
                "Ready",
                "integer",
                &["status", "numberReady"],
                Cell::Builtin(|o| json!(int_at(o, "/status/numberReady"))),
            ));
            out.push(column(
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod",
                Cell::Builtin(|o| json!(int_at(o, "/status/updatedNumberScheduled"))),
            ));
            out.push(documented(
                info,
                "Available",
                "integer",
                &["status", "numberAvailable"],
                Cell::Builtin(|o| json!(int_at(o, "/status/numberAvailable"))),
            ));
            out.push(documented(
                info,
                "Node Selector",
                "string",
                &["spec", "template", "spec", "nodeSelector"],
                Cell::Builtin(|o| {
                    or_none(labels_string(o.pointer("/spec/template/spec/nodeSelector")))
                }),
            ));
            out.push(age_column());
            pod_template_columns(&mut out);
            out.push(selector_column(info));
        }
        ("batch", "Job") => {
            out.push(column(
                "Status",
                "string",
                "Status of the job.",
                Cell::Builtin(|o| {
                    json!(if condition_true(o, "Complete") {
                        "Complete"
                    } else if condition_true(o, "Failed") {
                        "Failed"
                    } else if !o["metadata"]["deletionTimestamp"].is_null() {
                        "Terminating"
                    } else if condition_true(o, "Suspended") {
                        "Suspended"
                    } else if condition_true(o, "FailureTarget") {
                        "FailureTarget"
                    } else if condition_true(o, "SuccessCriteriaMet") {
                        "SuccessCriteriaMet"
                    } else {
                        "Running"
                    })
                }),
            ));
            out.push(documented(
                info,
                "Completions",
                "string",
                &["status", "succeeded"],
                Cell::Builtin(|o| {
                    let succeeded = int_at(o, "/status/succeeded");
                    let parallelism = o.pointer("/spec/parallelism").and_then(Value::as_i64);
                    json!(
                        match o.pointer("/spec/completions").and_then(Value::as_i64) {
                            Some(c) => format!("{succeeded}/{c}"),
                            None => match parallelism {
                                Some(p) if p > 1 => format!("{succeeded}/1 of {p}"),
                                _ => format!("{succeeded}/1"),
                            },
                        }
                    )
                }),
            ));
            out.push(column(
                "Duration",
                "string",
                "Time required to complete the job.",
                Cell::Builtin(|o| {
                    let at = |p: &str| {
                        o.pointer(p)
                            .and_then(Value::as_str)
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    };
                    json!(
                        match (at("/status/startTime"), at("/status/completionTime")) {
                            (None, _) => String::new(),
                            (Some(s), None) => super::human_duration(
                                jiff::Timestamp::now().as_second() - s.as_second()
                            ),
                            (Some(s), Some(c)) =>
                                super::human_duration(c.as_second() - s.as_second()),
                        }
                    )
                }),
            ));
            out.push(age_column());
            pod_template_columns(&mut out);
            out.push(selector_column(info));
        }
        ("batch", "CronJob") => {
            out.push(documented(
                info,
                "Schedule",
                "string",
                &["spec", "schedule"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/schedule"))),
            ));
            out.push(documented(
                info,
                "Timezone",
                "string",
                &["spec", "timeZone"],
                Cell::Builtin(|o| or_none(str_at(o, "/spec/timeZone").to_string())),
            ));
            out.push(documented(
                info,
                "Suspend",
                "boolean",
                &["spec", "suspend"],
                // kube prints the flag as a word, though the column says boolean.
                Cell::Builtin(|o| {
                    let suspended = o.pointer("/spec/suspend").and_then(Value::as_bool);
                    json!(if suspended == Some(true) {
                        "True"
                    } else {
                        "False"
                    })
                }),
            ));
            out.push(documented(
                info,
                "Active",
                "integer",
                &["status", "active"],
                Cell::Builtin(|o| json!(strings_len(o, "/status/active"))),
            ));
            out.push(documented(
                info,
                "Last Schedule",
                "string",
                &["status", "lastScheduleTime"],
                Cell::Builtin(|o| {
                    match o
                        .pointer("/status/lastScheduleTime")
                        .and_then(Value::as_str)
                    {
                        Some(t) => age_of(Some(t)),
                        None => json!("<none>"),
                    }
                }),
            ));
            out.push(age_column());
            template_columns(
                &mut out,
                |o| job_template_containers(o, "name"),
                |o| job_template_containers(o, "image"),
            );
            out.push(wide(documented(
                info,
                "Selector",
                "string",
                &["spec", "jobTemplate", "spec", "selector"],
                Cell::Builtin(|o| {
                    or_none(selector_string(
                        o.pointer("/spec/jobTemplate/spec/selector"),
                    ))
                }),
            )));
        }
        ("networking.k8s.io", "Ingress") => {
            out.push(column(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for additional configuration",
                Cell::Builtin(|o| or_none(str_at(o, "/spec/ingressClassName").to_string())),
            ));
            out.push(column(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
                Cell::Builtin(|o| {
                    let hosts: Vec<&str> = o
                        .pointer("/spec/rules")
                        .and_then(Value::as_array)
                        .map(|rs| {
                            rs.iter()
                                .filter_map(|r| r["host"].as_str().filter(|h| !h.is_empty()))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!(match hosts.len() {
                        0 => "*".to_string(),
                        n if n > 3 => format!("{} + {} more...", hosts[..3].join(","), n - 3),
                        _ => hosts.join(","),
                    })
                }),
            ));
            out.push(column(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
                Cell::Builtin(|o| {
                    let addresses: Vec<&str> = o
                        .pointer("/status/loadBalancer/ingress")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .filter_map(|i| i["ip"].as_str().or_else(|| i["hostname"].as_str()))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!(addresses.join(","))
                }),
            ));
            out.push(column(
                "Ports",
                "string",
                "Ports of TLS configurations that open",
                Cell::Builtin(|o| {
                    let tls = o
                        .pointer("/spec/tls")
                        .and_then(Value::as_array)
                        .is_some_and(|t| !t.is_empty());
                    json!(if tls { "80, 443" } else { "80" })
                }),
            ));
            out.push(age_column());
        }
        ("policy", "PodDisruptionBudget") => {
            out.push(column(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
                Cell::Builtin(|o| int_or_string_at(o, "/spec/minAvailable")),
            ));
            out.push(column(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
                Cell::Builtin(|o| int_or_string_at(o, "/spec/maxUnavailable")),
            ));
            out.push(column(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
                Cell::Builtin(|o| json!(int_at(o, "/status/disruptionsAllowed"))),
            ));
            out.push(age_column());
        }
        ("coordination.k8s.io", "Lease") => {
            out.push(documented(
                info,
                "Holder",
                "string",
                &["spec", "holderIdentity"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/holderIdentity"))),
            ));
            out.push(age_column());
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            let binding = if info.kind == "RoleBinding" {
                "roleBinding"
            } else {
                "clusterRoleBinding"
            };
            let role_description = if info.kind == "RoleBinding" {
                "roleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."
            } else {
                "roleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."
            };
            out.push(column(
                "Role",
                "string",
                role_description,
                Cell::Builtin(|o| {
                    json!(format!(
                        "{}/{}",
                        str_at(o, "/roleRef/kind"),
                        str_at(o, "/roleRef/name")
                    ))
                }),
            ));
            out.push(age_column());
            out.push(wide(column(
                "Users",
                "string",
                &format!("Users in the {binding}"),
                Cell::Builtin(|o| json!(subjects(o, "User").join(", "))),
            )));
            out.push(wide(column(
                "Groups",
                "string",
                &format!("Groups in the {binding}"),
                Cell::Builtin(|o| json!(subjects(o, "Group").join(", "))),
            )));
            out.push(wide(column(
                "ServiceAccounts",
                "string",
                &format!("ServiceAccounts in the {binding}"),
                Cell::Builtin(|o| json!(subjects(o, "ServiceAccount").join(", "))),
            )));
        }
        ("", "PersistentVolumeClaim") => {
            out.push(documented(
                info,
                "Status",
                "string",
                &["status", "phase"],
                Cell::Builtin(|o| json!(str_at(o, "/status/phase"))),
            ));
            out.push(documented(
                info,
                "Volume",
                "string",
                &["spec", "volumeName"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/volumeName"))),
            ));
            out.push(documented(
                info,
                "Capacity",
                "string",
                &["status", "capacity"],
                Cell::Builtin(|o| json!(str_at(o, "/status/capacity/storage"))),
            ));
            out.push(documented(
                info,
                "Access Modes",
                "string",
                &["status", "accessModes"],
                Cell::Builtin(|o| access_modes(o, "/status/accessModes")),
            ));
            out.push(column(
                "StorageClass",
                "string",
                "StorageClass of the pvc",
                Cell::Builtin(|o| json!(str_at(o, "/spec/storageClassName"))),
            ));
            out.push(column(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pvc",
                Cell::Builtin(|o| or_unset(str_at(o, "/spec/volumeAttributesClassName"))),
            ));
            out.push(age_column());
            out.push(wide(documented(
                info,
                "VolumeMode",
                "string",
                &["spec", "volumeMode"],
                Cell::Builtin(|o| or_unset(str_at(o, "/spec/volumeMode"))),
            )));
        }
        ("", "PersistentVolume") => {
            out.push(documented(
                info,
                "Capacity",
                "string",
                &["spec", "capacity"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/capacity/storage"))),
            ));
            out.push(documented(
                info,
                "Access Modes",
                "string",
                &["spec", "accessModes"],
                Cell::Builtin(|o| access_modes(o, "/spec/accessModes")),
            ));
            out.push(documented(
                info,
                "Reclaim Policy",
                "string",
                &["spec", "persistentVolumeReclaimPolicy"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/persistentVolumeReclaimPolicy"))),
            ));
            out.push(documented(
                info,
                "Status",
                "string",
                &["status", "phase"],
                Cell::Builtin(|o| json!(str_at(o, "/status/phase"))),
            ));
            out.push(documented(
                info,
                "Claim",
                "string",
                &["spec", "claimRef"],
                Cell::Builtin(|o| {
                    json!(match (
                        str_at(o, "/spec/claimRef/namespace"),
                        str_at(o, "/spec/claimRef/name")
                    ) {
                        (_, "") => String::new(),
                        (ns, name) => format!("{ns}/{name}"),
                    })
                }),
            ));
            out.push(column(
                "StorageClass",
                "string",
                "StorageClass of the pv",
                Cell::Builtin(|o| json!(str_at(o, "/spec/storageClassName"))),
            ));
            out.push(column(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pv",
                Cell::Builtin(|o| or_unset(str_at(o, "/spec/volumeAttributesClassName"))),
            ));
            out.push(documented(
                info,
                "Reason",
                "string",
                &["status", "reason"],
                Cell::Builtin(|o| json!(str_at(o, "/status/reason"))),
            ));
            out.push(age_column());
            out.push(wide(documented(
                info,
                "VolumeMode",
                "string",
                &["spec", "volumeMode"],
                Cell::Builtin(|o| or_unset(str_at(o, "/spec/volumeMode"))),
            )));
        }
        ("storage.k8s.io", "StorageClass") => {
            // A default class's name says so.
            out[0].cell = Cell::Builtin(|o| {
                let name = str_at(o, "/metadata/name");
                let default = [
                    "storageclass.kubernetes.io/is-default-class",
                    "storageclass.beta.kubernetes.io/is-default-class",
                ]
                .iter()
                .any(|k| {
                    o.pointer("/metadata/annotations")
                        .and_then(|a| a.get(*k))
                        .and_then(Value::as_str)
                        == Some("true")
                });
                json!(if default {
                    format!("{name} (default)")
                } else {
                    name.to_string()
                })
            });
            out.push(documented(
                info,
                "Provisioner",
                "string",
                &["provisioner"],
                Cell::Builtin(|o| json!(str_at(o, "/provisioner"))),
            ));
            out.push(documented(
                info,
                "ReclaimPolicy",
                "string",
                &["reclaimPolicy"],
                Cell::Builtin(|o| {
                    json!(match str_at(o, "/reclaimPolicy") {
                        "" => "Delete",
                        p => p,
                    })
                }),
            ));
            out.push(documented(
                info,
                "VolumeBindingMode",
                "string",
                &["volumeBindingMode"],
                Cell::Builtin(|o| {
                    json!(match str_at(o, "/volumeBindingMode") {
                        "" => "Immediate",
                        m => m,
                    })
                }),
            ));
            out.push(documented(
                info,
                "AllowVolumeExpansion",
                "string",
                &["allowVolumeExpansion"],
                Cell::Builtin(|o| {
                    json!(o.pointer("/allowVolumeExpansion").and_then(Value::as_bool) == Some(true))
                }),
            ));
            out.push(age_column());
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            out.push(documented(
                info,
                "Value",
                "integer",
                &["value"],
                Cell::Builtin(|o| json!(int_at(o, "/value"))),
            ));
            out.push(documented(
                info,
                "Global-Default",
                "boolean",
                &["globalDefault"],
                Cell::Builtin(|o| {
                    json!(o.pointer("/globalDefault").and_then(Value::as_bool) == Some(true))
                }),
            ));
            out.push(age_column());
            out.push(documented(
                info,
                "PreemptionPolicy",
                "string",
                &["preemptionPolicy"],
                Cell::Builtin(|o| {
                    json!(match str_at(o, "/preemptionPolicy") {
                        "" => "PreemptLowerPriority",
                        p => p,
                    })
                }),
            ));
        }
        _ => return None,
    }
    Some(out)
}

/// Access modes as kubectl abbreviates them (`RWO,ROX,RWX,RWOP`).
fn access_modes(o: &Value, pointer: &str) -> Value {
    let modes: Vec<&str> = o
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|m| match m.as_str()? {
                    "ReadWriteOnce" => Some("RWO"),
                    "ReadOnlyMany" => Some("ROX"),
                    "ReadWriteMany" => Some("RWX"),
                    "ReadWriteOncePod" => Some("RWOP"),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    json!(modes.join(","))
}

fn or_unset(s: &str) -> Value {
    placeholder(s, "<unset>")
}

/// `kubectl get events`: when, what and about which object; the name last, wide only.
fn event_columns() -> Vec<Column> {
    fn first_seen(o: &Value) -> Value {
        match o.pointer("/firstTimestamp").and_then(Value::as_str) {
            Some(t) => age_of(Some(t)),
            None => age_of(o.pointer("/eventTime").and_then(Value::as_str)),
        }
    }
    vec![
        column(
            "Last Seen",
            "string",
            "The time at which the most recent occurrence of this event was recorded.",
            Cell::Builtin(|o| {
                if let Some(t) = o
                    .pointer("/series/lastObservedTime")
                    .and_then(Value::as_str)
                {
                    return age_of(Some(t));
                }
                match o.pointer("/lastTimestamp").and_then(Value::as_str) {
                    Some(t) => age_of(Some(t)),
                    None => first_seen(o),
                }
            }),
        ),
        column(
            "Type",
            "string",
            "Type of this event (Normal, Warning), new types could be added in the future",
            Cell::Builtin(|o| json!(str_at(o, "/type"))),
        ),
        column(
            "Reason",
            "string",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            Cell::Builtin(|o| json!(str_at(o, "/reason"))),
        ),
        column(
            "Object",
            "string",
            "The object that this event is about.",
            Cell::Builtin(|o| {
                let kind = str_at(o, "/involvedObject/kind").to_lowercase();
                json!(match str_at(o, "/involvedObject/name") {
                    "" => kind,
                    name => format!("{kind}/{name}"),
                })
            }),
        ),
        wide(column(
            "Subobject",
            "string",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
            Cell::Builtin(|o| json!(str_at(o, "/involvedObject/fieldPath"))),
        )),
        wide(column(
            "Source",
            "string",
            "The component reporting this event. Should be a short machine understandable string.",
            Cell::Builtin(|o| {
                let (component, host) = (str_at(o, "/source/component"), str_at(o, "/source/host"));
                let (controller, instance) = (
                    str_at(o, "/reportingComponent"),
                    str_at(o, "/reportingInstance"),
                );
                let (who, where_) = if component.is_empty() {
                    (controller, instance)
                } else {
                    (component, host)
                };
                json!(if where_.is_empty() {
                    who.to_string()
                } else {
                    format!("{who}, {where_}")
                })
            }),
        )),
        column(
            "Message",
            "string",
            "A human-readable description of the status of this operation.",
            Cell::Builtin(|o| json!(str_at(o, "/message").trim())),
        ),
        wide(column(
            "First Seen",
            "string",
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            Cell::Builtin(first_seen),
        )),
        wide(column(
            "Count",
            "string",
            "The number of times this event has occurred.",
            Cell::Builtin(|o| {
                let count = match o.pointer("/series/count").and_then(Value::as_i64) {
                    Some(c) => c,
                    None => match int_at(o, "/count") {
                        0 => 1,
                        c => c,
                    },
                };
                json!(count)
            }),
        )),
        wide(name_column()),
    ]
}

fn strings_len(o: &Value, pointer: &str) -> usize {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn job_template_containers(o: &Value, field: &str) -> Value {
    let names: Vec<&str> = o
        .pointer("/spec/jobTemplate/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|c| c.get(field)?.as_str()).collect())
        .unwrap_or_default();
    json!(names.join(","))
}

fn int_or_string_at(o: &Value, pointer: &str) -> Value {
    match o.pointer(pointer) {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

/// A binding's subjects of one kind, as kube prints them (`namespace/name` for accounts).
fn subjects(o: &Value, kind: &str) -> Vec<String> {
    o.pointer("/subjects")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter(|s| s["kind"] == kind)
                .map(|s| {
                    let name = s["name"].as_str().unwrap_or_default();
                    match s["namespace"].as_str() {
                        Some(ns) if kind == "ServiceAccount" => format!("{ns}/{name}"),
                        _ => name.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}
