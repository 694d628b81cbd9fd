//! Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`, also `v1beta1`), which
//! `kubectl get` asks for: a `meta.k8s.io` Table with column definitions and one row per
//! object. Custom resources get `Name` plus their CRD version's `additionalPrinterColumns`
//! (`Name` and `Age` when it has none); built-in kinds get the columns kubectl shows for the
//! common ones and `Name`/`Age` otherwise (`kinds.rs` has the rest of them). `includeObject` (`None`,
//! `Metadata` — the default — or `Object`) says what each row carries.

mod extra;
mod kinds;

use jsonpath_rust::JsonPath;
use serde_json::{Value, json};

use crate::errors::{Error, Result};
use crate::registry::{PrinterColumn, ResourceInfo};

/// A Table was asked for, in this `meta.k8s.io` version.
pub(crate) fn requested(accept: Option<&str>) -> Option<&'static str> {
    let accept = accept?;
    // The first media type that is a Table wins; kubectl lists v1 before v1beta1.
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if has("as=Table") && has("g=meta.k8s.io") {
            if has("v=v1") {
                return Some("meta.k8s.io/v1");
            }
            if has("v=v1beta1") {
                return Some("meta.k8s.io/v1beta1");
            }
        }
    }
    None
}

/// What each row carries (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub(crate) fn of(value: Option<&str>) -> Result<Self> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Include::Metadata),
            "None" => Ok(Include::None),
            "Object" => Ok(Include::Object),
            other => Err(Error::bad_request(format!(
                "includeObject must be one of None, Metadata or Object, not {other:?}"
            ))),
        }
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One column: its definition and how a cell is computed.
struct Column {
    name: String,
    ty: &'static str,
    format: String,
    description: String,
    priority: i64,
    cell: Cell,
}

enum Cell {
    Name,
    Age,
    /// The creation timestamp itself (kube's `CREATED AT` of kinds without a printer).
    Created,
    /// A CRD printer column's JSONPath, with its declared type.
    Path(String, String),
    /// A built-in kind's computed column.
    Builtin(fn(&Value) -> Value),
}

fn column(name: &str, ty: &'static str, description: &str, cell: Cell) -> Column {
    Column {
        name: name.into(),
        ty,
        format: String::new(),
        description: description.into(),
        priority: 0,
        cell,
    }
}

/// A field's description from the kind's schema, as kube-apiserver's printers take it from the
/// API's documentation (falls back to `fallback`).
fn doc(info: &ResourceInfo, pointer: &[&str], fallback: &str) -> String {
    let mut node =
        flotilla_schema::builtin::builtins().kind(&info.group, &info.version, &info.kind);
    for p in pointer {
        node = node.and_then(|n| n.field(p));
    }
    node.and_then(|n| n.description())
        .unwrap_or(fallback)
        .to_string()
}

fn documented(
    info: &ResourceInfo,
    name: &str,
    ty: &'static str,
    pointer: &[&str],
    cell: Cell,
) -> Column {
    Column {
        description: doc(info, pointer, ""),
        ..column(name, ty, "", cell)
    }
}

fn name_column() -> Column {
    Column {
        format: "name".into(),
        ..column("Name", "string", NAME_DESCRIPTION, Cell::Name)
    }
}

fn age_column() -> Column {
    column("Age", "string", AGE_DESCRIPTION, Cell::Age)
}

impl Column {
    fn with_cell(self, cell: Cell) -> Column {
        Column { cell, ..self }
    }
}

fn wide(mut c: Column) -> Column {
    c.priority = 1;
    c
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn count_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len() as i64)
}

fn or_none(s: String) -> Value {
    placeholder(&s, "<none>")
}

/// `s`, or kubectl's placeholder (`<none>`, `<unset>`, `<unknown>`) when it is empty.
fn placeholder(s: &str, empty: &str) -> Value {
    json!(if s.is_empty() { empty } else { s })
}

