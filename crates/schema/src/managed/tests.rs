//! Scenarios after structured-merge-diff's own suite (ownership on create, shared fields,
//! conflicts and force, removal, map lists, sets, atomic lists and maps, updates taking
//! ownership, subresources), plus what was read off a real kube-apiserver 1.37.2.

use serde_json::{Value, json};

use super::fieldpath::{Pe, Set};
use super::*;
use crate::builtin::builtins;
use crate::schema::Schema;

const T0: &str = "2026-01-01T00:00:00Z";
const T1: &str = "2026-01-01T00:00:01Z";

fn deployment() -> Node<'static> {
    builtins()
        .kind("apps", "v1", "Deployment")
        .expect("deployment")
}

fn req(manager: &str, operation: Operation) -> Request<'_> {
    Request {
        manager,
        operation,
        api_version: "apps/v1",
        kind: "Deployment",
        subresource: "",
        time: T0,
        force: false,
        reset: &[],
    }
}

fn apply_as(live: Option<&Value>, manager: &str, applied: Value) -> Result<Value, ApplyError> {
    apply(
        live,
        &applied,
        deployment(),
        &req(manager, Operation::Apply),
    )
}

fn ok_apply(live: Option<&Value>, manager: &str, applied: Value) -> Value {
    apply_as(live, manager, applied).unwrap_or_else(|e| panic!("{manager}: {e}"))
}

fn update_as(old: Option<&Value>, manager: &str, new: Value) -> Value {
    update(old, &new, deployment(), &req(manager, Operation::Update)).expect("update")
}

/// `manager -> fieldsV1` of every entry (Apply/Update and subresource appended to the name).
fn fields_of(obj: &Value) -> Vec<(String, Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    let mut name = format!(
                        "{}/{}",
                        e["manager"].as_str().unwrap_or(""),
                        e["operation"].as_str().unwrap_or("")
                    );
                    if let Some(s) = e["subresource"].as_str() {
                        name = format!("{name}/{s}");
                    }
                    (name, e["fieldsV1"].clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn owned_by(obj: &Value, manager: &str) -> Set {
    fields_of(obj)
        .into_iter()
        .find(|(m, _)| m.split('/').next() == Some(manager))
        .map(|(_, f)| Set::from_fields_v1(&f).expect("fieldsV1"))
        .unwrap_or_default()
}

fn path(p: &str) -> Vec<Pe> {
    p.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| Pe::Field(s.to_string()))
        .collect()
}

fn dep(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"}, "spec": spec})
}

fn conflicts(r: Result<Value, ApplyError>) -> Vec<(String, String)> {
    match r {
        Err(ApplyError::Conflicts(cs)) => cs.into_iter().map(|c| (c.manager, c.field)).collect(),
        other => panic!("expected conflicts, got {other:?}"),
    }
}

/// The apply of probe 1 on the real server, as applied there.
fn d1() -> Value {
    json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d1","labels":{"a":"1"}},
        "spec":{"replicas":2,"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},
        "spec":{"containers":[{"name":"app","image":"nginx","ports":[{"containerPort":80}]}]}}}})
}

