//! Talking to one member: the health probe (`/readyz`, falling back to `/healthz` on 404),
//! `/version`, discovery of every group-version's resources, and paged lists of Nodes and Pods.
//! Owns the member-side IO only; never writes to the member or the hub, and never decides the
//! Cluster's status (that is [`super::ready`] and [`super::summary`]).

use std::{future::Future, time::Duration};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{Api, Client, api::ListParams};
use serde::de::DeserializeOwned;

use super::{ready::Health, summary::GroupVersionResources};
use crate::error::chain;

/// How many group-version resource lists are fetched at once.
const DISCOVERY_CONCURRENCY: usize = 8;
/// Page size of Node and Pod lists.
const PAGE_SIZE: u32 = 500;
/// Longest part of a health endpoint's answer quoted in a condition message.
const MAX_DETAIL: usize = 300;

/// Why a member request failed.
#[derive(Debug)]
pub enum Failure {
    /// No answer within the request timeout.
    Timeout(Duration),
    /// The request failed.
    Kube(kube::Error),
}

impl Failure {
    /// The HTTP status code the member answered with, if it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            Failure::Kube(kube::Error::Api(status)) => Some(status.code),
            _ => None,
        }
    }

    /// Whether the member refused the credentials (401 or 403).
    pub fn is_denied(&self) -> bool {
        matches!(self.code(), Some(401 | 403))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout(timeout) => write!(f, "no answer within {}s", timeout.as_secs_f64()),
            Failure::Kube(kube::Error::Api(status)) => {
                write!(
                    f,
                    "{} {}",
                    status.code,
                    truncate(status.message.trim(), MAX_DETAIL)
                )
            }
            Failure::Kube(error) => f.write_str(&chain(error)),
        }
    }
}

async fn bounded<T>(
    timeout: Duration,
    request: impl Future<Output = kube::Result<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result.map_err(Failure::Kube),
        Err(_) => Err(Failure::Timeout(timeout)),
    }
}

async fn get_text(client: &Client, path: &str, timeout: Duration) -> Result<String, Failure> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| Failure::Kube(kube::Error::HttpError(e)))?;
    bounded(timeout, client.request_text(request)).await
}

/// Probes the member's health: GET `/readyz`, or `/healthz` when `/readyz` is not served. An
/// answer other than 2xx is [`Health::Unhealthy`]; no answer, or no health endpoint at all
/// (404 on both), is [`Health::Unreachable`].
pub async fn probe(client: &Client, timeout: Duration) -> Health {
    let (path, result) = match get_text(client, "/readyz", timeout).await {
        Err(failure) if failure.code() == Some(404) => {
            ("/healthz", get_text(client, "/healthz", timeout).await)
        }
        other => ("/readyz", other),
    };
    match result {
        Ok(_) => Health::Healthy,
        Err(failure) => classify(path, &failure),
    }
}

/// Turns a failed health request into a probe outcome.
pub fn classify(path: &str, failure: &Failure) -> Health {
    match failure.code() {
        Some(404) => Health::Unreachable(
            "neither /readyz nor /healthz is served (404); is the endpoint a Kubernetes API server?"
                .to_owned(),
        ),
        Some(_) => Health::Unhealthy(format!("{path} answered {failure}")),
        None => Health::Unreachable(format!("{path}: {failure}")),
    }
}

/// The member's `gitVersion`, from `/version`.
pub async fn version(client: &Client, timeout: Duration) -> Result<String, Failure> {
    bounded(timeout, client.apiserver_version())
        .await
        .map(|info| info.git_version)
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovered {
    /// One entry per group-version the member advertised.
    pub lists: Vec<GroupVersionResources>,
    /// Whether listing the core versions or the groups failed.
    pub failed: bool,
}

/// Lists every group-version the member serves (`/api`, `/apis`) and then each one's
/// resources; failures of single group-versions are recorded, not fatal.
///
/// # Errors
///
/// Only when the member refused the credentials (401/403), which the caller reports.
pub async fn discover(client: &Client, timeout: Duration) -> Result<Discovered, Failure> {
    let mut discovered = Discovered::default();
    let mut group_versions: Vec<(bool, String)> = Vec::new();
    match bounded(timeout, client.list_core_api_versions()).await {
        Ok(core) => group_versions.extend(core.versions.into_iter().map(|v| (true, v))),
        Err(failure) if failure.is_denied() => return Err(failure),
        Err(failure) => {
            tracing::debug!(%failure, "listing /api failed");
            discovered.failed = true;
        }
    }
    match bounded(timeout, client.list_api_groups()).await {
        Ok(groups) => group_versions.extend(
            groups
                .groups
                .into_iter()
                .flat_map(|g| g.versions.into_iter().map(|v| (false, v.group_version))),
        ),
        Err(failure) if failure.is_denied() => return Err(failure),
        Err(failure) => {
            tracing::debug!(%failure, "listing /apis failed");
            discovered.failed = true;
        }
    }
    group_versions.sort();
    group_versions.dedup();
    discovered.lists = stream::iter(group_versions)
        .map(|(core, group_version)| async move {
            let result = if core {
                bounded(timeout, client.list_core_api_resources(&group_version)).await
            } else {
                bounded(timeout, client.list_api_group_resources(&group_version)).await
            };
            GroupVersionResources {
                group_version,
                resources: result.map(|list| list.resources).map_err(|f| f.to_string()),
            }
        })
        .buffer_unordered(DISCOVERY_CONCURRENCY)
        .collect()
        .await;
    Ok(discovered)
}

/// Lists every object of a cluster-wide kind, page by page.
pub async fn list_all<K>(api: &Api<K>, timeout: Duration) -> Result<Vec<K>, Failure>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = bounded(timeout, api.list(&params)).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Lists the member's Nodes and Pods.
pub async fn nodes_and_pods(
    client: &Client,
    timeout: Duration,
) -> Result<(Vec<Node>, Vec<Pod>), Failure> {
    let nodes = list_all(&Api::<Node>::all(client.clone()), timeout).await?;
    let pods = list_all(&Api::<Pod>::all(client.clone()), timeout).await?;
    Ok((nodes, pods))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn answered(code: u16, message: &str) -> Failure {
        Failure::Kube(kube::Error::Api(
            Status::failure(message, "Failure").with_code(code).boxed(),
        ))
    }

    #[test]
    fn health_failures_are_classified() {
        let table: Vec<(Failure, Health)> = vec![
            (
                answered(500, "[-]etcd failed"),
                Health::Unhealthy("/readyz answered 500 [-]etcd failed".to_owned()),
            ),
            (
                answered(404, "not found"),
                Health::Unreachable(
                    "neither /readyz nor /healthz is served (404); is the endpoint a Kubernetes API server?"
                        .to_owned(),
                ),
            ),
            (
                Failure::Timeout(Duration::from_secs(5)),
                Health::Unreachable("/readyz: no answer within 5s".to_owned()),
            ),
        ];
        for (failure, want) in table {
            assert_eq!(classify("/readyz", &failure), want);
        }
    }

    #[test]
    fn denial_is_recognised() {
        assert!(answered(401, "Unauthorized").is_denied());
        assert!(answered(403, "forbidden").is_denied());
        assert!(!answered(500, "boom").is_denied());
        assert!(!Failure::Timeout(Duration::from_secs(1)).is_denied());
    }

    #[test]
    fn long_answers_are_cut_on_a_char_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(&long, MAX_DETAIL);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MAX_DETAIL + '…'.len_utf8());
    }
}
