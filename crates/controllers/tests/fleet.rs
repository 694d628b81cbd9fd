//! Registering members against the hub API server (server-side apply under `flotilla-up`, on
//! both servers): registering again — as every `flotilla up` restart does — keeps the labels
//! and taints users added to a Cluster and restores the fields `up` sets.

use std::collections::BTreeMap;

use anyhow::Result;
use flotilla_api::Cluster;
use flotilla_controllers::fleet;
use flotilla_testing::TestHub;
use kube::{
    Api,
    api::{Patch, PatchParams},
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn registering_again_keeps_user_edits_and_restores_ours() -> Result<()> {
    let hub = TestHub::start().await?;
    let ours = BTreeMap::from([("fleet.example.com/tier".to_owned(), "gold".to_owned())]);
    let member = hub.add_member("member1", ours.clone()).await?;
    let clusters: Api<Cluster> = Api::all(hub.client.clone());

    // A user labels and taints the Cluster, and changes a field `up` sets.
    let edit = json!({
        "metadata": {"labels": {"team": "payments", "fleet.example.com/tier": "bronze"}},
        "spec": {
            "apiEndpoint": "https://elsewhere.invalid:6443",
            "taints": [{"key": "example.com/maintenance", "effect": "NoSchedule"}],
            "zones": ["zone-a"],
        },
    });
    clusters
        .patch("member1", &PatchParams::default(), &Patch::Merge(&edit))
        .await?;

    fleet::register_member(&hub.client, &member).await?;
    let cluster = clusters.get("member1").await?;
    let labels = cluster.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(
        labels.get("fleet.example.com/tier").map(String::as_str),
        Some("gold"),
        "the label `up` sets is restored"
    );
    let taints: Vec<(&str, &str)> = cluster
        .spec
        .taints
        .iter()
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    assert_eq!(taints, [("example.com/maintenance", "NoSchedule")]);
    assert_eq!(cluster.spec.zones, ["zone-a"]);
    assert_eq!(
        cluster.spec.api_endpoint.as_deref(),
        Some(member.api_endpoint.as_str()),
        "the endpoint `up` sets is restored"
    );
    assert_eq!(cluster.spec.provider.as_deref(), Some("local"));
    assert_eq!(
        cluster.spec.secret_ref.map(|r| (r.namespace, r.name)),
        Some(("flotilla-cluster".to_owned(), "member1".to_owned()))
    );
    Ok(())
}
