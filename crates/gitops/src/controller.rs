//! The GitRepo controller: per GitRepo, fetch the revision its `ref` names, build it, check
//! every object (parseable, a kind the hub serves or a CRD of the same revision brings,
//! Flotilla policies passing `validate()`, accepted by a server-side dry run) and only then
//! apply them all (server-side apply as `flotilla-gitrepo`, forced; CRDs, then Namespaces,
//! then the rest), prune what left Git, put back what was changed by hand, own the
//! PropagationPolicy of its `placement`, and report it all in the status. Never writes an
//! object that already holds its manifest; never deletes an object it did not apply.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use flotilla_api::{
    ClusterPropagationPolicy, ClusterResourceBinding, GitRepo, PropagationPolicy, ResourceBinding,
    conditions::{self, set_condition},
    gitops::{
        ClusterReadiness, GitRepoStatus, INVENTORY_INLINE, Inventory, InventoryEntry,
        PropagationSummary,
    },
    names::{fnv32a, group_of},
    policy::Placement,
    validate::{ManifestError, validate_manifest},
    work::{ResourceBindingSpec, ResourceBindingStatus, ResourceHealth},
};
use flotilla_propagation::matching;
use flotilla_runtime::{
    Context, ReconcileError, Runner, Settings,
    error::{chain, is_conflict, is_not_found},
    status::{self, StatusWrite},
};
use flotilla_work::{kinds::Kinds, prepare::up_to_date};
use futures::{FutureExt, future::BoxFuture};
use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{
        ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
        PropagationPolicy as Propagation,
    },
    runtime::{
        controller::Action,
        finalizer::{self, Event as FinalizerEvent, finalizer},
    },
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::{
    build::{self, Document, Kustomize},
    fetch::{self, Credentials, Source},
};

/// The field manager of everything the controller writes.
pub const FIELD_MANAGER: &str = "flotilla-gitrepo";
/// The finalizer that prunes a deleted GitRepo's objects.
pub const FINALIZER: &str = "gitops.flotilla.io/prune";
/// On an applied object: the name of its GitRepo.
pub const REPO_NAME: &str = "gitops.flotilla.io/gitrepo-name";
/// On an applied object: the namespace of its GitRepo.
pub const REPO_NAMESPACE: &str = "gitops.flotilla.io/gitrepo-namespace";
/// On an applied object: a hash of its manifest, so a manifest that lost a field counts as
/// changed.
pub const MANIFEST_HASH: &str = "gitops.flotilla.io/manifest-hash";
/// On a GitRepo: set (to any new value) to fetch at once; the webhook sets it.
pub const REQUESTED_AT: &str = "gitops.flotilla.io/requested-at";

/// Condition types and reasons.
pub mod reasons {
    /// `Reconciling`.
    pub const RECONCILING: &str = "Reconciling";
    /// `Stalled`.
    pub const STALLED: &str = "Stalled";
    /// Every object of the revision is applied.
    pub const SUCCEEDED: &str = "Succeeded";
    /// A new revision or generation is being applied.
    pub const PROGRESSING: &str = "Progressing";
    /// The repository could not be fetched.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// The revision could not be built.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// An object of the revision is invalid; nothing was applied.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
    /// The hub refused an object while applying.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// A kustomization needs kustomize and there is none.
    pub const KUSTOMIZE_MISSING: &str = "KustomizeMissing";
    /// The credentials Secret is missing or incomplete.
    pub const SECRET_INVALID: &str = "SecretInvalid";
    /// The GitRepo is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// Nothing is wrong.
    pub const NOT_STALLED: &str = "NotStalled";
    /// Nothing is in progress.
    pub const IDLE: &str = "Idle";
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where repositories are cached (one bare repository and one checkout per GitRepo); a
    /// directory under the system's temporary directory when absent.
    pub cache_dir: Option<PathBuf>,
    /// How kustomizations are built.
    pub kustomize: Kustomize,
    /// A GitRepo's cache larger than this is dropped and fetched afresh.
    pub max_cache_bytes: u64,
    /// How many GitRepos are reconciled at once.
    pub concurrency: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cache_dir: None,
            kustomize: Kustomize::Missing,
            max_cache_bytes: 512 << 20,
            concurrency: 4,
        }
    }
}

/// The crate's error: the action that failed and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    action: &'static str,
    message: String,
    conflict: bool,
}

impl Error {
    fn api(action: &'static str, what: &str, error: &kube::Error) -> Self {
        Self {
            action,
            message: format!("{what}: {}", chain(error)),
            conflict: is_conflict(error),
        }
    }
}

impl ReconcileError for Error {
    fn reason(&self) -> &'static str {
        self.action
    }
    fn is_conflict(&self) -> bool {
        self.conflict
    }
}

struct State {
    client: Client,
    kinds: Kinds,
    options: Options,
    /// Per GitRepo (`namespace/name`): the revision last applied and the objects that held
    /// their manifests after it, so a later write to one is counted as a drift correction.
    converged: Mutex<HashMap<String, (String, HashSet<InventoryEntry>)>>,
}

