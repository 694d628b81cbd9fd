//! `validate()` for every rule the CRD schemas cannot express. Each check returns every
//! violation with the path of the field at fault, as kube-apiserver's field errors do, so a
//! user fixes everything in one go.
//!
//! Pure functions over the API types; no defaulting and no IO.

use std::{collections::BTreeSet, fmt};

use k8s_openapi::{
    api::core::v1::{NodeSelectorRequirement, Taint, Toleration},
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use crate::{
    cluster::{Cluster, ClusterSyncMode},
    gitops::{GitRepo, GitRepoSpec},
    policy::{
        ClusterAffinity, ClusterOverridePolicy, ClusterPropagationPolicy, FIELD_SELECTOR_KEYS,
        OverridePolicy, OverrideSpec, OverriderOperator, Placement, PropagationPolicy,
        PropagationSpec, PurgeMode, ReplicaSchedulingType, ResourceSelector, RuleWithCluster,
        Suspension,
    },
    provisioning::{
        Machine, MachineHealthCheck, MachineRolloutStrategyType, MachineSet, MachineSpec,
    },
    work::{ClusterResourceBinding, ResourceBinding, ResourceBindingSpec, Work},
};

/// One violated rule: the field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, such as `spec.placement.spreadConstraints[1].maxGroups`.
    pub path: String,
    /// What is wrong, and how to put it right.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every rule an object violates.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", messages.join("; "))
    }
}

impl ValidationErrors {
    /// Whether any violation's path is exactly `path`.
    pub fn has(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }
}

/// Checks the rules a schema cannot express.
pub trait Validate {
    /// Returns every violation, or `Ok` when there is none.
    fn validate(&self) -> Result<(), ValidationErrors>;
}

/// Collects errors under a growing field path.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

macro_rules! impl_validate {
    ($kind:ty, |$obj:ident, $errors:ident| $body:block) => {
        impl Validate for $kind {
            fn validate(&self) -> Result<(), ValidationErrors> {
                let $obj = self;
                let mut $errors = Errors::default();
                $body
                $errors.finish()
            }
        }
    };
}

impl_validate!(Cluster, |cluster, errors| {
    validate_cluster(cluster, &mut errors)
});
impl_validate!(PropagationPolicy, |policy, errors| {
    validate_propagation(&policy.spec, "spec", &mut errors)
});
impl_validate!(ClusterPropagationPolicy, |policy, errors| {
    validate_propagation(&policy.spec, "spec", &mut errors)
});
impl_validate!(OverridePolicy, |policy, errors| {
    validate_override(&policy.spec, "spec", &mut errors)
});
impl_validate!(ClusterOverridePolicy, |policy, errors| {
    validate_override(&policy.spec, "spec", &mut errors)
});
impl_validate!(ResourceBinding, |binding, errors| {
    validate_binding(&binding.spec, "spec", &mut errors)
});
impl_validate!(ClusterResourceBinding, |binding, errors| {
    validate_binding(&binding.spec, "spec", &mut errors)
});
impl_validate!(Work, |work, errors| { validate_work(work, &mut errors) });
impl_validate!(Machine, |machine, errors| {
    validate_machine_spec(&machine.spec, "spec", &mut errors)
});
impl_validate!(MachineSet, |set, errors| {
    validate_machine_set(set, &mut errors)
});
impl_validate!(MachineHealthCheck, |check, errors| {
    validate_health_check(check, &mut errors)
});
impl_validate!(GitRepo, |repo, errors| {
    validate_gitrepo(&repo.spec, &mut errors)
});

// ---------------------------------------------------------------------------------------------
// GitRepo.
// ---------------------------------------------------------------------------------------------

