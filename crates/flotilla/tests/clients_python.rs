//! The official Python Kubernetes client (`kubernetes` from PyPI, in a venv made by
//! `tests/tools/python-client.sh`) against the test hub (embedded, or a real kube-apiserver
//! with `FLOTILLA_TEST_SERVER=kube`): typed strategic-merge patches of a Deployment and a
//! ConfigMap from dict bodies, dynamic-client server-side apply with two managers (409, force),
//! a CRD with a structural schema (defaults, pruning, Strict, 422 with one cause per field),
//! a wrongly typed Deployment refused without breaking the typed list, typed lists of every
//! served group (autoscaling, policy, storage, discovery, scheduling, node, …) and garbage
//! collection through `propagation_policy`. The scenarios are
//! in `tests/python/clients.py`; each runs in a fresh namespace and the Rust side re-reads what
//! the server stored. Skipped with a message when Python or the client cannot be installed.

#[path = "support/clients.rs"]
mod clients;

use std::path::PathBuf;

use anyhow::{Result, ensure};
use clients::{
    ClientProcess, Scenarios, at, configmap_path, containers, deployment_path, fresh_namespace,
    get_json, map, must_get, pairs, string_map,
};
use flotilla_testing::TestHub;
use kube::Client;

fn script() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/clients.py")
        .display()
        .to_string()
}

/// Runs one scenario of `clients.py` in a fresh namespace; returns the namespace.
async fn scenario(python: &ClientProcess, client: &Client, name: &str) -> Result<String> {
    let ns = fresh_namespace(client, &format!("py-{name}")).await?;
    let out = python.run(&[&script(), name, &ns]).await?;
    ensure!(
        out.code == 0 && out.stdout.lines().last() == Some(&format!("ok {name}")),
        "python {name}: {out}"
    );
    Ok(ns)
}

#[tokio::test(flavor = "multi_thread")]
async fn python_client_patch_apply_and_crd_schemas() -> Result<()> {
    let bin = match clients::python_binary() {
        Ok(bin) => bin,
        Err(why) => {
            println!("SKIPPED: the Python kubernetes client: {why}");
            return Ok(());
        }
    };
    let hub = TestHub::start().await?;
    let python = ClientProcess::new("python", bin, hub.kubeconfig())?;
    let client = hub.client.clone();
    let c = &client;
    let p = &python;
    let mut s = Scenarios::new(&format!("python kubernetes client ({:?})", hub.kind()));

    s.run("typed strategic merge patch of a Deployment", async {
        let ns = scenario(p, c, "typed-strategic-patch").await?;
        let live = must_get(c, &deployment_path(&ns, "web")).await?;
        ensure!(
            containers(&live) == pairs(&[("app", "nginx:2")]) && at(&live, "/spec/replicas") == 3,
            "python: the stored Deployment: {live}"
        );
        Ok(())
    })
    .await;
    s.run("typed strategic merge patch of a ConfigMap", async {
        let ns = scenario(p, c, "configmap-patch").await?;
        let live = must_get(c, &configmap_path(&ns, "cm")).await?;
        ensure!(
            string_map(&live, "/data") == map(&[("b", "2"), ("c", "3")]),
            "python: the stored ConfigMap: {live}"
        );
        Ok(())
    })
    .await;
    s.run(
        "dynamic client server-side apply, conflicts, force",
        async {
            let ns = scenario(p, c, "dynamic-server-side-apply").await?;
            let live = must_get(c, &configmap_path(&ns, "settings")).await?;
            ensure!(
                string_map(&live, "/data") == map(&[("color", "blue"), ("size", "big")]),
                "python: the stored ConfigMap: {live}"
            );
            Ok(())
        },
    )
    .await;
    s.run("CRD structural schema: defaults, pruning, 422s", async {
        let ns = scenario(p, c, "crd-structural-schema").await?;
        let live = must_get(
            c,
            &format!("/apis/test.flotilla.io/v1/namespaces/{ns}/gadgets/g1"),
        )
        .await?;
        ensure!(
            at(&live, "/spec")
                == &serde_json::json!({"name": "first", "size": 3, "color": "red", "options": {"retries": 2}}),
            "python: the stored Gadget: {live}"
        );
        Ok(())
    })
    .await;
    s.run(
        "typed lists of every group; PDB, HPA and EndpointSlice read back",
        async {
            scenario(p, c, "typed-lists-of-every-group").await?;
            Ok(())
        },
    )
    .await;
    s.run(
        "garbage collection through propagation_policy (Background, Foreground, Orphan)",
        async {
            scenario(p, c, "garbage-collection").await?;
            Ok(())
        },
    )
    .await;
    s.run("a wrongly typed Deployment is refused", async {
        let ns = scenario(p, c, "wrong-type-rejected").await?;
        ensure!(
            get_json(c, &deployment_path(&ns, "bad")).await?.is_none(),
            "python: the bad Deployment must not be stored"
        );
        Ok(())
    })
    .await;
    s.finish()
}
