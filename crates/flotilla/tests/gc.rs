//! Garbage collection by ownerReferences on the test hub (the embedded server, or a real
//! kube-apiserver with kube-controller-manager's garbage collector under
//! `FLOTILLA_TEST_SERVER=kube`): background, foreground (with `blockOwnerDeletion` and a
//! dependent that has dependents of its own) and orphan propagation, the `orphan` finalizer, a
//! cluster-scoped owner of a namespaced dependent and a Namespace owning a cluster-scoped one,
//! dangling references found later (absent owner, owner of another uid, one live owner left),
//! batch/v1 Jobs orphaning by default with kube's warning, and invalid DeleteOptions; and the other
//! kube-controller-manager duties the embedded server does: storage in-use protection of claims
//! and volumes, and each namespace's `default` ServiceAccount. Every
//! wait is for a state the collector must reach; none asserts that nothing happened. The tests
//! share one hub (a namespace each) on a real control plane.

#[path = "support/api.rs"]
mod api;
#[path = "support/clients.rs"]
mod clients;

use anyhow::{Context as _, Result, ensure};
use api::{Answer, ok, send, until};
use clients::{fresh_namespace, get_json};
use flotilla_testing::TestHub;
use http::Method;
use kube::Client;
use serde_json::{Value, json};

fn cm_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps/{name}")
}

fn reference(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    })
}

/// Creates ConfigMap `name` with these owner references and finalizers.
async fn configmap(
    client: &Client,
    ns: &str,
    name: &str,
    owners: &[Value],
    finalizers: &[&str],
) -> Result<Value> {
    let mut meta = json!({"name": name, "labels": {"gc-test": name}});
    if !owners.is_empty() {
        meta["ownerReferences"] = json!(owners);
    }
    if !finalizers.is_empty() {
        meta["finalizers"] = json!(finalizers);
    }
    let mut cm = ok(
        client,
        Method::POST,
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}),
    )
    .await?;
    // Lists and some answers leave these out; references need them.
    cm["apiVersion"] = json!("v1");
    cm["kind"] = json!("ConfigMap");
    Ok(cm)
}

async fn gone(client: &Client, path: &str) -> Result<()> {
    until(&format!("{path} is gone"), || async {
        Ok(get_json(client, path).await?.is_none().then_some(()))
    })
    .await
}

