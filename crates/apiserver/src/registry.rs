//! The resource table: which group/version/resource names a logical cluster serves, built-in
//! kinds (one table entry each) plus kinds served from CustomResourceDefinitions. It owns
//! naming and discovery facts only; it never touches stored objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

/// How the scale subresource maps onto an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScaleSpec {
    /// Dotted path of the desired replicas, e.g. `.spec.replicas`.
    pub(crate) spec_replicas_path: String,
    /// Dotted path of the observed replicas, e.g. `.status.replicas`.
    pub(crate) status_replicas_path: String,
    /// Dotted path of the label selector string, if any.
    pub(crate) label_selector_path: Option<String>,
}

/// One served resource in one group/version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceInfo {
    /// API group, empty for core.
    pub(crate) group: String,
    /// Version served.
    pub(crate) version: String,
    /// Plural resource name (URL segment).
    pub(crate) plural: String,
    /// Singular name.
    pub(crate) singular: String,
    /// Kind.
    pub(crate) kind: String,
    /// Kind of the list.
    pub(crate) list_kind: String,
    /// Namespaced or cluster-scoped.
    pub(crate) namespaced: bool,
    /// Short names (`cm`, `deploy`).
    pub(crate) short_names: Vec<String>,
    /// Categories (`all`).
    pub(crate) categories: Vec<String>,
    /// Has a `/status` subresource.
    pub(crate) status: bool,
    /// Has a `/scale` subresource.
    pub(crate) scale: Option<ScaleSpec>,
    /// Whether writes track `metadata.generation`.
    pub(crate) generation: bool,
    /// Whether writes record `metadata.managedFields` (kube-apiserver keeps none for
    /// CertificateSigningRequests).
    pub(crate) managed_fields: bool,
    /// The warning every request of a deprecated resource (or CRD version) gets.
    pub(crate) deprecation: Option<String>,
    /// Served from a CRD (deletes return the object, not a Status).
    pub(crate) custom: bool,
    /// The CRD version's structural schema (custom resources only).
    pub(crate) schema: Option<CustomSchema>,
    /// The CRD version's `additionalPrinterColumns` (custom resources only).
    pub(crate) printer_columns: Vec<PrinterColumn>,
    /// A create-only review (SelfSubjectReview, SelfSubjectAccessReview): answered about the
    /// requester, never stored.
    pub(crate) review: bool,
}

/// One of a CRD version's `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrinterColumn {
    pub(crate) name: String,
    pub(crate) ty: String,
    pub(crate) format: String,
    pub(crate) description: String,
    pub(crate) priority: i64,
    pub(crate) json_path: String,
}

fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    let s = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: s(c, "name"),
                    ty: s(c, "type"),
                    format: s(c, "format"),
                    description: s(c, "description"),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: s(c, "jsonPath"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A CRD version's `openAPIV3Schema`, read once when the CRD is registered.
#[derive(Debug, Clone)]
pub(crate) struct CustomSchema {
    raw: Arc<Value>,
    schema: Arc<flotilla_schema::Schema>,
    has_defaults: bool,
}

fn has_defaults(s: &flotilla_schema::Schema) -> bool {
    s.default.is_some()
        || s.properties.values().any(has_defaults)
        || s.items.as_deref().is_some_and(has_defaults)
        || s.additional_properties.as_deref().is_some_and(has_defaults)
}

impl CustomSchema {
    fn read(raw: &Value) -> Option<CustomSchema> {
        let schema = flotilla_schema::Schema::from_openapi(raw).ok()?;
        Some(CustomSchema {
            raw: Arc::new(raw.clone()),
            has_defaults: has_defaults(&schema),
            schema: Arc::new(schema),
        })
    }

    /// Whether any node of the schema has a `default` (reads then need defaulting).
    pub(crate) fn has_defaults(&self) -> bool {
        self.has_defaults
    }

    /// The schema as walkable by `flotilla-schema`.
    pub(crate) fn schema(&self) -> &flotilla_schema::Schema {
        &self.schema
    }

    /// The schema as the CRD wrote it (for OpenAPI documents).
    pub(crate) fn raw(&self) -> &Value {
        &self.raw
    }
}

impl PartialEq for CustomSchema {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for CustomSchema {}

impl ResourceInfo {
    /// The storage key shared by all versions: `<group>/<plural>`.
    pub(crate) fn storage_key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `apiVersion` for objects of this resource.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Verbs every resource supports.
pub(crate) const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    managed_fields: bool,
    deprecation: Option<&'static str>,
    review: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: true,
        managed_fields: true,
        deprecation: None,
        review: false,
    }
}

impl Builtin {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short_names = s;
        self
    }
    const fn cat(mut self, c: &'static [&'static str]) -> Self {
        self.categories = c;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }
    const fn no_generation(mut self) -> Self {
        self.generation = false;
        self
    }
    const fn no_managed_fields(mut self) -> Self {
        self.managed_fields = false;
        self
    }
    const fn deprecated(mut self, warning: &'static str) -> Self {
        self.deprecation = Some(warning);
        self
    }
    const fn review(mut self) -> Self {
        self.review = true;
        self.generation = false;
        self
    }
}

