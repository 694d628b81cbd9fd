//! The binding controller against the hub API server (embedded, or real with
//! `FLOTILLA_TEST_SERVER=kube`): a Deployment template and a ResourceBinding whose
//! `spec.clusters` is set by hand (no scheduler) with a Divided placement become one Work per
//! cluster in `flotilla-es-<cluster>` with that cluster's replicas; an OverridePolicy re-renders
//! only the cluster it targets; an unchanged pass writes nothing; a cluster dropped from
//! `spec.clusters` loses its Work; a broken overrider is reported on the binding while the
//! cluster's Work keeps its last good manifest and the other clusters proceed; a deleted binding
//! takes its Works with it; and a ClusterResourceBinding renders with a ClusterOverridePolicy.
//! Also: another binding's Work of the same name survives and is reported, a Work deleted by
//! hand comes back without waiting for the resync, and a missing template or Cluster is
//! reported.

use std::{collections::BTreeMap, sync::atomic::Ordering, time::Duration};

use anyhow::{Context as _, Result};
use flotilla_api::{
    Cluster, ClusterOverridePolicy, ClusterResourceBinding, OverridePolicy, ResourceBinding, Work,
    keys::{annotations, finalizers::BINDING_CONTROLLER, labels},
    names,
    work::{ClusterResourceBindingSpec, ObjectReference, ResourceBindingSpec, TargetCluster},
};
use flotilla_controllers::binding::{
    self, CLUSTER_NOT_FOUND, OVERRIDE_FAILED, OVERRIDES_APPLIED, RENDERED, TEMPLATE_NOT_FOUND,
    WORK_CONFLICT,
};
use flotilla_testing::{Controllers, TestHub, fixtures::ClusterBuilder};
use futures::FutureExt;
use k8s_openapi::{
    api::{apps::v1::Deployment, core::v1::Namespace},
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

mod support;

use support::{create, eventually, init_tracing};

const NAMESPACE: &str = "shop";

/// Whether a request path names Works.
fn is_work(path: &str) -> bool {
    path.starts_with("/apis/work.flotilla.io/") && path.split('/').any(|segment| segment == "works")
}

fn start_controller(client: &Client) -> Result<Controllers> {
    start_controller_with(client, binding::Options::default())
}

fn start_controller_with(client: &Client, options: binding::Options) -> Result<Controllers> {
    Controllers::start(client, |ctx| {
        Ok(vec![binding::controller(ctx, options)?.boxed()])
    })
}

/// The `shop` namespace, the Deployment `web` (5 replicas, nginx:1.27) in it, and the Clusters
/// `m1` (label `env: prod`) and `m2`.
async fn setup(client: &Client) -> Result<()> {
    create::<Namespace>(
        &Api::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )
    .await?;
    create::<Deployment>(
        &Api::namespaced(client.clone(), NAMESPACE),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": NAMESPACE, "labels": {"app": "web"}},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}),
    )
    .await?;
    let clusters: Api<Cluster> = Api::all(client.clone());
    for cluster in [
        ClusterBuilder::new("m1").label("env", "prod").build(),
        ClusterBuilder::new("m2").build(),
    ] {
        clusters
            .create(&PostParams::default(), &cluster)
            .await
            .with_context(|| format!("create Cluster {}", cluster.name_any()))?;
    }
    Ok(())
}

fn targets(clusters: &[(&str, i32)]) -> Value {
    json!(
        clusters
            .iter()
            .map(|(name, replicas)| TargetCluster {
                name: (*name).to_owned(),
                replicas: *replicas,
            })
            .collect::<Vec<_>>()
    )
}

/// The ResourceBinding of `web`, Divided, scheduled by hand onto `clusters`.
async fn create_binding(client: &Client, clusters: &[(&str, i32)]) -> Result<ResourceBinding> {
    create(
        &Api::namespaced(client.clone(), NAMESPACE),
        json!({"apiVersion": "work.flotilla.io/v1alpha1", "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": NAMESPACE},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "namespace": NAMESPACE, "name": "web"},
                "replicas": 5,
                "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted"}},
                "clusters": targets(clusters)}}),
    )
    .await
}

