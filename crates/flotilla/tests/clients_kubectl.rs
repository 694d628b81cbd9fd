//! kubectl 1.29, 1.33 and 1.35 against the test hub (embedded, or a real kube-apiserver with
//! `FLOTILLA_TEST_SERVER=kube`): what people type every day, with default flags and default
//! validation. Per version: client-side `apply` (create, change, remove a field: a label and
//! an env var gone from the live object; built-in defaults filled in), server-side apply with
//! a second manager (conflict naming the field and manager, `--force-conflicts`, removal of a
//! field its sole manager dropped), `diff` (dry run, exit codes), `edit`, `patch` of each type
//! (strategic by default, merge, json), `set image`, `rollout restart`, `explain` from the
//! OpenAPI v3 schema, and field validation (a typo rejected under the default Strict, warned
//! under Warn, ignored under Ignore). Each scenario runs in a fresh namespace; every failure
//! names the kubectl version. Skipped with a message when a kubectl binary is missing.

#[path = "support/clients.rs"]
mod clients;

use std::os::unix::fs::PermissionsExt as _;

use anyhow::{Context as _, Result, ensure};
use clients::{
    ClientProcess, Scenarios, at, configmap_path, containers, deployment_path, env,
    fresh_namespace, get_json, managed_entry, map, must_get, pairs, string_map,
};
use flotilla_testing::TestHub;
use kube::Client;
use serde_json::Value;

/// One kubectl version against one hub.
struct Ctx {
    kubectl: ClientProcess,
    client: Client,
    /// "1.29" → "k129", a namespace prefix.
    slug: String,
}

impl Ctx {
    fn v(&self) -> &str {
        &self.kubectl.label
    }

    async fn namespace(&self, scenario: &str) -> Result<String> {
        fresh_namespace(&self.client, &format!("{}-{scenario}", self.slug)).await
    }

    async fn deployment(&self, ns: &str) -> Result<Value> {
        must_get(&self.client, &deployment_path(ns, "web")).await
    }
}

/// The Deployment `web`: containers `app` (image `image`, env A=1 and, with `env_b`, B=2) and
/// `sidecar`; labels app=web and, with `tier`, tier=frontend.
fn web(replicas: u32, image: &str, tier: bool, env_b: bool) -> String {
    let tier = if tier { "\n    tier: frontend" } else { "" };
    let env_b = if env_b {
        "\n        - name: B\n          value: \"2\""
    } else {
        ""
    };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{tier}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: {image}
        env:
        - name: A
          value: "1"{env_b}
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "infinity"]
"#
    )
}

async fn run_version(version: &str) -> Result<()> {
    let bin = match clients::kubectl_binary(version) {
        Ok(bin) => bin,
        Err(why) => {
            println!("SKIPPED: kubectl {version}: {why}");
            return Ok(());
        }
    };
    let hub = TestHub::start().await?;
    let kubectl = ClientProcess::new(&format!("kubectl {version}"), bin, hub.kubeconfig())?;
    let client_version = kubectl.ok(&["version", "--client"]).await?;
    ensure!(
        client_version.contains(&format!("v{version}.")),
        "the binary for kubectl {version} reports {client_version:?}"
    );
    let ctx = Ctx {
        kubectl,
        client: hub.client.clone(),
        slug: format!("k{}", version.replace('.', "")),
    };
    println!("kubectl {version} against the {:?} server", hub.kind());
    let mut s = Scenarios::new(&format!("kubectl {version} ({:?})", hub.kind()));
    s.run(
        "client-side apply: create, change, remove fields",
        client_side_apply(&ctx),
    )
    .await;
    s.run(
        "server-side apply: conflicts and --force-conflicts",
        server_side_apply(&ctx),
    )
    .await;
    s.run(
        "client-side apply, then server-side apply: ownership migrates",
        apply_migration(&ctx),
    )
    .await;
    s.run(
        "the CRDs and the walkthrough's examples: apply, re-apply unchanged, edit and re-apply",
        walkthrough(&ctx),
    )
    .await;
    s.run("diff", diff(&ctx)).await;
    s.run("edit", edit(&ctx)).await;
    s.run("patch: strategic, merge, json", patch(&ctx)).await;
    s.run("set image", set_image(&ctx)).await;
    s.run("rollout restart", rollout_restart(&ctx)).await;
    s.run("explain", explain(&ctx)).await;
    s.run("field validation: Strict, Warn, Ignore", validation(&ctx))
        .await;
    s.run(
        "create token: a ServiceAccount token that authenticates while the account lives",
        create_token(&ctx),
    )
    .await;
    s.run(
        "create: every generator (protobuf bodies from 1.33 on)",
        create_generators(&ctx),
    )
    .await;
    s.run(
        "get -o wide, get all, api-resources",
        get_wide_all_and_api_resources(&ctx),
    )
    .await;
    s.run(
        "delete --cascade=background|foreground|orphan and wait --for=delete",
        delete_cascade(&ctx),
    )
    .await;
    s.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_1_29_everyday_commands() -> Result<()> {
    run_version("1.29").await
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_1_33_everyday_commands() -> Result<()> {
    run_version("1.33").await
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_1_35_everyday_commands() -> Result<()> {
    run_version("1.35").await
}

/// `kubectl create token`: the token authenticates (on a real server RBAC then forbids what
/// the account may not do; the embedded server does no authorization) — `auth whoami` names
/// the account, `auth can-i` answers — until the account is deleted; too short a duration and
/// a missing account are refused as kube-apiserver does.
async fn create_token(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("token").await?;
    let k = &ctx.kubectl;
    k.ok(&["-n", &ns, "create", "serviceaccount", "robot"])
        .await?;
    let token = k
        .ok(&["-n", &ns, "create", "token", "robot", "--duration=1h"])
        .await?;
    let token = token.trim();
    ensure!(!token.is_empty(), "{v}: a token");
    let as_robot = k
        .run(&["--token", token, "-n", &ns, "get", "configmaps"])
        .await?;
    ensure!(
        as_robot.code == 0 || as_robot.stderr.contains("forbidden"),
        "{v}: the token authenticates: {as_robot}"
    );
    // `auth whoami` names the account; `auth can-i` answers the administrator yes.
    let whoami = k.ok(&["--token", token, "auth", "whoami"]).await?;
    ensure!(
        whoami.contains(&format!("system:serviceaccount:{ns}:robot")),
        "{v}: auth whoami with the token: {whoami}"
    );
    let can = k
        .ok(&["-n", &ns, "auth", "can-i", "list", "configmaps"])
        .await?;
    ensure!(
        can.trim() == "yes",
        "{v}: auth can-i as the administrator: {can}"
    );
    // `auth can-i --list` (SelfSubjectRulesReview): the administrator may do everything.
    let list = k.ok(&["-n", &ns, "auth", "can-i", "--list"]).await?;
    ensure!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]),
        "{v}: auth can-i --list as the administrator: {list}"
    );
    let short = k
        .run(&["-n", &ns, "create", "token", "robot", "--duration=5m"])
        .await?;
    ensure!(
        short.code != 0
            && short
                .stderr
                .contains("may not specify a duration less than 10 minutes"),
        "{v}: too short a token refused: {short}"
    );
    let missing = k.run(&["-n", &ns, "create", "token", "nobody"]).await?;
    ensure!(
        missing.code != 0 && missing.stderr.contains("\"nobody\" not found"),
        "{v}: no such account: {missing}"
    );
    k.ok(&["-n", &ns, "delete", "serviceaccount", "robot"])
        .await?;
    // kube-apiserver caches a token's authentication for a few seconds.
    flotilla_testing::eventually(
        std::time::Duration::from_secs(30),
        &format!("{v}: the token of a deleted account refused"),
        || async {
            let gone = k
                .run(&["--token", token, "-n", &ns, "get", "configmaps"])
                .await?;
            Ok((gone.code != 0 && gone.stderr.contains("Unauthorized")).then_some(()))
        },
    )
    .await
}

