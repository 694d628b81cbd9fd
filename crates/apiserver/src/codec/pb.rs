//! Kubernetes protobuf bodies of any served built-in kind, read into the JSON a client would
//! have sent: the wire format walked with the field table `fields.rs` (generated from k8s-pb's
//! prost structs, so tags and types are Kubernetes' own), and the types Kubernetes encodes in
//! their own way (Time, MicroTime, Duration, Quantity, IntOrString, RawExtension, FieldsV1,
//! JSON, ExtraValue) turned into their JSON forms.
//!
//! Go writes a non-pointer field even when it holds its zero value, where its JSON encoder
//! leaves it out (`omitempty`): such a zero, and a zero time, is left out here too (the table
//! says which fields are such non-pointers), so `nodePort: 0` reads as no node port while a
//! pointer's zero (`replicas: 0`) stays.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::fields::MESSAGES;

/// A field's protobuf type.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    Str,
    Bytes,
    I32,
    I64,
    Bool,
    F64,
    /// A message, by its k8s-pb path (`api.apps.v1.DeploymentSpec`).
    Msg(&'static str),
    MapStr,
    MapBytes,
    MapMsg(&'static str),
}

/// One field: tag, JSON name (empty: embedded inline), repeated, a zero means unset, type.
pub(super) type Field = (u32, &'static str, bool, bool, Ty);

type Fields = &'static [Field];

static TABLE: LazyLock<HashMap<&'static str, Fields>> =
    LazyLock::new(|| MESSAGES.iter().copied().collect());

const TIME: &str = "apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "apimachinery.pkg.apis.meta.v1.MicroTime";
const DURATION: &str = "apimachinery.pkg.apis.meta.v1.Duration";
const FIELDS_V1: &str = "apimachinery.pkg.apis.meta.v1.FieldsV1";
const QUANTITY: &str = "apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "apimachinery.pkg.util.intstr.IntOrString";
const RAW_EXTENSION: &str = "apimachinery.pkg.runtime.RawExtension";
const JSON: &str = "apiextensions_apiserver.pkg.apis.apiextensions.v1.Json";

/// The k8s-pb message of a served kind, from the envelope's apiVersion and kind.
pub(super) fn message_of(api_version: &str, kind: &str) -> Option<String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let module = match group {
        "" => "api.core".to_string(),
        "meta.k8s.io" => "apimachinery.pkg.apis.meta".to_string(),
        "apiextensions.k8s.io" => "apiextensions_apiserver.pkg.apis.apiextensions".to_string(),
        g => format!("api.{}", g.split('.').next().unwrap_or(g)),
    };
    let name = format!("{module}.{version}.{kind}");
    TABLE.contains_key(name.as_str()).then_some(name)
}

/// Decodes one message of type `name`.
pub(super) fn decode(name: &str, buf: &[u8]) -> Result<Value, String> {
    match name {
        TIME | MICRO_TIME => time(buf, name == MICRO_TIME),
        DURATION => Ok(scalar_field(buf, 1)?
            .map(|v| json!(go_duration(v.varint() as i64)))
            .unwrap_or(Value::Null)),
        QUANTITY => Ok(scalar_field(buf, 1)?
            .map(|v| json!(v.string()))
            .unwrap_or(Value::Null)),
        FIELDS_V1 | RAW_EXTENSION | JSON => match scalar_field(buf, 1)? {
            Some(Raw::Len(raw)) if !raw.is_empty() => {
                serde_json::from_slice(raw).map_err(|e| format!("{name}: embedded JSON: {e}"))
            }
            _ => Ok(Value::Null),
        },
        INT_OR_STRING => {
            let fields = read_all(buf)?;
            let get = |tag| fields.iter().rev().find(|(t, _)| *t == tag).map(|(_, v)| v);
            Ok(match get(1).map(|v| v.varint()) {
                Some(1) => json!(get(3).map(Raw::string).unwrap_or_default()),
                _ => json!(get(2).map(|v| v.varint() as i32).unwrap_or(0)),
            })
        }
        n if n.ends_with(".ExtraValue") => Ok(Value::Array(
            read_all(buf)?
                .into_iter()
                .filter(|(t, _)| *t == 1)
                .map(|(_, v)| json!(v.string()))
                .collect(),
        )),
        _ => {
            let fields = TABLE
                .get(name)
                .ok_or_else(|| format!("no protobuf description of {name}"))?;
            object(name, fields, buf)
        }
    }
}

fn object(name: &str, fields: Fields, buf: &[u8]) -> Result<Value, String> {
    let mut out = Map::new();
    for (tag, raw) in read_all(buf)? {
        let Some(&(_, json_name, repeated, zero_unset, ty)) = fields.iter().find(|f| f.0 == tag)
        else {
            continue;
        };
        let key = json_name.to_string();
        match ty {
            Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_) => {
                let (k, v) = map_entry(ty, raw.bytes(name)?)?;
                let entry = out.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(k, v);
                }
            }
            _ if repeated => {
                let values = repeated_values(ty, &raw, name)?;
                let entry = out.entry(key).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = entry {
                    a.extend(values);
                }
            }
            Ty::Msg(m) if json_name.is_empty() => {
                if let Value::Object(inner) = decode(m, raw.bytes(name)?)? {
                    out.extend(inner);
                }
            }
            _ => {
                let v = value(ty, &raw, name)?;
                if v.is_null() || (zero_unset && is_zero(&v)) {
                    out.remove(&key);
                } else {
                    out.insert(key, v);
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// Go's zero value of a basic type.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

fn value(ty: Ty, raw: &Raw<'_>, ctx: &str) -> Result<Value, String> {
    Ok(match ty {
        Ty::Str => json!(raw.string()),
        Ty::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(raw.bytes(ctx)?)),
        Ty::I32 => json!(raw.varint() as i32),
        Ty::I64 => json!(raw.varint() as i64),
        Ty::Bool => json!(raw.varint() != 0),
        Ty::F64 => match raw {
            Raw::Fixed64(b) => json!(f64::from_le_bytes(*b)),
            _ => return Err(format!("{ctx}: a double field is not fixed64")),
        },
        Ty::Msg(m) => decode(m, raw.bytes(ctx)?)?,
        Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_) => unreachable!("maps are read as entries"),
    })
}

/// A repeated field's values: one per occurrence, or a packed run of numbers.
fn repeated_values(ty: Ty, raw: &Raw<'_>, ctx: &str) -> Result<Vec<Value>, String> {
    match (ty, raw) {
        (Ty::I32 | Ty::I64 | Ty::Bool, Raw::Len(b)) => {
            let mut b: &[u8] = b;
            let mut out = Vec::new();
            while !b.is_empty() {
                let v = varint(&mut b)?;
                out.push(value(ty, &Raw::Varint(v), ctx)?);
            }
            Ok(out)
        }
        _ => Ok(vec![value(ty, raw, ctx)?]),
    }
}

fn map_entry(ty: Ty, buf: &[u8]) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut val = Value::Null;
    for (tag, raw) in read_all(buf)? {
        match tag {
            1 => key = raw.string(),
            2 => {
                val = match ty {
                    Ty::MapStr => json!(raw.string()),
                    Ty::MapBytes => value(Ty::Bytes, &raw, "map")?,
                    Ty::MapMsg(m) => decode(m, raw.bytes("map")?)?,
                    _ => Value::Null,
                }
            }
            _ => {}
        }
    }
    if val.is_null() {
        val = match ty {
            Ty::MapStr | Ty::MapBytes => json!(""),
            _ => Value::Null,
        };
    }
    Ok((key, val))
}

fn time(buf: &[u8], micro: bool) -> Result<Value, String> {
    let fields = read_all(buf)?;
    if fields.is_empty() {
        return Ok(Value::Null);
    }
    let get = |tag| {
        fields
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.varint() as i64)
            .unwrap_or(0)
    };
    let ts = jiff::Timestamp::new(get(1), get(2) as i32).map_err(|e| format!("time: {e}"))?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(json!(ts.strftime(format).to_string()))
}

