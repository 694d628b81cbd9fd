use std::collections::BTreeMap;

use flotilla_api::policy::{ClusterPropagationPolicySpec, PreemptionPolicy};
use k8s_openapi::{
    apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time},
    jiff::Timestamp,
};
use serde_json::json;

use super::*;

// --- fixtures ---------------------------------------------------------------------------------

type Pps = Vec<PropagationPolicy>;
type Cpps = Vec<ClusterPropagationPolicy>;
/// Case name, template, policies, expected winner, expected [`How`].
type StickyCase<'t> = (
    &'static str,
    &'t Value,
    Pps,
    Cpps,
    Option<&'static str>,
    How,
);

fn deployment(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<_, _> = labels.iter().copied().collect();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
        "spec": {"replicas": 2},
    })
}

fn kind(api_version: &str, kind: &str) -> ResourceSelector {
    ResourceSelector {
        api_version: api_version.into(),
        kind: kind.into(),
        ..Default::default()
    }
}

fn deployments() -> ResourceSelector {
    kind("apps/v1", "Deployment")
}

fn named(name: &str) -> ResourceSelector {
    ResourceSelector {
        name: Some(name.into()),
        ..deployments()
    }
}

fn in_namespace(namespace: &str) -> ResourceSelector {
    ResourceSelector {
        namespace: Some(namespace.into()),
        ..deployments()
    }
}

fn labelled(match_labels: &[(&str, &str)]) -> ResourceSelector {
    ResourceSelector {
        label_selector: Some(LabelSelector {
            match_labels: Some(
                match_labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            match_expressions: None,
        }),
        ..deployments()
    }
}

fn expr(key: &str, operator: &str, values: &[&str]) -> ResourceSelector {
    ResourceSelector {
        label_selector: Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
        }),
        ..deployments()
    }
}

/// Builder methods shared by PropagationPolicy and ClusterPropagationPolicy fixtures.
trait Fixture: Sized {
    fn parts(&mut self) -> (&mut ObjectMeta, &mut PropagationSpec);
    fn priority(mut self, priority: i32) -> Self {
        self.parts().1.priority = Some(priority);
        self
    }
    fn always(mut self) -> Self {
        self.parts().1.preemption = Some(PreemptionPolicy::Always);
        self
    }
    fn never(mut self) -> Self {
        self.parts().1.preemption = Some(PreemptionPolicy::Never);
        self
    }
    fn selecting(mut self, selectors: Vec<ResourceSelector>) -> Self {
        self.parts().1.resource_selectors = selectors;
        self
    }
    fn deleting(mut self) -> Self {
        self.parts().0.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        self
    }
    fn id(mut self, id: &str) -> Self {
        self.parts().0.uid = Some(id.into());
        self
    }
}

impl Fixture for PropagationPolicy {
    fn parts(&mut self) -> (&mut ObjectMeta, &mut PropagationSpec) {
        (&mut self.metadata, &mut self.spec)
    }
}

impl Fixture for ClusterPropagationPolicy {
    fn parts(&mut self) -> (&mut ObjectMeta, &mut PropagationSpec) {
        (&mut self.metadata, &mut self.spec.spec)
    }
}

/// A PropagationPolicy selecting every Deployment, with uid `uid-<name>`.
fn pp(namespace: &str, name: &str) -> PropagationPolicy {
    let mut policy = PropagationPolicy::new(
        name,
        PropagationSpec {
            resource_selectors: vec![deployments()],
            ..Default::default()
        },
    );
    policy.metadata.namespace = Some(namespace.into());
    policy.metadata.uid = Some(format!("uid-{name}"));
    policy
}

/// A ClusterPropagationPolicy selecting every Deployment, with uid `uid-<name>`.
fn cpp(name: &str) -> ClusterPropagationPolicy {
    let mut policy = ClusterPropagationPolicy::new(
        name,
        ClusterPropagationPolicySpec {
            spec: PropagationSpec {
                resource_selectors: vec![deployments()],
                ..Default::default()
            },
        },
    );
    policy.metadata.uid = Some(format!("uid-{name}"));
    policy
}

