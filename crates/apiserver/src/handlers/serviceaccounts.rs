//! ServiceAccount token Secrets, as kube-controller-manager's token controller and
//! kube-apiserver's service-account authenticator treat them: a Secret of type
//! `kubernetes.io/service-account-token` naming an existing ServiceAccount (annotation
//! `kubernetes.io/service-account.name`) gets `token`, `ca.crt` and `namespace` in its data and
//! the ServiceAccount's uid in `kubernetes.io/service-account.uid`, and its token then
//! authenticates requests to the same logical cluster for as long as the Secret and that
//! ServiceAccount exist. Real tokens are signed JWTs; these are opaque random strings, which no
//! client looks inside. There is no authorization: every authenticated request may do
//! everything, as with the admin token.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::storage::ClusterState;

/// The Secret type the token controller fills.
pub(crate) const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
const SECRETS: &str = "/secrets";
const SERVICE_ACCOUNTS: &str = "/serviceaccounts";

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

/// Whether `token` is the token of a ServiceAccount token Secret in `state` whose
/// ServiceAccount still exists (with the uid the Secret was made for).
pub(crate) fn authenticates(state: &ClusterState, token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let wanted = encode(token.as_bytes());
    let Some(secrets) = state.objects(SECRETS) else {
        return false;
    };
    secrets.iter().any(|((namespace, _), secret)| {
        text(secret, "/type") == Some(TOKEN_SECRET_TYPE)
            && secret.pointer("/data/token") == Some(&wanted)
            && annotation(secret, NAME_ANNOTATION).is_some_and(|account| {
                state
                    .get(SERVICE_ACCOUNTS, namespace, account)
                    .is_some_and(|sa| {
                        text(&sa, "/metadata/uid") == annotation(secret, UID_ANNOTATION)
                    })
            })
    })
}