const ALL: &[&str] = &["all"];

/// The built-in resources. Adding one is one line here.
const BUILTINS: &[Builtin] = &[
    b("", "v1", "namespaces", "Namespace", false)
        .short(&["ns"])
        .status()
        .no_generation(),
    b("", "v1", "configmaps", "ConfigMap", true)
        .short(&["cm"])
        .no_generation(),
    b("", "v1", "secrets", "Secret", true).no_generation(),
    b("", "v1", "serviceaccounts", "ServiceAccount", true)
        .short(&["sa"])
        .no_generation(),
    b("", "v1", "services", "Service", true)
        .short(&["svc"])
        .cat(ALL)
        .status()
        .no_generation(),
    b("", "v1", "endpoints", "Endpoints", true)
        .short(&["ep"])
        .no_generation()
        .deprecated("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"),
    b("", "v1", "events", "Event", true)
        .short(&["ev"])
        .no_generation(),
    b("", "v1", "nodes", "Node", false)
        .short(&["no"])
        .status()
        .no_generation(),
    b("", "v1", "pods", "Pod", true)
        .short(&["po"])
        .cat(ALL)
        .status(),
    b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
    )
    .short(&["pvc"])
    .status()
    .no_generation(),
    b("", "v1", "persistentvolumes", "PersistentVolume", false)
        .short(&["pv"])
        .status()
        .no_generation(),
    b("", "v1", "resourcequotas", "ResourceQuota", true)
        .short(&["quota"])
        .status()
        .no_generation(),
    b("", "v1", "limitranges", "LimitRange", true)
        .short(&["limits"])
        .no_generation(),
    b("", "v1", "podtemplates", "PodTemplate", true),
    b(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
    )
    .short(&["rc"])
    .cat(ALL)
    .status()
    .scale(),
    b("apps", "v1", "deployments", "Deployment", true)
        .short(&["deploy"])
        .cat(ALL)
        .status()
        .scale(),
    b("apps", "v1", "statefulsets", "StatefulSet", true)
        .short(&["sts"])
        .cat(ALL)
        .status()
        .scale(),
    b("apps", "v1", "daemonsets", "DaemonSet", true)
        .short(&["ds"])
        .cat(ALL)
        .status(),
    b("apps", "v1", "replicasets", "ReplicaSet", true)
        .short(&["rs"])
        .cat(ALL)
        .status()
        .scale(),
    b(
        "apps",
        "v1",
        "controllerrevisions",
        "ControllerRevision",
        true,
    )
    .no_generation(),
    b(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
    )
    .short(&["hpa"])
    .cat(ALL)
    .status(),
    b("batch", "v1", "jobs", "Job", true).cat(ALL).status(),
    b("batch", "v1", "cronjobs", "CronJob", true)
        .short(&["cj"])
        .cat(ALL)
        .status(),
    b("coordination.k8s.io", "v1", "leases", "Lease", true).no_generation(),
    b("networking.k8s.io", "v1", "ingresses", "Ingress", true)
        .short(&["ing"])
        .status(),
    b(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
    )
    .short(&["netpol"]),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
    ),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    )
    .short(&["pdb"])
    .status(),
    b(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
    )
    .short(&["pc"]),
    b("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", false).no_generation(),
    b(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
    )
    .short(&["sc"])
    .no_generation(),
    b("storage.k8s.io", "v1", "csidrivers", "CSIDriver", false).no_generation(),
    b("storage.k8s.io", "v1", "csinodes", "CSINode", false).no_generation(),
    b(
        "storage.k8s.io",
        "v1",
        "volumeattachments",
        "VolumeAttachment",
        false,
    )
    .status()
    .no_generation(),
    b("rbac.authorization.k8s.io", "v1", "roles", "Role", true).no_generation(),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
    )
    .no_generation(),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
    )
    .no_generation(),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    )
    .no_generation(),
    b(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
    )
    .short(&["csr"])
    .status()
    .no_generation()
    .no_managed_fields(),
    b(
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    )
    .review(),
    b(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    )
    .review(),
    b(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    )
    .review(),
    b(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    )
    .review(),
    b(
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    )
    .review(),
    b("events.k8s.io", "v1", "events", "Event", true)
        .short(&["ev"])
        .no_generation(),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    )
    .short(&["crd", "crds"])
    .cat(&["api-extensions"])
    .status(),
];

