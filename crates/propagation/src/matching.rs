//! Policy matching and precedence: whether a `ResourceSelector` selects a resource template and
//! how precisely, which templates the resource detector must never propagate, which one
//! (Cluster)PropagationPolicy claims a template (stickiness, priority, precision, name,
//! preemption), and the claim labels and annotations the detector writes on the template.
//!
//! Pure functions over `serde_json::Value` templates and the `flotilla-api` policy types. This
//! module does no I/O and decides nothing about *when* the detector acts (Lazy activation,
//! dependent overrides, event filtering): it only answers "who should own this template now",
//! so a level-triggered detector can re-ask on every pass and converge.
//!
//! Where Flotilla deliberately differs from Karmada's detector:
//!
//! - Preemption needs no feature gate: `preemption: Always` on a policy is the opt-in (Karmada
//!   keeps it behind the alpha gate `PropagationPolicyPreemption`). It applies to every template
//!   the preempting policy matches; Karmada preempts from the policy's side and looks each
//!   template up by its selector's `name`, so in practice only templates a selector names.
//! - Preemption is decided per template on every pass (level-triggered), so which preemptor wins
//!   among several is fixed by the usual ranking rather than by which policy event came first.
//! - A claim naming a policy that still exists under that name but with a different permanent
//!   id (deleted and re-created) is treated as stale, as is a claim by a policy that is being
//!   deleted or no longer matches: the template is matched afresh in the same pass instead of
//!   waiting for a clean-up event.
//! - Flotilla's own API groups are recognised by suffix (`*.flotilla.io`), so a group added
//!   later is skipped without a code change; all of `coordination.k8s.io` is skipped, not only
//!   its `v1`.
//! - A resource selector with a malformed label selector, or a PropagationPolicy with no
//!   resource selectors at all, matches nothing (validation rejects both).

use std::{cmp::Ordering, collections::BTreeMap};

use flotilla_api::{
    ClusterPropagationPolicy, PropagationPolicy,
    keys::{annotations, labels, namespaces},
    names::group_of,
    policy::{PreemptionPolicy, PropagationSpec, ResourceSelector},
};
use flotilla_scheduler::selector::label_selector_matches;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Selector matching.
// ---------------------------------------------------------------------------------------------

/// How precisely a resource selector matched a template: Karmada's implicit priority. Ordered
/// from least to most precise, so `max()` picks the most precise match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// Matched by apiVersion and kind (and namespace) only, or by an empty selector list.
    Kind,
    /// Matched by `labelSelector`.
    LabelSelector,
    /// Matched by `name`.
    Name,
}

/// How precisely `selector` selects `template`, or `None` if it does not.
///
/// apiVersion and kind must equal the template's; a non-empty `namespace` must equal the
/// template's namespace. Then, as in Karmada: a non-empty `name` must equal the template's
/// name and `labelSelector` is ignored ([`Precision::Name`]); otherwise a `labelSelector`
/// (even an empty one, which selects everything) must match the template's labels
/// ([`Precision::LabelSelector`]); otherwise the selector matches every template of the kind
/// ([`Precision::Kind`]). A label selector Kubernetes would refuse to parse (an unknown
/// operator, `In`/`NotIn` without values, `Exists`/`DoesNotExist` with values) matches nothing.
pub fn selector_precision(selector: &ResourceSelector, template: &Value) -> Option<Precision> {
    if str_at(template, "apiVersion") != Some(selector.api_version.as_str())
        || str_at(template, "kind") != Some(selector.kind.as_str())
    {
        return None;
    }
    if let Some(namespace) = selector.namespace.as_deref().filter(|n| !n.is_empty())
        && template_namespace(template) != Some(namespace)
    {
        return None;
    }
    if let Some(name) = selector.name.as_deref().filter(|n| !n.is_empty()) {
        return (template_name(template) == Some(name)).then_some(Precision::Name);
    }
    match &selector.label_selector {
        None => Some(Precision::Kind),
        Some(label_selector) => (well_formed(label_selector)
            && label_selector_matches(label_selector, &template_labels(template)))
        .then_some(Precision::LabelSelector),
    }
}

