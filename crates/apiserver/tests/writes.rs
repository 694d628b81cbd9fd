//! Writes as kube-apiserver takes them, over real HTTPS: field validation (Strict, Warn,
//! Ignore), type errors, strategic merge patch, server-side apply with managed fields and
//! conflicts, built-in defaults, CRD structural schemas (validation, pruning, defaults), Service
//! address allocation and the OpenAPI schemas `kubectl explain` reads. Expectations were read
//! off kube-apiserver 1.37.2; `crates/flotilla/tests/fidelity.rs` keeps comparing the two.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use flotilla_apiserver::{Config, Server};
use http::{Method, Request};
use kube::Client;
use serde_json::{Value, json};

async fn start() -> Result<(Server, Client, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.in_memory = true;
    let server = Server::start(config).await?;
    let client = server.client(None).await?;
    Ok((server, client, dir))
}

/// One answer: status code, warnings and the JSON body.
struct Answer {
    code: u16,
    warnings: Vec<String>,
    body: Value,
}

async fn send(
    client: &Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: &Value,
) -> Result<Answer> {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body)?
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("user-agent", "writes-test/1.0")
        .body(bytes)?;
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .with_context(|| path.to_string())?;
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer {
        code,
        warnings,
        body,
    })
}

const JSON: &str = "application/json";
const SMP: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "app", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox:1.36"}]}}}})
}

#[tokio::test]
async fn field_validation_strict_warn_and_ignore() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let mut typo = deployment("typo");
    typo["spec"]["replcas"] = json!(2);
    let body = serde_json::to_string(&typo)?.replacen(
        "\"selector\"",
        "\"paused\":false,\"paused\":true,\"selector\"",
        1,
    );
    let strict = send(
        &client,
        Method::POST,
        &format!("{DEPLOYS}?fieldValidation=Strict"),
        JSON,
        &serde_json::from_str::<Value>(&body)?,
    )
    .await?;
    // (serde_json folds the duplicate while building the Value; send the raw text instead.)
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert_eq!(
        strict.body["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replcas\""
    );
    let raw = Request::builder()
        .method(Method::POST)
        .uri(format!("{DEPLOYS}?fieldValidation=Strict"))
        .header("content-type", JSON)
        .body(body.clone().into_bytes())?;
    let response = client.send(raw.map(kube::client::Body::from)).await?;
    assert_eq!(response.status().as_u16(), 400);
    let text = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    let status: Value = serde_json::from_slice(&text)?;
    assert_eq!(
        status["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replcas\", duplicate field \"spec.paused\""
    );

    let warned = send(&client, Method::POST, DEPLOYS, JSON, &typo).await?;
    assert_eq!(warned.code, 201, "{}", warned.body);
    assert_eq!(
        warned.warnings,
        ["299 - \"unknown field \\\"spec.replcas\\\"\""]
    );
    assert!(warned.body["spec"].get("replcas").is_none(), "pruned");

    typo["metadata"]["name"] = json!("typo2");
    let ignored = send(
        &client,
        Method::POST,
        &format!("{DEPLOYS}?fieldValidation=Ignore"),
        JSON,
        &typo,
    )
    .await?;
    assert_eq!(ignored.code, 201);
    assert!(ignored.warnings.is_empty());
    assert!(ignored.body["spec"].get("replcas").is_none());

    let bogus = send(
        &client,
        Method::POST,
        &format!("{DEPLOYS}?fieldValidation=bogus"),
        JSON,
        &deployment("x"),
    )
    .await?;
    assert_eq!(bogus.code, 422);
    assert_eq!(
        bogus.body["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"bogus\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );

    let mut two = deployment("two");
    two["spec"]["replicas"] = json!("two");
    let wrong = send(&client, Method::POST, DEPLOYS, JSON, &two).await?;
    assert_eq!(wrong.code, 400);
    assert_eq!(
        wrong.body["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    // Nothing was stored, so a typed list of the namespace still decodes.
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), "default");
    let names: Vec<String> = api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    assert_eq!(names, ["typo", "typo2"]);
    Ok(())
}

#[tokio::test]
async fn strategic_merge_patches_merge_lists_by_their_keys() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let created = send(&client, Method::POST, DEPLOYS, JSON, &deployment("web")).await?;
    assert_eq!(created.code, 201, "{}", created.body);
    let path = format!("{DEPLOYS}/web");
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}}});
    let patched = send(&client, Method::PATCH, &path, SMP, &image).await?;
    assert_eq!(patched.code, 200, "{}", patched.body);
    let containers = &patched.body["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "nginx:1.28");
    assert_eq!(containers[0]["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(containers[1]["name"], "sidecar");
    let recreate = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let patched = send(&client, Method::PATCH, &path, SMP, &recreate).await?;
    assert_eq!(patched.code, 200, "{}", patched.body);
    assert_eq!(
        patched.body["spec"]["strategy"],
        json!({"type": "Recreate"})
    );
    let drop = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}});
    let patched = send(&client, Method::PATCH, &path, SMP, &drop).await?;
    let names: Vec<&Value> = patched.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .context("containers")?
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, [&json!("app")]);
    Ok(())
}

