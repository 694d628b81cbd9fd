//! Propagation end to end on a local hub with three members (`flotilla up`, in memory): what a
//! user sees in the members after applying ordinary objects and policies to the hub —
//! Duplicated and Divided placements, a per-region image override, template updates and
//! deletes, `preserveResourcesOnDeletion`, drift correction, Abort and Overwrite on a
//! pre-existing member object, a ConfigMap following its Deployment (`propagateDeps`), a custom
//! resource of a CRD created after the hub started, and an unreachable member avoided while the
//! others keep working. Members here have no controllers of their own; where status matters the
//! test writes it, standing in for them.

use std::time::Duration;

use anyhow::Result;
use flotilla_api::{ResourceBinding, Work, conditions, names};
use flotilla_e2e::{TestFleet, eventually};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn deployment(name: &str, replicas: i64, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{app: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n"
    )
}

fn policy(name: &str, kind: &str, target: &str, placement: &str) -> String {
    let api_version = if kind == "Deployment" {
        "apps/v1"
    } else {
        "v1"
    };
    format!(
        "apiVersion: policy.flotilla.io/v1alpha1\nkind: PropagationPolicy\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  resourceSelectors:\n  - apiVersion: {api_version}\n    kind: {kind}\n    name: {target}\n  placement:\n{placement}"
    )
}

const DUPLICATED: &str = "    replicaScheduling: {replicaSchedulingType: Duplicated}\n";

/// Waits until member `cluster` has the Deployment `name` and `check` accepts it.
async fn member_deployment(
    test: &TestFleet,
    cluster: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Deployment) -> bool,
) -> Result<Deployment> {
    let api: Api<Deployment> = Api::namespaced(test.member(cluster).await?, "default");
    eventually(
        WAIT,
        &format!("{cluster}: Deployment {name} {what}"),
        || async { Ok(api.get_opt(name).await?.filter(|d| check(d))) },
    )
    .await
}

async fn member_gone(test: &TestFleet, cluster: &str, name: &str) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(test.member(cluster).await?, "default");
    eventually(
        WAIT,
        &format!("{cluster}: Deployment {name} gone"),
        || async { Ok(api.get_opt(name).await?.is_none().then_some(())) },
    )
    .await
}

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.replicas)
}

