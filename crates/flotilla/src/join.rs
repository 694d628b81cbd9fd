//! `flotilla join` and `flotilla unjoin`: a cluster enters the fleet as a Push member, and
//! leaves it.
//!
//! Join reaches the member with the caller's kubeconfig, makes an identity for the hub there —
//! namespace `flotilla-hub` with a ServiceAccount `flotilla-hub`, bound to a ClusterRole
//! `flotilla:hub` that may do everything, and a `kubernetes.io/service-account-token` Secret the
//! member's token controller fills (Karmada's `karmadactl join` does the same) — checks that the
//! hub's credentials built from it work, and registers the Cluster and its credentials Secret
//! on the hub. Where the member does not allow that (the caller may not create the RBAC
//! objects, or nothing fills the token), the caller's own credentials are registered instead,
//! and the outcome says so.
//!
//! Unjoin deletes the Cluster and waits until the hub's controllers let it go: its Works go,
//! and the objects they applied stay in the member, released (annotation
//! `cluster.flotilla.io/retain-member-objects`), unless asked to delete them. It then removes
//! the hub's credentials Secret and the identity join made in the member.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use flotilla_api::{
    Cluster,
    keys::{annotations, field_managers::JOIN, namespaces},
    names,
};
use flotilla_controllers::fleet::{self, Credentials, Member};
use k8s_openapi::api::{
    core::v1::{Namespace, Secret, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::{Value, json};

/// The ServiceAccount (and namespace) join makes in the member for the hub.
pub const SERVICE_ACCOUNT: &str = "flotilla-hub";
/// Its token Secret.
pub const TOKEN_SECRET: &str = "flotilla-hub-token";
/// The ClusterRole (and ClusterRoleBinding) that lets it do everything.
pub const CLUSTER_ROLE: &str = "flotilla:hub";

/// How long one request to the member may take.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(250);

/// What `flotilla join` is asked to do.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// The Cluster name.
    pub name: String,
    /// The member's kubeconfig.
    pub kubeconfig: PathBuf,
    /// Its context (the current one when absent).
    pub context: Option<String>,
    /// Labels for the Cluster.
    pub labels: BTreeMap<String, String>,
    /// Annotations for the Cluster.
    pub annotations: BTreeMap<String, String>,
    /// The member's provider, region and zone.
    pub provider: Option<String>,
    /// The member's region.
    pub region: Option<String>,
    /// The member's zone.
    pub zone: Option<String>,
    /// How long the member's token controller may take to fill the token Secret.
    pub token_timeout: Duration,
}

/// Whose credentials the hub now holds for the member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The token of the ServiceAccount join made in the member.
    ServiceAccount {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The caller's own credentials from the member kubeconfig, and why.
    Caller {
        /// Why the member gave no ServiceAccount token.
        why: String,
    },
}

/// What a join did.
#[derive(Clone, Debug)]
pub struct Joined {
    /// The member's API server URL, as the hub reaches it.
    pub endpoint: String,
    /// The member's Kubernetes version.
    pub version: String,
    /// The credentials registered.
    pub identity: Identity,
}

/// Joins the cluster `options.kubeconfig` reaches to the hub as Push member `options.name`.
///
/// # Errors
///
/// When the member cannot be reached with the kubeconfig, no usable credentials come out of
/// it, the name is invalid or taken by another member, or the hub refuses a write.
pub async fn join(hub: &Client, options: &JoinOptions) -> anyhow::Result<Joined> {
    let path = options.kubeconfig.as_path();
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading the member kubeconfig {}", path.display()))?;
    join_with(hub, options, kubeconfig).await
}

/// [`join`] with the member's kubeconfig already read (from a Secret, for auto-join);
/// `options.kubeconfig` then only names where it came from, and files it refers to are read
/// relative to that.
///
/// # Errors
///
/// As [`join`].
pub async fn join_with(
    hub: &Client,
    options: &JoinOptions,
    kubeconfig: Kubeconfig,
) -> anyhow::Result<Joined> {
    let name = options.name.as_str();
    names::execution_namespace(name)
        .map_err(|e| anyhow::anyhow!("{name:?} is not a valid cluster name: {e}"))?;
    let path = options.kubeconfig.as_path();
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &kube_options)
        .await
        .with_context(|| format!("the member kubeconfig {}", path.display()))?;
    config.connect_timeout = Some(MEMBER_TIMEOUT);
    config.read_timeout = Some(MEMBER_TIMEOUT);
    let endpoint = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let insecure = config.accept_invalid_certs;
    let member = Client::try_from(config).context("a client for the member")?;
    let version = match member.apiserver_version().await {
        Ok(version) => version,
        Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => bail!(
            "the member at {endpoint} does not accept the kubeconfig's credentials: {}",
            status.message
        ),
        Err(error) => {
            return Err(
                anyhow::Error::new(error).context(format!("cannot reach the member at {endpoint}"))
            );
        }
    };
    Api::<Namespace>::all(member.clone())
        .list_metadata(&ListParams::default().limit(1))
        .await
        .with_context(|| {
            format!(
                "the member at {endpoint} does not accept the kubeconfig's credentials for \
                 listing namespaces"
            )
        })?;

    let clusters: Api<Cluster> = Api::all(hub.clone());
    let existing = clusters
        .get_opt(name)
        .await
        .with_context(|| format!("reading Cluster {name} on the hub (is Flotilla installed?)"))?;
    if let Some(existing) = &existing {
        if existing.metadata.deletion_timestamp.is_some() {
            bail!("cluster {name} is still leaving the fleet; join it again once it is gone");
        }
        let theirs = existing
            .spec
            .api_endpoint
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/');
        if theirs != endpoint {
            bail!(
                "cluster {name} is already a member, at {theirs}; unjoin it first or choose \
                 another name"
            );
        }
    }

    let base = Member {
        name: name.to_owned(),
        api_endpoint: endpoint.clone(),
        credentials: Credentials::Token {
            token: String::new(),
            ca_pem: String::new(),
        },
        insecure_skip_tls_verification: insecure,
        labels: options.labels.clone(),
        annotations: options.annotations.clone(),
        provider: options.provider.clone(),
        region: options.region.clone(),
        zone: options.zone.clone(),
    };
    let ca_pem = cluster_ca(&kubeconfig, options.context.as_deref(), path)?;
    let (registered, identity) = match service_account_token(&member, options.token_timeout).await?
    {
        Ok(token) => {
            let mut candidate = base.clone();
            candidate.credentials = Credentials::Token {
                token,
                ca_pem: ca_pem.clone(),
            };
            match works(&candidate).await {
                Ok(()) => (
                    candidate,
                    Identity::ServiceAccount {
                        namespace: namespaces::MEMBER_IDENTITY.to_owned(),
                        name: SERVICE_ACCOUNT.to_owned(),
                    },
                ),
                Err(error) => {
                    caller(
                        &base,
                        &kubeconfig,
                        options,
                        &ca_pem,
                        format!("its token does not work: {error:#}"),
                    )
                    .await?
                }
            }
        }
        Err(why) => caller(&base, &kubeconfig, options, &ca_pem, why).await?,
    };
    // What join made in the member is unjoin's to remove, whichever credentials the hub got.
    let mut registered = registered;
    let made = Api::<Namespace>::all(member.clone())
        .get_opt(namespaces::MEMBER_IDENTITY)
        .await
        .ok()
        .flatten()
        .is_some();
    if made {
        registered.annotations.insert(
            annotations::MEMBER_IDENTITY.to_owned(),
            format!("{}/{SERVICE_ACCOUNT}", namespaces::MEMBER_IDENTITY),
        );
    }
    fleet::register(hub, &registered, JOIN)
        .await
        .with_context(|| format!("registering cluster {name} on the hub"))?;
    Ok(Joined {
        endpoint,
        version: version.git_version,
        identity,
    })
}