/// Whether `selector` selects `template` (see [`selector_precision`] for the rules).
pub fn selector_matches(selector: &ResourceSelector, template: &Value) -> bool {
    selector_precision(selector, template).is_some()
}

/// The most precise match of any selector in `selectors`, or `None` if none matches.
///
/// An empty list selects every template with [`Precision::Kind`]: the rule for Override and
/// ClusterOverridePolicies, whose `resourceSelectors` may be empty. Propagation policies must
/// name at least one selector, and [`match_policy`] never lets an empty list claim anything.
pub fn selectors_precision(selectors: &[ResourceSelector], template: &Value) -> Option<Precision> {
    if selectors.is_empty() {
        return Some(Precision::Kind);
    }
    selectors
        .iter()
        .filter_map(|selector| selector_precision(selector, template))
        .max()
}

/// Whether any selector in `selectors` selects `template`; an empty list selects everything
/// (see [`selectors_precision`]).
pub fn selectors_match(selectors: &[ResourceSelector], template: &Value) -> bool {
    selectors_precision(selectors, template).is_some()
}

/// Whether Kubernetes would accept the label selector: known operators, values exactly where
/// the operator needs them.
fn well_formed(selector: &LabelSelector) -> bool {
    selector.match_expressions.iter().flatten().all(|req| {
        let has_values = req.values.as_ref().is_some_and(|v| !v.is_empty());
        match req.operator.as_str() {
            "In" | "NotIn" => has_values,
            "Exists" | "DoesNotExist" => !has_values,
            _ => false,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// What the detector never propagates.
// ---------------------------------------------------------------------------------------------

/// The prefix of the namespaces Kubernetes reserves for itself (`kube-system`, `kube-public`,
/// `kube-node-lease`); Karmada's default `--skipped-propagating-namespaces` is `kube-.*`.
pub const KUBE_RESERVED_PREFIX: &str = "kube-";

/// Flotilla's own API groups: `flotilla.io` and every `*.flotilla.io` (cluster, policy, work,
/// provisioning, gitops, ...).
pub fn is_flotilla_group(group: &str) -> bool {
    group == "flotilla.io" || group.ends_with(".flotilla.io")
}

/// Whether objects in `namespace` are never propagated: `flotilla-system`, `flotilla-cluster`,
/// every execution namespace `flotilla-es-*` and every `kube-*` namespace.
pub fn is_reserved_namespace(namespace: &str) -> bool {
    namespace == namespaces::SYSTEM
        || namespace == namespaces::CLUSTER
        || namespace.starts_with(namespaces::EXECUTION_PREFIX)
        || namespace.starts_with(KUBE_RESERVED_PREFIX)
}

/// Whether the detector may propagate objects of this apiVersion and kind in this namespace
/// (`None` or empty for cluster-scoped objects).
///
/// Never propagated, as in Karmada: Flotilla's own kinds (see [`is_flotilla_group`]), Events
/// (core `v1` and `events.k8s.io`), Leases and the rest of `coordination.k8s.io`, and anything
/// in a reserved namespace (see [`is_reserved_namespace`]). Use [`is_template_propagatable`]
/// when the whole object is at hand: it also looks at the object's name and type.
pub fn is_propagatable(api_version: &str, kind: &str, namespace: Option<&str>) -> bool {
    let group = group_of(api_version);
    if is_flotilla_group(group) || group == "events.k8s.io" || group == "coordination.k8s.io" {
        return false;
    }
    if group.is_empty() && kind == "Event" {
        return false;
    }
    !namespace.is_some_and(is_reserved_namespace)
}

/// Whether the detector binds objects of this apiVersion and kind in this namespace to the
/// policies that select them: [`is_propagatable`] ones, except Namespaces, which reach every
/// member through namespace sync rather than through a binding.
pub fn is_bound_by_policy(api_version: &str, kind: &str, namespace: Option<&str>) -> bool {
    let namespace_kind = group_of(api_version).is_empty() && kind == "Namespace";
    !namespace_kind && is_propagatable(api_version, kind, namespace)
}

/// [`is_propagatable`] for a whole template, plus the rules that need the object itself: a
/// Namespace whose name is reserved is never propagated, nor is a Secret of type
/// `kubernetes.io/service-account-token` (every member cluster mints its own tokens). A
/// template without apiVersion or kind is not propagatable.
pub fn is_template_propagatable(template: &Value) -> bool {
    let (Some(api_version), Some(kind)) =
        (str_at(template, "apiVersion"), str_at(template, "kind"))
    else {
        return false;
    };
    if !is_propagatable(api_version, kind, template_namespace(template)) {
        return false;
    }
    match (api_version, kind) {
        ("v1", "Namespace") => !template_name(template).is_some_and(is_reserved_namespace),
        ("v1", "Secret") => str_at(template, "type") != Some("kubernetes.io/service-account-token"),
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// Claims.
// ---------------------------------------------------------------------------------------------

/// The policy that claims a template, as recorded in the template's labels and annotations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Claim {
    /// Claimed by a PropagationPolicy.
    Namespaced {
        /// The policy's namespace (always the template's).
        namespace: String,
        /// The policy's name.
        name: String,
        /// The policy's permanent id (see [`permanent_id`]).
        permanent_id: String,
    },
    /// Claimed by a ClusterPropagationPolicy.
    Cluster {
        /// The policy's name.
        name: String,
        /// The policy's permanent id (see [`cluster_permanent_id`]).
        permanent_id: String,
    },
}

impl Claim {
    /// The claim a PropagationPolicy makes.
    pub fn of(policy: &PropagationPolicy) -> Self {
        Self::Namespaced {
            namespace: policy.metadata.namespace.clone().unwrap_or_default(),
            name: policy.metadata.name.clone().unwrap_or_default(),
            permanent_id: permanent_id(policy),
        }
    }

    /// The claim a ClusterPropagationPolicy makes.
    pub fn of_cluster(policy: &ClusterPropagationPolicy) -> Self {
        Self::Cluster {
            name: policy.metadata.name.clone().unwrap_or_default(),
            permanent_id: cluster_permanent_id(policy),
        }
    }

    /// The claimed policy's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Namespaced { name, .. } | Self::Cluster { name, .. } => name,
        }
    }

    /// The claimed policy's permanent id.
    pub fn permanent_id(&self) -> &str {
        match self {
            Self::Namespaced { permanent_id, .. } | Self::Cluster { permanent_id, .. } => {
                permanent_id
            }
        }
    }

    /// The claim labels, as the detector writes them on the template.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let key = match self {
            Self::Namespaced { .. } => labels::PROPAGATION_POLICY_PERMANENT_ID,
            Self::Cluster { .. } => labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID,
        };
        BTreeMap::from([(key.to_owned(), self.permanent_id().to_owned())])
    }

    /// The claim annotations, as the detector writes them on the template.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        match self {
            Self::Namespaced {
                namespace, name, ..
            } => BTreeMap::from([
                (
                    annotations::PROPAGATION_POLICY_NAMESPACE.to_owned(),
                    namespace.clone(),
                ),
                (
                    annotations::PROPAGATION_POLICY_NAME.to_owned(),
                    name.clone(),
                ),
            ]),
            Self::Cluster { name, .. } => BTreeMap::from([(
                annotations::CLUSTER_PROPAGATION_POLICY_NAME.to_owned(),
                name.clone(),
            )]),
        }
    }
}