#[test]
fn apply_create_renders_managed_fields_as_kube_does() {
    // Read off kube-apiserver 1.37.2 for this exact apply by manager m1.
    let want = json!([{"manager": "m1", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {
        "f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]);
    let out = ok_apply(None, "m1", d1());
    assert_eq!(out["metadata"]["managedFields"], want);
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(out["metadata"]["name"], "d1");
}

#[test]
fn create_by_post_renders_managed_fields_as_kube_does() {
    // The object kube-apiserver 1.37.2 stored for a POST by fieldManager=creator (defaults
    // applied), and the managedFields it wrote: struct fields Go holds by value (spec,
    // strategy, template) get no ".", maps and items that appeared do.
    let stored = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d3",
        "namespace": "default", "uid": "c5177d83-57d9-4987-9823-741f070bc044", "resourceVersion": "311",
        "generation": 1, "creationTimestamp": "2026-12-02T02:19:41Z", "labels": {"a": "1"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}, "template": {"metadata":
        {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "app", "image": "nginx", "ports":
        [{"containerPort": 80, "protocol": "TCP"}], "resources": {}, "terminationMessagePath":
        "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "securityContext": {}, "schedulerName": "default-scheduler"}}, "strategy": {"type":
        "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}, "status": {}});
    let want = json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}, "f:spec": {
        "f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
        "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
        "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {
        "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:ports": {
        ".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {},
        "f:protocol": {}}}, "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
        "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}, "f:securityContext": {},
        "f:terminationGracePeriodSeconds": {}}}}});
    let out = update_as(None, "creator", stored);
    assert_eq!(fields_of(&out), vec![("creator/Update".to_string(), want)]);
    assert_eq!(out["metadata"]["managedFields"][0]["time"], T0);
    assert_eq!(out["metadata"]["managedFields"][0]["apiVersion"], "apps/v1");
}

#[test]
fn equal_values_are_shared_and_a_noop_apply_keeps_no_time() {
    let live = ok_apply(None, "m1", d1());
    let out = ok_apply(Some(&live), "m2", dep(json!({"replicas": 2})));
    // As on the real server: m2 listed first (no time: the object did not change), m1 kept.
    let entries = out["metadata"]["managedFields"]
        .as_array()
        .expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["manager"], "m2");
    assert!(entries[0].get("time").is_none());
    assert_eq!(
        entries[0]["fieldsV1"],
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(owned_by(&out, "m1").has(&path("spec.replicas")));
}

