//! The one context every controller of a process is built with: the hub client, the shared
//! caches, the member clients, the metrics and the stop signal. Owns only what is shared; each
//! controller keeps its own state beside it.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::{cache::Caches, error::Result, members::Members, metrics::Metrics};

/// Settings of the shared context.
#[derive(Clone, Debug)]
pub struct ContextOptions {
    /// The longest any single request to a member may take.
    pub member_request_timeout: Duration,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            member_request_timeout: Duration::from_secs(5),
        }
    }
}

/// What every controller of one process shares.
pub struct Context {
    client: Client,
    caches: Caches,
    members: Mutex<Option<Arc<Members>>>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    options: ContextOptions,
}

impl Context {
    /// A context for controllers that talk to the hub through `client`, record into `metrics`
    /// and stop when `stop` is cancelled.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        stop: CancellationToken,
        options: ContextOptions,
    ) -> Arc<Self> {
        Arc::new(Self {
            caches: Caches::new(client.clone()),
            client,
            members: Mutex::default(),
            metrics,
            stop,
            options,
        })
    }

    /// The hub client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared caches.
    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    /// The member clients, created on first use (which asks for the Cluster and Secret caches).
    ///
    /// # Errors
    ///
    /// [`crate::Error::CachesStarted`] when first asked for after the caches started.
    pub fn members(&self) -> Result<Arc<Members>> {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(members) = members.as_ref() {
            return Ok(members.clone());
        }
        let created = Arc::new(Members::new(
            &self.caches,
            self.options.member_request_timeout,
        )?);
        *members = Some(created.clone());
        Ok(created)
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Cancelled when the process is stopping: controllers finish what they are doing and
    /// take no new work.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Starts the shared caches; call once every controller has been built.
    pub fn start(&self) {
        self.caches.start(&self.stop);
    }
}