/// Go's `time.Duration.String()`, as metav1.Duration writes JSON.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        return format!("{sign}{}", sub_second(n));
    }
    let (h, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let secs = rest as f64 / 1e9;
    let s = format!("{secs}s");
    match (h, m) {
        (0, 0) => format!("{sign}{s}"),
        (0, m) => format!("{sign}{m}m{s}"),
        (h, m) => format!("{sign}{h}h{m}m{s}"),
    }
}

fn sub_second(n: u64) -> String {
    if n < 1_000 {
        format!("{n}ns")
    } else if n < 1_000_000 {
        format!("{}µs", n as f64 / 1e3)
    } else {
        format!("{}ms", n as f64 / 1e6)
    }
}

/// One field's raw value.
enum Raw<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(&'a [u8]),
    /// A 32-bit value (no served kind has one; skipped).
    Fixed32,
}

impl<'a> Raw<'a> {
    fn varint(&self) -> u64 {
        match self {
            Raw::Varint(v) => *v,
            _ => 0,
        }
    }

    fn bytes(&self, ctx: &str) -> Result<&'a [u8], String> {
        match self {
            Raw::Len(b) => Ok(b),
            _ => Err(format!("{ctx}: expected a length-delimited field")),
        }
    }

    fn string(&self) -> String {
        match self {
            Raw::Len(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        }
    }
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err("truncated field".into());
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Every (tag, value) of one message, in wire order.
fn read_all(mut buf: &[u8]) -> Result<Vec<(u32, Raw<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let tag = u32::try_from(key >> 3).map_err(|_| "field tag out of range")?;
        let raw = match key & 7 {
            0 => Raw::Varint(varint(&mut buf)?),
            1 => Raw::Fixed64(take(&mut buf, 8)?.try_into().map_err(|_| "fixed64")?),
            2 => {
                let n = usize::try_from(varint(&mut buf)?).map_err(|_| "length out of range")?;
                Raw::Len(take(&mut buf, n)?)
            }
            5 => {
                take(&mut buf, 4)?;
                Raw::Fixed32
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        out.push((tag, raw));
    }
    Ok(out)
}

fn scalar_field(buf: &[u8], tag: u32) -> Result<Option<Raw<'_>>, String> {
    Ok(read_all(buf)?
        .into_iter()
        .rev()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v))
}