/// The controller.
///
/// # Errors
///
/// When the shared caches already started.
pub fn controller(ctx: &Arc<Context>, options: Options) -> anyhow::Result<BoxFuture<'static, ()>> {
    let runner = Runner::<GitRepo>::new(
        ctx,
        "gitrepo",
        Settings {
            backoff_base: Duration::from_secs(1),
            ..Settings::new(options.concurrency)
        },
    )?;
    let state = Arc::new(State {
        client: ctx.client().clone(),
        kinds: Kinds::new(ctx.client().clone()),
        options,
        converged: Mutex::default(),
    });
    Ok(runner.run(reconcile, state).boxed())
}

async fn reconcile(repo: Arc<GitRepo>, state: Arc<State>) -> Result<Action, Error> {
    let namespace = repo.namespace().unwrap_or_default();
    let api: Api<GitRepo> = Api::namespaced(state.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, repo, |event| async {
        match event {
            FinalizerEvent::Apply(repo) => sync(&repo, &state).await,
            FinalizerEvent::Cleanup(repo) => cleanup(&repo, &state).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e))
            if is_not_found(&e) =>
        {
            Ok(Action::await_change())
        }
        Err(finalizer::Error::AddFinalizer(e) | finalizer::Error::RemoveFinalizer(e)) => {
            Err(Error::api("GitRepoFinalizer", "updating the finalizer", &e))
        }
        Err(e) => Err(Error {
            action: "GitRepoFinalizer",
            message: e.to_string(),
            conflict: false,
        }),
    }
}

fn key(repo: &GitRepo) -> String {
    format!(
        "{}/{}",
        repo.namespace().unwrap_or_default(),
        repo.name_any()
    )
}

fn cache_of(repo: &GitRepo, state: &State) -> PathBuf {
    state
        .options
        .cache_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("flotilla-gitrepo"))
        .join(repo.namespace().unwrap_or_default())
        .join(repo.name_any())
}

/// What one pass found, for the status.
struct Outcome {
    ready: Result<String, (&'static str, String)>,
    stalled: bool,
    attempted: Option<String>,
    applied: Option<String>,
    inventory: Option<Vec<InventoryEntry>>,
    drift: i64,
}

async fn sync(repo: &GitRepo, state: &State) -> Result<Action, Error> {
    let interval = repo.spec.interval();
    let previous = repo.status.clone().unwrap_or_default();
    if repo.spec.suspend {
        let outcome = Outcome {
            ready: Err((
                reasons::SUSPENDED,
                "suspended: nothing is fetched or applied".into(),
            )),
            stalled: false,
            attempted: previous.last_attempted_revision.clone(),
            applied: previous.last_applied_revision.clone(),
            inventory: None,
            drift: 0,
        };
        write_status(repo, state, outcome, &previous).await?;
        return Ok(Action::await_change());
    }
    let outcome = attempt(repo, state, &previous).await?;
    write_status(repo, state, outcome, &previous).await?;
    // A failure waits the interval too (a broken revision needs a new commit; the webhook or
    // the requested-at annotation asks for a fetch sooner).
    Ok(Action::requeue(interval))
}

fn fail(reason: &'static str, message: String, stalled: bool, previous: &GitRepoStatus) -> Outcome {
    Outcome {
        ready: Err((reason, message)),
        stalled,
        attempted: previous.last_attempted_revision.clone(),
        applied: previous.last_applied_revision.clone(),
        inventory: None,
        drift: 0,
    }
}

async fn credentials(
    repo: &GitRepo,
    state: &State,
    dir: &std::path::Path,
) -> Result<Result<(Credentials, Option<String>), String>, Error> {
    let Some(reference) = &repo.spec.secret_ref else {
        return Ok(Ok((Credentials::default(), None)));
    };
    let namespace = repo.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(state.client.clone(), &namespace);
    let secret = match secrets.get_opt(&reference.name).await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return Ok(Err(format!(
                "Secret {namespace}/{} of spec.secretRef does not exist",
                reference.name
            )));
        }
        Err(e) => return Err(Error::api("ReadSecret", "reading spec.secretRef", &e)),
    };
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .filter(|v| !v.is_empty())
    };
    let mut credentials = Credentials {
        username: text("username"),
        password: text("password").or_else(|| text("token")),
        ..Credentials::default()
    };
    let write = |name: &str, contents: String| -> Result<PathBuf, String> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir).map_err(|e| format!("writing the SSH key: {e}"))?;
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("writing the SSH key: {e}"))?;
        std::io::Write::write_all(&mut file, contents.as_bytes())
            .map_err(|e| format!("writing the SSH key: {e}"))?;
        Ok(path)
    };
    if let Some(identity) = text("identity").or_else(|| text("ssh-privatekey")) {
        match write("identity", identity) {
            Ok(path) => credentials.ssh_identity = Some(path),
            Err(e) => return Ok(Err(e)),
        }
        if let Some(known) = text("known_hosts") {
            match write("known_hosts", known) {
                Ok(path) => credentials.ssh_known_hosts = Some(path),
                Err(e) => return Ok(Err(e)),
            }
        }
    }
    Ok(Ok((credentials, text("webhook"))))
}

