//! Request body decoding: JSON (also when Content-Type is missing), YAML, and the Kubernetes
//! protobuf envelope for the built-in kinds kubectl and Helm send as protobuf (Namespace,
//! ConfigMap, Secret, ServiceAccount, RBAC roles and bindings, TokenRequest, DeleteOptions). Everything
//! becomes a `serde_json::Value`; bad bodies are 400s and unknown media types 415s.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::errors::{Error, Result};

/// Magic prefix of the Kubernetes protobuf envelope.
const PROTOBUF_MAGIC: &[u8] = b"k8s\x00";

/// The media type part of a Content-Type header, lowercased, without parameters.
pub(crate) fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Decode an object body according to its Content-Type.
pub(crate) fn decode_object(content_type: Option<&str>, body: &[u8]) -> Result<Value> {
    let media = media_type(content_type);
    let value = match media.as_str() {
        "" | "application/json" | "*/*" => decode_json(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => decode_protobuf(body)?,
        other => return Err(Error::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(Error::bad_request("the request body must be a JSON object"));
    }
    Ok(value)
}

/// Decode a JSON body.
pub(crate) fn decode_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("error decoding request body as JSON: {e}")))
}

fn decode_yaml(body: &[u8]) -> Result<Value> {
    // JSON is YAML; clients send most YAML bodies (server-side apply from kube-rs and
    // client-go) as JSON, which the JSON parser reads many times faster to the same value.
    if body.trim_ascii_start().first() == Some(&b'{')
        && let Ok(value) = serde_json::from_slice(body)
    {
        return Ok(value);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| Error::bad_request(format!("request body is not UTF-8: {e}")))?;
    serde_saphyr::from_str(text)
        .map_err(|e| Error::bad_request(format!("error decoding request body as YAML: {e}")))
}

