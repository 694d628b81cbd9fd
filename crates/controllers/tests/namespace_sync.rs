//! The namespace-sync controller with the cluster, cluster-status and execution controllers,
//! against a hub and two members (embedded, or real control planes with
//! `FLOTILLA_TEST_SERVER=kube`): a user namespace made on the hub appears in every member with
//! its labels, a namespace the member already had is adopted, system and skipped namespaces
//! are not copied, a namespace labelled to skip later keeps its member copies, a Work deleted
//! by hand comes back, and a namespace deleted on the hub leaves the members.

use std::collections::BTreeMap;

use anyhow::Result;
use flotilla_api::{Work, keys::labels, names};
use flotilla_controllers::namespace_sync;
use flotilla_testing::{Controllers, MemberServer, TestHub};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::{Value, json};

mod support;

use support::{create, eventually, init_tracing};

const MEMBERS: [&str; 2] = ["member1", "member2"];

fn start(client: &Client) -> Result<Controllers> {
    Controllers::push(client, |ctx| {
        Ok(vec![
            namespace_sync::controller(ctx, namespace_sync::Options::default())?.boxed(),
        ])
    })
}

async fn member_client(member: &flotilla_controllers::fleet::Member) -> Result<Client> {
    MemberServer::of(member)?.client().await
}

async fn create_hub_namespace(client: &Client, name: &str, labels: Value) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    create(
        &api,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": labels}}),
    )
    .await?;
    Ok(())
}

/// The member namespace `name` once `check` holds for it.
async fn member_namespace(
    member: &Client,
    name: &str,
    what: &str,
    check: impl Fn(&Namespace) -> bool,
) -> Result<Namespace> {
    let api: Api<Namespace> = Api::all(member.clone());
    eventually(
        &format!("namespace {name} {what} in the member"),
        || async { Ok(api.get_opt(name).await?.filter(|ns| check(ns))) },
    )
    .await
}

/// The names of the synced namespaces that have a Work in `cluster`'s execution namespace.
async fn synced(client: &Client, cluster: &str) -> Result<Vec<String>> {
    let works: Api<Work> = Api::namespaced(client.clone(), &format!("flotilla-es-{cluster}"));
    let mut names: Vec<String> = works
        .list(&ListParams::default().labels(labels::SYNCED_NAMESPACE))
        .await?
        .items
        .iter()
        .filter_map(|w| w.labels().get(labels::SYNCED_NAMESPACE).cloned())
        .collect();
    names.sort();
    Ok(names)
}

/// Whether a member namespace is gone or going (a real member's namespace controller empties
/// it first).
fn going(ns: Option<&Namespace>) -> bool {
    ns.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())
}

#[tokio::test(flavor = "multi_thread")]
async fn hub_namespaces_exist_in_every_member_until_they_leave_the_hub() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let mut members = Vec::new();
    for name in MEMBERS {
        let member = hub.add_member(name, BTreeMap::new()).await?;
        members.push(member_client(&member).await?);
    }
    // member2 already has a `legacy` namespace of its own, with its own label.
    create(
        &Api::<Namespace>::all(members[1].clone()),
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "legacy", "labels": {"owner": "member2"}}}),
    )
    .await?;
    let _controllers = start(&client)?;

    create_hub_namespace(&client, "shop", json!({"team": "a"})).await?;
    create_hub_namespace(&client, "legacy", json!({})).await?;
    create_hub_namespace(
        &client,
        "private",
        json!({labels::SKIP_AUTO_PROPAGATION: "true"}),
    )
    .await?;
    for member in &members {
        let shop = member_namespace(member, "shop", "with team=a", |ns| {
            ns.labels().get("team").map(String::as_str) == Some("a")
        })
        .await?;
        assert_eq!(
            shop.labels().get(labels::MANAGED_BY).map(String::as_str),
            Some(labels::MANAGED_BY_FLOTILLA)
        );
        // The member's own namespace is adopted (its own labels stay).
        member_namespace(member, "legacy", "managed by flotilla", |ns| {
            ns.labels().get(labels::MANAGED_BY).map(String::as_str)
                == Some(labels::MANAGED_BY_FLOTILLA)
        })
        .await?;
    }
    assert_eq!(
        member_namespace(&members[1], "legacy", "", |_| true)
            .await?
            .labels()
            .get("owner")
            .map(String::as_str),
        Some("member2")
    );
    // Only user namespaces get Works: not default, kube-*, flotilla-*, nor the skipped one
    // (written in the same passes as the two above).
    for cluster in MEMBERS {
        assert_eq!(synced(&client, cluster).await?, ["legacy", "shop"]);
    }

    // A namespace Work deleted by hand comes back.
    let work_name = names::work_name("v1", "Namespace", None, "shop");
    let works: Api<Work> = Api::namespaced(client.clone(), "flotilla-es-member1");
    let before = works.get(&work_name).await?.uid();
    works.delete(&work_name, &DeleteParams::default()).await?;
    eventually("the shop Work back in member1", || async {
        Ok(works
            .get_opt(&work_name)
            .await?
            .filter(|w| w.uid() != before)
            .map(drop))
    })
    .await?;
    // Deleting the Work deleted the member's namespace (a kube-apiserver takes a moment to
    // empty it); once it is gone the execution controller creates it again.
    member_namespace(&members[0], "shop", "shop again, not terminating", |ns| {
        ns.metadata.deletion_timestamp.is_none()
    })
    .await?;

    // Labelled to skip later: the Works go, the members keep the namespace.
    let hub_namespaces: Api<Namespace> = Api::all(client.clone());
    hub_namespaces
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {labels::SKIP_AUTO_PROPAGATION: "true"}}})),
        )
        .await?;
    for cluster in MEMBERS {
        eventually(&format!("no shop Work in {cluster}"), || async {
            Ok((synced(&client, cluster).await? == ["legacy"]).then_some(()))
        })
        .await?;
    }
    for member in &members {
        let shop = Api::<Namespace>::all(member.clone()).get("shop").await?;
        assert!(
            shop.metadata.deletion_timestamp.is_none(),
            "a namespace no longer synced stays in the member"
        );
    }

    // Deleted on the hub: it leaves every member.
    hub_namespaces
        .delete("legacy", &DeleteParams::default())
        .await?;
    for member in &members {
        let api: Api<Namespace> = Api::all(member.clone());
        eventually("legacy leaving the member", || async {
            Ok(going(api.get_opt("legacy").await?.as_ref()).then_some(()))
        })
        .await?;
    }
    Ok(())
}