/// One object the revision declares, ready to apply.
struct Desired {
    entry: InventoryEntry,
    body: Value,
    gvk: GroupVersionKind,
    /// Its kind comes from a CRD of this revision that the hub does not serve yet.
    new_kind: bool,
    /// Its namespace comes from this revision and does not exist yet.
    new_namespace: bool,
    order: u8,
}

async fn attempt(
    repo: &GitRepo,
    state: &State,
    previous: &GitRepoStatus,
) -> Result<Outcome, Error> {
    let dir = cache_of(repo, state);
    let (credentials, _) = match credentials(repo, state, &dir).await? {
        Ok(found) => found,
        Err(message) => return Ok(fail(reasons::SECRET_INVALID, message, true, previous)),
    };
    if fetch::size(&dir) > state.options.max_cache_bytes {
        info!(gitrepo = %key(repo), "the repository cache outgrew its bound; fetching afresh");
        let _ = std::fs::remove_dir_all(dir.join("repo.git"));
    }
    let source = Source {
        url: repo.spec.url.clone(),
        reference: repo.spec.reference.clone(),
        credentials,
        ca_bundle: repo.spec.ca_bundle.clone(),
    };
    let paths = repo.spec.paths.clone();
    let kustomize = state.options.kustomize.clone();
    let built = tokio::task::spawn_blocking(move || {
        let bare = dir.join("repo.git");
        let revision = fetch::fetch(&bare, &source).map_err(|e| (false, e.0))?;
        let tree = dir.join("tree");
        fetch::export(&bare, &revision, &tree).map_err(|e| (false, e.0))?;
        let documents = build::build(&tree, &paths, &kustomize).map_err(|e| {
            let missing = matches!(e, build::BuildError::NoKustomize { .. });
            (missing, format!("revision {revision}: {e}"))
        });
        Ok::<_, (bool, String)>((revision, documents))
    })
    .await
    .map_err(|e| Error {
        action: "FetchRepository",
        message: e.to_string(),
        conflict: false,
    })?;
    let (revision, documents) = match built {
        Ok(found) => found,
        Err((_, message)) => {
            warn!(gitrepo = %key(repo), %message, "fetch failed");
            return Ok(fail(reasons::FETCH_FAILED, message, false, previous));
        }
    };
    let mut attempted = fail("", String::new(), false, previous);
    attempted.attempted = Some(revision.clone());
    let documents = match documents {
        Ok(documents) => documents,
        Err((missing, message)) => {
            let reason = if missing {
                reasons::KUSTOMIZE_MISSING
            } else {
                reasons::BUILD_FAILED
            };
            attempted.ready = Err((reason, message));
            attempted.stalled = true;
            return Ok(attempted);
        }
    };
    let desired = match desire(repo, state, &documents).await? {
        Ok(desired) => desired,
        Err(message) => {
            attempted.ready = Err((
                reasons::VALIDATION_FAILED,
                format!("revision {revision}: {message}; nothing was applied"),
            ));
            attempted.stalled = true;
            return Ok(attempted);
        }
    };
    let new_revision = previous.last_applied_revision.as_deref() != Some(revision.as_str())
        || previous.observed_generation != repo.metadata.generation;
    if new_revision {
        if let Err(message) = dry_run(state, &desired).await? {
            attempted.ready = Err((
                reasons::VALIDATION_FAILED,
                format!("revision {revision}: {message}; nothing was applied"),
            ));
            attempted.stalled = true;
            return Ok(attempted);
        }
        // kstatus reads Reconciling while a new revision goes in.
        let progressing = Outcome {
            ready: Err((
                reasons::PROGRESSING,
                format!("applying revision {revision}"),
            )),
            stalled: false,
            attempted: Some(revision.clone()),
            applied: previous.last_applied_revision.clone(),
            inventory: None,
            drift: 0,
        };
        write_status(repo, state, progressing, previous).await?;
    }
    let old = read_inventory(repo, state, previous).await?;
    let (drift, failure) = apply(repo, state, &desired, &revision).await?;
    if let Some(message) = failure {
        attempted.ready = Err((
            reasons::APPLY_FAILED,
            format!("revision {revision}: {message}"),
        ));
        return Ok(attempted);
    }
    let entries: BTreeSet<InventoryEntry> = desired.iter().map(|d| d.entry.clone()).collect();
    if repo.spec.prune() {
        prune(repo, state, old.iter().filter(|e| !entries.contains(e))).await?;
    }
    let entries: Vec<InventoryEntry> = entries.into_iter().collect();
    own_policies(repo, state, &entries, repo.spec.placement.as_ref()).await?;
    Ok(Outcome {
        ready: Ok(format!(
            "applied revision {revision}: {} objects",
            entries.len()
        )),
        stalled: false,
        attempted: Some(revision.clone()),
        applied: Some(revision),
        inventory: Some(entries),
        drift,
    })
}

fn gvk_of(object: &Value) -> GroupVersionKind {
    flotilla_work::kinds::gvk(
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
    )
}

