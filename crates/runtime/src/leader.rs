//! Leader election by a `coordination.k8s.io/v1` Lease, with client-go's semantics: a
//! candidate takes the Lease when it is free or when its record has not changed for the lease
//! duration (measured on the candidate's own clock, so clock skew does not matter); the leader
//! renews every retry period and gives up when it could not renew within the renew deadline;
//! a leader that stops gracefully releases the Lease so a standby takes over at once. Writes by
//! Update with the Lease's resourceVersion, as client-go's LeaseLock does.
//!
//! [`Leadership::guard`] makes "a leader that cannot renew stops writing at once" hold for
//! every request: a client built with it refuses to send anything but reads once the last
//! successful renew is older than the renew deadline, even if the process was paused and its
//! tasks have not noticed yet. Owns the Lease only; never decides what a leader does.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::Namespace},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::{Error, Result, chain};

/// Where the Lease is and how it is held.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// The Lease's namespace (created when missing).
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This candidate's `holderIdentity`.
    pub identity: String,
    /// How long a standby waits, after it last saw the record change, before taking the Lease.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often candidates try to take the Lease and the leader renews it.
    pub retry_period: Duration,
}

impl LeaseOptions {
    /// client-go's timing (15 s lease, 10 s renew deadline, 2 s retry period).
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks the timing as client-go does.
    ///
    /// # Errors
    ///
    /// A message when the lease duration is not longer than the renew deadline, or the renew
    /// deadline not longer than 1.2 retry periods.
    pub fn check(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(format!(
                "the renew deadline ({:?}) must be longer than 1.2 retry periods ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.identity.is_empty() {
            return Err("the leader-election identity must not be empty".to_owned());
        }
        Ok(())
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Whether this process may act as the leader right now.
#[derive(Debug)]
pub struct Leadership {
    /// Until when the last successful renew lets this process write.
    until: Mutex<Option<Instant>>,
    state: watch::Sender<bool>,
}

impl Default for Leadership {
    fn default() -> Self {
        Self {
            until: Mutex::new(None),
            state: watch::channel(false).0,
        }
    }
}

impl Leadership {
    /// Whether this process holds the Lease and its last renew is within the renew deadline.
    pub fn is_leader(&self) -> bool {
        self.until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    /// Follows leadership changes (`true` while leading).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.subscribe()
    }

    fn lead_until(&self, until: Instant) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
        self.state
            .send_if_modified(|leading| !std::mem::replace(leading, true));
    }

    fn step_down(&self) {
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.state
            .send_if_modified(|leading| std::mem::replace(leading, false));
    }

    /// A client layer that refuses every request except reads (GET, HEAD, OPTIONS) while this
    /// process is not the leader.
    pub fn guard(
        self: &Arc<Self>,
    ) -> tower::filter::FilterLayer<
        impl Fn(
            http::Request<kube::client::Body>,
        ) -> Result<http::Request<kube::client::Body>, NotLeader>
        + Clone
        + use<>,
    > {
        let leadership = self.clone();
        tower::filter::FilterLayer::new(move |request: http::Request<kube::client::Body>| {
            let read = matches!(
                *request.method(),
                http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
            );
            if read || leadership.is_leader() {
                Ok(request)
            } else {
                Err(NotLeader)
            }
        })
    }
}

/// A write refused because this process is not (or no longer) the leader.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("this process is not the leader: writes are refused")]
pub struct NotLeader;

/// The part of a Lease's spec that identifies one leadership record.
#[derive(Clone, Debug, PartialEq)]
struct Record {
    holder: Option<String>,
    renew: Option<MicroTime>,
    acquire: Option<MicroTime>,
    transitions: Option<i32>,
    duration: Option<i32>,
    resource_version: Option<String>,
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renew: spec.renew_time,
            acquire: spec.acquire_time,
            transitions: spec.lease_transitions,
            duration: spec.lease_duration_seconds,
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// A candidate for one Lease.
pub struct Elector {
    leases: Api<Lease>,
    namespaces: Api<Namespace>,
    options: LeaseOptions,
    leadership: Arc<Leadership>,
    /// The record last seen, and when (on this process's clock) it was first seen.
    observed: Option<(Record, Instant)>,
    /// Whether the API server has answered at least once.
    connected: Arc<std::sync::atomic::AtomicBool>,
}

/// How holding the Lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The stop signal came; the Lease was released.
    Stopped,
    /// The Lease could not be renewed within the renew deadline, or another candidate holds it.
    Lost,
}

impl Elector {
    /// A candidate that talks to the API server through `client` (which must not be guarded by
    /// [`Leadership::guard`]: it writes the Lease before it leads).
    pub fn new(client: Client, options: LeaseOptions, leadership: Arc<Leadership>) -> Self {
        Self {
            leases: Api::namespaced(client.clone(), &options.namespace),
            namespaces: Api::all(client),
            options,
            leadership,
            observed: None,
            connected: Arc::default(),
        }
    }

    /// Set once the API server has answered a Lease request (for a standby's readiness).
    pub fn connected(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.connected.clone()
    }

    /// Tries every retry period until this candidate holds the Lease (`true`) or `stop` is
    /// cancelled (`false`).
    pub async fn acquire(&mut self, stop: &CancellationToken) -> bool {
        info!(lease = %self.options.lease(), identity = %self.options.identity, "waiting to become the leader");
        loop {
            let started = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    self.leadership
                        .lead_until(started + self.options.renew_deadline);
                    info!(lease = %self.options.lease(), identity = %self.options.identity, "became the leader");
                    return true;
                }
                Ok(false) => {}
                Err(error) => warn!(error = %chain(&error), "could not take the leader Lease"),
            }
            tokio::select! {
                () = tokio::time::sleep(jitter(self.options.retry_period)) => {}
                () = stop.cancelled() => return false,
            }
        }
    }

