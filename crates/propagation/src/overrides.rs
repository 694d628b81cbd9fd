//! The override engine: turns a resource template into the manifest one cluster should run by
//! applying the ClusterOverridePolicies and OverridePolicies that select it. Pure functions over
//! `serde_json::Value`; it fetches nothing and writes nothing, and it never returns a
//! half-overridden manifest: any overrider that cannot apply fails the whole call, and the
//! caller keeps the last good manifest.
//!
//! Semantics follow Karmada's `overridemanager`, case for case:
//!
//! - **Policy order.** Every matching ClusterOverridePolicy first, then every matching
//!   OverridePolicy of the template's own namespace (none for a cluster-scoped template). Each
//!   group is sorted by implicit selector priority, least precise first (empty selector list or
//!   kind-only, then `labelSelector`, then `name`; see [`crate::matching::selectors_precision`]),
//!   then by policy name, so the more specific policy is applied later and wins.
//! - **Rules.** `overrideRules` in order, each only when its `targetCluster` matches the cluster
//!   (absent = every cluster), then the deprecated spec-level `targetCluster` + `overriders` as
//!   one more rule.
//! - **Within a rule:** image, command, args, labels, annotations, fieldOverrider, plaintext.
//! - **plaintext** is RFC 6902 JSON patch: `replace` and `remove` need the path to exist.
//! - **imageOverrider** edits the registry, repository or tag of the reference (parsed as
//!   written, see [`image`]). With `predicate.path`, only that field; without, every container
//!   image of the workload.
//! - **command/argsOverrider** edit the containers named `containerName`: `add` appends, `remove`
//!   deletes every matching item; a missing list is created (empty for `remove`, as Karmada). A
//!   workload without such a container is left alone: the selector, not the overrider, decides
//!   which templates a policy touches.
//! - **labels/annotationsOverrider**: `add` sets keys (creating the map), `replace` and `remove`
//!   only touch keys that exist, as Karmada.
//! - **fieldOverrider** parses the string at `fieldPath` as JSON (`json[]`) or YAML (`yaml[]`),
//!   applies the sub-operations as JSON patch at `subPath`, and writes it back in the same
//!   format (compact JSON; YAML in block style, as Karmada's `JSONToYAML`; object keys come
//!   out sorted in both).
//! - **Recording.** One [`AppliedPolicy`] per applied rule; [`Applied`] renders the JSON Karmada
//!   writes into its `applied-overrides` / `applied-cluster-overrides` annotations.
//!
//! Where Flotilla differs on purpose:
//!
//! - Without `predicate.path`, image paths are also found in a **CronJob**
//!   (`/spec/jobTemplate/spec/template/spec`) and in **`initContainers`**, not only in
//!   `containers` of Pod, Deployment, StatefulSet, ReplicaSet, DaemonSet and Job: a registry
//!   mirror must reach every image a workload pulls. Command and args overriders likewise reach
//!   Job and CronJob containers and `initContainers` (Karmada: Pod, Deployment, ReplicaSet,
//!   DaemonSet, StatefulSet `containers` only).
//! - An image reference with both tag and digest keeps both when the registry or repository
//!   changes (Karmada's printer drops the digest).
//! - Overriders Karmada silently ignores are errors: a tag value that is neither a tag nor a
//!   digest, an edit whose result is not a valid image reference (e.g. removing the
//!   repository), `replace` on command/args, a fieldOverrider with both `json` and `yaml`.
//! - The deprecated spec-level `targetCluster` + `overriders` run after `overrideRules` even
//!   when both are set (Karmada reads the pair only when `overrideRules` is empty, and its
//!   webhook forbids setting both; Flotilla's validation accepts both, so both apply).
//! - Every error names the policy (kind, namespace, name), the rule and the path that failed.

pub mod image;

use std::{cmp::Ordering, fmt};

use flotilla_api::{
    Cluster, ClusterOverridePolicy, OverridePolicy,
    policy::{
        ClusterAffinity, CommandArgsOverrider, FieldOverrider, ImageOverrider,
        LabelAnnotationOverrider, OverrideSpec, OverriderOperator, Overriders, PlaintextOverrider,
        SubPathPatch,
    },
};
use flotilla_scheduler::selector::cluster_matches;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use self::image::ImageRef;
use crate::matching::{Precision, selectors_precision};

// ---------------------------------------------------------------------------------------------
// Public API.
// ---------------------------------------------------------------------------------------------

/// The overrides applied to one manifest: what the binding controller records on the Work.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// ClusterOverridePolicy rules, in the order they were applied.
    pub cluster_overrides: Vec<AppliedPolicy>,
    /// OverridePolicy rules, in the order they were applied.
    pub overrides: Vec<AppliedPolicy>,
}

/// One applied rule: the policy's name and the overriders of the rule (Karmada's
/// `OverridePolicyShadow`). A policy with two matching rules appears twice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedPolicy {
    /// The policy's name.
    pub policy_name: String,
    /// The overriders of the applied rule.
    pub overriders: Overriders,
}

impl Applied {
    /// Whether no rule applied.
    pub fn is_empty(&self) -> bool {
        self.cluster_overrides.is_empty() && self.overrides.is_empty()
    }

    /// The value of the Work annotation [`APPLIED_CLUSTER_OVERRIDES`], or `None` when no
    /// ClusterOverridePolicy applied (the annotation is then absent).
    ///
    /// [`APPLIED_CLUSTER_OVERRIDES`]: flotilla_api::keys::annotations::APPLIED_CLUSTER_OVERRIDES
    pub fn cluster_overrides_annotation(&self) -> Option<String> {
        annotation(&self.cluster_overrides)
    }

    /// The value of the Work annotation [`APPLIED_OVERRIDES`], or `None` when no OverridePolicy
    /// applied.
    ///
    /// [`APPLIED_OVERRIDES`]: flotilla_api::keys::annotations::APPLIED_OVERRIDES
    pub fn overrides_annotation(&self) -> Option<String> {
        annotation(&self.overrides)
    }
}