#[test]
fn conflicts_and_force() {
    let live = ok_apply(None, "m1", d1());
    let cases = [
        (json!({"replicas": 3}), vec![("m1", ".spec.replicas")]),
        (
            json!({"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}),
            vec![("m1", ".spec.template.spec.containers[name=\"app\"].image")],
        ),
        (
            json!({"selector": {"matchLabels": {"app": "y"}}}),
            vec![("m1", ".spec.selector")],
        ),
    ];
    for (spec, want) in cases {
        let got = conflicts(apply_as(Some(&live), "m2", dep(spec.clone())));
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(m, f)| (m.to_string(), f.to_string()))
            .collect();
        assert_eq!(got, want, "{spec}");
        let forced = apply(
            Some(&live),
            &dep(spec.clone()),
            deployment(),
            &Request {
                force: true,
                ..req("m2", Operation::Apply)
            },
        )
        .expect("forced");
        let field: Vec<Pe> = match want[0].1.as_str() {
            ".spec.replicas" => path("spec.replicas"),
            ".spec.selector" => path("spec.selector"),
            _ => {
                let mut p = path("spec.template.spec.containers");
                p.push(Pe::Key(vec![("name".into(), json!("app"))]));
                p.push(Pe::Field("image".into()));
                p
            }
        };
        assert!(owned_by(&forced, "m2").has(&field), "{spec}");
        assert!(!owned_by(&forced, "m1").has(&field), "{spec}");
    }
}

#[test]
fn conflict_messages_match_kube() {
    // The sequence of probe 5 on the real server: m1 applies, m2 shares replicas, up1 sets
    // the image by a patch, m3 applies other values for all of them.
    let live = ok_apply(None, "m1", d1());
    let live = ok_apply(Some(&live), "m2", dep(json!({"replicas": 2})));
    let mut patched = live.clone();
    patched["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let live = update_as(Some(&live), "up1", patched);
    assert_eq!(
        owned_by(&live, "up1").to_fields_v1(),
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:image": {}}}}}}})
    );
    let r = apply_as(
        Some(&live),
        "m3",
        json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d1","labels":{"a":"2"}},
            "spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"app","image":"nginx:3"}]}}}}),
    );
    let Err(ApplyError::Conflicts(cs)) = r else {
        panic!("expected conflicts: {r:?}")
    };
    assert_eq!(
        conflict_message(&cs),
        "Apply failed with 4 conflicts: conflicts with \"m1\":\n- .metadata.labels.a\n- .spec.replicas\nconflicts with \"m2\":\n- .spec.replicas\nconflicts with \"up1\" using apps/v1:\n- .spec.template.spec.containers[name=\"app\"].image"
    );
    let causes = conflict_causes(&cs);
    assert!(causes.iter().any(|c| c.reason == "FieldManagerConflict"
        && c.message == "conflict with \"up1\" using apps/v1"
        && c.field == ".spec.template.spec.containers[name=\"app\"].image"));
    let one = &cs[..1];
    assert_eq!(
        conflict_message(one),
        "Apply failed with 1 conflict: conflict with \"m1\": .metadata.labels.a"
    );
    let status = conflict_status(one);
    assert_eq!(status["code"], 409);
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "conflict with \"m1\""
    );
    let sub = Conflict {
        manager: "c".into(),
        operation: Operation::Update,
        api_version: "v1".into(),
        subresource: "status".into(),
        field: ".status.x".into(),
    };
    assert_eq!(
        sub.manager_display(),
        "\"c\" with subresource \"status\" using v1"
    );
}

#[test]
fn fields_no_longer_applied_are_removed_unless_owned_by_another() {
    let base = dep(json!({"replicas": 2, "minReadySeconds": 5, "paused": true}));
    let live = ok_apply(None, "a", base);
    let live = ok_apply(Some(&live), "b", dep(json!({"minReadySeconds": 5})));
    let cases: [(&str, Value, Vec<&str>, Vec<&str>); 3] = [
        (
            "drop replicas",
            json!({"minReadySeconds": 5, "paused": true}),
            vec!["minReadySeconds", "paused"],
            vec!["replicas"],
        ),
        (
            "drop shared",
            json!({"replicas": 2, "paused": true}),
            vec!["replicas", "paused", "minReadySeconds"],
            vec![],
        ),
        (
            "drop all",
            json!({}),
            vec!["minReadySeconds"],
            vec!["replicas", "paused"],
        ),
    ];
    for (name, spec, kept, gone) in cases {
        let out = ok_apply(Some(&live), "a", dep(spec));
        for k in kept {
            assert!(out["spec"].get(k).is_some(), "{name}: {k} kept");
        }
        for k in gone {
            assert!(out["spec"].get(k).is_none(), "{name}: {k} removed");
        }
    }
    // A field nobody owns (set by defaulting, say) is never removed by an applier.
    let mut defaulted = ok_apply(None, "a", dep(json!({"replicas": 2})));
    defaulted["spec"]["revisionHistoryLimit"] = json!(10);
    let out = ok_apply(Some(&defaulted), "a", dep(json!({"paused": true})));
    assert_eq!(out["spec"]["revisionHistoryLimit"], 10);
    assert!(out["spec"].get("replicas").is_none());
}

fn containers(cs: Value) -> Value {
    dep(json!({"template": {"spec": {"containers": cs}}}))
}

#[test]
fn map_list_items_merge_by_key() {
    let live = ok_apply(
        None,
        "a",
        containers(json!([{"name": "app", "image": "a", "ports": [{"containerPort": 80}]}])),
    );
    let live = ok_apply(
        Some(&live),
        "b",
        containers(json!([{"name": "side", "image": "s"}])),
    );
    let cs = &live["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs.as_array().map(Vec::len), Some(2));
    // b adds a UDP port to a's container: another item of the ports map list.
    let live = ok_apply(
        Some(&live),
        "b",
        containers(json!([{"name": "side", "image": "s"},
            {"name": "app", "ports": [{"containerPort": 80, "protocol": "UDP"}]}])),
    );
    let app = live["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == "app"))
        .cloned()
        .unwrap_or_default();
    let ports = &app["ports"];
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");
    // a stops applying its container: its port and image go, b's port keeps the item.
    let out = ok_apply(Some(&live), "a", containers(json!([])));
    let cs = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let app = cs
        .iter()
        .find(|c| c["name"] == "app")
        .expect("app kept (b owns a part)");
    assert!(app.get("image").is_none());
    assert_eq!(
        app["ports"],
        json!([{"containerPort": 80, "protocol": "UDP"}])
    );
    // b stops too: nobody owns any part of app, it is removed.
    let out = ok_apply(
        Some(&out),
        "b",
        containers(json!([{"name": "side", "image": "s"}])),
    );
    let names: Vec<&Value> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|l| l.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, vec![&json!("side")]);
}

#[test]
fn merged_lists_keep_the_applied_order_with_live_items_in_between() {
    let live = ok_apply(
        None,
        "a",
        containers(
            json!([{"name": "x", "image": "i"}, {"name": "y", "image": "i"}, {"name": "z", "image": "i"}]),
        ),
    );
    let out = ok_apply(
        Some(&live),
        "b",
        containers(
            json!([{"name": "z", "image": "i"}, {"name": "w", "image": "i"}, {"name": "x", "image": "i"}]),
        ),
    );
    let names: Vec<String> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, vec!["y", "z", "w", "x"]);
}

fn with_finalizers(f: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1", "finalizers": f}})
}

#[test]
fn set_lists_are_unioned_and_items_owned_by_value() {
    let live = ok_apply(None, "a", with_finalizers(json!(["x", "y"])));
    assert_eq!(
        owned_by(&live, "a").to_fields_v1(),
        json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}, "v:\"y\"": {}}}})
    );
    let live = ok_apply(Some(&live), "b", with_finalizers(json!(["y", "z"])));
    assert_eq!(live["metadata"]["finalizers"], json!(["x", "y", "z"]));
    let out = ok_apply(Some(&live), "a", with_finalizers(json!([])));
    assert_eq!(out["metadata"]["finalizers"], json!(["y", "z"]));
}