async fn deleting(client: &Client, path: &str) -> Result<Value> {
    until(&format!("{path} is being deleted"), || async {
        Ok(get_json(client, path)
            .await?
            .filter(|o| !o["metadata"]["deletionTimestamp"].is_null()))
    })
    .await
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["uid"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn release(client: &Client, path: &str) -> Result<()> {
    ok(
        client,
        Method::PATCH,
        path,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await?;
    Ok(())
}

async fn delete(client: &Client, path: &str, policy: Option<&str>) -> Result<Answer> {
    let body = match policy {
        Some(p) => json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": p}),
        None => Value::Null,
    };
    let a = send(client, Method::DELETE, path, &body).await?;
    ensure!(a.code == 200, "DELETE {path}: {} {}", a.code, a.body);
    Ok(a)
}

#[tokio::test(flavor = "multi_thread")]
async fn background_deletes_dependents_after_the_owner() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-bg").await?;
    let owner = configmap(c, &ns, "owner", &[], &[]).await?;
    configmap(c, &ns, "a", &[reference(&owner, true)], &[]).await?;
    configmap(
        c,
        &ns,
        "held",
        &[reference(&owner, false)],
        &["test.flotilla.io/hold"],
    )
    .await?;
    let a = delete(c, &cm_path(&ns, "owner"), Some("Background")).await?;
    // The owner goes at once (a built-in kind answers a Status).
    ensure!(a.body["kind"] == "Status", "{}", a.body);
    ensure!(get_json(c, &cm_path(&ns, "owner")).await?.is_none());
    gone(c, &cm_path(&ns, "a")).await?;
    // A dependent with a finalizer of its own is deleted, and waits for it.
    let held = deleting(c, &cm_path(&ns, "held")).await?;
    ensure!(finalizers(&held) == ["test.flotilla.io/hold"], "{held}");
    release(c, &cm_path(&ns, "held")).await?;
    gone(c, &cm_path(&ns, "held")).await?;

    // The default propagation of a ConfigMap is background too.
    let owner = configmap(c, &ns, "owner2", &[], &[]).await?;
    configmap(c, &ns, "b", &[reference(&owner, false)], &[]).await?;
    delete(c, &cm_path(&ns, "owner2"), None).await?;
    gone(c, &cm_path(&ns, "b")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn foreground_keeps_the_owner_until_blocking_dependents_are_gone() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-fg").await?;
    let owner = configmap(c, &ns, "owner", &[], &[]).await?;
    let hold = "test.flotilla.io/hold";
    configmap(c, &ns, "blocking", &[reference(&owner, true)], &[hold]).await?;
    configmap(c, &ns, "loose", &[reference(&owner, false)], &[hold]).await?;
    let mid = configmap(c, &ns, "mid", &[reference(&owner, true)], &[]).await?;
    configmap(c, &ns, "leaf", &[reference(&mid, true)], &[hold]).await?;

    let a = delete(c, &cm_path(&ns, "owner"), Some("Foreground")).await?;
    ensure!(
        finalizers(&a.body) == ["foregroundDeletion"]
            && !a.body["metadata"]["deletionTimestamp"].is_null(),
        "the answer is the owner held for its dependents: {}",
        a.body
    );
    // Every dependent is deleted; one with dependents of its own in the foreground.
    for name in ["blocking", "loose", "leaf"] {
        let d = deleting(c, &cm_path(&ns, name)).await?;
        ensure!(finalizers(&d) == [hold], "{name}: {d}");
    }
    let mid = deleting(c, &cm_path(&ns, "mid")).await?;
    ensure!(finalizers(&mid) == ["foregroundDeletion"], "{mid}");
    let owner_now = get_json(c, &cm_path(&ns, "owner"))
        .await?
        .context("the owner waits for its blocking dependents")?;
    ensure!(
        finalizers(&owner_now) == ["foregroundDeletion"],
        "{owner_now}"
    );

    // A dependent without blockOwnerDeletion holds nobody.
    release(c, &cm_path(&ns, "loose")).await?;
    gone(c, &cm_path(&ns, "loose")).await?;
    release(c, &cm_path(&ns, "blocking")).await?;
    gone(c, &cm_path(&ns, "blocking")).await?;
    // Still held through mid, which waits for leaf.
    let owner_now = get_json(c, &cm_path(&ns, "owner"))
        .await?
        .context("the owner waits for mid")?;
    ensure!(get_json(c, &cm_path(&ns, "mid")).await?.is_some());
    ensure!(
        finalizers(&owner_now) == ["foregroundDeletion"],
        "{owner_now}"
    );
    release(c, &cm_path(&ns, "leaf")).await?;
    gone(c, &cm_path(&ns, "leaf")).await?;
    gone(c, &cm_path(&ns, "mid")).await?;
    gone(c, &cm_path(&ns, "owner")).await?;

    // An owner without dependents goes as soon as the collector sees it.
    configmap(c, &ns, "alone", &[], &[]).await?;
    delete(c, &cm_path(&ns, "alone"), Some("Foreground")).await?;
    gone(c, &cm_path(&ns, "alone")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn orphan_removes_the_references_and_keeps_the_dependents() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-orphan").await?;
    let owner = configmap(c, &ns, "owner", &[], &[]).await?;
    let other = configmap(c, &ns, "other", &[], &[]).await?;
    configmap(c, &ns, "kept", &[reference(&owner, true)], &[]).await?;
    configmap(
        c,
        &ns,
        "shared",
        &[reference(&owner, false), reference(&other, false)],
        &[],
    )
    .await?;
    let a = delete(c, &cm_path(&ns, "owner"), Some("Orphan")).await?;
    ensure!(finalizers(&a.body) == ["orphan"], "{}", a.body);
    gone(c, &cm_path(&ns, "owner")).await?;
    let kept = get_json(c, &cm_path(&ns, "kept"))
        .await?
        .context("an orphaned dependent stays")?;
    ensure!(owner_uids(&kept).is_empty(), "{kept}");
    ensure!(
        kept["metadata"]["deletionTimestamp"].is_null(),
        "an orphaned dependent is not deleted: {kept}"
    );
    // Its creator still owns its labels; nobody owns the removed references.
    let managed = kept["metadata"]["managedFields"].to_string();
    ensure!(
        managed.contains("f:gc-test") && !managed.contains("f:ownerReferences"),
        "{managed}"
    );
    let shared = get_json(c, &cm_path(&ns, "shared"))
        .await?
        .context("shared stays")?;
    ensure!(
        owner_uids(&shared) == [other["metadata"]["uid"].as_str().unwrap_or_default()],
        "{shared}"
    );

    // The orphan finalizer on the owner asks for the same when the delete names no policy.
    let owner = configmap(c, &ns, "owner2", &[], &["orphan"]).await?;
    configmap(c, &ns, "kept2", &[reference(&owner, false)], &[]).await?;
    delete(c, &cm_path(&ns, "owner2"), None).await?;
    gone(c, &cm_path(&ns, "owner2")).await?;
    let kept = get_json(c, &cm_path(&ns, "kept2"))
        .await?
        .context("kept2 stays")?;
    ensure!(owner_uids(&kept).is_empty(), "{kept}");

    // orphanDependents=false (the older option) deletes them.
    let owner = configmap(c, &ns, "owner3", &[], &[]).await?;
    configmap(c, &ns, "dep3", &[reference(&owner, false)], &[]).await?;
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": false});
    ok(c, Method::DELETE, &cm_path(&ns, "owner3"), &body).await?;
    gone(c, &cm_path(&ns, "dep3")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dangling_references_and_scopes() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-dangling").await?;
    // An owner that never existed, and one of the right name with another uid.
    let absent = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "nobody",
        "uid": "00000000-0000-0000-0000-000000000001"});
    configmap(c, &ns, "orphaned", std::slice::from_ref(&absent), &[]).await?;
    let real = configmap(c, &ns, "real", &[], &[]).await?;
    let mut wrong_uid = reference(&real, false);
    wrong_uid["uid"] = json!("00000000-0000-0000-0000-000000000002");
    configmap(c, &ns, "stale", &[wrong_uid], &[]).await?;
    gone(c, &cm_path(&ns, "orphaned")).await?;
    gone(c, &cm_path(&ns, "stale")).await?;
    // With one live owner left, only the dangling reference goes.
    configmap(c, &ns, "half", &[reference(&real, false), absent], &[]).await?;
    let real_uid = real["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let half = until("half keeps only its live owner", || async {
        Ok(get_json(c, &cm_path(&ns, "half"))
            .await?
            .filter(|o| owner_uids(o) == [real_uid.as_str()]))
    })
    .await?;
    ensure!(half["metadata"]["deletionTimestamp"].is_null(), "{half}");

    // A cluster-scoped owner (a Namespace) of a namespaced dependent and of a cluster-scoped
    // one (a ClusterRole, as `flotilla join` makes).
    let owner_ns = fresh_namespace(c, "gc-owner").await?;
    let mut owner = ok(
        c,
        Method::GET,
        &format!("/api/v1/namespaces/{owner_ns}"),
        &Value::Null,
    )
    .await?;
    owner["apiVersion"] = json!("v1");
    owner["kind"] = json!("Namespace");
    configmap(c, &ns, "by-namespace", &[reference(&owner, false)], &[]).await?;
    let role = format!("{owner_ns}-role");
    ok(
        c,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": role, "ownerReferences": [reference(&owner, false)]}}),
    )
    .await?;
    ok(
        c,
        Method::DELETE,
        &format!("/api/v1/namespaces/{owner_ns}"),
        &Value::Null,
    )
    .await?;
    gone(c, &cm_path(&ns, "by-namespace")).await?;
    gone(
        c,
        &format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}"),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_orphan_by_default_and_bad_options_are_refused() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-jobs").await?;
    let jobs = format!("/apis/batch/v1/namespaces/{ns}/jobs");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}});
    ok(c, Method::POST, &jobs, &job).await?;
    let a = delete(c, &format!("{jobs}/j"), None).await?;
    ensure!(finalizers(&a.body) == ["orphan"], "{}", a.body);
    ensure!(
        a.warnings.iter().any(|w| w.contains(
            "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them"
        )),
        "{:?}",
        a.warnings
    );
    gone(c, &format!("{jobs}/j")).await?;
    ok(c, Method::POST, &jobs, &job).await?;
    let a = delete(c, &format!("{jobs}/j"), Some("Background")).await?;
    ensure!(a.warnings.is_empty(), "{:?}", a.warnings);
    gone(c, &format!("{jobs}/j")).await?;

    configmap(c, &ns, "x", &[], &[]).await?;
    let bad = send(
        c,
        Method::DELETE,
        &cm_path(&ns, "x"),
        &json!({"propagationPolicy": "Sometimes"}),
    )
    .await?;
    ensure!(bad.code == 422, "{}", bad.body);
    ensure!(
        bad.body["message"]
            == "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sometimes\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
        "{}",
        bad.body
    );
    let both = send(
        c,
        Method::DELETE,
        &cm_path(&ns, "x"),
        &json!({"propagationPolicy": "Orphan", "orphanDependents": true}),
    )
    .await?;
    ensure!(both.code == 422, "{}", both.body);
    ensure!(
        both.body["message"]
            == "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set",
        "{}",
        both.body
    );
    let query = send(
        c,
        Method::DELETE,
        &format!("{}?propagationPolicy=Sometimes", cm_path(&ns, "x")),
        &Value::Null,
    )
    .await?;
    ensure!(query.code == 422, "{}", query.body);
    ensure!(get_json(c, &cm_path(&ns, "x")).await?.is_some());
    Ok(())
}