fn managers(obj: &Value) -> Vec<(String, String, Value)> {
    let mut out: Vec<(String, String, Value)> = obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[tokio::test]
async fn server_side_apply_tracks_owners_conflicts_and_removals() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
    let path = "/api/v1/namespaces/default/configmaps/c";
    let missing = send(&client, Method::PATCH, path, APPLY, &cm(json!({"a": "1"}))).await?;
    assert_eq!(missing.code, 422);
    assert_eq!(
        missing.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let one = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=one"),
        APPLY,
        &cm(json!({"a": "1", "b": "1"})),
    )
    .await?;
    assert_eq!(one.code, 201, "apply creates: {}", one.body);
    assert_eq!(
        managers(&one.body),
        [(
            "one".to_string(),
            "Apply".to_string(),
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        )]
    );
    let conflict = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=two"),
        APPLY,
        &cm(json!({"a": "2"})),
    )
    .await?;
    assert_eq!(conflict.code, 409, "{}", conflict.body);
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"one\": .data.a"
    );
    assert_eq!(
        conflict.body["details"]["causes"],
        json!([{"reason": "FieldManagerConflict", "message": "conflict with \"one\"", "field": ".data.a"}])
    );
    // The same value is shared ownership, not a conflict.
    let shared = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=two"),
        APPLY,
        &cm(json!({"a": "1"})),
    )
    .await?;
    assert_eq!(shared.code, 200, "{}", shared.body);
    let forced = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=two&force=true"),
        APPLY,
        &cm(json!({"a": "2"})),
    )
    .await?;
    assert_eq!(forced.code, 200);
    assert_eq!(forced.body["data"], json!({"a": "2", "b": "1"}));
    // `one` stops sending b: nobody else owns it, so it goes; a stays (two owns it).
    let dropped = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=one"),
        APPLY,
        &cm(json!({})),
    )
    .await?;
    assert_eq!(dropped.code, 200, "{}", dropped.body);
    assert_eq!(dropped.body["data"], json!({"a": "2"}));
    // An update takes ownership without conflicts; the applier then conflicts with it.
    let updated = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=editor"),
        "application/merge-patch+json",
        &json!({"data": {"a": "3"}}),
    )
    .await?;
    assert_eq!(updated.code, 200);
    let m = managers(&updated.body);
    assert!(
        m.contains(&(
            "editor".to_string(),
            "Update".to_string(),
            json!({"f:data": {"f:a": {}}})
        )),
        "{m:?}"
    );
    let again = send(
        &client,
        Method::PATCH,
        &format!("{path}?fieldManager=two"),
        APPLY,
        &cm(json!({"a": "2"})),
    )
    .await?;
    assert_eq!(again.code, 409);
    // A create without fieldManager is recorded under the User-Agent's product name.
    let created = send(
        &client,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        JSON,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "data": {"k": "v"}}),
    )
    .await?;
    assert_eq!(
        managers(&created.body),
        [(
            "writes-test".to_string(),
            "Update".to_string(),
            json!({"f:data": {".": {}, "f:k": {}}})
        )]
    );
    // A no-op update changes nothing, not even the resourceVersion.
    let rv = created.body["metadata"]["resourceVersion"].clone();
    let same = send(
        &client,
        Method::PUT,
        "/api/v1/namespaces/default/configmaps/u",
        JSON,
        &created.body,
    )
    .await?;
    assert_eq!(same.code, 200);
    assert_eq!(same.body["metadata"]["resourceVersion"], rv);
    Ok(())
}