/// `template` with the claim metadata the detector would have written for `claim`.
fn claimed(mut template: Value, claim: &Claim) -> Value {
    let metadata = &mut template["metadata"];
    for (key, value) in claim.labels() {
        metadata["labels"][key] = json!(value);
    }
    for (key, value) in claim.annotations() {
        metadata["annotations"][key] = json!(value);
    }
    template
}

fn winner(m: &Option<Match<'_>>) -> Option<String> {
    m.as_ref().map(|m| match m.policy {
        PolicyRef::Namespaced(p) => format!("pp/{}", p.metadata.name.as_deref().unwrap_or("")),
        PolicyRef::Cluster(p) => format!("cpp/{}", p.metadata.name.as_deref().unwrap_or("")),
    })
}

// --- selector matching ------------------------------------------------------------------------

#[test]
fn resource_selectors_match_like_karmada() {
    use Precision::*;
    let web = deployment("prod", "web", &[("app", "web"), ("tier", "front")]);
    let cluster_scoped = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
    });
    let odd_labels = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"namespace": "prod", "name": "web", "labels": {"app": 1}},
    });
    let no_kind = json!({"apiVersion": "apps/v1", "metadata": {"name": "web"}});
    let table: Vec<(&str, ResourceSelector, &Value, Option<Precision>)> = vec![
        ("kind only", deployments(), &web, Some(Kind)),
        (
            "other group, same kind",
            kind("extensions/v1beta1", "Deployment"),
            &web,
            None,
        ),
        ("other kind", kind("apps/v1", "StatefulSet"), &web, None),
        (
            "kind is case-sensitive",
            kind("apps/v1", "deployment"),
            &web,
            None,
        ),
        ("template without kind", deployments(), &no_kind, None),
        ("namespace matches", in_namespace("prod"), &web, Some(Kind)),
        ("namespace differs", in_namespace("dev"), &web, None),
        (
            "empty namespace is no constraint",
            in_namespace(""),
            &web,
            Some(Kind),
        ),
        (
            "namespace against cluster-scoped",
            ResourceSelector {
                namespace: Some("prod".into()),
                ..kind("rbac.authorization.k8s.io/v1", "ClusterRole")
            },
            &cluster_scoped,
            None,
        ),
        (
            "cluster-scoped kind",
            kind("rbac.authorization.k8s.io/v1", "ClusterRole"),
            &cluster_scoped,
            Some(Kind),
        ),
        ("name matches", named("web"), &web, Some(Name)),
        ("name differs", named("api"), &web, None),
        ("empty name is no constraint", named(""), &web, Some(Kind)),
        (
            "name wins and labelSelector is ignored",
            ResourceSelector {
                name: Some("web".into()),
                ..labelled(&[("app", "other")])
            },
            &web,
            Some(Name),
        ),
        (
            "name mismatch is not rescued by labels",
            ResourceSelector {
                name: Some("api".into()),
                ..labelled(&[("app", "web")])
            },
            &web,
            None,
        ),
        (
            "matchLabels match",
            labelled(&[("app", "web"), ("tier", "front")]),
            &web,
            Some(LabelSelector),
        ),
        (
            "matchLabels partly differ",
            labelled(&[("app", "web"), ("tier", "back")]),
            &web,
            None,
        ),
        (
            "empty labelSelector selects all",
            labelled(&[]),
            &web,
            Some(LabelSelector),
        ),
        (
            "In",
            expr("tier", "In", &["front", "back"]),
            &web,
            Some(LabelSelector),
        ),
        ("In misses", expr("tier", "In", &["back"]), &web, None),
        (
            "NotIn",
            expr("tier", "NotIn", &["back"]),
            &web,
            Some(LabelSelector),
        ),
        ("NotIn hits", expr("tier", "NotIn", &["front"]), &web, None),
        (
            "NotIn on missing key",
            expr("zone", "NotIn", &["a"]),
            &web,
            Some(LabelSelector),
        ),
        (
            "Exists",
            expr("app", "Exists", &[]),
            &web,
            Some(LabelSelector),
        ),
        ("Exists misses", expr("zone", "Exists", &[]), &web, None),
        (
            "DoesNotExist",
            expr("zone", "DoesNotExist", &[]),
            &web,
            Some(LabelSelector),
        ),
        (
            "DoesNotExist misses",
            expr("app", "DoesNotExist", &[]),
            &web,
            None,
        ),
        (
            "malformed: In without values",
            expr("app", "In", &[]),
            &web,
            None,
        ),
        (
            "malformed: NotIn without values",
            expr("zone", "NotIn", &[]),
            &web,
            None,
        ),
        (
            "malformed: Exists with values",
            expr("app", "Exists", &["web"]),
            &web,
            None,
        ),
        (
            "malformed: unknown operator",
            expr("app", "Gt", &["1"]),
            &web,
            None,
        ),
        (
            "non-string label values are ignored",
            labelled(&[("app", "1")]),
            &odd_labels,
            None,
        ),
        (
            "labels absent",
            labelled(&[("app", "web")]),
            &cluster_scoped,
            None,
        ),
    ];
    for (case, selector, template, expect) in table {
        assert_eq!(selector_precision(&selector, template), expect, "{case}");
        assert_eq!(
            selector_matches(&selector, template),
            expect.is_some(),
            "{case}"
        );
    }
}

