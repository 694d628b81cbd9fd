//! The dependencies distributor with the detector, the scheduler and the binding controller,
//! against the hub API server (embedded, or real with `FLOTILLA_TEST_SERVER=kube`): a
//! Deployment with `propagateDeps: true` takes the ConfigMap and Secret it references to its
//! cluster (attached bindings with `requiredBy`, one Work each), a dependency created after
//! its workload follows too, the dependencies move when the workload moves, a ConfigMap two
//! workloads share goes to both clusters and leaves one when its workload there is deleted, an
//! edit of the ConfigMap reaches its Work, and the attached bindings go with the last workload.

use anyhow::{Context as _, Result};
use flotilla_api::{PropagationPolicy, ResourceBinding, Work, keys::annotations, names};
use flotilla_controllers::{binding, dependencies, detector};
use flotilla_testing::{Controllers, TestHub, fixtures::ClusterBuilder};
use futures::FutureExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};

mod support;

use support::{create, create_clusters, create_namespace, eventually, init_tracing};

const NAMESPACE: &str = "shop";

fn start(client: &Client) -> Result<Controllers> {
    Controllers::start(client, |ctx| {
        Ok(vec![
            detector::controller(ctx, detector::Options::default())?.boxed(),
            flotilla_scheduler::controller::controller(
                ctx,
                flotilla_scheduler::controller::Options::default(),
            )?
            .boxed(),
            dependencies::controller(ctx, dependencies::Options::default())?.boxed(),
            binding::controller(ctx, binding::Options::default())?.boxed(),
        ])
    })
}

fn config_map(data: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": NAMESPACE}, "data": {"mode": data}})
}

/// A Deployment reading the ConfigMap `settings` (envFrom) and mounting the Secret `token`.
fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "nginx:1.27",
                        "envFrom": [{"configMapRef": {"name": "settings"}}]}],
                    "volumes": [{"name": "token", "secret": {"secretName": "token"}}]}}}})
}

fn policy(name: &str, workload: &str, cluster: &str) -> Value {
    json!({"apiVersion": "policy.flotilla.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": workload}],
            "propagateDeps": true,
            "placement": {"clusterAffinity": {"clusterNames": [cluster]}}}})
}

fn work_of(kind: &str, name: &str) -> String {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    names::work_name(api_version, kind, Some(NAMESPACE), name)
}

fn works(client: &Client, cluster: &str) -> Api<Work> {
    Api::namespaced(client.clone(), &format!("flotilla-es-{cluster}"))
}

async fn wait_work(client: &Client, cluster: &str, kind: &str, name: &str) -> Result<Work> {
    let api = works(client, cluster);
    let work = work_of(kind, name);
    eventually(&format!("the {kind} {name} in {cluster}"), || async {
        Ok(api.get_opt(&work).await?)
    })
    .await
}

async fn wait_no_work(client: &Client, cluster: &str, kind: &str, name: &str) -> Result<()> {
    let api = works(client, cluster);
    let work = work_of(kind, name);
    eventually(&format!("no {kind} {name} in {cluster}"), || async {
        Ok(api.get_opt(&work).await?.is_none().then_some(()))
    })
    .await
}

fn required_by(binding: &ResourceBinding) -> Vec<(String, Vec<String>)> {
    binding
        .spec
        .required_by
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.clusters.iter().map(|c| c.name.clone()).collect(),
            )
        })
        .collect()
}