fn columns_of(info: &ResourceInfo) -> Vec<Column> {
    if info.custom {
        let mut out = vec![name_column()];
        if info.printer_columns.is_empty() {
            // A CRD's default Age column is typed `date` (a built-in's is `string`).
            out.push(Column {
                ty: "date",
                ..age_column()
            });
        }
        for p in &info.printer_columns {
            out.push(printer(p));
        }
        return out;
    }
    if let Some(columns) = kinds::columns(info).or_else(|| extra::columns(info)) {
        return columns;
    }
    let mut out = vec![name_column()];
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "ConfigMap") => out.push(documented(
            info,
            "Data",
            "string",
            &["data"],
            Cell::Builtin(|o| json!(count_at(o, "/data") + count_at(o, "/binaryData"))),
        )),
        ("", "Secret") => {
            out.push(documented(
                info,
                "Type",
                "string",
                &["type"],
                Cell::Builtin(|o| json!(str_at(o, "/type"))),
            ));
            out.push(documented(
                info,
                "Data",
                "string",
                &["data"],
                Cell::Builtin(|o| json!(count_at(o, "/data"))),
            ));
        }
        ("", "Namespace") => out.push(column(
            "Status",
            "string",
            "The status of the namespace",
            Cell::Builtin(|o| json!(str_at(o, "/status/phase"))),
        )),
        ("", "Service") => {
            out.push(documented(
                info,
                "Type",
                "string",
                &["spec", "type"],
                Cell::Builtin(|o| json!(str_at(o, "/spec/type"))),
            ));
            out.push(documented(
                info,
                "Cluster-IP",
                "string",
                &["spec", "clusterIP"],
                Cell::Builtin(|o| or_none(str_at(o, "/spec/clusterIP").to_string())),
            ));
            out.push(documented(
                info,
                "External-IP",
                "string",
                &["spec", "externalIPs"],
                Cell::Builtin(|o| {
                    let ips: Vec<&str> = o
                        .pointer("/spec/externalIPs")
                        .and_then(Value::as_array)
                        .map(|l| l.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    or_none(ips.join(","))
                }),
            ));
            out.push(documented(
                info,
                "Port(s)",
                "string",
                &["spec", "ports"],
                Cell::Builtin(|o| {
                    let ports: Vec<String> = o
                        .pointer("/spec/ports")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .map(|p| {
                                    let node = p
                                        .get("nodePort")
                                        .and_then(Value::as_i64)
                                        .map(|n| format!(":{n}"))
                                        .unwrap_or_default();
                                    format!(
                                        "{}{node}/{}",
                                        int_at(p, "/port"),
                                        p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    or_none(ports.join(","))
                }),
            ));
            out.push(age_column());
            out.push(wide(documented(
                info,
                "Selector",
                "string",
                &["spec", "selector"],
                Cell::Builtin(|o| or_none(labels_string(o.pointer("/spec/selector")))),
            )));
            return out;
        }
        ("apps", "Deployment") => {
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
            out.push(documented(
                info,
                "Up-to-date",
                "string",
                &["status", "updatedReplicas"],
                Cell::Builtin(|o| json!(int_at(o, "/status/updatedReplicas"))),
            ));
            out.push(documented(
                info,
                "Available",
                "string",
                &["status", "availableReplicas"],
                Cell::Builtin(|o| json!(int_at(o, "/status/availableReplicas"))),
            ));
            out.push(age_column());
            template_columns(
                &mut out,
                |o| containers(o, "name"),
                |o| containers(o, "image"),
            );
            out.push(wide(documented(
                info,
                "Selector",
                "string",
                &["spec", "selector"],
                Cell::Builtin(|o| or_none(selector_string(o.pointer("/spec/selector")))),
            )));
            return out;
        }
        ("", "Pod") => {
            out.push(column(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
                Cell::Builtin(|o| {
                    let total = o
                        .pointer("/spec/containers")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    let ready = o
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .map_or(0, |l| {
                            l.iter()
                                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                                .count()
                        });
                    json!(format!("{ready}/{total}"))
                }),
            ));
            out.push(column(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
                Cell::Builtin(|o| {
                    let reason = str_at(o, "/status/reason");
                    json!(if reason.is_empty() {
                        match str_at(o, "/status/phase") {
                            "" => "Pending",
                            p => p,
                        }
                    } else {
                        reason
                    })
                }),
            ));
            out.push(column(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                Cell::Builtin(|o| {
                    let n: i64 = o
                        .pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .map_or(0, |l| l.iter().map(|c| int_at(c, "/restartCount")).sum());
                    json!(n.to_string())
                }),
            ));
            out.push(age_column());
            out.push(wide(documented(
                info,
                "IP",
                "string",
                &["status", "podIP"],
                Cell::Builtin(|o| or_none(str_at(o, "/status/podIP").to_string())),
            )));
            out.push(wide(documented(
                info,
                "Node",
                "string",
                &["spec", "nodeName"],
                Cell::Builtin(|o| or_none(str_at(o, "/spec/nodeName").to_string())),
            )));
            out.push(wide(documented(
                info,
                "Nominated Node",
                "string",
                &["status", "nominatedNodeName"],
                Cell::Builtin(|o| or_none(str_at(o, "/status/nominatedNodeName").to_string())),
            )));
            out.push(wide(documented(
                info,
                "Readiness Gates",
                "string",
                &["spec", "readinessGates"],
                Cell::Builtin(|o| {
                    let gates: Vec<&str> = o
                        .pointer("/spec/readinessGates")
                        .and_then(Value::as_array)
                        .map(|l| {
                            l.iter()
                                .filter_map(|g| g["conditionType"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    if gates.is_empty() {
                        return json!("<none>");
                    }
                    let met = gates
                        .iter()
                        .filter(|g| {
                            o.pointer("/status/conditions")
                                .and_then(Value::as_array)
                                .is_some_and(|cs| {
                                    cs.iter().any(|c| c["type"] == **g && c["status"] == "True")
                                })
                        })
                        .count();
                    json!(format!("{met}/{}", gates.len()))
                }),
            )));
            return out;
        }
        _ => {}
    }
    out.push(age_column());
    out
}

/// `k=v,k2=v2`, as kubectl prints a map of labels.
fn labels_string(map: Option<&Value>) -> String {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A LabelSelector as kube prints one: `k=v` for matchLabels, then `k in (a,b)`, `k notin
/// (a)`, `k`, `!k` for matchExpressions.
fn selector_string(selector: Option<&Value>) -> String {
    let Some(sel) = selector else {
        return String::new();
    };
    let mut parts = vec![labels_string(sel.get("matchLabels"))];
    parts.retain(|p| !p.is_empty());
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        parts.push(
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                other => format!("{key} {other}"),
            },
        );
    }
    parts.join(",")
}

/// The wide Containers and Images columns of a kind with a pod template.
fn template_columns(
    out: &mut Vec<Column>,
    names: fn(&Value) -> Value,
    images: fn(&Value) -> Value,
) {
    out.push(wide(column(
        "Containers",
        "string",
        "Names of each container in the template.",
        Cell::Builtin(names),
    )));
    out.push(wide(column(
        "Images",
        "string",
        "Images referenced by each container in the template.",
        Cell::Builtin(images),
    )));
}

fn containers(o: &Value, field: &str) -> Value {
    let names: Vec<&str> = o
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|c| c.get(field)?.as_str()).collect())
        .unwrap_or_default();
    json!(names.join(","))
}

fn printer(p: &PrinterColumn) -> Column {
    let ty = match p.ty.as_str() {
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "date" => "date",
        _ => "string",
    };
    Column {
        name: p.name.clone(),
        ty,
        format: p.format.clone(),
        description: p.description.clone(),
        priority: p.priority,
        cell: Cell::Path(p.json_path.clone(), p.ty.clone()),
    }
}

/// kube's short human durations (`HumanDuration`): `45s`, `5m10s`, `3h`, `2d5h`, `400d`, `3y`.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age_of(value: Option<&str>) -> Value {
    let Some(ts) = value.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return json!("<unknown>");
    };
    let secs = jiff::Timestamp::now().as_second() - ts.as_second();
    json!(human_duration(secs))
}

fn cell(c: &Column, obj: &Value) -> Value {
    match &c.cell {
        Cell::Name => json!(str_at(obj, "/metadata/name")),
        Cell::Age => age_of(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str),
        ),
        Cell::Created => json!(str_at(obj, "/metadata/creationTimestamp")),
        Cell::Builtin(f) => f(obj),
        Cell::Path(path, ty) => {
            let query = format!("${path}");
            let found = obj
                .query(&query)
                .ok()
                .and_then(|v| v.first().copied().cloned());
            match (found, ty.as_str()) {
                (None, _) | (Some(Value::Null), _) => Value::Null,
                (Some(Value::String(s)), "date") => age_of(Some(&s)),
                (Some(v), _) => v,
            }
        }
    }
}

