//! Request body decoding: JSON (also when Content-Type is missing), YAML, and the Kubernetes
//! protobuf envelope of every served built-in kind (and DeleteOptions), read by `pb.rs` with
//! the generated field table `fields.rs`. Everything becomes a `serde_json::Value`; bad bodies
//! are 400s and unknown media types (or protobuf for a kind without a protobuf form) 415s.

use prost::Message;
use serde_json::{Value, json};

use crate::errors::{Error, Result};

mod fields;
mod pb;

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
    // DeleteOptions come as `v1` or `meta.k8s.io/v1`; both are meta's.
    let message = if kind == "DeleteOptions" {
        pb::message_of("meta.k8s.io/v1", &kind)
    } else {
        pb::message_of(&api_version, &kind)
    }
    .ok_or_else(|| {
        Error::unsupported_media_type(&format!(
            "application/vnd.kubernetes.protobuf for {api_version} {kind} (send JSON)"
        ))
    })?;
    let mut out = pb::decode(&message, &inner)
        .map_err(|e| Error::bad_request(format!("error decoding {kind}: {e}")))?;
    if let Some(o) = out.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(out)
}

/// A JSON answer (object, list or Status of a built-in kind) as the Kubernetes protobuf
/// envelope, for a client that asks for protobuf; `None` for what has no protobuf form (custom
/// resources, discovery documents).
pub(crate) fn encode_protobuf(value: &Value) -> Option<Vec<u8>> {
    let api_version = value.get("apiVersion")?.as_str()?;
    let kind = value.get("kind")?.as_str()?;
    let message = match kind {
        "Status" | "DeleteOptions" => pb::message_of("meta.k8s.io/v1", kind)?,
        _ => pb::message_of(api_version, kind)?,
    };
    let raw = pb::encode(&message, value).ok()?;
    let envelope = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = PROTOBUF_MAGIC.to_vec();
    out.extend(envelope.encode_to_vec());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;

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