async fn wait_required_by(
    client: &Client,
    name: &str,
    want: &[(&str, &[&str])],
) -> Result<ResourceBinding> {
    let api: Api<ResourceBinding> = Api::namespaced(client.clone(), NAMESPACE);
    let want: Vec<(String, Vec<String>)> = want
        .iter()
        .map(|(n, c)| ((*n).to_owned(), c.iter().map(|c| (*c).to_owned()).collect()))
        .collect();
    eventually(&format!("{name} required by {want:?}"), || async {
        Ok(api.get_opt(name).await?.filter(|b| required_by(b) == want))
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_follow_their_workloads_and_leave_with_them() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    create_namespace(&client, NAMESPACE).await?;
    create_clusters(
        &client,
        vec![
            ClusterBuilder::new("m1").build(),
            ClusterBuilder::new("m2").build(),
        ],
    )
    .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let policies: Api<PropagationPolicy> = Api::namespaced(client.clone(), NAMESPACE);
    let bindings: Api<ResourceBinding> = Api::namespaced(client.clone(), NAMESPACE);
    create(&config_maps, config_map("blue")).await?;
    create(&deployments, deployment("web")).await?;
    create(&policies, policy("web", "web", "m1")).await?;
    let _controllers = start(&client)?;

    // The workload's binding records what it depends on; the ConfigMap gets an attached
    // binding that follows the workload to m1.
    wait_work(&client, "m1", "Deployment", "web").await?;
    let attached = wait_required_by(
        &client,
        "settings-configmap",
        &[("web-deployment", &["m1"])],
    )
    .await?;
    assert!(
        attached.spec.placement.is_none(),
        "attached bindings have no placement"
    );
    let cm = config_maps.get("settings").await?;
    assert_eq!(attached.spec.resource.uid, cm.uid());
    assert!(
        attached
            .owner_references()
            .iter()
            .any(|o| o.kind == "ConfigMap" && Some(&o.uid) == cm.uid().as_ref()),
        "the ConfigMap controls its attached binding"
    );
    let web = bindings.get("web-deployment").await?;
    let recorded = web
        .annotations()
        .get(annotations::DEPENDENCIES)
        .context("the dependencies annotation")?;
    let recorded: Value = serde_json::from_str(recorded)?;
    assert_eq!(
        recorded,
        json!([
            {"apiVersion": "v1", "kind": "ConfigMap", "namespace": NAMESPACE, "name": "settings"},
            {"apiVersion": "v1", "kind": "Secret", "namespace": NAMESPACE, "name": "token"}])
    );
    let work = wait_work(&client, "m1", "ConfigMap", "settings").await?;
    let manifest = &work.spec.workload.manifests[0].0;
    assert_eq!(manifest["data"]["mode"], "blue");
    wait_no_work(&client, "m2", "ConfigMap", "settings").await?;

    // The Secret did not exist; created now, it follows too.
    create::<Secret>(
        &Api::namespaced(client.clone(), NAMESPACE),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "token", "namespace": NAMESPACE}, "stringData": {"t": "x"}}),
    )
    .await?;
    wait_required_by(&client, "token-secret", &[("web-deployment", &["m1"])]).await?;
    wait_work(&client, "m1", "Secret", "token").await?;

    // The workload moves to m2: its dependencies move with it.
    policies
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"placement": {"clusterAffinity": {"clusterNames": ["m2"]}}}}),
            ),
        )
        .await?;
    wait_required_by(
        &client,
        "settings-configmap",
        &[("web-deployment", &["m2"])],
    )
    .await?;
    wait_work(&client, "m2", "ConfigMap", "settings").await?;
    wait_work(&client, "m2", "Secret", "token").await?;
    wait_no_work(&client, "m1", "ConfigMap", "settings").await?;
    wait_no_work(&client, "m1", "Secret", "token").await?;

    // A second workload on m1 shares the ConfigMap: it goes to both clusters.
    create(&deployments, deployment("api")).await?;
    create(&policies, policy("api", "api", "m1")).await?;
    wait_required_by(
        &client,
        "settings-configmap",
        &[("api-deployment", &["m1"]), ("web-deployment", &["m2"])],
    )
    .await?;
    wait_work(&client, "m1", "ConfigMap", "settings").await?;
    wait_work(&client, "m2", "ConfigMap", "settings").await?;

    // An edit of the ConfigMap reaches its Works.
    config_maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"mode": "green"}})),
        )
        .await?;
    let m2 = works(&client, "m2");
    let name = work_of("ConfigMap", "settings");
    eventually("the edited ConfigMap in m2's Work", || async {
        Ok(m2
            .get_opt(&name)
            .await?
            .filter(|w| w.spec.workload.manifests[0].0["data"]["mode"] == "green"))
    })
    .await?;

    // The api workload goes: m1 no longer needs the ConfigMap; m2 still does.
    deployments.delete("api", &DeleteParams::default()).await?;
    wait_required_by(
        &client,
        "settings-configmap",
        &[("web-deployment", &["m2"])],
    )
    .await?;
    wait_no_work(&client, "m1", "ConfigMap", "settings").await?;
    wait_work(&client, "m2", "ConfigMap", "settings").await?;

    // The last workload goes: the attached bindings and their Works go; the objects stay.
    deployments.delete("web", &DeleteParams::default()).await?;
    for name in ["settings-configmap", "token-secret"] {
        eventually(&format!("{name} deleted"), || async {
            Ok(bindings.get_opt(name).await?.is_none().then_some(()))
        })
        .await?;
    }
    wait_no_work(&client, "m2", "ConfigMap", "settings").await?;
    wait_no_work(&client, "m2", "Secret", "token").await?;
    assert!(config_maps.get_opt("settings").await?.is_some());
    Ok(())
}