fn decode_protobuf(body: &[u8]) -> Result<Value> {
    let raw = body
        .strip_prefix(PROTOBUF_MAGIC)
        .ok_or_else(|| Error::bad_request("protobuf body lacks the k8s envelope prefix"))?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(raw)
        .map_err(|e| Error::bad_request(format!("error decoding protobuf envelope: {e}")))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let inner = unknown.raw.unwrap_or_default();
    let bad = |e: prost::DecodeError| Error::bad_request(format!("error decoding {kind}: {e}"));
    let mut out = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            let ns = k8s_pb::api::core::v1::Namespace::decode(inner.as_slice()).map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(ns.metadata.unwrap_or_default()),
            );
            if let Some(spec) = ns.spec
                && !spec.finalizers.is_empty()
            {
                obj.insert("spec".into(), json!({"finalizers": spec.finalizers}));
            }
            obj
        }
        ("v1", "ConfigMap") => {
            let cm = k8s_pb::api::core::v1::ConfigMap::decode(inner.as_slice()).map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(cm.metadata.unwrap_or_default()),
            );
            if !cm.data.is_empty() {
                obj.insert("data".into(), json!(cm.data));
            }
            if !cm.binary_data.is_empty() {
                obj.insert("binaryData".into(), bytes_map(cm.binary_data));
            }
            if let Some(i) = cm.immutable {
                obj.insert("immutable".into(), json!(i));
            }
            obj
        }
        ("v1", "Secret") => {
            let s = k8s_pb::api::core::v1::Secret::decode(inner.as_slice()).map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(s.metadata.unwrap_or_default()),
            );
            if !s.data.is_empty() {
                obj.insert("data".into(), bytes_map(s.data));
            }
            if !s.string_data.is_empty() {
                obj.insert("stringData".into(), json!(s.string_data));
            }
            if let Some(t) = s.r#type {
                obj.insert("type".into(), json!(t));
            }
            if let Some(i) = s.immutable {
                obj.insert("immutable".into(), json!(i));
            }
            obj
        }
        ("v1", "ServiceAccount") => {
            let sa =
                k8s_pb::api::core::v1::ServiceAccount::decode(inner.as_slice()).map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(sa.metadata.unwrap_or_default()),
            );
            if !sa.secrets.is_empty() {
                let refs: Vec<Value> = sa
                    .secrets
                    .into_iter()
                    .map(|r| {
                        let mut m = Map::new();
                        let mut put = |k: &str, v: Option<String>| {
                            if let Some(v) = v {
                                m.insert(k.into(), json!(v));
                            }
                        };
                        put("kind", r.kind);
                        put("namespace", r.namespace);
                        put("name", r.name);
                        put("uid", r.uid);
                        put("apiVersion", r.api_version);
                        put("resourceVersion", r.resource_version);
                        put("fieldPath", r.field_path);
                        Value::Object(m)
                    })
                    .collect();
                obj.insert("secrets".into(), Value::Array(refs));
            }
            if !sa.image_pull_secrets.is_empty() {
                let refs: Vec<Value> = sa
                    .image_pull_secrets
                    .into_iter()
                    .map(|r| json!({"name": r.name.unwrap_or_default()}))
                    .collect();
                obj.insert("imagePullSecrets".into(), Value::Array(refs));
            }
            if let Some(a) = sa.automount_service_account_token {
                obj.insert("automountServiceAccountToken".into(), json!(a));
            }
            obj
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let r = k8s_pb::api::rbac::v1::Role::decode(inner.as_slice()).map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(r.metadata.unwrap_or_default()),
            );
            obj.insert("rules".into(), rules_to_json(r.rules));
            obj
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let r = k8s_pb::api::rbac::v1::ClusterRole::decode(inner.as_slice()).map_err(bad)?;
            if r.aggregation_rule.is_some() {
                return Err(Error::unsupported_media_type(
                    "application/vnd.kubernetes.protobuf for an aggregated ClusterRole (send JSON)",
                ));
            }
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(r.metadata.unwrap_or_default()),
            );
            obj.insert("rules".into(), rules_to_json(r.rules));
            obj
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            let b = k8s_pb::api::rbac::v1::RoleBinding::decode(inner.as_slice()).map_err(bad)?;
            binding_to_json(b.metadata, b.subjects, b.role_ref)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            let b =
                k8s_pb::api::rbac::v1::ClusterRoleBinding::decode(inner.as_slice()).map_err(bad)?;
            binding_to_json(b.metadata, b.subjects, b.role_ref)
        }
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let r = k8s_pb::api::authentication::v1::TokenRequest::decode(inner.as_slice())
                .map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(r.metadata.unwrap_or_default()),
            );
            let spec = r.spec.unwrap_or_default();
            let mut s = Map::new();
            if !spec.audiences.is_empty() {
                s.insert("audiences".into(), json!(spec.audiences));
            }
            if let Some(seconds) = spec.expiration_seconds {
                s.insert("expirationSeconds".into(), json!(seconds));
            }
            if let Some(bound) = spec.bound_object_ref {
                s.insert(
                    "boundObjectRef".into(),
                    json!({"kind": bound.kind, "apiVersion": bound.api_version,
                           "name": bound.name, "uid": bound.u_id}),
                );
            }
            obj.insert("spec".into(), Value::Object(s));
            obj
        }
        ("authentication.k8s.io/v1", "SelfSubjectReview") => {
            let r = k8s_pb::api::authentication::v1::SelfSubjectReview::decode(inner.as_slice())
                .map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(r.metadata.unwrap_or_default()),
            );
            obj
        }
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            let r =
                k8s_pb::api::authorization::v1::SelfSubjectAccessReview::decode(inner.as_slice())
                    .map_err(bad)?;
            let mut obj = Map::new();
            obj.insert(
                "metadata".into(),
                meta_to_json(r.metadata.unwrap_or_default()),
            );
            let spec = r.spec.unwrap_or_default();
            let mut s = Map::new();
            if let Some(a) = spec.resource_attributes {
                let fields = [
                    ("namespace", a.namespace),
                    ("verb", a.verb),
                    ("group", a.group),
                    ("version", a.version),
                    ("resource", a.resource),
                    ("subresource", a.subresource),
                    ("name", a.name),
                ];
                let attrs: Map<String, Value> = fields
                    .into_iter()
                    .filter_map(|(k, v)| {
                        v.filter(|v| !v.is_empty())
                            .map(|v| (k.to_owned(), json!(v)))
                    })
                    .collect();
                s.insert("resourceAttributes".into(), Value::Object(attrs));
            }
            if let Some(a) = spec.non_resource_attributes {
                s.insert(
                    "nonResourceAttributes".into(),
                    json!({"path": a.path, "verb": a.verb}),
                );
            }
            obj.insert("spec".into(), Value::Object(s));
            obj
        }
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => {
            let d = pbmeta::DeleteOptions::decode(inner.as_slice()).map_err(bad)?;
            let mut obj = Map::new();
            if let Some(g) = d.grace_period_seconds {
                obj.insert("gracePeriodSeconds".into(), json!(g));
            }
            if let Some(p) = d.preconditions {
                let mut pre = Map::new();
                if let Some(uid) = p.uid {
                    pre.insert("uid".into(), json!(uid));
                }
                if let Some(rv) = p.resource_version {
                    pre.insert("resourceVersion".into(), json!(rv));
                }
                obj.insert("preconditions".into(), Value::Object(pre));
            }
            if let Some(p) = d.propagation_policy {
                obj.insert("propagationPolicy".into(), json!(p));
            }
            if let Some(o) = d.orphan_dependents {
                obj.insert("orphanDependents".into(), json!(o));
            }
            if !d.dry_run.is_empty() {
                obj.insert("dryRun".into(), json!(d.dry_run));
            }
            obj
        }
        _ => {
            return Err(Error::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf for {api_version} {kind} (send JSON)"
            )));
        }
    };
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!(kind));
    Ok(Value::Object(out))
}

fn rules_to_json(rules: Vec<k8s_pb::api::rbac::v1::PolicyRule>) -> Value {
    Value::Array(
        rules
            .into_iter()
            .map(|r| {
                let mut m = Map::new();
                let mut put = |k: &str, v: Vec<String>| {
                    if !v.is_empty() {
                        m.insert(k.into(), json!(v));
                    }
                };
                put("verbs", r.verbs);
                put("apiGroups", r.api_groups);
                put("resources", r.resources);
                put("resourceNames", r.resource_names);
                put("nonResourceURLs", r.non_resource_ur_ls);
                Value::Object(m)
            })
            .collect(),
    )
}

