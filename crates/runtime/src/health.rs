//! The plain-HTTP endpoint every long-running Flotilla process serves: `/metrics` (Prometheus
//! text format), `/healthz` (the process is alive) and `/readyz` (it can do its part, as the
//! caller's readiness check says). Owns the listener only; never decides readiness itself.

use std::{net::SocketAddr, sync::Arc};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::{
    error::{Error, Result},
    metrics::{CONTENT_TYPE, Metrics},
};

/// Answers whether the process is ready: `Ok` or a message saying what it waits for.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct Endpoint {
    metrics: Arc<Metrics>,
    ready: Readiness,
}

/// Listens on `address` and serves the endpoint until `stop` is cancelled. Returns the address
/// it listens on (useful when `address` has port 0).
///
/// # Errors
///
/// [`Error::ServeMetrics`] when the address cannot be listened on.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Readiness,
    stop: CancellationToken,
) -> Result<SocketAddr> {
    serve_with(address, metrics, ready, Router::new(), stop).await
}

/// [`serve`], with more `routes` beside the endpoint's own (the hub's webhooks).
///
/// # Errors
///
/// [`Error::ServeMetrics`] when the address cannot be listened on.
pub async fn serve_with(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Readiness,
    routes: Router,
    stop: CancellationToken,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| Error::ServeMetrics {
            address: address.to_string(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::ServeMetrics {
            address: address.to_string(),
            source,
        })?;
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Endpoint { metrics, ready })
        .merge(routes);
    info!(address = %local, "serving /metrics, /healthz and /readyz");
    tokio::spawn(
        async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(error) = served {
                warn!(%error, "the metrics and health endpoint stopped");
            }
        }
        .instrument(info_span!("health")),
    );
    Ok(local)
}

async fn render_metrics(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
        endpoint.metrics.render(),
    )
}

async fn readyz(State(endpoint): State<Endpoint>) -> impl IntoResponse {
    match (endpoint.ready)() {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(waiting) => (StatusCode::SERVICE_UNAVAILABLE, waiting),
    }
}
