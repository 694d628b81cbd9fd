//! Helm 4 (the real CLI from `tests/tools/helm.sh`) against the test hub (embedded, or a real
//! kube-apiserver with `FLOTILLA_TEST_SERVER=kube`) with default flags and the default Secret
//! storage driver: `helm create` a chart, `install`, `upgrade --set replicaCount=2`,
//! `rollback`, `uninstall`, checking the Deployment's replicas and the release Secrets after
//! each step. Skipped with a message when Helm cannot be installed.

#[path = "support/clients.rs"]
mod clients;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, ensure};
use clients::{
    ClientProcess, at, deployment_path, fresh_namespace, get_json, managed_entry, must_get,
};
use flotilla_testing::{TestHub, eventually};
use kube::Client;
use std::time::Duration;

const RELEASE: &str = "demo";

/// The release Secrets in `ns`: name → (status label, version label).
async fn release_secrets(client: &Client, ns: &str) -> Result<BTreeMap<String, (String, String)>> {
    let list = must_get(
        client,
        &format!("/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm%2Cname%3D{RELEASE}"),
    )
    .await?;
    let mut secrets = BTreeMap::new();
    for item in at(&list, "/items").as_array().into_iter().flatten() {
        ensure!(
            at(item, "/type") == "helm.sh/release.v1",
            "helm 4: release secret type: {item}"
        );
        ensure!(
            at(item, "/data/release")
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "helm 4: the release secret holds the release: {item}"
        );
        secrets.insert(
            at(item, "/metadata/name")
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (
                at(item, "/metadata/labels/status")
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                at(item, "/metadata/labels/version")
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
        );
    }
    Ok(secrets)
}

fn expected(entries: &[(u32, &str)]) -> BTreeMap<String, (String, String)> {
    entries
        .iter()
        .map(|(version, status)| {
            (
                format!("sh.helm.release.v1.{RELEASE}.v{version}"),
                ((*status).to_owned(), version.to_string()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_4_create_install_upgrade_rollback_uninstall() -> Result<()> {
    let bin = match clients::helm_binary() {
        Ok(bin) => bin,
        Err(why) => {
            println!("SKIPPED: helm 4: {why}");
            return Ok(());
        }
    };
    let hub = TestHub::start().await?;
    println!("helm 4 against the {:?} server", hub.kind());
    let helm = ClientProcess::new("helm 4", bin, hub.kubeconfig())?;
    let version = helm.ok(&["version", "--short"]).await?;
    ensure!(version.starts_with("v4."), "helm version: {version:?}");
    let client = hub.client.clone();
    let ns = fresh_namespace(&client, "helm").await?;
    let chart_dir = helm.home.path().join("charts");
    std::fs::create_dir_all(&chart_dir)?;
    let chart = chart_dir.join("mychart");
    let chart = chart.to_str().context("chart path")?;
    let out = helm.ok(&["create", chart]).await?;
    ensure!(out.contains("Creating"), "helm create: {out:?}");

    // The chart's Deployment is named <release>-<chart>.
    let deployment = deployment_path(&ns, &format!("{RELEASE}-mychart"));
    let replicas = |c: Client, path: String| async move {
        let live = must_get(&c, &path).await?;
        Ok::<_, anyhow::Error>(at(&live, "/spec/replicas").clone())
    };

    // Install.
    let out = helm.ok(&["install", RELEASE, chart, "-n", &ns]).await?;
    ensure!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 1"),
        "helm 4 install: {out}"
    );
    ensure!(
        replicas(client.clone(), deployment.clone()).await? == 1,
        "helm 4: replicas after install"
    );
    let live = must_get(&client, &deployment).await?;
    ensure!(
        at(&live, "/metadata/labels/app.kubernetes.io~1managed-by") == "Helm"
            && at(&live, "/metadata/annotations/meta.helm.sh~1release-name") == RELEASE,
        "helm 4: the Deployment carries Helm's ownership metadata: {live}"
    );
    // Helm 4 installs with server-side apply by default.
    ensure!(
        managed_entry(&live, "helm", "Apply").is_some_and(|e| !at(
            e,
            "/fieldsV1/f:spec/f:replicas"
        )
        .is_null()),
        "helm 4: the Deployment was server-side applied by the manager helm, owning spec.replicas: {}",
        at(&live, "/metadata/managedFields")
    );
    for path in [
        format!("/api/v1/namespaces/{ns}/services/{RELEASE}-mychart"),
        format!("/api/v1/namespaces/{ns}/serviceaccounts/{RELEASE}-mychart"),
    ] {
        ensure!(
            get_json(&client, &path).await?.is_some(),
            "helm 4: the chart's {path} exists after install"
        );
    }
    let secrets = release_secrets(&client, &ns).await?;
    ensure!(
        secrets == expected(&[(1, "deployed")]),
        "helm 4: release secrets after install: {secrets:?}"
    );

    // Upgrade with a changed value.
    let out = helm
        .ok(&[
            "upgrade",
            RELEASE,
            chart,
            "-n",
            &ns,
            "--set",
            "replicaCount=2",
        ])
        .await?;
    ensure!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 2"),
        "helm 4 upgrade: {out}"
    );
    ensure!(
        replicas(client.clone(), deployment.clone()).await? == 2,
        "helm 4: replicas after upgrade --set replicaCount=2"
    );
    let secrets = release_secrets(&client, &ns).await?;
    ensure!(
        secrets == expected(&[(1, "superseded"), (2, "deployed")]),
        "helm 4: release secrets after upgrade: {secrets:?}"
    );

    // Roll back to revision 1.
    let out = helm.ok(&["rollback", RELEASE, "1", "-n", &ns]).await?;
    ensure!(
        out.contains("Rollback was a success"),
        "helm 4 rollback: {out}"
    );
    ensure!(
        replicas(client.clone(), deployment.clone()).await? == 1,
        "helm 4: replicas after rollback to revision 1"
    );
    let secrets = release_secrets(&client, &ns).await?;
    ensure!(
        secrets == expected(&[(1, "superseded"), (2, "superseded"), (3, "deployed")]),
        "helm 4: release secrets after rollback: {secrets:?}"
    );
    let out = helm.ok(&["list", "-n", &ns, "-o", "json"]).await?;
    let listed: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        at(&listed, "/0/name") == RELEASE
            && at(&listed, "/0/revision") == "3"
            && at(&listed, "/0/status") == "deployed"
            && at(&listed, "/1").is_null(),
        "helm 4 list after rollback: {out}"
    );
    let history = helm.ok(&["history", RELEASE, "-n", &ns]).await?;
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    ensure!(
        rows.len() == 3 && rows[2].first() == Some(&"3") && history.contains("Rollback to 1"),
        "helm 4 history: {history}"
    );

    // Uninstall: the chart's objects and the release Secrets go.
    let out = helm.ok(&["uninstall", RELEASE, "-n", &ns]).await?;
    ensure!(
        out.contains(&format!("release \"{RELEASE}\" uninstalled")),
        "helm 4 uninstall: {out}"
    );
    eventually(
        Duration::from_secs(30),
        "the Deployment and the release secrets gone",
        || {
            let client = client.clone();
            let deployment = deployment.clone();
            let ns = ns.clone();
            async move {
                let left = get_json(&client, &deployment).await?;
                let secrets = release_secrets(&client, &ns).await?;
                Ok((left.is_none() && secrets.is_empty()).then_some(()))
            }
        },
    )
    .await
    .context("helm 4 uninstall")?;
    let out = helm.ok(&["list", "-n", &ns, "-o", "json"]).await?;
    let listed: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        listed == serde_json::json!([]),
        "helm 4: no release listed after uninstall: {out}"
    );
    Ok(())
}