fn row_object(info: &ResourceInfo, obj: &Value, include: Include, version: &str) -> Option<Value> {
    match include {
        Include::None => None,
        Include::Object => Some(obj.clone()),
        Include::Metadata => {
            let mut metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
            // kube takes a row's metadata from the object before its apps/v1 conversion, which
            // is what writes a DaemonSet's template-generation annotation.
            if info.group == "apps"
                && info.kind == "DaemonSet"
                && let Some(m) = metadata.as_object_mut()
                && let Some(Value::Object(a)) = m.get_mut("annotations")
            {
                a.remove("deprecated.daemonset.template.generation");
                if a.is_empty() {
                    m.remove("annotations");
                }
            }
            Some(json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": version,
                "metadata": metadata,
            }))
        }
    }
}

/// The Table of `objects` (already rendered for the requested version). `metadata` is the
/// list's metadata (resourceVersion, continue); column definitions are left out when
/// `definitions` is false (watch events after the first).
pub(crate) fn table(
    info: &ResourceInfo,
    version: &str,
    objects: &[Value],
    metadata: Value,
    include: Include,
    definitions: bool,
) -> Value {
    let columns = columns_of(info);
    let defs: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.ty, "format": c.format,
                "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = columns.iter().map(|c| cell(c, o)).collect();
            let mut row = json!({"cells": cells});
            if let Some(object) = row_object(info, o, include, version) {
                row["object"] = object;
            }
            row
        })
        .collect();
    let mut t = json!({"kind": "Table", "apiVersion": version, "metadata": metadata,
        "columnDefinitions": defs, "rows": rows});
    if !definitions {
        t["columnDefinitions"] = Value::Null;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_read_as_kubectls() {
        for (secs, want) in [
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn table_accept_headers_are_recognised() {
        assert_eq!(
            requested(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
            )),
            Some("meta.k8s.io/v1")
        );
        assert_eq!(
            requested(Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io")),
            Some("meta.k8s.io/v1beta1")
        );
        assert_eq!(requested(Some("application/json")), None);
        assert_eq!(requested(None), None);
    }
}
