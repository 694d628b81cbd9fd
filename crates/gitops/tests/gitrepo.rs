//! The GitRepo controller on the test hub (embedded, or a real control plane with
//! `FLOTILLA_TEST_SERVER=kube`), with repositories the tests make with `git`: served over
//! `file://` and over smart HTTP with basic auth (`git http-backend` behind `git_http.py` on
//! 127.0.0.1), also as HTTPS trusted through `caBundle`. Commits that add, change and remove manifests are followed (pruned, or kept with
//! `prune: false`); hand edits and deletions are put back and counted; a broken revision
//! applies nothing and says where it broke; a semver range picks the newest matching tag; a
//! kustomize overlay is built; credentials appear nowhere in the status, events or log.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail, ensure};
use flotilla_api::GitRepo;
use flotilla_gitops::{build::Kustomize, controller};
use flotilla_testing::{Controllers, TestHub, git::Repo};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

/// Everything logged in this test process (nextest runs each test in a process of its own), at
/// debug level for Flotilla's crates and gix: what a credential check reads.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Captured;

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| {
            "info,flotilla_gitops=debug,flotilla_runtime=debug,gix=debug".into()
        }))
        .with_ansi(false)
        .with_writer(|| Captured)
        .try_init();
}

/// What was logged so far.
fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

async fn eventually<T, F, Fut>(what: &str, probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    flotilla_testing::eventually(Duration::from_secs(45), what, probe).await
}

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

fn start(client: &Client, kustomize: Kustomize) -> Result<(Controllers, tempfile::TempDir)> {
    let cache = tempfile::tempdir()?;
    let cache_dir = cache.path().to_owned();
    let controllers = Controllers::start(client, move |ctx| {
        Ok(vec![controller::controller(
            ctx,
            controller::Options {
                cache_dir: Some(cache_dir),
                kustomize,
                ..controller::Options::default()
            },
        )?])
    })?;
    Ok((controllers, cache))
}

async fn namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn create_repo(api: &Api<GitRepo>, body: Value) -> Result<GitRepo> {
    let repo: GitRepo = serde_json::from_value(body)?;
    Ok(api.create(&PostParams::default(), &repo).await?)
}

/// A Secret `git-<name>` with `data` and a GitRepo `name` fetching `url` with it every 5s.
async fn repo_with_secret(
    client: &Client,
    ns: &str,
    name: &str,
    url: &str,
    data: Value,
) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("git-{name}")},
        "stringData": data,
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    create_repo(
        &Api::namespaced(client.clone(), ns),
        json!({
            "apiVersion": "gitops.flotilla.io/v1alpha1", "kind": "GitRepo",
            "metadata": {"name": name},
            "spec": {"url": url, "secretRef": {"name": format!("git-{name}")}, "interval": "5s"},
        }),
    )
    .await?;
    Ok(())
}

/// The GitRepo once its fetch failed (`Ready` reason `FetchFailed`).
async fn fetch_failed(api: &Api<GitRepo>, name: &str, what: &str) -> Result<GitRepo> {
    eventually(what, || async {
        let got = api.get(name).await?;
        Ok(condition(&got, "Ready")
            .is_some_and(|c| c.reason == "FetchFailed")
            .then_some(got))
    })
    .await
}

fn condition<'a>(
    repo: &'a GitRepo,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    repo.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn is(repo: &GitRepo, type_: &str, status: &str) -> bool {
    condition(repo, type_).is_some_and(|c| c.status == status)
}

/// Waits until the GitRepo reports `revision` applied and Ready.
async fn applied(api: &Api<GitRepo>, name: &str, revision: &str) -> Result<GitRepo> {
    eventually(&format!("{name} Ready at {revision}"), || async {
        let repo = api.get(name).await?;
        let status = repo.status.clone().unwrap_or_default();
        Ok((status.last_applied_revision.as_deref() == Some(revision)
            && is(&repo, "Ready", "True")
            && is(&repo, "Stalled", "False")
            && is(&repo, "Reconciling", "False")
            && status.observed_generation == repo.metadata.generation)
            .then_some(repo))
    })
    .await
}

/// Asks for a fetch now, as the webhook does.
async fn request_fetch(api: &Api<GitRepo>, name: &str, nonce: &str) -> Result<()> {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"annotations": {controller::REQUESTED_AT: nonce}}})),
    )
    .await?;
    Ok(())
}