async fn client_side_apply(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("apply").await?;
    let k = &ctx.kubectl;
    let apply = ["apply", "-n", &ns, "-f", "-"];

    let out = k
        .ok_stdin(&apply, &web(2, "nginx:1.25", true, true))
        .await?;
    ensure!(
        out.contains("deployment.apps/web created"),
        "{v}: first apply prints created: {out:?}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        at(&live, "/spec/replicas") == 2,
        "{v}: replicas after create: {live}"
    );
    ensure!(
        string_map(&live, "/metadata/labels") == map(&[("app", "web"), ("tier", "frontend")]),
        "{v}: labels after create: {live}"
    );
    let last_applied = string_map(&live, "/metadata/annotations")
        .remove("kubectl.kubernetes.io/last-applied-configuration")
        .with_context(|| format!("{v}: no last-applied annotation: {live}"))?;
    let last_applied: Value = serde_json::from_str(&last_applied)?;
    ensure!(
        at(&last_applied, "/spec/replicas") == 2,
        "{v}: last-applied: {last_applied}"
    );
    // The built-in defaults a real server fills in.
    for (pointer, want) in [
        ("/spec/strategy/type", Value::from("RollingUpdate")),
        ("/spec/strategy/rollingUpdate/maxSurge", Value::from("25%")),
        ("/spec/revisionHistoryLimit", Value::from(10)),
        ("/spec/progressDeadlineSeconds", Value::from(600)),
        ("/spec/template/spec/restartPolicy", Value::from("Always")),
        ("/spec/template/spec/dnsPolicy", Value::from("ClusterFirst")),
        (
            "/spec/template/spec/terminationGracePeriodSeconds",
            Value::from(30),
        ),
        (
            "/spec/template/spec/containers/0/imagePullPolicy",
            Value::from("IfNotPresent"),
        ),
        (
            "/spec/template/spec/containers/0/terminationMessagePath",
            Value::from("/dev/termination-log"),
        ),
    ] {
        ensure!(
            at(&live, pointer) == &want,
            "{v}: default {pointer} should be {want}, is {}",
            at(&live, pointer)
        );
    }

    // Change replicas and the image.
    let out = k
        .ok_stdin(&apply, &web(3, "nginx:1.26", true, true))
        .await?;
    ensure!(
        out.contains("deployment.apps/web configured"),
        "{v}: changed apply prints configured: {out:?}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        at(&live, "/spec/replicas") == 3,
        "{v}: replicas after change: {live}"
    );
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:1.26"), ("sidecar", "busybox:1.36")]),
        "{v}: containers after change: {:?}",
        containers(&live)
    );
    ensure!(
        at(&live, "/metadata/generation") == 2,
        "{v}: generation after a spec change: {}",
        at(&live, "/metadata/generation")
    );

    // The same manifest again changes nothing.
    let out = k
        .ok_stdin(&apply, &web(3, "nginx:1.26", true, true))
        .await?;
    ensure!(
        out.contains("deployment.apps/web unchanged"),
        "{v}: same apply prints unchanged: {out:?}"
    );

    // Remove a label and an env var from the manifest: both leave the live object.
    let out = k
        .ok_stdin(&apply, &web(3, "nginx:1.26", false, false))
        .await?;
    ensure!(
        out.contains("deployment.apps/web configured"),
        "{v}: removing fields prints configured: {out:?}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        string_map(&live, "/metadata/labels") == map(&[("app", "web")]),
        "{v}: the removed label tier must be gone: {}",
        at(&live, "/metadata/labels")
    );
    ensure!(
        env(&live, "app") == pairs(&[("A", "1")]),
        "{v}: the removed env var B must be gone: {:?}",
        env(&live, "app")
    );
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:1.26"), ("sidecar", "busybox:1.36")]),
        "{v}: containers after removing fields: {:?}",
        containers(&live)
    );
    ensure!(
        at(&live, "/spec/replicas") == 3,
        "{v}: replicas kept: {live}"
    );
    Ok(())
}