    /// Renews the Lease every retry period until `stop` is cancelled (then releases it) or a
    /// renew deadline passes without a successful renew.
    pub async fn hold(&mut self, stop: &CancellationToken) -> Ended {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.options.retry_period) => {}
                () = stop.cancelled() => {
                    self.release().await;
                    return Ended::Stopped;
                }
            }
            let started = Instant::now();
            let deadline = self.deadline();
            let attempt = tokio::time::timeout(
                deadline.saturating_duration_since(started),
                self.try_acquire_or_renew(),
            );
            match attempt.await {
                Ok(Ok(true)) => {
                    self.leadership
                        .lead_until(started + self.options.renew_deadline);
                    continue;
                }
                Ok(Ok(false)) => debug!("the Lease could not be renewed: another holder"),
                Ok(Err(error)) => warn!(error = %chain(&error), "could not renew the leader Lease"),
                Err(_) => warn!("renewing the leader Lease timed out"),
            }
            if Instant::now() >= self.deadline() {
                self.leadership.step_down();
                warn!(lease = %self.options.lease(), "lost the leader Lease: not renewed within the renew deadline");
                return Ended::Lost;
            }
        }
    }

    /// Until when the current leadership is valid.
    fn deadline(&self) -> Instant {
        *self
            .leadership
            .until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now)
    }

    /// Gives the Lease up (holder cleared, duration 1 s), so a standby takes over without
    /// waiting out the lease duration. Best effort.
    pub async fn release(&mut self) {
        let holding = self.leadership.is_leader();
        self.leadership.step_down();
        if !holding {
            return;
        }
        let Ok(Some(mut lease)) = self.leases.get_opt(&self.options.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.options.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now.clone());
        spec.acquire_time = Some(now);
        match self
            .leases
            .replace(&self.options.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => info!(lease = %self.options.lease(), "released the leader Lease"),
            Err(error) => warn!(error = %chain(&error), "could not release the leader Lease"),
        }
    }

    /// One round of client-go's `tryAcquireOrRenew`: `Ok(true)` when this candidate holds the
    /// Lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let lease_name = self.options.lease();
        let now = MicroTime(Timestamp::now());
        let duration = i32::try_from(self.options.lease_duration.as_secs().max(1)).unwrap_or(15);
        let current = self
            .leases
            .get_opt(&self.options.name)
            .await
            .map_err(|source| Error::ReadLease {
                lease: lease_name.clone(),
                source,
            })?;
        self.connected
            .store(true, std::sync::atomic::Ordering::Release);
        let Some(mut lease) = current else {
            return self.create(now, duration).await;
        };
        let record = Record::of(&lease);
        if self.observed.as_ref().map(|(r, _)| r) != Some(&record) {
            self.observed = Some((record.clone(), Instant::now()));
        }
        let me = self.options.identity.as_str();
        let held_by_other = record.holder.as_deref().is_some_and(|h| h != me);
        let observed_at = self
            .observed
            .as_ref()
            .map_or_else(Instant::now, |(_, at)| *at);
        if held_by_other && observed_at + self.options.lease_duration > Instant::now() {
            return Ok(false);
        }
        let spec = lease.spec.get_or_insert_with(Default::default);
        if record.holder.as_deref() != Some(me) {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(record.transitions.unwrap_or(0).saturating_add(1));
        }
        spec.holder_identity = Some(me.to_owned());
        spec.lease_duration_seconds = Some(duration);
        spec.renew_time = Some(now);
        match self
            .leases
            .replace(&self.options.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observed = Some((Record::of(&updated), Instant::now()));
                Ok(true)
            }
            Err(error) if crate::error::is_conflict(&error) => Ok(false),
            Err(source) => Err(Error::WriteLease {
                lease: lease_name,
                source,
            }),
        }
    }

    async fn create(&mut self, now: MicroTime, duration: i32) -> Result<bool> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.options.name.clone()),
                namespace: Some(self.options.namespace.clone()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                holder_identity: Some(self.options.identity.clone()),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        match self.leases.create(&PostParams::default(), &lease).await {
            Ok(created) => {
                self.observed = Some((Record::of(&created), Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.create_namespace().await?;
                Ok(false)
            }
            Err(source) => Err(Error::WriteLease {
                lease: self.options.lease(),
                source,
            }),
        }
    }

    async fn create_namespace(&self) -> Result<()> {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(self.options.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        match self
            .namespaces
            .create(&PostParams::default(), &namespace)
            .await
        {
            Ok(_) => {
                info!(namespace = %self.options.namespace, "created the leader-election namespace");
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(Error::CreateNamespace {
                namespace: self.options.namespace.clone(),
                source,
            }),
        }
    }
}

/// A wait between 1 and 1.2 retry periods, so candidates do not retry in lockstep. (client-go
/// jitters up to 2.2 periods; a smaller spread keeps a standby's takeover within the lease
/// duration plus about one retry period of the leader's last renew.)
fn jitter(period: Duration) -> Duration {
    let nanos = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default(),
    );
    let fraction = (nanos % 1000) as f64 / 1000.0 * 0.2;
    period.mul_f64(1.0 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_is_checked_as_client_go_does() {
        let ok = LeaseOptions::new("ns", "lease", "me");
        assert_eq!(ok.check(), Ok(()));
        let mut short = ok.clone();
        short.lease_duration = Duration::from_secs(10);
        assert!(
            short
                .check()
                .is_err_and(|m| m.contains("longer than the renew deadline"))
        );
        let mut tight = ok.clone();
        tight.retry_period = Duration::from_secs(9);
        assert!(
            tight
                .check()
                .is_err_and(|m| m.contains("1.2 retry periods"))
        );
        let mut nobody = ok;
        nobody.identity.clear();
        assert!(nobody.check().is_err());
    }

    #[test]
    fn leadership_expires_at_its_deadline() {
        let leadership = Leadership::default();
        assert!(!leadership.is_leader());
        let mut changes = leadership.subscribe();
        leadership.lead_until(Instant::now() + Duration::from_secs(60));
        assert!(leadership.is_leader());
        assert!(changes.has_changed().unwrap_or(false));
        assert!(*changes.borrow_and_update());
        leadership.lead_until(Instant::now());
        assert!(
            !leadership.is_leader(),
            "a passed deadline is not leadership"
        );
        leadership.step_down();
        assert!(!*changes.borrow_and_update());
    }

    #[test]
    fn jitter_stays_within_a_fifth_of_the_period() {
        for _ in 0..100 {
            let wait = jitter(Duration::from_secs(2));
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_millis(2400));
        }
    }
}