#[tokio::test]
async fn built_in_kinds_get_kube_apiservers_defaults_and_validation() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let d = send(&client, Method::POST, DEPLOYS, JSON, &deployment("d")).await?;
    assert_eq!(d.code, 201, "{}", d.body);
    let spec = &d.body["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        pod["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let mut bad = deployment("bad");
    bad["spec"]["replicas"] = json!(-1);
    bad["spec"]["template"]["spec"]["containers"][1]["image"] = json!("");
    bad["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    let invalid = send(&client, Method::POST, DEPLOYS, JSON, &bad).await?;
    assert_eq!(invalid.code, 422, "{}", invalid.body);
    let mut fields: Vec<&str> = invalid.body["details"]["causes"]
        .as_array()
        .context("causes")?
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "spec.replicas",
            "spec.template.metadata.labels",
            "spec.template.spec.containers[1].image"
        ]
    );

    let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
    let services = "/api/v1/namespaces/default/services";
    let a = send(
        &client,
        Method::POST,
        services,
        JSON,
        &svc("a", json!({"ports": [{"port": 80}]})),
    )
    .await?;
    let b = send(
        &client,
        Method::POST,
        services,
        JSON,
        &svc("b", json!({"ports": [{"port": 80}], "type": "NodePort"})),
    )
    .await?;
    assert_eq!((a.code, b.code), (201, 201), "{} {}", a.body, b.body);
    let ip = a.body["spec"]["clusterIP"]
        .as_str()
        .context("clusterIP")?
        .to_string();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(a.body["spec"]["clusterIPs"], json!([ip]));
    assert_ne!(a.body["spec"]["clusterIP"], b.body["spec"]["clusterIP"]);
    assert_eq!(a.body["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(a.body["spec"]["ports"][0]["protocol"], "TCP");
    let node_port = b.body["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .context("nodePort")?;
    assert!((30000..=32767).contains(&node_port));
    let headless = send(
        &client,
        Method::POST,
        services,
        JSON,
        &svc("h", json!({"clusterIP": "None", "ports": [{"port": 80}]})),
    )
    .await?;
    assert_eq!(headless.body["spec"]["clusterIPs"], json!(["None"]));
    // A replace that leaves the address out keeps it; one that changes it is refused.
    let mut replace = svc("a", json!({"ports": [{"port": 8080}]}));
    replace["metadata"]["resourceVersion"] = a.body["metadata"]["resourceVersion"].clone();
    let kept = send(
        &client,
        Method::PUT,
        &format!("{services}/a"),
        JSON,
        &replace,
    )
    .await?;
    assert_eq!(kept.code, 200, "{}", kept.body);
    assert_eq!(kept.body["spec"]["clusterIP"], json!(ip));
    let moved = send(
        &client,
        Method::PATCH,
        &format!("{services}/a"),
        "application/merge-patch+json",
        &json!({"spec": {"clusterIP": "10.96.9.9", "clusterIPs": ["10.96.9.9"]}}),
    )
    .await?;
    assert_eq!(moved.code, 422, "{}", moved.body);
    Ok(())
}

async fn served(client: &Client, path: &str) -> Result<()> {
    for _ in 0..100 {
        if send(client, Method::GET, path, JSON, &Value::Null)
            .await?
            .code
            == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{path} not served")
}

#[tokio::test]
async fn custom_resources_follow_their_structural_schema() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let crd = |schema: Value| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]}})
    };
    let not_structural = send(
        &client,
        Method::POST,
        crds,
        JSON,
        &crd(json!({"type": "object",
        "properties": {"spec": {"properties": {"a": {"type": "array"}}}}})),
    )
    .await?;
    assert_eq!(not_structural.code, 422, "{}", not_structural.body);
    let no_schema = send(&client, Method::POST, crds, JSON, &{
        let mut c = crd(json!({}));
        c["spec"]["versions"][0]
            .as_object_mut()
            .context("version")?
            .remove("schema");
        c
    })
    .await?;
    assert_eq!(no_schema.code, 422);
    assert_eq!(
        no_schema.body["details"]["causes"][0]["field"],
        "spec.versions[0].schema.openAPIV3Schema"
    );
    let ok = send(
        &client,
        Method::POST,
        crds,
        JSON,
        &crd(json!({"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1},
            "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}})),
    )
    .await?;
    assert_eq!(ok.code, 201, "{}", ok.body);
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    served(&client, widgets).await?;
    let w = |name: &str, spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec});
    let created = send(
        &client,
        Method::POST,
        widgets,
        JSON,
        &w("w", json!({"size": 2, "extra": 1, "free": {"z": 1}})),
    )
    .await?;
    assert_eq!(created.code, 201, "{}", created.body);
    assert_eq!(
        created.body["spec"],
        json!({"size": 2, "color": "red", "free": {"z": 1}})
    );
    assert_eq!(
        created.warnings,
        ["299 - \"unknown field \\\"spec.extra\\\"\""]
    );
    let invalid = send(
        &client,
        Method::POST,
        widgets,
        JSON,
        &w("bad", json!({"size": 0, "color": "green"})),
    )
    .await?;
    assert_eq!(invalid.code, 422);
    assert_eq!(
        invalid.body["message"],
        "Widget.example.com \"bad\" is invalid: [spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\", spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1]"
    );
    let smp = send(
        &client,
        Method::PATCH,
        &format!("{widgets}/w"),
        SMP,
        &json!({"spec": {"size": 3}}),
    )
    .await?;
    assert_eq!(smp.code, 415);
    // The creator owns spec.size: a different applied value conflicts until forced.
    let conflict = send(
        &client,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=me"),
        APPLY,
        &w("w", json!({"size": 4})),
    )
    .await?;
    assert_eq!(conflict.code, 409, "{}", conflict.body);
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"writes-test\" using example.com/v1: .spec.size"
    );
    let applied = send(
        &client,
        Method::PATCH,
        &format!("{widgets}/w?fieldManager=me&force=true"),
        APPLY,
        &w("w", json!({"size": 4})),
    )
    .await?;
    assert_eq!(applied.code, 200, "{}", applied.body);
    assert_eq!(applied.body["spec"]["size"], 4);
    Ok(())
}