/// The kinds the revision's CRDs define, with whether each is namespaced.
fn revision_kinds(documents: &[Document]) -> HashMap<GroupVersionKind, bool> {
    let mut kinds = HashMap::new();
    for doc in documents {
        let o = &doc.object;
        if o["apiVersion"].as_str() != Some("apiextensions.k8s.io/v1")
            || o["kind"].as_str() != Some("CustomResourceDefinition")
        {
            continue;
        }
        let group = o["spec"]["group"].as_str().unwrap_or_default();
        let kind = o["spec"]["names"]["kind"].as_str().unwrap_or_default();
        let namespaced = o["spec"]["scope"].as_str() != Some("Cluster");
        for version in o["spec"]["versions"].as_array().into_iter().flatten() {
            if let Some(v) = version["name"].as_str() {
                kinds.insert(GroupVersionKind::gvk(group, v, kind), namespaced);
            }
        }
    }
    kinds
}

/// Every object of the revision, namespaced and marked, or the first document at fault.
async fn desire(
    repo: &GitRepo,
    state: &State,
    documents: &[Document],
) -> Result<Result<Vec<Desired>, String>, Error> {
    let own_namespace = repo.namespace().unwrap_or_default();
    let default_namespace = repo
        .spec
        .target_namespace
        .clone()
        .unwrap_or_else(|| own_namespace.clone());
    let brought = revision_kinds(documents);
    let namespaces: HashSet<String> = documents
        .iter()
        .filter(|d| d.object["apiVersion"] == "v1" && d.object["kind"] == "Namespace")
        .filter_map(|d| d.object["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let mut existing_namespaces: HashMap<String, bool> = HashMap::new();
    let mut seen: HashMap<InventoryEntry, (String, usize)> = HashMap::new();
    let mut desired = Vec::new();
    for doc in documents {
        let at = |reason: String| format!("{}, document {}: {reason}", doc.file, doc.position);
        let gvk = gvk_of(&doc.object);
        let (namespaced, new_kind) = match state.kinds.resolve(&gvk).await {
            Ok(Some(resolved)) => (resolved.namespaced, false),
            Ok(None) => match brought.get(&gvk) {
                Some(namespaced) => (*namespaced, true),
                None => {
                    return Ok(Err(at(format!(
                        "the hub does not serve {} {} and no CustomResourceDefinition of this \
                         revision defines it",
                        doc.object["apiVersion"].as_str().unwrap_or_default(),
                        gvk.kind
                    ))));
                }
            },
            Err(e) => {
                return Err(Error {
                    action: "DiscoverKind",
                    message: e.to_string(),
                    conflict: false,
                });
            }
        };
        match validate_manifest(&doc.object) {
            Ok(()) | Err(ManifestError::NotFlotilla { .. }) => {}
            Err(e) => return Ok(Err(at(e.to_string()))),
        }
        let mut body = doc.object.clone();
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = if namespaced {
            let ns = body["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map_or_else(|| default_namespace.clone(), str::to_owned);
            body["metadata"]["namespace"] = json!(ns);
            Some(ns)
        } else {
            if let Some(meta) = body["metadata"].as_object_mut() {
                meta.remove("namespace");
            }
            None
        };
        let entry = InventoryEntry {
            api_version: body["apiVersion"].as_str().unwrap_or_default().to_owned(),
            kind: gvk.kind.clone(),
            namespace: namespace.clone(),
            name,
        };
        if let Some((file, position)) = seen.get(&entry) {
            return Ok(Err(at(format!(
                "{} {} is declared twice (also in {file}, document {position})",
                entry.kind,
                label(&entry)
            ))));
        }
        seen.insert(entry.clone(), (doc.file.clone(), doc.position));
        let new_namespace = match &namespace {
            Some(ns) if namespaces.contains(ns) => {
                if !existing_namespaces.contains_key(ns) {
                    let api: Api<k8s_openapi::api::core::v1::Namespace> =
                        Api::all(state.client.clone());
                    let exists = api
                        .get_opt(ns)
                        .await
                        .map_err(|e| Error::api("ReadNamespace", ns, &e))?
                        .is_some();
                    existing_namespaces.insert(ns.clone(), exists);
                }
                !existing_namespaces[ns]
            }
            _ => false,
        };
        let hash = fnv32a(body.to_string().as_bytes());
        let meta = &mut body["metadata"];
        meta["labels"][REPO_NAME] = json!(repo.name_any());
        meta["labels"][REPO_NAMESPACE] = json!(own_namespace);
        meta["annotations"][MANIFEST_HASH] = json!(format!("{hash:08x}"));
        let order = match (gvk.group.as_str(), gvk.kind.as_str()) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") => 0,
            ("", "Namespace") => 1,
            _ => 2,
        };
        desired.push(Desired {
            entry,
            body,
            gvk,
            new_kind,
            new_namespace,
            order,
        });
    }
    desired.sort_by_key(|d| d.order);
    Ok(Ok(desired))
}

fn label(entry: &InventoryEntry) -> String {
    match &entry.namespace {
        Some(ns) => format!("{ns}/{}", entry.name),
        None => entry.name.clone(),
    }
}

fn api_for(client: &Client, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// A server-side dry run of every object whose kind and namespace exist already: the hub's
/// own schema and admission checks, before anything is written.
async fn dry_run(state: &State, desired: &[Desired]) -> Result<Result<(), String>, Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
    for d in desired.iter().filter(|d| !d.new_kind && !d.new_namespace) {
        let Some(resolved) = state.kinds.remembered(&d.gvk) else {
            continue;
        };
        let api = api_for(
            &state.client,
            &resolved.resource,
            d.entry.namespace.as_deref(),
        );
        match api
            .patch(&d.entry.name, &params, &Patch::Apply(&d.body))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 409 =>
            {
                return Ok(Err(format!(
                    "{} {}: the hub refuses it: {}",
                    d.entry.kind,
                    label(&d.entry),
                    status.message
                )));
            }
            Err(e) => {
                return Err(Error::api(
                    "DryRunApply",
                    &format!("{} {}", d.entry.kind, label(&d.entry)),
                    &e,
                ));
            }
        }
    }
    Ok(Ok(()))
}

/// Applies every object that does not hold its manifest; returns the drift corrections and
/// the first refusal.
async fn apply(
    repo: &GitRepo,
    state: &State,
    desired: &[Desired],
    revision: &str,
) -> Result<(i64, Option<String>), Error> {
    let key = key(repo);
    let converged_before: HashSet<InventoryEntry> = {
        let converged = state.converged.lock().unwrap_or_else(|p| p.into_inner());
        match converged.get(&key) {
            Some((applied, set)) if applied == revision => set.clone(),
            _ => HashSet::new(),
        }
    };
    let selector = format!(
        "{REPO_NAME}={},{REPO_NAMESPACE}={}",
        repo.name_any(),
        repo.namespace().unwrap_or_default()
    );
    let mut live: HashMap<GroupVersionKind, HashMap<(Option<String>, String), Value>> =
        HashMap::new();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut drift = 0;
    let mut converged = HashSet::new();
    let mut crds_applied = Vec::new();
    for d in desired {
        if d.order > 0 && !crds_applied.is_empty() {
            wait_established(state, &std::mem::take(&mut crds_applied)).await;
        }
        let resolved = match state.kinds.resolve(&d.gvk).await {
            Ok(Some(resolved)) => resolved,
            Ok(None) => {
                return Ok((
                    drift,
                    Some(format!(
                        "the hub does not serve {} {} yet (its CRD is not established)",
                        d.entry.api_version, d.entry.kind
                    )),
                ));
            }
            Err(e) => {
                return Err(Error {
                    action: "DiscoverKind",
                    message: e.to_string(),
                    conflict: false,
                });
            }
        };
        if !live.contains_key(&d.gvk) {
            let all: Api<DynamicObject> = Api::all_with(state.client.clone(), &resolved.resource);
            let listed = all
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| Error::api("ListApplied", &d.entry.kind, &e))?;
            let objects = listed
                .items
                .into_iter()
                .filter_map(|o| {
                    let id = (o.namespace(), o.name_any());
                    serde_json::to_value(o).ok().map(|v| (id, v))
                })
                .collect();
            live.insert(d.gvk.clone(), objects);
        }
        let current = live
            .get(&d.gvk)
            .and_then(|objects| objects.get(&(d.entry.namespace.clone(), d.entry.name.clone())));
        // List items carry no apiVersion and kind; compare the rest.
        let mut wanted = d.body.clone();
        if let Some(object) = wanted.as_object_mut() {
            object.remove("apiVersion");
            object.remove("kind");
        }
        if current.is_some_and(|c| up_to_date(c, &wanted)) {
            converged.insert(d.entry.clone());
            continue;
        }
        let api = api_for(
            &state.client,
            &resolved.resource,
            d.entry.namespace.as_deref(),
        );
        match api
            .patch(&d.entry.name, &params, &Patch::Apply(&d.body))
            .await
        {
            Ok(written) => {
                if converged_before.contains(&d.entry) {
                    drift += 1;
                    info!(gitrepo = %key, object = %format!("{} {}", d.entry.kind, label(&d.entry)), "put back an object changed on the hub");
                }
                if serde_json::to_value(&written).is_ok_and(|w| up_to_date(&w, &wanted)) {
                    converged.insert(d.entry.clone());
                }
            }
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 409 =>
            {
                return Ok((
                    drift,
                    Some(format!(
                        "{} {}: the hub refuses it: {}",
                        d.entry.kind,
                        label(&d.entry),
                        status.message
                    )),
                ));
            }
            Err(e) => {
                return Err(Error::api(
                    "ApplyObject",
                    &format!("{} {}", d.entry.kind, label(&d.entry)),
                    &e,
                ));
            }
        }
        if d.order == 0 {
            crds_applied.push(d.entry.name.clone());
        }
    }
    if !crds_applied.is_empty() {
        wait_established(state, &crds_applied).await;
    }
    state
        .converged
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (revision.to_owned(), converged));
    Ok((drift, None))
}