fn settings(data: &[(&str, &str)]) -> String {
    let mut yaml =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n");
    for (key, value) in data {
        yaml.push_str(&format!("  {key}: {value}\n"));
    }
    if data.is_empty() {
        yaml.push_str("  {}\n");
    }
    yaml
}

/// The `f:data` keys a managedFields entry owns.
fn owned_data_keys(entry: &Value) -> Vec<String> {
    let mut keys: Vec<String> = at(entry, "/fieldsV1/f:data")
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("f:"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

async fn server_side_apply(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("ssa").await?;
    let k = &ctx.kubectl;
    let path = configmap_path(&ns, "settings");

    let out = k
        .ok_stdin(
            &["apply", "--server-side", "-n", &ns, "-f", "-"],
            &settings(&[("color", "red"), ("size", "big")]),
        )
        .await?;
    ensure!(
        out.contains("configmap/settings serverside-applied"),
        "{v}: server-side apply prints serverside-applied: {out:?}"
    );
    let live = must_get(&ctx.client, &path).await?;
    ensure!(
        string_map(&live, "/data") == map(&[("color", "red"), ("size", "big")]),
        "{v}: data after the first apply: {live}"
    );
    let entry = managed_entry(&live, "kubectl", "Apply")
        .with_context(|| format!("{v}: no managedFields entry for kubectl/Apply: {live}"))?;
    ensure!(
        owned_data_keys(entry) == ["color", "size"],
        "{v}: kubectl owns data.color and data.size: {entry}"
    );
    ensure!(
        at(entry, "/fieldsType") == "FieldsV1" && at(entry, "/apiVersion") == "v1",
        "{v}: managedFields entry shape: {entry}"
    );

    // A second manager setting the same field differently conflicts.
    let other = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "-n",
        &ns,
        "-f",
        "-",
    ];
    let out = k.run_stdin(&other, &settings(&[("color", "blue")])).await?;
    ensure!(out.code != 0, "{v}: a conflicting apply must fail: {out}");
    ensure!(
        out.stderr.contains("conflict with \"kubectl\"") && out.stderr.contains(".data.color"),
        "{v}: the conflict names the manager kubectl and the field .data.color: {out}"
    );
    let live = must_get(&ctx.client, &path).await?;
    ensure!(
        at(&live, "/data/color") == "red",
        "{v}: a refused apply changes nothing: {live}"
    );

    // --force-conflicts takes the field over.
    let forced = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-n",
        &ns,
        "-f",
        "-",
    ];
    let out = k.ok_stdin(&forced, &settings(&[("color", "blue")])).await?;
    ensure!(
        out.contains("configmap/settings serverside-applied"),
        "{v}: forced apply: {out:?}"
    );
    let live = must_get(&ctx.client, &path).await?;
    ensure!(
        string_map(&live, "/data") == map(&[("color", "blue"), ("size", "big")]),
        "{v}: data after the forced apply: {live}"
    );
    let mine = managed_entry(&live, "other", "Apply")
        .with_context(|| format!("{v}: no managedFields entry for other/Apply: {live}"))?;
    ensure!(
        owned_data_keys(mine) == ["color"],
        "{v}: other owns data.color: {mine}"
    );
    let theirs = managed_entry(&live, "kubectl", "Apply")
        .with_context(|| format!("{v}: kubectl's entry must stay (it owns size): {live}"))?;
    ensure!(
        owned_data_keys(theirs) == ["size"],
        "{v}: kubectl lost data.color and kept data.size: {theirs}"
    );

    // A field its only manager stops applying is removed; one another manager owns stays.
    k.ok_stdin(
        &["apply", "--server-side", "-n", &ns, "-f", "-"],
        &settings(&[("shape", "round")]),
    )
    .await?;
    let live = must_get(&ctx.client, &path).await?;
    ensure!(
        string_map(&live, "/data") == map(&[("color", "blue"), ("shape", "round")]),
        "{v}: size (owned only by kubectl, no longer applied) is removed, color (other's) stays: {live}"
    );
    Ok(())
}

/// kubectl 1.26+ moves a client-side applier's ownership to its server-side manager on the
/// first `apply --server-side`: no conflict with `kubectl-client-side-apply`, and a field the
/// new manifest leaves out is removed as if kubectl had always applied server-side.
async fn apply_migration(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("migrate").await?;
    let k = &ctx.kubectl;
    let path = configmap_path(&ns, "settings");
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &settings(&[("color", "red"), ("size", "big")]),
    )
    .await?;
    let live = must_get(&ctx.client, &path).await?;
    let csa = managed_entry(&live, "kubectl-client-side-apply", "Update").with_context(|| {
        format!("{v}: client-side apply is recorded under kubectl-client-side-apply: {live}")
    })?;
    ensure!(
        owned_data_keys(csa) == ["color", "size"],
        "{v}: the client-side applier owns both keys: {csa}"
    );
    let out = k
        .ok_stdin(
            &["apply", "--server-side", "-n", &ns, "-f", "-"],
            &settings(&[("color", "blue")]),
        )
        .await?;
    ensure!(
        out.contains("configmap/settings serverside-applied"),
        "{v}: the server-side apply after client-side apply succeeds: {out:?}"
    );
    let live = must_get(&ctx.client, &path).await?;
    ensure!(
        string_map(&live, "/data") == map(&[("color", "blue")]),
        "{v}: color changed and size (no longer applied) removed: {live}"
    );
    ensure!(
        managed_entry(&live, "kubectl-client-side-apply", "Update")
            .is_none_or(|e| owned_data_keys(e).is_empty()),
        "{v}: the client-side applier no longer owns data: {live}"
    );
    let ssa = managed_entry(&live, "kubectl", "Apply")
        .with_context(|| format!("{v}: kubectl owns the fields by Apply now: {live}"))?;
    ensure!(
        owned_data_keys(ssa) == ["color"],
        "{v}: kubectl's Apply entry owns data.color: {ssa}"
    );
    Ok(())
}

