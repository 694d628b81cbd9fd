//! The differential fidelity report: the same requests against the embedded API server and a
//! real kube-apiserver, compared on what a client sees — status code, reason, the fields named
//! in causes, and the returned object less what each server assigns (uid, resourceVersion,
//! timestamps, managedFields). Prints one line per divergence (`make fidelity`); every line
//! must be listed, with its reason, under "Known divergences from kube-apiserver" in
//! `crates/apiserver/STATUS.md`, and every listed line must still happen, so the list stays
//! true. Runs on the `kube` tier (it needs both servers).

use std::{collections::BTreeSet, path::PathBuf};

use anyhow::{Context as _, Result};
use flotilla_testing::{ServerKind, TestHub};
use http::{Method, Request};
use kube::Client;
use serde_json::{Value, json};

/// One request of the probe sequence.
struct Probe {
    id: &'static str,
    method: Method,
    path: &'static str,
    content_type: &'static str,
    accept: &'static str,
    body: Value,
    /// Compare the Status message too (for answers whose wording clients show users).
    message: bool,
    /// After this probe, poll this path until it answers 2xx (a CRD being served).
    settle: Option<&'static str>,
}

const NS: &str = "/api/v1/namespaces/fidelity";
/// A uid no object on either server has.
const OTHER_UID: &str = "5e0c7b0e-0000-0000-0000-000000000001";
const JSON: &str = "application/json";

fn probe(id: &'static str, method: Method, path: &'static str, body: Value) -> Probe {
    Probe {
        id,
        method,
        path,
        content_type: JSON,
        accept: JSON,
        body,
        message: false,
        settle: None,
    }
}

const SMP: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";

/// A probe whose Status message is compared too.
fn worded(p: Probe) -> Probe {
    Probe { message: true, ..p }
}

fn with_type(content_type: &'static str, p: Probe) -> Probe {
    Probe { content_type, ..p }
}

fn deployment(name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "app", "image": image, "ports": [{"containerPort": 80}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]}]}}}})
}

fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.fidelity.example.com"},
        "spec": {"group": "fidelity.example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2,
                                 "x-kubernetes-list-type": "set"},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                  "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {
                                      "name": {"type": "string"}, "port": {"type": "integer"}}}},
                        "opt": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}}}]}})
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "fidelity.example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// Writes as kubectl, Helm and controllers send them: field validation, strategic merge,
/// server-side apply with managed fields and conflicts, built-in defaults and validation, and
/// CRD structural schemas (validation, pruning, defaults).
fn write_probes() -> Vec<Probe> {
    let deploys = "/apis/apps/v1/namespaces/fidelity/deployments";
    let d1 = "/apis/apps/v1/namespaces/fidelity/deployments/d1";
    let widgets = "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets";
    let mut typo = deployment("typo", "nginx:1.27");
    typo["spec"]["replcas"] = json!(2);
    typo["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("x");
    let mut two = deployment("two", "nginx:1.27");
    two["spec"]["replicas"] = json!("two");
    let mut unmatched = deployment("unmatched", "nginx:1.27");
    unmatched["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    let mut no_image = deployment("noimage", "");
    no_image["spec"]["replicas"] = json!(-1);
    vec![
        probe(
            "deploy-create",
            Method::POST,
            deploys,
            deployment("d1", "nginx:1.27"),
        ),
        worded(Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments?fieldValidation=Strict",
            ..probe("deploy-strict-typo", Method::POST, "", typo.clone())
        }),
        probe("deploy-warn-typo", Method::POST, deploys, typo.clone()),
        Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments?fieldValidation=Ignore",
            ..probe("deploy-ignore-typo", Method::POST, "", {
                let mut t = typo;
                t["metadata"]["name"] = json!("typo2");
                t
            })
        },
        worded(probe("deploy-wrong-type", Method::POST, deploys, two)),
        probe("deploy-selector-mismatch", Method::POST, deploys, unmatched),
        probe("deploy-invalid-fields", Method::POST, deploys, no_image),
        worded(Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments/d1?fieldValidation=Bogus",
            ..with_type(
                MERGE,
                probe("patch-bad-field-validation", Method::PATCH, "", json!({})),
            )
        }),
        with_type(
            SMP,
            probe(
                "smp-set-image",
                Method::PATCH,
                d1,
                json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}}),
            ),
        ),
        with_type(
            SMP,
            probe(
                "smp-restart-annotation",
                Method::PATCH,
                d1,
                json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-02T00:00:00Z"}}}}}),
            ),
        ),
        with_type(
            SMP,
            probe(
                "smp-delete-env",
                Method::PATCH,
                d1,
                json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
                "containers": [{"name": "app", "$setElementOrder/env": [{"name": "B"}],
                                "env": [{"name": "A", "$patch": "delete"}]}]}}}}),
            ),
        ),
        with_type(
            SMP,
            probe(
                "smp-recreate-retain-keys",
                Method::PATCH,
                d1,
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            ),
        ),
        with_type(
            SMP,
            probe(
                "smp-remove-container",
                Method::PATCH,
                d1,
                json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}),
            ),
        ),
        with_type(
            SMP,
            probe(
                "smp-finalizers-union",
                Method::PATCH,
                d1,
                json!({"metadata": {"finalizers": ["example.com/a"]}}),
            ),
        ),
        with_type(
            SMP,
            probe(
                "smp-finalizers-delete",
                Method::PATCH,
                d1,
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
            ),
        ),
        Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments/d2?fieldManager=alice",
            ..with_type(
                APPLY,
                probe("apply-create-deployment", Method::PATCH, "", {
                    let mut d = deployment("d2", "nginx:1.27");
                    d["spec"]["replicas"] = json!(2);
                    d
                }),
            )
        },
        worded(Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments/d2?fieldManager=bob",
            ..with_type(
                APPLY,
                probe(
                    "apply-conflict",
                    Method::PATCH,
                    "",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d2"}, "spec": {"replicas": 3}}),
                ),
            )
        }),
        Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments/d2?fieldManager=bob&force=true",
            ..with_type(
                APPLY,
                probe(
                    "apply-force",
                    Method::PATCH,
                    "",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d2"}, "spec": {"replicas": 3}}),
                ),
            )
        },
        Probe {
            path: "/apis/apps/v1/namespaces/fidelity/deployments/d2?fieldManager=alice",
            ..with_type(
                APPLY,
                probe("apply-drop-label", Method::PATCH, "", {
                    let mut d = deployment("d2", "nginx:1.27");
                    d["metadata"]["labels"] = json!({});
                    d
                }),
            )
        },
        with_type(
            MERGE,
            Probe {
                path: "/apis/apps/v1/namespaces/fidelity/deployments/d2?fieldManager=carol",
                ..probe(
                    "update-takes-ownership",
                    Method::PATCH,
                    "",
                    json!({"spec": {"revisionHistoryLimit": 3}}),
                )
            },
        ),
        probe(
            "service-create",
            Method::POST,
            "/api/v1/namespaces/fidelity/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"selector": {"app": "d1"}, "ports": [{"port": 80}]}}),
        ),
        probe(
            "service-port-out-of-range",
            Method::POST,
            "/api/v1/namespaces/fidelity/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"},
                   "spec": {"ports": [{"port": 70000}]}}),
        ),
        probe(
            "service-nodeport",
            Method::POST,
            "/api/v1/namespaces/fidelity/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
                   "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}),
        ),
        probe(
            "service-nodeport-taken",
            Method::POST,
            "/api/v1/namespaces/fidelity/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np2"},
                   "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}),
        ),
        probe(
            "service-external-name",
            Method::POST,
            "/api/v1/namespaces/fidelity/services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        ),
        with_type(
            MERGE,
            probe(
                "service-external-name-to-cluster-ip",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/services/ext",
                json!({"spec": {"type": "ClusterIP", "externalName": null, "ports": [{"port": 80}]}}),
            ),
        ),
        worded(with_type(
            MERGE,
            Probe {
                path: "/api/v1/namespaces/fidelity/services/web?fieldManager=mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm",
                ..probe(
                    "patch-field-manager-too-long",
                    Method::PATCH,
                    "",
                    json!({"metadata": {"labels": {"x": "y"}}}),
                )
            },
        )),
        probe(
            "job-create",
            Method::POST,
            "/apis/batch/v1/namespaces/fidelity/jobs",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                   "spec": {"template": {"spec": {"restartPolicy": "Never",
                       "containers": [{"name": "c", "image": "busybox:1.36"}]}}}}),
        ),
        probe(
            "secret-tls-missing-keys",
            Method::POST,
            "/api/v1/namespaces/fidelity/secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
                   "data": {"tls.crt": "Y2VydA=="}}),
        ),
        Probe {
            settle: Some("/apis/fidelity.example.com/v1/namespaces/fidelity/widgets"),
            ..probe(
                "crd-create-structural",
                Method::POST,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                widget_crd(),
            )
        },
        probe(
            "crd-create-not-structural",
            Method::POST,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            {
                let mut c = widget_crd();
                c["metadata"]["name"] = json!("gadgets.fidelity.example.com");
                c["spec"]["names"] = json!({"plural": "gadgets", "kind": "Gadget"});
                c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = json!({"properties": {"a": {"type": "array"}, "b": {"type": "object", "properties": {"x": {}}}}});
                c
            },
        ),
        probe(
            "crd-create-bad-pattern",
            Method::POST,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            {
                let mut c = widget_crd();
                c["metadata"]["name"] = json!("patterns.fidelity.example.com");
                c["spec"]["names"] = json!({"plural": "patterns", "kind": "Pattern"});
                c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
                    ["name"]["pattern"] = json!("^(a");
                c
            },
        ),
        probe(
            "cr-create-defaults-pruning",
            Method::POST,
            widgets,
            widget(
                "w1",
                json!({"size": 3, "unknown": 1, "opt": {}, "free": {"z": 1}, "ports": [{"name": "http", "port": 80}]}),
            ),
        ),
        probe(
            "cr-create-invalid",
            Method::POST,
            widgets,
            widget(
                "w2",
                json!({"size": 11, "color": "green", "name": "TOOLONG", "tags": ["a", "b", "c"]}),
            ),
        ),
        probe(
            "cr-create-missing-required",
            Method::POST,
            widgets,
            widget("w3", json!({})),
        ),
        worded(Probe {
            path: "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets?fieldValidation=Strict",
            ..probe(
                "cr-create-strict-unknown",
                Method::POST,
                "",
                widget("w4", json!({"size": 1, "x": 1})),
            )
        }),
        worded(with_type(
            SMP,
            probe(
                "cr-strategic-merge-unsupported",
                Method::PATCH,
                "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets/w1",
                json!({"spec": {"size": 4}}),
            ),
        )),
        Probe {
            path: "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets/w1?fieldManager=alice",
            ..with_type(
                APPLY,
                probe(
                    "cr-apply-map-list",
                    Method::PATCH,
                    "",
                    widget(
                        "w1",
                        json!({"size": 3, "ports": [{"name": "https", "port": 443}], "tags": ["a"]}),
                    ),
                ),
            )
        },
        Probe {
            path: "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets/w1?fieldManager=alice",
            ..with_type(
                APPLY,
                probe(
                    "cr-apply-drop-item",
                    Method::PATCH,
                    "",
                    widget("w1", json!({"size": 3, "tags": ["a"]})),
                ),
            )
        },
        Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(
                "cr-list-as-table",
                Method::GET,
                "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets",
                Value::Null,
            )
        },
        Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(
                "deploy-list-as-table",
                Method::GET,
                "/apis/apps/v1/namespaces/fidelity/deployments",
                Value::Null,
            )
        },
        Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(
                "service-get-as-table",
                Method::GET,
                "/api/v1/namespaces/fidelity/services/web",
                Value::Null,
            )
        },
        Probe {
            path: "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets/w1/status?fieldManager=controller",
            ..with_type(
                APPLY,
                probe(
                    "cr-apply-status",
                    Method::PATCH,
                    "",
                    json!({"apiVersion": "fidelity.example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
                       "status": {"ok": true}}),
                ),
            )
        },
        with_type(
            MERGE,
            Probe {
                path: "/apis/fidelity.example.com/v1/namespaces/fidelity/widgets/w1/status?fieldManager=editor",
                ..probe(
                    "cr-merge-status",
                    Method::PATCH,
                    "",
                    json!({"status": {"ok": false}, "spec": {"size": 9}}),
                )
            },
        ),
        Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(
                "crd-list-as-table",
                Method::GET,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?fieldSelector=metadata.name%3Dwidgets.fidelity.example.com",
                Value::Null,
            )
        },
        probe(
            "crd-delete",
            Method::DELETE,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.fidelity.example.com",
            Value::Null,
        ),
    ]
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "fidelity"}}, "data": data})
}

