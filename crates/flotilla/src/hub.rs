//! The hub process: connects to the hub API server, serves `/metrics`, `/healthz` and
//! `/readyz`, optionally waits to be elected leader, runs the selected controllers on one
//! shared context, and stops cleanly (in-flight reconciles finish, the Lease is released) when
//! asked to. Used by `flotilla hub` and by `flotilla up`.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use flotilla_runtime::{
    Context, ContextOptions,
    health::{self, Readiness},
    leader::{Elector, Ended, Leadership, LeaseOptions},
    metrics::Metrics,
};
use kube::client::ClientBuilder;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::controllers::{self, Controller};

/// How a hub process runs.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None` serves nothing.
    pub metrics_bind_address: Option<SocketAddr>,
    /// Leader election, when more than one hub may run.
    pub leader_election: Option<LeaseOptions>,
    /// The controllers to run.
    pub controllers: Vec<&'static Controller>,
    /// Their settings.
    pub controller_options: controllers::Options,
}

/// What `/readyz` reports.
enum Phase {
    Starting,
    Standby(Arc<AtomicBool>),
    Leading(Arc<Context>),
}

/// Runs the hub against the API server `config` points at until `stop` is cancelled.
///
/// # Errors
///
/// When the endpoint cannot listen, a controller cannot be built, or leadership is lost.
pub async fn run(
    config: kube::Config,
    options: HubOptions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let phase = Arc::new(Mutex::new(Phase::Starting));
    let base = ClientBuilder::try_from(config.clone())
        .context("building a client for the hub")?
        .build();
    if let Some(address) = options.metrics_bind_address {
        let phase = phase.clone();
        let ready: Readiness =
            Arc::new(
                move || match &*phase.lock().unwrap_or_else(|p| p.into_inner()) {
                    Phase::Starting => Err("starting".to_owned()),
                    Phase::Standby(connected) if connected.load(Ordering::Acquire) => Ok(()),
                    Phase::Standby(_) => Err("not connected to the hub API server yet".to_owned()),
                    Phase::Leading(ctx) if ctx.caches().synced() => Ok(()),
                    Phase::Leading(_) => Err("caches are not synced yet".to_owned()),
                },
            );
        // GitRepo push webhooks: POST /hooks/gitrepo/<namespace>/<name>.
        let hooks = flotilla_gitops::webhook::router(base.clone());
        health::serve_with(address, metrics.clone(), ready, hooks, stop.clone()).await?;
    }

    let Some(lease) = options.leader_election.clone() else {
        let ctx = Context::new(base, metrics, stop.clone(), ContextOptions::default());
        *phase.lock().unwrap_or_else(|p| p.into_inner()) = Phase::Leading(ctx.clone());
        return controllers::run(&ctx, &options.controllers, &options.controller_options).await;
    };

    lease.check().map_err(anyhow::Error::msg)?;
    let leadership = Arc::new(Leadership::default());
    let mut elector = Elector::new(base, lease, leadership.clone());
    *phase.lock().unwrap_or_else(|p| p.into_inner()) = Phase::Standby(elector.connected());
    if !elector.acquire(&stop).await {
        return Ok(());
    }
    // Every write the controllers send is refused once leadership lapses, even before the
    // elector notices.
    let guarded = ClientBuilder::try_from(config)
        .context("building a client for the hub")?
        .with_layer(&leadership.guard())
        .build();
    let controllers_stop = stop.child_token();
    let ctx = Context::new(
        guarded,
        metrics,
        controllers_stop.clone(),
        ContextOptions::default(),
    );
    *phase.lock().unwrap_or_else(|p| p.into_inner()) = Phase::Leading(ctx.clone());
    let hold_stop = CancellationToken::new();
    let mut hold = {
        let hold_stop = hold_stop.clone();
        tokio::spawn(async move {
            let ended = elector.hold(&hold_stop).await;
            (elector, ended)
        })
    };
    let running = controllers::run(&ctx, &options.controllers, &options.controller_options);
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => {
            // Stopped (or failed to build): give the Lease up for a standby.
            hold_stop.cancel();
            let _ = hold.await;
            result
        }
        held = &mut hold => {
            controllers_stop.cancel();
            running.await?;
            match held {
                Ok((_, Ended::Stopped)) => Ok(()),
                Ok((_, Ended::Lost)) => anyhow::bail!(
                    "lost the leader Lease (not renewed within the renew deadline); exiting so a \
                     supervisor restarts this hub as a standby"
                ),
                Err(error) => Err(anyhow::anyhow!("the leader elector stopped: {error}")),
            }
        }
    }
}

/// The leader-election identity of this process: `<host>_<pid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "flotilla".to_owned());
    format!("{host}_{}", std::process::id())
}

/// Cancels `stop` on the first SIGTERM or ctrl-c, so the process finishes in-flight work and
/// exits 0; a second signal ends it at once.
pub fn stop_on_signals(stop: CancellationToken) {
    tokio::spawn(async move {
        signal().await;
        info!("stopping: finishing in-flight work (signal again to stop at once)");
        stop.cancel();
        signal().await;
        std::process::exit(130);
    });
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
