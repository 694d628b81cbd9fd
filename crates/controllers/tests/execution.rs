//! The execution controller against a hub and members (embedded, or real control planes with
//! `FLOTILLA_TEST_SERVER=kube`), with the cluster-status controller reporting the members
//! Ready: a Work becomes its member object (namespace created, server-side applied under
//! `flotilla`, marked with its Work), with `Applied` and the member's status in the Work; an
//! edit and a delete in the member are put back; an unchanged pass writes nothing to the
//! member; a Work update reaches the member; conflicts with an unmanaged object (Abort, then
//! Overwrite) and with another Work; a manifest the member rejects; suspension; deleting a Work
//! deletes its object, or with `preserveResourcesOnDeletion` leaves it released to the member.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use flotilla_api::{
    Work, conditions,
    keys::{annotations, labels},
};
use flotilla_testing::{Controllers, TestHub};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};

mod support;

use support::{create, create_namespace, eventually, init_tracing, reconciles};

const ES: &str = "flotilla-es-member1";

fn start(client: &Client) -> Result<Controllers> {
    Controllers::push(client, |_| Ok(Vec::new()))
}

fn deployment(name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "shop"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": image}]}}}})
}

fn config_map(name: &str, data: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"}},
           "data": {"key": data}})
}

async fn create_work(
    client: &Client,
    name: &str,
    manifests: Vec<Value>,
    spec: Value,
) -> Result<Work> {
    let works: Api<Work> = Api::namespaced(client.clone(), ES);
    let mut body = json!({"apiVersion": "work.flotilla.io/v1alpha1", "kind": "Work",
        "metadata": {"name": name, "namespace": ES},
        "spec": {"workload": {"manifests": manifests}}});
    if let (Some(body), Some(extra)) = (body["spec"].as_object_mut(), spec.as_object()) {
        body.extend(extra.clone());
    }
    create(&works, body).await
}

/// The Work's `Applied` condition once it has `status` and `reason`.
async fn wait_applied(client: &Client, name: &str, status: &str, reason: &str) -> Result<Work> {
    let works: Api<Work> = Api::namespaced(client.clone(), ES);
    eventually(
        &format!("Work {name} Applied {status} {reason}"),
        || async {
            let work = works.get(name).await?;
            let ok = work.status.as_ref().is_some_and(|s| {
                conditions::find(&s.conditions, conditions::APPLIED)
                    .is_some_and(|c| c.status == status && c.reason == reason)
            });
            Ok(ok.then_some(work))
        },
    )
    .await
}

async fn member_data(member: &Api<ConfigMap>, name: &str) -> Result<Option<String>> {
    Ok(member
        .get_opt(name)
        .await?
        .and_then(|c| c.data)
        .and_then(|d| d.get("key").cloned()))
}