/// Falls back to the caller's credentials, checked to work.
async fn caller(
    base: &Member,
    kubeconfig: &Kubeconfig,
    options: &JoinOptions,
    ca_pem: &str,
    why: String,
) -> anyhow::Result<(Member, Identity)> {
    let mut member = base.clone();
    member.credentials = caller_credentials(
        kubeconfig,
        options.context.as_deref(),
        &options.kubeconfig,
        &base.api_endpoint,
        ca_pem,
    )
    .with_context(|| format!("the member gave no ServiceAccount token ({why})"))?;
    works(&member).await.with_context(|| {
        format!(
            "the member gave no ServiceAccount token ({why}), and the kubeconfig's own \
             credentials do not work from the hub"
        )
    })?;
    Ok((member, Identity::Caller { why }))
}

/// Whether the credentials the hub would hold for `member` reach it: the same client the hub's
/// controllers build from the Cluster and its Secret. A new RoleBinding may take a moment to
/// take effect, so a refusal is retried for a few seconds.
async fn works(member: &Member) -> anyhow::Result<()> {
    let (secret, cluster) = fleet::objects(member);
    let config = flotilla_runtime::members::config(&cluster, &secret, MEMBER_TIMEOUT).await?;
    let client = Client::try_from(config)?;
    let api: Api<Namespace> = Api::all(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status))
                if status.code == 403 && tokio::time::Instant::now() < deadline => {}
            Err(error) => return Err(error.into()),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Server-side apply under `flotilla-join`, forced.