/// What a new user does first: `kubectl apply -f config/crd/`, then the walkthrough's
/// examples, then the same again (nothing changes) and an edited manifest (it changes), all
/// with kubectl's default flags.
async fn walkthrough(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let k = &ctx.kubectl;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let crds = root.join("config/crd");
    let crds = crds.to_str().context("config/crd path")?;
    let lines = |out: &str, word: &str| out.lines().filter(|l| l.ends_with(word)).count();
    // The test hub installed them already (with server-side apply), so kubectl's first
    // client-side apply configures them; one made by hand would say created.
    let out = k.ok(&["apply", "-f", crds]).await?;
    let count = std::fs::read_dir(root.join("config/crd"))?.count();
    ensure!(
        lines(&out, " created") + lines(&out, " configured") == count,
        "{v}: every CRD is applied: {out}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=30s",
    ])
    .await?;
    let out = k.ok(&["apply", "-f", crds]).await?;
    ensure!(
        lines(&out, " unchanged") == count,
        "{v}: re-applying the same CRDs changes nothing: {out}"
    );
    // `kubectl apply -f examples/walkthrough/`, as the README says.
    let walkthrough = root.join("examples/walkthrough");
    let walkthrough = walkthrough.to_str().context("examples path")?;
    let out = k.ok(&["apply", "-f", walkthrough]).await?;
    ensure!(
        out.lines().count() >= 6 && out.lines().all(|l| l.ends_with(" created")),
        "{v}: the walkthrough is created: {out}"
    );
    let out = k.ok(&["apply", "-f", walkthrough]).await?;
    ensure!(
        out.lines().all(|l| l.ends_with(" unchanged")),
        "{v}: re-applying the walkthrough changes nothing: {out}"
    );
    let edited = std::fs::read_to_string(root.join("examples/walkthrough/10-nginx.yaml"))?
        .replace("replicas: 6", "replicas: 5");
    ensure!(
        edited.contains("replicas: 5"),
        "{v}: the example sets replicas: 6"
    );
    let out = k.ok_stdin(&["apply", "-f", "-"], &edited).await?;
    ensure!(
        out.contains("deployment.apps/nginx configured"),
        "{v}: the edited manifest is configured: {out}"
    );
    let live = must_get(
        &ctx.client,
        "/apis/apps/v1/namespaces/demo/deployments/nginx",
    )
    .await?;
    ensure!(
        at(&live, "/spec/replicas") == 5,
        "{v}: the edit reached the live object: {live}"
    );
    Ok(())
}

async fn diff(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("diff").await?;
    let k = &ctx.kubectl;
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &web(2, "nginx:1.25", true, true),
    )
    .await?;

    let same = k
        .run_stdin(
            &["diff", "-n", &ns, "-f", "-"],
            &web(2, "nginx:1.25", true, true),
        )
        .await?;
    ensure!(
        same.code == 0 && same.stdout.trim().is_empty(),
        "{v}: diff of the applied manifest is empty with exit 0: {same}"
    );

    let changed = k
        .run_stdin(
            &["diff", "-n", &ns, "-f", "-"],
            &web(5, "nginx:1.25", true, true),
        )
        .await?;
    ensure!(
        changed.code == 1,
        "{v}: diff of a change exits 1: {changed}"
    );
    let lines: Vec<&str> = changed.stdout.lines().collect();
    ensure!(
        lines.contains(&"-  replicas: 2") && lines.contains(&"+  replicas: 5"),
        "{v}: diff shows replicas 2 -> 5: {changed}"
    );
    ensure!(
        !lines
            .iter()
            .any(|l| l.contains("image:") && (l.starts_with('+') || l.starts_with('-'))),
        "{v}: diff shows only what changed: {changed}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        at(&live, "/spec/replicas") == 2 && at(&live, "/metadata/generation") == 1,
        "{v}: diff is a dry run and must not change the object: {live}"
    );
    Ok(())
}

async fn edit(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("edit").await?;
    let k = &ctx.kubectl;
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &web(2, "nginx:1.25", true, true),
    )
    .await?;
    let editor = k.home.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nset -e\ngrep -q 'image: nginx:1.25' \"$1\"\nsed -i -e 's/image: nginx:1.25/image: nginx:1.27/' -e 's/replicas: 2/replicas: 4/' \"$1\"\n",
    )?;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755))?;
    let editor = editor.display().to_string();
    let out = k
        .run_with(
            &["edit", "-n", &ns, "deployment/web"],
            &[("EDITOR", &editor), ("KUBE_EDITOR", &editor)],
            None,
        )
        .await?;
    ensure!(
        out.code == 0 && out.stdout.contains("deployment.apps/web edited"),
        "{v}: edit: {out}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:1.27"), ("sidecar", "busybox:1.36")]),
        "{v}: containers after edit: {:?}",
        containers(&live)
    );
    ensure!(
        at(&live, "/spec/replicas") == 4,
        "{v}: replicas after edit: {live}"
    );
    ensure!(
        env(&live, "app") == pairs(&[("A", "1"), ("B", "2")]),
        "{v}: env untouched by edit: {:?}",
        env(&live, "app")
    );
    Ok(())
}