#[tokio::test]
async fn status_writes_are_their_own_managers() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let d = send(&client, Method::POST, DEPLOYS, JSON, &deployment("s")).await?;
    assert_eq!(d.code, 201, "{}", d.body);
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"},
        "status": {"replicas": 1, "observedGeneration": 1}});
    let applied = send(
        &client,
        Method::PATCH,
        &format!("{DEPLOYS}/s/status?fieldManager=ctrl"),
        APPLY,
        &status,
    )
    .await?;
    assert_eq!(applied.code, 200, "{}", applied.body);
    assert_eq!(applied.body["status"]["replicas"], 1);
    let entry = applied.body["metadata"]["managedFields"]
        .as_array()
        .context("managedFields")?
        .iter()
        .find(|e| e["manager"] == "ctrl")
        .context("ctrl's entry")?
        .clone();
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["subresource"], "status");
    assert_eq!(
        entry["fieldsV1"],
        json!({"f:status": {"f:observedGeneration": {}, "f:replicas": {}}})
    );
    // The status subresource ignores everything but status.
    let spec_through_status = send(
        &client,
        Method::PATCH,
        &format!("{DEPLOYS}/s/status?fieldManager=ctrl2"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 7}, "status": {"replicas": 2}}),
    )
    .await?;
    assert_eq!(spec_through_status.body["spec"]["replicas"], 1);
    assert_eq!(spec_through_status.body["status"]["replicas"], 2);
    Ok(())
}

#[tokio::test]
async fn openapi_documents_carry_schemas_for_explain() -> Result<()> {
    let (_server, client, _dir) = start().await?;
    let root = send(&client, Method::GET, "/openapi/v3", JSON, &Value::Null).await?;
    let url = root.body["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .context("apps/v1 listed")?
        .to_string();
    let doc = send(&client, Method::GET, &url, JSON, &Value::Null).await?;
    let schemas = &doc.body["components"]["schemas"];
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert!(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());
    Ok(())
}
