//! Every manifest in examples/ parses into its type and passes `validate()`, and the examples
//! the README walks through exist.

use std::path::PathBuf;

use flotilla_api::validate::{ManifestError, validate_manifest};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Secret},
};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn all_documents() -> Vec<flotilla::manifests::Document> {
    let mut documents = flotilla::manifests::read(&examples()).expect("read examples");
    documents.extend(flotilla::manifests::read(&examples().join("what-if")).expect("read what-if"));
    documents
}

#[test]
fn every_example_parses_and_validates() {
    let documents = all_documents();
    assert!(
        documents.len() >= 10,
        "expected the README's examples, found {}",
        documents.len()
    );
    for document in documents {
        let where_ = document.path.display().to_string();
        let kind = document.object["kind"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match validate_manifest(&document.object) {
            Ok(()) => {}
            Err(ManifestError::NotFlotilla { .. }) => {
                let object = document.object.clone();
                let parsed = match kind.as_str() {
                    "Deployment" => serde_json::from_value::<Deployment>(object).map(drop),
                    "ConfigMap" => serde_json::from_value::<ConfigMap>(object).map(drop),
                    "Secret" => serde_json::from_value::<Secret>(object).map(drop),
                    other => panic!("{where_}: add a parse check for {other} to this test"),
                };
                parsed.unwrap_or_else(|e| panic!("{where_}: {kind} does not parse: {e}"));
            }
            Err(error) => panic!("{where_}: {error}"),
        }
    }
}

#[test]
fn the_walkthrough_examples_exist() {
    let documents = all_documents();
    let find = |kind: &str, name: &str| {
        documents
            .iter()
            .find(|d| d.object["kind"] == kind && d.object["metadata"]["name"] == name)
            .map(|d| d.object.clone())
            .unwrap_or_else(|| panic!("no {kind} {name} in examples/"))
    };
    let cluster = find("Cluster", "member1");
    assert_eq!(cluster["spec"]["syncMode"], "Push");
    assert_eq!(cluster["spec"]["secretRef"]["name"], "member1");
    find("Secret", "member1");
    find("Deployment", "nginx");

    let policy: flotilla_api::PropagationPolicy =
        serde_json::from_value(find("PropagationPolicy", "nginx")).expect("policy");
    let weights: Vec<i64> = policy
        .spec
        .placement
        .replica_scheduling
        .and_then(|s| s.weight_preference)
        .map(|w| {
            w.static_weight_list
                .iter()
                .map(|rule| rule.weight)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(weights, [2, 1], "nginx is divided 2:1 by static weight");

    let cpp: flotilla_api::ClusterPropagationPolicy =
        serde_json::from_value(find("ClusterPropagationPolicy", "app-config")).expect("cpp");
    assert_eq!(cpp.spec.resource_selectors[0].kind, "ConfigMap");
    assert!(
        cpp.spec
            .placement
            .cluster_affinity
            .as_ref()
            .and_then(|a| a.label_selector.as_ref())
            .is_some()
    );

    let op: flotilla_api::OverridePolicy =
        serde_json::from_value(find("OverridePolicy", "nginx-us-east-registry")).expect("op");
    let rule = &op.spec.override_rules[0];
    assert_eq!(
        rule.overriders.image_overrider[0].component,
        flotilla_api::policy::ImageComponent::Registry
    );
    let fields = rule
        .target_cluster
        .as_ref()
        .and_then(|t| t.field_selector.as_ref())
        .expect("fields");
    assert_eq!(fields.match_expressions[0].key, "region");
}

#[test]
fn validate_command_rejects_an_invalid_manifest() {
    let dir = std::env::temp_dir().join(format!("flotilla-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: policy.flotilla.io/v1alpha1\nkind: PropagationPolicy\nmetadata: {name: bad, namespace: default}\nspec:\n  resourceSelectors: []\n",
    )
    .expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["validate", "-f"])
        .arg(&file)
        .output()
        .expect("run flotilla validate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "invalid manifest must fail: {stdout}"
    );
    assert!(
        stdout.contains("spec.resourceSelectors"),
        "names the field: {stdout}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["validate", "-f"])
        .arg(examples())
        .output()
        .expect("run flotilla validate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn schedule_command_places_the_weighted_example() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["schedule", "-o", "json", "-f"])
        .arg(examples().join("what-if/nginx-weighted.yaml"))
        .output()
        .expect("run flotilla schedule");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let placed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json output");
    assert_eq!(
        placed,
        serde_json::json!([{"name": "member1", "replicas": 2}, {"name": "member2", "replicas": 1}])
    );
}

#[test]
fn schedule_command_explains_why_nothing_fits() {
    let example = std::fs::read_to_string(examples().join("what-if/nginx-weighted.yaml"))
        .expect("read example");
    // Ask for clusters that do not exist in the snapshot.
    let impossible = example.replace(
        "clusterNames: [member1, member2]",
        "clusterNames: [member9]",
    );
    assert_ne!(example, impossible);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["schedule", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run flotilla schedule");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(impossible.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "nothing fits, so the command fails"
    );
    for cluster in ["member1", "member2", "member3"] {
        assert!(
            stderr.contains(cluster),
            "every cluster's reason is listed: {stderr}"
        );
    }
}

fn render(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("render")
        .args(args)
        .current_dir(examples())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run flotilla render");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

const WALKTHROUGH: [&str; 10] = [
    "-f",
    "nginx-deployment.yaml",
    "-f",
    "nginx-propagationpolicy.yaml",
    "-f",
    "nginx-overridepolicy.yaml",
    "-f",
    "app-config-clusterpropagationpolicy.yaml",
    "-f",
    "what-if/fleet.yaml",
];

#[test]
fn render_command_renders_the_walkthrough_for_each_cluster() {
    let mut args = WALKTHROUGH.to_vec();
    args.extend(["-o", "json"]);
    let output = render(&args, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("json output");
    let seen: Vec<(String, String, serde_json::Value, serde_json::Value)> = rendered
        .iter()
        .map(|r| {
            let m = &r["manifest"];
            (
                r["cluster"].as_str().unwrap_or_default().to_owned(),
                m["kind"].as_str().unwrap_or_default().to_owned(),
                m.pointer("/spec/replicas").cloned().unwrap_or_default(),
                m.pointer("/spec/template/spec/containers/0/image")
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    use serde_json::{Value, json};
    assert_eq!(
        seen,
        vec![
            // The weighted placement divides 3 replicas 2:1; the us-east override swaps the
            // registry on member2 only.
            (
                "member1".into(),
                "Deployment".into(),
                json!(2),
                json!("docker.io/library/nginx:1.27")
            ),
            (
                "member2".into(),
                "Deployment".into(),
                json!(1),
                json!("mirror.us-east.example.com/library/nginx:1.27")
            ),
            // The ClusterPropagationPolicy duplicates the ConfigMap to every production cluster.
            (
                "member1".into(),
                "ConfigMap".into(),
                Value::Null,
                Value::Null
            ),
            (
                "member2".into(),
                "ConfigMap".into(),
                Value::Null,
                Value::Null
            ),
        ]
    );
    let member2 = &rendered[1]["manifest"]["metadata"];
    assert_eq!(
        member2["annotations"]["work.flotilla.io/namespace"],
        "flotilla-es-member2"
    );
    assert_eq!(
        member2["labels"]["app.kubernetes.io/managed-by"],
        "flotilla"
    );
    // YAML: the same manifests as a stream, each introduced by the cluster it is for.
    let output = render(&WALKTHROUGH, None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text.matches("# cluster: member1").count(), 2, "{text}");
    assert!(
        text.contains("image: mirror.us-east.example.com/library/nginx:1.27"),
        "{text}"
    );
}

#[test]
fn render_command_fails_on_an_overrider_that_cannot_apply() {
    let broken = std::fs::read_to_string(examples().join("nginx-overridepolicy.yaml"))
        .expect("read example")
        .replace(
            "        imageOverrider:\n",
            "        plaintext:\n          - path: /spec/template/spec/nodeName\n            operator: replace\n            value: n1\n        imageOverrider:\n",
        );
    assert!(
        broken.contains("plaintext"),
        "the example changed: {broken}"
    );
    let output = render(
        &[
            "-f",
            "nginx-deployment.yaml",
            "-f",
            "nginx-propagationpolicy.yaml",
            "-f",
            "-",
            "-f",
            "what-if/fleet.yaml",
        ],
        Some(&broken),
    );
    assert!(
        !output.status.success(),
        "an overrider that cannot apply fails the command"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for part in [
        "nginx-us-east-registry",
        "overrideRules[0]",
        "/spec/template/spec/nodeName",
        "member2",
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
    assert!(output.stdout.is_empty(), "nothing half-rendered is printed");
}