fn image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_reach_the_members_follow_their_template_and_stay_as_declared() -> Result<()> {
    let test = TestFleet::start(3).await?;
    test.wait_ready().await?;
    let members = ["member1", "member2", "member3"];

    // Duplicated to every member.
    test.apply(&deployment("web", 2, "nginx:1.27")).await?;
    test.apply(&policy("web", "Deployment", "web", DUPLICATED))
        .await?;
    for cluster in members {
        let d = member_deployment(&test, cluster, "web", "with 2 replicas", |d| {
            replicas(d) == Some(2)
        })
        .await?;
        assert_eq!(image(&d).as_deref(), Some("nginx:1.27"));
        assert_eq!(
            d.labels()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("flotilla")
        );
    }

    // Divided 2:1 with 6 replicas: 4 and 2, nothing on member3.
    test.apply(&deployment("api", 6, "api:1")).await?;
    test.apply(&policy(
        "api",
        "Deployment",
        "api",
        "    clusterAffinity: {clusterNames: [member1, member2]}\n    replicaScheduling:\n      replicaSchedulingType: Divided\n      replicaDivisionPreference: Weighted\n      weightPreference:\n        staticWeightList:\n        - {targetCluster: {clusterNames: [member1]}, weight: 2}\n        - {targetCluster: {clusterNames: [member2]}, weight: 1}\n",
    ))
    .await?;
    member_deployment(&test, "member1", "api", "with 4 replicas", |d| {
        replicas(d) == Some(4)
    })
    .await?;
    member_deployment(&test, "member2", "api", "with 2 replicas", |d| {
        replicas(d) == Some(2)
    })
    .await?;
    let member3: Api<Deployment> = Api::namespaced(test.member("member3").await?, "default");
    assert!(
        member3.get_opt("api").await?.is_none(),
        "api is not placed on member3"
    );

    // An image override for one region (member2 is the only member in local-west).
    test.apply(
        "apiVersion: policy.flotilla.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: west-mirror, namespace: default}\nspec:\n  resourceSelectors:\n  - {apiVersion: apps/v1, kind: Deployment, name: web}\n  overrideRules:\n  - targetCluster:\n      fieldSelector: {matchExpressions: [{key: region, operator: In, values: [local-west]}]}\n    overriders:\n      imageOverrider:\n      - {component: Registry, operator: replace, value: mirror.west.example}\n",
    )
    .await?;
    let west = member_deployment(&test, "member2", "web", "with the west mirror", |d| {
        image(d).is_some_and(|i| i.starts_with("mirror.west.example/"))
    })
    .await;
    if west.is_err() {
        // The region label may not be how `up` marks regions: say what the Cluster has.
        let clusters: Api<flotilla_api::Cluster> = Api::all(test.hub().clone());
        let c = clusters.get("member2").await?;
        anyhow::bail!(
            "member2's web was not overridden; its Cluster labels {:?}, region {:?}",
            c.labels(),
            c.spec.region
        );
    }
    for cluster in ["member1", "member3"] {
        let d = member_deployment(&test, cluster, "web", "unchanged", |_| true).await?;
        assert_eq!(image(&d).as_deref(), Some("nginx:1.27"), "{cluster}");
    }

    // A template update reaches every member (the override still applies on member2).
    test.apply(&deployment("web", 3, "nginx:1.28")).await?;
    for cluster in members {
        let d = member_deployment(
            &test,
            cluster,
            "web",
            "at nginx:1.28 with 3 replicas",
            |d| replicas(d) == Some(3) && image(d).is_some_and(|i| i.ends_with("nginx:1.28")),
        )
        .await?;
        let want_mirror = cluster == "member2";
        assert_eq!(
            image(&d).is_some_and(|i| i.starts_with("mirror.west.example/")),
            want_mirror,
            "{cluster}: {:?}",
            image(&d)
        );
    }

    // Drift: an edit in a member is put back, and so is a delete.
    let m1: Api<Deployment> = Api::namespaced(test.member("member1").await?, "default");
    m1.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 9}})),
    )
    .await?;
    member_deployment(&test, "member1", "web", "back at 3 replicas", |d| {
        replicas(d) == Some(3)
    })
    .await?;
    let m3: Api<Deployment> = Api::namespaced(test.member("member3").await?, "default");
    m3.delete("web", &DeleteParams::default()).await?;
    member_deployment(&test, "member3", "web", "recreated", |d| {
        replicas(d) == Some(3)
    })
    .await?;

    // No member write on an unchanged pass: the member's own status change reaches the Work
    // (so the pass ran) and nothing is written back.
    let patched = m1
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 1, "replicas": 3}})),
        )
        .await?;
    let work_name = names::work_name("apps/v1", "Deployment", Some("default"), "web");
    let works: Api<Work> = Api::namespaced(test.hub().clone(), "flotilla-es-member1");
    eventually(WAIT, "member1's status in its Work", || async {
        let work = works.get(&work_name).await?;
        let reflected = work
            .status
            .and_then(|s| s.manifest_statuses.first().cloned())
            .and_then(|m| m.status)
            .is_some_and(|s| s.get("replicas") == Some(&json!(3)));
        Ok(reflected.then_some(()))
    })
    .await?;
    assert_eq!(
        m1.get("web").await?.resource_version(),
        patched.resource_version(),
        "the pass that saw the member's status wrote nothing to member1's Deployment"
    );

    // Deleted on the hub: gone from every member.
    let hub_deployments: Api<Deployment> = Api::namespaced(test.hub().clone(), "default");
    hub_deployments
        .delete("web", &DeleteParams::default())
        .await?;
    for cluster in members {
        member_gone(&test, cluster, "web").await?;
    }

    // preserveResourcesOnDeletion: the member objects stay, left to the members.
    test.apply(&deployment("kept", 1, "kept:1")).await?;
    test.apply(&format!(
        "{}  preserveResourcesOnDeletion: true\n",
        policy("kept", "Deployment", "kept", DUPLICATED)
    ))
    .await?;
    for cluster in members {
        member_deployment(&test, cluster, "kept", "present", |_| true).await?;
    }
    hub_deployments
        .delete("kept", &DeleteParams::default())
        .await?;
    let bindings: Api<ResourceBinding> = Api::namespaced(test.hub().clone(), "default");
    eventually(WAIT, "the kept binding gone", || async {
        Ok(bindings
            .get_opt("kept-deployment")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    for cluster in members {
        let works: Api<Work> =
            Api::namespaced(test.hub().clone(), &format!("flotilla-es-{cluster}"));
        let kept_work = names::work_name("apps/v1", "Deployment", Some("default"), "kept");
        eventually(WAIT, &format!("{cluster}: the kept Work gone"), || async {
            Ok(works.get_opt(&kept_work).await?.is_none().then_some(()))
        })
        .await?;
        let d = member_deployment(&test, cluster, "kept", "still there", |_| true).await?;
        assert_eq!(
            d.labels().get("app.kubernetes.io/managed-by"),
            None,
            "{cluster}: released"
        );
    }
    test.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_dependencies_and_custom_resources() -> Result<()> {
    let test = TestFleet::start(3).await?;
    test.wait_ready().await?;

    // A ConfigMap member1 already has, that Flotilla does not manage.
    let m1_cms: Api<ConfigMap> = Api::namespaced(test.member("member1").await?, "default");
    flotilla_e2e::apply(
        &test.member("member1").await?,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {owner: member1}\n",
    )
    .await?;
    test.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {owner: hub}\n")
        .await?;
    let placement = "    clusterAffinity: {clusterNames: [member1, member2]}\n";
    test.apply(&policy("settings", "ConfigMap", "settings", placement))
        .await?;

    // Abort (the default): member2 gets it, member1's stays its own, and the binding says so.
    let m2_cms: Api<ConfigMap> = Api::namespaced(test.member("member2").await?, "default");
    let owner = |cm: &ConfigMap| cm.data.as_ref().and_then(|d| d.get("owner").cloned());
    eventually(WAIT, "member2: settings from the hub", || async {
        Ok(m2_cms
            .get_opt("settings")
            .await?
            .filter(|c| owner(c).as_deref() == Some("hub")))
    })
    .await?;
    let bindings: Api<ResourceBinding> = Api::namespaced(test.hub().clone(), "default");
    let binding = eventually(
        WAIT,
        "member1 in conflict and member2 applied on the binding",
        || async {
            let binding = bindings.get("settings-configmap").await?;
            let conflicted = binding.status.as_ref().is_some_and(|s| {
                s.aggregated_status.iter().any(|i| {
                    i.cluster_name == "member1"
                        && !i.applied
                        && i.applied_message
                            .as_deref()
                            .is_some_and(|m| m.starts_with("ConflictWithExisting"))
                }) && s
                    .aggregated_status
                    .iter()
                    .any(|i| i.cluster_name == "member2" && i.applied)
                    && conditions::find(&s.conditions, conditions::FULLY_APPLIED)
                        .is_some_and(|c| c.status == "False")
            });
            Ok(conflicted.then_some(binding))
        },
    )
    .await?;
    assert_eq!(
        binding.status.unwrap_or_default().aggregated_status.len(),
        2
    );
    assert_eq!(
        m1_cms.get("settings").await.map(|c| owner(&c))?.as_deref(),
        Some("member1")
    );

    // Overwrite: adopted.
    test.apply(&format!(
        "{}  conflictResolution: Overwrite\n",
        policy("settings", "ConfigMap", "settings", placement)
    ))
    .await?;
    eventually(WAIT, "member1: settings adopted", || async {
        Ok(m1_cms
            .get_opt("settings")
            .await?
            .filter(|c| owner(c).as_deref() == Some("hub")))
    })
    .await?;
    eventually(WAIT, "FullyApplied", || async {
        let binding = bindings.get("settings-configmap").await?;
        let done = binding.status.as_ref().is_some_and(|s| {
            conditions::find(&s.conditions, conditions::FULLY_APPLIED)
                .is_some_and(|c| c.status == "True")
        });
        Ok(done.then_some(()))
    })
    .await?;

    // propagateDeps: the ConfigMap a Deployment reads follows it to member3 only.
    test.apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, namespace: default}\ndata: {mode: fast}\n")
        .await?;
    test.apply(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, namespace: default}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: app}}\n  template:\n    metadata: {labels: {app: app}}\n    spec:\n      containers:\n      - name: app\n        image: app:1\n        envFrom: [{configMapRef: {name: app-config}}]\n",
    )
    .await?;
    test.apply(&format!(
        "{}  propagateDeps: true\n",
        policy(
            "app",
            "Deployment",
            "app",
            "    clusterAffinity: {clusterNames: [member3]}\n"
        )
    ))
    .await?;
    member_deployment(&test, "member3", "app", "present", |_| true).await?;
    let m3_cms: Api<ConfigMap> = Api::namespaced(test.member("member3").await?, "default");
    eventually(
        WAIT,
        "member3: app-config followed its Deployment",
        || async { Ok(m3_cms.get_opt("app-config").await?) },
    )
    .await?;
    assert!(m1_cms.get_opt("app-config").await?.is_none());

    // A CRD created after the hub started, propagated with its custom resource (the CRD first).
    test.apply(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
    )
    .await?;
    test.apply(
        "apiVersion: policy.flotilla.io/v1alpha1\nkind: ClusterPropagationPolicy\nmetadata: {name: widgets-crd}\nspec:\n  resourceSelectors:\n  - {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, name: widgets.example.com}\n  placement:\n    clusterAffinity: {clusterNames: [member1, member2]}\n",
    )
    .await?;
    let widget_gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let widgets = ApiResource::from_gvk_with_plural(&widget_gvk, "widgets");
    let hub_widgets: Api<DynamicObject> =
        Api::namespaced_with(test.hub().clone(), "default", &widgets);
    eventually(WAIT, "the Widget kind served on the hub", || async {
        Ok(hub_widgets.list(&Default::default()).await.ok().map(|_| ()))
    })
    .await?;
    test.apply(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n",
    )
    .await?;
    test.apply(
        "apiVersion: policy.flotilla.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: widgets, namespace: default}\nspec:\n  resourceSelectors:\n  - {apiVersion: example.com/v1, kind: Widget}\n  placement:\n    clusterAffinity: {clusterNames: [member1, member2]}\n",
    )
    .await?;
    for cluster in ["member1", "member2"] {
        let api: Api<DynamicObject> =
            Api::namespaced_with(test.member(cluster).await?, "default", &widgets);
        let widget = eventually(WAIT, &format!("{cluster}: Widget w1"), || async {
            Ok(api.get_opt("w1").await.ok().flatten())
        })
        .await?;
        assert_eq!(widget.data["spec"]["size"], json!(3), "{cluster}");
    }
    test.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_member_is_avoided_and_the_others_keep_working() -> Result<()> {
    let mut options = flotilla::controllers::Options::default();
    options.cluster_status.period = Duration::from_millis(300);
    options.cluster_status.failure_threshold = Duration::from_secs(1);
    options.cluster_status.request_timeout = Duration::from_secs(1);
    let test = TestFleet::start_with(3, options).await?;
    test.wait_ready().await?;
    test.apply(&deployment("web", 1, "web:1")).await?;
    test.apply(&policy("web", "Deployment", "web", DUPLICATED))
        .await?;
    for cluster in ["member1", "member2", "member3"] {
        member_deployment(&test, cluster, "web", "present", |_| true).await?;
    }

    // member3 dies: NotReady, tainted.
    test.stop_member("member3").await?;
    let clusters: Api<flotilla_api::Cluster> = Api::all(test.hub().clone());
    eventually(WAIT, "member3 NotReady and tainted", || async {
        let c = clusters.get("member3").await?;
        let not_ready = c.ready_condition().is_some_and(|r| r.status == "False");
        let tainted = c
            .spec
            .taints
            .iter()
            .any(|t| t.key == flotilla_api::keys::taints::NOT_READY);
        Ok((not_ready && tainted).then_some(()))
    })
    .await?;

    // New workloads avoid it; the others keep receiving updates.
    test.apply(&deployment("late", 1, "late:1")).await?;
    test.apply(&policy("late", "Deployment", "late", DUPLICATED))
        .await?;
    for cluster in ["member1", "member2"] {
        member_deployment(&test, cluster, "late", "present", |_| true).await?;
    }
    let bindings: Api<ResourceBinding> = Api::namespaced(test.hub().clone(), "default");
    let late = eventually(WAIT, "late scheduled", || async {
        let b = bindings.get("late-deployment").await?;
        Ok((!b.spec.clusters.is_empty()).then_some(b))
    })
    .await?;
    let targets: Vec<&str> = late.spec.clusters.iter().map(|c| c.name.as_str()).collect();
    assert!(!targets.contains(&"member3"), "{targets:?}");

    test.apply(&deployment("web", 1, "web:2")).await?;
    for cluster in ["member1", "member2"] {
        member_deployment(&test, cluster, "web", "at web:2", |d| {
            image(d).as_deref() == Some("web:2")
        })
        .await?;
    }
    // member3's Work says why it is not applied.
    let works: Api<Work> = Api::namespaced(test.hub().clone(), "flotilla-es-member3");
    let work_name = names::work_name("apps/v1", "Deployment", Some("default"), "web");
    eventually(WAIT, "member3's Work ClusterUnreachable", || async {
        let work = works.get(&work_name).await?;
        let unreachable = work.status.as_ref().is_some_and(|s| {
            conditions::find(&s.conditions, conditions::APPLIED)
                .is_some_and(|c| c.status == "False" && c.reason == "ClusterUnreachable")
        });
        Ok(unreachable.then_some(()))
    })
    .await?;
    test.stop().await;
    Ok(())
}