async fn patch(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("patch").await?;
    let k = &ctx.kubectl;
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &web(2, "nginx:1.25", true, true),
    )
    .await?;

    // Strategic merge (the default for built-in kinds): containers merge by name.
    let out = k
        .ok(&[
            "patch",
            "-n",
            &ns,
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:3"}]}}}}"#,
        ])
        .await?;
    ensure!(
        out.contains("deployment.apps/web patched"),
        "{v}: patch: {out:?}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:3"), ("sidecar", "busybox:1.36")]),
        "{v}: a strategic patch merges containers by name: {:?}",
        containers(&live)
    );
    ensure!(
        env(&live, "app") == pairs(&[("A", "1"), ("B", "2")]),
        "{v}: a strategic patch keeps the container's other fields: {:?}",
        env(&live, "app")
    );
    // The $patch: delete directive removes one list element by its merge key.
    k.ok(&[
        "patch",
        "-n",
        &ns,
        "deployment",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"B","$patch":"delete"}]}]}}}}"#,
    ])
    .await?;
    let live = ctx.deployment(&ns).await?;
    ensure!(
        env(&live, "app") == pairs(&[("A", "1")]),
        "{v}: $patch: delete removes env B only: {:?}",
        env(&live, "app")
    );

    // JSON merge patch: null deletes a key; a list is replaced whole.
    k.ok(&[
        "patch",
        "-n",
        &ns,
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":null,"team":"blue"}}}"#,
    ])
    .await?;
    let live = ctx.deployment(&ns).await?;
    ensure!(
        string_map(&live, "/metadata/labels") == map(&[("app", "web"), ("team", "blue")]),
        "{v}: merge patch labels: {}",
        at(&live, "/metadata/labels")
    );
    k.ok(&[
        "patch",
        "-n",
        &ns,
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:4"}]}}}}"#,
    ])
    .await?;
    let live = ctx.deployment(&ns).await?;
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:4")]),
        "{v}: a merge patch replaces the containers list: {:?}",
        containers(&live)
    );
    ensure!(
        at(&live, "/spec/template/spec/containers/0/imagePullPolicy") == "IfNotPresent",
        "{v}: the replaced container is defaulted again: {live}"
    );

    // JSON patch: operations in order.
    k.ok(&[
        "patch",
        "-n",
        &ns,
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels/j","value":"x"},{"op":"remove","path":"/metadata/labels/team"}]"#,
    ])
    .await?;
    let live = ctx.deployment(&ns).await?;
    ensure!(
        at(&live, "/spec/replicas") == 4,
        "{v}: json patch replicas: {live}"
    );
    ensure!(
        string_map(&live, "/metadata/labels") == map(&[("app", "web"), ("j", "x")]),
        "{v}: json patch labels: {}",
        at(&live, "/metadata/labels")
    );
    // A failing test operation applies nothing.
    let out = k
        .run(&[
            "patch",
            "-n",
            &ns,
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":7},{"op":"test","path":"/spec/replicas","value":9}]"#,
        ])
        .await?;
    ensure!(
        out.code != 0,
        "{v}: a failing json patch test op must fail: {out}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        at(&live, "/spec/replicas") == 4,
        "{v}: a failed json patch changes nothing: {live}"
    );
    Ok(())
}

async fn set_image(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("setimage").await?;
    let k = &ctx.kubectl;
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &web(2, "nginx:1.25", true, true),
    )
    .await?;
    let out = k
        .ok(&["set", "image", "-n", &ns, "deployment/web", "app=nginx:2"])
        .await?;
    ensure!(
        out.contains("deployment.apps/web image updated"),
        "{v}: set image: {out:?}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:2"), ("sidecar", "busybox:1.36")]),
        "{v}: set image changes only app: {:?}",
        containers(&live)
    );
    ensure!(
        env(&live, "app") == pairs(&[("A", "1"), ("B", "2")]),
        "{v}: set image keeps env: {:?}",
        env(&live, "app")
    );
    Ok(())
}

/// Whether `s` looks like an RFC 3339 timestamp (`2026-01-02T03:04:05Z` or with an offset).
fn rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

async fn rollout_restart(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("restart").await?;
    let k = &ctx.kubectl;
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &web(2, "nginx:1.25", true, true),
    )
    .await?;
    let out = k
        .ok(&["rollout", "restart", "-n", &ns, "deployment/web"])
        .await?;
    ensure!(
        out.contains("deployment.apps/web restarted"),
        "{v}: rollout restart: {out:?}"
    );
    let live = ctx.deployment(&ns).await?;
    let annotations = string_map(&live, "/spec/template/metadata/annotations");
    let restarted = annotations
        .get("kubectl.kubernetes.io/restartedAt")
        .with_context(|| format!("{v}: no restartedAt annotation on the template: {live}"))?;
    ensure!(
        rfc3339(restarted),
        "{v}: restartedAt is an RFC 3339 time: {restarted:?}"
    );
    ensure!(
        at(&live, "/metadata/generation") == 2,
        "{v}: a template change bumps the generation: {live}"
    );
    ensure!(
        containers(&live) == pairs(&[("app", "nginx:1.25"), ("sidecar", "busybox:1.36")]),
        "{v}: restart keeps the containers: {:?}",
        containers(&live)
    );
    Ok(())
}

async fn explain(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let k = &ctx.kubectl;
    let out = k.ok(&["explain", "deployment.spec.replicas"]).await?;
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "GROUP: apps",
        "KIND: Deployment",
        "VERSION: v1",
        "FIELD: replicas <integer>",
        "Number of desired pods. This is a pointer to distinguish between explicit zero and not specified. Defaults to 1.",
    ] {
        ensure!(
            words.contains(want),
            "{v}: explain deployment.spec.replicas shows {want:?}:\n{out}"
        );
    }
    let out = k.ok(&["explain", "deployment.spec"]).await?;
    for field in [
        "replicas\t<integer>",
        "selector\t<LabelSelector> -required-",
        "template\t<PodTemplateSpec> -required-",
    ] {
        ensure!(
            out.lines().any(|l| l.trim() == field),
            "{v}: explain deployment.spec lists {field:?}:\n{out}"
        );
    }
    // A CRD's schema, from its openAPIV3Schema.
    let out = k.ok(&["explain", "clusters.spec.apiEndpoint"]).await?;
    let words = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "GROUP: cluster.flotilla.io",
        "KIND: Cluster",
        "FIELD: apiEndpoint <string>",
        "The URL of the member's Kubernetes API server. Required for Push clusters.",
    ] {
        ensure!(
            words.contains(want),
            "{v}: explain clusters.spec.apiEndpoint shows {want:?}:\n{out}"
        );
    }
    Ok(())
}