/// Waits (up to 30 s) for the CRDs `names` to be Established, then forgets what discovery
/// said about their kinds.
async fn wait_established(state: &State, names: &[String]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(state.client.clone());
    for name in names {
        let established = kube::runtime::wait::await_condition(
            crds.clone(),
            name,
            kube::runtime::wait::conditions::is_crd_established(),
        );
        if tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .is_err()
        {
            warn!(crd = %name, "the CRD is not Established after 30s");
        }
        if let Ok(crd) = crds.get(name).await {
            for version in &crd.spec.versions {
                state.kinds.forget(&GroupVersionKind::gvk(
                    &crd.spec.group,
                    &version.name,
                    &crd.spec.names.kind,
                ));
            }
        }
    }
}

fn inventory_config_map(repo: &GitRepo) -> String {
    format!("gitrepo-{}-inventory", repo.name_any())
}

fn owner(repo: &GitRepo) -> OwnerReference {
    OwnerReference {
        api_version: GitRepo::api_version(&()).into_owned(),
        kind: GitRepo::kind(&()).into_owned(),
        name: repo.name_any(),
        uid: repo.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

async fn read_inventory(
    repo: &GitRepo,
    state: &State,
    previous: &GitRepoStatus,
) -> Result<Vec<InventoryEntry>, Error> {
    let Some(inventory) = &previous.inventory else {
        return Ok(Vec::new());
    };
    let Some(name) = &inventory.config_map_name else {
        return Ok(inventory.entries.clone());
    };
    let api: Api<ConfigMap> =
        Api::namespaced(state.client.clone(), &repo.namespace().unwrap_or_default());
    let map = api
        .get_opt(name)
        .await
        .map_err(|e| Error::api("ReadInventory", name, &e))?;
    Ok(map
        .and_then(|m| m.data)
        .and_then(|d| d.get("inventory").cloned())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

/// Stores the inventory: in the status when small, else in a ConfigMap the GitRepo owns.
async fn store_inventory(
    repo: &GitRepo,
    state: &State,
    entries: &[InventoryEntry],
) -> Result<Inventory, Error> {
    let api: Api<ConfigMap> =
        Api::namespaced(state.client.clone(), &repo.namespace().unwrap_or_default());
    let name = inventory_config_map(repo);
    if entries.len() <= INVENTORY_INLINE {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::api("DeleteInventory", &name, &e)),
        }
        return Ok(Inventory {
            count: entries.len() as i64,
            entries: entries.to_vec(),
            config_map_name: None,
        });
    }
    let text = serde_json::to_string(entries).map_err(|e| Error {
        action: "WriteInventory",
        message: e.to_string(),
        conflict: false,
    })?;
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "ownerReferences": [owner(repo)]},
        "data": {"inventory": text},
    });
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::api("WriteInventory", &name, &e))?;
    Ok(Inventory {
        count: entries.len() as i64,
        entries: Vec::new(),
        config_map_name: Some(name),
    })
}

