//! `gitops.flotilla.io/v1alpha1`: GitRepo, a Git repository whose manifests the hub applies,
//! prunes and keeps in sync. Types, defaults and `validate()` only; fetching, building and
//! applying live in `flotilla-gitops`.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::policy::Placement;

/// The API group of GitRepo.
pub const GROUP: &str = "gitops.flotilla.io";

/// How often a repository is fetched when `interval` is absent.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The shortest `interval` accepted.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// A Git repository whose manifests the hub applies.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "gitops.flotilla.io",
    version = "v1alpha1",
    kind = "GitRepo",
    plural = "gitrepos",
    namespaced,
    status = "GitRepoStatus",
    shortname = "gr",
    category = "flotilla",
    derive = "Default",
    derive = "PartialEq",
    doc = "A Git repository whose manifests the hub applies, prunes and keeps in sync",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".status.lastAppliedRevision"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GitRepoSpec {
    /// The repository: `https://`, `http://`, `ssh://` (or `user@host:path`), `git://` or
    /// `file://`.
    pub url: String,
    /// What to follow; the remote's default branch (its `HEAD`) when absent.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitReference>,
    /// Directories (or globs of directories) holding the manifests, relative to the
    /// repository root; the root when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// How often to fetch, such as `30s` or `5m`; `1m` when absent, at least `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// A Secret in the GitRepo's namespace with credentials: `username` and `password` (or a
    /// token as the password) for HTTPS, `identity` and `known_hosts` for SSH, and `webhook`,
    /// the shared secret of the push webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
    /// PEM certificates to trust for an HTTPS server, instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Stop fetching and applying; what was applied stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
    /// Delete objects that leave Git (and, when the GitRepo is deleted, everything it applied);
    /// true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
    /// The namespace of objects that name none; the GitRepo's namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Where the applied objects go in the fleet: the controller owns a PropagationPolicy
    /// `gitrepo-<name>` with this placement selecting what this GitRepo applied in its own
    /// namespace, and a ClusterPropagationPolicy `gitrepo-<namespace>-<name>` selecting the
    /// rest (cluster-scoped objects, other namespaces). Namespaces reach every member through
    /// namespace sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// One of a branch, a tag, a semver range over tags, or a commit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitReference {
    /// A branch to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// A semver range (such as `>=1.2.0, <2`); the newest tag matching it (a leading `v` is
    /// allowed in tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// A full commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// A Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// The Secret's name.
    pub name: String,
}

/// What the GitRepo controller last did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepoStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The commit last fetched and tried (full SHA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// The commit whose manifests are applied (full SHA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// What is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// How many times an applied object changed or deleted on the hub was put back.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drift_corrections: i64,
    /// How the applied objects are propagating to the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationSummary>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The objects a GitRepo applied.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// How many objects.
    pub count: i64,
    /// The objects, when there are at most [`INVENTORY_INLINE`]; otherwise in
    /// `configMapName`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<InventoryEntry>,
    /// A ConfigMap in the GitRepo's namespace holding the entries (key `inventory`, a JSON
    /// list) when there are too many for the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
}

/// The most inventory entries kept in the status itself.
pub const INVENTORY_INLINE: usize = 100;

/// One applied object.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    /// Its apiVersion.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace, for namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// The propagation of the applied objects: their bindings, and per cluster how many of the
/// objects sent there are applied and healthy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropagationSummary {
    /// Bindings of applied objects.
    pub bindings: i64,
    /// Of those, how many are FullyApplied.
    pub fully_applied: i64,
    /// Of those, how many are healthy in every cluster.
    pub healthy: i64,
    /// Per cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub clusters: Vec<ClusterReadiness>,
}

/// How many objects sent to one cluster are applied and healthy there.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReadiness {
    /// The cluster.
    pub name: String,
    /// `n/m`: ready of scheduled.
    pub ready: String,
}

impl GitRepoSpec {
    /// Whether objects that leave Git are deleted.
    pub fn prune(&self) -> bool {
        self.prune.unwrap_or(true)
    }

    /// The fetch interval (already validated; the default when unparseable).
    pub fn interval(&self) -> Duration {
        self.interval
            .as_deref()
            .and_then(|i| humantime::parse_duration(i).ok())
            .unwrap_or(DEFAULT_INTERVAL)
            .max(MIN_INTERVAL)
    }
}
