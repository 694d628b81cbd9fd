//! Every rule in `validate()` rejects what it should, with a message naming the field, and
//! accepts the valid baseline it was derived from.

use flotilla_api::validate::{ManifestError, validate_manifest};

/// Parses a YAML manifest and validates it; returns the field paths at fault.
fn violations(yaml: &str) -> Vec<String> {
    let value: serde_json::Value = serde_saphyr::from_str(yaml).expect("test YAML parses");
    match validate_manifest(&value) {
        Ok(()) => Vec::new(),
        Err(ManifestError::Invalid { source, .. }) => {
            source.0.iter().map(|e| e.path.clone()).collect()
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

const PP: &str = "apiVersion: policy.flotilla.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: p, namespace: default}\n";
const OP: &str = "apiVersion: policy.flotilla.io/v1alpha1\nkind: OverridePolicy\nmetadata: {name: o, namespace: default}\n";
const CLUSTER: &str =
    "apiVersion: cluster.flotilla.io/v1alpha1\nkind: Cluster\nmetadata: {name: c}\n";
const MS: &str = "apiVersion: provisioning.flotilla.io/v1alpha1\nkind: MachineSet\nmetadata: {name: ms, namespace: default}\n";
const MHC: &str = "apiVersion: provisioning.flotilla.io/v1alpha1\nkind: MachineHealthCheck\nmetadata: {name: mhc, namespace: default}\n";
const RB: &str = "apiVersion: work.flotilla.io/v1alpha1\nkind: ResourceBinding\nmetadata: {name: rb, namespace: default}\n";
const WORK: &str = "apiVersion: work.flotilla.io/v1alpha1\nkind: Work\nmetadata: {name: w, namespace: flotilla-es-m1}\n";

const SELECTORS: &str = "  resourceSelectors: [{apiVersion: apps/v1, kind: Deployment}]\n";

fn check(name: &str, header: &str, spec: &str, expect: &[&str]) {
    let yaml = format!("{header}spec:\n{spec}");
    let got = violations(&yaml);
    for path in expect {
        assert!(
            got.iter().any(|g| g == path),
            "{name}: expected a violation at {path}, got {got:?}"
        );
    }
    if expect.is_empty() {
        assert!(got.is_empty(), "{name}: expected valid, got {got:?}");
    }
}

#[test]
fn propagation_policy_rules() {
    let table: &[(&str, String, &[&str])] = &[
        (
            "valid baseline",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinity: {{clusterNames: [m1]}}\n    spreadConstraints:\n      - {{spreadByField: cluster, minGroups: 1, maxGroups: 2}}\n      - {{spreadByField: region, minGroups: 1, maxGroups: 1}}\n"
            ),
            &[],
        ),
        (
            "selectors required",
            "  resourceSelectors: []\n".into(),
            &["spec.resourceSelectors"],
        ),
        (
            "selector needs kind",
            "  resourceSelectors: [{apiVersion: v1, kind: ''}]\n".into(),
            &["spec.resourceSelectors[0].kind"],
        ),
        (
            "selector apiVersion shape",
            "  resourceSelectors: [{apiVersion: a/b/c, kind: X}]\n".into(),
            &["spec.resourceSelectors[0].apiVersion"],
        ),
        (
            "affinity exclusive",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinity: {{clusterNames: [m1]}}\n    clusterAffinities: [{{affinityName: a, clusterNames: [m2]}}]\n"
            ),
            &["spec.placement.clusterAffinities"],
        ),
        (
            "affinity name length",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinities: [{{affinityName: '', clusterNames: [m2]}}]\n"
            ),
            &["spec.placement.clusterAffinities[0].affinityName"],
        ),
        (
            "affinity names unique",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinities: [{{affinityName: a}}, {{affinityName: a}}]\n"
            ),
            &["spec.placement.clusterAffinities[1].affinityName"],
        ),
        (
            "field selector key",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinity:\n      fieldSelector:\n        matchExpressions: [{{key: color, operator: In, values: [red]}}]\n"
            ),
            &["spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].key"],
        ),
        (
            "field selector operator",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinity:\n      fieldSelector:\n        matchExpressions: [{{key: region, operator: Exists, values: [a]}}]\n"
            ),
            &["spec.placement.clusterAffinity.fieldSelector.matchExpressions[0].operator"],
        ),
        (
            "label selector values",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinity:\n      labelSelector:\n        matchExpressions: [{{key: env, operator: In}}]\n"
            ),
            &["spec.placement.clusterAffinity.labelSelector.matchExpressions[0].values"],
        ),
        (
            "spread field and label exclusive",
            format!(
                "{SELECTORS}  placement:\n    spreadConstraints: [{{spreadByField: cluster, spreadByLabel: env, minGroups: 1}}]\n"
            ),
            &["spec.placement.spreadConstraints[0]"],
        ),
        (
            "maxGroups at least minGroups",
            format!(
                "{SELECTORS}  placement:\n    spreadConstraints: [{{spreadByField: cluster, minGroups: 3, maxGroups: 2}}]\n"
            ),
            &["spec.placement.spreadConstraints[0].maxGroups"],
        ),
        (
            "negative groups",
            format!(
                "{SELECTORS}  placement:\n    spreadConstraints: [{{spreadByField: cluster, minGroups: -1}}]\n"
            ),
            &["spec.placement.spreadConstraints[0].minGroups"],
        ),
        (
            "cluster constraint required with region",
            format!(
                "{SELECTORS}  placement:\n    spreadConstraints: [{{spreadByField: region, minGroups: 1}}]\n"
            ),
            &["spec.placement.spreadConstraints"],
        ),
        (
            "cluster constraint required with label",
            format!(
                "{SELECTORS}  placement:\n    spreadConstraints: [{{spreadByLabel: env, minGroups: 1}}]\n"
            ),
            &["spec.placement.spreadConstraints"],
        ),
        (
            "field used twice",
            format!(
                "{SELECTORS}  placement:\n    spreadConstraints: [{{spreadByField: cluster}}, {{spreadByField: cluster}}]\n"
            ),
            &["spec.placement.spreadConstraints[1].spreadByField"],
        ),
        (
            "toleration Exists with value",
            format!(
                "{SELECTORS}  placement:\n    clusterTolerations: [{{key: k, operator: Exists, value: v}}]\n"
            ),
            &["spec.placement.clusterTolerations[0].value"],
        ),
        (
            "tolerationSeconds needs NoExecute",
            format!(
                "{SELECTORS}  placement:\n    clusterTolerations: [{{key: k, operator: Equal, value: v, effect: NoSchedule, tolerationSeconds: 5}}]\n"
            ),
            &["spec.placement.clusterTolerations[0].tolerationSeconds"],
        ),
        (
            "static weight at least 1",
            format!(
                "{SELECTORS}  placement:\n    replicaScheduling:\n      replicaSchedulingType: Divided\n      weightPreference:\n        staticWeightList: [{{targetCluster: {{clusterNames: [m1]}}, weight: 0}}]\n"
            ),
            &["spec.placement.replicaScheduling.weightPreference.staticWeightList[0].weight"],
        ),
        (
            "division only when Divided",
            format!(
                "{SELECTORS}  placement:\n    replicaScheduling:\n      replicaSchedulingType: Duplicated\n      replicaDivisionPreference: Aggregated\n"
            ),
            &["spec.placement.replicaScheduling.replicaSchedulingType"],
        ),
        (
            "suspension exclusive",
            format!(
                "{SELECTORS}  suspension:\n    dispatching: true\n    dispatchingOnClusters: {{clusterNames: [m1]}}\n"
            ),
            &["spec.suspension"],
        ),
        (
            "grace period needs Gracefully",
            format!(
                "{SELECTORS}  failover:\n    application:\n      purgeMode: Directly\n      gracePeriodSeconds: 30\n"
            ),
            &["spec.failover.application.gracePeriodSeconds"],
        ),
    ];
    for (name, spec, expect) in table {
        check(name, PP, spec, expect);
    }
}