/// A PropagationPolicy's permanent id: its `propagationpolicy.flotilla.io/permanent-id` label
/// when set (Karmada's webhook stamps one on every policy), else its UID, which is just as
/// permanent for the life of the object. Empty only for a policy that has neither, which only
/// happens offline (`flotilla render`).
pub fn permanent_id(policy: &PropagationPolicy) -> String {
    id_of(&policy.metadata, labels::PROPAGATION_POLICY_PERMANENT_ID)
}

/// A ClusterPropagationPolicy's permanent id: its
/// `clusterpropagationpolicy.flotilla.io/permanent-id` label, else its UID (see
/// [`permanent_id`]).
pub fn cluster_permanent_id(policy: &ClusterPropagationPolicy) -> String {
    id_of(
        &policy.metadata,
        labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID,
    )
}

fn id_of(meta: &ObjectMeta, label: &str) -> String {
    meta.labels
        .as_ref()
        .and_then(|labels| labels.get(label))
        .filter(|id| !id.is_empty())
        .or(meta.uid.as_ref())
        .cloned()
        .unwrap_or_default()
}

/// The claim recorded on a template, if any.
///
/// A PropagationPolicy claim needs all three keys non-empty (the permanent-id label and the
/// namespace and name annotations) and is read first; otherwise a ClusterPropagationPolicy
/// claim needs its permanent-id label and name annotation. Partial claims are ignored, as in
/// Karmada.
pub fn claimed_by(template: &Value) -> Option<Claim> {
    let label = |key: &str| {
        non_empty(
            template
                .pointer("/metadata/labels")
                .and_then(|l| l.get(key)),
        )
    };
    let annotation = |key: &str| {
        non_empty(
            template
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(key)),
        )
    };
    if let (Some(namespace), Some(name), Some(permanent_id)) = (
        annotation(annotations::PROPAGATION_POLICY_NAMESPACE),
        annotation(annotations::PROPAGATION_POLICY_NAME),
        label(labels::PROPAGATION_POLICY_PERMANENT_ID),
    ) {
        return Some(Claim::Namespaced {
            namespace,
            name,
            permanent_id,
        });
    }
    if let (Some(name), Some(permanent_id)) = (
        annotation(annotations::CLUSTER_PROPAGATION_POLICY_NAME),
        label(labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID),
    ) {
        return Some(Claim::Cluster { name, permanent_id });
    }
    None
}