#[test]
fn a_selector_list_matches_with_its_most_precise_selector() {
    use Precision::*;
    let web = deployment("prod", "web", &[("app", "web")]);
    let table: Vec<(&str, Vec<ResourceSelector>, Option<Precision>)> = vec![
        ("empty list selects everything", vec![], Some(Kind)),
        (
            "kind and name",
            vec![deployments(), named("web")],
            Some(Name),
        ),
        (
            "label then kind",
            vec![labelled(&[("app", "web")]), deployments()],
            Some(LabelSelector),
        ),
        (
            "a miss does not spoil a hit",
            vec![named("api"), labelled(&[("app", "web")])],
            Some(LabelSelector),
        ),
        ("all miss", vec![named("api"), kind("v1", "Service")], None),
    ];
    for (case, selectors, expect) in table {
        assert_eq!(selectors_precision(&selectors, &web), expect, "{case}");
        assert_eq!(
            selectors_match(&selectors, &web),
            expect.is_some(),
            "{case}"
        );
    }
    assert!(Name > LabelSelector && LabelSelector > Kind);
}

// --- skip rules -------------------------------------------------------------------------------

#[test]
fn flotilla_kinds_events_leases_and_reserved_namespaces_are_never_propagated() {
    let table: &[(&str, &str, Option<&str>, bool)] = &[
        ("apps/v1", "Deployment", Some("default"), true),
        ("v1", "ConfigMap", Some("prod"), true),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            true,
        ),
        ("v1", "Namespace", None, true),
        ("example.com/v1", "Widget", Some("prod"), true),
        (
            "policy.flotilla.io/v1alpha1",
            "PropagationPolicy",
            Some("prod"),
            false,
        ),
        (
            "policy.flotilla.io/v1alpha1",
            "ClusterPropagationPolicy",
            None,
            false,
        ),
        ("cluster.flotilla.io/v1alpha1", "Cluster", None, false),
        (
            "work.flotilla.io/v1alpha1",
            "Work",
            Some("flotilla-es-member1"),
            false,
        ),
        (
            "work.flotilla.io/v1alpha2",
            "ResourceBinding",
            Some("prod"),
            false,
        ),
        (
            "provisioning.flotilla.io/v1alpha1",
            "Machine",
            Some("prod"),
            false,
        ),
        ("gitops.flotilla.io/v1alpha1", "Source", Some("prod"), false),
        ("flotilla.io/v1", "Anything", None, false),
        ("notflotilla.io/v1", "Widget", Some("prod"), true),
        ("v1", "Event", Some("prod"), false),
        ("events.k8s.io/v1", "Event", Some("prod"), false),
        ("coordination.k8s.io/v1", "Lease", Some("prod"), false),
        ("apps/v1", "Deployment", Some("flotilla-system"), false),
        ("v1", "Secret", Some("flotilla-cluster"), false),
        ("v1", "ConfigMap", Some("flotilla-es-member1"), false),
        ("v1", "ConfigMap", Some("flotilla-es-"), false),
        ("v1", "ConfigMap", Some("kube-system"), false),
        ("v1", "ConfigMap", Some("kube-public"), false),
        ("v1", "ConfigMap", Some("kubernetes"), true),
        ("v1", "ConfigMap", Some("flotilla-systems"), true),
        ("v1", "ConfigMap", Some(""), true),
    ];
    for (api_version, kind, namespace, expect) in table {
        assert_eq!(
            is_propagatable(api_version, kind, *namespace),
            *expect,
            "{api_version} {kind} in {namespace:?}"
        );
    }
}