#[test]
fn override_policy_rules() {
    let rule = |overriders: &str| format!("  overrideRules:\n    - overriders:\n{overriders}");
    let table: &[(&str, String, &[&str])] = &[
        (
            "valid baseline",
            rule(
                "        imageOverrider: [{component: Registry, operator: replace, value: r.example.com}]\n        plaintext: [{path: /spec/replicas, operator: replace, value: 2}]\n",
            ),
            &[],
        ),
        (
            "rules required",
            "  overrideRules: []\n".into(),
            &["spec.overrideRules"],
        ),
        (
            "plaintext path is a pointer",
            rule("        plaintext: [{path: spec.replicas, operator: remove}]\n"),
            &["spec.overrideRules[0].overriders.plaintext[0].path"],
        ),
        (
            "plaintext replace needs value",
            rule("        plaintext: [{path: /spec/replicas, operator: replace}]\n"),
            &["spec.overrideRules[0].overriders.plaintext[0].value"],
        ),
        (
            "plaintext remove takes no value",
            rule("        plaintext: [{path: /spec/replicas, operator: remove, value: 1}]\n"),
            &["spec.overrideRules[0].overriders.plaintext[0].value"],
        ),
        (
            "image add needs value",
            rule("        imageOverrider: [{component: Tag, operator: add}]\n"),
            &["spec.overrideRules[0].overriders.imageOverrider[0].value"],
        ),
        (
            "command needs container",
            rule("        commandOverrider: [{containerName: '', operator: add, value: [--x]}]\n"),
            &["spec.overrideRules[0].overriders.commandOverrider[0].containerName"],
        ),
        (
            "args cannot replace",
            rule("        argsOverrider: [{containerName: c, operator: replace, value: [--x]}]\n"),
            &["spec.overrideRules[0].overriders.argsOverrider[0].operator"],
        ),
        (
            "labels need values",
            rule("        labelsOverrider: [{operator: add}]\n"),
            &["spec.overrideRules[0].overriders.labelsOverrider[0].value"],
        ),
        (
            "field overrider json xor yaml",
            rule("        fieldOverrider: [{fieldPath: /data/config}]\n"),
            &["spec.overrideRules[0].overriders.fieldOverrider[0]"],
        ),
    ];
    for (name, spec, expect) in table {
        check(name, OP, spec, expect);
    }
}