/// The sequence, run in order on a fresh server; later probes see what earlier ones wrote.
fn probes() -> Vec<Probe> {
    let cms = "/api/v1/namespaces/fidelity/configmaps";
    vec![
        probe(
            "create-namespace",
            Method::POST,
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fidelity"}}),
        ),
        probe(
            "create-configmap",
            Method::POST,
            cms,
            configmap("a", json!({"k": "v"})),
        ),
        // `Accept: application/yaml`: the object, and a Status, in YAML.
        Probe {
            accept: "application/yaml",
            ..probe(
                "get-configmap-yaml",
                Method::GET,
                "/api/v1/namespaces/fidelity/configmaps/a",
                Value::Null,
            )
        },
        Probe {
            accept: "application/yaml",
            ..probe(
                "get-missing-yaml",
                Method::GET,
                "/api/v1/namespaces/fidelity/configmaps/missing",
                Value::Null,
            )
        },
        // RBAC names are path segments, not DNS subdomains: `system:`-style names are valid.
        probe(
            "clusterrole-colon-name",
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "fidelity:reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        ),
        worded(probe(
            "clusterrole-percent-name",
            Method::POST,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "fidelity%reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}),
        )),
        probe(
            "create-duplicate",
            Method::POST,
            cms,
            configmap("a", json!({"k": "v"})),
        ),
        probe(
            "create-invalid-name",
            Method::POST,
            cms,
            configmap("Not_Valid", json!({})),
        ),
        probe(
            "create-wrong-type",
            Method::POST,
            cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typed"}, "data": {"k": 2}}),
        ),
        probe(
            "create-namespace-mismatch",
            Method::POST,
            cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}}),
        ),
        probe(
            "create-missing-namespace",
            Method::POST,
            "/api/v1/namespaces/nowhere/configmaps",
            configmap("b", json!({})),
        ),
        Probe {
            id: "create-strict-unknown-field",
            path: "/api/v1/namespaces/fidelity/configmaps?fieldValidation=Strict",
            ..probe(
                "",
                Method::POST,
                "",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, "bogus": 1}),
            )
        },
        probe(
            "get",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps/a",
            Value::Null,
        ),
        probe(
            "get-missing",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps/missing",
            Value::Null,
        ),
        probe(
            "list-label-selector",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?labelSelector=app%3Dfidelity",
            Value::Null,
        ),
        probe(
            "list-bad-label-selector",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?labelSelector=%3D%3D",
            Value::Null,
        ),
        probe(
            "list-unsupported-field-selector",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?fieldSelector=data.k%3Dv",
            Value::Null,
        ),
        probe(
            "list-bad-continue",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?continue=notatoken",
            Value::Null,
        ),
        probe(
            "update-stale-resource-version",
            Method::PUT,
            "/api/v1/namespaces/fidelity/configmaps/a",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "1"}, "data": {"k": "stale"}}),
        ),
        // A uid names one object: an update naming another fails its precondition, a patch or
        // an apply changing it is invalid, and an apply naming a uid never creates.
        probe(
            "update-another-uid",
            Method::PUT,
            "/api/v1/namespaces/fidelity/configmaps/a",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "uid": OTHER_UID}, "data": {"k": "v"}}),
        ),
        worded(with_type(
            MERGE,
            probe(
                "patch-merge-uid",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!({"metadata": {"uid": OTHER_UID}}),
            ),
        )),
        worded(with_type(
            APPLY,
            probe(
                "apply-another-uid",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a?fieldManager=fidelity",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "uid": OTHER_UID}}),
            ),
        )),
        worded(with_type(
            APPLY,
            probe(
                "apply-uid-missing",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/gone?fieldManager=fidelity",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gone", "uid": OTHER_UID}}),
            ),
        )),
        Probe {
            content_type: "application/merge-patch+json",
            ..probe(
                "patch-merge",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!({"data": {"merged": "yes"}}),
            )
        },
        Probe {
            content_type: "application/json-patch+json",
            ..probe(
                "patch-json",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!([{"op": "add", "path": "/data/json", "value": "yes"}]),
            )
        },
        Probe {
            content_type: "application/json-patch+json",
            ..probe(
                "patch-json-failed-test",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!([{"op": "test", "path": "/data/k", "value": "nope"}]),
            )
        },
        Probe {
            content_type: "application/json-patch+json",
            ..probe(
                "patch-json-test-null-missing",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
                       {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/x"]}]),
            )
        },
        Probe {
            content_type: "application/json-patch+json",
            ..probe(
                "patch-json-remove-finalizer",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!([{"op": "remove", "path": "/metadata/finalizers"}]),
            )
        },
        Probe {
            content_type: "application/strategic-merge-patch+json",
            ..probe(
                "patch-strategic",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/a",
                json!({"data": {"strategic": "yes"}}),
            )
        },
        Probe {
            content_type: "application/apply-patch+yaml",
            path: "/api/v1/namespaces/fidelity/configmaps/applied?fieldManager=fidelity",
            ..probe(
                "apply-create",
                Method::PATCH,
                "",
                configmap("applied", json!({"k": "v"})),
            )
        },
        Probe {
            content_type: "application/apply-patch+yaml",
            ..probe(
                "apply-without-field-manager",
                Method::PATCH,
                "/api/v1/namespaces/fidelity/configmaps/applied",
                configmap("applied", json!({"k": "v"})),
            )
        },
        Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(
                "get-as-table",
                Method::GET,
                "/api/v1/namespaces/fidelity/configmaps",
                Value::Null,
            )
        },
        probe(
            "list-future-resource-version",
            Method::GET,
            "/api/v1/namespaces/fidelity/configmaps?resourceVersion=999999999&resourceVersionMatch=NotOlderThan",
            Value::Null,
        ),
        // Deletion with propagation: the owner is answered held by the collector's finalizer,
        // a bad policy is 422, a batch/v1 Job orphans by default with kube's warning.
        probe(
            "create-gc-owner",
            Method::POST,
            cms,
            configmap("gc-owner", json!({})),
        ),
        worded(probe(
            "delete-propagation-invalid",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/gc-owner",
            json!({"propagationPolicy": "Sometimes"}),
        )),
        worded(probe(
            "delete-propagation-and-orphan-dependents",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/gc-owner",
            json!({"propagationPolicy": "Orphan", "orphanDependents": true}),
        )),
        probe(
            "delete-foreground",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/gc-owner",
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}),
        ),
        probe(
            "create-gc-orphan-owner",
            Method::POST,
            cms,
            configmap("gc-orphan", json!({})),
        ),
        probe(
            "delete-orphan",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/gc-orphan",
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}),
        ),
        probe(
            "create-gc-job",
            Method::POST,
            "/apis/batch/v1/namespaces/fidelity/jobs",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "gc-job"},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}}),
        ),
        probe(
            "delete-job-default-propagation",
            Method::DELETE,
            "/apis/batch/v1/namespaces/fidelity/jobs/gc-job",
            Value::Null,
        ),
        probe(
            "delete",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/a",
            Value::Null,
        ),
        probe(
            "delete-missing",
            Method::DELETE,
            "/api/v1/namespaces/fidelity/configmaps/a",
            Value::Null,
        ),
    ]
    .into_iter()
    .chain(write_probes())
    .chain(table_probes())
    .chain([probe("delete-namespace", Method::DELETE, NS, Value::Null)])
    .collect()
}