async fn data(api: &Api<ConfigMap>, name: &str) -> Result<Option<String>> {
    flotilla_testing::config_map_value(api, name, "value").await
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_are_followed_pruned_and_drift_is_put_back() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let ns = "gitops-follow";
    namespace(client, ns).await?;
    let (_controllers, _cache) = start(client, Kustomize::Missing)?;
    let repo = Repo::new()?;
    repo.write("apps/a.yaml", &config_map("a", "one"))?;
    repo.write(
        "apps/more.yaml",
        &format!(
            "{}---\n{}",
            config_map("b", "two"),
            config_map("c", "three")
        ),
    )?;
    repo.write("README.md", "not a manifest")?;
    repo.write("other/ignored.yaml", &config_map("ignored", "x"))?;
    let first = repo.commit("first")?;

    let repos: Api<GitRepo> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    create_repo(
        &repos,
        json!({
            "apiVersion": "gitops.flotilla.io/v1alpha1", "kind": "GitRepo",
            "metadata": {"name": "apps"},
            "spec": {"url": repo.url(), "ref": {"branch": "main"}, "paths": ["apps"], "interval": "5s"},
        }),
    )
    .await?;
    let got = applied(&repos, "apps", &first).await?;
    let status = got.status.clone().unwrap_or_default();
    ensure!(status.last_attempted_revision.as_deref() == Some(first.as_str()));
    ensure!(
        status.inventory.as_ref().map(|i| i.count) == Some(3),
        "{status:?}"
    );
    ensure!(data(&maps, "a").await?.as_deref() == Some("one"));
    ensure!(data(&maps, "c").await?.as_deref() == Some("three"));
    ensure!(
        maps.get_opt("ignored").await?.is_none(),
        "paths limit what is applied"
    );
    let a = maps.get("a").await?;
    ensure!(
        a.metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(controller::FIELD_MANAGER)),
        "applied by server-side apply as {}",
        controller::FIELD_MANAGER
    );
    ensure!(
        a.metadata
            .labels
            .unwrap_or_default()
            .get(controller::REPO_NAME)
            .map(String::as_str)
            == Some("apps")
    );

    // A commit that changes a, removes b and adds d: followed, b pruned.
    repo.write("apps/a.yaml", &config_map("a", "uno"))?;
    repo.write(
        "apps/more.yaml",
        &format!(
            "{}---\n{}",
            config_map("c", "three"),
            config_map("d", "four")
        ),
    )?;
    let second = repo.commit("second")?;
    request_fetch(&repos, "apps", "1").await?;
    applied(&repos, "apps", &second).await?;
    ensure!(data(&maps, "a").await?.as_deref() == Some("uno"));
    ensure!(data(&maps, "d").await?.as_deref() == Some("four"));
    ensure!(
        maps.get_opt("b").await?.is_none(),
        "b left Git and is pruned"
    );

    // Drift: an edit by hand and a deletion are put back, and counted.
    maps.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"data": {"value": "edited"}})),
    )
    .await?;
    eventually("a put back", || async {
        Ok((data(&maps, "a").await?.as_deref() == Some("uno")).then_some(()))
    })
    .await?;
    maps.delete("d", &DeleteParams::default()).await?;
    eventually("d put back", || async {
        Ok((data(&maps, "d").await?.as_deref() == Some("four")).then_some(()))
    })
    .await?;
    eventually("two drift corrections counted", || async {
        let got = repos.get("apps").await?;
        let drift = got.status.map(|s| s.drift_corrections).unwrap_or_default();
        Ok((drift == 2).then_some(()))
    })
    .await?;

    // A broken revision applies nothing, keeps the last good one and says where it broke.
    repo.write("apps/new.yaml", &config_map("e", "five"))?;
    repo.write(
        "apps/zz-broken.yaml",
        &format!(
            "{}---\napiVersion: v1\nkind: [oops\n",
            config_map("f", "six")
        ),
    )?;
    let broken = repo.commit("broken")?;
    request_fetch(&repos, "apps", "2").await?;
    let got = eventually("the broken revision reported", || async {
        let got = repos.get("apps").await?;
        let status = got.status.clone().unwrap_or_default();
        Ok(
            (status.last_attempted_revision.as_deref() == Some(broken.as_str())
                && is(&got, "Stalled", "True"))
            .then_some(got),
        )
    })
    .await?;
    let ready = condition(&got, "Ready").cloned().context("Ready")?;
    ensure!(
        ready.status == "False" && ready.reason == "BuildFailed",
        "{ready:?}"
    );
    ensure!(
        ready.message.contains("apps/zz-broken.yaml, document 2"),
        "the message names the file and document: {}",
        ready.message
    );
    ensure!(
        got.status
            .clone()
            .unwrap_or_default()
            .last_applied_revision
            .as_deref()
            == Some(second.as_str())
    );
    ensure!(
        maps.get_opt("e").await?.is_none(),
        "nothing of a broken revision is applied"
    );

    // A revision whose document is valid YAML but not accepted by the hub: nothing applied.
    repo.remove("apps/zz-broken.yaml")?;
    repo.write(
        "apps/zz-bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n",
    )?;
    let invalid = repo.commit("invalid name")?;
    request_fetch(&repos, "apps", "3").await?;
    let got = eventually("the invalid revision reported", || async {
        let got = repos.get("apps").await?;
        let status = got.status.clone().unwrap_or_default();
        Ok(
            (status.last_attempted_revision.as_deref() == Some(invalid.as_str())
                && is(&got, "Stalled", "True"))
            .then_some(got),
        )
    })
    .await?;
    let ready = condition(&got, "Ready").cloned().context("Ready")?;
    ensure!(ready.reason == "ValidationFailed", "{ready:?}");
    ensure!(
        ready.message.contains("Not_A_Valid_Name"),
        "{}",
        ready.message
    );
    ensure!(
        maps.get_opt("e").await?.is_none(),
        "all or nothing: e is not applied"
    );

    // Fixed: e applied; with prune off, what leaves Git stays.
    repo.remove("apps/zz-bad.yaml")?;
    let fixed = repo.commit("fixed")?;
    request_fetch(&repos, "apps", "4").await?;
    applied(&repos, "apps", &fixed).await?;
    ensure!(data(&maps, "e").await?.as_deref() == Some("five"));
    repos
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"prune": false}})),
        )
        .await?;
    repo.remove("apps/new.yaml")?;
    let kept = repo.commit("e leaves")?;
    applied(&repos, "apps", &kept).await?;
    ensure!(
        data(&maps, "e").await?.as_deref() == Some("five"),
        "prune: false keeps e"
    );

    // Deleted with prune on: everything it applied goes.
    repos
        .patch(
            "apps",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"prune": true}})),
        )
        .await?;
    let got = eventually("prune back on", || async {
        let got = repos.get("apps").await?;
        Ok(
            (got.status.as_ref().and_then(|s| s.observed_generation) == got.metadata.generation)
                .then_some(got),
        )
    })
    .await?;
    ensure!(got.spec.prune());
    repos.delete("apps", &DeleteParams::default()).await?;
    eventually("the GitRepo and its objects gone", || async {
        Ok((repos.get_opt("apps").await?.is_none()
            && maps.get_opt("a").await?.is_none()
            && maps.get_opt("c").await?.is_none())
        .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn semver_picks_the_newest_matching_tag_and_kustomize_overlays_build() -> Result<()> {
    init_tracing();
    let Some(kubectl) = flotilla_testing::kubectl() else {
        bail!("no kubectl on this machine (the kubectl package ships kubectl.1.27 … 1.33)");
    };
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let ns = "gitops-semver";
    namespace(client, ns).await?;
    let (_controllers, _cache) = start(client, Kustomize::at(kubectl))?;
    let repo = Repo::new()?;
    repo.write("base/cm.yaml", &config_map("settings", "base"))?;
    repo.write("base/kustomization.yaml", "resources:\n- cm.yaml\n")?;
    repo.write(
        "overlays/prod/kustomization.yaml",
        "resources:\n- ../../base\nnamePrefix: prod-\ncommonLabels:\n  env: prod\n",
    )?;
    let v1_0 = repo.commit("1.0")?;
    repo.tag("v1.0.0")?;
    repo.write("base/cm.yaml", &config_map("settings", "1.1"))?;
    let v1_1 = repo.commit("1.1")?;
    repo.tag("v1.1.0")?;
    repo.write("base/cm.yaml", &config_map("settings", "2.0"))?;
    repo.commit("2.0")?;
    repo.tag("v2.0.0")?;
    ensure!(v1_0 != v1_1);

    let repos: Api<GitRepo> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    create_repo(
        &repos,
        json!({
            "apiVersion": "gitops.flotilla.io/v1alpha1", "kind": "GitRepo",
            "metadata": {"name": "prod"},
            "spec": {"url": repo.url(), "ref": {"semver": ">=1.0.0, <2"},
                     "paths": ["overlays/prod"], "interval": "5s"},
        }),
    )
    .await?;
    applied(&repos, "prod", &v1_1).await?;
    let settings = maps.get("prod-settings").await?;
    ensure!(
        settings
            .data
            .unwrap_or_default()
            .get("value")
            .map(String::as_str)
            == Some("1.1"),
        "the newest tag below 2 is v1.1.0"
    );
    ensure!(
        settings
            .metadata
            .labels
            .unwrap_or_default()
            .get("env")
            .map(String::as_str)
            == Some("prod")
    );

    // Without kustomize, a kustomization stalls with a message saying so.
    let ns2 = "gitops-nokustomize";
    namespace(client, ns2).await?;
    drop(_controllers);
    let (_controllers, _cache3) = start(client, Kustomize::Missing)?;
    let repos2: Api<GitRepo> = Api::namespaced(client.clone(), ns2);
    create_repo(
        &repos2,
        json!({
            "apiVersion": "gitops.flotilla.io/v1alpha1", "kind": "GitRepo",
            "metadata": {"name": "prod"},
            "spec": {"url": repo.url(), "ref": {"tag": "v1.0.0"}, "paths": ["overlays/prod"]},
        }),
    )
    .await?;
    let got = eventually("stalled without kustomize", || async {
        let got = repos2.get("prod").await?;
        Ok(is(&got, "Stalled", "True").then_some(got))
    })
    .await?;
    let stalled = condition(&got, "Stalled").cloned().context("Stalled")?;
    ensure!(stalled.reason == "KustomizeMissing", "{stalled:?}");
    ensure!(stalled.message.contains("kustomize"), "{}", stalled.message);
    ensure!(
        got.status
            .unwrap_or_default()
            .last_attempted_revision
            .as_deref()
            == Some(v1_0.as_str()),
        "tag v1.0.0 is an annotated tag; its commit is the revision"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_basic_auth_from_the_secret_and_no_credential_leaks() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let ns = "gitops-http";
    namespace(client, ns).await?;
    let (_controllers, _cache) = start(client, Kustomize::Missing)?;
    let repo = Repo::new()?;
    repo.write("cm.yaml", &config_map("served", "over-http"))?;
    let revision = repo.commit("http")?;
    let password = "s3cret-Pa55word-xyz";
    let (port, _server) = git_http(repo.root(), password, &[])?;
    let url = format!("http://127.0.0.1:{port}/origin.git");

    let repos: Api<GitRepo> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    repo_with_secret(
        client,
        ns,
        "http",
        &url,
        json!({"username": "flotilla", "password": "wrong-password-abc"}),
    )
    .await?;
    let got = fetch_failed(&repos, "http", "the wrong password refused").await?;
    let text = serde_json::to_string(&got)?;
    ensure!(
        !text.contains("wrong-password-abc"),
        "no password in the status: {text}"
    );

    secrets
        .patch(
            "git-http",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"password": password}})),
        )
        .await?;
    request_fetch(&repos, "http", "1").await?;
    let got = applied(&repos, "http", &revision).await?;
    ensure!(data(&maps, "served").await?.as_deref() == Some("over-http"));
    let text = serde_json::to_string(&got)?;
    ensure!(
        !text.contains(password),
        "no password in the status: {text}"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let listed = serde_json::to_string(&events.list(&Default::default()).await?.items)?;
    ensure!(!listed.contains(password), "no password in events");
    let logged = logs();
    ensure!(
        logged.contains("gitrepo")
            && !logged.contains(password)
            && !logged.contains("wrong-password-abc"),
        "the log names the GitRepo and holds no password"
    );
    Ok(())
}

/// `git_http.py` serving the repositories under `root` for user `flotilla` with `password`
/// (`tls`: a certificate and key file, for HTTPS); its port, and the process, killed when
/// dropped.
fn git_http(root: &Path, password: &str, tls: &[&Path]) -> Result<(u16, KillOnDrop)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/git_http.py");
    let mut server = Command::new("python3")
        .arg(&script)
        .arg(root)
        .args(["flotilla", password])
        .args(tls)
        .stdout(Stdio::piped())
        .spawn()
        .context("python3 git_http.py")?;
    let stdout = server.stdout.take().context("stdout")?;
    let server = KillOnDrop(server);
    let port = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        line.trim().parse::<u16>().context("the server's port")?
    };
    Ok((port, server))
}

