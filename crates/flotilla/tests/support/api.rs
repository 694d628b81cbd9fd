//! Raw API calls for the tests that check answers (codes, warnings, bodies) on either server.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use http::{Method, Request};
use kube::Client;
use serde_json::Value;

/// One answer: status code, warnings and the JSON body.
pub struct Answer {
    pub code: u16,
    pub warnings: Vec<String>,
    pub body: Value,
}

pub async fn send(client: &Client, method: Method, path: &str, body: &Value) -> Result<Answer> {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body)?
    };
    let content_type = if method == Method::PATCH {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(bytes)?;
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .with_context(|| path.to_string())?;
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer {
        code,
        warnings,
        body,
    })
}

pub async fn ok(client: &Client, method: Method, path: &str, body: &Value) -> Result<Value> {
    let a = send(client, method.clone(), path, body).await?;
    ensure!(
        (200..300).contains(&a.code),
        "{method} {path}: {} {}",
        a.code,
        a.body
    );
    Ok(a.body)
}

/// Waits (up to 60 s) until `check` says yes, then returns its value.
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client for `kubeconfig` that hands every answer back as it came: kube-rs' default client
/// retries 429, 503 and 504 answers (honouring `Retry-After`).
pub async fn without_retries(kubeconfig: &std::path::Path) -> Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    config.default_retry = false;
    Ok(Client::try_from(config)?)
}
