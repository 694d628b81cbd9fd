//! The resource detector against the hub API server (embedded, or real with
//! `FLOTILLA_TEST_SERVER=kube`), with the scheduler and the binding controller running as the
//! hub runs them: a Deployment and a PropagationPolicy become a claimed template, a binding
//! and one Work per scheduled cluster with its share of the replicas; a template change
//! reaches the binding and the Works; an unchanged pass writes nothing; the claim is written by
//! server-side apply under the detector's own manager and owns nothing else; a deleted policy
//! releases the claim and leaves binding and Works; another policy then claims it; a deleted
//! template takes its binding and Works with it. Also: claim precedence and preemption, a CRD
//! created after the detector started, and reserved namespaces.

use std::sync::atomic::Ordering;

use anyhow::{Context as _, Result};
use flotilla_api::{
    ClusterPropagationPolicy, ClusterResourceBinding, PropagationPolicy, ResourceBinding, Work,
    keys::{annotations, field_managers::DETECTOR, labels},
    names,
};
use flotilla_controllers::{binding, detector};
use flotilla_testing::{Controllers, TestHub, fixtures::ClusterBuilder};
use futures::FutureExt;
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::ConfigMap},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
    },
};
use serde_json::{Value, json};

mod support;

use support::{create_clusters, create_namespace, eventually, init_tracing};

const NAMESPACE: &str = "shop";

/// The writes the unchanged-pass check counts: to bindings and templates, not Works or status.
fn is_counted(path: &str) -> bool {
    let templates_or_bindings = path.contains("/resourcebindings/")
        || path.contains("/clusterresourcebindings/")
        || path.contains("/deployments/")
        || path.contains("/configmaps/");
    templates_or_bindings && !path.ends_with("/status")
}

/// The detector, the scheduler and the binding controller on one context.
fn start_hub_controllers(client: &Client) -> Result<Controllers> {
    Controllers::start(client, |ctx| {
        Ok(vec![
            detector::controller(ctx, detector::Options::default())?.boxed(),
            flotilla_scheduler::controller::controller(
                ctx,
                flotilla_scheduler::controller::Options::default(),
            )?
            .boxed(),
            binding::controller(ctx, binding::Options::default())?.boxed(),
        ])
    })
}

/// The detector alone.
fn start_detector(client: &Client) -> Result<Controllers> {
    Controllers::start(client, |ctx| {
        Ok(vec![
            detector::controller(ctx, detector::Options::default())?.boxed(),
        ])
    })
}

/// How many template reconciles the detector finished.
fn detector_reconciles(controllers: &Controllers) -> u64 {
    support::reconciles(controllers, detector::RUNNER)
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                    "resources": {"requests": {"cpu": "100m"}}}]}}}})
}

async fn create_deployment(client: &Client, name: &str, replicas: i64) -> Result<Deployment> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let object: Deployment = serde_json::from_value(deployment(name, replicas))?;
    Ok(api.create(&PostParams::default(), &object).await?)
}

/// A Divided placement over m1 and m2, weighted 3:2.
fn divided() -> Value {
    json!({"clusterAffinity": {"clusterNames": ["m1", "m2"]},
        "replicaScheduling": {"replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
            "weightPreference": {"staticWeightList": [
                {"targetCluster": {"clusterNames": ["m1"]}, "weight": 3},
                {"targetCluster": {"clusterNames": ["m2"]}, "weight": 2}]}}})
}