#[test]
fn namespaces_are_propagated_without_a_binding() {
    let table: &[(&str, &str, Option<&str>, bool)] = &[
        ("v1", "Namespace", None, false),
        ("example.com/v1", "Namespace", None, true),
        ("v1", "ConfigMap", Some("shop"), true),
        (
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            true,
        ),
        ("v1", "Event", Some("shop"), false),
        (
            "policy.flotilla.io/v1alpha1",
            "PropagationPolicy",
            Some("shop"),
            false,
        ),
        ("v1", "ConfigMap", Some("kube-system"), false),
    ];
    for (api_version, kind, namespace, expect) in table {
        assert_eq!(
            is_bound_by_policy(api_version, kind, *namespace),
            *expect,
            "{api_version} {kind} in {namespace:?}"
        );
        assert!(!expect || is_propagatable(api_version, kind, *namespace));
    }
}

#[test]
fn whole_templates_also_skip_reserved_namespace_objects_and_token_secrets() {
    let namespace =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let secret = |ty: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": ty,
               "metadata": {"namespace": "prod", "name": "s"}})
    };
    let table = [
        ("app namespace", namespace("prod"), true),
        ("default namespace", namespace("default"), true),
        ("flotilla-system", namespace("flotilla-system"), false),
        ("flotilla-cluster", namespace("flotilla-cluster"), false),
        (
            "execution namespace",
            namespace("flotilla-es-member1"),
            false,
        ),
        ("kube-system", namespace("kube-system"), false),
        ("opaque secret", secret("Opaque"), true),
        (
            "token secret",
            secret("kubernetes.io/service-account-token"),
            false,
        ),
        ("deployment", deployment("prod", "web", &[]), true),
        (
            "deployment in kube-system",
            deployment("kube-system", "dns", &[]),
            false,
        ),
        (
            "no apiVersion",
            json!({"kind": "ConfigMap", "metadata": {"name": "c"}}),
            false,
        ),
        ("not an object", json!("ConfigMap"), false),
    ];
    for (case, template, expect) in table {
        assert_eq!(is_template_propagatable(&template), expect, "{case}");
    }
}

// --- precedence -------------------------------------------------------------------------------