async fn apply<K>(api: &Api<K>, object: &K) -> kube::Result<K>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(JOIN).force(),
        &Patch::Apply(object),
    )
    .await
}

fn object<K: serde::de::DeserializeOwned>(value: Value) -> anyhow::Result<K> {
    Ok(serde_json::from_value(value)?)
}

/// Makes the hub's identity in the member and returns its token; `Err(why)` when the member
/// does not allow it (a refused write, or no token controller filling the Secret in time).
async fn service_account_token(
    member: &Client,
    timeout: Duration,
) -> anyhow::Result<Result<String, String>> {
    let ns = namespaces::MEMBER_IDENTITY;
    let refused = |what: &str, error: kube::Error| -> anyhow::Result<Result<String, String>> {
        match error {
            kube::Error::Api(status) if status.code == 401 || status.code == 403 => Ok(Err(
                format!("it refused to create {what}: {}", status.message),
            )),
            other => {
                Err(anyhow::Error::new(other).context(format!("creating {what} in the member")))
            }
        }
    };
    let namespace: Namespace = object(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns},
    }))?;
    let namespace = match apply(&Api::all(member.clone()), &namespace).await {
        Ok(namespace) => namespace,
        Err(error) => return refused(&format!("namespace {ns}"), error),
    };
    // The cluster-wide RBAC objects belong to the namespace, so deleting it (as unjoin does)
    // lets the member's garbage collector remove them too.
    let owner = json!([{
        "apiVersion": "v1", "kind": "Namespace", "name": ns,
        "uid": namespace.metadata.uid.clone().unwrap_or_default(),
    }]);
    let account: ServiceAccount = object(json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": ns},
    }))?;
    if let Err(error) = apply(&Api::namespaced(member.clone(), ns), &account).await {
        return refused(&format!("ServiceAccount {ns}/{SERVICE_ACCOUNT}"), error);
    }
    let role: ClusterRole = object(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE, "ownerReferences": owner},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    }))?;
    if let Err(error) = apply(&Api::all(member.clone()), &role).await {
        return refused(&format!("ClusterRole {CLUSTER_ROLE}"), error);
    }
    let binding: ClusterRoleBinding = object(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ROLE, "ownerReferences": owner},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}],
    }))?;
    if let Err(error) = apply(&Api::all(member.clone()), &binding).await {
        return refused(&format!("ClusterRoleBinding {CLUSTER_ROLE}"), error);
    }
    let secrets: Api<Secret> = Api::namespaced(member.clone(), ns);
    let secret: Secret = object(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": TOKEN_SECRET, "namespace": ns,
            "annotations": {"kubernetes.io/service-account.name": SERVICE_ACCOUNT}},
    }))?;
    if let Err(error) = apply(&secrets, &secret).await {
        return refused(&format!("Secret {ns}/{TOKEN_SECRET}"), error);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let secret = secrets
            .get(TOKEN_SECRET)
            .await
            .with_context(|| format!("reading Secret {ns}/{TOKEN_SECRET} in the member"))?;
        let token = secret
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .and_then(|t| String::from_utf8(t.0.clone()).ok())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if let Some(token) = token {
            return Ok(Ok(token));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Err(format!(
                "nothing filled Secret {ns}/{TOKEN_SECRET} with a token within {}s (the \
                 member runs no ServiceAccount token controller)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The kubeconfig's entries for `context` (its current context when `None`), as JSON.
fn entries(kubeconfig: &Kubeconfig, context: Option<&str>) -> anyhow::Result<(Value, Value)> {
    let doc = serde_json::to_value(kubeconfig)?;
    let wanted = context
        .map(str::to_owned)
        .or_else(|| doc["current-context"].as_str().map(str::to_owned))
        .context("the member kubeconfig has no current context; pass --context")?;
    let find = |list: &str, name: &str, field: &str| {
        doc[list]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"].as_str() == Some(name))
            .map(|e| e[field].clone())
    };
    let entry = find("contexts", &wanted, "context")
        .with_context(|| format!("the member kubeconfig has no context {wanted}"))?;
    let cluster_name = entry["cluster"].as_str().unwrap_or_default();
    let user_name = entry["user"].as_str().unwrap_or_default();
    let cluster = find("clusters", cluster_name, "cluster").unwrap_or(Value::Null);
    let user = find("users", user_name, "user").unwrap_or(Value::Null);
    Ok((cluster, user))
}

/// A file a kubeconfig names, relative to the kubeconfig's directory.
fn read_file(kubeconfig: &Path, named: &str) -> anyhow::Result<String> {
    let path = Path::new(named);
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        kubeconfig
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(path)
    };
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Inline data (`<field>-data`, base64) or the file `<field>` names.
fn data_or_file(entry: &Value, field: &str, kubeconfig: &Path) -> anyhow::Result<Option<String>> {
    if let Some(data) = entry[format!("{field}-data")]
        .as_str()
        .filter(|d| !d.is_empty())
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .with_context(|| format!("{field}-data is not base64"))?;
        return Ok(Some(
            String::from_utf8(bytes).with_context(|| format!("{field}-data is not PEM text"))?,
        ));
    }
    match entry[field].as_str().filter(|f| !f.is_empty()) {
        Some(file) => Ok(Some(read_file(kubeconfig, file)?)),
        None => Ok(None),
    }
}

/// The member's CA certificate (PEM) from the kubeconfig, or empty when it names none.
fn cluster_ca(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
    path: &Path,
) -> anyhow::Result<String> {
    let (cluster, _) = entries(kubeconfig, context)?;
    Ok(data_or_file(&cluster, "certificate-authority", path)?.unwrap_or_default())
}

/// The caller's credentials from the member kubeconfig, everything inline, in the form the hub
/// reads: a token, or a kubeconfig for a client certificate or a user name and password.
fn caller_credentials(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
    path: &Path,
    endpoint: &str,
    ca_pem: &str,
) -> anyhow::Result<Credentials> {
    let (cluster, user) = entries(kubeconfig, context)?;
    if !user["exec"].is_null() || !user["auth-provider"].is_null() {
        bail!(
            "the kubeconfig's user authenticates through a plugin the hub cannot run; use one \
             with a token or client certificate, or let the member create the ServiceAccount"
        );
    }
    let token = match user["token"].as_str().filter(|t| !t.is_empty()) {
        Some(token) => Some(token.to_owned()),
        None => match user["tokenFile"]
            .as_str()
            .or_else(|| user["token-file"].as_str())
        {
            Some(file) => Some(read_file(path, file)?.trim().to_owned()),
            None => None,
        },
    };
    if let Some(token) = token {
        return Ok(Credentials::Token {
            token,
            ca_pem: ca_pem.to_owned(),
        });
    }
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let mut user_entry = serde_json::Map::new();
    let certificate = data_or_file(&user, "client-certificate", path)?;
    let key = data_or_file(&user, "client-key", path)?;
    match (certificate, key) {
        (Some(certificate), Some(key)) => {
            user_entry.insert("client-certificate-data".into(), json!(b64(&certificate)));
            user_entry.insert("client-key-data".into(), json!(b64(&key)));
        }
        _ => match (user["username"].as_str(), user["password"].as_str()) {
            (Some(username), Some(password)) => {
                user_entry.insert("username".into(), json!(username));
                user_entry.insert("password".into(), json!(password));
            }
            _ => bail!("the kubeconfig's user has no token, client certificate or password"),
        },
    }
    let mut cluster_entry = json!({"server": endpoint});
    if !ca_pem.is_empty() {
        cluster_entry["certificate-authority-data"] = json!(b64(ca_pem));
    }
    for field in ["insecure-skip-tls-verify", "tls-server-name", "proxy-url"] {
        if !cluster[field].is_null() {
            cluster_entry[field] = cluster[field].clone();
        }
    }
    let yaml = serde_json::to_string_pretty(&json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "member", "cluster": cluster_entry}],
        "users": [{"name": "member", "user": user_entry}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
        "current-context": "member",
    }))?;
    Ok(Credentials::Kubeconfig(yaml))
}