/// Deletes the objects of `gone` that still carry this GitRepo's labels.
async fn prune<'a>(
    repo: &GitRepo,
    state: &State,
    gone: impl Iterator<Item = &'a InventoryEntry>,
) -> Result<(), Error> {
    let ours = |object: &DynamicObject| {
        object.labels().get(REPO_NAME) == Some(&repo.name_any())
            && object.labels().get(REPO_NAMESPACE) == repo.namespace().as_ref()
    };
    for entry in gone {
        let gvk = flotilla_work::kinds::gvk(&entry.api_version, &entry.kind);
        let Ok(Some(resolved)) = state.kinds.resolve(&gvk).await else {
            continue;
        };
        let api = api_for(
            &state.client,
            &resolved.resource,
            entry.namespace.as_deref(),
        );
        let Some(object) = api
            .get_opt(&entry.name)
            .await
            .map_err(|e| Error::api("ReadApplied", &entry.name, &e))?
        else {
            continue;
        };
        if !ours(&object) || object.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let params = DeleteParams {
            propagation_policy: Some(Propagation::Background),
            ..DeleteParams::default()
        };
        match api.delete(&entry.name, &params).await {
            Ok(_) => {
                info!(gitrepo = %key(repo), object = %format!("{} {}", entry.kind, label(entry)), "pruned an object that left Git")
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(Error::api("PruneObject", &entry.name, &e)),
        }
    }
    Ok(())
}

fn policy_name(repo: &GitRepo) -> String {
    format!("gitrepo-{}", repo.name_any())
}

/// The ClusterPropagationPolicy placing what this GitRepo applied outside its namespace
/// (cluster-scoped objects, and objects in other namespaces).
fn cluster_policy_name(repo: &GitRepo) -> String {
    format!(
        "gitrepo-{}-{}",
        repo.namespace().unwrap_or_default(),
        repo.name_any()
    )
}

/// The labels marking what this GitRepo applied and the policies it owns.
fn repo_labels(repo: &GitRepo) -> BTreeMap<String, String> {
    BTreeMap::from([
        (REPO_NAME.to_owned(), repo.name_any()),
        (
            REPO_NAMESPACE.to_owned(),
            repo.namespace().unwrap_or_default(),
        ),
    ])
}

fn is_ours(repo: &GitRepo, meta: &ObjectMeta) -> bool {
    let labels = meta.labels.clone().unwrap_or_default();
    repo_labels(repo)
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// One resource selector per (apiVersion, kind, namespace) of `entries`, matching this
/// GitRepo's labels.
fn selectors<'a>(repo: &GitRepo, entries: impl Iterator<Item = &'a InventoryEntry>) -> Vec<Value> {
    let kinds: BTreeSet<(&str, &str, Option<&str>)> = entries
        .map(|e| {
            (
                e.api_version.as_str(),
                e.kind.as_str(),
                e.namespace.as_deref(),
            )
        })
        .collect();
    let labels = repo_labels(repo);
    kinds
        .into_iter()
        .map(|(api_version, kind, namespace)| {
            let mut selector = json!({
                "apiVersion": api_version,
                "kind": kind,
                "labelSelector": {"matchLabels": labels},
            });
            if let Some(namespace) = namespace {
                selector["namespace"] = json!(namespace);
            }
            selector
        })
        .collect()
}

/// Writes policy `name` with `selectors` and `placement` through `api`, or, with no selectors or
/// no placement, deletes it if it is this GitRepo's. A policy of that name that is not this
/// GitRepo's is never touched: the pass fails saying so.
async fn write_policy<K>(
    repo: &GitRepo,
    api: &Api<K>,
    name: &str,
    selectors: Vec<Value>,
    placement: Option<&Placement>,
    owner_references: Value,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| Error::api("ReadPolicy", name, &e))?;
    let ours = existing.as_ref().is_some_and(|p| is_ours(repo, p.meta()));
    if let Some(existing) = &existing
        && !ours
        && existing.meta().deletion_timestamp.is_none()
    {
        return Err(Error {
            action: "WritePolicy",
            message: format!(
                "{} {name} exists and was not made by this GitRepo; rename or delete it",
                K::kind(&())
            ),
            conflict: false,
        });
    }
    let Some(placement) = placement.filter(|_| !selectors.is_empty()) else {
        if ours {
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api("DeletePolicy", name, &e)),
            }
        }
        return Ok(());
    };
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {
            "name": name,
            "labels": repo_labels(repo),
            "ownerReferences": owner_references,
        },
        "spec": {"resourceSelectors": selectors, "placement": placement},
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::api("WritePolicy", name, &e))?;
    Ok(())
}