/// A CA and a server certificate it signed for 127.0.0.1, written to `dir`: the CA's PEM, and
/// the server's certificate and key files.
fn certificates(dir: &Path) -> Result<(String, std::path::PathBuf, std::path::PathBuf)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])?.signed_by(&key, &issuer)?;
    let (cert_file, key_file) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert_file, server.pem())?;
    std::fs::write(&key_file, key.serialize_pem())?;
    Ok((ca.pem(), cert_file, key_file))
}

/// HTTPS: a server whose certificate the system does not trust is refused until `caBundle`
/// holds its CA; a caBundle with no certificate in it says so.
#[tokio::test]
async fn https_trusts_the_ca_bundle() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let ns = "gitops-https";
    namespace(&client, ns).await?;
    let (_controllers, _cache) = start(&client, Kustomize::Missing)?;
    let repo = Repo::new()?;
    repo.write("cm.yaml", &config_map("served", "over-https"))?;
    let revision = repo.commit("https")?;
    let password = "tls-Pa55word-xyz";
    let (ca, cert, key) = certificates(repo.root())?;
    let (port, _server) = git_http(repo.root(), password, &[&cert, &key])?;
    let url = format!("https://127.0.0.1:{port}/origin.git");

    let repos: Api<GitRepo> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    repo_with_secret(
        &client,
        ns,
        "https",
        &url,
        json!({"username": "flotilla", "password": password}),
    )
    .await?;
    let refused = fetch_failed(&repos, "https", "an untrusted server is refused").await?;
    let message = condition(&refused, "Ready")
        .map(|c| c.message.clone())
        .unwrap_or_default();
    ensure!(
        message.contains("certificate") || message.contains("issuer"),
        "{message}"
    );
    ensure!(data(&maps, "served").await?.is_none());

    repos
        .patch(
            "https",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"caBundle": "not a certificate"}})),
        )
        .await?;
    eventually("a caBundle without certificates is named", || async {
        let got = repos.get("https").await?;
        Ok(condition(&got, "Ready")
            .is_some_and(|c| c.message.contains("spec.caBundle holds no PEM certificate"))
            .then_some(()))
    })
    .await?;

    repos
        .patch(
            "https",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"caBundle": ca}})),
        )
        .await?;
    let got = applied(&repos, "https", &revision).await?;
    ensure!(data(&maps, "served").await?.as_deref() == Some("over-https"));
    let text = serde_json::to_string(&got)?;
    ensure!(!text.contains(password), "no password in the status");
    ensure!(!logs().contains(password), "no password in the log");
    Ok(())
}