async fn validation(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("validate").await?;
    let k = &ctx.kubectl;
    let typo = |name: &str| {
        web(2, "nginx:1.25", true, true)
            .replace("name: web\n", &format!("name: {name}\n"))
            .replace("  replicas: 2", "  replcas: 2")
    };

    // Strict (kubectl's default): refused on create, with kube's message.
    let out = k
        .run_stdin(&["apply", "-n", &ns, "-f", "-"], &typo("web"))
        .await?;
    ensure!(out.code != 0, "{v}: a typo'd field must be refused: {out}");
    ensure!(
        out.stderr
            .contains("strict decoding error: unknown field \"spec.replcas\""),
        "{v}: the refusal names the field: {out}"
    );
    ensure!(
        get_json(&ctx.client, &deployment_path(&ns, "web"))
            .await?
            .is_none(),
        "{v}: a refused create stores nothing"
    );

    // Strict on an update (a PATCH): refused, the live object unchanged.
    k.ok_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        &web(2, "nginx:1.25", true, true),
    )
    .await?;
    let out = k
        .run_stdin(
            &["apply", "-n", &ns, "-f", "-"],
            &typo("web").replace("nginx:1.25", "nginx:9"),
        )
        .await?;
    ensure!(
        out.code != 0 && out.stderr.contains("unknown field \"spec.replcas\""),
        "{v}: a typo'd field in an update must be refused: {out}"
    );
    let live = ctx.deployment(&ns).await?;
    ensure!(
        containers(&live)[0].1 == "nginx:1.25" && at(&live, "/spec/replicas") == 2,
        "{v}: a refused update changes nothing: {live}"
    );

    // Warn: stored without the field, with a warning.
    let out = k
        .run_stdin(
            &["apply", "--validate=warn", "-n", &ns, "-f", "-"],
            &typo("warned"),
        )
        .await?;
    ensure!(
        out.code == 0
            && out
                .stderr
                .contains("Warning: unknown field \"spec.replcas\""),
        "{v}: --validate=warn stores it and warns: {out}"
    );
    let live = must_get(&ctx.client, &deployment_path(&ns, "warned")).await?;
    ensure!(
        at(&live, "/spec/replcas").is_null() && at(&live, "/spec/replicas") == 1,
        "{v}: the unknown field is dropped and replicas defaulted to 1: {live}"
    );

    // Ignore: stored silently.
    let out = k
        .run_stdin(
            &["apply", "--validate=false", "-n", &ns, "-f", "-"],
            &typo("ignored"),
        )
        .await?;
    ensure!(
        out.code == 0 && !out.stderr.contains("unknown field"),
        "{v}: --validate=false stores it without a warning: {out}"
    );
    let live = must_get(&ctx.client, &deployment_path(&ns, "ignored")).await?;
    ensure!(
        at(&live, "/spec/replcas").is_null() && at(&live, "/spec/replicas") == 1,
        "{v}: ignored: {live}"
    );
    Ok(())
}