async fn wait_data(member: &Api<ConfigMap>, name: &str, want: &str) -> Result<ConfigMap> {
    eventually(
        &format!("ConfigMap shop/{name} = {want} in the member"),
        || async {
            let cm = member.get_opt(name).await?;
            Ok(cm.filter(|c| {
                c.data
                    .as_ref()
                    .and_then(|d| d.get("key"))
                    .map(String::as_str)
                    == Some(want)
            }))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_work_becomes_its_member_object_and_stays_as_declared() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let member = hub.add_member("member1", BTreeMap::new()).await?;
    create_namespace(&client, ES).await?;
    let controllers = start(&client)?;
    let member_client = hub_member_client(&member).await?;
    let member_cms: Api<ConfigMap> = Api::namespaced(member_client.clone(), "shop");

    // Applied, in a namespace the member did not have.
    create_work(&client, "web", vec![config_map("web", "v1")], json!({})).await?;
    let work = wait_applied(&client, "web", "True", "AppliedSuccessfully").await?;
    let live = wait_data(&member_cms, "web", "v1").await?;
    assert_eq!(
        live.labels().get(labels::MANAGED_BY).map(String::as_str),
        Some("flotilla")
    );
    assert_eq!(live.labels().get("app").map(String::as_str), Some("web"));
    assert_eq!(
        live.annotations()
            .get(annotations::WORK_NAME)
            .map(String::as_str),
        Some("web")
    );
    let managers: Vec<(String, String)> = live
        .managed_fields()
        .iter()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("flotilla".to_owned(), "Apply".to_owned())),
        "{managers:?}"
    );
    let statuses = work.status.clone().unwrap_or_default().manifest_statuses;
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        (
            statuses[0].identifier.resource.as_str(),
            statuses[0].identifier.namespace.as_str()
        ),
        ("configmaps", "shop")
    );

    // Drift: an edit in the member is put back, and so is a delete.
    member_cms
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"key": "by-hand"}})),
        )
        .await?;
    wait_data(&member_cms, "web", "v1").await?;
    member_cms.delete("web", &DeleteParams::default()).await?;
    wait_data(&member_cms, "web", "v1").await?;

    // An unchanged pass: a member change Flotilla does not own (a label added in the member)
    // wakes the Work, which writes nothing back.
    let before = reconciles(&controllers, "execution");
    member_cms
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"added-in-member": "yes"}}})),
        )
        .await?;
    let touched = member_cms.get("web").await?.resource_version();
    eventually("the execution pass after the member change", || async {
        Ok((reconciles(&controllers, "execution") > before).then_some(()))
    })
    .await?;
    let after = member_cms.get("web").await?;
    assert_eq!(
        after.resource_version(),
        touched,
        "an unchanged pass wrote to the member"
    );
    assert_eq!(
        after.labels().get("added-in-member").map(String::as_str),
        Some("yes")
    );

    // A Work update reaches the member.
    let works: Api<Work> = Api::namespaced(client.clone(), ES);
    works
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"workload": {"manifests": [config_map("web", "v2")]}}})),
        )
        .await?;
    wait_data(&member_cms, "web", "v2").await?;

    // Suspended: nothing is applied, Dispatching says why.
    works
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspendDispatching": true,
                "workload": {"manifests": [config_map("web", "v3")]}}})),
        )
        .await?;
    eventually("Dispatching False", || async {
        let work = works.get("web").await?;
        let off = work.status.as_ref().is_some_and(|s| {
            conditions::find(&s.conditions, conditions::DISPATCHING)
                .is_some_and(|c| c.status == "False" && c.reason == "SuspendDispatching")
        });
        Ok(off.then_some(()))
    })
    .await?;
    assert_eq!(
        member_data(&member_cms, "web").await?.as_deref(),
        Some("v2")
    );
    works
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspendDispatching": null}})),
        )
        .await?;
    wait_data(&member_cms, "web", "v3").await?;

    // Replicas a member autoscaler sets through the scale subresource are the member's: a later
    // Work update leaves them, while a person's edit of them is drift.
    create_work(
        &client,
        "scaled",
        vec![deployment("scaled", "nginx:1")],
        json!({}),
    )
    .await?;
    let member_deployments: Api<Deployment> = Api::namespaced(member_client.clone(), "shop");
    eventually("Deployment scaled in the member", || async {
        Ok(member_deployments.get_opt("scaled").await?)
    })
    .await?;
    member_deployments
        .patch_scale(
            "scaled",
            &PatchParams {
                field_manager: Some("horizontal-pod-autoscaler".to_owned()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await?;
    works
        .patch(
            "scaled",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"workload": {"manifests": [deployment("scaled", "nginx:2")]}}}),
            ),
        )
        .await?;
    let updated = eventually("the scaled Deployment at nginx:2", || async {
        let d = member_deployments.get("scaled").await?;
        let image = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        Ok((image.as_deref() == Some("nginx:2")).then_some(d))
    })
    .await?;
    assert_eq!(
        updated.spec.and_then(|s| s.replicas),
        Some(5),
        "the autoscaler's replicas kept"
    );

    // Deleted: the member object goes with the Work.
    works.delete("web", &DeleteParams::default()).await?;
    eventually("the member object deleted with its Work", || async {
        Ok(member_cms.get_opt("web").await?.is_none().then_some(()))
    })
    .await?;
    eventually("the Work gone", || async {
        Ok(works.get_opt("web").await?.is_none().then_some(()))
    })
    .await?;

    // Preserved: the member object stays, released.
    create_work(
        &client,
        "kept",
        vec![config_map("kept", "v1")],
        json!({"preserveResourcesOnDeletion": true}),
    )
    .await?;
    wait_data(&member_cms, "kept", "v1").await?;
    works.delete("kept", &DeleteParams::default()).await?;
    eventually("the preserved Work gone", || async {
        Ok(works.get_opt("kept").await?.is_none().then_some(()))
    })
    .await?;
    let kept = member_cms
        .get("kept")
        .await
        .context("the preserved object")?;
    assert_eq!(kept.labels().get(labels::MANAGED_BY), None);
    assert_eq!(kept.annotations().get(annotations::WORK_NAME), None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_are_reported_and_overwrite_adopts() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let member = hub.add_member("member1", BTreeMap::new()).await?;
    create_namespace(&client, ES).await?;
    let member_client = hub_member_client(&member).await?;
    create_namespace(&member_client, "shop").await?;
    let member_cms: Api<ConfigMap> = Api::namespaced(member_client.clone(), "shop");
    create(
        &member_cms,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "theirs", "namespace": "shop"}, "data": {"key": "mine"}}),
    )
    .await?;
    let _controllers = start(&client)?;

    // Abort (the default): left untouched, reported.
    create_work(
        &client,
        "abort",
        vec![config_map("theirs", "flotilla")],
        json!({}),
    )
    .await?;
    let work = wait_applied(&client, "abort", "False", "ConflictWithExisting").await?;
    let message = conditions::find(
        &work.status.unwrap_or_default().conditions,
        conditions::APPLIED,
    )
    .map(|c| c.message.clone())
    .unwrap_or_default();
    assert!(
        message.contains("ConfigMap shop/theirs") && message.contains("Overwrite"),
        "{message}"
    );
    assert_eq!(
        member_data(&member_cms, "theirs").await?.as_deref(),
        Some("mine")
    );

    // Overwrite: adopted.
    let mut adopting = config_map("theirs", "flotilla");
    adopting["metadata"]["annotations"] = json!({annotations::CONFLICT_RESOLUTION: "overwrite"});
    let works: Api<Work> = Api::namespaced(client.clone(), ES);
    works
        .patch(
            "abort",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"workload": {"manifests": [adopting]}}})),
        )
        .await?;
    wait_applied(&client, "abort", "True", "AppliedSuccessfully").await?;
    let adopted = wait_data(&member_cms, "theirs", "flotilla").await?;
    assert_eq!(
        adopted.labels().get(labels::MANAGED_BY).map(String::as_str),
        Some("flotilla")
    );

    // Another Work never takes over an object a Work manages, even with Overwrite.
    let mut second = config_map("theirs", "second");
    second["metadata"]["annotations"] = json!({annotations::CONFLICT_RESOLUTION: "overwrite"});
    create_work(&client, "second", vec![second], json!({})).await?;
    let work = wait_applied(&client, "second", "False", "ManagedByAnotherWork").await?;
    let message = conditions::find(
        &work.status.unwrap_or_default().conditions,
        conditions::APPLIED,
    )
    .map(|c| c.message.clone())
    .unwrap_or_default();
    assert!(
        message.contains("Work flotilla-es-member1/abort"),
        "{message}"
    );
    assert_eq!(
        member_data(&member_cms, "theirs").await?.as_deref(),
        Some("flotilla")
    );

    // A manifest the member rejects: its own words.
    let invalid = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "Not_A_Name", "namespace": "shop"}});
    create_work(&client, "invalid", vec![invalid], json!({})).await?;
    let work = wait_applied(&client, "invalid", "False", "InvalidManifest").await?;
    let message = conditions::find(
        &work.status.unwrap_or_default().conditions,
        conditions::APPLIED,
    )
    .map(|c| c.message.clone())
    .unwrap_or_default();
    assert!(message.contains("the member answered 422"), "{message}");
    Ok(())
}