/// A member Deployment's status as its controller would write it: `ready` of `replicas` pods
/// updated and available, at the object's generation; `deadline` sets ProgressDeadlineExceeded.
fn member_status(d: &Deployment, ready: i64, deadline: bool) -> serde_json::Value {
    let replicas = i64::from(replicas(d).unwrap_or(1));
    let done = ready == replicas;
    let progressing = if deadline {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
               "message": "ReplicaSet has timed out progressing.",
               "lastUpdateTime": "2026-12-01T00:00:00Z", "lastTransitionTime": "2026-12-01T00:00:00Z"})
    } else if done {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
               "message": "ReplicaSet has successfully progressed.",
               "lastUpdateTime": "2026-12-01T00:00:00Z", "lastTransitionTime": "2026-12-01T00:00:00Z"})
    } else {
        json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
               "message": "ReplicaSet is progressing.",
               "lastUpdateTime": "2026-12-01T00:00:00Z", "lastTransitionTime": "2026-12-01T00:00:00Z"})
    };
    json!({"status": {
    "observedGeneration": d.metadata.generation,
    "replicas": replicas, "updatedReplicas": ready, "readyReplicas": ready,
    "availableReplicas": ready, "unavailableReplicas": replicas - ready,
    "conditions": [
        {"type": "Available", "status": if done { "True" } else { "False" },
         "reason": if done { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
         "message": "Deployment availability.",
         "lastUpdateTime": "2026-12-01T00:00:00Z", "lastTransitionTime": "2026-12-01T00:00:00Z"},
        progressing,
    ]}})
}

