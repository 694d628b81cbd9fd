//! Cluster heartbeats: whoever reports a Cluster's status (the cluster-status controller for
//! Push clusters, the agent for Pull clusters) renews the `coordination.k8s.io` Lease named
//! after the cluster in `flotilla-cluster` on every report; the cluster controller reads it to
//! tell a silent reporter from a quiet cluster, as Karmada's cluster controller does. Renewing
//! a Lease instead of a status timestamp keeps heartbeats from waking every Cluster watcher.
//! Owns the Lease's shape and the staleness decision; never writes a Cluster.

use std::time::{Duration, Instant};

use flotilla_api::{
    Cluster,
    conditions::{READY, UNKNOWN, reasons},
    keys::namespaces,
};
use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::Namespace},
    apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::reflector::ObjectRef,
};
use serde_json::json;

/// The Lease holding `cluster`'s heartbeat.
pub fn lease_ref(cluster: &str) -> ObjectRef<Lease> {
    ObjectRef::new(cluster).within(namespaces::CLUSTER)
}

/// The cluster a heartbeat Lease belongs to, or `None` for any other Lease.
pub fn cluster_of_lease(lease: &Lease) -> Option<String> {
    (lease.namespace().as_deref() == Some(namespaces::CLUSTER)).then(|| lease.name_any())
}

/// Renews `cluster`'s heartbeat Lease as `holder`, creating it (owned by the Cluster, so it
/// goes with it) when missing.
///
/// # Errors
///
/// The client error of the write.
pub async fn renew(
    client: &Client,
    cluster: &Cluster,
    holder: &str,
    duration: Duration,
) -> kube::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespaces::CLUSTER);
    let name = cluster.name_any();
    let seconds = i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let now = MicroTime(Timestamp::now());
    let patch = json!({
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds, "renewTime": now},
    });
    match leases
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => return Err(error),
    }
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespaces::CLUSTER.to_owned()),
            owner_references: cluster.controller_owner_ref(&()).map(|mut owner| {
                owner.controller = Some(false);
                vec![owner]
            }),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(now),
            ..Default::default()
        }),
    };
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        // Created meanwhile by another writer: renewed next time.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            let namespaces_api: Api<Namespace> = Api::all(client.clone());
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(namespaces::CLUSTER.to_owned()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match namespaces_api
                .create(&PostParams::default(), &namespace)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(error) => return Err(error),
            }
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        Err(error) => Err(error),
    }
}

/// What the cluster controller remembers of one cluster's heartbeat: the renew time it last
/// saw and when, on its own clock, it saw it change.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    renewed: Option<MicroTime>,
    seen: Instant,
}

impl Heartbeat {
    /// A heartbeat first seen at `now`: a cluster gets a full grace period from the moment
    /// the controller starts watching it, whatever the Lease says.
    pub fn new(renewed: Option<MicroTime>, now: Instant) -> Self {
        Self { renewed, seen: now }
    }

    /// Records the Lease's renew time as seen at `now`; returns how long the heartbeat has been
    /// silent.
    pub fn observe(&mut self, renewed: Option<MicroTime>, now: Instant) -> Duration {
        if renewed.is_some() && renewed != self.renewed {
            self.renewed = renewed;
            self.seen = now;
        }
        now.saturating_duration_since(self.seen)
    }
}

/// The `Ready` condition to write when nothing has renewed the heartbeat for `silent`, or
/// `None` when the current one stands: past `grace`, Ready turns Unknown (`ClusterStatusUnknown`,
/// or `ClusterStatusNeverUpdated` when no Ready was ever posted, judged against
/// `startup_grace`). `lastTransitionTime` is `now` (it is a transition).
pub fn stale_ready(
    current: Option<&Condition>,
    silent: Duration,
    grace: Duration,
    startup_grace: Duration,
    now: Time,
) -> Option<Condition> {
    let (limit, reason, message) = match current {
        None => (
            startup_grace,
            reasons::CLUSTER_STATUS_NEVER_UPDATED,
            "Cluster status was never posted: neither the cluster-status controller nor an agent \
             has reported this cluster",
        ),
        Some(_) => (
            grace,
            reasons::CLUSTER_STATUS_UNKNOWN,
            "Cluster status stopped being posted: the cluster-status controller (Push) or the \
             agent (Pull) has not renewed its heartbeat",
        ),
    };
    if silent < limit || current.is_some_and(|c| c.status == UNKNOWN) {
        return None;
    }
    Some(Condition {
        type_: READY.to_owned(),
        status: UNKNOWN.to_owned(),
        reason: reason.to_owned(),
        message: format!("{message} for {}s", silent.as_secs()),
        observed_generation: current.and_then(|c| c.observed_generation),
        last_transition_time: now,
    })
}

#[cfg(test)]
mod tests {
    use flotilla_api::conditions;

    use super::*;

    fn micro(seconds: i64) -> MicroTime {
        MicroTime(Timestamp::from_second(seconds).unwrap_or_default())
    }

    #[test]
    fn silence_is_measured_from_the_last_change_seen() {
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let mut heartbeat = Heartbeat::new(Some(micro(100)), at(0));
        assert_eq!(
            heartbeat.observe(Some(micro(100)), at(5)),
            Duration::from_secs(5)
        );
        // A renewal resets the silence, whatever the renew time says about the writer's clock.
        assert_eq!(heartbeat.observe(Some(micro(50)), at(7)), Duration::ZERO);
        assert_eq!(
            heartbeat.observe(Some(micro(50)), at(47)),
            Duration::from_secs(40)
        );
        // A Lease that disappeared does not count as a renewal.
        assert_eq!(heartbeat.observe(None, at(50)), Duration::from_secs(43));
    }

    #[test]
    fn ready_turns_unknown_only_past_the_grace_period() {
        let grace = Duration::from_secs(40);
        let startup = Duration::from_secs(60);
        let now = Time(Timestamp::from_second(1000).unwrap_or_default());
        let ready = conditions::new(READY, true, reasons::CLUSTER_READY, "ok", Some(3));
        let unknown = Condition {
            status: UNKNOWN.to_owned(),
            ..ready.clone()
        };
        let secs = Duration::from_secs;
        let table: Vec<(&str, Option<&Condition>, Duration, Option<&str>)> = vec![
            ("ready, recently renewed", Some(&ready), secs(39), None),
            (
                "ready, silent past grace",
                Some(&ready),
                secs(40),
                Some(reasons::CLUSTER_STATUS_UNKNOWN),
            ),
            (
                "already unknown: no rewrite",
                Some(&unknown),
                secs(400),
                None,
            ),
            ("never posted, within startup grace", None, secs(59), None),
            (
                "never posted, past startup grace",
                None,
                secs(60),
                Some(reasons::CLUSTER_STATUS_NEVER_UPDATED),
            ),
        ];
        for (name, current, silent, want) in table {
            let got = stale_ready(current, silent, grace, startup, now.clone());
            assert_eq!(got.as_ref().map(|c| c.reason.as_str()), want, "{name}");
            if let Some(c) = got {
                assert_eq!(
                    (c.status.as_str(), c.last_transition_time),
                    (UNKNOWN, now.clone())
                );
            }
        }
    }
}
