//! The hub's Helm chart on a real kube-apiserver (the `kube` test tier): `helm install` creates
//! the CRDs, the ServiceAccount and its RBAC; two `flotilla hub` processes run with a token of
//! that ServiceAccount (RBAC enforced), two real members joined by hand go Ready, a binding is
//! scheduled, one hub leads and the other takes over when it is killed, and nothing is refused
//! by RBAC on the way; `helm upgrade` with changed values and `helm uninstall` work, and the
//! CRDs stay.

#[path = "support/hub_process.rs"]
mod hub_process;

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context as _, Result, ensure};
use flotilla_api::{Cluster, ResourceBinding};
use flotilla_controllers::fleet::{self, Member};
use flotilla_testing::{ServerKind, eventually, kube::ControlPlane};
use hub_process::{Hub, signal, wait_holder};
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        authentication::v1::{TokenRequest, TokenRequestSpec},
        coordination::v1::Lease,
        core::v1::ServiceAccount,
        rbac::v1::ClusterRole,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{Api, api::PostParams};
use serde_json::json;

const NAMESPACE: &str = "flotilla-system";

fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/flotilla")
}

fn helm_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FLOTILLA_HELM") {
        return Ok(PathBuf::from(path));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/tools/helm.sh");
    let output = Command::new("bash").arg(script).output()?;
    ensure!(
        output.status.success(),
        "tests/tools/helm.sh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

fn helm(binary: &PathBuf, kubeconfig: &std::path::Path, args: &[&str]) -> Result<String> {
    let output = Command::new(binary)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("HOME", kubeconfig.parent().context("kubeconfig dir")?)
        .output()?;
    ensure!(
        output.status.success(),
        "helm {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A kubeconfig for the hub with `token` instead of the admin's.
fn kubeconfig_with_token(plane: &ControlPlane, token: &str) -> Result<PathBuf> {
    let path = plane
        .kubeconfig
        .parent()
        .context("kubeconfig dir")?
        .join("hub-sa.kubeconfig");
    std::fs::write(
        &path,
        flotilla_testing::kubeconfig_yaml(&plane.url, token, &plane.ca_pem),
    )?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_installs_the_hub_chart_on_a_real_hub_and_two_hubs_run_under_its_rbac() -> Result<()> {
    if ServerKind::from_env()? != ServerKind::Kube {
        println!(
            "SKIPPED: the chart is tested on a real kube-apiserver (FLOTILLA_TEST_SERVER=kube, make test-kube)"
        );
        return Ok(());
    }
    let helm_bin = match helm_binary() {
        Ok(path) => path,
        Err(error) => {
            println!("SKIPPED: no helm ({error:#})");
            return Ok(());
        }
    };
    let (hub, m1, m2) = tokio::try_join!(
        ControlPlane::start(),
        ControlPlane::start(),
        ControlPlane::start()
    )?;
    let admin = hub.client().await?;
    let chart = chart();
    let chart = chart.to_str().context("chart path")?;

    // Install: CRDs, ServiceAccount, RBAC, the flotilla-cluster namespace.
    helm(
        &helm_bin,
        &hub.kubeconfig,
        &[
            "install",
            "flotilla",
            chart,
            "-n",
            NAMESPACE,
            "--create-namespace",
        ],
    )?;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    ensure!(
        crds.get_opt("clusters.cluster.flotilla.io")
            .await?
            .is_some()
    );

    // Members joined as the chart's NOTES say: a credentials Secret and a Push Cluster each.
    for (name, plane) in [("member1", &m1), ("member2", &m2)] {
        let member = Member::local(name, &plane.url, &plane.token, &plane.ca_pem);
        fleet::register_member(&admin, &member).await?;
    }

    // Two hubs with a token of the chart's ServiceAccount: RBAC decides what they may do.
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token: TokenRequest = accounts
        .create_subresource("token", "flotilla-hub", &PostParams::default(), &request)
        .await
        .context("a token for the chart's ServiceAccount")?;
    let token = token.status.context("token status")?.token;
    let kubeconfig = kubeconfig_with_token(&hub, &token)?;
    let flags = [
        "--leader-elect",
        "--leader-elect-resource-namespace",
        NAMESPACE,
    ];
    let a = Hub::start(&kubeconfig, "hub-a", &flags)?;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NAMESPACE);
    if let Err(error) = wait_holder(&leases, "hub-a", Duration::from_secs(30)).await {
        signal(&a.pid(), "KILL")?;
        let (_, stderr) = a.wait_exit(Duration::from_secs(10))?;
        anyhow::bail!("{error:#}; hub-a said:\n{stderr}");
    }
    let b = Hub::start(&kubeconfig, "hub-b", &flags)?;
    // The standby is ready (connected, waiting) before anything is asked of it.
    let standby = eventually(
        Duration::from_secs(30),
        "hub-b ready as a standby",
        || async { Ok(matches!(b.get("/readyz").await, Ok((200, _))).then_some(())) },
    )
    .await;
    if let Err(error) = standby {
        signal(&b.pid(), "KILL")?;
        let (_, stderr) = b.wait_exit(Duration::from_secs(10))?;
        anyhow::bail!("{error:#}; hub-b said:\n{stderr}");
    }

    let clusters: Api<Cluster> = Api::all(admin.clone());
    for name in ["member1", "member2"] {
        eventually(
            Duration::from_secs(60),
            &format!("{name} Ready"),
            || async {
                let cluster = clusters.get(name).await?;
                Ok(cluster
                    .ready_condition()
                    .is_some_and(|c| c.status == "True")
                    .then_some(()))
            },
        )
        .await?;
    }
    let bindings: Api<ResourceBinding> = Api::namespaced(admin.clone(), "default");
    let binding: ResourceBinding = serde_json::from_value(json!({
        "apiVersion": "work.flotilla.io/v1alpha1", "kind": "ResourceBinding",
        "metadata": {"name": "nginx-deployment", "namespace": "default"},
        "spec": {
            "resource": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "nginx"},
            "replicas": 2,
            "placement": {"replicaScheduling": {"replicaSchedulingType": "Duplicated"}},
        },
    }))?;
    bindings.create(&PostParams::default(), &binding).await?;
    eventually(Duration::from_secs(30), "the binding scheduled", || async {
        let rb = bindings.get("nginx-deployment").await?;
        let mut targets: Vec<String> = rb.spec.clusters.iter().map(|t| t.name.clone()).collect();
        targets.sort();
        Ok((targets == ["member1", "member2"]).then_some(()))
    })
    .await?;
    ensure!(b.metric("flotilla_controller_reconcile_total").await? == 0.0);

    // The leader dies; the standby takes over under the same RBAC.
    signal(&a.pid(), "KILL")?;
    wait_holder(&leases, "hub-b", Duration::from_secs(30)).await?;
    eventually(Duration::from_secs(30), "hub-b reconciling", || async {
        Ok((b.metric("flotilla_controller_reconcile_total").await? > 0.0).then_some(()))
    })
    .await?;
    let (_, a_stderr) = a.wait_exit(Duration::from_secs(10))?;
    signal(&b.pid(), "TERM")?;
    let (status, b_stderr) = b.wait_exit(Duration::from_secs(30))?;
    ensure!(status.success(), "hub-b exits 0 on SIGTERM: {b_stderr}");
    for (name, stderr) in [("hub-a", &a_stderr), ("hub-b", &b_stderr)] {
        ensure!(
            !stderr.contains("forbidden") && !stderr.contains("Forbidden"),
            "{name} was refused by the chart's RBAC:\n{stderr}"
        );
    }

    // Upgrade with changed values, then uninstall: the CRDs stay, the RBAC goes.
    helm(
        &helm_bin,
        &hub.kubeconfig,
        &[
            "upgrade",
            "flotilla",
            chart,
            "-n",
            NAMESPACE,
            "--set",
            "logFormat=json",
            "--set",
            "replicas=3",
        ],
    )?;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NAMESPACE);
    let deployment = deployments.get("flotilla-hub").await?;
    let spec = deployment.spec.context("deployment spec")?;
    ensure!(spec.replicas == Some(3));
    let args = spec.template.spec.context("pod spec")?.containers[0]
        .args
        .clone()
        .unwrap_or_default();
    ensure!(
        args.windows(2)
            .any(|w| w[0] == "--log-format" && w[1] == "json")
            || args.iter().any(|a| a == "--log-format=json"),
        "{args:?}"
    );
    helm(
        &helm_bin,
        &hub.kubeconfig,
        &["uninstall", "flotilla", "-n", NAMESPACE],
    )?;
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    eventually(
        Duration::from_secs(20),
        "the ClusterRole removed",
        || async {
            let left = roles
                .list(&Default::default())
                .await?
                .items
                .into_iter()
                .any(|r| {
                    r.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("flotilla"))
                });
            Ok((!left).then_some(()))
        },
    )
    .await?;
    ensure!(
        crds.get_opt("clusters.cluster.flotilla.io")
            .await?
            .is_some(),
        "CRDs stay after helm uninstall"
    );
    Ok(())
}