/// The server-side-apply body that records `claim` on `template`: apiVersion, kind, metadata
/// name, namespace and uid, and the claim's labels and annotations — nothing else, so the
/// detector (field manager `flotilla-detector`) never owns a field the user or a GitOps tool
/// owns. The uid makes the apply a precondition: the API server refuses it (409 when the
/// template is gone, 422 when another object now has its name) rather than creating an object
/// or claiming a different one.
///
/// Because an apply replaces everything the manager applied before, claiming for a
/// PropagationPolicy a template the detector had claimed for a ClusterPropagationPolicy also
/// removes the old claim keys (Karmada clears them by hand). Keys another manager wrote stay.
pub fn claim_patch(template: &Value, claim: &Claim) -> Value {
    let mut body = identity(template);
    if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("labels".to_owned(), json!(claim.labels()));
        metadata.insert("annotations".to_owned(), json!(claim.annotations()));
    }
    body
}

/// The server-side-apply body that releases the detector's claim on `template`: the same
/// identity as [`claim_patch`] with no labels or annotations.
///
/// The release is an apply of an empty set under the same field manager (`flotilla-detector`):
/// the API server removes every field that manager applied before and no longer applies, so
/// the claim keys go and nothing else on the template changes. Keys another manager set (say a
/// manifest that carried them) are not removed; [`claimed_by`] still sees them afterwards.
pub fn release_patch(template: &Value) -> Value {
    identity(template)
}

fn identity(template: &Value) -> Value {
    let mut metadata = Map::new();
    if let Some(name) = template_name(template) {
        metadata.insert("name".to_owned(), json!(name));
    }
    if let Some(namespace) = template_namespace(template) {
        metadata.insert("namespace".to_owned(), json!(namespace));
    }
    if let Some(uid) = template.pointer("/metadata/uid").and_then(Value::as_str) {
        metadata.insert("uid".to_owned(), json!(uid));
    }
    let mut body = Map::new();
    for key in ["apiVersion", "kind"] {
        if let Some(value) = str_at(template, key) {
            body.insert(key.to_owned(), json!(value));
        }
    }
    body.insert("metadata".to_owned(), Value::Object(metadata));
    Value::Object(body)
}

// ---------------------------------------------------------------------------------------------
// Choosing the one policy.
// ---------------------------------------------------------------------------------------------