async fn create_policy(client: &Client, name: &str, spec: Value) -> Result<PropagationPolicy> {
    let api: Api<PropagationPolicy> = Api::namespaced(client.clone(), NAMESPACE);
    let policy: PropagationPolicy = serde_json::from_value(json!({
        "apiVersion": "policy.flotilla.io/v1alpha1", "kind": "PropagationPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}))?;
    api.create(&PostParams::default(), &policy)
        .await
        .with_context(|| format!("create PropagationPolicy {name}"))
}

async fn create_cluster_policy(
    client: &Client,
    name: &str,
    spec: Value,
) -> Result<ClusterPropagationPolicy> {
    let api: Api<ClusterPropagationPolicy> = Api::all(client.clone());
    let policy: ClusterPropagationPolicy = serde_json::from_value(json!({
        "apiVersion": "policy.flotilla.io/v1alpha1", "kind": "ClusterPropagationPolicy",
        "metadata": {"name": name}, "spec": spec}))?;
    api.create(&PostParams::default(), &policy)
        .await
        .with_context(|| format!("create ClusterPropagationPolicy {name}"))
}

fn deployments(client: &Client) -> Api<Deployment> {
    Api::namespaced(client.clone(), NAMESPACE)
}

fn bindings(client: &Client) -> Api<ResourceBinding> {
    Api::namespaced(client.clone(), NAMESPACE)
}

fn works(client: &Client, cluster: &str) -> Api<Work> {
    Api::namespaced(client.clone(), &format!("flotilla-es-{cluster}"))
}

fn work_name(name: &str) -> String {
    names::work_name("apps/v1", "Deployment", Some(NAMESPACE), name)
}

fn work_replicas(work: &Work) -> Option<i64> {
    work.spec
        .workload
        .manifests
        .first()?
        .0
        .pointer("/spec/replicas")?
        .as_i64()
}

async fn wait_binding(
    client: &Client,
    name: &str,
    what: &str,
    ok: impl Fn(&ResourceBinding) -> bool,
) -> Result<ResourceBinding> {
    let api = bindings(client);
    eventually(what, || async {
        Ok(api.get_opt(name).await?.filter(|b| ok(b)))
    })
    .await
}

async fn wait_works(client: &Client, name: &str, want: &[(&str, i64)]) -> Result<()> {
    for (cluster, replicas) in want {
        let api = works(client, cluster);
        let name = work_name(name);
        eventually(
            &format!("a Work in {cluster} with {replicas} replicas"),
            || async {
                Ok(api
                    .get_opt(&name)
                    .await?
                    .filter(|w| work_replicas(w) == Some(*replicas)))
            },
        )
        .await?;
    }
    Ok(())
}

/// The claim the template carries: (permanent id, policy namespace, policy name).
fn pp_claim(object: &impl ResourceExt) -> (Option<String>, Option<String>, Option<String>) {
    (
        object
            .labels()
            .get(labels::PROPAGATION_POLICY_PERMANENT_ID)
            .cloned(),
        object
            .annotations()
            .get(annotations::PROPAGATION_POLICY_NAMESPACE)
            .cloned(),
        object
            .annotations()
            .get(annotations::PROPAGATION_POLICY_NAME)
            .cloned(),
    )
}

fn cpp_claim(object: &impl ResourceExt) -> (Option<String>, Option<String>) {
    (
        object
            .labels()
            .get(labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID)
            .cloned(),
        object
            .annotations()
            .get(annotations::CLUSTER_PROPAGATION_POLICY_NAME)
            .cloned(),
    )
}

fn unclaimed(object: &impl ResourceExt) -> bool {
    pp_claim(object) == (None, None, None) && cpp_claim(object) == (None, None)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_and_its_policy_become_a_binding_and_works_per_cluster() -> Result<()> {
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
    create_deployment(&client, "web", 5).await?;
    create_deployment(&client, "other", 1).await?;
    let policy = create_policy(
        &client,
        "web",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "placement": divided(), "conflictResolution": "Overwrite"}),
    )
    .await?;
    let (controllers_client, writes) = support::counting_writes(&client, is_counted);
    let controllers = start_hub_controllers(&controllers_client)?;

    // The template is claimed: the policy's permanent id (its uid) and name.
    let api = deployments(&client);
    let web = eventually("the template claimed", || async {
        Ok(api
            .get_opt("web")
            .await?
            .filter(|d| pp_claim(d).0.is_some()))
    })
    .await?;
    assert_eq!(
        pp_claim(&web),
        (
            policy.uid(),
            Some(NAMESPACE.to_owned()),
            Some("web".to_owned())
        )
    );
    // Written by server-side apply under the detector's manager, owning the claim only.
    let entry = web
        .managed_fields()
        .iter()
        .find(|e| e.manager.as_deref() == Some(DETECTOR))
        .context("a managedFields entry of the detector")?;
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    let owned = serde_json::to_value(&entry.fields_v1)?;
    let owned = owned.as_object().context("fieldsV1 is an object")?.clone();
    assert_eq!(
        owned.keys().collect::<Vec<_>>(),
        ["f:metadata"],
        "the detector owns metadata only: {owned:?}"
    );
    let metadata = owned["f:metadata"].as_object().context("f:metadata")?;
    let mut keys: Vec<&String> = metadata.keys().collect();
    keys.sort();
    assert_eq!(keys, ["f:annotations", "f:labels"], "{metadata:?}");
    // The other Deployment no policy selects is left alone.
    let other = api.get("other").await?;
    assert!(unclaimed(&other));

    // The binding: resource reference, replicas and requirements, placement, options.
    let binding_name = names::binding_name("Deployment", "web");
    assert_eq!(binding_name, "web-deployment");
    let binding = wait_binding(&client, &binding_name, "the binding", |_| true).await?;
    let web = api.get("web").await?;
    let resource = &binding.spec.resource;
    assert_eq!(
        (
            resource.api_version.as_str(),
            resource.kind.as_str(),
            resource.name.as_str()
        ),
        ("apps/v1", "Deployment", "web")
    );
    assert_eq!(resource.namespace.as_deref(), Some(NAMESPACE));
    assert_eq!(resource.uid, web.uid());
    assert_eq!(resource.resource_version, web.resource_version());
    assert_eq!(binding.spec.replicas, 5);
    assert_eq!(
        binding
            .annotations()
            .get(annotations::RESOURCE_TEMPLATE_GENERATION),
        web.metadata.generation.map(|g| g.to_string()).as_ref(),
        "the binding names the template's generation"
    );
    let requests = binding
        .spec
        .replica_requirements
        .as_ref()
        .and_then(|r| r.resource_request.get("cpu"))
        .map(|q| q.0.clone());
    assert_eq!(requests.as_deref(), Some("100m"));
    assert_eq!(
        serde_json::to_value(&binding.spec.placement)?,
        serde_json::to_value(&policy.spec.placement)?
    );
    assert_eq!(
        serde_json::to_value(binding.spec.conflict_resolution)?,
        json!("Overwrite")
    );
    assert_eq!(
        pp_claim(&binding),
        pp_claim(&web),
        "the binding names its policy"
    );
    let owner = binding
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .context("the binding is controlled by its template")?;
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Deployment", web.uid().unwrap_or_default().as_str())
    );

    // Scheduled 3:2 and rendered into one Work per cluster.
    wait_works(&client, "web", &[("m1", 3), ("m2", 2)]).await?;

    // An unchanged pass writes nothing: touching the policy's labels wakes every template.
    let before = detector_reconciles(&controllers);
    let written = writes.load(Ordering::SeqCst);
    let (web_version, binding_version) = (
        api.get("web").await?.resource_version(),
        bindings(&client)
            .get(&binding_name)
            .await?
            .resource_version(),
    );
    Api::<PropagationPolicy>::namespaced(client.clone(), NAMESPACE)
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await?;
    eventually("the detector passed over both templates again", || async {
        Ok((detector_reconciles(&controllers) >= before + 2).then_some(()))
    })
    .await?;
    assert_eq!(
        writes.load(Ordering::SeqCst),
        written,
        "writes on an unchanged pass"
    );
    assert_eq!(api.get("web").await?.resource_version(), web_version);
    assert_eq!(
        bindings(&client)
            .get(&binding_name)
            .await?
            .resource_version(),
        binding_version
    );

    // The template scales: the binding and the Works follow.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 10}})),
    )
    .await?;
    let scaled = wait_binding(&client, &binding_name, "10 replicas", |b| {
        b.spec.replicas == 10
    })
    .await?;
    let generation = api.get("web").await?.metadata.generation;
    assert_eq!(
        scaled
            .annotations()
            .get(annotations::RESOURCE_TEMPLATE_GENERATION),
        generation.map(|g| g.to_string()).as_ref(),
        "the binding follows the template's generation"
    );
    wait_works(&client, "web", &[("m1", 6), ("m2", 4)]).await?;

    // The template is deleted: its binding and Works go.
    api.delete("web", &DeleteParams::default()).await?;
    let gone = bindings(&client);
    eventually("the binding deleted", || async {
        Ok(gone.get_opt(&binding_name).await?.is_none().then_some(()))
    })
    .await?;
    for cluster in ["m1", "m2"] {
        let api = works(&client, cluster);
        eventually(&format!("the Work in {cluster} deleted"), || async {
            Ok(api
                .get_opt(&work_name("web"))
                .await?
                .is_none()
                .then_some(()))
        })
        .await?;
    }
    controllers.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_policy_releases_the_claim_and_leaves_binding_and_works() -> Result<()> {
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
    create_deployment(&client, "web", 5).await?;
    create_policy(
        &client,
        "web",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": divided()}),
    )
    .await?;
    let controllers = start_hub_controllers(&client)?;
    let binding_name = names::binding_name("Deployment", "web");
    let binding = wait_binding(&client, &binding_name, "the binding", |_| true).await?;
    wait_works(&client, "web", &[("m1", 3), ("m2", 2)]).await?;
    // The user's own label on the template is theirs: the release leaves it.
    let api = deployments(&client);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await?;

    Api::<PropagationPolicy>::namespaced(client.clone(), NAMESPACE)
        .delete("web", &DeleteParams::default())
        .await?;
    let web = eventually("the claim released", || async {
        Ok(api.get_opt("web").await?.filter(unclaimed))
    })
    .await?;
    assert_eq!(web.labels().get("team").map(String::as_str), Some("a"));
    assert_eq!(web.labels().get("app").map(String::as_str), Some("web"));
    assert!(
        web.managed_fields()
            .iter()
            .all(|e| e.manager.as_deref() != Some(DETECTOR)),
        "the detector owns nothing on the released template"
    );
    // Binding and Works stay as they were (Karmada's rule).
    let kept = bindings(&client).get(&binding_name).await?;
    assert_eq!(kept.uid(), binding.uid());
    assert!(kept.metadata.deletion_timestamp.is_none());
    for (cluster, replicas) in [("m1", 3), ("m2", 2)] {
        let work = works(&client, cluster).get(&work_name("web")).await?;
        assert_eq!(work_replicas(&work), Some(replicas));
        assert!(work.metadata.deletion_timestamp.is_none());
    }

    // A ClusterPropagationPolicy claims it next, and the binding follows the new policy.
    let cpp = create_cluster_policy(
        &client,
        "everything",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": {"clusterAffinity": {"clusterNames": ["m1"]}}}),
    )
    .await?;
    let web = eventually("claimed by the ClusterPropagationPolicy", || async {
        Ok(api
            .get_opt("web")
            .await?
            .filter(|d| cpp_claim(d).0.is_some()))
    })
    .await?;
    assert_eq!(cpp_claim(&web), (cpp.uid(), Some("everything".to_owned())));
    assert_eq!(pp_claim(&web), (None, None, None));
    let binding = wait_binding(
        &client,
        &binding_name,
        "the binding of the new policy",
        |b| cpp_claim(b).0.is_some(),
    )
    .await?;
    assert_eq!(
        pp_claim(&binding),
        (None, None, None),
        "the old claim left the binding"
    );
    assert_eq!(binding.uid(), kept.uid(), "the same binding");
    wait_works(&client, "web", &[("m1", 5)]).await?;
    let m2 = works(&client, "m2");
    eventually("m2's Work gone with the new placement", || async {
        Ok(m2.get_opt(&work_name("web")).await?.is_none().then_some(()))
    })
    .await?;
    controllers.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_follow_priority_precision_and_preemption() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    create_namespace(&client, NAMESPACE).await?;
    create_deployment(&client, "web", 1).await?;
    let placement = json!({"clusterAffinity": {"clusterNames": ["m1"]}});
    let _controllers = start_detector(&client)?;

    // A cluster-wide policy claims the template when no namespaced one matches.
    create_cluster_policy(
        &client,
        "all",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": placement}),
    )
    .await?;
    let api = deployments(&client);
    eventually("claimed by the ClusterPropagationPolicy", || async {
        Ok(api
            .get_opt("web")
            .await?
            .filter(|d| cpp_claim(d).1.as_deref() == Some("all")))
    })
    .await?;

    // A PropagationPolicy without preemption does not take it: claims are sticky. A second
    // Deployment created now goes to the namespaced policy (namespaced before cluster-wide).
    create_policy(
        &client,
        "by-kind",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": placement}),
    )
    .await?;
    create_deployment(&client, "late", 1).await?;
    eventually(
        "the new Deployment claimed by the PropagationPolicy",
        || async {
            Ok(api
                .get_opt("late")
                .await?
                .filter(|d| pp_claim(d).2.as_deref() == Some("by-kind")))
        },
    )
    .await?;
    let web = api.get("web").await?;
    assert_eq!(cpp_claim(&web).1.as_deref(), Some("all"), "sticky");

    // A PropagationPolicy with `preemption: Always` takes over from the cluster-wide one.
    create_policy(
        &client,
        "by-name",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
            "preemption": "Always", "placement": placement}),
    )
    .await?;
    let web = eventually("preempted by by-name", || async {
        Ok(api
            .get_opt("web")
            .await?
            .filter(|d| pp_claim(d).2.as_deref() == Some("by-name")))
    })
    .await?;
    assert_eq!(cpp_claim(&web), (None, None), "the old claim is gone");
    let binding = wait_binding(
        &client,
        &names::binding_name("Deployment", "web"),
        "the binding of by-name",
        |b| pp_claim(b).2.as_deref() == Some("by-name"),
    )
    .await?;
    assert_eq!(binding.spec.resource.name, "web");

    // A higher priority with preemption takes over from a lower-priority PropagationPolicy.
    create_policy(
        &client,
        "urgent",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "priority": 10, "preemption": "Always", "placement": placement}),
    )
    .await?;
    for name in ["web", "late"] {
        eventually(&format!("{name} preempted by urgent"), || async {
            Ok(api
                .get_opt(name)
                .await?
                .filter(|d| pp_claim(d).2.as_deref() == Some("urgent")))
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kind_whose_crd_comes_after_the_start_is_watched_and_its_bindings_go_with_the_crd()
-> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    create_namespace(&client, NAMESPACE).await?;
    // Reserved namespaces are never propagated, whatever the policy selects.
    create_namespace(&client, "kube-public").await?;
    let _controllers = start_detector(&client)?;
    create_cluster_policy(
        &client,
        "widgets",
        json!({"resourceSelectors": [
                {"apiVersion": "example.io/v1", "kind": "Widget"},
                {"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": {"matchLabels": {"spread": "yes"}}}],
            "placement": {"clusterAffinity": {"clusterNames": ["m1"]}}}),
    )
    .await?;

    // ConfigMaps are watched at once; the one in kube-public is never claimed.
    let configmaps = |ns: &str| Api::<ConfigMap>::namespaced(client.clone(), ns);
    for ns in ["kube-public", NAMESPACE] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns, "labels": {"spread": "yes"}},
            "data": {"a": "1"}}))?;
        configmaps(ns).create(&PostParams::default(), &cm).await?;
    }
    let shop = configmaps(NAMESPACE);
    eventually("the ConfigMap in shop claimed", || async {
        Ok(shop
            .get_opt("settings")
            .await?
            .filter(|c| cpp_claim(c).0.is_some()))
    })
    .await?;
    let binding = wait_binding(
        &client,
        &names::binding_name("ConfigMap", "settings"),
        "the ConfigMap's binding",
        |_| true,
    )
    .await?;
    assert_eq!(binding.spec.replicas, 0);

    // The CRD arrives after the detector started.
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.io"},
        "spec": {"group": "example.io", "scope": "Cluster",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}}))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    let gvk = GroupVersionKind::gvk("example.io", "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.io/v1", "kind": "Widget",
        "metadata": {"name": "blue"}, "spec": {"size": 3}}))?;
    eventually("the Widget created (the CRD is served)", || async {
        Ok(widgets.create(&PostParams::default(), &widget).await.ok())
    })
    .await?;
    let crbs: Api<ClusterResourceBinding> = Api::all(client.clone());
    let crb_name = names::binding_name("Widget", "blue");
    let crb = eventually("the Widget's ClusterResourceBinding", || async {
        Ok(crbs.get_opt(&crb_name).await?)
    })
    .await?;
    assert_eq!(crb.spec.spec.resource.api_version, "example.io/v1");
    assert_eq!(crb.spec.spec.resource.namespace, None);
    let blue = widgets.get("blue").await?;
    assert_eq!(cpp_claim(&blue).1.as_deref(), Some("widgets"));
    assert_eq!(blue.data["spec"]["size"], 3, "the spec is the user's");

    // The ConfigMap in kube-public was looked at (the one in shop was claimed in the same
    // pass) and never claimed.
    let reserved = configmaps("kube-public").get("settings").await?;
    assert!(unclaimed(&reserved));

    // The CRD goes, and with it its Widgets: their binding is deleted.
    crds.delete("widgets.example.io", &DeleteParams::default())
        .await?;
    eventually("the Widget's binding deleted", || async {
        Ok(crbs.get_opt(&crb_name).await?.is_none().then_some(()))
    })
    .await?;
    // The ConfigMap's binding stays.
    assert!(
        bindings(&client)
            .get_opt(&names::binding_name("ConfigMap", "settings"))
            .await?
            .is_some()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_binding_whose_template_went_while_the_detector_was_down_is_deleted() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    create_namespace(&client, NAMESPACE).await?;
    create_deployment(&client, "web", 1).await?;
    create_policy(
        &client,
        "web",
        json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": {"clusterAffinity": {"clusterNames": ["m1"]}}}),
    )
    .await?;
    let binding_name = names::binding_name("Deployment", "web");
    let controllers = start_detector(&client)?;
    wait_binding(&client, &binding_name, "the binding", |_| true).await?;
    controllers.stop().await;

    // While the detector is down: the template goes, and a binding made by hand for a
    // template that does not exist either (no owner reference: the user's to delete) is made.
    deployments(&client)
        .delete("web", &DeleteParams::default())
        .await?;
    let by_hand: ResourceBinding = serde_json::from_value(json!({
        "apiVersion": "work.flotilla.io/v1alpha1", "kind": "ResourceBinding",
        "metadata": {"name": "by-hand", "namespace": NAMESPACE},
        "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nowhere",
            "namespace": NAMESPACE}}}))?;
    bindings(&client)
        .create(&PostParams::default(), &by_hand)
        .await?;

    let _controllers = start_detector(&client)?;
    let api = bindings(&client);
    eventually("the binding of the gone template deleted", || async {
        Ok(api.get_opt(&binding_name).await?.is_none().then_some(()))
    })
    .await?;
    assert!(
        api.get_opt("by-hand").await?.is_some(),
        "the hand-made binding stays"
    );
    Ok(())
}