/// Every `kubectl create` generator (kubectl 1.33 and later send their bodies as protobuf): what each created is read back as JSON and checked field by field,
/// including a zero that must stay (`--replicas=0`) and int-or-string values both ways.
async fn create_generators(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("create").await?;
    let k = &ctx.kubectl;
    let c = &ctx.client;
    let slug = &ctx.slug;
    let n = |args: &[&str]| {
        let mut all = vec!["-n", ns.as_str(), "create"];
        all.extend_from_slice(args);
        all.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        k.ok(&refs).await
    };
    run(n(&[
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=0",
        "--port=80",
    ]))
    .await?;
    let d = must_get(c, &deployment_path(&ns, "web")).await?;
    ensure!(
        at(&d, "/spec/replicas") == 0
            && at(&d, "/spec/template/spec/containers/0/image") == "nginx:1"
            && at(&d, "/spec/template/spec/containers/0/ports/0/containerPort") == 80
            && at(&d, "/spec/selector/matchLabels/app") == "web"
            && at(&d, "/spec/strategy/type") == "RollingUpdate",
        "{v}: create deployment: {d}"
    );
    run(n(&["job", "once", "--image=busybox", "--", "echo", "hi"])).await?;
    let j = must_get(c, &format!("/apis/batch/v1/namespaces/{ns}/jobs/once")).await?;
    ensure!(
        at(&j, "/spec/template/spec/containers/0/command") == &serde_json::json!(["echo", "hi"])
            && at(&j, "/spec/template/spec/restartPolicy") == "Never",
        "{v}: create job: {j}"
    );
    run(n(&[
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]))
    .await?;
    let cj = must_get(c, &format!("/apis/batch/v1/namespaces/{ns}/cronjobs/tick")).await?;
    ensure!(
        at(&cj, "/spec/schedule") == "*/5 * * * *",
        "{v}: create cronjob: {cj}"
    );
    run(n(&["ingress", "front", "--rule=foo.example/bar=svc1:8080"])).await?;
    let ing = must_get(
        c,
        &format!("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/front"),
    )
    .await?;
    ensure!(
        at(&ing, "/spec/rules/0/host") == "foo.example"
            && at(&ing, "/spec/rules/0/http/paths/0/path") == "/bar"
            && at(
                &ing,
                "/spec/rules/0/http/paths/0/backend/service/port/number"
            ) == 8080,
        "{v}: create ingress: {ing}"
    );
    run(n(&["service", "clusterip", "s1", "--tcp=80:8080"])).await?;
    let s1 = must_get(c, &format!("/api/v1/namespaces/{ns}/services/s1")).await?;
    ensure!(
        at(&s1, "/spec/ports/0/port") == 80
            && at(&s1, "/spec/ports/0/targetPort") == 8080
            && at(&s1, "/spec/clusterIP")
                .as_str()
                .is_some_and(|ip| !ip.is_empty()),
        "{v}: create service clusterip: {s1}"
    );
    run(n(&["service", "nodeport", "s2", "--tcp=80:http"])).await?;
    let s2 = must_get(c, &format!("/api/v1/namespaces/{ns}/services/s2")).await?;
    ensure!(
        at(&s2, "/spec/type") == "NodePort"
            && at(&s2, "/spec/ports/0/targetPort") == "http"
            && at(&s2, "/spec/ports/0/nodePort")
                .as_i64()
                .is_some_and(|p| (30000..=32767).contains(&p)),
        "{v}: create service nodeport: {s2}"
    );
    run(n(&["service", "loadbalancer", "s3", "--tcp=443"])).await?;
    let s3 = must_get(c, &format!("/api/v1/namespaces/{ns}/services/s3")).await?;
    ensure!(
        at(&s3, "/spec/type") == "LoadBalancer",
        "{v}: create service loadbalancer: {s3}"
    );
    run(n(&[
        "service",
        "externalname",
        "s4",
        "--external-name=db.example",
    ]))
    .await?;
    let s4 = must_get(c, &format!("/api/v1/namespaces/{ns}/services/s4")).await?;
    ensure!(
        at(&s4, "/spec/type") == "ExternalName" && at(&s4, "/spec/externalName") == "db.example",
        "{v}: create service externalname: {s4}"
    );
    run(n(&[
        "poddisruptionbudget",
        "pdb",
        "--selector=app=web",
        "--min-available=50%",
    ]))
    .await?;
    let pdb = must_get(
        c,
        &format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/pdb"),
    )
    .await?;
    ensure!(
        at(&pdb, "/spec/minAvailable") == "50%"
            && at(&pdb, "/spec/selector/matchLabels/app") == "web",
        "{v}: create poddisruptionbudget: {pdb}"
    );
    run(n(&["quota", "q", "--hard=cpu=1,pods=10"])).await?;
    let q = must_get(c, &format!("/api/v1/namespaces/{ns}/resourcequotas/q")).await?;
    ensure!(
        at(&q, "/spec/hard/cpu") == "1" && at(&q, "/spec/hard/pods") == "10",
        "{v}: create quota: {q}"
    );
    run(n(&[
        "secret",
        "docker-registry",
        "reg",
        "--docker-server=r.example",
        "--docker-username=u",
        "--docker-password=p",
    ]))
    .await?;
    let reg = must_get(c, &format!("/api/v1/namespaces/{ns}/secrets/reg")).await?;
    ensure!(
        at(&reg, "/type") == "kubernetes.io/dockerconfigjson"
            && at(&reg, "/data/.dockerconfigjson")
                .as_str()
                .is_some_and(|d| !d.is_empty()),
        "{v}: create secret docker-registry: {reg}"
    );
    // A TLS Secret from a key pair made for the test.
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=t",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    ensure!(made.status.success(), "openssl: {made:?}");
    run(n(&[
        "secret",
        "tls",
        "tls",
        &format!("--cert={}", cert.display()),
        &format!("--key={}", key.display()),
    ]))
    .await?;
    let tls = must_get(c, &format!("/api/v1/namespaces/{ns}/secrets/tls")).await?;
    ensure!(
        at(&tls, "/type") == "kubernetes.io/tls"
            && at(&tls, "/data/tls.crt")
                .as_str()
                .is_some_and(|d| !d.is_empty())
            && at(&tls, "/data/tls.key")
                .as_str()
                .is_some_and(|d| !d.is_empty()),
        "{v}: create secret tls: {tls}"
    );
    run(n(&["configmap", "cfg", "--from-literal=a=1"])).await?;
    run(n(&["serviceaccount", "robot"])).await?;
    run(n(&["role", "reader", "--verb=get,list", "--resource=pods"])).await?;
    run(n(&[
        "rolebinding",
        "reader",
        "--role=reader",
        "--serviceaccount",
        &format!("{ns}:robot"),
    ]))
    .await?;
    let rb = must_get(
        c,
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/reader"),
    )
    .await?;
    ensure!(
        at(&rb, "/roleRef/name") == "reader" && at(&rb, "/subjects/0/name") == "robot",
        "{v}: create rolebinding: {rb}"
    );
    let pc = format!("{slug}-high");
    let cr = format!("{slug}-node-reader");
    k.ok(&[
        "create",
        "priorityclass",
        &pc,
        "--value=1000",
        "--description=important",
    ])
    .await?;
    let pcv = must_get(
        c,
        &format!("/apis/scheduling.k8s.io/v1/priorityclasses/{pc}"),
    )
    .await?;
    ensure!(
        at(&pcv, "/value") == 1000 && at(&pcv, "/description") == "important",
        "{v}: create priorityclass: {pcv}"
    );
    k.ok(&[
        "create",
        "clusterrole",
        &cr,
        "--verb=get",
        "--resource=nodes",
    ])
    .await?;
    k.ok(&[
        "create",
        "clusterrolebinding",
        &cr,
        &format!("--clusterrole={cr}"),
        "--group=ops",
    ])
    .await?;
    let crb = must_get(
        c,
        &format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{cr}"),
    )
    .await?;
    ensure!(
        at(&crb, "/subjects/0/name") == "ops",
        "{v}: create clusterrolebinding: {crb}"
    );
    k.ok(&["create", "namespace", &format!("{slug}-made")])
        .await?;
    k.ok(&[
        "delete",
        "namespace",
        &format!("{slug}-made"),
        "--wait=false",
    ])
    .await?;
    Ok(())
}

