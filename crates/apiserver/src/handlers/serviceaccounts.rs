//! ServiceAccount token Secrets, as kube-controller-manager's token controller and
//! kube-apiserver's service-account authenticator treat them: a Secret of type
//! `kubernetes.io/service-account-token` naming an existing ServiceAccount (annotation
//! `kubernetes.io/service-account.name`) gets `token`, `ca.crt` and `namespace` in its data and
//! the ServiceAccount's uid in `kubernetes.io/service-account.uid`, and its token then
//! authenticates requests to the same logical cluster for as long as the Secret and that
//! ServiceAccount exist. The TokenRequest API (`serviceaccounts/<name>/token`, `kubectl create
//! token`) issues tokens of its own, signed with HMAC-SHA256 under the server's admin token,
//! valid until they expire and while their ServiceAccount lives. Real tokens are JWTs; these
//! are opaque to clients, which never look inside. There is no authorization: every
//! authenticated request may do everything, as with the admin token.

use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::app::{ResourceRequest, json_response};
use crate::codec;
use crate::errors::{Cause, Error, Result};
use crate::storage::{ClusterState, Txn};

/// The Secret type the token controller fills.
pub(crate) const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
const SECRETS: &str = "/secrets";
pub(crate) const SERVICE_ACCOUNTS: &str = "/serviceaccounts";

fn text<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn encode(bytes: &[u8]) -> Value {
    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Fills a token Secret being written into `namespace` the way the token controller does, when
/// it names a ServiceAccount that exists and has no token yet. Anything else is left as it is
/// (a Secret naming a missing ServiceAccount gets no token, so it authenticates nothing).
pub(crate) fn populate(state: &ClusterState, namespace: &str, obj: &mut Value, ca_pem: &str) {
    if text(obj, "/type") != Some(TOKEN_SECRET_TYPE) {
        return;
    }
    let has_token = obj
        .pointer("/data/token")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    if has_token {
        return;
    }
    let Some(account) = annotation(obj, NAME_ANNOTATION).map(str::to_owned) else {
        return;
    };
    let Some(sa) = state.get(SERVICE_ACCOUNTS, namespace, &account) else {
        return;
    };
    let Some(uid) = text(&sa, "/metadata/uid").map(str::to_owned) else {
        return;
    };
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let data = root.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    if let Some(data) = data.as_object_mut() {
        data.insert("token".into(), encode(token.as_bytes()));
        data.insert("ca.crt".into(), encode(ca_pem.as_bytes()));
        data.insert("namespace".into(), encode(namespace.as_bytes()));
    }
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let notes = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(notes) = notes.as_object_mut() {
            notes.insert(UID_ANNOTATION.into(), Value::from(uid));
        }
    }
}

/// The `default` ServiceAccount every live namespace has (kube-controller-manager's
/// service-account controller makes it, and makes it again when it is deleted): created when
/// the namespace exists, is not terminating, and has none.
pub(crate) fn ensure_default(txn: &mut Txn<'_>, namespace: &str) {
    let live = txn
        .state()
        .get(crate::registry::NAMESPACE_KEY, "", namespace)
        .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_none());
    if !live
        || txn
            .state()
            .get(SERVICE_ACCOUNTS, namespace, "default")
            .is_some()
    {
        return;
    }
    txn.put(
        SERVICE_ACCOUNTS,
        namespace,
        "default",
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "default",
                "namespace": namespace,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": crate::handlers::crud::now(),
            },
        }),
    );
}

/// Who a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct User {
    /// `admin`, or `system:serviceaccount:<namespace>:<name>`.
    pub(crate) username: String,
    /// The ServiceAccount's uid (empty for the admin).
    pub(crate) uid: String,
    /// The groups, as kube-apiserver gives them.
    pub(crate) groups: Vec<String>,
}