#[test]
fn atomic_lists_and_maps_are_owned_whole() {
    let args = |a: Value| containers(json!([{"name": "app", "args": a}]));
    let live = ok_apply(None, "a", args(json!(["1", "2"])));
    let mut item = path("spec.template.spec.containers");
    item.push(Pe::Key(vec![("name".into(), json!("app"))]));
    let mut args_path = item.clone();
    args_path.push(Pe::Field("args".into()));
    assert!(owned_by(&live, "a").has(&args_path));
    assert_eq!(
        conflicts(apply_as(Some(&live), "b", args(json!(["1"])))),
        vec![(
            "a".to_string(),
            ".spec.template.spec.containers[name=\"app\"].args".to_string()
        )]
    );
    // The selector (a LabelSelector, an atomic map) is one leaf: any change conflicts, and
    // an applier replaces it whole.
    let live = ok_apply(
        None,
        "a",
        dep(json!({"selector": {"matchLabels": {"x": "1", "y": "2"}}})),
    );
    assert_eq!(
        owned_by(&live, "a").to_fields_v1(),
        json!({"f:spec": {"f:selector": {}}})
    );
    let forced = apply(
        Some(&live),
        &dep(json!({"selector": {"matchLabels": {"x": "1"}}})),
        deployment(),
        &Request {
            force: true,
            ..req("b", Operation::Apply)
        },
    )
    .expect("forced");
    assert_eq!(
        forced["spec"]["selector"],
        json!({"matchLabels": {"x": "1"}})
    );
    assert!(owned_by(&forced, "a").is_empty());
    assert_eq!(fields_of(&forced).len(), 1);
}

