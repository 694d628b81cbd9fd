//! `flotilla up` end to end: the hub and members come up, members are registered with working
//! credentials, kubectl sees the fleet, the README's walkthrough propagates a Deployment into
//! Works, and the scheduler places bindings the way the README's examples say.

use std::{process::Command, time::Duration};

use flotilla_api::{
    Cluster, PropagationPolicy, ResourceBinding, Work, conditions,
    work::{ResourceBindingSpec, TargetCluster},
};
use flotilla_e2e::{TestFleet, eventually, kubectl};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, Secret},
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_registered_with_working_credentials() -> anyhow::Result<()> {
    let test = TestFleet::start(2).await?;
    let clusters: Api<Cluster> = Api::all(test.hub().clone());
    let mut names: Vec<String> = clusters
        .list(&Default::default())
        .await?
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["member1", "member2"]);

    let mut endpoints = std::collections::BTreeSet::new();
    for name in &names {
        // Reach the member exactly as the execution controller will: the Cluster's endpoint
        // with the token and CA from its credentials Secret.
        let cluster = clusters.get(name).await?;
        let secret_ref = cluster.spec.secret_ref.clone().expect("secretRef");
        let secrets: Api<Secret> = Api::namespaced(test.hub().clone(), &secret_ref.namespace);
        let secret = secrets.get(&secret_ref.name).await?;
        let data = secret.data.expect("secret data");
        let token = String::from_utf8(data["token"].0.clone())?;
        let ca = String::from_utf8(data["caBundle"].0.clone())?;
        let endpoint = cluster.spec.api_endpoint.clone().expect("apiEndpoint");
        assert!(
            endpoints.insert(endpoint.clone()),
            "each member has an endpoint of its own: {endpoint}"
        );

        let mut config = kube::Config::new(endpoint.parse()?);
        config.root_cert = Some(pem_to_der(&ca)?);
        config.auth_info.token = Some(token.into());
        let member = kube::Client::try_from(config)?;
        let namespaces: Api<Namespace> = Api::all(member);
        let list = namespaces.list(&Default::default()).await?;
        assert!(
            list.items
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some("default"))
        );
        // The member is its own cluster: no Flotilla Clusters there.
        let member_clusters = test.member(name).await?;
        let member_nss: Api<Namespace> = Api::all(member_clusters);
        assert!(
            member_nss.get_opt("flotilla-cluster").await?.is_none(),
            "{name} is not the hub"
        );
    }

    // The cluster-status controller reaches each member and reports it Ready, with the
    // version and the APIs it serves.
    for name in &names {
        let cluster = eventually(
            Duration::from_secs(20),
            &format!("{name} to be Ready"),
            || async {
                let cluster = clusters.get(name).await?;
                let ready = cluster
                    .status
                    .as_ref()
                    .is_some_and(|s| conditions::is_true(&s.conditions, conditions::READY));
                Ok(ready.then_some(cluster))
            },
        )
        .await?;
        let status = cluster.status.expect("status");
        assert!(
            status
                .kubernetes_version
                .is_some_and(|v| v.starts_with('v'))
        );
        assert!(
            status
                .api_enablements
                .iter()
                .any(|e| e.group_version == "apps/v1"
                    && e.resources.iter().any(|r| r.kind == "Deployment")),
            "{name} reports apps/v1 Deployment"
        );
    }
    test.stop().await;
    Ok(())
}

/// Every certificate of a PEM bundle, DER-encoded.
fn pem_to_der(pem: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    use base64::Engine as _;
    let mut certificates = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN") {
            body = Some(String::new());
        } else if line.starts_with("-----END") {
            let text = body.take().unwrap_or_default();
            certificates.push(base64::engine::general_purpose::STANDARD.decode(text)?);
        } else if let Some(text) = body.as_mut() {
            text.push_str(line);
        }
    }
    anyhow::ensure!(!certificates.is_empty(), "no certificate in the CA bundle");
    Ok(certificates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_the_fleet() -> anyhow::Result<()> {
    let Some(kubectl) = kubectl() else {
        eprintln!("SKIPPED: no versioned kubectl (/usr/bin/kubectl.1.*) on this machine");
        return Ok(());
    };
    let test = TestFleet::start(2).await?;
    let home = tempfile::tempdir()?;
    let run = |args: &[&str]| -> anyhow::Result<String> {
        let output = Command::new(&kubectl)
            .env("HOME", home.path())
            .arg("--kubeconfig")
            .arg(test.kubeconfig())
            .args(args)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    };
    let clusters = run(&["get", "clusters"])?;
    assert!(
        clusters.contains("member1") && clusters.contains("member2"),
        "{clusters}"
    );
    let modes = run(&[
        "get",
        "clusters",
        "-o",
        "jsonpath={.items[*].spec.syncMode}",
    ])?;
    assert_eq!(modes, "Push Push");
    let everything = run(&["get", "flotilla", "-A"])?;
    assert!(
        everything.contains("member1"),
        "the flotilla category lists Clusters: {everything}"
    );
    let namespaces = run(&["--context", "member2", "get", "namespaces", "-o", "name"])?;
    assert!(namespaces.contains("namespace/default"), "{namespaces}");
    assert!(
        !namespaces.contains("flotilla-cluster"),
        "member2 is its own cluster: {namespaces}"
    );
    test.stop().await;
    Ok(())
}

fn binding(name: &str, placement_yaml: &str, replicas: i32) -> anyhow::Result<ResourceBinding> {
    let placement = serde_saphyr::from_str(placement_yaml)?;
    let mut binding = ResourceBinding::new(
        name,
        ResourceBindingSpec {
            resource: flotilla_api::work::ObjectReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("default".into()),
                name: name.into(),
                ..Default::default()
            },
            replicas,
            placement: Some(placement),
            ..Default::default()
        },
    );
    binding.metadata.namespace = Some("default".into());
    Ok(binding)
}