/// Sets member `cluster`'s Deployment `name` status, standing in for its deployment controller.
async fn report(
    test: &TestFleet,
    cluster: &str,
    name: &str,
    ready: i64,
    deadline: bool,
) -> Result<()> {
    let api: Api<Deployment> = Api::namespaced(test.member(cluster).await?, "default");
    let d = api.get(name).await?;
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(member_status(&d, ready, deadline)),
    )
    .await?;
    Ok(())
}

/// Waits until the hub's Deployment is judged `argo` by Argo CD's rules and `kstatus` by
/// kstatus's (the ports in flotilla_testing::health).
async fn judged(
    test: &TestFleet,
    name: &str,
    argo: flotilla_testing::health::ArgoHealth,
    kstatus: flotilla_testing::health::KStatus,
) -> Result<serde_json::Value> {
    let api: Api<Deployment> = Api::namespaced(test.hub().clone(), "default");
    let last = std::sync::Mutex::new(String::new());
    let result = eventually(
        WAIT,
        &format!("the hub's {name} judged {argo:?} / {kstatus:?}"),
        || async {
            let object = serde_json::to_value(api.get(name).await?)?;
            let a = flotilla_testing::health::argocd_health(&object);
            let k = flotilla_testing::health::kstatus(&object);
            *last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                format!("{a:?} {k:?} {}", object["status"]);
            Ok((a.0 == argo && k.0 == kstatus).then_some(object))
        },
    )
    .await;
    result.map_err(|e| {
        anyhow::anyhow!(
            "{e}; last seen {}",
            last.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_deployment_tells_how_the_fleet_runs_it() -> Result<()> {
    use flotilla_testing::health::{ArgoHealth, KStatus};
    let test = TestFleet::start(3).await?;
    test.wait_ready().await?;
    let members = ["member1", "member2", "member3"];
    test.apply(&deployment("web", 2, "nginx:1.27")).await?;
    test.apply(&policy("web", "Deployment", "web", DUPLICATED))
        .await?;
    for cluster in members {
        member_deployment(&test, cluster, "web", "present", |_| true).await?;
    }

    // Two members done, one still rolling out: Progressing / InProgress.
    report(&test, "member1", "web", 2, false).await?;
    report(&test, "member2", "web", 2, false).await?;
    report(&test, "member3", "web", 1, false).await?;
    judged(&test, "web", ArgoHealth::Progressing, KStatus::InProgress).await?;

    // Every member done: Healthy / Current, with one cluster's counters (not three times them).
    report(&test, "member3", "web", 2, false).await?;
    let hub = judged(&test, "web", ArgoHealth::Healthy, KStatus::Current).await?;
    assert_eq!(hub["status"]["replicas"], json!(2), "{}", hub["status"]);
    assert_eq!(hub["status"]["availableReplicas"], json!(2));
    assert_eq!(
        hub["status"]["observedGeneration"],
        hub["metadata"]["generation"]
    );
    let progressing = hub["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(progressing["reason"], json!("NewReplicaSetAvailable"));
    // Only status was written, under Flotilla's own manager, through /status.
    let status_writer = hub["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["manager"] == "flotilla-binding-status")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        status_writer["subresource"],
        json!("status"),
        "{status_writer}"
    );
    assert!(
        status_writer["fieldsV1"].get("f:spec").is_none(),
        "{status_writer}"
    );

    // The binding keeps the per-cluster detail, applied and healthy apart.
    let bindings: Api<ResourceBinding> = Api::namespaced(test.hub().clone(), "default");
    let binding = bindings.get("web-deployment").await?;
    let items = binding.status.unwrap_or_default().aggregated_status;
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(
        items.iter().all(|i| i.applied && i.status.is_some()),
        "{items:?}"
    );

    // A template update: not Current until every member runs and has observed it.
    test.apply(&deployment("web", 2, "nginx:1.28")).await?;
    for cluster in members {
        member_deployment(&test, cluster, "web", "at nginx:1.28", |d| {
            image(d).as_deref() == Some("nginx:1.28")
        })
        .await?;
    }
    judged(&test, "web", ArgoHealth::Progressing, KStatus::InProgress).await?;
    for cluster in ["member1", "member2"] {
        report(&test, cluster, "web", 2, false).await?;
    }
    judged(&test, "web", ArgoHealth::Progressing, KStatus::InProgress).await?;

    // One member past its progress deadline: Degraded / Failed.
    report(&test, "member3", "web", 1, true).await?;
    judged(&test, "web", ArgoHealth::Degraded, KStatus::Failed).await?;
    report(&test, "member3", "web", 2, false).await?;
    judged(&test, "web", ArgoHealth::Healthy, KStatus::Current).await?;
    test.stop().await;
    Ok(())
}