fn builtin_info(b: &Builtin) -> ResourceInfo {
    let scale = b.scale.then(|| ScaleSpec {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        label_selector_path: None,
    });
    ResourceInfo {
        group: b.group.into(),
        version: b.version.into(),
        plural: b.plural.into(),
        singular: b.kind.to_lowercase(),
        kind: b.kind.into(),
        list_kind: format!("{}List", b.kind),
        namespaced: b.namespaced,
        short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
        categories: b.categories.iter().map(|s| s.to_string()).collect(),
        status: b.status,
        scale,
        generation: b.generation,
        managed_fields: b.managed_fields,
        deprecation: b.deprecation.map(String::from),
        custom: false,
        schema: None,
        printer_columns: Vec::new(),
        review: b.review,
    }
}

/// The storage key of CRDs.
pub(crate) const CRD_KEY: &str = "apiextensions.k8s.io/customresourcedefinitions";
/// The storage key of namespaces.
pub(crate) const NAMESPACE_KEY: &str = "/namespaces";

/// Served resources of one logical cluster, indexed by (group, version, plural).
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    by_gvr: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
    /// CRD name → resources it serves (one per served version).
    crds: BTreeMap<String, Vec<Arc<ResourceInfo>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// A registry with the built-in resources only.
    pub(crate) fn new() -> Self {
        let mut by_gvr = BTreeMap::new();
        for builtin in BUILTINS {
            let info = Arc::new(builtin_info(builtin));
            by_gvr.insert(
                (
                    info.group.clone(),
                    info.version.clone(),
                    info.plural.clone(),
                ),
                info,
            );
        }
        Registry {
            by_gvr,
            crds: BTreeMap::new(),
        }
    }

    /// Look up a served resource.
    pub(crate) fn get(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceInfo>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// A served resource stored under `key` (`<group>/<plural>`), in its preferred version.
    pub(crate) fn by_storage_key(&self, key: &str) -> Option<Arc<ResourceInfo>> {
        let (group, plural) = key.split_once('/')?;
        self.by_gvr
            .values()
            .filter(|i| i.group == group && i.plural == plural)
            .max_by_key(|i| version_priority(&i.version))
            .cloned()
    }

    /// The resource serving `kind` in `group`/`version` (subresources aside).
    pub(crate) fn by_kind(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<Arc<ResourceInfo>> {
        self.by_gvr
            .range((group.to_string(), version.to_string(), String::new())..)
            .take_while(|((g, v, _), _)| g == group && v == version)
            .map(|(_, i)| i)
            .find(|i| i.kind == kind && !i.review)
            .cloned()
    }

    /// Every served resource, sorted by group, version, plural.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_gvr.values()
    }

    /// Served versions of a group, preferred (first-served, highest priority) first.
    pub(crate) fn group_versions(&self) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for info in self.by_gvr.values() {
            let versions = groups.entry(info.group.clone()).or_default();
            if !versions.contains(&info.version) {
                versions.push(info.version.clone());
            }
        }
        for versions in groups.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }

    /// Whether some other CRD (not `crd_name`) serves `plural` or `kind` in `group`.
    pub(crate) fn names_conflict(
        &self,
        crd_name: &str,
        group: &str,
        plural: &str,
        kind: &str,
    ) -> bool {
        self.by_gvr.values().any(|info| {
            info.group == group
                && (info.plural == plural || info.kind == kind)
                && !self
                    .crds
                    .get(crd_name)
                    .is_some_and(|own| own.iter().any(|o| o == info))
        })
    }

    /// Serve (or re-serve) the resources of a CRD object. Returns the storage key.
    pub(crate) fn register_crd(&mut self, crd: &Value) -> Option<String> {
        let name = crd.pointer("/metadata/name")?.as_str()?.to_string();
        self.unregister_crd(&name);
        let infos = crd_infos(crd)?;
        let key = infos.first().map(|i| i.storage_key());
        let infos: Vec<Arc<ResourceInfo>> = infos.into_iter().map(Arc::new).collect();
        for info in &infos {
            self.by_gvr.insert(
                (
                    info.group.clone(),
                    info.version.clone(),
                    info.plural.clone(),
                ),
                info.clone(),
            );
        }
        self.crds.insert(name, infos);
        key
    }

    /// Stop serving a CRD's resources. Returns the storage key it used.
    pub(crate) fn unregister_crd(&mut self, name: &str) -> Option<String> {
        let infos = self.crds.remove(name)?;
        for info in &infos {
            self.by_gvr.remove(&(
                info.group.clone(),
                info.version.clone(),
                info.plural.clone(),
            ));
        }
        infos.first().map(|i| i.storage_key())
    }
}