#[test]
fn cluster_rules() {
    let table: &[(&str, &str, &[&str])] = &[
        (
            "valid push",
            "  syncMode: Push\n  apiEndpoint: https://127.0.0.1:6443\n",
            &[],
        ),
        ("valid pull without endpoint", "  syncMode: Pull\n", &[]),
        (
            "push needs endpoint",
            "  syncMode: Push\n",
            &["spec.apiEndpoint"],
        ),
        (
            "endpoint is a URL",
            "  syncMode: Push\n  apiEndpoint: 127.0.0.1:6443\n",
            &["spec.apiEndpoint"],
        ),
        (
            "taint effect",
            "  syncMode: Pull\n  taints: [{key: k, effect: Sometimes}]\n",
            &["spec.taints[0].effect"],
        ),
        (
            "duplicate zones",
            "  syncMode: Pull\n  zones: [a, a]\n",
            &["spec.zones[1]"],
        ),
        (
            "provisioning quorum",
            "  syncMode: Push\n  provisioning:\n    version: v1.33.1\n    provider: {name: local}\n    controlPlane: {replicas: 2}\n",
            &["spec.provisioning.controlPlane.replicas"],
        ),
        (
            "provisioning version",
            "  syncMode: Push\n  provisioning:\n    version: '1.33'\n    provider: {name: local}\n    controlPlane: {replicas: 1}\n",
            &["spec.provisioning.version"],
        ),
    ];
    for (name, spec, expect) in table {
        check(name, CLUSTER, spec, expect);
    }
}