/// SSH: `sshd` on 127.0.0.1 with a host key and one authorized key of the test's; the GitRepo
/// fetches with the key and known_hosts from its Secret, a host its known_hosts does not name
/// is refused, and the key appears nowhere in the status. Skipped with a message when
/// `/usr/sbin/sshd` is missing (`.ci/run` installs openssh-server).
#[tokio::test]
async fn ssh_with_the_key_and_known_hosts_from_the_secret() -> Result<()> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        println!("SKIPPED: no {} (Debian's openssh-server)", sshd.display());
        return Ok(());
    }
    init_tracing();
    let hub = TestHub::start().await?;
    let client = hub.client.clone();
    let ns = "gitops-ssh";
    namespace(&client, ns).await?;
    let (_controllers, _cache) = start(&client, Kustomize::Missing)?;
    let repo = Repo::new()?;
    repo.write("cm.yaml", &config_map("served", "over-ssh"))?;
    let revision = repo.commit("ssh")?;

    let keys = tempfile::tempdir()?;
    let dir = keys.path();
    for (name, kind) in [
        ("host", "ed25519"),
        ("client", "ed25519"),
        ("stranger", "ed25519"),
    ] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(dir.join(name))
            .output()
            .context("ssh-keygen")?;
        ensure!(out.status.success(), "ssh-keygen: {:?}", out);
    }
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {keys}\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         StrictModes no\nPermitRootLogin prohibit-password\nPidFile {pid}\n",
        host = dir.join("host").display(),
        keys = dir.join("authorized_keys").display(),
        pid = dir.join("sshd.pid").display(),
    );
    std::fs::write(dir.join("sshd_config"), config)?;
    std::fs::create_dir_all("/run/sshd").ok();
    let server = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stderr(Stdio::null())
        .spawn()
        .context("sshd")?;
    let _server = KillOnDrop(server);
    let user = String::from_utf8(Command::new("id").arg("-un").output()?.stdout)?
        .trim()
        .to_owned();
    let host_key = std::fs::read_to_string(dir.join("host.pub"))?;
    let stranger_key = std::fs::read_to_string(dir.join("stranger.pub"))?;
    let known = |key: &str| {
        let mut fields = key.split_whitespace();
        format!(
            "[127.0.0.1]:{port} {} {}\n",
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default()
        )
    };
    let identity = std::fs::read_to_string(dir.join("client"))?;
    let url = format!("ssh://{user}@127.0.0.1:{port}{}", repo.bare.display());

    let repos: Api<GitRepo> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    repo_with_secret(
        &client,
        ns,
        "ssh",
        &url,
        json!({"identity": identity, "known_hosts": known(&stranger_key)}),
    )
    .await?;
    fetch_failed(&repos, "ssh", "a host known_hosts does not name is refused").await?;
    ensure!(data(&maps, "served").await?.is_none());

    secrets
        .patch(
            "git-ssh",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"known_hosts": known(&host_key)}})),
        )
        .await?;
    request_fetch(&repos, "ssh", "1").await?;
    let got = applied(&repos, "ssh", &revision).await?;
    ensure!(data(&maps, "served").await?.as_deref() == Some("over-ssh"));
    let text = serde_json::to_string(&got)?;
    let key_body = identity
        .lines()
        .nth(1)
        .context("the private key's first line of data")?;
    ensure!(!text.contains(key_body), "no key in the status: {text}");
    ensure!(!logs().contains(key_body), "no key in the log");
    Ok(())
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `POST path` with `headers` to `address`; the status code.
async fn post(address: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 2\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n{}");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("an HTTP status line")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_fetches_at_once_for_the_shared_secret_only() -> Result<()> {
    init_tracing();
    let hub = TestHub::start().await?;
    let client = &hub.client;
    let ns = "gitops-hook";
    namespace(client, ns).await?;
    let (_controllers, _cache) = start(client, Kustomize::Missing)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(
        axum::serve(listener, flotilla_gitops::webhook::router(client.clone())).into_future(),
    );
    let repo = Repo::new()?;
    repo.write("cm.yaml", &config_map("hooked", "one"))?;
    let first = repo.commit("one")?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hook"}, "stringData": {"webhook": "let-me-in"},
    }))?;
    secrets.create(&PostParams::default(), &secret).await?;
    let repos: Api<GitRepo> = Api::namespaced(client.clone(), ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    create_repo(
        &repos,
        json!({
            "apiVersion": "gitops.flotilla.io/v1alpha1", "kind": "GitRepo",
            "metadata": {"name": "hooked"},
            "spec": {"url": repo.url(), "secretRef": {"name": "hook"}, "interval": "1h"},
        }),
    )
    .await?;
    applied(&repos, "hooked", &first).await?;
    repo.write("cm.yaml", &config_map("hooked", "two"))?;
    let second = repo.commit("two")?;

    let path = format!("/hooks/gitrepo/{ns}/hooked");
    ensure!(post(address, &path, &[("Authorization", "Bearer wrong")]).await? == 401);
    ensure!(post(address, &path, &[]).await? == 401);
    ensure!(
        post(
            address,
            &format!("/hooks/gitrepo/{ns}/missing"),
            &[("Authorization", "Bearer let-me-in")]
        )
        .await?
            == 401
    );
    // Wrong secrets changed nothing: the hook answered after (not) asking for a fetch.
    let got = repos.get("hooked").await?;
    ensure!(
        !got.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(controller::REQUESTED_AT),
        "a refused hook requests nothing"
    );
    ensure!(post(address, &path, &[("Authorization", "Bearer let-me-in")]).await? == 202);
    applied(&repos, "hooked", &second).await?;
    ensure!(data(&maps, "hooked").await?.as_deref() == Some("two"));
    server.abort();
    Ok(())
}
