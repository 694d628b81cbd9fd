//! A resource template becomes what each target cluster receives: the binding spec the
//! detector builds from a template and its policy ([`binding_spec`]), and the per-cluster
//! manifest the binding controller puts in a Work ([`manifest`]): server-populated metadata,
//! claim metadata and status stripped, replicas revised for a Divided placement, overrides
//! applied, and the labels and annotations that trace the member object back to its Work.
//! [`what_if`] runs the same code over a stream of documents, for `flotilla render`.

use std::collections::BTreeMap;
use std::sync::Arc;

use flotilla_api::keys::{annotations, labels};
use flotilla_api::policy::{PropagationSpec, ReplicaSchedulingType};
use flotilla_api::work::{
    BindingSuspension, ClusterResourceBindingSpec, ObjectReference, ResourceBindingSpec,
    TargetCluster,
};
use flotilla_api::{
    Cluster, ClusterOverridePolicy, ClusterPropagationPolicy, ClusterResourceBinding,
    OverridePolicy, PropagationPolicy, ResourceBinding, names,
};
use serde_json::{Map, Value, json};

use crate::interpreter;
use crate::matching::{self, PolicyRef};
use crate::overrides::{self, Applied, OverrideError};

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The resource reference of a template.
pub fn resource_ref(template: &Value) -> ObjectReference {
    ObjectReference {
        api_version: str_at(template, "/apiVersion")
            .unwrap_or_default()
            .to_owned(),
        kind: str_at(template, "/kind").unwrap_or_default().to_owned(),
        namespace: str_at(template, "/metadata/namespace").map(str::to_owned),
        name: str_at(template, "/metadata/name")
            .unwrap_or_default()
            .to_owned(),
        uid: str_at(template, "/metadata/uid").map(str::to_owned),
        resource_version: str_at(template, "/metadata/resourceVersion").map(str::to_owned),
    }
}

/// The (Cluster)ResourceBinding spec for `template` claimed by a policy with `spec`: the
/// resource reference, the interpreter's replicas and per-replica requirements, the placement
/// and the policy's options. `clusters` is left for the scheduler.
pub fn binding_spec(template: &Value, spec: &PropagationSpec) -> ResourceBindingSpec {
    let replicas = interpreter::replicas(template);
    ResourceBindingSpec {
        resource: resource_ref(template),
        propagate_deps: spec.propagate_deps,
        replicas: replicas.as_ref().map_or(0, |r| r.replicas),
        replica_requirements: replicas.and_then(|r| r.requirements),
        placement: Some(spec.placement.clone()),
        scheduler_name: spec.scheduler_name.clone(),
        failover: spec.failover.clone(),
        conflict_resolution: spec.conflict_resolution,
        preserve_resources_on_deletion: spec.preserve_resources_on_deletion,
        suspension: spec.suspension.as_ref().map(|s| BindingSuspension {
            dispatching: s.dispatching,
            dispatching_on_clusters: s.dispatching_on_clusters.clone(),
            scheduling: None,
        }),
        ..ResourceBindingSpec::default()
    }
}

/// Whether a binding's placement divides replicas among clusters.
pub fn divides(spec: &ResourceBindingSpec) -> bool {
    spec.placement
        .as_ref()
        .and_then(|p| p.replica_scheduling.as_ref())
        .is_some_and(|r| r.replica_scheduling_type == ReplicaSchedulingType::Divided)
}

/// What [`manifest`] produces for one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The cluster.
    pub cluster: String,
    /// Exactly what the cluster's Work carries.
    pub manifest: Value,
    /// The override policies applied (recorded on the Work).
    pub applied: Applied,
}

/// Metadata the server or Flotilla put on a template that never goes to a member.
const SERVER_METADATA: [&str; 9] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "ownerReferences",
    "selfLink",
];