/// kube's default warning for a deprecated CRD version: `<group>/<version> <Kind> is
/// deprecated`, naming the preferred served, undeprecated version that ranks above it.
fn deprecation_warning(
    group: &str,
    kind: &str,
    deprecated: &str,
    versions: Option<&Value>,
) -> String {
    let msg = format!("{group}/{deprecated} {kind} is deprecated");
    let better = versions
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| {
            v.get("served").and_then(Value::as_bool) == Some(true)
                && v.get("deprecated").and_then(Value::as_bool) != Some(true)
        })
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .filter(|name| version_priority(name) > version_priority(deprecated))
        .max_by_key(|name| version_priority(name));
    match better {
        Some(v) => format!("{msg}; use {group}/{v} {kind}"),
        None => msg,
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub(crate) fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u32>() {
        Ok(minor) => (level, major, minor),
        Err(_) => (0, 0, 0),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The resources a CRD serves, one per served version. None when the spec is unusable.
pub(crate) fn crd_infos(crd: &Value) -> Option<Vec<ResourceInfo>> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?.to_string();
    let names = spec.get("names")?;
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_kind = names
        .get("listKind")
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or_else(|| format!("{kind}List"));
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let short_names = strings(names.get("shortNames"));
    let categories = strings(names.get("categories"));
    let mut out = Vec::new();
    for version in spec.get("versions")?.as_array()? {
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let Some(vname) = version.get("name").and_then(Value::as_str) else {
            continue;
        };
        let sub = version.get("subresources");
        let status = sub.and_then(|s| s.get("status")).is_some();
        let scale = sub.and_then(|s| s.get("scale")).map(|s| ScaleSpec {
            spec_replicas_path: s
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".spec.replicas")
                .to_string(),
            status_replicas_path: s
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".status.replicas")
                .to_string(),
            label_selector_path: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(String::from),
        });
        out.push(ResourceInfo {
            group: group.clone(),
            version: vname.to_string(),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            list_kind: list_kind.clone(),
            namespaced,
            short_names: short_names.clone(),
            categories: categories.clone(),
            status,
            scale,
            generation: true,
            managed_fields: true,
            deprecation: version
                .get("deprecated")
                .and_then(Value::as_bool)
                .filter(|d| *d)
                .map(|_| {
                    version
                        .get("deprecationWarning")
                        .and_then(Value::as_str)
                        .map(String::from)
                        .unwrap_or_else(|| {
                            deprecation_warning(&group, &kind, vname, spec.get("versions"))
                        })
                }),
            review: false,
            custom: true,
            schema: version
                .pointer("/schema/openAPIV3Schema")
                .and_then(CustomSchema::read),
            printer_columns: printer_columns(version),
        });
    }
    Some(out)
}