impl User {
    /// The holder of the admin token.
    pub(crate) fn admin() -> User {
        User {
            username: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    fn service_account(namespace: &str, name: &str, uid: &str) -> User {
        User {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.to_owned(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// The ServiceAccount `token` authenticates as in the cluster of `state`: a token the
/// TokenRequest API issued (signed with `key`, not expired, for a ServiceAccount that still
/// exists with the same uid), or the token of a ServiceAccount token Secret whose
/// ServiceAccount still exists (with the uid the Secret was made for).
pub(crate) fn identify(state: &ClusterState, token: &str, key: &str) -> Option<User> {
    if token.is_empty() {
        return None;
    }
    let account = |namespace: &str, name: &str, uid: Option<&str>| {
        let sa = state.get(SERVICE_ACCOUNTS, namespace, name)?;
        let live = text(&sa, "/metadata/uid")?;
        (Some(live) == uid).then(|| User::service_account(namespace, name, live))
    };
    if let Some(claims) = verify(token, key) {
        if claims.expires <= jiff::Timestamp::now().as_second() {
            return None;
        }
        return account(&claims.namespace, &claims.name, Some(&claims.uid));
    }
    let wanted = encode(token.as_bytes());
    state
        .objects(SECRETS)?
        .iter()
        .find_map(|((namespace, _), secret)| {
            if text(secret, "/type") != Some(TOKEN_SECRET_TYPE)
                || secret.pointer("/data/token") != Some(&wanted)
            {
                return None;
            }
            account(
                namespace,
                annotation(secret, NAME_ANNOTATION)?,
                annotation(secret, UID_ANNOTATION),
            )
        })
}

/// The prefix of tokens the TokenRequest API issues.
const ISSUED: &str = "flotilla-sa.";
/// The shortest lifetime kube-apiserver issues (10 minutes) and the default (1 hour).
const MIN_EXPIRATION: i64 = 600;
const DEFAULT_EXPIRATION: i64 = 3600;
/// The audience tokens are for when a request names none.
const DEFAULT_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// What an issued token says.
struct Claims {
    namespace: String,
    name: String,
    uid: String,
    expires: i64,
}

fn b64url() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn signature(payload: &str, key: &str) -> ring::hmac::Tag {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::sign(&key, payload.as_bytes())
}

/// An issued token: `flotilla-sa.<claims>.<HMAC-SHA256 of the claims>`.
fn issue(claims: &Claims, key: &str) -> String {
    let payload = b64url().encode(
        json!({"ns": claims.namespace, "sa": claims.name, "uid": claims.uid, "exp": claims.expires})
            .to_string(),
    );
    let tag = signature(&payload, key);
    format!("{ISSUED}{payload}.{}", b64url().encode(tag.as_ref()))
}

/// The claims of a token this server issued with `key`, or `None`.
fn verify(token: &str, key: &str) -> Option<Claims> {
    let (payload, tag) = token.strip_prefix(ISSUED)?.split_once('.')?;
    let tag = b64url().decode(tag).ok()?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::verify(&key, payload.as_bytes(), &tag).ok()?;
    let claims: Value = serde_json::from_slice(&b64url().decode(payload).ok()?).ok()?;
    Some(Claims {
        namespace: claims["ns"].as_str()?.to_owned(),
        name: claims["sa"].as_str()?.to_owned(),
        uid: claims["uid"].as_str()?.to_owned(),
        expires: claims["exp"].as_i64()?,
    })
}

/// `POST .../serviceaccounts/<name>/token` (TokenRequest, as `kubectl create token` sends it):
/// a token for the ServiceAccount, valid until `spec.expirationSeconds` (default an hour, at
/// least ten minutes) and only while the ServiceAccount lives. `boundObjectRef` is echoed but
/// does not bind the token's life to the object.
pub(crate) async fn token_request(
    rr: &ResourceRequest,
    content_type: Option<&str>,
    body: &[u8],
    key: &str,
) -> Result<Response> {
    let request = codec::decode_object(content_type, body)?;
    let namespace = rr.namespace.clone().unwrap_or_default();
    let name = rr.name.clone().unwrap_or_default();
    let seconds = request
        .pointer("/spec/expirationSeconds")
        .filter(|v| !v.is_null())
        .map(|v| {
            v.as_i64()
                .ok_or_else(|| Error::bad_request("spec.expirationSeconds must be an integer"))
        })
        .transpose()?
        .unwrap_or(DEFAULT_EXPIRATION);
    if seconds < MIN_EXPIRATION {
        return Err(Error::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            &name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {seconds}: may not specify a duration less than 10 minutes"
                ),
                field: "spec.expirationSeconds".into(),
            }],
        ));
    }
    let account = rr
        .cluster
        .read(|st| st.get(SERVICE_ACCOUNTS, &namespace, &name))
        .ok_or_else(|| Error::not_found("", "serviceaccounts", &name))?;
    let uid = text(&account, "/metadata/uid")
        .unwrap_or_default()
        .to_owned();
    let now = jiff::Timestamp::now();
    let expires = now.as_second() + seconds;
    let token = issue(
        &Claims {
            namespace: namespace.clone(),
            name: name.clone(),
            uid,
            expires,
        },
        key,
    );
    let audiences = match request.pointer("/spec/audiences").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => Value::Array(list.clone()),
        _ => json!([DEFAULT_AUDIENCE]),
    };
    let expiration = jiff::Timestamp::from_second(expires)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let answer = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": request.pointer("/spec/boundObjectRef").cloned().unwrap_or(Value::Null),
        },
        "status": {"token": token, "expirationTimestamp": expiration},
    });
    Ok(json_response(
        201,
        serde_json::to_vec(&answer).unwrap_or_default(),
    ))
}