/// A certificate signing request for `CN=fidelity-user` (its key was thrown away).
const CSR_PEM_BASE64: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIU01Ib0NBUUF3R0RFV01CUUdBMVVFQXd3TlptbGtaV3hwZEhrdGRYTmxjakJaTUJNR0J5cUdTTTQ5QWdFRwpDQ3FHU000OUF3RUhBMElBQk02ZE1FSUgveFYxZmsvS3hPTDNBUEdmNDZYa3ZGd2dxT3g2VTB6WWJYWDB3cTIyCjBpVGdqRUc2Y0pyT0xnV2svSFNuV3NOU3dmZ0Q5YVlRMkxXdW9iQ2dBREFLQmdncWhrak9QUVFEQWdOSUFEQkYKQWlFQWlid1R3Q2J1Z0xEdkM0YW56TTk3M2Z5ZWlHS2dyZG9nSGV5WGptZFpLRThDSUhWaWZQMTJ5aWRHbVBSawpoWkpsS1kwd2tLczN1M05LekNaRTdqTzVKRWRVCi0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo=";

/// kubectl's columns for more built-in kinds: one object of each, listed as a Table.
fn table_probes() -> Vec<Probe> {
    let template = json!({"metadata": {"labels": {"app": "t"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}, {"name": "d", "image": "nginx:1"}]}});
    let objects: Vec<(&'static str, &'static str, Value)> = vec![
        (
            "replicasets",
            "/apis/apps/v1/namespaces/fidelity/replicasets",
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "t"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "t"}}, "template": template}}),
        ),
        (
            "statefulsets",
            "/apis/apps/v1/namespaces/fidelity/statefulsets",
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "t"},
                "spec": {"replicas": 3, "serviceName": "t", "selector": {"matchLabels": {"app": "t"}}, "template": template}}),
        ),
        (
            "daemonsets",
            "/apis/apps/v1/namespaces/fidelity/daemonsets",
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "t"},
                "spec": {"selector": {"matchLabels": {"app": "t"}}, "template": {"metadata": {"labels": {"app": "t"}},
                    "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "busybox:1"}]}}}}),
        ),
        (
            "jobs",
            "/apis/batch/v1/namespaces/fidelity/jobs",
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "t"},
                "spec": {"completions": 2, "parallelism": 2, "template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox:1"}]}}}}),
        ),
        (
            "cronjobs",
            "/apis/batch/v1/namespaces/fidelity/cronjobs",
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "t"},
                "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": true,
                    "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox:1"}]}}}}}}),
        ),
        (
            "ingresses",
            "/apis/networking.k8s.io/v1/namespaces/fidelity/ingresses",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "t"},
                "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example"]}],
                    "rules": [{"host": "a.example"}, {"host": "b.example"}]}}),
        ),
        (
            "poddisruptionbudgets",
            "/apis/policy/v1/namespaces/fidelity/poddisruptionbudgets",
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "t"},
                "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "t"}}}}),
        ),
        (
            "leases",
            "/apis/coordination.k8s.io/v1/namespaces/fidelity/leases",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "t"},
                "spec": {"holderIdentity": "me"}}),
        ),
        (
            "rolebindings",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/fidelity/rolebindings",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "t"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                    {"kind": "Group", "name": "ops", "apiGroup": "rbac.authorization.k8s.io"},
                    {"kind": "ServiceAccount", "name": "robot", "namespace": "fidelity"}]}),
        ),
        (
            "persistentvolumeclaims",
            "/api/v1/namespaces/fidelity/persistentvolumeclaims",
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "t"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                    "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
        (
            "persistentvolumes",
            "/api/v1/persistentvolumes",
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "fidelity-pv"},
                "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                    "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast",
                    "volumeMode": "Filesystem",
                    "claimRef": {"namespace": "fidelity", "name": "t"}, "hostPath": {"path": "/tmp/pv"}}}),
        ),
        (
            "storageclasses",
            "/apis/storage.k8s.io/v1/storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "fidelity-fast",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "example.com/fast", "reclaimPolicy": "Retain",
                "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true}),
        ),
        (
            "priorityclasses",
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "fidelity-high"}, "value": 1000, "preemptionPolicy": "Never"}),
        ),
        (
            "events",
            "/api/v1/namespaces/fidelity/events",
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "t.1"},
                "involvedObject": {"kind": "Pod", "name": "t", "namespace": "fidelity",
                    "fieldPath": "spec.containers{c}"},
                "reason": "Pulled", "message": " pulled the image ", "type": "Normal", "count": 3,
                "source": {"component": "kubelet", "host": "n1"},
                "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": "2020-01-02T00:00:00Z"}),
        ),
        (
            "pods",
            "/api/v1/namespaces/fidelity/pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"},
                "spec": {"nodeName": "n1", "readinessGates": [{"conditionType": "example.com/ready"}],
                    "containers": [{"name": "c", "image": "busybox:1"}]}}),
        ),
        (
            "nodes",
            "/api/v1/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fidelity-node",
                "labels": {"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge"}},
                "spec": {"unschedulable": true}}),
        ),
        (
            "horizontalpodautoscalers",
            "/apis/autoscaling/v2/namespaces/fidelity/horizontalpodautoscalers",
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "t"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "t"},
                    "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}}),
        ),
        (
            "horizontalpodautoscalers-defaulted",
            "/apis/autoscaling/v2/namespaces/fidelity/horizontalpodautoscalers",
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "u"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "u"},
                    "minReplicas": 2, "maxReplicas": 4, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        ),
        (
            "endpoints",
            "/api/v1/namespaces/fidelity/endpoints",
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "t"},
                "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                    "notReadyAddresses": [{"ip": "10.0.0.3"}],
                    "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}]}),
        ),
        (
            "endpointslices",
            "/apis/discovery.k8s.io/v1/namespaces/fidelity/endpointslices",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "t"},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}],
                "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"], "conditions": {"ready": false}}]}),
        ),
        (
            "networkpolicies",
            "/apis/networking.k8s.io/v1/namespaces/fidelity/networkpolicies",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "t"},
                "spec": {"podSelector": {"matchLabels": {"app": "t"}},
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}}),
        ),
        (
            "networkpolicies-ingress",
            "/apis/networking.k8s.io/v1/namespaces/fidelity/networkpolicies",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "u"},
                "spec": {"podSelector": {}}}),
        ),
        (
            "resourcequotas",
            "/api/v1/namespaces/fidelity/resourcequotas",
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "t"},
                "spec": {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "1Gi", "requests.memory": "512Mi"}}}),
        ),
        (
            "limitranges",
            "/api/v1/namespaces/fidelity/limitranges",
            json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "t"},
                "spec": {"limits": [
                    {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "default": {"cpu": "500m"}},
                    {"type": "Pod", "max": {"cpu": "4"}},
                    {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}}]}}),
        ),
        (
            "serviceaccounts",
            "/api/v1/namespaces/fidelity/serviceaccounts",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "t"},
                "secrets": [{"name": "t-token"}]}),
        ),
        (
            "podtemplates",
            "/api/v1/namespaces/fidelity/podtemplates",
            json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": template}),
        ),
        (
            "controllerrevisions",
            "/apis/apps/v1/namespaces/fidelity/controllerrevisions",
            json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "t"},
                "revision": 3, "data": {"spec": {"template": {"metadata": {"labels": {"app": "t"}}}}}}),
        ),
        (
            "roles",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/fidelity/roles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "t"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        ),
        (
            "clusterroles",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "fidelity-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        ),
        (
            "ingressclasses",
            "/apis/networking.k8s.io/v1/ingressclasses",
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "fidelity-lb"},
                "spec": {"controller": "example.com/ingress",
                    "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}}),
        ),
        (
            "runtimeclasses",
            "/apis/node.k8s.io/v1/runtimeclasses",
            json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": "fidelity-runc"}, "handler": "runc"}),
        ),
        (
            "csidrivers",
            "/apis/storage.k8s.io/v1/csidrivers",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
                "metadata": {"name": "fidelity.csi.example.com"},
                "spec": {"attachRequired": true, "podInfoOnMount": true,
                    "tokenRequests": [{"audience": "vault"}]}}),
        ),
        (
            "csinodes",
            "/apis/storage.k8s.io/v1/csinodes",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                "metadata": {"name": "fidelity-node"},
                "spec": {"drivers": [{"name": "fidelity.csi.example.com", "nodeID": "n1"}]}}),
        ),
        (
            "volumeattachments",
            "/apis/storage.k8s.io/v1/volumeattachments",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                "metadata": {"name": "fidelity-va"},
                "spec": {"attacher": "fidelity.csi.example.com", "nodeName": "n1",
                    "source": {"persistentVolumeName": "fidelity-pv"}}}),
        ),
        (
            "certificatesigningrequests",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests",
            json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": "fidelity-csr"},
                "spec": {"request": CSR_PEM_BASE64, "signerName": "kubernetes.io/kube-apiserver-client",
                    "expirationSeconds": 86400, "usages": ["client auth"]}}),
        ),
    ];
    let mut out = Vec::new();
    for (kind, path, body) in objects {
        let id: &'static str = Box::leak(format!("create-{kind}-for-table").into_boxed_str());
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        out.push(probe(id, Method::POST, path, body));
        let id: &'static str = Box::leak(format!("{kind}-list-as-table").into_boxed_str());
        // Cluster-scoped kinds: only the probe's own object (a real server has others).
        let list: &'static str = if kind == "events" {
            // Only the probe's event (kube's own controllers write events too).
            "/api/v1/namespaces/fidelity/events?fieldSelector=involvedObject.name%3Dt"
        } else if path.contains("/namespaces/") {
            path
        } else {
            Box::leak(format!("{path}?fieldSelector=metadata.name%3D{name}").into_boxed_str())
        };
        out.push(Probe {
            accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
            ..probe(id, Method::GET, list, Value::Null)
        });
    }
    // A kind's own field labels, and one it does not have.
    out.push(Probe {
        accept: "application/json;as=Table;g=meta.k8s.io;v=v1",
        ..probe(
            "pods-by-field-labels",
            Method::GET,
            "/api/v1/namespaces/fidelity/pods?fieldSelector=spec.nodeName%3Dn1,status.phase%3DPending,spec.hostNetwork%3Dfalse",
            Value::Null,
        )
    });
    out.push(worded(probe(
        "pods-by-unknown-field",
        Method::GET,
        "/api/v1/namespaces/fidelity/pods?fieldSelector=spec.nope%3Dx",
        Value::Null,
    )));
    out.push(worded(probe(
        "configmaps-by-unknown-field",
        Method::GET,
        "/api/v1/namespaces/fidelity/configmaps?fieldSelector=data.x%3Dy",
        Value::Null,
    )));
    // The autoscaler's validation, in kube's order and words.
    let hpa = "/apis/autoscaling/v2/namespaces/fidelity/horizontalpodautoscalers";
    for (id, spec) in [
        (
            "hpa-invalid-target",
            json!({"scaleTargetRef": {"apiVersion": "v1"}, "minReplicas": 0, "maxReplicas": 0}),
        ),
        (
            "hpa-invalid-bounds",
            json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "minReplicas": 5, "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue"}}}]}),
        ),
        ("hpa-invalid-empty", json!({})),
    ] {
        out.push(worded(probe(
            id,
            Method::POST,
            hpa,
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "bad"}, "spec": spec}),
        )));
    }
    out
}