/// What `flotilla unjoin` is asked to do.
#[derive(Clone, Debug)]
pub struct UnjoinOptions {
    /// The Cluster name.
    pub name: String,
    /// Delete the objects Flotilla applied to the member (they stay, released, otherwise).
    pub delete_member_objects: bool,
    /// How long the hub's controllers may take to let the Cluster go.
    pub timeout: Duration,
}

/// What an unjoin did.
#[derive(Clone, Debug)]
pub struct Unjoined {
    /// Whether the member objects were deleted (else released).
    pub member_objects_deleted: bool,
    /// What became of the identity join made in the member: `None` when there was none,
    /// `Some(Err(why))` when it could not be removed.
    pub identity_removed: Option<Result<(), String>>,
}

/// Removes member `options.name` from the fleet.
///
/// # Errors
///
/// When there is no such Cluster, the hub refuses a write, or the Cluster is not gone within
/// the timeout (the hub's controllers are not running, or a member object will not go).
pub async fn unjoin(hub: &Client, options: &UnjoinOptions) -> anyhow::Result<Unjoined> {
    let name = options.name.as_str();
    let clusters: Api<Cluster> = Api::all(hub.clone());
    let cluster = clusters
        .get_opt(name)
        .await
        .with_context(|| format!("reading Cluster {name} on the hub"))?
        .with_context(|| format!("cluster {name} is not a member (kubectl get clusters)"))?;
    let identity = cluster
        .annotations()
        .get(annotations::MEMBER_IDENTITY)
        .cloned();
    // The member is reached for the clean-up with the hub's own credentials, read now: they
    // go with the Cluster.
    let secret_ref = cluster.spec.secret_ref.clone();
    let mut member = None;
    if identity.is_some()
        && let Some(reference) = &secret_ref
    {
        let secrets: Api<Secret> = Api::namespaced(hub.clone(), &reference.namespace);
        if let Some(secret) = secrets.get_opt(&reference.name).await? {
            member = Some(
                flotilla_runtime::members::config(&cluster, &secret, MEMBER_TIMEOUT)
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|config| Ok(Client::try_from(config)?)),
            );
        }
    }

    let retain = if options.delete_member_objects {
        "false"
    } else {
        "true"
    };
    clusters
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                annotations::RETAIN_MEMBER_OBJECTS: retain,
            }}})),
        )
        .await
        .with_context(|| format!("marking cluster {name} as leaving"))?;
    match clusters.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!("deleting cluster {name}")));
        }
    }
    let deadline = tokio::time::Instant::now() + options.timeout;
    loop {
        let Some(left) = clusters.get_opt(name).await? else {
            break;
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "cluster {name} is still leaving after {}s, held by {:?}: are the hub's \
                 controllers running? (kubectl get works -n {})",
                options.timeout.as_secs(),
                left.finalizers(),
                names::execution_namespace(name).unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL).await;
    }

    // The credentials Secret join or up made for this Cluster.
    if let Some(reference) = &secret_ref
        && reference.namespace == namespaces::CLUSTER
        && reference.name == name
    {
        let secrets: Api<Secret> = Api::namespaced(hub.clone(), &reference.namespace);
        match secrets
            .delete(&reference.name, &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("deleting the credentials Secret of {name}")));
            }
        }
    }

    let identity_removed = match (identity, member) {
        (None, _) => None,
        (Some(_), None) => Some(Err(
            "the hub held no credentials for the member any more".to_owned()
        )),
        (Some(_), Some(Err(error))) => Some(Err(format!("{error:#}"))),
        (Some(_), Some(Ok(member))) => Some(remove_identity(&member).await),
    };
    Ok(Unjoined {
        member_objects_deleted: options.delete_member_objects,
        identity_removed,
    })
}