/// The APIResourceList entries for one resource (main resource plus subresources).
pub(crate) fn discovery_entries(info: &ResourceInfo) -> Vec<Value> {
    let verbs = if info.review {
        json!(["create"])
    } else {
        json!(VERBS)
    };
    let mut main = json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": verbs,
    });
    if let Some(obj) = main.as_object_mut() {
        if !info.short_names.is_empty() {
            obj.insert("shortNames".into(), json!(info.short_names));
        }
        if !info.categories.is_empty() {
            obj.insert("categories".into(), json!(info.categories));
        }
    }
    let mut out = vec![main];
    if info.status {
        out.push(json!({
            "name": format!("{}/status", info.plural),
            "singularName": "",
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    if info.group.is_empty() && info.plural == "pods" {
        let sub = |name: &str, group: &str, version: &str, kind: &str, verbs: Value| {
            let mut e = json!({
                "name": format!("pods/{name}"),
                "singularName": "",
                "namespaced": true,
                "kind": kind,
                "verbs": verbs,
            });
            if !group.is_empty() {
                e["group"] = json!(group);
                e["version"] = json!(version);
            }
            e
        };
        out.push(sub(
            "attach",
            "",
            "",
            "PodAttachOptions",
            json!(["create", "get"]),
        ));
        out.push(sub("binding", "", "", "Binding", json!(["create"])));
        out.push(sub(
            "eviction",
            "policy",
            "v1",
            "Eviction",
            json!(["create"]),
        ));
        out.push(sub(
            "exec",
            "",
            "",
            "PodExecOptions",
            json!(["create", "get"]),
        ));
        out.push(sub("log", "", "", "Pod", json!(["get"])));
        out.push(sub(
            "portforward",
            "",
            "",
            "PodPortForwardOptions",
            json!(["create", "get"]),
        ));
    }
    if info.group.is_empty() && info.plural == "serviceaccounts" {
        out.push(json!({
            "name": "serviceaccounts/token",
            "singularName": "",
            "namespaced": true,
            "group": "authentication.k8s.io",
            "version": "v1",
            "kind": "TokenRequest",
            "verbs": ["create"],
        }));
    }
    if info.scale.is_some() {
        out.push(json!({
            "name": format!("{}/scale", info.plural),
            "singularName": "",
            "namespaced": info.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority_orders_ga_beta_alpha() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "foo"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }

    #[test]
    fn deployments_have_status_and_scale_in_discovery() {
        let reg = Registry::new();
        let info = reg
            .get("apps", "v1", "deployments")
            .expect("deployments served");
        let names: Vec<String> = discovery_entries(&info)
            .iter()
            .filter_map(|e| e["name"].as_str().map(String::from))
            .collect();
        assert_eq!(
            names,
            vec!["deployments", "deployments/status", "deployments/scale"]
        );
    }

    #[test]
    fn crd_registration_serves_and_unregisters() {
        let mut reg = Registry::new();
        let crd = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}}}]}
        });
        assert_eq!(
            reg.register_crd(&crd).as_deref(),
            Some("example.com/widgets")
        );
        let info = reg.get("example.com", "v1", "widgets").expect("served");
        assert!(info.status && info.namespaced && info.custom);
        assert_eq!(info.short_names, vec!["wd"]);
        reg.unregister_crd("widgets.example.com");
        assert!(reg.get("example.com", "v1", "widgets").is_none());
    }
}