/// A (Cluster)PropagationPolicy, borrowed from the caller's list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PolicyRef<'a> {
    /// A PropagationPolicy in the template's namespace.
    Namespaced(&'a PropagationPolicy),
    /// A ClusterPropagationPolicy.
    Cluster(&'a ClusterPropagationPolicy),
}

impl<'a> PolicyRef<'a> {
    /// The policy's spec.
    pub fn spec(self) -> &'a PropagationSpec {
        match self {
            Self::Namespaced(policy) => &policy.spec,
            Self::Cluster(policy) => &policy.spec.spec,
        }
    }

    /// The policy's metadata.
    pub fn metadata(self) -> &'a ObjectMeta {
        match self {
            Self::Namespaced(policy) => &policy.metadata,
            Self::Cluster(policy) => &policy.metadata,
        }
    }

    /// The policy's name.
    pub fn name(self) -> &'a str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The policy's explicit priority: `spec.priority`, 0 when unset.
    pub fn priority(self) -> i32 {
        self.spec().priority.unwrap_or(0)
    }

    /// Whether the policy may take templates claimed by others (`preemption: Always`).
    pub fn preempts(self) -> bool {
        self.spec().preemption == Some(PreemptionPolicy::Always)
    }

    /// Whether the policy is being deleted; a policy being deleted never claims.
    pub fn is_deleting(self) -> bool {
        self.metadata().deletion_timestamp.is_some()
    }

    /// The claim this policy makes on a template.
    pub fn claim(self) -> Claim {
        match self {
            Self::Namespaced(policy) => Claim::of(policy),
            Self::Cluster(policy) => Claim::of_cluster(policy),
        }
    }

    fn is_cluster(self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Whether this policy may preempt `holder`'s claim: Karmada's rule "high-priority PP >
    /// low-priority PP > CPP". A PropagationPolicy with `preemption: Always` takes over from a
    /// lower-priority PropagationPolicy, and from any ClusterPropagationPolicy regardless of
    /// priority; a ClusterPropagationPolicy with `preemption: Always` takes over only from a
    /// lower-priority ClusterPropagationPolicy. Equal priority never preempts.
    pub fn may_preempt(self, holder: PolicyRef<'_>) -> bool {
        if !self.preempts() || self.same_policy(holder) {
            return false;
        }
        match (self.is_cluster(), holder.is_cluster()) {
            (false, true) => true,
            (true, false) => false,
            _ => self.priority() > holder.priority(),
        }
    }

    fn same_policy(self, other: PolicyRef<'_>) -> bool {
        self.is_cluster() == other.is_cluster()
            && self.name() == other.name()
            && self.metadata().namespace == other.metadata().namespace
    }
}

/// How [`match_policy`] reached its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum How {
    /// The template's existing claim still holds (sticky).
    Kept,
    /// The template had no valid claim; this is the best matching policy. If the template
    /// carried a stale claim (policy gone, being deleted, re-created or no longer matching), it
    /// is replaced.
    Matched,
    /// A policy with `preemption: Always` takes the template over from the valid claim given.
    Preempted(Claim),
}

/// The policy that should claim a template.
#[derive(Clone, Debug, PartialEq)]
pub struct Match<'a> {
    /// The policy.
    pub policy: PolicyRef<'a>,
    /// The claim to record on the template ([`claim_patch`]); compare it with
    /// [`claimed_by`] to know whether a write is needed.
    pub claim: Claim,
    /// How the choice was made.
    pub how: How,
}