/// Deletes the hub's identity in the member: its namespace first (the ServiceAccount and its
/// token go with it), then the ClusterRole and its binding, which also belong to the namespace
/// for a garbage collector to remove should this token stop working first.
async fn remove_identity(member: &Client) -> Result<(), String> {
    let ns = namespaces::MEMBER_IDENTITY;
    let gone = |result: kube::Result<()>, what: &str| match result {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(format!("deleting {what} in the member: {error}")),
    };
    let params = DeleteParams::default();
    let namespace = Api::<Namespace>::all(member.clone())
        .delete(ns, &params)
        .await
        .map(|_| ());
    gone(namespace, &format!("namespace {ns}"))?;
    let binding = Api::<ClusterRoleBinding>::all(member.clone())
        .delete(CLUSTER_ROLE, &params)
        .await
        .map(|_| ());
    let role = Api::<ClusterRole>::all(member.clone())
        .delete(CLUSTER_ROLE, &params)
        .await
        .map(|_| ());
    // The token may already be gone with its namespace: the garbage collector then removes
    // what it owns.
    let lenient = |result: kube::Result<()>, what: &str| match result {
        Err(kube::Error::Api(status)) if status.code == 401 || status.code == 403 => Ok(()),
        other => gone(other, what),
    };
    lenient(binding, &format!("ClusterRoleBinding {CLUSTER_ROLE}"))?;
    lenient(role, &format!("ClusterRole {CLUSTER_ROLE}"))?;
    Ok(())
}

