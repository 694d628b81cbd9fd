//! The README's walkthrough through the real binary, as a new user runs it: `flotilla up` as a
//! child process, kubectl 1.33 against the kubeconfig it writes, `kubectl apply -f
//! examples/walkthrough/`, the hub Deployment reading 6/6 ready once the simulated members run
//! their replicas, the override in one region (also through `flotilla get`), a member reached
//! through `flotilla kubeconfig`, the GitRepo walkthrough (a repository followed, pruned,
//! placed and deleted), a ctrl-c and a restart on the same data dir
//! keeping everything, a deletion leaving the members, and another cluster (a `flotilla
//! apiserver`) joining with `flotilla join` and leaving with `flotilla unjoin`. Skipped with a message when kubectl
//! 1.33 is missing.

#[path = "support/clients.rs"]
mod clients;
#[path = "support/up_process.rs"]
mod up_process;

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context as _, Result, ensure};
use clients::ClientProcess;
use flotilla_testing::{eventually, git::git};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};
use up_process::{Up, run_flotilla};

use up_process::START;
const SETTLE: Duration = Duration::from_secs(60);

/// Runs the flotilla binary with `args` and then `kubeconfig`; its stdout, or an error with
/// its stderr.
async fn flotilla(args: &[&str], kubeconfig: &Path) -> Result<String> {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.push(kubeconfig.as_os_str());
    run_flotilla(&all, None).await
}

/// Runs the flotilla binary with `args`, the hub taken from KUBECONFIG as a user's shell has
/// it.
async fn flotilla_with_hub(args: &[&str], hub_kubeconfig: &Path) -> Result<String> {
    let all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    run_flotilla(&all, Some(hub_kubeconfig)).await
}

/// `flotilla apiserver` on a free port, as another cluster to join; waits until it has written
/// its kubeconfig.
async fn extra_cluster(data_dir: &Path) -> Result<Child> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["apiserver", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting flotilla apiserver")?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(START, async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("kubeconfig:") {
                return anyhow::Ok(());
            }
        }
        anyhow::bail!("flotilla apiserver exited before writing its kubeconfig")
    })
    .await
    .context("flotilla apiserver starts")??;
    Ok(child)
}

/// `.status.readyReplicas` etc. through kubectl's jsonpath.
async fn jsonpath(kubectl: &ClientProcess, args: &[&str], path: &str) -> Result<String> {
    let jsonpath = format!("jsonpath={path}");
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", &jsonpath]);
    kubectl.ok(&all).await
}

async fn hub_ready(kubectl: &ClientProcess) -> Result<()> {
    eventually(SETTLE, "the hub Deployment reads 6/6 ready", || async {
        let ready = jsonpath(
            kubectl,
            &["-n", "demo", "get", "deployment", "nginx"],
            "{.status.readyReplicas}/{.status.replicas}",
        )
        .await?;
        Ok((ready == "6/6").then_some(()))
    })
    .await
}

/// Each member's nginx: replicas, ready replicas and image.
async fn members_run_their_share(kubectl: &ClientProcess) -> Result<()> {
    for member in ["member1", "member2", "member3"] {
        let image = if member == "member2" {
            "mirror.local-west.example.com/library/nginx:1.27"
        } else {
            "docker.io/library/nginx:1.27"
        };
        let want = format!("2 2 {image}");
        eventually(SETTLE, &format!("{member} runs 2 of nginx"), || async {
            let got = jsonpath(
                kubectl,
                &["--context", member, "-n", "demo", "get", "deployment", "nginx"],
                "{.spec.replicas} {.status.readyReplicas} {.spec.template.spec.containers[0].image}",
            )
            .await?;
            Ok((got == want).then_some(()))
        })
        .await?;
        kubectl
            .ok(&[
                "--context",
                member,
                "-n",
                "demo",
                "get",
                "configmap",
                "app-config",
            ])
            .await?;
    }
    Ok(())
}