#[test]
fn an_update_takes_ownership_and_the_applier_then_conflicts() {
    let live = ok_apply(None, "m1", d1());
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(4);
    new["metadata"]["labels"]["b"] = json!("2");
    let live = update_as(Some(&live), "kubectl-scale", new);
    assert_eq!(
        owned_by(&live, "kubectl-scale").to_fields_v1(),
        json!({"f:metadata": {"f:labels": {"f:b": {}}}, "f:spec": {"f:replicas": {}}})
    );
    assert!(!owned_by(&live, "m1").has(&path("spec.replicas")));
    let r = apply_as(Some(&live), "m1", d1());
    let Err(ApplyError::Conflicts(cs)) = r else {
        panic!("expected a conflict: {r:?}")
    };
    assert_eq!(
        conflict_message(&cs),
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    // Removing a field by update takes it from every manager.
    let mut new = live.clone();
    if let Some(l) = new["metadata"]["labels"].as_object_mut() {
        l.remove("a");
    }
    let out = update_as(Some(&live), "editor", new);
    assert!(!owned_by(&out, "m1").has(&path("metadata.labels.a")));
    assert!(owned_by(&out, "editor").is_empty());
    // An update that changes nothing adds no entry and moves no time.
    let again = update_as(Some(&out), "editor", out.clone());
    assert_eq!(
        again["metadata"]["managedFields"],
        out["metadata"]["managedFields"]
    );
}

#[test]
fn status_writes_are_their_own_manager() {
    let mut live = ok_apply(None, "m1", d1());
    // Stored objects of built-in kinds always carry status (`{}` at least).
    live["status"] = json!({});
    let mut new = live.clone();
    new["status"] = json!({"replicas": 2, "observedGeneration": 1});
    // Written managedFields are ignored through a subresource.
    new["metadata"]["managedFields"] = json!([{}]);
    let r = Request {
        subresource: "status",
        ..req("kube-controller-manager", Operation::Update)
    };
    let out = update(Some(&live), &new, deployment(), &r).expect("status");
    let entries = &out["metadata"]["managedFields"];
    assert_eq!(entries.as_array().map(Vec::len), Some(2));
    let status = &entries[1];
    assert_eq!(status["manager"], "kube-controller-manager");
    assert_eq!(status["subresource"], "status");
    assert_eq!(
        status["fieldsV1"],
        json!({"f:status": {"f:observedGeneration": {}, "f:replicas": {}}})
    );
    assert!(entries[0].get("subresource").is_none());
    // The main resource resets status: an update through it never owns status.
    let mut new = out.clone();
    new["status"]["replicas"] = json!(3);
    let r = Request {
        reset: &["status"],
        ..req("someone", Operation::Update)
    };
    let out2 = update(Some(&out), &new, deployment(), &r).expect("main");
    assert_eq!(fields_of(&out2).len(), 2);
}

#[test]
fn fields_v1_round_trip() {
    let cases = [
        json!({}),
        json!({"f:a": {}}),
        json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}),
        json!({"f:spec": {"f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}),
        json!({"f:metadata": {"f:finalizers": {"v:\"x\"": {}, "v:3": {}}}}),
        json!({"f:l": {"i:0": {}, "i:2": {"f:x": {}}}}),
    ];
    for c in cases {
        let s = Set::from_fields_v1(&c).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert_eq!(s.to_fields_v1(), c);
    }
    // Unknown element kinds are dropped; an empty node is a member; "." too.
    let s = Set::from_fields_v1(
        &json!({"f:a": {"z:what": {}}, "x:y": {}, "f:b": {".": {}, "f:c": {}}}),
    )
    .expect("lenient");
    assert!(s.has(&path("a")) && s.has(&path("b")) && s.has(&path("b.c")));
    assert_eq!(s.paths().len(), 3);
    for bad in [
        json!([]),
        json!({"f:a": 1}),
        json!({"k:[1]": {}}),
        json!({"v:{": {}}),
        json!({"q": {}}),
    ] {
        assert!(Set::from_fields_v1(&bad).is_err(), "{bad}");
    }
    let key = Pe::from_fields_key("k:{\"protocol\":\"TCP\",\"containerPort\":80}")
        .expect("key")
        .expect("known");
    assert_eq!(
        key.to_fields_key(),
        "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
    );
    assert_eq!(key.to_string(), "[containerPort=80,protocol=\"TCP\"]");
    assert_eq!(Pe::Value(json!("a<b")).to_fields_key(), "v:\"a\\u003cb\"");
}

#[test]
fn set_algebra() {
    let mut a = Set::new();
    a.insert(&path("spec.replicas"));
    a.insert(&path("spec.template.x"));
    let mut b = Set::new();
    b.insert(&path("spec.replicas"));
    b.insert(&path("spec"));
    assert_eq!(a.intersection(&b).paths(), vec![path("spec.replicas")]);
    // A member does not take its element's descendants away.
    assert_eq!(a.difference(&b).paths(), vec![path("spec.template.x")]);
    assert_eq!(a.union(&b).paths().len(), 3);
    let mut ex = Set::new();
    ex.insert(&path("spec"));
    assert!(a.exclude(&ex).is_empty());
}

#[test]
fn explicitly_written_managed_fields() {
    let live = update_as(None, "creator", dep(json!({"replicas": 1})));
    let written = |mf: Value| {
        let mut n = live.clone();
        n["metadata"]["managedFields"] = mf;
        n
    };
    let mine = json!([{"manager": "zz", "operation": "Apply", "apiVersion": "apps/v1",
        "time": "2020-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    // As on the real server: valid entries replace the stored ones, [{}] and [] reset, entries
    // kube cannot decode leave the stored ones, a too-long manager is invalid.
    let out = update_as(Some(&live), "curl", written(mine.clone()));
    assert_eq!(out["metadata"]["managedFields"], mine);
    for reset in [json!([{}]), json!([])] {
        let out = update_as(Some(&live), "curl", written(reset));
        assert!(out["metadata"].get("managedFields").is_none());
    }
    for garbage in [
        json!([{"manager": "z", "operation": "Foo", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {}}]),
        json!([{"manager": "z", "operation": "Update", "apiVersion": "apps/v1", "fieldsV1": {"f:a": {}}}]),
        json!([{"manager": "z", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": 3}}]),
        json!("nope"),
    ] {
        let out = update_as(Some(&live), "curl", written(garbage.clone()));
        assert_eq!(
            out["metadata"]["managedFields"], live["metadata"]["managedFields"],
            "{garbage}"
        );
    }
    let long = "z".repeat(130);
    let r = update(
        Some(&live),
        &written(
            json!([{"manager": long, "operation": "Update", "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1", "fieldsV1": {}}]),
        ),
        deployment(),
        &req("curl", Operation::Update),
    );
    let Err(ApplyError::Invalid(causes)) = r else {
        panic!("expected invalid: {r:?}")
    };
    assert_eq!(causes[0].field, "metadata.managedFields[0].manager");
    assert_eq!(
        causes[0].message,
        "Too long: may not be more than 128 bytes"
    );
}

#[test]
fn kubectl_client_side_to_server_side_migration() {
    // kubectl apply (client-side) created the object as an Update by kubectl-client-side-apply.
    let cfg = dep(json!({"replicas": 2, "paused": true}));
    let mut created = cfg.clone();
    created["metadata"]["annotations"] = json!({LAST_APPLIED: format!("{}\n", cfg)});
    let live = update_as(None, "kubectl-client-side-apply", created);
    // kubectl 1.26+ rewrites the entry as its own Apply entry by a JSON patch of managedFields
    // (csaupgrade); the server keeps what it is given.
    // csaupgrade leaves the annotation itself out of what kubectl takes over.
    let mut annotation = path("metadata.annotations");
    annotation.push(Pe::Field(LAST_APPLIED.into()));
    let mut not_taken = Set::new();
    not_taken.insert(&annotation);
    // (Here the annotations map itself is left unowned too, so that it survives the prune.)
    not_taken.insert(&path("metadata.annotations"));
    let csa = owned_by(&live, "kubectl-client-side-apply").difference(&not_taken);
    let mut patched = live.clone();
    patched["metadata"]["managedFields"] = json!([{"manager": "kubectl", "operation": "Apply",
        "apiVersion": "apps/v1", "time": T0, "fieldsType": "FieldsV1", "fieldsV1": csa.to_fields_v1()}]);
    let migrated = update_as(Some(&live), "kubectl", patched);
    assert_eq!(fields_of(&migrated).len(), 1);
    assert_eq!(fields_of(&migrated)[0].0, "kubectl/Apply");
    // Then kubectl apply --server-side without paused: kubectl owned it, so it goes; the
    // last-applied annotation follows the applied configuration.
    let applied = dep(json!({"replicas": 2}));
    let out = apply(
        Some(&migrated),
        &applied,
        deployment(),
        &req("kubectl", Operation::Apply),
    )
    .expect("ssa");
    assert!(out["spec"].get("paused").is_none());
    assert_eq!(
        out["metadata"]["annotations"][LAST_APPLIED],
        json!(format!("{}\n", fieldpath::json(&applied)))
    );
}

#[test]
fn kubectl_forces_conflicts_on_fields_its_last_applied_configuration_holds() {
    let cfg = dep(json!({"replicas": 2, "paused": true}));
    let mut created = cfg.clone();
    created["metadata"]["annotations"] = json!({LAST_APPLIED: cfg.to_string()});
    let live = update_as(None, "kubectl-client-side-apply", created);
    // Without migration: kubectl server-side applies the same replicas with paused false.
    let r = apply(
        Some(&live),
        &dep(json!({"replicas": 2, "paused": false})),
        deployment(),
        &req("kubectl", Operation::Apply),
    )
    .expect("allowed: the live value is what last-applied says");
    assert_eq!(r["spec"]["paused"], false);
    // Another manager gets the conflict.
    let r = apply(
        Some(&live),
        &dep(json!({"paused": false})),
        deployment(),
        &req("other", Operation::Apply),
    );
    assert_eq!(
        conflicts(r),
        vec![(
            "kubectl-client-side-apply".to_string(),
            ".spec.paused".to_string()
        )]
    );
}

#[test]
fn bad_applies() {
    let cases = [
        (
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "d1"}}),
            "invalid object type: apps/v1, Kind=StatefulSet",
        ),
        (
            json!({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "d1"}}),
            "invalid object type: /v1, Kind=Deployment",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1", "managedFields": [{"manager": "x"}]}}),
            "metadata.managedFields must be nil",
        ),
        (
            dep(json!({"replicas": "x"})),
            "failed to create typed patch object (/d1; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or float), got string",
        ),
        (
            containers(json!([{"name": "a"}, {"name": "a"}])),
            "failed to create typed patch object (/d1; apps/v1, Kind=Deployment): .spec.template.spec.containers: duplicate entries for key [name=\"a\"]",
        ),
        (
            containers(json!([{"image": "a"}])),
            "failed to create typed patch object (/d1; apps/v1, Kind=Deployment): .spec.template.spec.containers: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)",
        ),
        (
            dep(json!({"template": "x"})),
            "failed to create typed patch object (/d1; apps/v1, Kind=Deployment): .spec.template: expected map, got \"x\"",
        ),
    ];
    for (applied, want) in cases {
        match apply_as(None, "m", applied.clone()) {
            Err(ApplyError::BadRequest(m)) => assert_eq!(m, want, "{applied}"),
            other => panic!("{applied}: {other:?}"),
        }
    }
}

#[test]
fn at_most_ten_update_managers() {
    let mut live = update_as(None, "u0", dep(json!({"replicas": 0})));
    for i in 1..12 {
        let mut new = live.clone();
        new["metadata"]["labels"] = json!({});
        for j in 1..=i {
            new["metadata"]["labels"][format!("l{j}")] = json!("v");
        }
        let m = format!("u{i}");
        let r = Request {
            time: if i < 6 { T0 } else { T1 },
            ..req(&m, Operation::Update)
        };
        live = update(Some(&live), &new, deployment(), &r).expect("update");
    }
    let names: Vec<String> = fields_of(&live).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(
        names.contains(&"ancient-changes/Update".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"u0/Update".to_string()));
    let ancient = owned_by(&live, "ancient-changes");
    assert!(ancient.has(&path("spec.replicas")) && ancient.has(&path("metadata.labels.l1")));
}

#[test]
fn custom_resources_start_from_nothing() {
    let schema = Schema::from_openapi(&json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer"},
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["b", "a"],
                "items": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "v": {"type": "string"}}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}))
    .expect("schema");
    let node = Node::standalone(&schema);
    let r = Request {
        api_version: "x.io/v1",
        kind: "Thing",
        ..req("creator", Operation::Update)
    };
    let obj = json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"},
        "spec": {"size": 1, "items": [{"a": "p", "b": 2, "v": "x"}], "free": {"deep": {"er": 1}, "list": [1]}}});
    let out = update(None, &obj, node, &r).expect("create");
    assert_eq!(
        fields_of(&out)[0].1,
        json!({"f:spec": {".": {}, "f:size": {}, "f:items": {".": {}, "k:{\"a\":\"p\",\"b\":2}": {".": {}, "f:a": {}, "f:b": {}, "f:v": {}}},
            "f:free": {".": {}, "f:deep": {".": {}, "f:er": {}}, "f:list": {}}}})
    );
    let applied = Request {
        operation: Operation::Apply,
        manager: "ap",
        ..r
    };
    let out = apply(Some(&out), &obj, node, &applied).expect("apply");
    assert_eq!(
        owned_by(&out, "ap").to_fields_v1(),
        json!({"f:spec": {"f:size": {}, "f:items": {"k:{\"a\":\"p\",\"b\":2}": {".": {}, "f:a": {}, "f:b": {}, "f:v": {}}},
            "f:free": {"f:deep": {".": {}, "f:er": {}}, "f:list": {}}}})
    );
}