/// `flotilla join`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct JoinArgs {
    /// The member's name on the hub (a DNS label).
    pub name: String,
    /// The member cluster's kubeconfig (`--cluster-kubeconfig` as karmadactl says it).
    #[arg(long = "kubeconfig", visible_alias = "cluster-kubeconfig")]
    pub member_kubeconfig: PathBuf,
    /// The context of the member kubeconfig to use (default: its current context).
    #[arg(long = "context", visible_alias = "cluster-context")]
    pub member_context: Option<String>,
    /// The hub's kubeconfig (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub hub_kubeconfig: Option<PathBuf>,
    /// The hub kubeconfig's context (default: its current context).
    #[arg(long)]
    pub hub_context: Option<String>,
    /// A label for the Cluster, KEY=VALUE (repeat for several).
    #[arg(short = 'l', long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The member's provider (such as aws or on-prem).
    #[arg(long)]
    pub provider: Option<String>,
    /// The member's region.
    #[arg(long)]
    pub region: Option<String>,
    /// The member's zone.
    #[arg(long)]
    pub zone: Option<String>,
    /// How long the member's token controller may take to fill the hub's token Secret.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub token_timeout: Duration,
}

impl JoinArgs {
    /// The join these flags ask for.
    pub fn options(&self) -> JoinOptions {
        JoinOptions {
            name: self.name.clone(),
            kubeconfig: self.member_kubeconfig.clone(),
            context: self.member_context.clone(),
            labels: self.labels.iter().cloned().collect(),
            annotations: BTreeMap::new(),
            provider: self.provider.clone(),
            region: self.region.clone(),
            zone: self.zone.clone(),
            token_timeout: self.token_timeout,
        }
    }
}

