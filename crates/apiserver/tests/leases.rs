//! Leader election by `coordination.k8s.io/v1` Lease, as kube-apiserver serves it: a candidate
//! creates or reads the Lease, renews it by PUT with the resourceVersion it read, and loses a
//! race with 409 Conflict when another candidate wrote first. MicroTime fields keep their
//! microseconds on the wire, and every spec field the election uses is stored as sent.

use anyhow::{Context as _, Result, bail};
use flotilla_apiserver::{Config, Server};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::ResourceExt as _;
use kube::api::{Api, PostParams};

const NAMESPACE: &str = "kube-system";
const NAME: &str = "flotilla-scheduler";

async fn start() -> Result<(Server, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    let server = Server::start(config).await?;
    Ok((server, dir))
}

fn micro_time(text: &str) -> Result<MicroTime> {
    Ok(MicroTime(text.parse().context(text.to_owned())?))
}

fn lease_spec(holder: &str, acquired: &str, renewed: &str, transitions: i32) -> Result<LeaseSpec> {
    Ok(LeaseSpec {
        holder_identity: Some(holder.to_owned()),
        lease_duration_seconds: Some(15),
        acquire_time: Some(micro_time(acquired)?),
        renew_time: Some(micro_time(renewed)?),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    })
}

/// The stored Lease exactly as the server sends it, without k8s-openapi's parsing.
async fn raw_lease(client: &kube::Client) -> Result<serde_json::Value> {
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{NAME}");
    Ok(client
        .request(http::Request::get(path).body(Vec::new())?)
        .await?)
}

fn resource_version(lease: &Lease) -> Result<String> {
    lease
        .resource_version()
        .filter(|rv| !rv.is_empty())
        .context("the Lease has no metadata.resourceVersion")
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_renewal_and_takeover_are_guarded_by_resource_version() -> Result<()> {
    let (server, _dir) = start().await?;
    let client = server.client(None).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);

    // Candidate A acquires the Lease by creating it.
    let acquired = "2026-12-01T10:00:00.123456Z";
    let spec_a = lease_spec("hub-a", acquired, acquired, 0)?;
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(NAME.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(spec_a.clone()),
    };
    let created = leases.create(&PostParams::default(), &lease).await?;
    assert_eq!(created.spec.as_ref(), Some(&spec_a));
    let created_rv = resource_version(&created)?;

    let read = leases.get(NAME).await?;
    assert_eq!(read.spec.as_ref(), Some(&spec_a));
    assert_eq!(resource_version(&read)?, created_rv);
    let raw = raw_lease(&client).await?;
    assert_eq!(raw["spec"]["acquireTime"], acquired, "{raw}");
    assert_eq!(raw["spec"]["renewTime"], acquired, "{raw}");
    assert_eq!(raw["spec"]["holderIdentity"], "hub-a", "{raw}");
    assert_eq!(raw["spec"]["leaseDurationSeconds"], 15, "{raw}");
    assert_eq!(raw["spec"]["leaseTransitions"], 0, "{raw}");

    // A renews with the resourceVersion it read: accepted, and the resourceVersion moves.
    let renewed_at = "2026-12-01T10:00:05.000001Z";
    let spec_renewed = lease_spec("hub-a", acquired, renewed_at, 0)?;
    let mut renewal = read.clone();
    renewal.spec = Some(spec_renewed.clone());
    let renewed = leases
        .replace(NAME, &PostParams::default(), &renewal)
        .await?;
    let renewed_rv = resource_version(&renewed)?;
    assert_ne!(
        renewed_rv, created_rv,
        "a renewal must bump the resourceVersion"
    );
    assert_eq!(renewed.spec.as_ref(), Some(&spec_renewed));

    // B read the Lease before A renewed and tries to take it over: it lost the race.
    let taken_at = "2026-12-01T10:00:21.999999Z";
    let spec_b = lease_spec("hub-b", taken_at, taken_at, 1)?;
    let mut takeover = read.clone();
    takeover.spec = Some(spec_b.clone());
    match leases
        .replace(NAME, &PostParams::default(), &takeover)
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            assert_eq!(status.reason, "Conflict", "{status:?}");
        }
        other => bail!("a write with a stale resourceVersion must get 409 Conflict: {other:?}"),
    }
    let after_conflict = leases.get(NAME).await?;
    assert_eq!(after_conflict.spec.as_ref(), Some(&spec_renewed));
    assert_eq!(resource_version(&after_conflict)?, renewed_rv);

    // B rereads and takes over with the current resourceVersion.
    let mut takeover = after_conflict.clone();
    takeover.spec = Some(spec_b.clone());
    let taken = leases
        .replace(NAME, &PostParams::default(), &takeover)
        .await?;
    let taken_rv = resource_version(&taken)?;
    assert_ne!(taken_rv, renewed_rv);
    let read = leases.get(NAME).await?;
    assert_eq!(read.spec.as_ref(), Some(&spec_b));
    assert_eq!(resource_version(&read)?, taken_rv);
    let raw = raw_lease(&client).await?;
    assert_eq!(raw["spec"]["acquireTime"], taken_at, "{raw}");
    assert_eq!(raw["spec"]["renewTime"], taken_at, "{raw}");
    assert_eq!(raw["spec"]["holderIdentity"], "hub-b", "{raw}");
    assert_eq!(raw["spec"]["leaseTransitions"], 1, "{raw}");

    // A, still holding the renewal's resourceVersion, cannot renew over B.
    let mut late = renewed.clone();
    late.spec = Some(lease_spec("hub-a", acquired, taken_at, 0)?);
    match leases.replace(NAME, &PostParams::default(), &late).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        other => bail!("a renewal from a stale resourceVersion must get 409: {other:?}"),
    }
    assert_eq!(leases.get(NAME).await?.spec.as_ref(), Some(&spec_b));
    server.shutdown().await;
    Ok(())
}