fn validate_gitrepo(spec: &GitRepoSpec, errors: &mut Errors) {
    let url = spec.url.trim();
    let scp_like = !url.contains("://") && url.contains('@') && url.contains(':');
    let scheme_ok = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|s| url.starts_with(s));
    if url.is_empty() {
        errors.add("spec.url", "is required");
    } else if !scheme_ok && !scp_like {
        errors.add(
            "spec.url",
            "must start with https://, http://, ssh://, git:// or file:// (or be user@host:path)",
        );
    } else if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.split('/').next().and_then(|h| h.rsplit_once('@'))
        && userinfo.contains(':')
    {
        errors.add(
            "spec.url",
            "must not hold a password; put credentials in the Secret of spec.secretRef",
        );
    }
    if let Some(reference) = &spec.reference {
        let set = [
            reference.branch.is_some(),
            reference.tag.is_some(),
            reference.semver.is_some(),
            reference.commit.is_some(),
        ]
        .into_iter()
        .filter(|s| *s)
        .count();
        if set != 1 {
            errors.add(
                "spec.ref",
                format!("set exactly one of branch, tag, semver and commit ({set} are set)"),
            );
        }
        if let Some(range) = &reference.semver
            && let Err(e) = semver::VersionReq::parse(range)
        {
            errors.add(
                "spec.ref.semver",
                format!("{range:?} is not a semver range: {e}"),
            );
        }
        if let Some(commit) = &reference.commit
            && (commit.len() != 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()))
        {
            errors.add(
                "spec.ref.commit",
                format!("{commit:?} is not a full 40-character commit SHA"),
            );
        }
        for (field, value) in [("branch", &reference.branch), ("tag", &reference.tag)] {
            if let Some(value) = value
                && (value.is_empty()
                    || value.starts_with('-')
                    || value.contains("..")
                    || value.contains(|c: char| c.is_whitespace() || "~^:?*[\\".contains(c)))
            {
                errors.add(
                    format!("spec.ref.{field}"),
                    format!("{value:?} is not a valid Git reference name"),
                );
            }
        }
    }
    if let Some(interval) = &spec.interval {
        match humantime::parse_duration(interval) {
            Ok(d) if d < crate::gitops::MIN_INTERVAL => {
                errors.add("spec.interval", format!("{interval:?} is shorter than 5s"));
            }
            Ok(_) => {}
            Err(e) => errors.add(
                "spec.interval",
                format!("{interval:?} is not a duration such as 30s or 5m: {e}"),
            ),
        }
    }
    for (i, path) in spec.paths.iter().enumerate() {
        if path.starts_with('/') || path.split('/').any(|p| p == "..") {
            errors.add(
                format!("spec.paths[{i}]"),
                format!("{path:?} must be relative to the repository root, without .."),
            );
        }
    }
    if let Some(secret) = &spec.secret_ref
        && secret.name.is_empty()
    {
        errors.add("spec.secretRef.name", "is required");
    }
    if let Some(placement) = &spec.placement {
        validate_placement(placement, "spec.placement", errors);
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster.
// ---------------------------------------------------------------------------------------------

fn validate_cluster(cluster: &Cluster, errors: &mut Errors) {
    validate_cluster_name(&cluster.metadata, errors);
    let spec = &cluster.spec;
    match spec.api_endpoint.as_deref() {
        Some(endpoint)
            if !(endpoint.is_empty()
                || endpoint.starts_with("https://")
                || endpoint.starts_with("http://")) =>
        {
            errors.add(
                "spec.apiEndpoint",
                format!("must be an http:// or https:// URL, got {endpoint:?}"),
            );
        }
        Some(endpoint) if !endpoint.is_empty() => {}
        _ if spec.sync_mode == ClusterSyncMode::Push && spec.provisioning.is_none() => errors.add(
            "spec.apiEndpoint",
            "is required for a Push cluster: the hub needs the member's API server URL",
        ),
        _ => {}
    }
    if let Some(secret) = &spec.secret_ref {
        if secret.name.is_empty() {
            errors.add("spec.secretRef.name", "must not be empty");
        }
        if secret.namespace.is_empty() {
            errors.add("spec.secretRef.namespace", "must not be empty");
        }
    }
    if let Some(proxy) = spec.proxy_url.as_deref()
        && !["http://", "https://", "socks5://"]
            .iter()
            .any(|scheme| proxy.starts_with(scheme))
    {
        errors.add(
            "spec.proxyURL",
            format!("must be an http, https or socks5 URL, got {proxy:?}"),
        );
    }
    validate_taints(&spec.taints, "spec.taints", errors);
    let mut zones = BTreeSet::new();
    for (i, zone) in spec.zones.iter().enumerate() {
        if zone.is_empty() {
            errors.add(format!("spec.zones[{i}]"), "must not be empty");
        } else if !zones.insert(zone) {
            errors.add(
                format!("spec.zones[{i}]"),
                format!("duplicate zone {zone:?}"),
            );
        }
    }
    if let Some(provisioning) = &spec.provisioning {
        let path = "spec.provisioning";
        if !is_kubernetes_version(&provisioning.version) {
            errors.add(
                format!("{path}.version"),
                format!("must look like v1.33.1, got {:?}", provisioning.version),
            );
        }
        if provisioning.provider.name.is_empty() {
            errors.add(
                format!("{path}.provider.name"),
                "must name a provider, such as local",
            );
        }
        let control_plane = provisioning.control_plane.replicas;
        if control_plane < 1 || control_plane % 2 == 0 {
            errors.add(
                format!("{path}.controlPlane.replicas"),
                format!("must be odd and at least 1 to keep quorum, got {control_plane}"),
            );
        }
        if provisioning.workers.replicas < 0 {
            errors.add(format!("{path}.workers.replicas"), "must not be negative");
        }
    }
}

/// A Cluster's name names its execution namespace `flotilla-es-<name>`, so it must be a DNS-1123
/// label short enough for that namespace name to stay valid. For a nameless Cluster with
/// `generateName`, the name the server will make (the prefix and five random lowercase
/// letters or digits) is checked instead.
fn validate_cluster_name(metadata: &ObjectMeta, errors: &mut Errors) {
    /// Stands in for the five random characters kube-apiserver appends to `generateName`.
    const GENERATED_SUFFIX: &str = "00000";
    let name = metadata.name.as_deref().unwrap_or_default();
    let prefix = metadata.generate_name.as_deref().unwrap_or_default();
    if name.is_empty() && !prefix.is_empty() {
        let generated = format!("{prefix}{GENERATED_SUFFIX}");
        if let Err(error) = crate::names::check_cluster_name(&generated) {
            errors.add(
                "metadata.generateName",
                format!(
                    "with the {} random characters the server appends, the name {}",
                    GENERATED_SUFFIX.len(),
                    error.problem
                ),
            );
        }
    } else if let Err(error) = crate::names::check_cluster_name(name) {
        errors.add("metadata.name", error.problem.to_string());
    }
}

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn validate_taints(taints: &[Taint], path: &str, errors: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (i, taint) in taints.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if taint.key.is_empty() {
            errors.add(format!("{path}.key"), "must not be empty");
        }
        if !TAINT_EFFECTS.contains(&taint.effect.as_str()) {
            errors.add(
                format!("{path}.effect"),
                format!("must be one of {TAINT_EFFECTS:?}, got {:?}", taint.effect),
            );
        }
        if !seen.insert((taint.key.as_str(), taint.effect.as_str())) {
            errors.add(
                path,
                format!("duplicate taint {}:{}", taint.key, taint.effect),
            );
        }
    }
}

