//! Every manifest under examples/ parses into its type and passes `validate()`, and the examples
//! the README walks through say what the README says.

use std::path::PathBuf;

use flotilla_api::validate::{ManifestError, validate_manifest};
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace, Secret},
};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn all_documents() -> Vec<flotilla::manifests::Document> {
    let mut documents = Vec::new();
    for dir in EXAMPLE_DIRS {
        documents.extend(
            flotilla::manifests::read(&examples().join(dir))
                .unwrap_or_else(|e| panic!("read examples/{dir}: {e}")),
        );
    }
    documents
}

/// Every directory under examples/: a new one must be added here (and to the README).
const EXAMPLE_DIRS: [&str; 4] = ["walkthrough", "join", "what-if", "gitops"];

#[test]
fn every_example_directory_is_checked() {
    let mut found: Vec<String> = std::fs::read_dir(examples())
        .expect("read examples/")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut want: Vec<String> = EXAMPLE_DIRS.iter().map(|d| (*d).to_owned()).collect();
    want.sort();
    assert_eq!(found, want, "examples/ holds only these directories");
}

fn find_in<'a>(
    documents: &'a [flotilla::manifests::Document],
    kind: &str,
    name: &str,
) -> &'a serde_json::Value {
    documents
        .iter()
        .find(|d| d.object["kind"] == kind && d.object["metadata"]["name"] == name)
        .map(|d| &d.object)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The walkthrough `kubectl apply -f examples/walkthrough/` applies on a fresh `flotilla up`:
/// the namespace first (kubectl reads the files in name order), everything in it, nothing that
/// touches the fleet itself.
#[test]
fn the_walkthrough_is_safe_and_says_what_the_readme_says() {
    let documents = flotilla::manifests::read(&examples().join("walkthrough")).expect("read");
    let mut files: Vec<_> = documents.iter().map(|d| d.path.clone()).collect();
    files.dedup();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "read in the order kubectl applies them");
    assert_eq!(documents[0].object["kind"], "Namespace");
    assert_eq!(documents[0].object["metadata"]["name"], "demo");
    for document in &documents[1..] {
        let kind = document.object["kind"].as_str().unwrap_or_default();
        assert!(
            [
                "Deployment",
                "ConfigMap",
                "PropagationPolicy",
                "OverridePolicy"
            ]
            .contains(&kind),
            "{}: the walkthrough holds no {kind}",
            document.path.display()
        );
        assert_eq!(
            document.object["metadata"]["namespace"],
            "demo",
            "{}",
            document.path.display()
        );
    }
    let deployment: Deployment =
        serde_json::from_value(find_in(&documents, "Deployment", "nginx").clone()).expect("nginx");
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(6));
    let policy: flotilla_api::PropagationPolicy =
        serde_json::from_value(find_in(&documents, "PropagationPolicy", "nginx").clone())
            .expect("policy");
    assert!(
        policy.spec.placement.cluster_affinity.is_none(),
        "every member"
    );
    let scheduling = policy.spec.placement.replica_scheduling.expect("divided");
    assert_eq!(
        scheduling.weight_preference.and_then(|w| w.dynamic_weight),
        Some(flotilla_api::policy::DynamicWeightFactor::AvailableReplicas)
    );
    let op: flotilla_api::OverridePolicy = serde_json::from_value(
        find_in(&documents, "OverridePolicy", "nginx-west-registry").clone(),
    )
    .expect("override");
    let fields = op.spec.override_rules[0]
        .target_cluster
        .as_ref()
        .and_then(|t| t.field_selector.as_ref())
        .expect("by region");
    assert_eq!(
        fields.match_expressions[0].values.as_deref(),
        Some(&["local-west".to_owned()][..])
    );
    find_in(&documents, "ConfigMap", "app-config");
    find_in(&documents, "PropagationPolicy", "app-config");
}

/// The GitRepo walkthrough: `examples/gitops/shop/` becomes a repository whose path replaces
/// the placeholder URL; its objects name no namespace but their own, so they land in the
/// GitRepo's targetNamespace, and the placement names two of the three members.
#[test]
fn the_gitops_example_says_what_the_readme_says() {
    let documents = flotilla::manifests::read(&examples().join("gitops")).expect("read");
    let repo: flotilla_api::GitRepo =
        serde_json::from_value(find_in(&documents, "GitRepo", "shop").clone()).expect("GitRepo");
    assert_eq!(
        repo.spec.url, "file:///path/to/shop",
        "the URL the README replaces"
    );
    assert_eq!(repo.spec.target_namespace.as_deref(), Some("shop"));
    let names = repo
        .spec
        .placement
        .and_then(|p| p.cluster_affinity)
        .map(|a| a.cluster_names)
        .unwrap_or_default();
    assert_eq!(names, ["member1", "member2"]);
    let content = flotilla::manifests::read(&examples().join("gitops/shop")).expect("read");
    let mut kinds: Vec<&str> = content
        .iter()
        .map(|d| d.object["kind"].as_str().unwrap_or_default())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Namespace"]);
    for document in &content {
        assert!(
            document.object["metadata"].get("namespace").is_none(),
            "{}: lands in targetNamespace",
            document.path.display()
        );
    }
    let web: Deployment =
        serde_json::from_value(find_in(&content, "Deployment", "web").clone()).expect("web");
    assert_eq!(web.spec.and_then(|s| s.replicas), Some(2));
}

/// The join examples never name a `flotilla up` member, so applying them cannot replace a
/// running member's endpoint or credentials.
#[test]
fn the_join_examples_name_no_local_member() {
    for document in flotilla::manifests::read(&examples().join("join")).expect("read") {
        let name = document.object["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        assert!(
            !name.starts_with("member"),
            "{}: {name} is the name of a flotilla up member",
            document.path.display()
        );
    }
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
                    "Namespace" => serde_json::from_value::<Namespace>(object).map(drop),
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
fn the_what_if_and_join_examples_exist() {
    let mut documents = flotilla::manifests::read(&examples().join("what-if")).expect("read");
    documents.extend(flotilla::manifests::read(&examples().join("join")).expect("read"));
    let find = |kind: &str, name: &str| find_in(&documents, kind, name).clone();
    let cluster = find("Cluster", "my-cluster1");
    assert_eq!(cluster["spec"]["syncMode"], "Push");
    assert_eq!(cluster["spec"]["secretRef"]["name"], "my-cluster1");
    find("Secret", "my-cluster1");
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
        .arg("validate")
        .args(
            EXAMPLE_DIRS
                .iter()
                .flat_map(|dir| ["-f".into(), examples().join(dir)]),
        )
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
        .current_dir(examples().join("what-if"))
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
    "fleet.yaml",
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
    let broken = std::fs::read_to_string(examples().join("what-if/nginx-overridepolicy.yaml"))
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
            "fleet.yaml",
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