/// Owns (or removes) the policies of `spec.placement`: the PropagationPolicy
/// `gitrepo-<name>` for what was applied in the GitRepo's namespace, and the
/// ClusterPropagationPolicy `gitrepo-<namespace>-<name>` for the rest (cluster-scoped objects
/// such as CRDs, and objects in other namespaces), each selecting by this GitRepo's labels.
/// `placement` `None` removes both.
async fn own_policies(
    repo: &GitRepo,
    state: &State,
    entries: &[InventoryEntry],
    placement: Option<&Placement>,
) -> Result<(), Error> {
    let namespace = repo.namespace().unwrap_or_default();
    let (here, elsewhere): (Vec<&InventoryEntry>, Vec<&InventoryEntry>) = entries
        .iter()
        .filter(|e| is_bound(e))
        .partition(|e| e.namespace.as_deref() == Some(namespace.as_str()));
    write_policy(
        repo,
        &Api::<PropagationPolicy>::namespaced(state.client.clone(), &namespace),
        &policy_name(repo),
        selectors(repo, here.into_iter()),
        placement,
        json!([owner(repo)]),
    )
    .await?;
    // A cluster-scoped object cannot be owned by a namespaced one: removed by `cleanup`.
    write_policy(
        repo,
        &Api::<ClusterPropagationPolicy>::all(state.client.clone()),
        &cluster_policy_name(repo),
        selectors(repo, elsewhere.into_iter()),
        placement,
        json!([]),
    )
    .await
}

/// Whether an applied object propagates through a binding of the policies this GitRepo owns:
/// not Namespaces (namespace sync sends them to every member), Flotilla's own kinds or what the
/// detector never propagates.
fn is_bound(entry: &InventoryEntry) -> bool {
    matching::is_bound_by_policy(&entry.api_version, &entry.kind, entry.namespace.as_deref())
}

