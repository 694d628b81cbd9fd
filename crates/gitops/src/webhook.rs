//! The push webhook: `POST /hooks/gitrepo/<namespace>/<name>` on the hub's HTTP endpoint asks
//! for a fetch at once, instead of at the next interval. The caller proves it knows the shared
//! secret under key `webhook` of the GitRepo's `spec.secretRef` Secret: as a bearer token,
//! `X-Gitlab-Token`, or GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body). The hook only
//! sets the [`REQUESTED_AT`] annotation; the controller does the rest.

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use flotilla_api::GitRepo;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;
use tracing::info;

use crate::controller::REQUESTED_AT;

/// The routes of the webhook, over the hub `client`.
pub fn router(client: Client) -> Router {
    Router::new()
        .route("/hooks/gitrepo/{namespace}/{name}", post(hook))
        .with_state(client)
}

/// Whether `headers` and `body` prove knowledge of `secret`.
pub fn authorized(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let same = |given: &[u8]| {
        // Compare HMACs of both, so the comparison takes the same time whatever matches.
        let key =
            ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new());
        match key {
            Ok(key) => {
                let tag = ring::hmac::sign(&key, secret);
                ring::hmac::verify(&key, given, tag.as_ref()).is_ok()
            }
            Err(_) => false,
        }
    };
    if let Some(token) = header("authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return same(token.as_bytes());
    }
    if let Some(token) = header("x-gitlab-token") {
        return same(token.as_bytes());
    }
    if let Some(signature) = header("x-hub-signature-256").and_then(|v| v.strip_prefix("sha256=")) {
        let Some(given) = hex(signature) else {
            return false;
        };
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        return ring::hmac::verify(&key, body, &given).is_ok();
    }
    false
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn hook(
    State(client): State<Client>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let repos: Api<GitRepo> = Api::namespaced(client.clone(), &namespace);
    let denied = (StatusCode::UNAUTHORIZED, "unauthorized\n".to_owned());
    let repo = match repos.get_opt(&name).await {
        Ok(Some(repo)) => repo,
        // The same answer as a wrong secret: the hook tells nobody which GitRepos exist.
        Ok(None) => return denied,
        Err(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot read the GitRepo\n".into(),
            );
        }
    };
    let Some(reference) = &repo.spec.secret_ref else {
        return denied;
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret = match secrets.get_opt(&reference.name).await {
        Ok(secret) => secret,
        Err(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot read the Secret\n".into(),
            );
        }
    };
    let Some(shared) = secret
        .and_then(|s| s.data)
        .and_then(|d| d.get("webhook").cloned())
        .filter(|v| !v.0.is_empty())
    else {
        return denied;
    };
    if !authorized(&shared.0, &headers, &body) {
        return denied;
    }
    let now = jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT: now}}});
    match repos
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            info!(gitrepo = %format!("{namespace}/{name}"), "webhook: fetching now");
            (StatusCode::ACCEPTED, "fetching\n".to_owned())
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot annotate the GitRepo\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shared_secret_is_accepted() {
        let secret = b"hook-secret";
        let with = |name: &'static str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().expect("header"));
            headers
        };
        let body = br#"{"ref":"refs/heads/main"}"#;
        assert!(authorized(
            secret,
            &with("authorization", "Bearer hook-secret"),
            body
        ));
        assert!(!authorized(
            secret,
            &with("authorization", "Bearer nope"),
            body
        ));
        assert!(authorized(
            secret,
            &with("x-gitlab-token", "hook-secret"),
            body
        ));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let signed = with("x-hub-signature-256", &format!("sha256={hex}"));
        assert!(authorized(secret, &signed, body));
        assert!(!authorized(secret, &signed, b"another body"));
        assert!(!authorized(secret, &HeaderMap::new(), body));
    }
}