fn claim_keys() -> ([&'static str; 2], [&'static str; 3]) {
    (
        [
            labels::PROPAGATION_POLICY_PERMANENT_ID,
            labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID,
        ],
        [
            annotations::PROPAGATION_POLICY_NAMESPACE,
            annotations::PROPAGATION_POLICY_NAME,
            annotations::CLUSTER_PROPAGATION_POLICY_NAME,
        ],
    )
}

/// The template as it leaves the hub: no server-populated metadata, no claim, no status.
pub fn strip(template: &Value) -> Value {
    let mut out = template.clone();
    let Some(o) = out.as_object_mut() else {
        return out;
    };
    o.remove("status");
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in SERVER_METADATA {
            meta.remove(k);
        }
        let (claim_labels, claim_annotations) = claim_keys();
        for (field, keys) in [
            ("labels", &claim_labels[..]),
            ("annotations", &claim_annotations[..]),
        ] {
            if let Some(m) = meta.get_mut(field).and_then(Value::as_object_mut) {
                for k in keys {
                    m.remove(*k);
                }
                if m.is_empty() {
                    meta.remove(field);
                }
            }
        }
    }
    out
}

fn insert_in(meta: &mut Map<String, Value>, field: &str, key: &str, value: &str) {
    let m = meta.entry(field).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(key.to_owned(), json!(value));
    }
}

/// The manifest `template` becomes in `target.name`'s Work: stripped ([`strip`]), replicas
/// revised to the cluster's share when the placement divides them (`completions` is the
/// cluster's share of a Job's completions, when divided), overrides applied, and the labels and
/// annotations naming the Work (`flotilla-es-<cluster>/<work name>`), the manager, and the
/// template's generation (`resourcetemplate.flotilla.io/generation`, so the status the member
/// reports back says which generation it runs).
///
/// # Errors
///
/// An overrider that cannot apply; the caller keeps the cluster's last good manifest.
pub fn manifest(
    template: &Value,
    target: &TargetCluster,
    divided: bool,
    completions: Option<i32>,
    cluster: &Cluster,
    cluster_policies: &[ClusterOverridePolicy],
    policies: &[OverridePolicy],
) -> Result<Rendered, OverrideError> {
    let mut out = strip(template);
    if divided {
        interpreter::revise_replicas(&mut out, target.replicas);
        if let Some(c) = completions {
            interpreter::revise_job_completions(&mut out, c);
        }
    }
    let (mut out, applied) = overrides::apply_overrides(&out, cluster, cluster_policies, policies)?;
    let reference = resource_ref(template);
    let work = names::work_name(
        &reference.api_version,
        &reference.kind,
        reference.namespace.as_deref(),
        &reference.name,
    );
    // A cluster name the API accepted always makes a valid execution namespace.
    let namespace = names::execution_namespace(&target.name)
        .unwrap_or_else(|_| format!("flotilla-es-{}", target.name));
    if let Some(meta) = out
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        insert_in(
            meta,
            "labels",
            labels::MANAGED_BY,
            labels::MANAGED_BY_FLOTILLA,
        );
        insert_in(meta, "annotations", annotations::WORK_NAMESPACE, &namespace);
        insert_in(meta, "annotations", annotations::WORK_NAME, &work);
        if let Some(generation) = template
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
        {
            insert_in(
                meta,
                "annotations",
                annotations::RESOURCE_TEMPLATE_GENERATION,
                &generation.to_string(),
            );
        }
    }
    Ok(Rendered {
        cluster: target.name.clone(),
        manifest: out,
        applied,
    })
}

/// Why `flotilla render` could not render its input.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The input is not what the command reads.
    #[error("{0}")]
    Input(String),
    /// The scheduler found no placement.
    #[error("{template}: {source}")]
    Schedule {
        template: String,
        #[source]
        source: flotilla_scheduler::Error,
    },
    /// An overrider could not apply.
    #[error("{template} for cluster {cluster}: {source}")]
    Override {
        template: String,
        cluster: String,
        #[source]
        source: Box<OverrideError>,
    },
}