#[test]
fn the_best_policy_wins_by_scope_then_priority_then_precision_then_name() {
    let web = deployment("prod", "web", &[("app", "web")]);
    let table: Vec<(&str, Pps, Cpps, Option<&str>)> = vec![
        ("nothing matches", vec![], vec![], None),
        (
            "only a cluster policy",
            vec![],
            vec![cpp("all")],
            Some("cpp/all"),
        ),
        (
            "higher priority beats more precise",
            vec![
                pp("prod", "by-name").selecting(vec![named("web")]),
                pp("prod", "urgent").priority(5),
            ],
            vec![],
            Some("pp/urgent"),
        ),
        (
            "negative priority loses to unset",
            vec![pp("prod", "a").priority(-1), pp("prod", "b")],
            vec![],
            Some("pp/b"),
        ),
        (
            "same priority: name beats labels beats kind",
            vec![
                pp("prod", "a-kind"),
                pp("prod", "b-labels").selecting(vec![labelled(&[("app", "web")])]),
                pp("prod", "c-name").selecting(vec![named("web")]),
            ],
            vec![],
            Some("pp/c-name"),
        ),
        (
            "same priority: labels beat kind",
            vec![
                pp("prod", "a-kind"),
                pp("prod", "b-labels").selecting(vec![labelled(&[("app", "web")])]),
            ],
            vec![],
            Some("pp/b-labels"),
        ),
        (
            "a policy's best selector counts",
            vec![
                pp("prod", "a-labels").selecting(vec![labelled(&[("app", "web")])]),
                pp("prod", "b-mixed").selecting(vec![deployments(), named("web")]),
            ],
            vec![],
            Some("pp/b-mixed"),
        ),
        (
            "all equal: alphabetical name",
            vec![pp("prod", "zeta"), pp("prod", "alpha"), pp("prod", "mid")],
            vec![],
            Some("pp/alpha"),
        ),
        (
            "namespaced before cluster-scoped, whatever the priority",
            vec![pp("prod", "low").priority(-10)],
            vec![cpp("high").priority(1000).selecting(vec![named("web")])],
            Some("pp/low"),
        ),
        (
            "a policy of another namespace never applies",
            vec![pp("dev", "other").priority(100)],
            vec![cpp("all")],
            Some("cpp/all"),
        ),
        (
            "cluster policies rank among themselves",
            vec![],
            vec![
                cpp("b").priority(1),
                cpp("a")
                    .priority(1)
                    .selecting(vec![labelled(&[("app", "web")])]),
                cpp("c"),
            ],
            Some("cpp/a"),
        ),
        (
            "a deleting policy never claims",
            vec![
                pp("prod", "going").priority(100).deleting(),
                pp("prod", "staying"),
            ],
            vec![],
            Some("pp/staying"),
        ),
        (
            "a deleting policy leaves the field to cluster policies",
            vec![pp("prod", "going").deleting()],
            vec![cpp("all"), cpp("also-going").priority(9).deleting()],
            Some("cpp/all"),
        ),
        (
            "no selectors claim nothing",
            vec![pp("prod", "empty").selecting(vec![])],
            vec![cpp("empty").selecting(vec![])],
            None,
        ),
        (
            "non-matching policies are ignored",
            vec![
                pp("prod", "svc")
                    .priority(100)
                    .selecting(vec![kind("v1", "Service")]),
            ],
            vec![cpp("all")],
            Some("cpp/all"),
        ),
    ];
    for (case, pps, cpps, expect) in table {
        let m = match_policy(&web, &pps, &cpps);
        assert_eq!(winner(&m).as_deref(), expect, "{case}");
        if let Some(m) = m {
            assert_eq!(m.how, How::Matched, "{case}");
            assert_eq!(m.claim, m.policy.claim(), "{case}");
        }
    }
}

#[test]
fn cluster_scoped_templates_only_see_cluster_policies() {
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                      "metadata": {"name": "reader"}});
    let roles = kind("rbac.authorization.k8s.io/v1", "ClusterRole");
    let pps = [pp("", "ns-less").selecting(vec![roles.clone()])];
    let cpps = [cpp("roles").selecting(vec![roles])];
    assert_eq!(winner(&match_policy(&role, &pps, &[])), None);
    assert_eq!(
        winner(&match_policy(&role, &pps, &cpps)).as_deref(),
        Some("cpp/roles")
    );
}

#[test]
fn templates_the_detector_skips_are_never_claimed() {
    let dns = deployment("kube-system", "coredns", &[]);
    assert_eq!(
        winner(&match_policy(
            &dns,
            &[pp("kube-system", "p")],
            &[cpp("all")]
        )),
        None
    );
    let work = json!({"apiVersion": "work.flotilla.io/v1alpha1", "kind": "Work",
                      "metadata": {"namespace": "prod", "name": "w"}});
    let works = cpp("works").selecting(vec![kind("work.flotilla.io/v1alpha1", "Work")]);
    assert_eq!(winner(&match_policy(&work, &[], &[works])), None);
}

// --- stickiness -------------------------------------------------------------------------------