fn binding_to_json(
    metadata: Option<pbmeta::ObjectMeta>,
    subjects: Vec<k8s_pb::api::rbac::v1::Subject>,
    role_ref: Option<k8s_pb::api::rbac::v1::RoleRef>,
) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert(
        "metadata".into(),
        meta_to_json(metadata.unwrap_or_default()),
    );
    let subjects: Vec<Value> = subjects
        .into_iter()
        .map(|s| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    m.insert(k.into(), json!(v));
                }
            };
            put("kind", s.kind);
            put("apiGroup", s.api_group);
            put("name", s.name);
            put("namespace", s.namespace);
            Value::Object(m)
        })
        .collect();
    if !subjects.is_empty() {
        obj.insert("subjects".into(), Value::Array(subjects));
    }
    if let Some(r) = role_ref {
        obj.insert(
            "roleRef".into(),
            json!({
                "apiGroup": r.api_group.unwrap_or_default(),
                "kind": r.kind.unwrap_or_default(),
                "name": r.name.unwrap_or_default(),
            }),
        );
    }
    obj
}

fn bytes_map(m: BTreeMap<String, Vec<u8>>) -> Value {
    let engine = base64::engine::general_purpose::STANDARD;
    Value::Object(
        m.into_iter()
            .map(|(k, v)| (k, Value::String(engine.encode(v))))
            .collect(),
    )
}

fn meta_to_json(m: pbmeta::ObjectMeta) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            o.insert(k.into(), json!(v));
        }
    };
    put("name", m.name);
    put("generateName", m.generate_name);
    put("namespace", m.namespace);
    put("uid", m.uid);
    put("resourceVersion", m.resource_version);
    if !m.labels.is_empty() {
        o.insert("labels".into(), json!(m.labels));
    }
    if !m.annotations.is_empty() {
        o.insert("annotations".into(), json!(m.annotations));
    }
    if !m.finalizers.is_empty() {
        o.insert("finalizers".into(), json!(m.finalizers));
    }
    if !m.owner_references.is_empty() {
        let refs: Vec<Value> = m
            .owner_references
            .into_iter()
            .map(|r| {
                let mut v = json!({
                    "apiVersion": r.api_version.unwrap_or_default(),
                    "kind": r.kind.unwrap_or_default(),
                    "name": r.name.unwrap_or_default(),
                    "uid": r.uid.unwrap_or_default(),
                });
                if let Some(obj) = v.as_object_mut() {
                    if let Some(c) = r.controller {
                        obj.insert("controller".into(), json!(c));
                    }
                    if let Some(b) = r.block_owner_deletion {
                        obj.insert("blockOwnerDeletion".into(), json!(b));
                    }
                }
                v
            })
            .collect();
        o.insert("ownerReferences".into(), Value::Array(refs));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encode a built-in object as the protobuf envelope, as client-go does.
    fn encode_protobuf_envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = PROTOBUF_MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    #[test]
    fn missing_content_type_means_json() {
        let v = decode_object(None, br#"{"a":1}"#).expect("json");
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn yaml_bodies_decode() {
        let v = decode_object(
            Some("application/yaml"),
            b"kind: ConfigMap\ndata:\n  a: b\n",
        )
        .expect("yaml");
        assert_eq!(v["data"]["a"], "b");
    }

    #[test]
    fn protobuf_secret_decodes_with_base64_data() {
        let secret = k8s_pb::api::core::v1::Secret {
            metadata: Some(pbmeta::ObjectMeta {
                name: Some("sh.helm.release.v1.x.v1".into()),
                labels: [("owner".to_string(), "helm".to_string())].into(),
                ..Default::default()
            }),
            data: [("release".to_string(), b"hello".to_vec())].into(),
            r#type: Some("helm.sh/release.v1".into()),
            ..Default::default()
        };
        let body = encode_protobuf_envelope("v1", "Secret", secret.encode_to_vec());
        let v = decode_object(Some("application/vnd.kubernetes.protobuf"), &body).expect("pb");
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["labels"]["owner"], "helm");
        assert_eq!(v["data"]["release"], "aGVsbG8=");
        assert_eq!(v["type"], "helm.sh/release.v1");
    }

    #[test]
    fn protobuf_delete_options_keep_preconditions() {
        let opts = pbmeta::DeleteOptions {
            preconditions: Some(pbmeta::Preconditions {
                uid: Some("u-1".into()),
                resource_version: None,
            }),
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        let body =
            encode_protobuf_envelope("meta.k8s.io/v1", "DeleteOptions", opts.encode_to_vec());
        let v = decode_object(Some("application/vnd.kubernetes.protobuf"), &body).expect("pb");
        assert_eq!(v["preconditions"]["uid"], "u-1");
        assert_eq!(v["propagationPolicy"], "Background");
    }

    #[test]
    fn unknown_media_type_is_415() {
        let e = decode_object(Some("text/plain"), b"x").expect_err("415");
        assert_eq!(e.code(), 415);
    }
}