#[test]
fn cluster_names_make_valid_execution_namespaces() {
    let longest = "a".repeat(flotilla_api::names::MAX_CLUSTER_NAME_LENGTH);
    let too_long = format!("{longest}b");
    let table: &[(&str, String, &[&str])] = &[
        ("short name", "name: member1".into(), &[]),
        ("48 characters", format!("name: {longest}"), &[]),
        (
            "49 characters",
            format!("name: {too_long}"),
            &["metadata.name"],
        ),
        ("upper case", "name: Member1".into(), &["metadata.name"]),
        ("dots", "name: member.one".into(), &["metadata.name"]),
        ("leading dash", "name: '-member'".into(), &["metadata.name"]),
        ("no name", "labels: {a: b}".into(), &["metadata.name"]),
        ("generateName", "generateName: member-".into(), &[]),
        (
            "generateName too long",
            format!("generateName: {}", "a".repeat(44)),
            &["metadata.generateName"],
        ),
        (
            "generateName with dots",
            "generateName: member.".into(),
            &["metadata.generateName"],
        ),
    ];
    for (name, metadata, expect) in table {
        let header = format!(
            "apiVersion: cluster.flotilla.io/v1alpha1\nkind: Cluster\nmetadata: {{{metadata}}}\n"
        );
        check(name, &header, "  syncMode: Pull\n", expect);
    }
}