/// Read off kube-apiserver 1.37.2: raw JSON (a ControllerRevision's `data`) is one leaf, and an
/// empty struct held by value (a NetworkPolicy's `podSelector: {}`) is its zero value, owned by
/// nobody.
#[test]
fn raw_json_is_a_leaf_and_zero_structs_are_not_owned() {
    let create = |group: &str, kind: &str, api_version: &str, obj: Value| {
        let node = builtins().kind(group, "v1", kind).expect("kind");
        let r = Request {
            api_version,
            kind,
            ..req("unknown", Operation::Update)
        };
        update(None, &obj, node, &r).expect("update")
    };
    let rev = create(
        "apps",
        "ControllerRevision",
        "apps/v1",
        json!({"metadata": {"name": "r"}, "revision": 3,
            "data": {"spec": {"template": {"metadata": {"labels": {"app": "t"}}}}}}),
    );
    assert_eq!(
        fields_of(&rev),
        [(
            "unknown/Update".to_string(),
            json!({"f:data": {}, "f:revision": {}})
        )]
    );
    let policy = create(
        "networking.k8s.io",
        "NetworkPolicy",
        "networking.k8s.io/v1",
        json!({"metadata": {"name": "n"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    );
    assert_eq!(
        fields_of(&policy),
        [(
            "unknown/Update".to_string(),
            json!({"f:spec": {"f:policyTypes": {}}})
        )]
    );
}