/// Encodes `value` (the JSON of a message of type `name`) as that message's wire format: the
/// inverse of [`decode`], for answers to clients that ask for protobuf.
pub(super) fn encode(name: &str, value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match name {
        TIME | MICRO_TIME => {
            let Some(s) = value.as_str() else {
                return Ok(out);
            };
            let ts: jiff::Timestamp = s.parse().map_err(|e| format!("time {s:?}: {e}"))?;
            put_varint_field(&mut out, 1, ts.as_second() as u64);
            put_varint_field(&mut out, 2, i64::from(ts.subsec_nanosecond()) as u64);
        }
        QUANTITY => {
            let s = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            put_len_field(&mut out, 1, s.as_bytes());
        }
        FIELDS_V1 | RAW_EXTENSION | JSON => {
            let raw = serde_json::to_vec(value).map_err(|e| e.to_string())?;
            put_len_field(&mut out, 1, &raw);
        }
        INT_OR_STRING => match value {
            Value::String(s) => {
                put_varint_field(&mut out, 1, 1);
                put_len_field(&mut out, 3, s.as_bytes());
            }
            other => {
                put_varint_field(&mut out, 1, 0);
                put_varint_field(&mut out, 2, other.as_i64().unwrap_or(0) as u64);
            }
        },
        n if n.ends_with(".ExtraValue") => {
            for s in value.as_array().into_iter().flatten() {
                put_len_field(&mut out, 1, s.as_str().unwrap_or_default().as_bytes());
            }
        }
        DURATION => {}
        _ => {
            let fields = TABLE
                .get(name)
                .ok_or_else(|| format!("no protobuf description of {name}"))?;
            for &(tag, json_name, repeated, _, ty) in fields.iter() {
                if json_name.is_empty() {
                    // Inline: the embedded message's fields are this object's.
                    if let Ty::Msg(m) = ty {
                        let inner = encode(m, value)?;
                        if !inner.is_empty() {
                            put_len_field(&mut out, tag, &inner);
                        }
                    }
                    continue;
                }
                let Some(v) = value.get(json_name).filter(|v| !v.is_null()) else {
                    continue;
                };
                match ty {
                    Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_) => {
                        for (k, item) in v.as_object().into_iter().flatten() {
                            let mut entry = Vec::new();
                            put_len_field(&mut entry, 1, k.as_bytes());
                            let vt = match ty {
                                Ty::MapStr => Ty::Str,
                                Ty::MapBytes => Ty::Bytes,
                                Ty::MapMsg(m) => Ty::Msg(m),
                                other => other,
                            };
                            put_value(&mut entry, 2, vt, item)?;
                            put_len_field(&mut out, tag, &entry);
                        }
                    }
                    _ if repeated => {
                        for item in v.as_array().into_iter().flatten() {
                            put_value(&mut out, tag, ty, item)?;
                        }
                    }
                    _ => put_value(&mut out, tag, ty, v)?,
                }
            }
        }
    }
    Ok(out)
}