fn work_name() -> String {
    names::work_name("apps/v1", "Deployment", Some(NAMESPACE), "web")
}

fn works(client: &Client, cluster: &str) -> Api<Work> {
    Api::namespaced(client.clone(), &format!("flotilla-es-{cluster}"))
}

fn manifest(work: &Work) -> Value {
    work.spec
        .workload
        .manifests
        .first()
        .map(|m| m.0.clone())
        .unwrap_or_default()
}

fn replicas(work: &Work) -> Option<i64> {
    manifest(work)
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
}

fn image(work: &Work) -> Option<String> {
    manifest(work)
        .pointer("/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Waits until `cluster`'s Work satisfies `done`.
async fn wait_work(
    client: &Client,
    cluster: &str,
    what: &str,
    done: impl Fn(&Work) -> bool,
) -> Result<Work> {
    let api = works(client, cluster);
    eventually(&format!("the Work of {cluster}: {what}"), || async {
        let work = api.get_opt(&work_name()).await?;
        Ok(work.filter(|w| done(w)))
    })
    .await
}

async fn wait_work_gone(client: &Client, cluster: &str) -> Result<()> {
    let api = works(client, cluster);
    eventually(&format!("the Work of {cluster} deleted"), || async {
        Ok(api.get_opt(&work_name()).await?.is_none().then_some(()))
    })
    .await
}

fn overrides_condition(binding: &ResourceBinding) -> Option<Condition> {
    binding
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == OVERRIDES_APPLIED)
        .cloned()
}

/// Waits until the binding's OverridesApplied condition has `status` and observed the
/// binding's current generation: the controller finished a pass over that generation.
async fn wait_condition(client: &Client, status: &str) -> Result<(ResourceBinding, Condition)> {
    wait_condition_of(client, "web-deployment", status).await
}

/// [`wait_condition`] for the binding `name`.
async fn wait_condition_of(
    client: &Client,
    name: &str,
    status: &str,
) -> Result<(ResourceBinding, Condition)> {
    let api: Api<ResourceBinding> = Api::namespaced(client.clone(), NAMESPACE);
    eventually(
        &format!("{OVERRIDES_APPLIED} {status} of {name} at the current generation"),
        || async {
            let binding = api.get(name).await?;
            let condition = overrides_condition(&binding).filter(|c| {
                c.status == status && c.observed_generation == binding.metadata.generation
            });
            Ok(condition.map(|c| (binding, c)))
        },
    )
    .await
}

async fn patch_binding_spec(client: &Client, spec: Value) -> Result<()> {
    let api: Api<ResourceBinding> = Api::namespaced(client.clone(), NAMESPACE);
    api.patch(
        "web-deployment",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": spec})),
    )
    .await
    .context("patch the binding")?;
    Ok(())
}

/// An OverridePolicy on `web` for cluster `m1` with `overriders`.
async fn override_m1(client: &Client, name: &str, overriders: Value) -> Result<OverridePolicy> {
    create(
        &Api::namespaced(client.clone(), NAMESPACE),
        json!({"apiVersion": "policy.flotilla.io/v1alpha1", "kind": "OverridePolicy",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
                "overrideRules": [{"targetCluster": {"clusterNames": ["m1"]},
                    "overriders": overriders}]}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_divided_binding_becomes_one_work_per_cluster_that_follows_overrides_and_placement()
-> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    setup(&client).await?;
    let binding = create_binding(&client, &[("m1", 3), ("m2", 2)]).await?;
    let (controller_client, work_writes) = support::counting_writes(&client, is_work);
    let _controllers = start_controller(&controller_client)?;

    // One Work per cluster, with the cluster's share of the replicas and Flotilla's metadata.
    let uid = binding.uid().context("the binding has a uid")?;
    for (cluster, want) in [("m1", 3), ("m2", 2)] {
        let work = wait_work(&client, cluster, &format!("{want} replicas"), |w| {
            replicas(w) == Some(want)
        })
        .await?;
        assert_eq!(
            work.labels().get(labels::RESOURCE_BINDING_PERMANENT_ID),
            Some(&uid),
            "the Work names its binding"
        );
        assert!(
            work.annotations()
                .get(annotations::APPLIED_OVERRIDES)
                .is_none()
        );
        let m = manifest(&work);
        assert_eq!(
            m["metadata"]["labels"][labels::MANAGED_BY],
            labels::MANAGED_BY_FLOTILLA
        );
        assert_eq!(
            m["metadata"]["annotations"][annotations::WORK_NAMESPACE],
            format!("flotilla-es-{cluster}")
        );
        assert_eq!(
            m["metadata"]["annotations"][annotations::WORK_NAME],
            work_name()
        );
        assert!(m["metadata"].get("uid").is_none() && m.get("status").is_none());
        assert_eq!(image(&work).as_deref(), Some("nginx:1.27"));
    }
    let (binding, condition) = wait_condition(&client, "True").await?;
    assert_eq!(condition.reason, RENDERED);
    assert!(binding.finalizers().iter().any(|f| f == BINDING_CONTROLLER));

    // An OverridePolicy for m1 re-renders m1's Work only.
    let m2_before = works(&client, "m2").get(&work_name()).await?;
    override_m1(
        &client,
        "tag",
        json!({"imageOverrider": [{"component": "Tag", "operator": "replace", "value": "1.28"}]}),
    )
    .await?;
    let m1 = wait_work(&client, "m1", "image nginx:1.28", |w| {
        image(w).as_deref() == Some("nginx:1.28")
    })
    .await?;
    let applied = m1
        .annotations()
        .get(annotations::APPLIED_OVERRIDES)
        .context("the Work records the applied OverridePolicy")?;
    assert!(applied.contains("\"policyName\":\"tag\""), "{applied}");
    assert_eq!(replicas(&m1), Some(3));

    // A pass with nothing to change writes no Work: touch a label and a field the controller
    // does not render, and wait until it has seen the new generation.
    let m1_version = m1.resource_version();
    // A no-op server-side apply keeps the resourceVersion too, so the controller's own writes
    // to Works are counted (on its client, which works on any server).
    wait_condition(&client, "True").await?;
    let writes_before = work_writes.load(Ordering::SeqCst);
    assert!(
        writes_before >= 3,
        "the counter sees the controller's writes"
    );
    let api: Api<ResourceBinding> = Api::namespaced(client.clone(), NAMESPACE);
    api.patch(
        "web-deployment",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}},
            "spec": {"schedulerName": "by-hand"}})),
    )
    .await?;
    wait_condition(&client, "True").await?;
    let m2 = works(&client, "m2").get(&work_name()).await?;
    assert_eq!(
        m2.resource_version(),
        m2_before.resource_version(),
        "m2 rewritten"
    );
    assert_eq!(image(&m2).as_deref(), Some("nginx:1.27"));
    let m1 = works(&client, "m1").get(&work_name()).await?;
    assert_eq!(
        m1.resource_version(),
        m1_version,
        "m1 rewritten on an unchanged pass"
    );
    assert_eq!(
        work_writes.load(Ordering::SeqCst),
        writes_before,
        "Works written on an unchanged pass"
    );

    // m2 leaves the placement: its Work goes, m1's stays.
    patch_binding_spec(&client, json!({"clusters": targets(&[("m1", 5)])})).await?;
    wait_work_gone(&client, "m2").await?;
    wait_work(&client, "m1", "5 replicas", |w| replicas(w) == Some(5)).await?;

    // The binding is deleted: its Works go, then the binding.
    api.delete("web-deployment", &DeleteParams::default())
        .await?;
    wait_work_gone(&client, "m1").await?;
    eventually("the binding deleted", || async {
        Ok(api.get_opt("web-deployment").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_overrider_is_reported_and_its_cluster_keeps_the_last_good_manifest() -> Result<()>
{
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    setup(&client).await?;
    create_binding(&client, &[("m1", 3), ("m2", 2)]).await?;
    let _controllers = start_controller(&client)?;
    let good = wait_work(&client, "m1", "3 replicas", |w| replicas(w) == Some(3)).await?;
    wait_work(&client, "m2", "2 replicas", |w| replicas(w) == Some(2)).await?;

    override_m1(
        &client,
        "broken",
        json!({"plaintext": [{"path": "/spec/nothere", "operator": "replace", "value": 1}]}),
    )
    .await?;
    // Reported once the controller has seen the policy (waiting first keeps the placement
    // change below from being rendered before the policy reached the controller's cache).
    wait_condition(&client, "False").await?;
    // The placement changes too: m2 proceeds, m1 cannot render.
    patch_binding_spec(
        &client,
        json!({"clusters": targets(&[("m1", 1), ("m2", 4)])}),
    )
    .await?;
    let (_, condition) = wait_condition(&client, "False").await?;
    assert_eq!(condition.reason, OVERRIDE_FAILED);
    for part in ["m1", "broken", "overrideRules[0]", "/spec/nothere"] {
        assert!(
            condition.message.contains(part),
            "{part} in {}",
            condition.message
        );
    }
    wait_work(&client, "m2", "4 replicas", |w| replicas(w) == Some(4)).await?;
    let m1 = works(&client, "m1").get(&work_name()).await?;
    assert_eq!(
        m1.resource_version(),
        good.resource_version(),
        "m1 was rewritten"
    );
    assert_eq!(replicas(&m1), Some(3), "m1 keeps its last good manifest");

    // The policy is deleted: m1 renders again and the condition turns True.
    let policies: Api<OverridePolicy> = Api::namespaced(client.clone(), NAMESPACE);
    policies.delete("broken", &DeleteParams::default()).await?;
    wait_work(&client, "m1", "1 replica", |w| replicas(w) == Some(1)).await?;
    let (_, condition) = wait_condition(&client, "True").await?;
    assert_eq!(condition.reason, RENDERED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_resource_binding_renders_with_cluster_override_policies() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    setup(&client).await?;
    let spec = ResourceBindingSpec {
        resource: ObjectReference {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            name: NAMESPACE.into(),
            ..Default::default()
        },
        clusters: vec![
            TargetCluster {
                name: "m1".into(),
                replicas: 0,
            },
            TargetCluster {
                name: "m2".into(),
                replicas: 0,
            },
        ],
        suspension: Some(flotilla_api::work::BindingSuspension {
            dispatching_on_clusters: Some(flotilla_api::policy::SuspendClusters {
                cluster_names: vec!["m2".into()],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bindings: Api<ClusterResourceBinding> = Api::all(client.clone());
    let binding =
        ClusterResourceBinding::new("shop-namespace", ClusterResourceBindingSpec { spec });
    let binding = bindings.create(&PostParams::default(), &binding).await?;
    let cops: Api<ClusterOverridePolicy> = Api::all(client.clone());
    create(
        &cops,
        json!({"apiVersion": "policy.flotilla.io/v1alpha1", "kind": "ClusterOverridePolicy",
            "metadata": {"name": "prod-label"},
            "spec": {"overrideRules": [{"targetCluster": {"labelSelector": {"matchLabels": {"env": "prod"}}},
                "overriders": {"labelsOverrider": [{"operator": "add", "value": {"tier": "prod"}}]}}]}}),
    )
    .await?;
    let _controllers = start_controller(&client)?;

    let name = names::work_name("v1", "Namespace", None, NAMESPACE);
    let uid = binding.uid().context("the binding has a uid")?;
    let wait = |cluster: &'static str| {
        let api = works(&client, cluster);
        let name = name.clone();
        async move {
            eventually(&format!("the Namespace Work of {cluster}"), || async {
                Ok(api.get_opt(&name).await?)
            })
            .await
        }
    };
    let m1 = wait("m1").await?;
    let m2 = wait("m2").await?;
    for work in [&m1, &m2] {
        assert_eq!(
            work.labels()
                .get(labels::CLUSTER_RESOURCE_BINDING_PERMANENT_ID),
            Some(&uid)
        );
    }
    let tier = |w: &Work| {
        manifest(w)["metadata"]["labels"]["tier"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(
        tier(&m1).as_deref(),
        Some("prod"),
        "m1 matches the ClusterOverridePolicy"
    );
    assert_eq!(tier(&m2), None);
    assert!(
        m1.annotations()
            .contains_key(annotations::APPLIED_CLUSTER_OVERRIDES)
    );
    assert_eq!(m1.spec.suspend_dispatching, None);
    assert_eq!(
        m2.spec.suspend_dispatching,
        Some(true),
        "dispatching to m2 is suspended"
    );

    // m2's labels change to match the policy: its Work re-renders.
    let clusters: Api<Cluster> = Api::all(client.clone());
    clusters
        .patch(
            "m2",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": BTreeMap::from([("env", "prod")])}})),
        )
        .await?;
    let api = works(&client, "m2");
    eventually("m2's Work labelled tier=prod", || async {
        let work = api.get(&name).await?;
        Ok((tier(&work).as_deref() == Some("prod")).then_some(()))
    })
    .await?;

    bindings
        .delete("shop-namespace", &DeleteParams::default())
        .await?;
    for cluster in ["m1", "m2"] {
        let api = works(&client, cluster);
        eventually(
            &format!("the Namespace Work of {cluster} deleted"),
            || async { Ok(api.get_opt(&name).await?.is_none().then_some(())) },
        )
        .await?;
    }
    eventually("the ClusterResourceBinding deleted", || async {
        Ok(bindings
            .get_opt("shop-namespace")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn another_bindings_work_of_the_same_name_survives_and_is_reported() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    setup(&client).await?;
    // Another binding's Work where m1's would go, carrying that binding's id.
    create::<Namespace>(
        &Api::all(client.clone()),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flotilla-es-m1"}}),
    )
    .await?;
    let theirs = create::<Work>(
        &works(&client, "m1"),
        json!({"apiVersion": "work.flotilla.io/v1alpha1", "kind": "Work",
            "metadata": {"name": work_name(), "namespace": "flotilla-es-m1",
                "labels": {labels::RESOURCE_BINDING_PERMANENT_ID: "someone-else"}},
            "spec": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "theirs", "namespace": NAMESPACE}}]}}}),
    )
    .await?;
    // The binding carries that id as a label too: a label a user can set decides nothing.
    create::<ResourceBinding>(
        &Api::namespaced(client.clone(), NAMESPACE),
        json!({"apiVersion": "work.flotilla.io/v1alpha1", "kind": "ResourceBinding",
            "metadata": {"name": "web-deployment", "namespace": NAMESPACE,
                "labels": {labels::RESOURCE_BINDING_PERMANENT_ID: "someone-else"}},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "namespace": NAMESPACE, "name": "web"},
                "replicas": 5,
                "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided",
                    "replicaDivisionPreference": "Weighted"}},
                "clusters": targets(&[("m1", 3), ("m2", 2)])}}),
    )
    .await?;
    let _controllers = start_controller(&client)?;

    let (binding, condition) = wait_condition(&client, "False").await?;
    assert_eq!(condition.reason, WORK_CONFLICT);
    for part in ["m1", "someone-else", &work_name()] {
        assert!(
            condition.message.contains(part),
            "{part} in {}",
            condition.message
        );
    }
    assert!(!condition.message.contains("m2"), "{}", condition.message);
    // The other cluster proceeds; the other binding's Work is left exactly as it was.
    let uid = binding.uid().context("the binding has a uid")?;
    let m2 = wait_work(&client, "m2", "2 replicas", |w| replicas(w) == Some(2)).await?;
    assert_eq!(
        m2.labels().get(labels::RESOURCE_BINDING_PERMANENT_ID),
        Some(&uid),
        "Works are labelled with the binding's uid, not its label"
    );
    let m1 = works(&client, "m1").get(&work_name()).await?;
    assert_eq!(m1.resource_version(), theirs.resource_version());
    assert_eq!(manifest(&m1)["metadata"]["name"], "theirs");

    // Deleting the binding takes its own Works only.
    let api: Api<ResourceBinding> = Api::namespaced(client.clone(), NAMESPACE);
    api.delete("web-deployment", &DeleteParams::default())
        .await?;
    eventually("the binding deleted", || async {
        Ok(api.get_opt("web-deployment").await?.is_none().then_some(()))
    })
    .await?;
    // The finalizer went only after the cleanup finished: what is left now stays.
    assert!(works(&client, "m2").get_opt(&work_name()).await?.is_none());
    let m1 = works(&client, "m1").get_opt(&work_name()).await?;
    assert_eq!(
        m1.map(|w| w.uid()),
        Some(theirs.uid()),
        "the other binding's Work survives"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_work_deleted_by_hand_comes_back_without_waiting_for_the_resync() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    setup(&client).await?;
    create_binding(&client, &[("m1", 3), ("m2", 2)]).await?;
    // A resync far beyond the test's patience: only the Work going can wake the controller.
    let options = binding::Options {
        resync: Duration::from_secs(3600),
        ..Default::default()
    };
    let _controllers = start_controller_with(&client, options)?;
    let first = wait_work(&client, "m1", "3 replicas", |w| replicas(w) == Some(3)).await?;
    wait_condition(&client, "True").await?;

    works(&client, "m1")
        .delete(&work_name(), &DeleteParams::default())
        .await?;
    let again = wait_work(&client, "m1", "recreated", |w| {
        w.uid() != first.uid() && replicas(w) == Some(3)
    })
    .await?;
    assert_eq!(
        again.labels().get(labels::RESOURCE_BINDING_PERMANENT_ID),
        first.labels().get(labels::RESOURCE_BINDING_PERMANENT_ID)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_template_or_cluster_is_reported() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    setup(&client).await?;
    // m9 has no Cluster: m1 proceeds, m9 is named on the condition.
    create_binding(&client, &[("m1", 3), ("m9", 2)]).await?;
    // A binding of a Deployment that does not exist.
    create::<ResourceBinding>(
        &Api::namespaced(client.clone(), NAMESPACE),
        json!({"apiVersion": "work.flotilla.io/v1alpha1", "kind": "ResourceBinding",
            "metadata": {"name": "nothere-deployment", "namespace": NAMESPACE},
            "spec": {"resource": {"apiVersion": "apps/v1", "kind": "Deployment",
                    "namespace": NAMESPACE, "name": "nothere"},
                "clusters": targets(&[("m1", 1)])}}),
    )
    .await?;
    let _controllers = start_controller(&client)?;

    let (_, condition) = wait_condition(&client, "False").await?;
    assert_eq!(condition.reason, CLUSTER_NOT_FOUND);
    assert!(condition.message.contains("m9"), "{}", condition.message);
    wait_work(&client, "m1", "3 replicas", |w| replicas(w) == Some(3)).await?;

    let (_, condition) = wait_condition_of(&client, "nothere-deployment", "False").await?;
    assert_eq!(condition.reason, TEMPLATE_NOT_FOUND);
    assert!(
        condition.message.contains("Deployment shop/nothere"),
        "{}",
        condition.message
    );

    // m9 registers: its Work is written and the condition turns True.
    Api::<Cluster>::all(client.clone())
        .create(&PostParams::default(), &ClusterBuilder::new("m9").build())
        .await?;
    wait_work(&client, "m9", "2 replicas", |w| replicas(w) == Some(2)).await?;
    let (_, condition) = wait_condition(&client, "True").await?;
    assert_eq!(condition.reason, RENDERED);
    Ok(())
}