fn is_kubernetes_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let core = rest.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

// ---------------------------------------------------------------------------------------------
// Selectors and placement.
// ---------------------------------------------------------------------------------------------

fn validate_resource_selectors(
    selectors: &[ResourceSelector],
    path: &str,
    required: bool,
    errors: &mut Errors,
) {
    if required && selectors.is_empty() {
        errors.add(
            path,
            "must select at least one resource: selecting everything is not allowed",
        );
    }
    for (i, selector) in selectors.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if selector.api_version.is_empty() {
            errors.add(format!("{path}.apiVersion"), "must not be empty");
        } else if selector.api_version.split('/').count() > 2
            || selector.api_version.split('/').any(str::is_empty)
        {
            errors.add(
                format!("{path}.apiVersion"),
                format!(
                    "must be <group>/<version> or <version>, got {:?}",
                    selector.api_version
                ),
            );
        }
        if selector.kind.is_empty() {
            errors.add(format!("{path}.kind"), "must not be empty");
        }
        if let Some(selector) = &selector.label_selector {
            validate_label_selector(selector, &format!("{path}.labelSelector"), errors);
        }
    }
}

fn validate_label_selector(selector: &LabelSelector, path: &str, errors: &mut Errors) {
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let path = format!("{path}.matchExpressions[{i}]");
        if requirement.key.is_empty() {
            errors.add(format!("{path}.key"), "must not be empty");
        }
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errors.add(
                format!("{path}.values"),
                format!(
                    "must be non-empty when operator is {}",
                    requirement.operator
                ),
            ),
            "Exists" | "DoesNotExist" if !values.is_empty() => errors.add(
                format!("{path}.values"),
                format!("must be empty when operator is {}", requirement.operator),
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errors.add(
                format!("{path}.operator"),
                format!("must be In, NotIn, Exists or DoesNotExist, got {other:?}"),
            ),
        }
    }
}

fn validate_field_requirements(
    requirements: &[NodeSelectorRequirement],
    path: &str,
    errors: &mut Errors,
) {
    for (i, requirement) in requirements.iter().enumerate() {
        let path = format!("{path}[{i}]");
        if !FIELD_SELECTOR_KEYS.contains(&requirement.key.as_str()) {
            errors.add(
                format!("{path}.key"),
                format!(
                    "must be one of {FIELD_SELECTOR_KEYS:?}, got {:?}",
                    requirement.key
                ),
            );
        }
        if !matches!(requirement.operator.as_str(), "In" | "NotIn") {
            errors.add(
                format!("{path}.operator"),
                format!("must be In or NotIn, got {:?}", requirement.operator),
            );
        }
        if requirement.values.as_deref().unwrap_or_default().is_empty() {
            errors.add(format!("{path}.values"), "must not be empty");
        }
    }
}

fn validate_cluster_affinity(affinity: &ClusterAffinity, path: &str, errors: &mut Errors) {
    if let Some(selector) = &affinity.label_selector {
        validate_label_selector(selector, &format!("{path}.labelSelector"), errors);
    }
    if let Some(fields) = &affinity.field_selector {
        validate_field_requirements(
            &fields.match_expressions,
            &format!("{path}.fieldSelector.matchExpressions"),
            errors,
        );
    }
    for (field, names) in [
        ("clusterNames", &affinity.cluster_names),
        ("exclude", &affinity.exclude),
    ] {
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                errors.add(format!("{path}.{field}[{i}]"), "must not be empty");
            }
        }
    }
}