#[test]
fn existing_claims_are_sticky_while_their_policy_exists_and_matches() {
    let web = deployment("prod", "web", &[("app", "web")]);
    let old_pp = pp("prod", "old");
    let old_cpp = cpp("old");
    let by_old_pp = claimed(web.clone(), &Claim::of(&old_pp));
    let by_old_cpp = claimed(web.clone(), &Claim::of_cluster(&old_cpp));
    let by_dev_old = claimed(
        web.clone(),
        &Claim::Namespaced {
            namespace: "dev".into(),
            name: "old".into(),
            permanent_id: "uid-old".into(),
        },
    );
    let table: Vec<StickyCase<'_>> = vec![
        (
            "a better policy without preemption does not take over",
            &by_old_pp,
            vec![
                pp("prod", "old"),
                pp("prod", "better")
                    .priority(100)
                    .selecting(vec![named("web")]),
            ],
            vec![],
            Some("pp/old"),
            How::Kept,
        ),
        (
            "preemption: Never is the same as unset",
            &by_old_pp,
            vec![
                pp("prod", "old"),
                pp("prod", "better").priority(100).never(),
            ],
            vec![],
            Some("pp/old"),
            How::Kept,
        ),
        (
            "a cluster policy keeps its claim against a namespaced one",
            &by_old_cpp,
            vec![pp("prod", "namespaced").priority(100)],
            vec![cpp("old")],
            Some("cpp/old"),
            How::Kept,
        ),
        (
            "claimed policy deleted: matched afresh",
            &by_old_pp,
            vec![pp("prod", "other")],
            vec![],
            Some("pp/other"),
            How::Matched,
        ),
        (
            "claimed policy being deleted: matched afresh",
            &by_old_pp,
            vec![pp("prod", "old").deleting()],
            vec![cpp("fallback")],
            Some("cpp/fallback"),
            How::Matched,
        ),
        (
            "claimed policy no longer matches: matched afresh",
            &by_old_pp,
            vec![
                pp("prod", "old").selecting(vec![named("api")]),
                pp("prod", "z-other"),
            ],
            vec![],
            Some("pp/z-other"),
            How::Matched,
        ),
        (
            "claimed policy no longer matches and nothing else does",
            &by_old_cpp,
            vec![],
            vec![cpp("old").selecting(vec![kind("v1", "Service")])],
            None,
            How::Matched,
        ),
        (
            "claimed policy re-created under the same name: a new claim",
            &by_old_pp,
            vec![pp("prod", "old").id("uid-new"), pp("prod", "a-first")],
            vec![],
            Some("pp/a-first"),
            How::Matched,
        ),
        (
            "a claim of the same name in another namespace is not this policy's",
            &by_dev_old,
            vec![pp("prod", "old").priority(-5), pp("prod", "z")],
            vec![],
            Some("pp/z"),
            How::Matched,
        ),
    ];
    for (case, template, pps, cpps, expect, how) in table {
        let m = match_policy(template, &pps, &cpps);
        assert_eq!(winner(&m).as_deref(), expect, "{case}");
        if let Some(m) = m {
            assert_eq!(m.how, how, "{case}");
        }
    }
}

#[test]
fn a_partial_claim_is_no_claim() {
    let web = deployment("prod", "web", &[]);
    let mut partial = claimed(web, &Claim::of(&pp("prod", "old")));
    if let Some(map) = partial["metadata"]["labels"].as_object_mut() {
        map.remove(labels::PROPAGATION_POLICY_PERMANENT_ID);
    }
    assert_eq!(claimed_by(&partial), None);
    let policies = [pp("prod", "old"), pp("prod", "best").priority(1)];
    let m = match_policy(&partial, &policies, &[]);
    assert_eq!(winner(&m).as_deref(), Some("pp/best"));
}

// --- preemption -------------------------------------------------------------------------------