/// The propagation of the applied objects, from their ResourceBindings and
/// ClusterResourceBindings.
async fn propagation(
    repo: &GitRepo,
    state: &State,
    entries: &[InventoryEntry],
) -> Result<Option<PropagationSummary>, Error> {
    if repo.spec.placement.is_none() {
        return Ok(None);
    }
    let entries: Vec<&InventoryEntry> = entries.iter().filter(|e| is_bound(e)).collect();
    let wanted: HashSet<(&str, &str, Option<&str>, &str)> = entries
        .iter()
        .map(|e| {
            (
                group_of(&e.api_version),
                e.kind.as_str(),
                e.namespace.as_deref(),
                e.name.as_str(),
            )
        })
        .collect();
    let namespaces: BTreeSet<Option<&str>> =
        entries.iter().map(|e| e.namespace.as_deref()).collect();
    let mut bindings: Vec<(Option<String>, ResourceBindingSpec, ResourceBindingStatus)> =
        Vec::new();
    for namespace in namespaces {
        match namespace {
            Some(ns) => {
                let api: Api<ResourceBinding> = Api::namespaced(state.client.clone(), ns);
                let list = api
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| Error::api("ListBindings", ns, &e))?;
                bindings.extend(
                    list.items
                        .into_iter()
                        .map(|b| (Some(ns.to_owned()), b.spec, b.status.unwrap_or_default())),
                );
            }
            None => {
                let api: Api<ClusterResourceBinding> = Api::all(state.client.clone());
                let list = api
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| Error::api("ListBindings", "cluster-scoped", &e))?;
                bindings.extend(
                    list.items
                        .into_iter()
                        .filter(|b| b.spec.resource.namespace.is_none())
                        .map(|b| (None, b.spec.spec, b.status.unwrap_or_default())),
                );
            }
        }
    }
    let mut summary = PropagationSummary::default();
    let mut clusters: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (namespace, spec, status) in &bindings {
        let r = &spec.resource;
        let key = (
            group_of(&r.api_version),
            r.kind.as_str(),
            namespace.as_deref(),
            r.name.as_str(),
        );
        if !wanted.contains(&key) {
            continue;
        }
        summary.bindings += 1;
        if conditions::is_true(&status.conditions, conditions::FULLY_APPLIED) {
            summary.fully_applied += 1;
        }
        let mut healthy = !spec.clusters.is_empty();
        for target in &spec.clusters {
            let item = status
                .aggregated_status
                .iter()
                .find(|a| a.cluster_name == target.name);
            let ready =
                item.is_some_and(|a| a.applied && a.health == Some(ResourceHealth::Healthy));
            healthy &= ready;
            let counts = clusters.entry(target.name.clone()).or_default();
            counts.1 += 1;
            if ready {
                counts.0 += 1;
            }
        }
        if healthy {
            summary.healthy += 1;
        }
    }
    summary.clusters = clusters
        .into_iter()
        .map(|(name, (ready, total))| ClusterReadiness {
            name,
            ready: format!("{ready}/{total}"),
        })
        .collect();
    Ok(Some(summary))
}

async fn write_status(
    repo: &GitRepo,
    state: &State,
    outcome: Outcome,
    previous: &GitRepoStatus,
) -> Result<(), Error> {
    let generation = repo.metadata.generation;
    let now = Time(Timestamp::now());
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.last_attempted_revision = outcome.attempted;
    status.last_applied_revision = outcome.applied;
    status.drift_corrections += outcome.drift;
    if let Some(entries) = &outcome.inventory {
        status.inventory = Some(store_inventory(repo, state, entries).await?);
        status.propagation = propagation(repo, state, entries).await?;
    }
    let progressing = matches!(&outcome.ready, Err((r, _)) if *r == reasons::PROGRESSING);
    let (ready, reason, message) = match &outcome.ready {
        Ok(message) => (true, reasons::SUCCEEDED, message.clone()),
        Err((reason, message)) => (false, *reason, message.clone()),
    };
    set_condition(
        &mut status.conditions,
        conditions::new(
            conditions::READY,
            ready,
            reason,
            message.clone(),
            generation,
        ),
        now.clone(),
    );
    set_condition(
        &mut status.conditions,
        conditions::new(
            reasons::RECONCILING,
            progressing,
            if progressing {
                reasons::PROGRESSING
            } else {
                reasons::IDLE
            },
            if progressing {
                message.clone()
            } else {
                String::new()
            },
            generation,
        ),
        now.clone(),
    );
    set_condition(
        &mut status.conditions,
        conditions::new(
            reasons::STALLED,
            outcome.stalled,
            if outcome.stalled {
                reason
            } else {
                reasons::NOT_STALLED
            },
            if outcome.stalled {
                message
            } else {
                String::new()
            },
            generation,
        ),
        now,
    );
    if Some(&status) == repo.status.as_ref() {
        return Ok(());
    }
    let owned = serde_json::to_value(&status).map_err(|e| Error {
        action: "WriteStatus",
        message: e.to_string(),
        conflict: false,
    })?;
    let api: Api<GitRepo> =
        Api::namespaced(state.client.clone(), &repo.namespace().unwrap_or_default());
    status::write(
        &api,
        repo,
        StatusWrite {
            field_manager: FIELD_MANAGER,
            owned,
        },
    )
    .await
    .map_err(|e| Error::api("WriteStatus", &key(repo), &e))?;
    Ok(())
}

async fn cleanup(repo: &GitRepo, state: &State) -> Result<Action, Error> {
    own_policies(repo, state, &[], None).await?;
    if repo.spec.prune() {
        let previous = repo.status.clone().unwrap_or_default();
        let entries = read_inventory(repo, state, &previous).await?;
        // Namespaces last: deleting one deletes what is in it.
        let (namespaces, rest): (Vec<&InventoryEntry>, Vec<&InventoryEntry>) = entries
            .iter()
            .partition(|e| e.kind == "Namespace" && e.api_version == "v1");
        prune(repo, state, rest.into_iter().chain(namespaces)).await?;
    }
    state
        .converged
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key(repo));
    let _ = std::fs::remove_dir_all(cache_of(repo, state));
    Ok(Action::await_change())
}