#[test]
fn a_too_long_cluster_name_says_the_execution_namespace_must_stay_valid() {
    let yaml = format!(
        "apiVersion: cluster.flotilla.io/v1alpha1\nkind: Cluster\nmetadata: {{name: {}}}\nspec: {{syncMode: Pull}}\n",
        "a".repeat(49)
    );
    let value: serde_json::Value = serde_saphyr::from_str(&yaml).expect("yaml");
    let message = validate_manifest(&value).expect_err("too long").to_string();
    for part in [
        "metadata.name",
        "more than 48",
        "flotilla-es-<name>",
        "valid namespace name",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
}

#[test]
fn binding_and_work_rules() {
    check(
        "valid binding",
        RB,
        "  resource: {apiVersion: apps/v1, kind: Deployment, name: web}\n  replicas: 2\n  clusters: [{name: m1, replicas: 2}]\n",
        &[],
    );
    check(
        "binding duplicate cluster",
        RB,
        "  resource: {apiVersion: apps/v1, kind: Deployment, name: web}\n  clusters: [{name: m1}, {name: m1}]\n",
        &["spec.clusters[1].name"],
    );
    check(
        "binding negative replicas",
        RB,
        "  resource: {apiVersion: apps/v1, kind: Deployment, name: web}\n  replicas: -1\n",
        &["spec.replicas"],
    );
    check(
        "binding resource name",
        RB,
        "  resource: {apiVersion: apps/v1, kind: Deployment, name: ''}\n",
        &["spec.resource.name"],
    );
    check(
        "valid work",
        WORK,
        "  workload:\n    manifests: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]\n",
        &[],
    );
    check(
        "work manifest needs name",
        WORK,
        "  workload:\n    manifests: [{apiVersion: v1, kind: ConfigMap}]\n",
        &["spec.workload.manifests[0].metadata.name"],
    );
    check(
        "work needs manifests",
        WORK,
        "  workload: {manifests: []}\n",
        &["spec.workload.manifests"],
    );
}

#[test]
fn machine_rules() {
    let template = "  template:\n    metadata: {labels: {pool: a}}\n    spec: {clusterName: c1, role: Worker, infrastructureRef: {provider: local}}\n";
    check(
        "valid machine set",
        MS,
        &format!(
            "  clusterName: c1\n  replicas: 2\n  selector: {{matchLabels: {{pool: a}}}}\n{template}"
        ),
        &[],
    );
    check(
        "selector must match template",
        MS,
        &format!("  clusterName: c1\n  selector: {{matchLabels: {{pool: b}}}}\n{template}"),
        &["spec.template.metadata.labels"],
    );
    check(
        "selector must not be empty",
        MS,
        &format!("  clusterName: c1\n  selector: {{}}\n{template}"),
        &["spec.selector"],
    );
    check(
        "rollout cannot stall",
        MS,
        &format!(
            "  clusterName: c1\n  selector: {{matchLabels: {{pool: a}}}}\n{template}  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 0, maxUnavailable: 0}}}}\n"
        ),
        &["spec.strategy.rollingUpdate"],
    );
    check(
        "valid health check",
        MHC,
        "  clusterName: c1\n  selector: {matchLabels: {pool: a}}\n  remediation: {triggerIf: {unhealthyLessThanOrEqualTo: 40%}}\n",
        &[],
    );
    check(
        "health check range",
        MHC,
        "  clusterName: c1\n  selector: {}\n  remediation: {triggerIf: {unhealthyInRange: '[5-2]'}}\n",
        &["spec.remediation.triggerIf.unhealthyInRange"],
    );
    check(
        "health check percentage",
        MHC,
        "  clusterName: c1\n  selector: {}\n  remediation: {triggerIf: {unhealthyLessThanOrEqualTo: 140%}}\n",
        &["spec.remediation.triggerIf.unhealthyLessThanOrEqualTo"],
    );
    check(
        "health check condition status",
        MHC,
        "  clusterName: c1\n  selector: {}\n  checks: {unhealthyNodeConditions: [{type: Ready, status: Maybe, timeoutSeconds: 300}]}\n",
        &["spec.checks.unhealthyNodeConditions[0].status"],
    );
}

#[test]
fn every_violation_is_reported_at_once() {
    let yaml = format!(
        "{PP}spec:\n  resourceSelectors: []\n  placement:\n    clusterAffinity: {{}}\n    clusterAffinities: [{{affinityName: a}}]\n    spreadConstraints: [{{spreadByField: region, minGroups: 2, maxGroups: 1}}]\n"
    );
    let got = violations(&yaml);
    assert!(got.len() >= 4, "all violations in one pass: {got:?}");
}

#[test]
fn messages_name_the_field_and_the_fix() {
    let yaml = format!("{PP}spec:\n  resourceSelectors: []\n");
    let value: serde_json::Value = serde_saphyr::from_str(&yaml).expect("yaml");
    let message = validate_manifest(&value).expect_err("invalid").to_string();
    assert!(message.contains("spec.resourceSelectors"), "{message}");
    assert!(message.contains("PropagationPolicy \"p\""), "{message}");
}

#[test]
fn karmada_fields_flotilla_does_not_support_yet_are_rejected_by_name() {
    let table: &[(&str, String, &[&str])] = &[
        (
            "workload affinity",
            format!(
                "{SELECTORS}  placement:\n    workloadAffinity: {{affinity: {{groupByLabelKey: app}}}}\n"
            ),
            &["spec.placement.workloadAffinity"],
        ),
        (
            "overflow affinities",
            format!(
                "{SELECTORS}  placement:\n    clusterAffinities:\n      - affinityName: primary\n        overflowAffinities: [{{affinityName: spill, clusterNames: [m9]}}]\n"
            ),
            &["spec.placement.clusterAffinities[0].overflowAffinities"],
        ),
        (
            "schedule priority and association are accepted",
            format!(
                "{SELECTORS}  association: true\n  schedulePriority: {{priorityClassSource: KubePriorityClass, priorityClassName: high}}\n"
            ),
            &[],
        ),
    ];
    for (name, spec, expect) in table {
        check(name, PP, spec, expect);
    }
    check(
        "components",
        RB,
        "  resource: {apiVersion: apps/v1, kind: Deployment, name: web}\n  components: [{name: jobmanager, replicas: 1}]\n",
        &["spec.components"],
    );
}

#[test]
fn deprecated_override_fields_still_work() {
    check(
        "spec-level overriders are one more rule",
        OP,
        "  targetCluster: {clusterNames: [m1]}\n  overriders:\n    plaintext: [{path: /spec/replicas, operator: replace, value: 1}]\n",
        &[],
    );
    check(
        "spec-level overriders are validated",
        OP,
        "  overriders:\n    plaintext: [{path: spec.replicas, operator: remove}]\n",
        &["spec.overriders.plaintext[0].path"],
    );
    check(
        "targetCluster alone is incomplete",
        OP,
        "  targetCluster: {clusterNames: [m1]}\n  overrideRules: [{overriders: {labelsOverrider: [{operator: add, value: {a: b}}]}}]\n",
        &["spec.overriders"],
    );
}
