//! Matching of Kubernetes-style selectors against Clusters: label selectors, the
//! provider/region/zone field selector, `ClusterAffinity` (Karmada's `ClusterMatches`) and
//! taint tolerations. Pure predicates; owns no scheduling policy.

use std::collections::BTreeMap;

use flotilla_api::{
    Cluster,
    policy::{ClusterAffinity, FieldSelector},
};
use k8s_openapi::{
    api::core::v1::{NodeSelectorRequirement, Taint, Toleration},
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions, ANDed). An empty
/// selector matches everything. Unknown operators match nothing.
pub fn label_selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if let Some(match_labels) = &selector.match_labels
        && !match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    selector.match_expressions.iter().flatten().all(|req| {
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// Whether a cluster satisfies one field-selector requirement. Keys are `provider`, `region`
/// and `zone`; an unknown key or operator matches nothing.
///
/// `zone` is matched against every zone of the cluster: `In` needs all of them in the
/// values, `NotIn` needs none of them in the values. A cluster without the field fails `In`
/// and passes `NotIn`, like a missing label.
pub fn field_requirement_matches(req: &NodeSelectorRequirement, cluster: &Cluster) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let single = |field: Option<&String>| match req.operator.as_str() {
        "In" => field.is_some_and(|v| values.contains(v)),
        "NotIn" => field.is_none_or(|v| !values.contains(v)),
        "Exists" => field.is_some_and(|v| !v.is_empty()),
        "DoesNotExist" => field.is_none_or(String::is_empty),
        _ => false,
    };
    match req.key.as_str() {
        "provider" => single(cluster.spec.provider.as_ref()),
        "region" => single(cluster.spec.region.as_ref()),
        "zone" => {
            let mut zones = cluster.zones().peekable();
            let any = zones.peek().is_some();
            match req.operator.as_str() {
                "In" => any && cluster.zones().all(|z| values.iter().any(|v| v == z)),
                "NotIn" => cluster.zones().all(|z| !values.iter().any(|v| v == z)),
                "Exists" => any,
                "DoesNotExist" => !any,
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether a cluster satisfies every requirement of a field selector.
pub fn field_selector_matches(selector: &FieldSelector, cluster: &Cluster) -> bool {
    selector
        .match_expressions
        .iter()
        .all(|req| field_requirement_matches(req, cluster))
}

/// Karmada's `ClusterMatches`: a cluster in `exclude` never matches; otherwise every non-empty
/// part (label selector, field selector, cluster names) must match.
pub fn cluster_matches(cluster: &Cluster, affinity: &ClusterAffinity) -> bool {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    if affinity.exclude.iter().any(|n| n == name) {
        return false;
    }
    if let Some(selector) = &affinity.label_selector {
        let empty = BTreeMap::new();
        let labels = cluster.metadata.labels.as_ref().unwrap_or(&empty);
        if !label_selector_matches(selector, labels) {
            return false;
        }
    }
    if let Some(fields) = &affinity.field_selector
        && !field_selector_matches(fields, cluster)
    {
        return false;
    }
    affinity.cluster_names.is_empty() || affinity.cluster_names.iter().any(|n| n == name)
}

/// Whether `toleration` tolerates `taint` (the core/v1 rules: an empty key with `Exists`
/// matches every key, an empty effect matches every effect, `Equal` is the default operator).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;
    use flotilla_testing::fixtures::{ClusterBuilder, taint, toleration};

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn label_selectors_follow_kubernetes_semantics() {
        let labels: BTreeMap<String, String> =
            [("env".into(), "prod".into()), ("tier".into(), "1".into())].into();
        let table = [
            (LabelSelector::default(), true),
            (
                LabelSelector {
                    match_labels: Some([("env".into(), "prod".into())].into()),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_labels: Some([("env".into(), "dev".into())].into()),
                    ..Default::default()
                },
                false,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![req("env", "In", &["prod", "dev"])]),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![req("env", "NotIn", &["prod"])]),
                    ..Default::default()
                },
                false,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![req("gpu", "NotIn", &["a"])]),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![req("gpu", "Exists", &[])]),
                    ..Default::default()
                },
                false,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![req("gpu", "DoesNotExist", &[])]),
                    ..Default::default()
                },
                true,
            ),
            (
                LabelSelector {
                    match_expressions: Some(vec![req("env", "Bogus", &[])]),
                    ..Default::default()
                },
                false,
            ),
        ];
        for (i, (selector, want)) in table.into_iter().enumerate() {
            assert_eq!(
                label_selector_matches(&selector, &labels),
                want,
                "case {i}: {selector:?}"
            );
        }
    }

    #[test]
    fn zone_field_selector_needs_all_zones_for_in_and_none_for_not_in() {
        let multi = ClusterBuilder::new("m").zones(&["z1", "z2"]).build();
        let none = ClusterBuilder::new("n").build();
        let nsr = |op: &str, values: &[&str]| NodeSelectorRequirement {
            key: "zone".into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        assert!(field_requirement_matches(
            &nsr("In", &["z1", "z2", "z3"]),
            &multi
        ));
        assert!(!field_requirement_matches(&nsr("In", &["z1"]), &multi));
        assert!(!field_requirement_matches(&nsr("NotIn", &["z2"]), &multi));
        assert!(field_requirement_matches(&nsr("NotIn", &["z3"]), &multi));
        assert!(!field_requirement_matches(&nsr("In", &["z1"]), &none));
        assert!(field_requirement_matches(&nsr("NotIn", &["z1"]), &none));
    }

    #[test]
    fn tolerations_follow_core_v1_rules() {
        let t = taint("dedicated", Some("gpu"), "NoSchedule");
        let table = [
            (
                toleration(Some("dedicated"), "Equal", Some("gpu"), Some("NoSchedule")),
                true,
            ),
            (
                toleration(Some("dedicated"), "Equal", Some("cpu"), Some("NoSchedule")),
                false,
            ),
            (toleration(Some("dedicated"), "Exists", None, None), true),
            (toleration(None, "Exists", None, None), true),
            (toleration(None, "Exists", None, Some("NoExecute")), false),
            (toleration(Some("other"), "Exists", None, None), false),
            (toleration(None, "Equal", None, None), false),
        ];
        for (i, (tol, want)) in table.into_iter().enumerate() {
            assert_eq!(tolerates(&tol, &t), want, "case {i}: {tol:?}");
        }
    }
}