fn validate_tolerations(tolerations: &[Toleration], path: &str, errors: &mut Errors) {
    for (i, toleration) in tolerations.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let operator = toleration.operator.as_deref().unwrap_or("Equal");
        match operator {
            "Exists" => {
                if toleration.value.as_deref().is_some_and(|v| !v.is_empty()) {
                    errors.add(
                        format!("{path}.value"),
                        "must be empty when operator is Exists",
                    );
                }
            }
            "Equal" => {
                if toleration.key.as_deref().unwrap_or_default().is_empty() {
                    errors.add(
                        format!("{path}.key"),
                        "must not be empty when operator is Equal; use Exists to tolerate every key",
                    );
                }
            }
            other => errors.add(
                format!("{path}.operator"),
                format!("must be Equal or Exists, got {other:?}"),
            ),
        }
        let effect = toleration.effect.as_deref().unwrap_or_default();
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errors.add(
                format!("{path}.effect"),
                format!("must be empty or one of {TAINT_EFFECTS:?}, got {effect:?}"),
            );
        }
        if toleration.toleration_seconds.is_some() && effect != "NoExecute" {
            errors.add(
                format!("{path}.tolerationSeconds"),
                "may only be set when effect is NoExecute",
            );
        }
    }
}

fn validate_placement(placement: &Placement, path: &str, errors: &mut Errors) {
    if placement.cluster_affinity.is_some() && !placement.cluster_affinities.is_empty() {
        errors.add(
            format!("{path}.clusterAffinities"),
            "clusterAffinity and clusterAffinities are mutually exclusive; set only one",
        );
    }
    if let Some(affinity) = &placement.cluster_affinity {
        validate_cluster_affinity(affinity, &format!("{path}.clusterAffinity"), errors);
    }
    let mut names = BTreeSet::new();
    for (i, term) in placement.cluster_affinities.iter().enumerate() {
        let term_path = format!("{path}.clusterAffinities[{i}]");
        let length = term.affinity_name.chars().count();
        if !(1..=32).contains(&length) {
            errors.add(
                format!("{term_path}.affinityName"),
                format!("must be 1 to 32 characters, got {length}"),
            );
        } else if !names.insert(term.affinity_name.as_str()) {
            errors.add(
                format!("{term_path}.affinityName"),
                format!("duplicate affinity name {:?}", term.affinity_name),
            );
        }
        validate_cluster_affinity(&term.affinity, &term_path, errors);
        if !term.overflow_affinities.is_empty() {
            errors.add(
                format!("{term_path}.overflowAffinities"),
                "overflow affinities are not supported yet; list the tiers as further clusterAffinities terms instead",
            );
        }
    }
    if placement.workload_affinity.is_some() {
        errors.add(
            format!("{path}.workloadAffinity"),
            "workload affinity is not supported yet; remove it (Flotilla would otherwise ignore it)",
        );
    }
    validate_tolerations(
        &placement.cluster_tolerations,
        &format!("{path}.clusterTolerations"),
        errors,
    );

    let mut fields = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let mut has_cluster = false;
    let mut has_other = false;
    for (i, constraint) in placement.spread_constraints.iter().enumerate() {
        let c_path = format!("{path}.spreadConstraints[{i}]");
        let label = constraint
            .spread_by_label
            .as_deref()
            .filter(|l| !l.is_empty());
        if constraint.spread_by_field.is_some() && label.is_some() {
            errors.add(
                c_path.clone(),
                "spreadByField and spreadByLabel are mutually exclusive; set only one",
            );
        }
        if constraint.min_groups < 0 {
            errors.add(format!("{c_path}.minGroups"), "must not be negative");
        }
        if constraint.max_groups < 0 {
            errors.add(format!("{c_path}.maxGroups"), "must not be negative");
        }
        if constraint.max_groups > 0 && constraint.max_groups < constraint.min_groups {
            errors.add(
                format!("{c_path}.maxGroups"),
                format!(
                    "must be at least minGroups ({}), got {}",
                    constraint.min_groups, constraint.max_groups
                ),
            );
        }
        match (constraint.effective_field(), label) {
            (Some(field), _) => {
                if !fields.insert(field) {
                    errors.add(
                        format!("{c_path}.spreadByField"),
                        format!("{} is used by more than one constraint", field.as_str()),
                    );
                }
                if field == crate::policy::SpreadByField::Cluster {
                    has_cluster = true;
                } else {
                    has_other = true;
                }
            }
            (None, Some(label)) => {
                has_other = true;
                if !labels.insert(label) {
                    errors.add(
                        format!("{c_path}.spreadByLabel"),
                        format!("label {label:?} is used by more than one constraint"),
                    );
                }
            }
            (None, None) => {}
        }
    }
    if has_other && !has_cluster {
        errors.add(
            format!("{path}.spreadConstraints"),
            "a constraint with spreadByField: cluster is required when spreading by region, zone, provider or label",
        );
    }

    if let Some(strategy) = &placement.replica_scheduling {
        let s_path = format!("{path}.replicaScheduling");
        if strategy.replica_scheduling_type == ReplicaSchedulingType::Duplicated
            && (strategy.replica_division_preference.is_some()
                || strategy.weight_preference.is_some())
        {
            errors.add(
                format!("{s_path}.replicaSchedulingType"),
                "replicaDivisionPreference and weightPreference only apply when replicaSchedulingType is Divided",
            );
        }
        if let Some(preferences) = &strategy.weight_preference {
            for (i, rule) in preferences.static_weight_list.iter().enumerate() {
                let w_path = format!("{s_path}.weightPreference.staticWeightList[{i}]");
                if rule.weight < 1 {
                    errors.add(
                        format!("{w_path}.weight"),
                        format!("must be at least 1, got {}", rule.weight),
                    );
                }
                validate_cluster_affinity(
                    &rule.target_cluster,
                    &format!("{w_path}.targetCluster"),
                    errors,
                );
            }
        }
    }
}

