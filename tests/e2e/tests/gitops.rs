//! GitRepo on a local fleet, end to end: two GitRepos with a `placement` — one bringing a
//! Namespace, a CRD, a custom resource and a ConfigMap into `targetNamespace` (placed through
//! the ClusterPropagationPolicy the controller owns), one a Deployment and a ConfigMap in its
//! own namespace (through its PropagationPolicy) — reach the members they name, report their
//! propagation in the status, follow a commit that changes one file and removes another
//! (pruned from the hub, then from the members), and take what they applied with them, policies
//! included, when deleted.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use flotilla_api::{ClusterPropagationPolicy, GitRepo, PropagationPolicy};
use flotilla_e2e::{TestFleet, eventually};
use flotilla_testing::git::Repo;
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Namespace},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{DeleteParams, DynamicObject, GroupVersionKind},
    discovery::ApiResource,
};

const SETTLE: Duration = Duration::from_secs(60);
const MEMBERS: [&str; 3] = ["member1", "member2", "member3"];

const WIDGETS_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{value: \"{value}\"}}\n"
    )
}

fn deployment(replicas: i32, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, labels: {{app: web}}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers:\n      - {{name: web, image: \"{image}\", resources: {{requests: {{cpu: 100m}}}}}}\n"
    )
}

fn gitrepo(
    name: &str,
    url: &str,
    path: &str,
    target_namespace: Option<&str>,
    clusters: &[&str],
) -> String {
    let target = target_namespace
        .map(|ns| format!("  targetNamespace: {ns}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: gitops.flotilla.io/v1alpha1\nkind: GitRepo\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  url: {url}\n  ref: {{branch: main}}\n  paths: [{path}]\n  interval: 5s\n{target}  placement:\n    clusterAffinity: {{clusterNames: [{}]}}\n",
        clusters.join(", ")
    )
}

/// The GitRepo once it has applied `revision` and every binding of what it applied is
/// FullyApplied and healthy.
async fn propagated(
    repos: &Api<GitRepo>,
    name: &str,
    revision: &str,
    bindings: i64,
) -> Result<GitRepo> {
    let last = std::sync::Mutex::new(None);
    eventually(
        SETTLE,
        &format!("GitRepo {name} applies {revision} and propagates it"),
        || async {
            let repo = repos.get(name).await?;
            let status = repo.status.clone().unwrap_or_default();
            *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(status.clone());
            let propagation = status.propagation.clone().unwrap_or_default();
            Ok((status.last_applied_revision.as_deref() == Some(revision)
                && propagation.bindings == bindings
                && propagation.fully_applied == bindings
                && propagation.healthy == bindings)
                .then_some(repo))
        },
    )
    .await
    .with_context(|| {
        let last = last.lock().unwrap_or_else(|e| e.into_inner()).take();
        format!(
            "its status: {}",
            serde_json::to_string(&last).unwrap_or_default()
        )
    })
}

async fn widget(member: &Client, name: &str) -> Result<Option<DynamicObject>> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(member.clone(), "shop", &resource);
    Ok(api.get_opt(name).await?)
}

async fn config_value(api: &Api<ConfigMap>, name: &str) -> Result<Option<String>> {
    flotilla_testing::config_map_value(api, name, "value").await
}

#[tokio::test(flavor = "multi_thread")]
async fn gitrepos_with_a_placement_reach_the_members_follow_commits_and_leave_with_their_files()
-> Result<()> {
    let test = TestFleet::start_quickly_simulated(3).await?;
    test.wait_ready().await?;
    let hub = test.hub().clone();
    let mut members = Vec::new();
    for name in MEMBERS {
        members.push(test.member(name).await?);
    }

    let repo = Repo::new()?;
    repo.write(
        "platform/namespace.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    )?;
    repo.write("platform/crd.yaml", WIDGETS_CRD)?;
    repo.write(
        "platform/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n",
    )?;
    repo.write("platform/settings.yaml", &config_map("settings", "blue"))?;
    repo.write("apps/web.yaml", &deployment(2, "nginx:1.27"))?;
    repo.write("apps/web-config.yaml", &config_map("web-config", "v1"))?;
    let first = repo.commit("first")?;

    test.apply(&gitrepo(
        "platform",
        &repo.url(),
        "platform",
        Some("shop"),
        &MEMBERS,
    ))
    .await?;
    test.apply(&gitrepo(
        "apps",
        &repo.url(),
        "apps",
        None,
        &["member1", "member2"],
    ))
    .await?;
    let repos: Api<GitRepo> = Api::namespaced(hub.clone(), "default");

    // platform: the CRD, Widget and ConfigMap through the ClusterPropagationPolicy (cluster-scoped,
    // or in shop rather than the GitRepo's namespace), three bindings; the Namespace reaches
    // every member through namespace sync, without a binding.
    let platform = propagated(&repos, "platform", &first, 3).await?;
    let cluster_policies: Api<ClusterPropagationPolicy> = Api::all(hub.clone());
    ensure!(
        cluster_policies
            .get_opt("gitrepo-default-platform")
            .await?
            .is_some()
    );
    let policies: Api<PropagationPolicy> = Api::namespaced(hub.clone(), "default");
    ensure!(
        policies.get_opt("gitrepo-platform").await?.is_none(),
        "nothing of platform is in its own namespace, so it owns no PropagationPolicy"
    );
    let clusters = platform
        .status
        .unwrap_or_default()
        .propagation
        .unwrap_or_default()
        .clusters;
    ensure!(
        clusters
            .iter()
            .map(|c| (c.name.as_str(), c.ready.as_str()))
            .collect::<Vec<_>>()
            == [("member1", "3/3"), ("member2", "3/3"), ("member3", "3/3")],
        "{clusters:?}"
    );
    for (name, member) in MEMBERS.iter().zip(&members) {
        let namespaces: Api<Namespace> = Api::all(member.clone());
        ensure!(
            namespaces.get_opt("shop").await?.is_some(),
            "{name} has the Namespace"
        );
        let crds: Api<CustomResourceDefinition> = Api::all(member.clone());
        ensure!(
            crds.get_opt("widgets.example.com").await?.is_some(),
            "{name} has the CRD"
        );
        ensure!(
            widget(member, "w1").await?.is_some(),
            "{name} has the Widget"
        );
        let maps: Api<ConfigMap> = Api::namespaced(member.clone(), "shop");
        ensure!(
            config_value(&maps, "settings").await?.as_deref() == Some("blue"),
            "{name}"
        );
    }

    // apps: the Deployment and its ConfigMap in default, through the PropagationPolicy, on
    // member1 and member2 only, the Deployment running there.
    propagated(&repos, "apps", &first, 2).await?;
    ensure!(policies.get_opt("gitrepo-apps").await?.is_some());
    for (name, member) in MEMBERS.iter().zip(&members) {
        let deployments: Api<Deployment> = Api::namespaced(member.clone(), "default");
        let got = deployments.get_opt("web").await?;
        if *name == "member3" {
            ensure!(got.is_none(), "member3 is not in apps' placement");
        } else {
            let got = got.context("web")?;
            ensure!(
                got.status.and_then(|s| s.ready_replicas) == Some(2),
                "{name} runs web"
            );
        }
    }

    // A commit: web's image changes, web-config leaves Git — pruned on the hub, then in the
    // members.
    repo.write("apps/web.yaml", &deployment(2, "nginx:1.28"))?;
    repo.remove("apps/web-config.yaml")?;
    let second = repo.commit("second")?;
    propagated(&repos, "apps", &second, 1).await?;
    let hub_maps: Api<ConfigMap> = Api::namespaced(hub.clone(), "default");
    ensure!(
        hub_maps.get_opt("web-config").await?.is_none(),
        "pruned on the hub"
    );
    for (name, member) in MEMBERS.iter().zip(&members).take(2) {
        let maps: Api<ConfigMap> = Api::namespaced(member.clone(), "default");
        let deployments: Api<Deployment> = Api::namespaced(member.clone(), "default");
        eventually(
            SETTLE,
            &format!("{name} follows the second commit"),
            || async {
                let image = deployments
                    .get_opt("web")
                    .await?
                    .and_then(|d| d.spec)
                    .and_then(|s| s.template.spec)
                    .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
                Ok((image.as_deref() == Some("nginx:1.28")
                    && maps.get_opt("web-config").await?.is_none())
                .then_some(()))
            },
        )
        .await?;
    }

    // Deleting the GitRepos prunes what they applied, and their policies go with them.
    repos.delete("apps", &DeleteParams::default()).await?;
    repos.delete("platform", &DeleteParams::default()).await?;
    eventually(SETTLE, "both GitRepos are gone", || async {
        Ok(repos
            .list(&Default::default())
            .await?
            .items
            .is_empty()
            .then_some(()))
    })
    .await?;
    ensure!(
        cluster_policies
            .get_opt("gitrepo-default-platform")
            .await?
            .is_none()
    );
    ensure!(policies.get_opt("gitrepo-apps").await?.is_none());
    for (name, member) in MEMBERS.iter().zip(&members).take(2) {
        let deployments: Api<Deployment> = Api::namespaced(member.clone(), "default");
        eventually(SETTLE, &format!("web leaves {name}"), || async {
            Ok(deployments.get_opt("web").await?.is_none().then_some(()))
        })
        .await?;
    }
    test.stop().await;
    Ok(())
}