/// `kubectl delete --cascade=background|foreground|orphan` of an owner with dependents, and
/// `kubectl wait --for=delete` for what the garbage collector removes.
async fn delete_cascade(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("cascade").await?;
    let k = &ctx.kubectl;
    let c = &ctx.client;
    let owned = |owner: &Value, name: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": name, "namespace": ns,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "blockOwnerDeletion": true}]}})
        .to_string()
    };
    for cascade in ["background", "foreground", "orphan"] {
        let owner_name = format!("owner-{cascade}");
        let dep_name = format!("dep-{cascade}");
        k.ok(&["-n", &ns, "create", "configmap", &owner_name])
            .await?;
        let owner = must_get(c, &configmap_path(&ns, &owner_name)).await?;
        k.ok_stdin(&["apply", "-f", "-"], &owned(&owner, &dep_name))
            .await?;
        k.ok(&[
            "-n",
            &ns,
            "delete",
            "configmap",
            &owner_name,
            &format!("--cascade={cascade}"),
        ])
        .await?;
        // kubectl waits for the owner to go; a foreground deletion has removed its blocking
        // dependent by then.
        ensure!(
            get_json(c, &configmap_path(&ns, &owner_name))
                .await?
                .is_none(),
            "{v}: --cascade={cascade}: the owner is gone when delete returns"
        );
        let dep = get_json(c, &configmap_path(&ns, &dep_name)).await?;
        match cascade {
            "foreground" => ensure!(
                dep.is_none(),
                "{v}: --cascade=foreground: the dependent went first: {dep:?}"
            ),
            "orphan" => {
                let dep =
                    dep.with_context(|| format!("{v}: --cascade=orphan keeps the dependent"))?;
                ensure!(
                    dep["metadata"]["ownerReferences"].is_null(),
                    "{v}: --cascade=orphan removes the reference: {dep}"
                );
            }
            _ => {
                k.ok(&[
                    "-n",
                    &ns,
                    "wait",
                    "--for=delete",
                    &format!("configmap/{dep_name}"),
                    "--timeout=60s",
                ])
                .await?;
            }
        }
    }
    Ok(())
}

/// The columns people read: `get -o wide` of a Deployment, a Service and a Pod, `get all`
/// naming what the namespace holds, and `api-resources` listing the groups users expect.
async fn get_wide_all_and_api_resources(ctx: &Ctx) -> Result<()> {
    let v = ctx.v();
    let ns = ctx.namespace("get").await?;
    let k = &ctx.kubectl;
    k.ok(&[
        "-n",
        &ns,
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
    ])
    .await?;
    k.ok(&[
        "-n",
        &ns,
        "create",
        "service",
        "clusterip",
        "web",
        "--tcp=80:8080",
    ])
    .await?;
    k.ok(&[
        "-n",
        &ns,
        "run",
        "solo",
        "--image=busybox:1",
        "--restart=Never",
    ])
    .await?;
    let words = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let table = |out: &str| out.lines().map(words).collect::<Vec<_>>();

    let deploy = table(
        &k.ok(&["-n", &ns, "get", "deployment", "-o", "wide"])
            .await?,
    );
    ensure!(
        deploy.first().map(|h| h.join(" ")).as_deref()
            == Some("NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"),
        "{v}: deployment columns: {deploy:?}"
    );
    let row = deploy.get(1).cloned().unwrap_or_default();
    ensure!(
        row.first().map(String::as_str) == Some("web")
            && row.get(1).map(String::as_str) == Some("0/2")
            && row.ends_with(&[
                "nginx".to_string(),
                "nginx:1".to_string(),
                "app=web".to_string()
            ]),
        "{v}: the deployment row: {row:?}"
    );
    let svc = table(&k.ok(&["-n", &ns, "get", "service", "-o", "wide"]).await?);
    ensure!(
        svc.first().map(|h| h.join(" ")).as_deref()
            == Some("NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"),
        "{v}: service columns: {svc:?}"
    );
    let row = svc.get(1).cloned().unwrap_or_default();
    ensure!(
        row.get(1).map(String::as_str) == Some("ClusterIP")
            && row.get(3).map(String::as_str) == Some("<none>")
            && row.get(4).map(String::as_str) == Some("80/TCP")
            && row.last().map(String::as_str) == Some("app=web"),
        "{v}: the service row: {row:?}"
    );
    let pods = table(
        &k.ok(&["-n", &ns, "get", "pod", "solo", "-o", "wide"])
            .await?,
    );
    ensure!(
        pods.first().map(|h| h.join(" ")).as_deref()
            == Some("NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"),
        "{v}: pod columns: {pods:?}"
    );
    let row = pods.get(1).cloned().unwrap_or_default();
    ensure!(
        row.get(..4).map(|r| r.join(" ")).as_deref() == Some("solo 0/1 Pending 0"),
        "{v}: the pod row: {row:?}"
    );

    let all = k.ok(&["-n", &ns, "get", "all"]).await?;
    for name in ["pod/solo", "service/web", "deployment.apps/web"] {
        ensure!(
            all.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{v}: get all lists {name}: {all}"
        );
    }
    let resources = table(&k.ok(&["api-resources"]).await?);
    for (name, short, api_version) in [
        ("pods", "po", "v1"),
        ("horizontalpodautoscalers", "hpa", "autoscaling/v2"),
        ("poddisruptionbudgets", "pdb", "policy/v1"),
        ("storageclasses", "sc", "storage.k8s.io/v1"),
        ("priorityclasses", "pc", "scheduling.k8s.io/v1"),
        ("persistentvolumes", "pv", "v1"),
    ] {
        ensure!(
            resources
                .iter()
                .any(|r| r.get(..3).is_some_and(|r| r == [name, short, api_version])),
            "{v}: api-resources lists {name} ({short}, {api_version})"
        );
    }
    for (name, api_version) in [
        ("endpointslices", "discovery.k8s.io/v1"),
        ("runtimeclasses", "node.k8s.io/v1"),
        ("csidrivers", "storage.k8s.io/v1"),
    ] {
        ensure!(
            resources
                .iter()
                .any(|r| r.get(..2).is_some_and(|r| r == [name, api_version])),
            "{v}: api-resources lists {name} ({api_version})"
        );
    }
    Ok(())
}