/// `flotilla unjoin`'s flags (the hub's come with the command).
#[derive(Clone, Debug, clap::Args)]
pub struct UnjoinArgs {
    /// The member to remove.
    pub name: String,
    /// Delete the objects Flotilla applied to the member; by default they stay there, no
    /// longer managed.
    #[arg(long)]
    pub delete_member_objects: bool,
    /// How long to wait for the hub's controllers to let the member go.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl UnjoinArgs {
    /// The unjoin these flags ask for.
    pub fn options(&self) -> UnjoinOptions {
        UnjoinOptions {
            name: self.name.clone(),
            delete_member_objects: self.delete_member_objects,
            timeout: self.timeout,
        }
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("{text:?} is not a label KEY=VALUE")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 30s or 2m: {e}"))
}

/// One line per outcome of a join, for the terminal: what happened, and a warning when the
/// hub holds the caller's own credentials.
pub fn describe_join(name: &str, joined: &Joined) -> (String, Option<String>) {
    let line = format!(
        "cluster {name} joined the fleet (Kubernetes {} at {})",
        joined.version, joined.endpoint
    );
    match &joined.identity {
        Identity::ServiceAccount { namespace, name } => (
            format!("{line}; the hub reaches it as ServiceAccount {namespace}/{name}"),
            None,
        ),
        Identity::Caller { why } => (
            format!("{line}; the hub reaches it with the kubeconfig's own credentials"),
            Some(format!(
                "the member gave the hub no ServiceAccount token of its own: {why}"
            )),
        ),
    }
}

/// The same for an unjoin.
pub fn describe_unjoin(name: &str, unjoined: &Unjoined) -> (String, Option<String>) {
    let objects = if unjoined.member_objects_deleted {
        "the objects Flotilla applied were deleted from the member"
    } else {
        "the objects Flotilla applied stay in the member, no longer managed"
    };
    let line = format!("cluster {name} left the fleet; {objects}");
    match &unjoined.identity_removed {
        None => (line, None),
        Some(Ok(())) => (
            format!("{line}; the hub's ServiceAccount was removed from the member"),
            None,
        ),
        Some(Err(why)) => (
            line,
            Some(format!(
                "the hub's ServiceAccount in the member was not removed: {why} (delete namespace \
                 {} and ClusterRole and ClusterRoleBinding {CLUSTER_ROLE} there by hand)",
                namespaces::MEMBER_IDENTITY
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";

    /// The token or kubeconfig user entry a case expects, or the text of its error.
    type Want<'a> = Result<(Option<&'a str>, Option<Value>), &'a str>;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn kubeconfig(users: &str) -> Kubeconfig {
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: {}\ncontexts:\n- name: main\n  context: {{cluster: c, user: main}}\n- name: other\n  context: {{cluster: c, user: other}}\ncurrent-context: main\nusers:\n{users}",
            b64(CA)
        );
        match Kubeconfig::from_yaml(&yaml) {
            Ok(kubeconfig) => kubeconfig,
            Err(error) => panic!("test kubeconfig: {error}\n{yaml}"),
        }
    }

    /// The credentials as the hub would read them: (token, kubeconfig user entry).
    fn read(credentials: &Credentials) -> (Option<String>, Option<Value>) {
        match credentials {
            Credentials::Token { token, ca_pem } => {
                assert_eq!(ca_pem, CA);
                (Some(token.clone()), None)
            }
            Credentials::Kubeconfig(yaml) => {
                let doc: Value = serde_json::from_str(yaml).unwrap_or_default();
                assert_eq!(
                    doc["clusters"][0]["cluster"]["server"],
                    "https://member:6443"
                );
                assert_eq!(
                    doc["clusters"][0]["cluster"]["certificate-authority-data"],
                    json!(b64(CA))
                );
                (None, Some(doc["users"][0]["user"].clone()))
            }
        }
    }

    #[test]
    fn caller_credentials_are_inlined_in_the_form_the_hub_reads() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("config");
        for (file, text) in [
            ("token", "file-token\n"),
            ("cert.pem", "CERT"),
            ("key.pem", "KEY"),
        ] {
            std::fs::write(dir.path().join(file), text).unwrap_or_else(|e| panic!("{e}"));
        }
        let other = "- name: other\n  user: {token: other-token}\n";
        let table: &[(&str, String, Option<&str>, Want<'_>)] = &[
            (
                "a token",
                format!("- name: main\n  user: {{token: t0k3n}}\n{other}"),
                None,
                Ok((Some("t0k3n"), None)),
            ),
            (
                "the context asked for",
                format!("- name: main\n  user: {{token: t0k3n}}\n{other}"),
                Some("other"),
                Ok((Some("other-token"), None)),
            ),
            (
                "a token file beside the kubeconfig",
                format!("- name: main\n  user: {{tokenFile: token}}\n{other}"),
                None,
                Ok((Some("file-token"), None)),
            ),
            (
                "client certificate data",
                format!(
                    "- name: main\n  user: {{client-certificate-data: {}, client-key-data: {}}}\n{other}",
                    b64("CERT"),
                    b64("KEY")
                ),
                None,
                Ok((
                    None,
                    Some(
                        json!({"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")}),
                    ),
                )),
            ),
            (
                "client certificate files, read and inlined",
                format!(
                    "- name: main\n  user: {{client-certificate: cert.pem, client-key: key.pem}}\n{other}"
                ),
                None,
                Ok((
                    None,
                    Some(
                        json!({"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")}),
                    ),
                )),
            ),
            (
                "basic auth",
                format!("- name: main\n  user: {{username: admin, password: secret}}\n{other}"),
                None,
                Ok((
                    None,
                    Some(json!({"username": "admin", "password": "secret"})),
                )),
            ),
            (
                "an exec plugin the hub cannot run",
                format!(
                    "- name: main\n  user:\n    exec: {{apiVersion: client.authentication.k8s.io/v1, command: aws}}\n{other}"
                ),
                None,
                Err("plugin"),
            ),
            (
                "no credentials",
                format!("- name: main\n  user: {{}}\n{other}"),
                None,
                Err("no token, client certificate or password"),
            ),
            (
                "a context that does not exist",
                format!("- name: main\n  user: {{token: t}}\n{other}"),
                Some("missing"),
                Err("no context missing"),
            ),
        ];
        for (what, users, context, want) in table {
            let config = kubeconfig(users);
            let got = caller_credentials(&config, *context, &path, "https://member:6443", CA);
            match (got, want) {
                (Ok(credentials), Ok((token, user))) => {
                    let (got_token, got_user) = read(&credentials);
                    assert_eq!(got_token.as_deref(), *token, "{what}");
                    assert_eq!(&got_user, user, "{what}");
                }
                (Err(error), Err(text)) => {
                    assert!(format!("{error:#}").contains(text), "{what}: {error:#}");
                }
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_cluster_ca_comes_from_data_or_a_file() {
        let config = kubeconfig("- name: main\n  user: {token: t}\n");
        let path = Path::new("/nonexistent/config");
        assert_eq!(cluster_ca(&config, None, path).unwrap_or_default(), CA);
    }

    #[test]
    fn labels_parse_as_key_value() {
        assert_eq!(parse_label("a=b"), Ok(("a".into(), "b".into())));
        assert_eq!(parse_label("a="), Ok(("a".into(), String::new())));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
    }
}