/// An administrator's client for a member.
async fn hub_member_client(member: &flotilla_controllers::fleet::Member) -> Result<Client> {
    flotilla_testing::MemberServer::of(member)?.client().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_that_joins_gets_its_execution_namespace_and_takes_its_works_when_it_leaves()
-> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let member = hub.add_member("member1", BTreeMap::new()).await?;
    let _controllers = start(&client)?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    eventually("the execution namespace", || async {
        Ok(namespaces.get_opt(ES).await?)
    })
    .await?;
    let member_cms: Api<ConfigMap> = Api::namespaced(hub_member_client(&member).await?, "shop");
    create_work(&client, "web", vec![config_map("web", "v1")], json!({})).await?;
    wait_data(&member_cms, "web", "v1").await?;

    // The Cluster leaves: its Work goes (and with it the member object, the member being
    // Ready), then the namespace, then the Cluster.
    let clusters: Api<flotilla_api::Cluster> = Api::all(client.clone());
    clusters.delete("member1", &DeleteParams::default()).await?;
    eventually("the Cluster gone", || async {
        Ok(clusters.get_opt("member1").await?.is_none().then_some(()))
    })
    .await?;
    assert!(
        member_cms.get_opt("web").await?.is_none(),
        "the member object went with its Work"
    );
    let works: Api<Work> = Api::namespaced(client.clone(), ES);
    assert!(works.list(&Default::default()).await?.items.is_empty());
    eventually("the execution namespace gone or going", || async {
        let ns = namespaces.get_opt(ES).await?;
        Ok(ns
            .is_none_or(|n| n.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_leaving_the_hub_is_not_created_again_in_the_member() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let member = hub.add_member("member1", BTreeMap::new()).await?;
    create_namespace(&client, ES).await?;
    // A hub namespace held in Terminating by a finalizer on something inside it.
    create_namespace(&client, "leaving").await?;
    let hub_cms: Api<ConfigMap> = Api::namespaced(client.clone(), "leaving");
    create(
        &hub_cms,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .delete("leaving", &DeleteParams::default())
        .await?;
    let _controllers = start(&client)?;
    let member_client = hub_member_client(&member).await?;

    // A Work for it is not applied, and the member gets no such namespace back.
    let mut manifest = config_map("late", "v1");
    manifest["metadata"]["namespace"] = json!("leaving");
    create_work(&client, "late", vec![manifest], json!({})).await?;
    let work = wait_applied(&client, "late", "False", "ApplyFailed").await?;
    let message = conditions::find(
        &work
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
        conditions::APPLIED,
    )
    .map(|c| c.message.clone())
    .unwrap_or_default();
    assert!(message.contains("is not to be created"), "{message}");
    let member_namespaces: Api<k8s_openapi::api::core::v1::Namespace> =
        Api::all(member_client.clone());
    assert!(member_namespaces.get_opt("leaving").await?.is_none());

    // A namespace the hub does not have at all is still created for a Work that needs it.
    let mut manifest = config_map("fresh", "v1");
    manifest["metadata"]["namespace"] = json!("elsewhere");
    create_work(&client, "fresh", vec![manifest], json!({})).await?;
    wait_applied(&client, "fresh", "True", "AppliedSuccessfully").await?;
    assert!(member_namespaces.get_opt("elsewhere").await?.is_some());

    hub_cms
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await?;
    Ok(())
}