/// The one (Cluster)PropagationPolicy that should claim `template`, or `None` when none may.
///
/// `policies` may hold PropagationPolicies of any namespace (only those of the template's
/// namespace count, and none for cluster-scoped templates); `cluster_policies` holds every
/// ClusterPropagationPolicy. Policies being deleted never claim. The rules, in order:
///
/// 1. A template the detector must not propagate ([`is_template_propagatable`]) gets none.
/// 2. Sticky claims: if the template's claim ([`claimed_by`]) names a policy that still exists
///    with the same permanent id, is not being deleted and still matches, that policy keeps it
///    — unless rule 4 applies.
/// 3. Otherwise the best matching PropagationPolicy, and only when there is none the best
///    matching ClusterPropagationPolicy. "Best" is the highest `priority` (0 when unset), then
///    the most precise selector match ([`Precision`]), then the alphabetically first name.
/// 4. Preemption: among the matching policies that [may preempt](PolicyRef::may_preempt) the
///    sticky claim, the best one (PropagationPolicies before ClusterPropagationPolicies, then as
///    in rule 3) takes the template over. The choice is a fixpoint: the new holder cannot be
///    preempted by any policy of the same lists, so the detector never flip-flops.
pub fn match_policy<'a>(
    template: &Value,
    policies: &'a [PropagationPolicy],
    cluster_policies: &'a [ClusterPropagationPolicy],
) -> Option<Match<'a>> {
    if !is_template_propagatable(template) {
        return None;
    }
    let namespace = template_namespace(template);
    let candidates: Vec<(PolicyRef<'a>, Precision)> = policies
        .iter()
        .filter(|policy| namespace.is_some() && policy.metadata.namespace.as_deref() == namespace)
        .map(PolicyRef::Namespaced)
        .chain(cluster_policies.iter().map(PolicyRef::Cluster))
        .filter(|policy| !policy.is_deleting())
        .filter_map(|policy| claim_precision(policy, template).map(|p| (policy, p)))
        .collect();

    let holder = claimed_by(template).and_then(|claim| {
        candidates
            .iter()
            .map(|(policy, _)| *policy)
            .find(|policy| holds(*policy, &claim))
    });

    let best = |filter: &dyn Fn(PolicyRef<'a>) -> bool| {
        candidates
            .iter()
            .filter(|(policy, _)| filter(*policy))
            .min_by(|a, b| rank(**a, **b))
            .map(|(policy, _)| *policy)
    };

    match holder {
        Some(holder) => match best(&|policy| policy.may_preempt(holder)) {
            Some(preemptor) => Some(Match {
                policy: preemptor,
                claim: preemptor.claim(),
                how: How::Preempted(holder.claim()),
            }),
            None => Some(Match {
                policy: holder,
                claim: holder.claim(),
                how: How::Kept,
            }),
        },
        None => best(&|_| true).map(|policy| Match {
            policy,
            claim: policy.claim(),
            how: How::Matched,
        }),
    }
}

/// The precision with which a propagation policy selects a template; an empty selector list
/// selects nothing here (unlike [`selectors_precision`]).
fn claim_precision(policy: PolicyRef<'_>, template: &Value) -> Option<Precision> {
    let selectors = &policy.spec().resource_selectors;
    if selectors.is_empty() {
        return None;
    }
    selectors_precision(selectors, template)
}

/// Whether `claim` names `policy`: same kind of policy, same namespace and name, and the same
/// permanent id when both are known.
fn holds(policy: PolicyRef<'_>, claim: &Claim) -> bool {
    let mine = policy.claim();
    let same_id = mine.permanent_id().is_empty()
        || claim.permanent_id().is_empty()
        || mine.permanent_id() == claim.permanent_id();
    same_id
        && match (&mine, claim) {
            (
                Claim::Namespaced {
                    namespace: a_ns,
                    name: a,
                    ..
                },
                Claim::Namespaced {
                    namespace: b_ns,
                    name: b,
                    ..
                },
            ) => a_ns == b_ns && a == b,
            (Claim::Cluster { name: a, .. }, Claim::Cluster { name: b, .. }) => a == b,
            _ => false,
        }
}

/// Orders candidates best first: PropagationPolicies before ClusterPropagationPolicies, then
/// higher priority, then higher precision, then the smaller name.
fn rank(a: (PolicyRef<'_>, Precision), b: (PolicyRef<'_>, Precision)) -> Ordering {
    let ((a, a_precision), (b, b_precision)) = (a, b);
    a.is_cluster()
        .cmp(&b.is_cluster())
        .then_with(|| b.priority().cmp(&a.priority()))
        .then_with(|| b_precision.cmp(&a_precision))
        .then_with(|| a.name().cmp(b.name()))
}

// ---------------------------------------------------------------------------------------------
// Template accessors.
// ---------------------------------------------------------------------------------------------

fn str_at<'v>(template: &'v Value, key: &str) -> Option<&'v str> {
    template.get(key).and_then(Value::as_str)
}

fn template_name(template: &Value) -> Option<&str> {
    template
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
}

fn template_namespace(template: &Value) -> Option<&str> {
    template
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|namespace| !namespace.is_empty())
}

/// The template's labels; values that are not strings are ignored.
fn template_labels(template: &Value) -> BTreeMap<String, String> {
    template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| value.as_str().map(|v| (key.clone(), v.to_owned())))
        .collect()
}

fn non_empty(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests;