/// The documents `flotilla render` reads, sorted by role.
#[derive(Default)]
struct Inputs {
    templates: Vec<Value>,
    clusters: Vec<Cluster>,
    policies: Vec<PropagationPolicy>,
    cluster_policies: Vec<ClusterPropagationPolicy>,
    overrides: Vec<OverridePolicy>,
    cluster_overrides: Vec<ClusterOverridePolicy>,
}

fn sort_inputs(documents: Vec<Value>) -> Result<Inputs, RenderError> {
    let mut inputs = Inputs::default();
    for (index, doc) in documents.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let kind = str_at(&doc, "/kind").unwrap_or_default().to_owned();
        let group = str_at(&doc, "/apiVersion")
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let label = format!(
            "document {} ({kind} {})",
            index + 1,
            str_at(&doc, "/metadata/name").unwrap_or("<unnamed>")
        );
        let bad = |e: serde_json::Error| RenderError::Input(format!("{label}: {e}"));
        match (group.as_str(), kind.as_str()) {
            ("cluster.flotilla.io", "Cluster") => {
                let cluster: Cluster = serde_json::from_value(doc).map_err(bad)?;
                if inputs
                    .clusters
                    .iter()
                    .any(|c| c.metadata.name == cluster.metadata.name)
                {
                    return Err(RenderError::Input(format!(
                        "{label}: a second Cluster with this name; give each cluster once"
                    )));
                }
                inputs.clusters.push(cluster);
            }
            ("policy.flotilla.io", "PropagationPolicy") => {
                inputs
                    .policies
                    .push(serde_json::from_value(doc).map_err(bad)?);
            }
            ("policy.flotilla.io", "ClusterPropagationPolicy") => {
                inputs
                    .cluster_policies
                    .push(serde_json::from_value(doc).map_err(bad)?);
            }
            ("policy.flotilla.io", "OverridePolicy") => {
                inputs
                    .overrides
                    .push(serde_json::from_value(doc).map_err(bad)?);
            }
            ("policy.flotilla.io", "ClusterOverridePolicy") => {
                inputs
                    .cluster_overrides
                    .push(serde_json::from_value(doc).map_err(bad)?);
            }
            _ if matching::is_flotilla_group(&group) => {
                return Err(RenderError::Input(format!(
                    "{label}: flotilla render reads resource templates, Clusters and policies; a {kind} is none of them"
                )));
            }
            _ if kind.is_empty() || str_at(&doc, "/metadata/name").is_none() => {
                return Err(RenderError::Input(format!(
                    "{label}: a resource template needs apiVersion, kind and metadata.name"
                )));
            }
            // What the detector never propagates (a reserved namespace, an event, a
            // service-account token) is not rendered either.
            _ if !matching::is_template_propagatable(&doc) => {}
            _ => inputs.templates.push(doc),
        }
    }
    Ok(inputs)
}

fn template_label(template: &Value) -> String {
    let r = resource_ref(template);
    match r.namespace {
        Some(ns) => format!("{} {ns}/{}", r.kind, r.name),
        None => format!("{} {}", r.kind, r.name),
    }
}

/// Where a template goes without `--cluster`: the placement of the policy that claims it,
/// scheduled by the scheduler against the input's Clusters. `None` when no policy claims it.
fn schedule(
    template: &Value,
    inputs: &Inputs,
) -> Result<Option<(ResourceBindingSpec, Vec<TargetCluster>)>, RenderError> {
    let Some(found) = matching::match_policy(template, &inputs.policies, &inputs.cluster_policies)
    else {
        return Ok(None);
    };
    let spec = binding_spec(template, found.policy.spec());
    let snapshot = flotilla_scheduler::Snapshot::new(
        inputs
            .clusters
            .iter()
            .cloned()
            .map(Arc::new)
            .collect::<Vec<_>>(),
    );
    let failed = |source| RenderError::Schedule {
        template: template_label(template),
        source,
    };
    let name = names::binding_name(&spec.resource.kind, &spec.resource.name);
    let decision = match found.policy {
        PolicyRef::Namespaced(_) => {
            let mut binding = ResourceBinding::new(&name, spec.clone());
            binding.metadata.namespace = spec.resource.namespace.clone();
            flotilla_scheduler::schedule(
                &snapshot,
                &flotilla_scheduler::ScheduleInput::from_resource_binding(&binding),
            )
        }
        PolicyRef::Cluster(_) => {
            let binding = ClusterResourceBinding::new(
                &name,
                ClusterResourceBindingSpec { spec: spec.clone() },
            );
            flotilla_scheduler::schedule(
                &snapshot,
                &flotilla_scheduler::ScheduleInput::from_cluster_resource_binding(&binding),
            )
        }
    }
    .map_err(failed)?;
    Ok(Some((spec, decision.clusters)))
}