/// Karmada's format: a JSON array of `{policyName, overriders}` sorted by policy name (stably,
/// so one policy's rules keep their order).
fn annotation(items: &[AppliedPolicy]) -> Option<String> {
    if items.is_empty() {
        return None;
    }
    let mut sorted: Vec<&AppliedPolicy> = items.iter().collect();
    sorted.sort_by(|a, b| a.policy_name.cmp(&b.policy_name));
    serde_json::to_string(&sorted).ok()
}

/// Which policy an error comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRef {
    /// `ClusterOverridePolicy` or `OverridePolicy`.
    pub kind: &'static str,
    /// The namespace of an OverridePolicy.
    pub namespace: Option<String>,
    /// The policy's name.
    pub name: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Which rule of a policy an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleRef {
    /// `spec.overrideRules[i]`.
    Index(usize),
    /// The deprecated spec-level `targetCluster` + `overriders`.
    Deprecated,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "spec.overrideRules[{i}].overriders"),
            Self::Deprecated => f.write_str("spec.overriders"),
        }
    }
}

/// An overrider that cannot apply to the template. Nothing was overridden.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// One overrider of one rule failed.
    #[error(
        "{policy}: {rule}.{overrider} cannot apply at {path:?}: {reason}; fix the policy or the template"
    )]
    ApplyOverrider {
        /// The policy (boxed to keep the error small).
        policy: Box<PolicyRef>,
        /// The rule.
        rule: RuleRef,
        /// The overrider within the rule, such as `imageOverrider[0]`.
        overrider: String,
        /// The JSON pointer that failed (in the manifest, or `fieldPath` then `subPath`).
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Renders `template` for `cluster`: applies the matching `cluster_policies`, then the matching
/// `policies` of the template's namespace (policies from other namespaces are ignored), in the
/// order described in the module docs, and says which rules applied.
///
/// Returns an error, and no manifest, if any overrider cannot apply.
pub fn apply_overrides(
    template: &Value,
    cluster: &Cluster,
    cluster_policies: &[ClusterOverridePolicy],
    policies: &[OverridePolicy],
) -> Result<(Value, Applied), OverrideError> {
    let mut manifest = template.clone();
    let mut applied = Applied::default();

    let cops = cluster_policies.iter().map(|p| {
        let name = p.metadata.name.clone().unwrap_or_default();
        let policy = PolicyRef {
            kind: "ClusterOverridePolicy",
            namespace: None,
            name,
        };
        (policy, &p.spec.spec)
    });
    for (policy, spec) in ordered(template, cops) {
        apply_policy(
            &mut manifest,
            cluster,
            &policy,
            spec,
            &mut applied.cluster_overrides,
        )?;
    }

    if let Some(namespace) = template_namespace(template) {
        let ops = policies
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .map(|p| {
                let policy = PolicyRef {
                    kind: "OverridePolicy",
                    namespace: p.metadata.namespace.clone(),
                    name: p.metadata.name.clone().unwrap_or_default(),
                };
                (policy, &p.spec)
            });
        for (policy, spec) in ordered(template, ops) {
            apply_policy(
                &mut manifest,
                cluster,
                &policy,
                spec,
                &mut applied.overrides,
            )?;
        }
    }
    Ok((manifest, applied))
}

// ---------------------------------------------------------------------------------------------
// Policy selection and order.
// ---------------------------------------------------------------------------------------------

fn template_namespace(template: &Value) -> Option<&str> {
    template
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// The policies whose selectors match `template`, least precise first, then by name.
fn ordered<'a>(
    template: &Value,
    policies: impl Iterator<Item = (PolicyRef, &'a OverrideSpec)>,
) -> Vec<(PolicyRef, &'a OverrideSpec)> {
    let mut matched: Vec<(Precision, PolicyRef, &OverrideSpec)> = policies
        .filter_map(|(policy, spec)| {
            selectors_precision(&spec.resource_selectors, template).map(|p| (p, policy, spec))
        })
        .collect();
    matched.sort_by(|a, b| match a.0.cmp(&b.0) {
        Ordering::Equal => a.1.name.cmp(&b.1.name),
        other => other,
    });
    matched
        .into_iter()
        .map(|(_, policy, spec)| (policy, spec))
        .collect()
}

/// The rules of a policy in order: `overrideRules`, then the deprecated spec-level pair.
fn rules(
    spec: &OverrideSpec,
) -> impl Iterator<Item = (RuleRef, Option<&ClusterAffinity>, &Overriders)> {
    let listed = spec.override_rules.iter().enumerate().map(|(i, rule)| {
        (
            RuleRef::Index(i),
            rule.target_cluster.as_ref(),
            &rule.overriders,
        )
    });
    let deprecated = spec
        .overriders
        .as_ref()
        .map(|o| (RuleRef::Deprecated, spec.target_cluster.as_ref(), o));
    listed.chain(deprecated)
}

fn apply_policy(
    manifest: &mut Value,
    cluster: &Cluster,
    policy: &PolicyRef,
    spec: &OverrideSpec,
    applied: &mut Vec<AppliedPolicy>,
) -> Result<(), OverrideError> {
    for (rule, target, overriders) in rules(spec) {
        if target.is_some_and(|affinity| !cluster_matches(cluster, affinity)) {
            continue;
        }
        apply_overriders(manifest, overriders).map_err(|failure| {
            OverrideError::ApplyOverrider {
                policy: Box::new(policy.clone()),
                rule,
                overrider: failure.overrider,
                path: failure.path,
                reason: failure.reason,
            }
        })?;
        applied.push(AppliedPolicy {
            policy_name: policy.name.clone(),
            overriders: overriders.clone(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Overriders.
// ---------------------------------------------------------------------------------------------

/// Why one overrider failed, before the policy and rule are known.
#[derive(Debug)]
struct Failure {
    overrider: String,
    path: String,
    reason: String,
}

impl Failure {
    fn new(overrider: String, path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            overrider,
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Applies one rule's overriders in Karmada's fixed order.
fn apply_overriders(manifest: &mut Value, o: &Overriders) -> Result<(), Failure> {
    for (i, overrider) in o.image_overrider.iter().enumerate() {
        apply_image(manifest, overrider, &format!("imageOverrider[{i}]"))?;
    }
    for (i, overrider) in o.command_overrider.iter().enumerate() {
        apply_command_args(
            manifest,
            overrider,
            "command",
            &format!("commandOverrider[{i}]"),
        )?;
    }
    for (i, overrider) in o.args_overrider.iter().enumerate() {
        apply_command_args(manifest, overrider, "args", &format!("argsOverrider[{i}]"))?;
    }
    for (i, overrider) in o.labels_overrider.iter().enumerate() {
        apply_label_annotation(
            manifest,
            overrider,
            "labels",
            &format!("labelsOverrider[{i}]"),
        )?;
    }
    for (i, overrider) in o.annotations_overrider.iter().enumerate() {
        let name = format!("annotationsOverrider[{i}]");
        apply_label_annotation(manifest, overrider, "annotations", &name)?;
    }
    for (i, overrider) in o.field_overrider.iter().enumerate() {
        apply_field(manifest, overrider, &format!("fieldOverrider[{i}]"))?;
    }
    for (i, overrider) in o.plaintext.iter().enumerate() {
        let PlaintextOverrider {
            path,
            operator,
            value,
        } = overrider;
        json_patch_one(manifest, *operator, path, value.as_ref())
            .map_err(|reason| Failure::new(format!("plaintext[{i}]"), path, reason))?;
    }
    Ok(())
}

/// Applies one RFC 6902 operation.
fn json_patch_one(
    doc: &mut Value,
    operator: OverriderOperator,
    path: &str,
    value: Option<&Value>,
) -> Result<(), String> {
    let op = match operator {
        OverriderOperator::Add => json!({"op": "add", "path": path, "value": value}),
        OverriderOperator::Replace => json!({"op": "replace", "path": path, "value": value}),
        OverriderOperator::Remove => json!({"op": "remove", "path": path}),
    };
    let patch: json_patch::Patch = serde_json::from_value(json!([op]))
        .map_err(|e| format!("{path:?} is not a JSON pointer (RFC 6901): {e}"))?;
    json_patch::patch(doc, &patch).map_err(|e| match operator {
        OverriderOperator::Add => format!("cannot add there ({}): the parent must exist", e.kind),
        _ => format!("nothing to {} there ({})", op_name(operator), e.kind),
    })
}

fn op_name(operator: OverriderOperator) -> &'static str {
    match operator {
        OverriderOperator::Add => "add",
        OverriderOperator::Remove => "remove",
        OverriderOperator::Replace => "replace",
    }
}

/// Where a workload kind keeps its pod spec, if the engine knows the kind.
fn pod_spec_prefix(manifest: &Value) -> Option<&'static str> {
    match manifest.get("kind").and_then(Value::as_str)? {
        "Pod" => Some("/spec"),
        "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet" | "Job" => {
            Some("/spec/template/spec")
        }
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// The JSON pointers of every container (init containers included) of a known workload kind.
fn container_paths(manifest: &Value) -> Vec<String> {
    let Some(prefix) = pod_spec_prefix(manifest) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for list in ["containers", "initContainers"] {
        let pointer = format!("{prefix}/{list}");
        if let Some(containers) = manifest.pointer(&pointer).and_then(Value::as_array) {
            paths.extend((0..containers.len()).map(|i| format!("{pointer}/{i}")));
        }
    }
    paths
}

fn apply_image(manifest: &mut Value, o: &ImageOverrider, name: &str) -> Result<(), Failure> {
    let paths = match &o.predicate {
        Some(predicate) => vec![predicate.path.clone()],
        None => container_paths(manifest)
            .into_iter()
            .map(|c| format!("{c}/image"))
            .collect(),
    };
    let value = o.value.as_deref().unwrap_or_default();
    for path in paths {
        let fail = |reason: String| Failure::new(name.to_string(), &path, reason);
        let slot = manifest
            .pointer_mut(&path)
            .ok_or_else(|| fail("no image there".into()))?;
        let current = slot
            .as_str()
            .ok_or_else(|| fail("the value there is not a string".into()))?;
        let edited = ImageRef::parse(current)
            .and_then(|image| image.edit(o.component, o.operator, value))
            .map_err(|why| fail(format!("image {current:?}: {why}")))?;
        *slot = Value::String(edited.to_string());
    }
    Ok(())
}

fn apply_command_args(
    manifest: &mut Value,
    o: &CommandArgsOverrider,
    field: &str,
    name: &str,
) -> Result<(), Failure> {
    for container_path in container_paths(manifest) {
        let Some(container) = manifest
            .pointer_mut(&container_path)
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if container.get("name").and_then(Value::as_str) != Some(o.container_name.as_str()) {
            continue;
        }
        let path = format!("{container_path}/{field}");
        let fail = |reason: &str| Failure::new(name.to_string(), &path, reason);
        let mut items: Vec<String> = match container.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| fail("the list holds a value that is not a string"))?,
            Some(_) => return Err(fail("the value there is not a list")),
        };
        match o.operator {
            OverriderOperator::Add => items.extend(o.value.iter().cloned()),
            OverriderOperator::Remove => items.retain(|item| !o.value.contains(item)),
            OverriderOperator::Replace => {
                return Err(fail("replace is not supported; use add or remove"));
            }
        }
        container.insert(field.to_string(), json!(items));
    }
    Ok(())
}

fn apply_label_annotation(
    manifest: &mut Value,
    o: &LabelAnnotationOverrider,
    field: &str,
    name: &str,
) -> Result<(), Failure> {
    let path = format!("/metadata/{field}");
    let fail = |reason: &str| Failure::new(name.to_string(), &path, reason);
    let root = manifest
        .as_object_mut()
        .ok_or_else(|| fail("the manifest is not an object"))?;
    if o.operator != OverriderOperator::Add && root.get("metadata").is_none() {
        return Ok(());
    }
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let metadata = metadata
        .as_object_mut()
        .ok_or_else(|| fail("metadata is not an object"))?;
    let map = match metadata.get_mut(field) {
        Some(Value::Object(map)) => map,
        Some(Value::Null) | None if o.operator != OverriderOperator::Add => return Ok(()),
        Some(Value::Null) | None => {
            metadata.insert(field.to_string(), Value::Object(Map::new()));
            match metadata.get_mut(field) {
                Some(Value::Object(map)) => map,
                _ => return Err(fail("cannot create the map")),
            }
        }
        Some(_) => return Err(fail("the value there is not a map")),
    };
    for (key, value) in &o.value {
        match o.operator {
            OverriderOperator::Add => {
                map.insert(key.clone(), Value::String(value.clone()));
            }
            OverriderOperator::Replace => {
                if let Some(slot) = map.get_mut(key) {
                    *slot = Value::String(value.clone());
                }
            }
            OverriderOperator::Remove => {
                map.remove(key);
            }
        }
    }
    Ok(())
}

fn apply_field(manifest: &mut Value, o: &FieldOverrider, name: &str) -> Result<(), Failure> {
    let path = o.field_path.as_str();
    let fail = |at: &str, reason: String| Failure::new(name.to_string(), at, reason);
    if !o.json.is_empty() && !o.yaml.is_empty() {
        return Err(fail(
            path,
            "json and yaml cannot be combined in one fieldOverrider".into(),
        ));
    }
    if o.json.is_empty() && o.yaml.is_empty() {
        return Ok(());
    }
    let slot = manifest
        .pointer_mut(path)
        .ok_or_else(|| fail(path, "no value there".into()))?;
    let text = slot
        .as_str()
        .ok_or_else(|| fail(path, "the value there is not a string".into()))?;
    let yaml = !o.yaml.is_empty();
    let mut doc: Value = if yaml {
        serde_saphyr::from_str(text)
            .map_err(|e| fail(path, format!("the string is not a YAML document: {e}")))?
    } else {
        serde_json::from_str(text)
            .map_err(|e| fail(path, format!("the string is not a JSON document: {e}")))?
    };
    let ops: &[SubPathPatch] = if yaml { &o.yaml } else { &o.json };
    for op in ops {
        json_patch_one(&mut doc, op.operator, &op.sub_path, op.value.as_ref())
            .map_err(|reason| fail(&format!("{path} {}", op.sub_path), reason))?;
    }
    let written = if yaml {
        serde_saphyr::to_string(&doc)
            .map_err(|e| fail(path, format!("cannot write the YAML back: {e}")))?
    } else {
        serde_json::to_string(&doc)
            .map_err(|e| fail(path, format!("cannot write the JSON back: {e}")))?
    };
    *slot = Value::String(written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c";

    fn cluster(name: &str, labels: Value) -> Cluster {
        serde_json::from_value(json!({
            "apiVersion": "cluster.flotilla.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name, "labels": labels},
            "spec": {"syncMode": "Push"},
        }))
        .expect("cluster fixture")
    }

    fn member1() -> Cluster {
        cluster("member1", json!({"env": "prod"}))
    }

    fn op(namespace: &str, name: &str, spec: Value) -> OverridePolicy {
        serde_json::from_value(json!({
            "apiVersion": "policy.flotilla.io/v1alpha1",
            "kind": "OverridePolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }))
        .expect("OverridePolicy fixture")
    }

    fn cop(name: &str, spec: Value) -> ClusterOverridePolicy {
        serde_json::from_value(json!({
            "apiVersion": "policy.flotilla.io/v1alpha1",
            "kind": "ClusterOverridePolicy",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("ClusterOverridePolicy fixture")
    }

    /// A one-rule OverridePolicy in `default` selecting everything.
    fn rule(overriders: Value) -> OverridePolicy {
        op(
            "default",
            "p",
            json!({"overrideRules": [{"overriders": overriders}]}),
        )
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "template": {"spec": {
                "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                "containers": [
                    {"name": "nginx", "image": "nginx:1.25", "args": ["-g", "daemon off;"]},
                    {"name": "sidecar", "image": "registry:5000/a/b:tag"},
                ],
            }}},
        })
    }

    fn configmap(key: &str, data: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {key: data},
        })
    }

    /// Applies one rule of overriders to `template` and returns the manifest.
    fn render(template: &Value, overriders: Value) -> Result<Value, OverrideError> {
        apply_overrides(template, &member1(), &[], &[rule(overriders)]).map(|(m, _)| m)
    }

    fn at<'a>(manifest: &'a Value, pointer: &str) -> &'a Value {
        manifest.pointer(pointer).unwrap_or(&Value::Null)
    }

    #[test]
    fn plaintext_is_json_patch() {
        let table = [
            (
                json!({"path": "/spec/replicas", "operator": "replace", "value": 5}),
                "/spec/replicas",
                json!(5),
            ),
            (
                json!({"path": "/spec/paused", "operator": "add", "value": true}),
                "/spec/paused",
                json!(true),
            ),
            (
                json!({"path": "/spec/replicas", "operator": "remove"}),
                "/spec/replicas",
                Value::Null,
            ),
            (
                json!({"path": "/metadata/labels/a~1b", "operator": "add", "value": "x"}),
                "/metadata/labels/a~1b",
                json!("x"),
            ),
        ];
        for (plaintext, pointer, expect) in table {
            let manifest = render(&deployment(), json!({"plaintext": [plaintext]}))
                .unwrap_or_else(|e| panic!("{plaintext}: {e}"));
            assert_eq!(at(&manifest, pointer), &expect, "{plaintext}");
        }
    }

    #[test]
    fn images_without_predicate_reach_every_container_of_every_workload_kind() {
        let pod_spec = json!({
            "containers": [{"name": "c", "image": "nginx"}],
            "initContainers": [{"name": "i", "image": "localhost:5000/x"}],
        });
        let table = [
            ("Pod", json!({"spec": pod_spec}), "/spec"),
            (
                "Deployment",
                json!({"spec": {"template": {"spec": pod_spec}}}),
                "/spec/template/spec",
            ),
            (
                "StatefulSet",
                json!({"spec": {"template": {"spec": pod_spec}}}),
                "/spec/template/spec",
            ),
            (
                "ReplicaSet",
                json!({"spec": {"template": {"spec": pod_spec}}}),
                "/spec/template/spec",
            ),
            (
                "DaemonSet",
                json!({"spec": {"template": {"spec": pod_spec}}}),
                "/spec/template/spec",
            ),
            (
                "Job",
                json!({"spec": {"template": {"spec": pod_spec}}}),
                "/spec/template/spec",
            ),
            (
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}}),
                "/spec/jobTemplate/spec/template/spec",
            ),
        ];
        let overriders = json!({"imageOverrider": [
            {"component": "Registry", "operator": "replace", "value": "mirror.io"},
        ]});
        for (kind, mut template, prefix) in table {
            template["kind"] = json!(kind);
            template["metadata"] = json!({"name": "w", "namespace": "default"});
            let manifest =
                render(&template, overriders.clone()).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(
                at(&manifest, &format!("{prefix}/containers/0/image")),
                "mirror.io/nginx",
                "{kind}"
            );
            assert_eq!(
                at(&manifest, &format!("{prefix}/initContainers/0/image")),
                "mirror.io/x",
                "{kind}"
            );
        }
    }

    #[test]
    fn images_of_unknown_kinds_are_left_alone_without_predicate() {
        let template = json!({"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let manifest = render(
            &template,
            json!({"imageOverrider": [
                {"component": "Registry", "operator": "add", "value": "m.io"},
            ]}),
        )
        .expect("no image paths is not an error");
        assert_eq!(manifest, template);
    }

    #[test]
    fn image_tags_and_registries_per_reference_form() {
        let with_digest = format!("docker.io/library/nginx@{SHA}");
        let both = format!("a.b/c/d:e@{SHA}");
        let table = [
            ("nginx", "Tag", "add", "1.25", "nginx:1.25".to_string()),
            (
                "nginx:1.25",
                "Tag",
                "replace",
                "1.26",
                "nginx:1.26".to_string(),
            ),
            (
                "nginx:1.25",
                "Registry",
                "add",
                "docker.io",
                "docker.io/nginx:1.25".to_string(),
            ),
            (
                &with_digest,
                "Tag",
                "replace",
                "1.25",
                "docker.io/library/nginx:1.25".to_string(),
            ),
            (
                &with_digest,
                "Registry",
                "remove",
                "",
                format!("library/nginx@{SHA}"),
            ),
            (
                "registry:5000/a/b:tag",
                "Repository",
                "replace",
                "c/d",
                "registry:5000/c/d:tag".to_string(),
            ),
            (
                "registry:5000/a/b:tag",
                "Tag",
                "remove",
                "",
                "registry:5000/a/b".to_string(),
            ),
            (
                "localhost:5000/x",
                "Registry",
                "replace",
                "m.io:443",
                "m.io:443/x".to_string(),
            ),
            (
                &both,
                "Registry",
                "replace",
                "m.io",
                format!("m.io/c/d:e@{SHA}"),
            ),
        ];
        for (image, component, operator, value, expect) in table {
            let template = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": image}]}});
            let manifest = render(
                &template,
                json!({"imageOverrider": [
                    {"component": component, "operator": operator, "value": value},
                ]}),
            )
            .unwrap_or_else(|e| panic!("{image}: {e}"));
            assert_eq!(
                at(&manifest, "/spec/containers/0/image"),
                &json!(expect),
                "{image} {component} {operator}"
            );
        }
    }

    #[test]
    fn image_predicate_changes_only_that_path() {
        let manifest = render(
            &deployment(),
            json!({"imageOverrider": [{
                "predicate": {"path": "/spec/template/spec/containers/1/image"},
                "component": "Tag", "operator": "replace", "value": "v2",
            }]}),
        )
        .expect("applies");
        assert_eq!(
            at(&manifest, "/spec/template/spec/containers/1/image"),
            "registry:5000/a/b:v2"
        );
        assert_eq!(
            at(&manifest, "/spec/template/spec/containers/0/image"),
            "nginx:1.25"
        );
        assert_eq!(
            at(&manifest, "/spec/template/spec/initContainers/0/image"),
            "busybox:1.36"
        );
    }

    #[test]
    fn command_and_args_add_append_and_remove_deletes_matches() {
        let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "default"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "main", "image": "x", "command": ["run"]}],
            "initContainers": [{"name": "prep", "image": "y"}],
        }}}}}});
        let cj = "/spec/jobTemplate/spec/template/spec";
        let dp = "/spec/template/spec";
        let table = [
            (
                deployment(),
                "argsOverrider",
                "nginx",
                "add",
                json!(["-v"]),
                format!("{dp}/containers/0/args"),
                json!(["-g", "daemon off;", "-v"]),
            ),
            (
                deployment(),
                "argsOverrider",
                "nginx",
                "remove",
                json!(["-g"]),
                format!("{dp}/containers/0/args"),
                json!(["daemon off;"]),
            ),
            (
                deployment(),
                "commandOverrider",
                "sidecar",
                "add",
                json!(["/bin/sh"]),
                format!("{dp}/containers/1/command"),
                json!(["/bin/sh"]),
            ),
            (
                deployment(),
                "commandOverrider",
                "sidecar",
                "remove",
                json!(["x"]),
                format!("{dp}/containers/1/command"),
                json!([]),
            ),
            (
                deployment(),
                "commandOverrider",
                "init",
                "add",
                json!(["a"]),
                format!("{dp}/initContainers/0/command"),
                json!(["a"]),
            ),
            (
                deployment(),
                "commandOverrider",
                "absent",
                "add",
                json!(["a"]),
                format!("{dp}/containers/0/command"),
                Value::Null,
            ),
            (
                cronjob.clone(),
                "commandOverrider",
                "main",
                "add",
                json!(["--now"]),
                format!("{cj}/containers/0/command"),
                json!(["run", "--now"]),
            ),
            (
                cronjob.clone(),
                "commandOverrider",
                "main",
                "remove",
                json!(["run"]),
                format!("{cj}/containers/0/command"),
                json!([]),
            ),
            (
                cronjob,
                "argsOverrider",
                "prep",
                "add",
                json!(["-x"]),
                format!("{cj}/initContainers/0/args"),
                json!(["-x"]),
            ),
        ];
        for (template, overrider, container, operator, value, pointer, expect) in table {
            let manifest = render(
                &template,
                json!({overrider: [
                    {"containerName": container, "operator": operator, "value": value},
                ]}),
            )
            .unwrap_or_else(|e| panic!("{overrider} {container} {operator}: {e}"));
            assert_eq!(
                at(&manifest, &pointer),
                &expect,
                "{overrider} {container} {operator}"
            );
        }
    }

    #[test]
    fn labels_and_annotations_add_replace_remove() {
        let table = [
            (
                "labelsOverrider",
                "add",
                json!({"tier": "1", "app": "new"}),
                "/metadata/labels",
                json!({"app": "new", "tier": "1"}),
            ),
            (
                "labelsOverrider",
                "replace",
                json!({"app": "x", "missing": "y"}),
                "/metadata/labels",
                json!({"app": "x"}),
            ),
            (
                "labelsOverrider",
                "remove",
                json!({"app": "", "missing": ""}),
                "/metadata/labels",
                json!({}),
            ),
            (
                "annotationsOverrider",
                "add",
                json!({"a": "b"}),
                "/metadata/annotations",
                json!({"a": "b"}),
            ),
            (
                "annotationsOverrider",
                "replace",
                json!({"a": "b"}),
                "/metadata/annotations",
                Value::Null,
            ),
            (
                "annotationsOverrider",
                "remove",
                json!({"a": ""}),
                "/metadata/annotations",
                Value::Null,
            ),
        ];
        for (overrider, operator, value, pointer, expect) in table {
            let manifest = render(
                &deployment(),
                json!({overrider: [{"operator": operator, "value": value}]}),
            )
            .unwrap_or_else(|e| panic!("{overrider} {operator}: {e}"));
            assert_eq!(at(&manifest, pointer), &expect, "{overrider} {operator}");
        }
    }

    #[test]
    fn field_overrider_edits_json_and_yaml_documents_in_place() {
        let json_cm = configmap(
            "config.json",
            r#"{"db":{"host":"a","port":5432},"debug":true}"#,
        );
        let manifest = render(
            &json_cm,
            json!({"fieldOverrider": [{"fieldPath": "/data/config.json", "json": [
                {"subPath": "/db/host", "operator": "replace", "value": "b"},
                {"subPath": "/debug", "operator": "remove"},
                {"subPath": "/extra", "operator": "add", "value": [1]},
            ]}]}),
        )
        .expect("json applies");
        let text = at(&manifest, "/data/config.json")
            .as_str()
            .expect("still a string");
        let doc: Value = serde_json::from_str(text).expect("still JSON");
        assert_eq!(
            doc,
            json!({"db": {"host": "b", "port": 5432}, "extra": [1]})
        );
        assert!(!text.contains('\n'), "compact JSON: {text}");

        let yaml_cm = configmap("app.yaml", "server:\n  port: 80\n  name: web\nlist:\n- a\n");
        let manifest = render(
            &yaml_cm,
            json!({"fieldOverrider": [{"fieldPath": "/data/app.yaml", "yaml": [
                {"subPath": "/server/port", "operator": "replace", "value": 8080},
                {"subPath": "/list/-", "operator": "add", "value": "b"},
            ]}]}),
        )
        .expect("yaml applies");
        let text = at(&manifest, "/data/app.yaml")
            .as_str()
            .expect("still a string");
        assert!(
            serde_json::from_str::<Value>(text).is_err(),
            "written back as YAML, not JSON: {text}"
        );
        assert_eq!(
            text, "list:\n- a\n- b\nserver:\n  name: web\n  port: 8080\n",
            "keys sorted"
        );
        let doc: Value = serde_saphyr::from_str(text).expect("still YAML");
        assert_eq!(
            doc,
            json!({"server": {"port": 8080, "name": "web"}, "list": ["a", "b"]})
        );
    }

    #[test]
    fn overriders_within_a_rule_run_image_command_args_labels_annotations_field_plaintext() {
        // plaintext runs last, so it sees (and here overwrites) what the image overrider wrote;
        // the labels overrider runs before plaintext, so plaintext can remove what it added.
        let manifest = render(&deployment(), json!({
            "plaintext": [
                {"path": "/spec/template/spec/containers/0/image", "operator": "replace", "value": "final:1"},
                {"path": "/metadata/labels/added", "operator": "remove"},
            ],
            "labelsOverrider": [{"operator": "add", "value": {"added": "yes"}}],
            "imageOverrider": [{"component": "Tag", "operator": "replace", "value": "9"}],
        }))
        .expect("applies");
        assert_eq!(
            at(&manifest, "/spec/template/spec/containers/0/image"),
            "final:1"
        );
        assert_eq!(
            at(&manifest, "/spec/template/spec/containers/1/image"),
            "registry:5000/a/b:9"
        );
        assert_eq!(at(&manifest, "/metadata/labels/added"), &Value::Null);
    }

    /// A policy that appends its name to label `trail`, so the order policies ran in is visible.
    fn trail_spec(selectors: Value, name: &str) -> Value {
        json!({
            "resourceSelectors": selectors,
            "overrideRules": [{"overriders": {"plaintext": [
                {"path": "/metadata/annotations/trail", "operator": "replace", "value": name},
            ], "annotationsOverrider": [{"operator": "add", "value": {"trail": ""}}]}}],
        })
    }

    fn trail_of(
        template: &Value,
        cops: &[ClusterOverridePolicy],
        ops: &[OverridePolicy],
    ) -> Vec<String> {
        let (_, applied) = apply_overrides(template, &member1(), cops, ops).expect("applies");
        applied
            .cluster_overrides
            .iter()
            .map(|a| format!("cop:{}", a.policy_name))
            .chain(
                applied
                    .overrides
                    .iter()
                    .map(|a| format!("op:{}", a.policy_name)),
            )
            .collect()
    }

    #[test]
    fn cluster_policies_come_first_then_namespace_policies_by_precision_then_name() {
        let kind = json!([{"apiVersion": "apps/v1", "kind": "Deployment"}]);
        let by_label = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "labelSelector": {"matchLabels": {"app": "web"}}}]);
        let by_name = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]);
        let other = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"}]);
        let cops = [
            cop("c-name", trail_spec(by_name.clone(), "c-name")),
            cop("c-all", trail_spec(json!([]), "c-all")),
            cop("c-kind", trail_spec(kind.clone(), "c-kind")),
        ];
        let ops = [
            op("default", "a-name", trail_spec(by_name, "a-name")),
            op("default", "z-kind", trail_spec(kind.clone(), "z-kind")),
            op("default", "b-label", trail_spec(by_label, "b-label")),
            op("default", "a-kind", trail_spec(kind.clone(), "a-kind")),
            op("default", "empty", trail_spec(json!([]), "empty")),
            op("default", "mismatch", trail_spec(other, "mismatch")),
            op(
                "elsewhere",
                "0-other-namespace",
                trail_spec(kind, "0-other-namespace"),
            ),
        ];
        assert_eq!(
            trail_of(&deployment(), &cops, &ops),
            [
                "cop:c-all",
                "cop:c-kind",
                "cop:c-name",
                "op:a-kind",
                "op:empty",
                "op:z-kind",
                "op:b-label",
                "op:a-name",
            ]
        );
        let (manifest, _) =
            apply_overrides(&deployment(), &member1(), &cops, &ops).expect("applies");
        assert_eq!(
            at(&manifest, "/metadata/annotations/trail"),
            "a-name",
            "the most precise policy wins"
        );
    }

    #[test]
    fn namespace_policies_skip_cluster_scoped_templates() {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        let cops = [cop("c", trail_spec(json!([]), "c"))];
        let ops = [op("default", "o", trail_spec(json!([]), "o"))];
        assert_eq!(trail_of(&namespace, &cops, &ops), ["cop:c"]);
    }

    #[test]
    fn rules_apply_only_on_clusters_their_target_matches() {
        let spec = json!({
            "overrideRules": [
                {"targetCluster": {"clusterNames": ["member1"]}, "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 1}]}},
                {"targetCluster": {"labelSelector": {"matchLabels": {"env": "dev"}}}, "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 7}]}},
                {"overriders": {"labelsOverrider": [{"operator": "add", "value": {"everywhere": "yes"}}]}},
            ],
            "targetCluster": {"exclude": ["member1"]},
            "overriders": {"labelsOverrider": [{"operator": "add", "value": {"deprecated": "yes"}}]},
        });
        let policies = [op("default", "p", spec)];
        let table = [
            (member1(), json!(1), Value::Null, 2),
            (
                cluster("member2", json!({"env": "dev"})),
                json!(7),
                json!("yes"),
                3,
            ),
            (cluster("member3", json!({})), json!(2), json!("yes"), 2),
        ];
        for (cluster, replicas, deprecated, applied_rules) in table {
            let name = cluster.metadata.name.clone().unwrap_or_default();
            let (manifest, applied) =
                apply_overrides(&deployment(), &cluster, &[], &policies).expect("applies");
            assert_eq!(at(&manifest, "/spec/replicas"), &replicas, "{name}");
            assert_eq!(
                at(&manifest, "/metadata/labels/everywhere"),
                "yes",
                "{name}"
            );
            assert_eq!(
                at(&manifest, "/metadata/labels/deprecated"),
                &deprecated,
                "{name}"
            );
            assert_eq!(applied.overrides.len(), applied_rules, "{name}");
        }
    }

    #[test]
    fn applied_overrides_serialise_as_karmada_annotations() {
        let ops = [
            op(
                "default",
                "zeta",
                json!({"overrideRules": [{"overriders": {"labelsOverrider": [{"operator": "add", "value": {"a": "b"}}]}}]}),
            ),
            op(
                "default",
                "alpha",
                json!({"resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
                "overrideRules": [{"overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 3}]}}]}),
            ),
        ];
        let (_, applied) = apply_overrides(&deployment(), &member1(), &[], &ops).expect("applies");
        assert_eq!(
            applied.overrides[0].policy_name, "zeta",
            "application order: less precise first"
        );
        assert_eq!(applied.cluster_overrides_annotation(), None);
        let annotation: Value =
            serde_json::from_str(&applied.overrides_annotation().expect("some")).expect("JSON");
        assert_eq!(
            annotation,
            json!([
                {"policyName": "alpha", "overriders": {"plaintext": [{"path": "/spec/replicas", "operator": "replace", "value": 3}]}},
                {"policyName": "zeta", "overriders": {"labelsOverrider": [{"operator": "add", "value": {"a": "b"}}]}},
            ])
        );
        assert!(Applied::default().is_empty());
    }

    #[test]
    fn failures_name_policy_rule_and_path_and_return_no_manifest() {
        let cm = configmap("k", "{not json");
        let table: [(Value, Value, &str); 14] = [
            (
                deployment(),
                json!({"plaintext": [{"path": "/spec/missing", "operator": "replace", "value": 1}]}),
                r#"OverridePolicy default/p: spec.overrideRules[1].overriders.plaintext[0] cannot apply at "/spec/missing": nothing to replace there"#,
            ),
            (
                deployment(),
                json!({"plaintext": [{"path": "/spec/missing", "operator": "remove"}]}),
                r#"plaintext[0] cannot apply at "/spec/missing": nothing to remove there"#,
            ),
            (
                deployment(),
                json!({"plaintext": [{"path": "/no/parent", "operator": "add", "value": 1}]}),
                r#"plaintext[0] cannot apply at "/no/parent": cannot add there"#,
            ),
            (
                deployment(),
                json!({"plaintext": [{"path": "spec", "operator": "add", "value": 1}]}),
                r#"plaintext[0] cannot apply at "spec": "spec" is not a JSON pointer"#,
            ),
            (
                cm.clone(),
                json!({"fieldOverrider": [{"fieldPath": "/data/k", "json": [{"subPath": "/a", "operator": "add", "value": 1}]}]}),
                r#"fieldOverrider[0] cannot apply at "/data/k": the string is not a JSON document"#,
            ),
            (
                configmap("k", "a: [unclosed"),
                json!({"fieldOverrider": [{"fieldPath": "/data/k", "yaml": [{"subPath": "/a", "operator": "add", "value": 1}]}]}),
                r#"fieldOverrider[0] cannot apply at "/data/k": the string is not a YAML document"#,
            ),
            (
                configmap("k", r#"{"a":1}"#),
                json!({"fieldOverrider": [{"fieldPath": "/data/k", "json": [{"subPath": "/b", "operator": "replace", "value": 1}]}]}),
                r#"fieldOverrider[0] cannot apply at "/data/k /b": nothing to replace there"#,
            ),
            (
                deployment(),
                json!({"fieldOverrider": [{"fieldPath": "/spec/replicas", "json": [{"subPath": "/a", "operator": "remove"}]}]}),
                r#"fieldOverrider[0] cannot apply at "/spec/replicas": the value there is not a string"#,
            ),
            (
                cm,
                json!({"fieldOverrider": [{"fieldPath": "/data/missing", "yaml": [{"subPath": "/a", "operator": "remove"}]}]}),
                r#"fieldOverrider[0] cannot apply at "/data/missing": no value there"#,
            ),
            (
                deployment(),
                json!({"imageOverrider": [{"predicate": {"path": "/spec/template/spec/containers/9/image"}, "component": "Tag", "operator": "remove"}]}),
                r#"imageOverrider[0] cannot apply at "/spec/template/spec/containers/9/image": no image there"#,
            ),
            (
                deployment(),
                json!({"imageOverrider": [{"component": "Tag", "operator": "replace", "value": "not a tag"}]}),
                r#"imageOverrider[0] cannot apply at "/spec/template/spec/containers/0/image": image "nginx:1.25": "not a tag" is neither a valid tag nor a valid digest"#,
            ),
            (
                deployment(),
                json!({"argsOverrider": [{"containerName": "nginx", "operator": "replace", "value": ["x"]}]}),
                r#"argsOverrider[0] cannot apply at "/spec/template/spec/containers/0/args": replace is not supported"#,
            ),
            (
                configmap("k", "{}"),
                json!({"fieldOverrider": [{"fieldPath": "/data/k",
                    "json": [{"subPath": "/a", "operator": "remove"}],
                    "yaml": [{"subPath": "/a", "operator": "remove"}]}]}),
                r#"fieldOverrider[0] cannot apply at "/data/k": json and yaml cannot be combined"#,
            ),
            (
                deployment(),
                json!({"imageOverrider": [{"predicate": {"path": "/spec/replicas"}, "component": "Tag", "operator": "remove"}]}),
                r#"imageOverrider[0] cannot apply at "/spec/replicas": the value there is not a string"#,
            ),
        ];
        for (template, overriders, expect) in table {
            // Rule 0 applies cleanly first: the error must still leave no half-overridden result.
            let policy = op(
                "default",
                "p",
                json!({"overrideRules": [
                    {"overriders": {"labelsOverrider": [{"operator": "add", "value": {"first": "rule"}}]}},
                    {"overriders": overriders},
                ]}),
            );
            let err = apply_overrides(&template, &member1(), &[], &[policy])
                .expect_err("must fail")
                .to_string();
            assert!(err.contains(expect), "expected {expect:?} in {err:?}");
        }
    }

    #[test]
    fn failure_in_a_cluster_policy_names_it_and_the_deprecated_rule() {
        let policy = cop(
            "mirror",
            json!({"overriders": {"plaintext": [{"path": "/x/y", "operator": "remove"}]}}),
        );
        let err =
            apply_overrides(&deployment(), &member1(), &[policy], &[]).expect_err("must fail");
        let OverrideError::ApplyOverrider {
            policy,
            rule,
            overrider,
            path,
            ..
        } = &err;
        assert_eq!(policy.to_string(), "ClusterOverridePolicy mirror");
        assert_eq!(
            (*rule, overrider.as_str(), path.as_str()),
            (RuleRef::Deprecated, "plaintext[0]", "/x/y")
        );
        assert!(
            err.to_string()
                .starts_with("ClusterOverridePolicy mirror: spec.overriders.plaintext[0]"),
            "{err}"
        );
    }
}