fn validate_suspension(suspension: &Suspension, path: &str, errors: &mut Errors) {
    if suspension.dispatching.is_some() && suspension.dispatching_on_clusters.is_some() {
        errors.add(
            path,
            "dispatching and dispatchingOnClusters are mutually exclusive; set only one",
        );
    }
}

fn validate_propagation(spec: &PropagationSpec, path: &str, errors: &mut Errors) {
    validate_resource_selectors(
        &spec.resource_selectors,
        &format!("{path}.resourceSelectors"),
        true,
        errors,
    );
    validate_placement(&spec.placement, &format!("{path}.placement"), errors);
    if let Some(suspension) = &spec.suspension {
        validate_suspension(suspension, &format!("{path}.suspension"), errors);
    }
    if let Some(application) = spec.failover.as_ref().and_then(|f| f.application.as_ref()) {
        let a_path = format!("{path}.failover.application");
        if application
            .decision_conditions
            .toleration_seconds
            .is_some_and(|s| s < 0)
        {
            errors.add(
                format!("{a_path}.decisionConditions.tolerationSeconds"),
                "must not be negative",
            );
        }
        let graceful = matches!(application.purge_mode, None | Some(PurgeMode::Gracefully));
        match application.grace_period_seconds {
            Some(seconds) if !graceful => errors.add(
                format!("{a_path}.gracePeriodSeconds"),
                format!("may only be set when purgeMode is Gracefully, got {seconds}"),
            ),
            Some(seconds) if seconds <= 0 => errors.add(
                format!("{a_path}.gracePeriodSeconds"),
                format!("must be positive, got {seconds}"),
            ),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Overrides.
// ---------------------------------------------------------------------------------------------

fn is_json_pointer(path: &str) -> bool {
    path.starts_with('/')
}

fn validate_value_for(
    operator: OverriderOperator,
    has_value: bool,
    path: &str,
    errors: &mut Errors,
) {
    match operator {
        OverriderOperator::Remove if has_value => errors.add(
            format!("{path}.value"),
            "must be empty when operator is remove",
        ),
        OverriderOperator::Add | OverriderOperator::Replace if !has_value => errors.add(
            format!("{path}.value"),
            "is required when operator is add or replace",
        ),
        _ => {}
    }
}

fn validate_override(spec: &OverrideSpec, path: &str, errors: &mut Errors) {
    validate_resource_selectors(
        &spec.resource_selectors,
        &format!("{path}.resourceSelectors"),
        false,
        errors,
    );
    if spec.override_rules.is_empty() && spec.overriders.is_none() {
        errors.add(
            format!("{path}.overrideRules"),
            "must contain at least one rule",
        );
    }
    if spec.target_cluster.is_some() && spec.overriders.is_none() {
        errors.add(
            format!("{path}.overriders"),
            "is required with the deprecated targetCluster; better, move both into overrideRules",
        );
    }
    for (i, rule) in spec.override_rules.iter().enumerate() {
        validate_rule(rule, &format!("{path}.overrideRules[{i}]"), errors);
    }
    if let Some(overriders) = &spec.overriders {
        let rule = RuleWithCluster {
            target_cluster: spec.target_cluster.clone(),
            overriders: overriders.clone(),
        };
        validate_rule(&rule, path, errors);
    }
}

fn validate_rule(rule: &RuleWithCluster, r_path: &str, errors: &mut Errors) {
    if let Some(target) = &rule.target_cluster {
        validate_cluster_affinity(target, &format!("{r_path}.targetCluster"), errors);
    }
    let o = &rule.overriders;
    let o_path = format!("{r_path}.overriders");
    for (j, plaintext) in o.plaintext.iter().enumerate() {
        let p = format!("{o_path}.plaintext[{j}]");
        if !is_json_pointer(&plaintext.path) {
            errors.add(
                format!("{p}.path"),
                format!(
                    "must be a JSON pointer starting with /, got {:?}",
                    plaintext.path
                ),
            );
        }
        validate_value_for(plaintext.operator, plaintext.value.is_some(), &p, errors);
    }
    for (j, image) in o.image_overrider.iter().enumerate() {
        let p = format!("{o_path}.imageOverrider[{j}]");
        if let Some(predicate) = &image.predicate
            && !is_json_pointer(&predicate.path)
        {
            errors.add(
                format!("{p}.predicate.path"),
                format!(
                    "must be a JSON pointer starting with /, got {:?}",
                    predicate.path
                ),
            );
        }
        validate_value_for(
            image.operator,
            image.value.as_deref().is_some_and(|v| !v.is_empty()),
            &p,
            errors,
        );
    }
    for (field, list) in [
        ("commandOverrider", &o.command_overrider),
        ("argsOverrider", &o.args_overrider),
    ] {
        for (j, overrider) in list.iter().enumerate() {
            let p = format!("{o_path}.{field}[{j}]");
            if overrider.container_name.is_empty() {
                errors.add(format!("{p}.containerName"), "must not be empty");
            }
            if overrider.operator == OverriderOperator::Replace {
                errors.add(format!("{p}.operator"), "must be add or remove");
            }
            if overrider.value.is_empty() {
                errors.add(format!("{p}.value"), "must not be empty");
            }
        }
    }
    for (field, list) in [
        ("labelsOverrider", &o.labels_overrider),
        ("annotationsOverrider", &o.annotations_overrider),
    ] {
        for (j, overrider) in list.iter().enumerate() {
            if overrider.value.is_empty() {
                errors.add(format!("{o_path}.{field}[{j}].value"), "must not be empty");
            }
        }
    }
    for (j, field) in o.field_overrider.iter().enumerate() {
        let p = format!("{o_path}.fieldOverrider[{j}]");
        if !is_json_pointer(&field.field_path) {
            errors.add(
                format!("{p}.fieldPath"),
                format!(
                    "must be a JSON pointer starting with /, got {:?}",
                    field.field_path
                ),
            );
        }
        if field.json.is_empty() == field.yaml.is_empty() {
            errors.add(p.clone(), "exactly one of json and yaml must be set");
        }
        for (kind, ops) in [("json", &field.json), ("yaml", &field.yaml)] {
            for (k, op) in ops.iter().enumerate() {
                let q = format!("{p}.{kind}[{k}]");
                if !is_json_pointer(&op.sub_path) {
                    errors.add(
                        format!("{q}.subPath"),
                        format!(
                            "must be a JSON pointer starting with /, got {:?}",
                            op.sub_path
                        ),
                    );
                }
                validate_value_for(op.operator, op.value.is_some(), &q, errors);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bindings and Works.
// ---------------------------------------------------------------------------------------------

fn validate_binding(spec: &ResourceBindingSpec, path: &str, errors: &mut Errors) {
    for (field, value) in [
        ("apiVersion", &spec.resource.api_version),
        ("kind", &spec.resource.kind),
        ("name", &spec.resource.name),
    ] {
        if value.is_empty() {
            errors.add(format!("{path}.resource.{field}"), "must not be empty");
        }
    }
    if !spec.components.is_empty() {
        errors.add(
            format!("{path}.components"),
            "multi-template workloads are not supported yet",
        );
    }
    if spec.replicas < 0 {
        errors.add(
            format!("{path}.replicas"),
            format!("must not be negative, got {}", spec.replicas),
        );
    }
    let mut names = BTreeSet::new();
    for (i, target) in spec.clusters.iter().enumerate() {
        if target.name.is_empty() {
            errors.add(format!("{path}.clusters[{i}].name"), "must not be empty");
        } else if !names.insert(target.name.as_str()) {
            errors.add(
                format!("{path}.clusters[{i}].name"),
                format!("duplicate cluster {:?}", target.name),
            );
        }
        if target.replicas < 0 {
            errors.add(
                format!("{path}.clusters[{i}].replicas"),
                "must not be negative",
            );
        }
    }
    if let Some(placement) = &spec.placement {
        validate_placement(placement, &format!("{path}.placement"), errors);
    }
    for (i, task) in spec.graceful_eviction_tasks.iter().enumerate() {
        let t = format!("{path}.gracefulEvictionTasks[{i}]");
        if task.from_cluster.is_empty() {
            errors.add(format!("{t}.fromCluster"), "must not be empty");
        }
        if task.reason.is_empty() || task.reason.len() > 32 {
            errors.add(format!("{t}.reason"), "must be 1 to 32 characters");
        }
        if task.producer.is_empty() {
            errors.add(format!("{t}.producer"), "must not be empty");
        }
    }
}

fn validate_work(work: &Work, errors: &mut Errors) {
    if work.spec.workload.manifests.is_empty() {
        errors.add(
            "spec.workload.manifests",
            "must contain at least one manifest",
        );
    }
    for (i, manifest) in work.spec.workload.manifests.iter().enumerate() {
        let path = format!("spec.workload.manifests[{i}]");
        let Some(object) = manifest.0.as_object() else {
            errors.add(path, "must be a Kubernetes object");
            continue;
        };
        for field in ["apiVersion", "kind"] {
            if object
                .get(field)
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
            {
                errors.add(format!("{path}.{field}"), "must be a non-empty string");
            }
        }
        let name = object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str());
        if name.is_none_or(str::is_empty) {
            errors.add(
                format!("{path}.metadata.name"),
                "must be a non-empty string",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Machines.
// ---------------------------------------------------------------------------------------------

fn validate_machine_spec(spec: &MachineSpec, path: &str, errors: &mut Errors) {
    if spec.cluster_name.is_empty() {
        errors.add(
            format!("{path}.clusterName"),
            "must name the Cluster the machine belongs to",
        );
    }
    if let Some(version) = &spec.version
        && !is_kubernetes_version(version)
    {
        errors.add(
            format!("{path}.version"),
            format!("must look like v1.33.1, got {version:?}"),
        );
    }
    if spec.infrastructure_ref.provider.is_empty() {
        errors.add(
            format!("{path}.infrastructureRef.provider"),
            "must name a provider, such as local",
        );
    }
    for (field, value) in [
        ("nodeDrainTimeoutSeconds", spec.node_drain_timeout_seconds),
        (
            "nodeDeletionTimeoutSeconds",
            spec.node_deletion_timeout_seconds,
        ),
    ] {
        if value.is_some_and(|v| v < 0) {
            errors.add(format!("{path}.{field}"), "must not be negative");
        }
    }
}

fn selector_matches_labels(
    selector: &LabelSelector,
    labels: &std::collections::BTreeMap<String, String>,
) -> bool {
    let equal = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .all(|requirement| {
            let value = labels.get(&requirement.key);
            let values = requirement.values.as_deref().unwrap_or_default();
            match requirement.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
    equal && expressions
}

fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

fn validate_int_or_percent(value: &IntOrString, path: &str, errors: &mut Errors) {
    match value {
        IntOrString::Int(i) if *i < 0 => errors.add(path, "must not be negative"),
        IntOrString::String(s) => {
            let ok = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n <= 100);
            if !ok {
                errors.add(
                    path,
                    format!("must be an integer or a percentage such as 40%, got {s:?}"),
                );
            }
        }
        IntOrString::Int(_) => {}
    }
}

fn validate_machine_set(set: &MachineSet, errors: &mut Errors) {
    let spec = &set.spec;
    if spec.cluster_name.is_empty() {
        errors.add(
            "spec.clusterName",
            "must name the Cluster the machines belong to",
        );
    }
    if spec.replicas.is_some_and(|r| r < 0) {
        errors.add("spec.replicas", "must not be negative");
    }
    validate_label_selector(&spec.selector, "spec.selector", errors);
    if selector_is_empty(&spec.selector) {
        errors.add(
            "spec.selector",
            "must not be empty: an empty selector would own every machine",
        );
    } else if !selector_matches_labels(&spec.selector, &spec.template.metadata.labels) {
        errors.add(
            "spec.template.metadata.labels",
            "must match spec.selector, or the set would never see the machines it creates",
        );
    }
    validate_machine_spec(&spec.template.spec, "spec.template.spec", errors);
    if spec.template.spec.cluster_name != spec.cluster_name {
        errors.add(
            "spec.template.spec.clusterName",
            "must equal spec.clusterName",
        );
    }
    if let Some(strategy) = &spec.strategy
        && let Some(rolling) = &strategy.rolling_update
    {
        if strategy.type_ == MachineRolloutStrategyType::OnDelete {
            errors.add(
                "spec.strategy.rollingUpdate",
                "may only be set when type is RollingUpdate",
            );
        }
        for (field, value) in [
            ("maxSurge", &rolling.max_surge),
            ("maxUnavailable", &rolling.max_unavailable),
        ] {
            if let Some(value) = value {
                validate_int_or_percent(
                    value,
                    &format!("spec.strategy.rollingUpdate.{field}"),
                    errors,
                );
            }
        }
        let zero = |v: &Option<IntOrString>, default: i32| match v {
            None => default == 0,
            Some(IntOrString::Int(i)) => *i == 0,
            Some(IntOrString::String(s)) => s == "0%",
        };
        if zero(&rolling.max_surge, 1) && zero(&rolling.max_unavailable, 0) {
            errors.add(
                "spec.strategy.rollingUpdate",
                "maxSurge and maxUnavailable cannot both be 0, or the rollout could never progress",
            );
        }
    }
}

fn validate_health_check(check: &MachineHealthCheck, errors: &mut Errors) {
    let spec = &check.spec;
    if spec.cluster_name.is_empty() {
        errors.add(
            "spec.clusterName",
            "must name the Cluster whose machines are checked",
        );
    }
    validate_label_selector(&spec.selector, "spec.selector", errors);
    if spec
        .checks
        .node_startup_timeout_seconds
        .is_some_and(|s| s < 0)
    {
        errors.add(
            "spec.checks.nodeStartupTimeoutSeconds",
            "must not be negative",
        );
    }
    for (field, list) in [
        (
            "unhealthyNodeConditions",
            &spec.checks.unhealthy_node_conditions,
        ),
        (
            "unhealthyMachineConditions",
            &spec.checks.unhealthy_machine_conditions,
        ),
    ] {
        for (i, condition) in list.iter().enumerate() {
            let path = format!("spec.checks.{field}[{i}]");
            if condition.type_.is_empty() {
                errors.add(format!("{path}.type"), "must not be empty");
            }
            if !matches!(condition.status.as_str(), "True" | "False" | "Unknown") {
                errors.add(
                    format!("{path}.status"),
                    format!("must be True, False or Unknown, got {:?}", condition.status),
                );
            }
            if condition.timeout_seconds < 0 {
                errors.add(format!("{path}.timeoutSeconds"), "must not be negative");
            }
        }
    }
    if let Some(trigger) = spec
        .remediation
        .as_ref()
        .and_then(|r| r.trigger_if.as_ref())
    {
        let path = "spec.remediation.triggerIf";
        if trigger.unhealthy_less_than_or_equal_to.is_some() && trigger.unhealthy_in_range.is_some()
        {
            errors.add(
                path,
                "unhealthyLessThanOrEqualTo and unhealthyInRange are mutually exclusive",
            );
        }
        if let Some(value) = &trigger.unhealthy_less_than_or_equal_to {
            validate_int_or_percent(value, &format!("{path}.unhealthyLessThanOrEqualTo"), errors);
        }
        if let Some(range) = &trigger.unhealthy_in_range
            && parse_range(range).is_none()
        {
            errors.add(
                format!("{path}.unhealthyInRange"),
                format!(
                    "must look like [2-5] with the lower bound not above the upper, got {range:?}"
                ),
            );
        }
    }
}

/// Parses an `unhealthyInRange` value such as `[2-5]`.
pub fn parse_range(range: &str) -> Option<(u32, u32)> {
    let inner = range.strip_prefix('[')?.strip_suffix(']')?;
    let (low, high) = inner.split_once('-')?;
    let (low, high) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (low <= high).then_some((low, high))
}

/// Why a manifest could not be validated.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest lacks `apiVersion` or `kind`.
    #[error("manifest has no apiVersion or kind")]
    MissingTypeMeta,
    /// The manifest is not a Flotilla kind.
    #[error("{api_version} {kind} is not a Flotilla kind")]
    NotFlotilla {
        /// The manifest's apiVersion.
        api_version: String,
        /// The manifest's kind.
        kind: String,
    },
    /// The manifest does not match the Flotilla type.
    #[error("{kind} {name:?} does not match the {kind} schema: {source}")]
    Parse {
        /// The kind.
        kind: String,
        /// The object name.
        name: String,
        /// What did not match.
        source: serde_json::Error,
    },
    /// The manifest parses but breaks a rule.
    #[error("{kind} {name:?} is invalid: {source}")]
    Invalid {
        /// The kind.
        kind: String,
        /// The object name.
        name: String,
        /// Every rule it breaks.
        source: ValidationErrors,
    },
}

/// Parses a manifest of any Flotilla kind into its type and validates it.
///
/// # Errors
///
/// [`ManifestError::NotFlotilla`] for other kinds, so callers can handle those themselves.
pub fn validate_manifest(manifest: &serde_json::Value) -> Result<(), ManifestError> {
    let field = |name: &str| {
        manifest
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version.is_empty() || kind.is_empty() {
        return Err(ManifestError::MissingTypeMeta);
    }
    let name = manifest
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_owned();

    fn check<K: Validate + serde::de::DeserializeOwned>(
        manifest: &serde_json::Value,
        kind: &str,
        name: &str,
    ) -> Result<(), ManifestError> {
        let object: K =
            serde_json::from_value(manifest.clone()).map_err(|source| ManifestError::Parse {
                kind: kind.to_owned(),
                name: name.to_owned(),
                source,
            })?;
        object.validate().map_err(|source| ManifestError::Invalid {
            kind: kind.to_owned(),
            name: name.to_owned(),
            source,
        })
    }

    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    match (
        group,
        api_version.rsplit('/').next().unwrap_or_default(),
        kind,
    ) {
        (crate::cluster::GROUP, crate::VERSION, "Cluster") => {
            check::<Cluster>(manifest, kind, &name)
        }
        (crate::policy::GROUP, crate::VERSION, "PropagationPolicy") => {
            check::<PropagationPolicy>(manifest, kind, &name)
        }
        (crate::policy::GROUP, crate::VERSION, "ClusterPropagationPolicy") => {
            check::<ClusterPropagationPolicy>(manifest, kind, &name)
        }
        (crate::policy::GROUP, crate::VERSION, "OverridePolicy") => {
            check::<OverridePolicy>(manifest, kind, &name)
        }
        (crate::policy::GROUP, crate::VERSION, "ClusterOverridePolicy") => {
            check::<ClusterOverridePolicy>(manifest, kind, &name)
        }
        (crate::work::GROUP, crate::VERSION, "ResourceBinding") => {
            check::<ResourceBinding>(manifest, kind, &name)
        }
        (crate::work::GROUP, crate::VERSION, "ClusterResourceBinding") => {
            check::<ClusterResourceBinding>(manifest, kind, &name)
        }
        (crate::work::GROUP, crate::VERSION, "Work") => check::<Work>(manifest, kind, &name),
        (crate::provisioning::GROUP, crate::VERSION, "Machine") => {
            check::<Machine>(manifest, kind, &name)
        }
        (crate::provisioning::GROUP, crate::VERSION, "MachineSet") => {
            check::<MachineSet>(manifest, kind, &name)
        }
        (crate::provisioning::GROUP, crate::VERSION, "MachineHealthCheck") => {
            check::<MachineHealthCheck>(manifest, kind, &name)
        }
        (crate::gitops::GROUP, crate::VERSION, "GitRepo") => {
            check::<GitRepo>(manifest, kind, &name)
        }
        _ => Err(ManifestError::NotFlotilla {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        }),
    }
}