#[test]
fn preemption_follows_karmadas_rules() {
    let web = deployment("prod", "web", &[]);
    let holder_pp = pp("prod", "holder").priority(5);
    let holder_cpp = cpp("holder").priority(5);
    let by_pp = claimed(web.clone(), &Claim::of(&holder_pp));
    let by_cpp = claimed(web.clone(), &Claim::of_cluster(&holder_cpp));
    let table: Vec<(&str, &Value, Pps, Cpps, &str)> = vec![
        (
            "PP over a lower-priority PP",
            &by_pp,
            vec![holder_pp.clone(), pp("prod", "taker").priority(6).always()],
            vec![],
            "pp/taker",
        ),
        (
            "PP never over an equal-priority PP",
            &by_pp,
            vec![
                holder_pp.clone(),
                pp("prod", "a-taker").priority(5).always(),
            ],
            vec![],
            "pp/holder",
        ),
        (
            "PP never over a higher-priority PP",
            &by_pp,
            vec![holder_pp.clone(), pp("prod", "taker").priority(1).always()],
            vec![],
            "pp/holder",
        ),
        (
            "a more precise PP of equal priority does not preempt",
            &by_pp,
            vec![
                holder_pp.clone(),
                pp("prod", "taker")
                    .priority(5)
                    .always()
                    .selecting(vec![named("web")]),
            ],
            vec![],
            "pp/holder",
        ),
        (
            "higher priority without Always does not preempt",
            &by_pp,
            vec![holder_pp.clone(), pp("prod", "taker").priority(100)],
            vec![],
            "pp/holder",
        ),
        (
            "PP over a CPP regardless of priority",
            &by_cpp,
            vec![pp("prod", "taker").priority(-100).always()],
            vec![holder_cpp.clone()],
            "pp/taker",
        ),
        (
            "CPP over a lower-priority CPP",
            &by_cpp,
            vec![],
            vec![holder_cpp.clone(), cpp("taker").priority(6).always()],
            "cpp/taker",
        ),
        (
            "CPP never over an equal-priority CPP",
            &by_cpp,
            vec![],
            vec![holder_cpp.clone(), cpp("taker").priority(5).always()],
            "cpp/holder",
        ),
        (
            "CPP never over a PP, whatever the priority",
            &by_pp,
            vec![holder_pp.clone()],
            vec![cpp("taker").priority(1000).always()],
            "pp/holder",
        ),
        (
            "a deleting policy never preempts",
            &by_pp,
            vec![
                holder_pp.clone(),
                pp("prod", "taker").priority(100).always().deleting(),
            ],
            vec![],
            "pp/holder",
        ),
        (
            "a policy that does not match never preempts",
            &by_pp,
            vec![
                holder_pp.clone(),
                pp("prod", "taker")
                    .priority(100)
                    .always()
                    .selecting(vec![named("api")]),
            ],
            vec![],
            "pp/holder",
        ),
        (
            "the best of several preemptors wins",
            &by_pp,
            vec![
                holder_pp.clone(),
                pp("prod", "six").priority(6).always(),
                pp("prod", "nine").priority(9).always(),
                pp("prod", "ten-never").priority(10),
            ],
            vec![],
            "pp/nine",
        ),
        (
            "a PP preemptor beats a CPP preemptor over a CPP claim",
            &by_cpp,
            vec![pp("prod", "taker").always()],
            vec![
                holder_cpp.clone(),
                cpp("cluster-taker").priority(100).always(),
            ],
            "pp/taker",
        ),
    ];
    for (case, template, pps, cpps, expect) in table {
        let m = match_policy(template, &pps, &cpps).expect(case);
        assert_eq!(winner(&Some(m.clone())).as_deref(), Some(expect), "{case}");
        let held = claimed_by(template).expect(case);
        if m.claim == held {
            assert_eq!(m.how, How::Kept, "{case}");
        } else {
            assert_eq!(m.how, How::Preempted(held), "{case}");
            // The take-over is a fixpoint: once written, the new claim is kept.
            let after = claimed(release_like(template), &m.claim);
            let again = match_policy(&after, &pps, &cpps).expect(case);
            assert_eq!(
                (again.claim, again.how),
                (m.claim.clone(), How::Kept),
                "{case}"
            );
        }
    }
}

/// What a template looks like after the detector's apply replaced its claim keys.
fn release_like(template: &Value) -> Value {
    let mut template = template.clone();
    let metadata = &mut template["metadata"];
    for key in [
        labels::PROPAGATION_POLICY_PERMANENT_ID,
        labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID,
    ] {
        if let Some(map) = metadata["labels"].as_object_mut() {
            map.remove(key);
        }
    }
    metadata["annotations"] = json!({});
    template
}