/// What a client sees of one answer, less what each server assigns: the code, the `Warning`
/// headers, and for a Status its reason, cause fields (and message when the probe asks), else
/// the object with server-assigned values removed and managed fields without their times.
fn seen(code: u16, body: &str, warnings: Vec<String>, message: bool) -> Value {
    let mut out = seen_body(code, body, message);
    // Which encoding came back is part of what is compared.
    if serde_json::from_str::<Value>(body).is_err()
        && decode(body).is_some()
        && let Some(o) = out.as_object_mut()
    {
        o.insert("encoding".into(), json!("yaml"));
    }
    if !warnings.is_empty()
        && let Some(o) = out.as_object_mut()
    {
        o.insert("warnings".into(), json!(warnings));
    }
    out
}

/// An answer's object: JSON, or YAML for a probe that asked for it.
fn decode(body: &str) -> Option<Value> {
    serde_json::from_str::<Value>(body).ok().or_else(|| {
        serde_saphyr::from_str::<Value>(body)
            .ok()
            .filter(Value::is_object)
    })
}

fn seen_body(code: u16, body: &str, message: bool) -> Value {
    let mut value = decode(body).unwrap_or(Value::String(body.to_owned()));
    if value.get("kind").and_then(Value::as_str) == Some("Status") {
        let mut fields: Vec<String> = value
            .pointer("/details/causes")
            .and_then(Value::as_array)
            .map(|causes| {
                causes
                    .iter()
                    .filter_map(|c| c.get("field").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        fields.sort();
        let mut status = json!({"code": code, "reason": value.get("reason"), "fields": fields});
        if message {
            status["message"] = value.get("message").cloned().unwrap_or(Value::Null);
        }
        return status;
    }
    // A Table's ages are as of each server's clock.
    if value.get("kind").and_then(Value::as_str) == Some("Table") {
        let ages: Vec<usize> = value["columnDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            // Ages are as of each server's clock; allocated addresses differ by server.
            .filter(|(_, c)| {
                matches!(
                    c.get("name").and_then(Value::as_str),
                    Some("Age" | "Created At" | "Cluster-IP")
                )
            })
            .map(|(i, _)| i)
            .collect();
        if let Some(rows) = value.get_mut("rows").and_then(Value::as_array_mut) {
            for row in rows {
                for &i in &ages {
                    if let Some(cell) = row.pointer_mut(&format!("/cells/{i}")) {
                        *cell = json!("<server-assigned>");
                    }
                }
            }
        }
    }
    // Values derived from an object's uid (a Job's selector and labels) differ by server.
    if let Some(uid) = value.pointer("/metadata/uid").and_then(Value::as_str) {
        let uid = uid.to_owned();
        replace_string(&mut value, &uid, "<uid>");
    }
    if let Some(rows) = value.get_mut("rows").and_then(Value::as_array_mut) {
        for row in rows {
            // Also inside cells (a Job's selector column).
            if let Some(uid) = row.pointer("/object/metadata/uid").and_then(Value::as_str)
                && let Ok(masked) = serde_json::from_str(&row.to_string().replace(uid, "<uid>"))
            {
                *row = masked;
            }
        }
    }
    strip(&mut value);
    json!({"code": code, "object": value})
}

fn replace_string(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Object(map) => map.values_mut().for_each(|v| replace_string(v, from, to)),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_string(v, from, to)),
        _ => {}
    }
}

fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "lastTransitionTime",
                "selfLink",
                "continue",
                "remainingItemCount",
            ] {
                map.remove(key);
            }
            // Managed fields are compared less their times, and so regardless of the order
            // entries written in the same second or not take.
            if let Some(Value::Array(entries)) = map.get_mut("managedFields") {
                for e in entries.iter_mut() {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
                entries.sort_by_key(|e| {
                    ["operation", "manager", "subresource", "apiVersion"]
                        .map(|k| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned())
                });
            }
            // Allocated Service addresses differ by server; that one was allocated does not.
            for key in ["clusterIP", "clusterIPs"] {
                if let Some(v) = map.get_mut(key) {
                    replace_allocated(v);
                }
            }
            // Server-populated details that do not change what a client reads.
            if let Some(Value::Object(labels)) = map.get_mut("labels") {
                labels.remove("kubernetes.io/metadata.name");
            }
            for child in map.values_mut() {
                strip(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

fn replace_allocated(v: &mut Value) {
    match v {
        Value::String(s) if !s.is_empty() && s != "None" => *s = "<allocated>".to_owned(),
        Value::Array(items) => items.iter_mut().for_each(replace_allocated),
        _ => {}
    }
}

async fn answer(client: &Client, probe: &Probe) -> Result<Value> {
    let body = if probe.body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&probe.body)?
    };
    let request = Request::builder()
        .method(probe.method.clone())
        .uri(probe.path)
        .header("content-type", probe.content_type)
        .header("accept", probe.accept)
        .body(body)?;
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .with_context(|| format!("{} {}", probe.method, probe.path))?;
    let code = response.status().as_u16();
    let mut warnings: Vec<String> = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    warnings.sort();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    Ok(seen(
        code,
        &String::from_utf8_lossy(&bytes),
        warnings,
        probe.message,
    ))
}

/// Polls `path` until it answers 2xx (at most 15 s): a CRD's resources being served.
async fn settle(client: &Client, path: &str) -> Result<()> {
    for _ in 0..150 {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Vec::new())?;
        let response = client.send(request.map(kube::client::Body::from)).await?;
        if response.status().is_success() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("{path} was not served within 15 s")
}

/// [`answer`], or a note that none came within 10 s.
async fn bounded(client: &Client, probe: &Probe) -> Result<Value> {
    match tokio::time::timeout(std::time::Duration::from_secs(10), answer(client, probe)).await {
        Ok(seen) => seen,
        Err(_) => Ok(json!("no answer within 10s")),
    }
}

/// The probe ids listed as known divergences in `crates/apiserver/STATUS.md`.
fn listed() -> Result<BTreeSet<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../apiserver/STATUS.md");
    let text = std::fs::read_to_string(&path)?;
    let section = text
        .split("## Known divergences from kube-apiserver")
        .nth(1)
        .context("STATUS.md has no \"Known divergences from kube-apiserver\" section")?;
    let section = section.split("\n## ").next().unwrap_or_default();
    Ok(section
        .lines()
        .filter_map(|line| line.strip_prefix("- `")?.split('`').next())
        .map(str::to_owned)
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn fidelity_report_lists_every_divergence_from_kube_apiserver() -> Result<()> {
    if ServerKind::from_env()? != ServerKind::Kube {
        println!("SKIPPED: the fidelity report needs a real kube-apiserver (make fidelity)");
        return Ok(());
    }
    let (embedded, real) = tokio::try_join!(
        TestHub::start_on(ServerKind::Embedded),
        TestHub::start_on(ServerKind::Kube)
    )?;
    let mut divergences = BTreeSet::new();
    let probes = probes();
    let count = probes.len();
    for probe in probes {
        let (ours, theirs) = tokio::try_join!(
            bounded(&embedded.client, &probe),
            bounded(&real.client, &probe)
        )?;
        if let Some(path) = probe.settle {
            tokio::try_join!(settle(&embedded.client, path), settle(&real.client, path))?;
        }
        if ours != theirs {
            println!(
                "DIVERGENCE {}: {} {}\n  embedded: {ours}\n  kube-apiserver: {theirs}",
                probe.id, probe.method, probe.path
            );
            divergences.insert(probe.id.to_owned());
        }
    }
    println!("{} divergences in {count} probes", divergences.len());
    let listed = listed()?;
    let unlisted: Vec<_> = divergences.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&divergences).collect();
    assert!(
        unlisted.is_empty() && stale.is_empty(),
        "crates/apiserver/STATUS.md must list exactly the divergences: unlisted {unlisted:?}, \
         no longer diverging {stale:?}"
    );
    Ok(())
}