/// A SelfSubjectReview (`kubectl auth whoami`) or SelfSubjectAccessReview (`kubectl auth
/// can-i`) about `user`: who it is, and — there being no authorization here — that it may.
pub(crate) fn review(
    rr: &ResourceRequest,
    content_type: Option<&str>,
    body: &[u8],
    user: &User,
) -> Result<Response> {
    let request = codec::decode_object(content_type, body)?;
    let api_version = format!("{}/{}", rr.info.group, rr.info.version);
    let mut user_info = json!({"username": user.username, "groups": user.groups});
    if !user.uid.is_empty() {
        user_info["uid"] = json!(user.uid);
    }
    let answer = match rr.info.kind.as_str() {
        "SelfSubjectReview" => json!({
            "kind": "SelfSubjectReview", "apiVersion": api_version,
            "metadata": {"creationTimestamp": null},
            "status": {"userInfo": user_info},
        }),
        // `kubectl auth can-i --list`: everything, as for kube's system:masters.
        "SelfSubjectRulesReview" => json!({
            "kind": "SelfSubjectRulesReview", "apiVersion": api_version,
            "metadata": {"creationTimestamp": null},
            "spec": request.get("spec").cloned().unwrap_or_else(|| json!({})),
            "status": {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            },
        }),
        kind => {
            let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
            // A LocalSubjectAccessReview asks about its own namespace only.
            if kind == "LocalSubjectAccessReview"
                && let Some(ns) = spec
                    .pointer("/resourceAttributes/namespace")
                    .and_then(Value::as_str)
                && Some(ns) != rr.namespace.as_deref()
            {
                return Err(Error::invalid(
                    "authorization.k8s.io",
                    kind,
                    "",
                    vec![Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!("Invalid value: {ns:?}: must match metadata.namespace"),
                        field: "spec.resourceAttributes.namespace".into(),
                    }],
                ));
            }
            json!({
                "kind": kind, "apiVersion": api_version,
                "metadata": {"creationTimestamp": null},
                "spec": spec,
                "status": {"allowed": true,
                           "reason": "the embedded API server lets every authenticated request do everything"},
            })
        }
    };
    Ok(json_response(
        201,
        serde_json::to_vec(&answer).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_only_unaltered_and_under_their_key() {
        let claims = Claims {
            namespace: "ns".into(),
            name: "robot".into(),
            uid: "u-1".into(),
            expires: 2_000_000_000,
        };
        let token = issue(&claims, "key");
        let read = verify(&token, "key").map(|c| (c.namespace, c.name, c.uid, c.expires));
        assert_eq!(
            read,
            Some(("ns".into(), "robot".into(), "u-1".into(), 2_000_000_000))
        );
        assert!(
            verify(&token, "another key").is_none(),
            "another server's key"
        );
        let (payload, tag) = token.rsplit_once('.').unwrap_or_default();
        let forged = issue(
            &Claims {
                name: "admin".into(),
                ..claims
            },
            "forger",
        );
        let (forged_payload, _) = forged.rsplit_once('.').unwrap_or_default();
        assert!(
            verify(&format!("{forged_payload}.{tag}"), "key").is_none(),
            "claims changed under the old signature"
        );
        assert!(verify(&format!("{payload}.AAAA"), "key").is_none());
        assert!(verify("not-a-token", "key").is_none());
    }
}