/// `flotilla render`: every template of `documents` rendered for its target clusters — exactly
/// `clusters` when given (each must be one of the input's Clusters), else where its policy's
/// placement puts it. Templates no policy claims are skipped when no `clusters` are given.
/// Sorted by template (input order), then cluster name.
///
/// # Errors
///
/// Bad input, a placement the scheduler cannot satisfy, or an overrider that cannot apply (the
/// message names the policy, rule and path).
pub fn what_if(documents: Vec<Value>, clusters: &[String]) -> Result<Vec<Rendered>, RenderError> {
    let inputs = sort_inputs(documents)?;
    if inputs.templates.is_empty() {
        return Err(RenderError::Input(
            "the input has no resource templates to render".into(),
        ));
    }
    let by_name: BTreeMap<&str, &Cluster> = inputs
        .clusters
        .iter()
        .map(|c| (c.metadata.name.as_deref().unwrap_or_default(), c))
        .collect();
    for name in clusters {
        if !by_name.contains_key(name.as_str()) {
            return Err(RenderError::Input(format!(
                "--cluster {name}: the input has no Cluster named {name:?} (it has: {})",
                by_name.keys().copied().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut out = Vec::new();
    for template in &inputs.templates {
        let (divided, targets, spec) = if clusters.is_empty() {
            match schedule(template, &inputs)? {
                Some((spec, targets)) => (divides(&spec), targets, Some(spec)),
                None => continue,
            }
        } else {
            let replicas = interpreter::replicas(template).map_or(0, |r| r.replicas);
            let targets = clusters
                .iter()
                .map(|name| TargetCluster {
                    name: name.clone(),
                    replicas,
                })
                .collect();
            (false, targets, None)
        };
        let completions = spec
            .as_ref()
            .filter(|_| divided)
            .and_then(|_| interpreter::divide_job_completions(template, &targets));
        let mut rendered = Vec::new();
        for target in &targets {
            let Some(cluster) = by_name.get(target.name.as_str()) else {
                continue;
            };
            let share = completions
                .as_ref()
                .and_then(|c| c.get(&target.name).copied());
            let r = manifest(
                template,
                target,
                divided,
                share,
                cluster,
                &inputs.cluster_overrides,
                &inputs.overrides,
            )
            .map_err(|source| RenderError::Override {
                template: template_label(template),
                cluster: target.name.clone(),
                source: Box::new(source),
            })?;
            rendered.push(r);
        }
        rendered.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        out.extend(rendered);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl"}],
                "labels": {"app": "web", labels::PROPAGATION_POLICY_PERMANENT_ID: "id"},
                "annotations": {annotations::PROPAGATION_POLICY_NAME: "p",
                    annotations::PROPAGATION_POLICY_NAMESPACE: "shop"}},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 5}})
    }

    fn cluster(name: &str) -> Value {
        json!({"apiVersion": "cluster.flotilla.io/v1alpha1", "kind": "Cluster",
            "metadata": {"name": name}, "spec": {"syncMode": "Push"}})
    }

    #[test]
    fn a_manifest_leaves_server_and_claim_metadata_behind_and_names_its_work() {
        let c: Cluster = serde_json::from_value(cluster("m1")).unwrap();
        let target = TargetCluster {
            name: "m1".into(),
            replicas: 2,
        };
        let r = manifest(&deployment(), &target, true, None, &c, &[], &[]).unwrap();
        assert_eq!(r.cluster, "m1");
        assert_eq!(
            r.manifest,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop",
                    "labels": {"app": "web", labels::MANAGED_BY: labels::MANAGED_BY_FLOTILLA},
                    "annotations": {annotations::WORK_NAMESPACE: "flotilla-es-m1",
                        annotations::WORK_NAME: names::work_name("apps/v1", "Deployment", Some("shop"), "web"),
                        annotations::RESOURCE_TEMPLATE_GENERATION: "3"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})
        );
        assert!(r.applied.is_empty());
        // Duplicated placements keep the template's replicas.
        let r = manifest(&deployment(), &target, false, None, &c, &[], &[]).unwrap();
        assert_eq!(r.manifest["spec"]["replicas"], 5);
    }

    #[test]
    fn binding_specs_carry_the_interpreters_replicas_and_the_policys_options() {
        let spec: PropagationSpec = serde_json::from_value(json!({
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment"}],
            "placement": {"replicaScheduling": {"replicaSchedulingType": "Divided"}},
            "propagateDeps": true, "conflictResolution": "Overwrite",
            "suspension": {"dispatching": true}}))
        .unwrap();
        let b = binding_spec(&deployment(), &spec);
        assert_eq!(b.replicas, 5);
        assert!(b.propagate_deps && divides(&b));
        assert_eq!(b.resource.uid.as_deref(), Some("u1"));
        assert_eq!(b.resource.resource_version.as_deref(), Some("7"));
        assert_eq!(b.suspension.and_then(|s| s.dispatching), Some(true));
        assert!(b.clusters.is_empty());
    }

    #[test]
    fn what_if_renders_for_named_clusters_and_refuses_bad_input() {
        let docs = vec![
            deployment(),
            cluster("m1"),
            cluster("m2"),
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "flotilla-cluster"}}),
        ];
        let out = what_if(docs.clone(), &["m2".into(), "m1".into()]).unwrap();
        let clusters: Vec<&str> = out.iter().map(|r| r.cluster.as_str()).collect();
        assert_eq!(
            clusters,
            ["m1", "m2"],
            "sorted; the reserved-namespace Secret is not rendered"
        );
        assert!(out.iter().all(|r| r.manifest["spec"]["replicas"] == 5));
        let e = what_if(docs.clone(), &["m3".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no Cluster named \"m3\""), "{e}");
        let mut twice = docs.clone();
        twice.push(cluster("m1"));
        let e = what_if(twice, &["m1".into()]).unwrap_err().to_string();
        assert!(e.contains("a second Cluster"), "{e}");
        let e = what_if(vec![cluster("m1")], &[]).unwrap_err().to_string();
        assert!(e.contains("no resource templates"), "{e}");
        // Without --cluster, a template no policy claims goes nowhere.
        assert!(what_if(docs, &[]).unwrap().is_empty());
    }

    #[test]
    fn an_overrider_that_cannot_apply_names_template_cluster_policy_and_path() {
        let op = json!({"apiVersion": "policy.flotilla.io/v1alpha1", "kind": "OverridePolicy",
            "metadata": {"name": "broken", "namespace": "shop"},
            "spec": {"overrideRules": [{"overriders": {"plaintext": [
                {"path": "/spec/nothere", "operator": "replace", "value": 1}]}}]}});
        let e = what_if(vec![deployment(), cluster("m1"), op], &["m1".into()])
            .unwrap_err()
            .to_string();
        for part in [
            "Deployment shop/web",
            "m1",
            "broken",
            "overrideRules[0]",
            "/spec/nothere",
        ] {
            assert!(e.contains(part), "{part} in {e}");
        }
    }
}