fn put_value(out: &mut Vec<u8>, tag: u32, ty: Ty, v: &Value) -> Result<(), String> {
    match ty {
        Ty::Str => {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            put_len_field(out, tag, s.as_bytes());
        }
        Ty::Bytes => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .map_err(|e| format!("bytes field: {e}"))?;
            put_len_field(out, tag, &raw);
        }
        Ty::I32 | Ty::I64 => put_varint_field(out, tag, v.as_i64().unwrap_or(0) as u64),
        Ty::Bool => put_varint_field(out, tag, u64::from(v.as_bool().unwrap_or(false))),
        Ty::F64 => {
            put_varint(out, u64::from(tag << 3 | 1));
            out.extend(v.as_f64().unwrap_or(0.0).to_le_bytes());
        }
        Ty::Msg(m) => {
            let inner = encode(m, v)?;
            put_len_field(out, tag, &inner);
        }
        Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_) => {}
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, tag: u32, v: u64) {
    put_varint(out, u64::from(tag << 3));
    put_varint(out, v);
}

fn put_len_field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_varint(out, u64::from(tag << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use prost::Message as _;

    #[test]
    fn a_deployment_reads_as_its_json() {
        let d = apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                namespace: Some(String::new()),
                labels: [("app".to_string(), "web".to_string())].into(),
                creation_timestamp: Some(meta::Time::default()),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: [("app".to_string(), "web".to_string())].into(),
                    ..Default::default()
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: None,
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx:1".into()),
                            ports: vec![core::ContainerPort {
                                container_port: Some(80),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: Some("RollingUpdate".into()),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString {
                            r#type: Some(1),
                            int_val: None,
                            str_val: Some("25%".into()),
                        }),
                        max_surge: Some(IntOrString {
                            r#type: Some(0),
                            int_val: Some(2),
                            str_val: None,
                        }),
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode("api.apps.v1.Deployment", &d.encode_to_vec()).expect("decodes");
        assert_eq!(
            got,
            json!({
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1",
                        "ports": [{"containerPort": 80}]}]}},
                    "strategy": {"type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 2}},
                }
            })
        );
    }

    #[test]
    fn times_quantities_bytes_and_packed_numbers() {
        let t = meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        };
        assert_eq!(
            decode(TIME, &t.encode_to_vec()).expect("time"),
            json!("2023-11-14T22:13:20Z")
        );
        let mt = meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_000),
        };
        assert_eq!(
            decode(MICRO_TIME, &mt.encode_to_vec()).expect("micro"),
            json!("2023-11-14T22:13:20.123456Z")
        );
        let rr = core::ResourceRequirements {
            limits: [(
                "cpu".to_string(),
                k8s_pb::apimachinery::pkg::api::resource::Quantity {
                    string: Some("500m".into()),
                },
            )]
            .into(),
            ..Default::default()
        };
        assert_eq!(
            decode("api.core.v1.ResourceRequirements", &rr.encode_to_vec()).expect("rr"),
            json!({"limits": {"cpu": "500m"}})
        );
        let s = core::Secret {
            data: [("k".to_string(), b"hi".to_vec())].into(),
            ..Default::default()
        };
        assert_eq!(
            decode("api.core.v1.Secret", &s.encode_to_vec()).expect("secret"),
            json!({"data": {"k": "aGk="}})
        );
        // A packed run of int32s (proto3 writers) reads like separate ones.
        let packed = [(4 << 3) | 2, 2, 7, 9];
        assert_eq!(
            object("t", &[(4, "items", true, false, Ty::I32)], &packed).expect("packed"),
            json!({"items": [7, 9]})
        );
        // Go writes a non-pointer zero (a ServicePort's nodePort) that JSON would leave out.
        let port = core::ServicePort {
            name: Some(String::new()),
            port: Some(80),
            node_port: Some(0),
            protocol: Some("TCP".into()),
            ..Default::default()
        };
        assert_eq!(
            decode("api.core.v1.ServicePort", &port.encode_to_vec()).expect("port"),
            json!({"port": 80, "protocol": "TCP"})
        );
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
    }

    #[test]
    fn answers_encode_to_what_decodes_back() {
        let deployment = json!({
            "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"},
                "creationTimestamp": "2026-12-03T10:00:00Z", "generation": 2,
                "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "apps/v1",
                    "time": "2026-12-03T10:00:00Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "500m"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}}}],
                        "volumes": [{"name": "v", "emptyDir": {}}]}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}},
            "status": {"replicas": 1, "conditions": [{"type": "Available", "status": "True",
                "lastTransitionTime": "2026-12-03T10:00:01Z"}]}
        });
        let bytes = encode("api.apps.v1.Deployment", &deployment).expect("encodes");
        assert_eq!(
            decode("api.apps.v1.Deployment", &bytes).expect("decodes"),
            deployment
        );
        // And prost reads it as the same typed object.
        let typed = apps::Deployment::decode(bytes.as_slice()).expect("prost decodes");
        assert_eq!(typed.spec.and_then(|s| s.replicas), Some(0));
    }

    #[test]
    fn kinds_map_to_their_messages_and_bad_bytes_are_errors() {
        assert_eq!(
            message_of("apps/v1", "Deployment").as_deref(),
            Some("api.apps.v1.Deployment")
        );
        assert_eq!(
            message_of("v1", "Service").as_deref(),
            Some("api.core.v1.Service")
        );
        assert_eq!(
            message_of("rbac.authorization.k8s.io/v1", "Role").as_deref(),
            Some("api.rbac.v1.Role")
        );
        assert_eq!(
            message_of("networking.k8s.io/v1", "Ingress").as_deref(),
            Some("api.networking.v1.Ingress")
        );
        assert_eq!(message_of("example.com/v1", "Widget"), None);
        assert!(decode("api.core.v1.ConfigMap", &[0x0a, 0x05, 0x01]).is_err());
        assert!(decode("api.core.v1.ConfigMap", &[0xff]).is_err());
    }
}