/// Waits until `member` has no Deployments in `namespace`.
async fn no_deployments(kubectl: &ClientProcess, member: &str, namespace: &str) -> Result<()> {
    let what = format!("no Deployments left in {member}/{namespace}");
    eventually(SETTLE, &what, || async {
        let names = kubectl
            .ok(&[
                "--context",
                member,
                "-n",
                namespace,
                "get",
                "deployments",
                "-o",
                "name",
            ])
            .await?;
        Ok(names.trim().is_empty().then_some(()))
    })
    .await
}

/// The README's GitRepo walkthrough: a repository made from `examples/gitops/shop/`, the
/// example GitRepo pointed at it, the shop reaching member1 and member2 only, a commit
/// followed (scaled, a file pruned everywhere), hub drift put back, and the GitRepo deleted
/// taking what it applied with it.
async fn gitrepo_walkthrough(kubectl: &ClientProcess, dir: &Path) -> Result<()> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gitops");
    let shop = dir.join("shop");
    std::fs::create_dir_all(&shop)?;
    for file in std::fs::read_dir(examples.join("shop"))? {
        let file = file?;
        std::fs::copy(file.path(), shop.join(file.file_name()))?;
    }
    git(&shop, &["init", "-q", "-b", "main"])?;
    git(&shop, &["add", "."])?;
    git(&shop, &["commit", "-qm", "the shop"])?;
    let first = git(&shop, &["rev-parse", "HEAD"])?;
    let gitrepo = std::fs::read_to_string(examples.join("gitrepo.yaml"))?.replace(
        "file:///path/to/shop",
        &format!("file://{}", shop.display()),
    );
    kubectl.ok_stdin(&["apply", "-f", "-"], &gitrepo).await?;
    let revision = |want: String| async move {
        eventually(SETTLE, &format!("the GitRepo applies {want}"), || async {
            let got = jsonpath(
                kubectl,
                &["get", "gitrepo", "shop"],
                "{.status.lastAppliedRevision} {.status.conditions[?(@.type==\"Ready\")].status}",
            )
            .await?;
            Ok((got == format!("{want} True")).then_some(()))
        })
        .await
    };
    revision(first).await?;
    let table = kubectl.ok(&["get", "gitrepos"]).await?;
    ensure!(
        table.starts_with("NAME") && table.contains("REVISION") && table.contains("READY"),
        "{table}"
    );
    let runs = |member: &'static str, want: &'static str| async move {
        eventually(SETTLE, &format!("{member} runs {want} of web"), || async {
            let got = jsonpath(
                kubectl,
                &[
                    "--context",
                    member,
                    "-n",
                    "shop",
                    "get",
                    "deployment",
                    "web",
                ],
                "{.spec.replicas}/{.status.readyReplicas}",
            )
            .await?;
            Ok((got == want).then_some(()))
        })
        .await
    };
    runs("member1", "2/2").await?;
    runs("member2", "2/2").await?;
    eventually(SETTLE, "the GitRepo reports both members ready", || async {
        let got = jsonpath(
            kubectl,
            &["get", "gitrepo", "shop"],
            "{.status.propagation.clusters}",
        )
        .await?;
        Ok(
            (got == r#"[{"name":"member1","ready":"2/2"},{"name":"member2","ready":"2/2"}]"#)
                .then_some(()),
        )
    })
    .await?;
    let absent = kubectl
        .run(&[
            "--context",
            "member3",
            "-n",
            "shop",
            "get",
            "deployment",
            "web",
        ])
        .await?;
    ensure!(
        absent.stderr.contains("NotFound"),
        "member3 is not in the placement"
    );
    let policies = kubectl
        .ok(&["get", "clusterpropagationpolicies", "-o", "name"])
        .await?;
    ensure!(
        policies.contains("gitrepo-default-shop"),
        "the GitRepo owns its policy: {policies}"
    );

    // A commit: 4 replicas, web-config gone.
    let web = std::fs::read_to_string(shop.join("web.yaml"))?;
    std::fs::write(
        shop.join("web.yaml"),
        web.replace("replicas: 2", "replicas: 4"),
    )?;
    git(&shop, &["rm", "-q", "web-config.yaml"])?;
    git(&shop, &["commit", "-qam", "4 replicas, no config"])?;
    revision(git(&shop, &["rev-parse", "HEAD"])?).await?;
    runs("member1", "4/4").await?;
    runs("member2", "4/4").await?;
    for context in ["flotilla-hub", "member2"] {
        eventually(SETTLE, &format!("web-config leaves {context}"), || async {
            let got = kubectl
                .run(&[
                    "--context",
                    context,
                    "-n",
                    "shop",
                    "get",
                    "configmap",
                    "web-config",
                ])
                .await?;
            Ok(got.stderr.contains("NotFound").then_some(()))
        })
        .await?;
    }
    // Drift on the hub is put back.
    kubectl
        .ok(&[
            "-n",
            "shop",
            "scale",
            "deployment",
            "web",
            "--replicas",
            "1",
        ])
        .await?;
    eventually(SETTLE, "the hub's web is put back to 4", || async {
        let got = jsonpath(
            kubectl,
            &["get", "gitrepo", "shop"],
            "{.status.driftCorrections}",
        )
        .await?;
        let replicas = jsonpath(
            kubectl,
            &["-n", "shop", "get", "deployment", "web"],
            "{.spec.replicas}",
        )
        .await?;
        Ok((got == "1" && replicas == "4").then_some(()))
    })
    .await?;

    kubectl.ok(&["delete", "gitrepo", "shop"]).await?;
    no_deployments(kubectl, "member1", "shop").await?;
    let policies = kubectl
        .ok(&["get", "clusterpropagationpolicies", "-o", "name"])
        .await?;
    ensure!(policies.trim().is_empty(), "its policy is gone: {policies}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_walkthrough_works_through_the_binary() -> Result<()> {
    let bin = match clients::kubectl_binary("1.33") {
        Ok(bin) => bin,
        Err(why) => {
            println!("SKIPPED: kubectl 1.33: {why}");
            return Ok(());
        }
    };
    let dir = tempfile::Builder::new().prefix("flotilla-up-").tempdir()?;
    let data_dir = dir.path().join("data");
    let walkthrough = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/walkthrough");
    let walkthrough = walkthrough.to_str().context("examples path")?;

    let up = Up::start_with(&data_dir, &[]).await?;
    let kubectl = ClientProcess::new("kubectl 1.33", bin.clone(), &data_dir.join("kubeconfig"))?;
    let contexts = kubectl
        .ok(&["config", "get-contexts", "-o", "name"])
        .await?;
    let mut contexts: Vec<&str> = contexts.lines().collect();
    contexts.sort();
    ensure!(
        contexts == ["flotilla-hub", "member1", "member2", "member3"],
        "contexts: {contexts:?}"
    );
    let current = kubectl.ok(&["config", "current-context"]).await?;
    ensure!(
        current.trim() == "flotilla-hub",
        "current context {current}"
    );
    let clusters = kubectl.ok(&["get", "clusters", "-o", "name"]).await?;
    ensure!(clusters.lines().count() == 3, "three members: {clusters}");

    let applied = kubectl.ok(&["apply", "-f", walkthrough]).await?;
    ensure!(
        applied.lines().all(|l| l.ends_with(" created")),
        "the walkthrough is created: {applied}"
    );
    hub_ready(&kubectl).await?;
    members_run_their_share(&kubectl).await?;
    for member in ["member1", "member2", "member3"] {
        kubectl
            .ok(&["--context", member, "get", "namespace", "demo"])
            .await?;
    }
    // `flotilla get` shows every member's copy, the override in member2's row.
    let kubeconfig = data_dir.join("kubeconfig");
    let get = flotilla(
        &[
            "get",
            "deployment",
            "-n",
            "demo",
            "-o",
            "wide",
            "--kubeconfig",
        ],
        &kubeconfig,
    )
    .await?;
    let rows: Vec<&str> = get.lines().collect();
    ensure!(rows.len() == 4 && rows[0].ends_with("CLUSTER"), "{get}");
    for (row, member) in rows[1..].iter().zip(["member1", "member2", "member3"]) {
        ensure!(row.starts_with("nginx ") && row.ends_with(member), "{get}");
        ensure!(
            row.contains("mirror.local-west.example.com") == (member == "member2"),
            "{get}"
        );
    }
    // `flotilla kubeconfig member3` reaches member3 on its own.
    let member3 = dir.path().join("member3.kubeconfig");
    std::fs::write(
        &member3,
        flotilla(&["kubeconfig", "member3", "--kubeconfig"], &kubeconfig).await?,
    )?;
    let bin_for_extra = bin.clone();
    let alone = ClientProcess::new("kubectl 1.33", bin, &member3)?;
    let replicas = jsonpath(
        &alone,
        &["-n", "demo", "get", "deployment", "nginx"],
        "{.spec.replicas}",
    )
    .await?;
    ensure!(
        replicas == "2",
        "member3 through its own kubeconfig: {replicas}"
    );

    gitrepo_walkthrough(&kubectl, dir.path()).await?;

    let stderr = up.stderr.lock().await.clone();
    ensure!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "a normal start and walkthrough print no warnings: {stderr}"
    );

    // ctrl-c and again on the same data dir: everything is still there and still ready.
    let first = up.interrupt().await?;
    ensure!(first.contains("Creating 3 member clusters"), "{first}");
    let up = Up::start_with(&data_dir, &[]).await?;
    let second = up.stdout.lock().await.clone();
    ensure!(second.contains("Resuming 3 member clusters"), "{second}");
    hub_ready(&kubectl).await?;
    members_run_their_share(&kubectl).await?;

    // Deleted on the hub: it leaves every member.
    kubectl
        .ok(&["-n", "demo", "delete", "deployment", "nginx"])
        .await?;
    for member in ["member1", "member2", "member3"] {
        no_deployments(&kubectl, member, "demo").await?;
    }

    // Another cluster joins with `flotilla join` (the hub from KUBECONFIG), receives the
    // fleet's namespace and ConfigMap, and leaves with `flotilla unjoin`, keeping them.
    let extra_dir = dir.path().join("extra");
    let _extra = extra_cluster(&extra_dir).await?;
    let extra_kubeconfig = extra_dir.join("kubeconfig");
    let extra_kubeconfig_arg = extra_kubeconfig.to_str().context("kubeconfig path")?;
    let joined = flotilla_with_hub(
        &[
            "join",
            "extra",
            "--kubeconfig",
            extra_kubeconfig_arg,
            "--region",
            "local-west",
        ],
        &kubeconfig,
    )
    .await?;
    ensure!(
        joined.contains("cluster extra joined the fleet")
            && joined.contains("ServiceAccount flotilla-hub/flotilla-hub"),
        "{joined}"
    );
    eventually(SETTLE, "extra Ready", || async {
        let ready = jsonpath(
            &kubectl,
            &["get", "cluster", "extra"],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        )
        .await?;
        Ok((ready == "True").then_some(()))
    })
    .await?;
    let extra = ClientProcess::new("kubectl 1.33", bin_for_extra, &extra_kubeconfig)?;
    eventually(SETTLE, "app-config reaches extra", || async {
        Ok(extra
            .ok(&["-n", "demo", "get", "configmap", "app-config", "-o", "name"])
            .await
            .ok())
    })
    .await?;
    let left = flotilla_with_hub(&["unjoin", "extra"], &kubeconfig).await?;
    ensure!(left.contains("cluster extra left the fleet"), "{left}");
    let clusters = kubectl.ok(&["get", "clusters", "-o", "name"]).await?;
    ensure!(clusters.lines().count() == 3, "extra is gone: {clusters}");
    let managed = jsonpath(
        &extra,
        &["-n", "demo", "get", "configmap", "app-config"],
        "{.metadata.labels.app\\.kubernetes\\.io/managed-by}",
    )
    .await?;
    ensure!(
        managed.is_empty(),
        "app-config stays in extra, released: {managed:?}"
    );

    up.interrupt().await?;
    Ok(())
}