// --- claim metadata ---------------------------------------------------------------------------

#[test]
fn claim_and_release_bodies_carry_only_identity_and_claim_keys() {
    let web = deployment("prod", "web", &[("app", "web")]);
    let mut policy = pp("prod", "spread");
    policy.metadata.labels = Some(BTreeMap::from([(
        labels::PROPAGATION_POLICY_PERMANENT_ID.to_owned(),
        "perm-1".to_owned(),
    )]));
    assert_eq!(
        claim_patch(&web, &Claim::of(&policy)),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "namespace": "prod",
                "name": "web",
                "labels": {"propagationpolicy.flotilla.io/permanent-id": "perm-1"},
                "annotations": {
                    "propagationpolicy.flotilla.io/namespace": "prod",
                    "propagationpolicy.flotilla.io/name": "spread",
                },
            },
        })
    );
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                      "metadata": {"name": "reader", "uid": "u", "resourceVersion": "7"},
                      "rules": []});
    assert_eq!(
        claim_patch(&role, &Claim::of_cluster(&cpp("roles"))),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "reader",
                "uid": "u",
                "labels": {"clusterpropagationpolicy.flotilla.io/permanent-id": "uid-roles"},
                "annotations": {"clusterpropagationpolicy.flotilla.io/name": "roles"},
            },
        })
    );
    assert_eq!(
        release_patch(&claimed(web.clone(), &Claim::of(&policy))),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"namespace": "prod", "name": "web"}})
    );
    // A template read from the server carries its uid, and so do both bodies (never its
    // resourceVersion): neither may create the object or touch another of the same name.
    assert_eq!(
        release_patch(&role),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "reader", "uid": "u"}})
    );
}

#[test]
fn claims_round_trip_through_template_metadata() {
    let web = deployment("prod", "web", &[("app", "web")]);
    assert_eq!(claimed_by(&web), None);
    let mut labelled_cpp = cpp("all");
    labelled_cpp.metadata.labels = Some(BTreeMap::from([(
        labels::CLUSTER_PROPAGATION_POLICY_PERMANENT_ID.to_owned(),
        "perm-cpp".to_owned(),
    )]));
    let claims = [
        Claim::of(&pp("prod", "spread")),
        Claim::of_cluster(&cpp("all")),
        Claim::of_cluster(&labelled_cpp),
    ];
    for claim in claims {
        let body = claim_patch(&web, &claim);
        assert_eq!(claimed_by(&body).as_ref(), Some(&claim));
        assert_eq!(
            claimed_by(&claimed(web.clone(), &claim)).as_ref(),
            Some(&claim)
        );
    }
    assert_eq!(Claim::of_cluster(&labelled_cpp).permanent_id(), "perm-cpp");
    assert_eq!(
        Claim::of(&pp("prod", "spread")).permanent_id(),
        "uid-spread"
    );
    assert_eq!(Claim::of(&pp("prod", "spread")).name(), "spread");
}

#[test]
fn a_namespaced_claim_is_read_before_a_cluster_claim() {
    let web = deployment("prod", "web", &[]);
    let both = claimed(
        claimed(web, &Claim::of_cluster(&cpp("all"))),
        &Claim::of(&pp("prod", "spread")),
    );
    assert_eq!(claimed_by(&both), Some(Claim::of(&pp("prod", "spread"))));
}

#[test]
fn a_claim_by_a_policy_without_an_id_is_written_but_not_read_back() {
    // Only possible offline: no permanent-id label and no uid.
    let mut policy = pp("prod", "offline");
    policy.metadata.uid = None;
    let claim = Claim::of(&policy);
    assert_eq!(claim.permanent_id(), "");
    assert_eq!(
        claimed_by(&claim_patch(&deployment("prod", "web", &[]), &claim)),
        None
    );
    let m = match_policy(
        &deployment("prod", "web", &[]),
        std::slice::from_ref(&policy),
        &[],
    );
    assert_eq!(m.map(|m| m.claim), Some(claim));
}