fn claim(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
}

fn volume(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/flotilla-gc-test"}}})
}

/// Storage object in-use protection: a claim a scheduled pod mounts, and a Bound volume, stay
/// (deleting, with their finalizer) until nothing uses them. Each wait for the protected object
/// follows the deletion of an unprotected twin, so the controller has looked at both.
#[tokio::test(flavor = "multi_thread")]
async fn claims_and_volumes_in_use_are_protected() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-protect").await?;
    let claims = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims");
    for name in ["used", "free"] {
        let pvc = ok(c, Method::POST, &claims, &claim(name)).await?;
        ensure!(
            finalizers(&pvc) == ["kubernetes.io/pvc-protection"],
            "{pvc}"
        );
    }
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    ok(
        c,
        Method::POST,
        &pods,
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox:1"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "used"}}]}}),
    )
    .await?;
    delete(c, &format!("{claims}/used"), None).await?;
    delete(c, &format!("{claims}/free"), None).await?;
    gone(c, &format!("{claims}/free")).await?;
    let used = deleting(c, &format!("{claims}/used")).await?;
    ensure!(
        finalizers(&used) == ["kubernetes.io/pvc-protection"],
        "{used}"
    );
    // Once the pod is gone (no kubelet here: no grace period), the claim goes.
    let now = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0});
    let a = send(c, Method::DELETE, &format!("{pods}/user"), &now).await?;
    ensure!(a.code == 200, "{} {}", a.code, a.body);
    gone(c, &format!("{claims}/used")).await?;

    // A volume is protected while Bound.
    let bound = format!("{ns}-bound");
    let spare = format!("{ns}-spare");
    for name in [&bound, &spare] {
        let pv = ok(c, Method::POST, "/api/v1/persistentvolumes", &volume(name)).await?;
        ensure!(finalizers(&pv) == ["kubernetes.io/pv-protection"], "{pv}");
    }
    let phase = |p: &str| json!({"status": {"phase": p}});
    ok(
        c,
        Method::PATCH,
        &format!("/api/v1/persistentvolumes/{bound}/status"),
        &phase("Bound"),
    )
    .await?;
    delete(c, &format!("/api/v1/persistentvolumes/{bound}"), None).await?;
    delete(c, &format!("/api/v1/persistentvolumes/{spare}"), None).await?;
    gone(c, &format!("/api/v1/persistentvolumes/{spare}")).await?;
    let pv = deleting(c, &format!("/api/v1/persistentvolumes/{bound}")).await?;
    ensure!(finalizers(&pv) == ["kubernetes.io/pv-protection"], "{pv}");
    ok(
        c,
        Method::PATCH,
        &format!("/api/v1/persistentvolumes/{bound}/status"),
        &phase("Released"),
    )
    .await?;
    gone(c, &format!("/api/v1/persistentvolumes/{bound}")).await?;
    Ok(())
}

/// Every namespace has a `default` ServiceAccount, made again when it is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn namespaces_have_a_default_service_account() -> Result<()> {
    let hub = TestHub::shared().await?;
    let c = &hub.client;
    let ns = fresh_namespace(c, "gc-sa").await?;
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/default");
    let first = until("the default ServiceAccount", || async {
        get_json(c, &path).await
    })
    .await?;
    let old_uid = first["metadata"]["uid"].clone();
    delete(c, &path, None).await?;
    until("a new default ServiceAccount", || async {
        Ok(get_json(c, &path)
            .await?
            .filter(|sa| sa["metadata"]["uid"] != old_uid))
    })
    .await?;
    Ok(())
}
