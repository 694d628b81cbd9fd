//! kubectl (the versioned 1.33 binary from the image, with a fresh HOME) against the embedded
//! API server: namespaces, configmaps and secrets (protobuf bodies), CRD apply and wait, CR
//! apply/get/-o json/-w/patch/delete. Skipped with a message when kubectl is not installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use flotilla_apiserver::{Config, Server};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::Command;

/// Where the image's kubectl package puts the versioned binaries (`dpkg -L kubectl`).
const KUBECTL_CANDIDATES: &[&str] = &[
    "/usr/lib/google-cloud-sdk/bin/kubectl.1.33",
    "/usr/bin/kubectl.1.33",
];

fn kubectl_binary() -> Option<PathBuf> {
    KUBECTL_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const CR: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: demo
spec:
  size: 1
"#;

struct Kubectl {
    bin: PathBuf,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/bin:/bin")
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Result<String> {
        let out = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .with_context(|| format!("kubectl {args:?} timed out"))??;
        if !out.status.success() {
            bail!(
                "kubectl {args:?} failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<String> {
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p.display().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_round_trip() -> Result<()> {
    let Some(bin) = kubectl_binary() else {
        eprintln!("SKIPPED: kubectl 1.33 is not installed (looked in {KUBECTL_CANDIDATES:?})");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    let server = Server::start(config).await?;
    let k = Kubectl {
        bin,
        home: tempfile::tempdir()?,
        kubeconfig: server.kubeconfig_path().to_path_buf(),
    };

    let v = k.run(&["version", "-o", "json"]).await?;
    assert!(v.contains("\"minor\": \"33\""), "{v}");
    assert!(
        k.run(&["create", "namespace", "demo"])
            .await?
            .contains("namespace/demo created")
    );
    let out = k
        .run(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "demo",
            "--from-literal=a=b",
        ])
        .await?;
    assert!(out.contains("configmap/cfg created"), "{out}");
    let out = k
        .run(&[
            "create",
            "secret",
            "generic",
            "sec",
            "-n",
            "demo",
            "--from-literal=p=q",
        ])
        .await?;
    assert!(out.contains("secret/sec created"), "{out}");
    for args in [
        vec!["create", "serviceaccount", "robot", "-n", "demo"],
        vec![
            "create",
            "role",
            "reader",
            "-n",
            "demo",
            "--verb=get,list",
            "--resource=configmaps",
        ],
        vec![
            "create",
            "rolebinding",
            "robot-reads",
            "-n",
            "demo",
            "--role=reader",
            "--serviceaccount=demo:robot",
        ],
        vec![
            "create",
            "clusterrole",
            "watcher",
            "--verb=watch",
            "--resource=pods",
        ],
        vec![
            "create",
            "clusterrolebinding",
            "robot-watches",
            "--clusterrole=watcher",
            "--serviceaccount=demo:robot",
        ],
    ] {
        let out = k.run(&args).await?;
        assert!(out.contains("created"), "{args:?}: {out}");
    }
    let rb = k
        .run(&[
            "get",
            "rolebinding",
            "robot-reads",
            "-n",
            "demo",
            "-o",
            "json",
        ])
        .await?;
    let rb: serde_json::Value = serde_json::from_str(&rb)?;
    assert_eq!(rb["roleRef"]["name"], "reader");
    assert_eq!(rb["subjects"][0]["name"], "robot");
    let role = k
        .run(&[
            "get",
            "role",
            "reader",
            "-n",
            "demo",
            "-o",
            "jsonpath={.rules[0].verbs}",
        ])
        .await?;
    assert_eq!(role.trim(), r#"["get","list"]"#);
    let sec = k
        .run(&[
            "get",
            "secret",
            "sec",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.p}",
        ])
        .await?;
    assert_eq!(sec.trim(), "cQ==");

    let crd = write(dir.path(), "crd.yaml", CRD)?;
    let cr = write(dir.path(), "cr.yaml", CR)?;
    let out = k.run(&["apply", "--validate=false", "-f", &crd]).await?;
    assert!(out.contains("created"), "{out}");
    let out = k
        .run(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=30s",
        ])
        .await?;
    assert!(out.contains("condition met"), "{out}");
    let out = k.run(&["apply", "--validate=false", "-f", &cr]).await?;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let out = k.run(&["apply", "--validate=false", "-f", &cr]).await?;
    assert!(out.contains("unchanged"), "{out}");
    std::fs::write(&cr, CR.replace("size: 1", "size: 2"))?;
    let out = k.run(&["apply", "--validate=false", "-f", &cr]).await?;
    assert!(out.contains("configured"), "{out}");

    // Default (strict) client validation works too: /openapi/v3 advertises fieldValidation.
    let cr2 = write(dir.path(), "cr2.yaml", &CR.replace("name: w1", "name: w2"))?;
    let out = k.run(&["apply", "-f", &cr2]).await?;
    assert!(out.contains("widget.example.com/w2 created"), "{out}");
    std::fs::write(
        &cr2,
        CR.replace("name: w1", "name: w2")
            .replace("size: 1", "size: 5"),
    )?;
    let out = k.run(&["apply", "-f", &cr2]).await?;
    assert!(out.contains("configured"), "{out}");
    let out = k.run(&["delete", "widget", "w2", "-n", "demo"]).await?;
    assert!(out.contains("deleted"), "{out}");

    let out = k.run(&["get", "widgets", "-n", "demo"]).await?;
    assert!(out.contains("w1"), "{out}");
    let out = k
        .run(&["get", "wd", "w1", "-n", "demo", "-o", "json"])
        .await?;
    let obj: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(obj["spec"]["size"], 2);

    // get -w sees a patch made while it watches.
    let mut watch = k
        .command(&["get", "widgets", "-n", "demo", "-w", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = watch.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??;
    assert_eq!(first.as_deref(), Some("widget.example.com/w1"));
    let out = k
        .run(&[
            "patch",
            "widget",
            "w1",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":3}}"#,
        ])
        .await?;
    assert!(out.contains("patched"), "{out}");
    let second = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await??;
    assert_eq!(second.as_deref(), Some("widget.example.com/w1"));
    watch.kill().await?;
    let size = k
        .run(&[
            "get",
            "widget",
            "w1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.size}",
        ])
        .await?;
    assert_eq!(size.trim(), "3");

    let out = k.run(&["delete", "-f", &cr]).await?;
    assert!(out.contains("deleted"), "{out}");
    let out = k
        .run(&["get", "widgets", "-n", "demo", "-o", "name"])
        .await?;
    assert!(out.trim().is_empty(), "{out}");
    let out = k.run(&["delete", "namespace", "demo"]).await?;
    assert!(out.contains("deleted"), "{out}");
    let err = k
        .run(&["get", "namespace", "demo"])
        .await
        .expect_err("namespace gone");
    assert!(
        err.to_string().contains("NotFound") || err.to_string().contains("not found"),
        "{err}"
    );

    // A logical cluster under /clusters/<name> is its own kubeconfig context.
    server.create_cluster("member").await?;
    let out = k
        .run(&[
            "--context",
            "member",
            "create",
            "namespace",
            "only-in-member",
        ])
        .await?;
    assert!(out.contains("created"), "{out}");
    let member = k
        .run(&["--context", "member", "get", "namespaces", "-o", "name"])
        .await?;
    assert!(member.contains("namespace/only-in-member"), "{member}");
    let root = k.run(&["get", "namespaces", "-o", "name"]).await?;
    assert!(!root.contains("only-in-member"), "{root}");
    server.shutdown().await;
    Ok(())
}