async fn scheduled(api: &Api<ResourceBinding>, name: &str) -> anyhow::Result<Vec<TargetCluster>> {
    eventually(
        Duration::from_secs(20),
        &format!("binding {name} to be scheduled"),
        || async {
            let binding = api.get(name).await?;
            let done = binding
                .status
                .as_ref()
                .is_some_and(|s| conditions::is_true(&s.conditions, conditions::SCHEDULED));
            Ok(done.then(|| binding.spec.clusters.clone()))
        },
    )
    .await
}

/// Waits until each cluster's Work of the nginx Deployment carries its replicas.
async fn work_replicas(test: &TestFleet, want: &[(&str, i64)]) -> anyhow::Result<()> {
    let name = flotilla_api::names::work_name("apps/v1", "Deployment", Some("default"), "nginx");
    for (cluster, replicas) in want {
        let works: Api<Work> =
            Api::namespaced(test.hub().clone(), &format!("flotilla-es-{cluster}"));
        eventually(
            Duration::from_secs(20),
            &format!("nginx with {replicas} replicas in {cluster}'s Work"),
            || async {
                let work = works.get_opt(&name).await?;
                Ok(work.filter(|w| {
                    w.spec
                        .workload
                        .manifests
                        .first()
                        .and_then(|m| m.0.pointer("/spec/replicas"))
                        == Some(&serde_json::json!(replicas))
                }))
            },
        )
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_propagates_a_deployment_and_the_scheduler_places_bindings()
-> anyhow::Result<()> {
    let test = TestFleet::start(2).await?;
    test.wait_ready().await?;
    let api: Api<ResourceBinding> = Api::namespaced(test.hub().clone(), "default");

    // The nginx Deployment and its PropagationPolicy from examples/what-if/, 3 replicas divided
    // 2:1 by static weight. The detector writes the binding.
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/what-if/");
    let deployment: Deployment = serde_saphyr::from_str(&std::fs::read_to_string(format!(
        "{examples}nginx-deployment.yaml"
    ))?)?;
    let policy: PropagationPolicy = serde_saphyr::from_str(&std::fs::read_to_string(format!(
        "{examples}nginx-propagationpolicy.yaml"
    ))?)?;
    let deployments: Api<Deployment> = Api::namespaced(test.hub().clone(), "default");
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    Api::<PropagationPolicy>::namespaced(test.hub().clone(), "default")
        .create(&PostParams::default(), &policy)
        .await?;
    let mut clusters = scheduled(&api, "nginx-deployment").await?;
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        clusters,
        [
            TargetCluster {
                name: "member1".into(),
                replicas: 2
            },
            TargetCluster {
                name: "member2".into(),
                replicas: 1
            }
        ]
    );
    work_replicas(&test, &[("member1", 2), ("member2", 1)]).await?;

    // Scaled on the hub: the binding and the Works follow (4 and 2).
    deployments
        .patch(
            "nginx",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {"replicas": 6}})),
        )
        .await?;
    work_replicas(&test, &[("member1", 4), ("member2", 2)]).await?;

    // Deleted: its binding and Works go.
    deployments
        .delete("nginx", &DeleteParams::default())
        .await?;
    eventually(Duration::from_secs(20), "the binding deleted", || async {
        Ok(api
            .get_opt("nginx-deployment")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    for cluster in ["member1", "member2"] {
        let works: Api<Work> =
            Api::namespaced(test.hub().clone(), &format!("flotilla-es-{cluster}"));
        eventually(
            Duration::from_secs(20),
            &format!("no Work left in {cluster}"),
            || async {
                Ok(works
                    .list(&Default::default())
                    .await?
                    .items
                    .is_empty()
                    .then_some(()))
            },
        )
        .await?;
    }

    // Duplicated to every production cluster.
    let duplicated = binding(
        "web",
        "clusterAffinity: {labelSelector: {matchLabels: {environment: production}}}\nreplicaScheduling: {replicaSchedulingType: Duplicated}\n",
        2,
    )?;
    api.create(&PostParams::default(), &duplicated).await?;
    let mut clusters = scheduled(&api, "web").await?;
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        clusters,
        [
            TargetCluster {
                name: "member1".into(),
                replicas: 2
            },
            TargetCluster {
                name: "member2".into(),
                replicas: 2
            }
        ]
    );
    test.stop().await;
    Ok(())
}
