"""Scenarios for the official Python Kubernetes client against the test hub.

Run by crates/flotilla/tests/clients_python.rs as

    python clients.py SCENARIO NAMESPACE

with KUBECONFIG set. Each scenario asserts on concrete values the server returned and prints
``ok SCENARIO`` last; a failed assertion exits non-zero with the reason.
"""

import json
import os
import sys
import tempfile
import time

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ConflictError


def check(cond, what, got=None):
    if not cond:
        raise AssertionError(what if got is None else f"{what}: got {got!r}")


def expect_api_error(call, statuses, what):
    try:
        result = call()
    except ApiException as err:
        check(err.status in statuses, f"{what}: status in {statuses}", (err.status, err.body))
        return err
    raise AssertionError(f"{what}: the call succeeded but must fail: {result!r}")


def web(name, replicas=2):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "nginx:1.25",
                         "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "busybox:1.36",
                         "command": ["sleep", "infinity"]},
                    ]
                },
            },
        },
    }


def dynamic_client():
    # Discovery is cached in a file; keep it in this run's fresh HOME, never shared.
    cache = tempfile.mkstemp(prefix="discovery-", suffix=".json", dir=os.environ["HOME"])[1]
    os.unlink(cache)
    return dynamic.DynamicClient(client.ApiClient(), cache_file=cache)


def containers(deployment):
    return [(c.name, c.image) for c in deployment.spec.template.spec.containers]


def typed_strategic_patch(ns):
    apps = client.AppsV1Api()
    apps.create_namespaced_deployment(ns, web("web"))
    # A dict body: the client sends it as a strategic merge patch, so containers merge by name.
    patched = apps.patch_namespaced_deployment(
        "web", ns,
        {"spec": {"replicas": 3,
                  "template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}},
    )
    check(containers(patched) == [("app", "nginx:2"), ("sidecar", "busybox:1.36")],
          "the patch response merges containers by name", containers(patched))
    check(patched.spec.replicas == 3, "replicas in the patch response", patched.spec.replicas)
    live = apps.read_namespaced_deployment("web", ns)
    check(containers(live) == [("app", "nginx:2"), ("sidecar", "busybox:1.36")],
          "the stored containers", containers(live))
    env = [(e.name, e.value) for e in live.spec.template.spec.containers[0].env]
    check(env == [("A", "1")], "the patched container keeps its env", env)
    check(live.metadata.generation == 2, "generation after a spec patch", live.metadata.generation)
    # A list element removed with the $patch: delete directive.
    apps.patch_namespaced_deployment(
        "web", ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
    )
    live = apps.read_namespaced_deployment("web", ns)
    check(containers(live) == [("app", "nginx:2")], "$patch: delete removes the sidecar",
          containers(live))


def configmap_patch(ns):
    core = client.CoreV1Api()
    core.create_namespaced_config_map(
        ns, {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "cm", "labels": {"keep": "yes", "drop": "yes"}},
             "data": {"a": "1", "b": "2"}})
    patched = core.patch_namespaced_config_map(
        "cm", ns, {"metadata": {"labels": {"drop": None}}, "data": {"a": None, "c": "3"}})
    check(patched.data == {"b": "2", "c": "3"}, "a null deletes a key, others merge", patched.data)
    check(patched.metadata.labels == {"keep": "yes"}, "labels after the patch",
          patched.metadata.labels)
    live = core.read_namespaced_config_map("cm", ns)
    check(live.data == {"b": "2", "c": "3"}, "the stored data", live.data)


def data_keys(entry):
    fields = entry.get("fieldsV1", {}).get("f:data", {})
    return sorted(k[2:] for k in fields if k.startswith("f:"))


def dynamic_server_side_apply(ns):
    dyn = dynamic_client()
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")

    def body(data):
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": ns}, "data": data}

    applied = cms.server_side_apply(body({"color": "red", "size": "big"}), field_manager="alice")
    check(dict(applied.data) == {"color": "red", "size": "big"}, "alice's apply", applied.data)

    try:
        cms.server_side_apply(body({"color": "blue"}), field_manager="bob")
        raise AssertionError("bob's conflicting apply must fail with 409")
    except ConflictError as err:
        check(err.status == 409, "a conflict is a 409", err.status)
        status = json.loads(err.body)
        check(status.get("reason") == "Conflict", "reason Conflict", status)
        message = status.get("message", "")
        check('conflict with "alice"' in message and ".data.color" in message,
              "the conflict names alice and .data.color", message)
        causes = status.get("details", {}).get("causes", [])
        check([c.get("field") for c in causes] == [".data.color"],
              "one cause, for .data.color", causes)
        check(causes[0].get("reason") == "FieldManagerConflict",
              "the cause is a FieldManagerConflict", causes)
    live = cms.get(name="settings", namespace=ns)
    check(live.data.color == "red", "a refused apply changes nothing", live.data)

    forced = cms.server_side_apply(body({"color": "blue"}), field_manager="bob",
                                   force_conflicts=True)
    check(dict(forced.data) == {"color": "blue", "size": "big"}, "bob forced color", forced.data)
    entries = {(e["manager"], e["operation"]): e
               for e in forced.to_dict()["metadata"]["managedFields"]}
    check(("bob", "Apply") in entries and ("alice", "Apply") in entries,
          "both managers have Apply entries", list(entries))
    check(data_keys(entries[("bob", "Apply")]) == ["color"], "bob owns color",
          entries[("bob", "Apply")])
    check(data_keys(entries[("alice", "Apply")]) == ["size"], "alice keeps only size",
          entries[("alice", "Apply")])


GROUP = "test.flotilla.io"
PLURAL = "gadgets"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "gadget", "kind": "Gadget"},
        "versions": [{
            "name": "v1",
            "served": True,
            "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "size": {"type": "integer", "minimum": 1, "default": 3},
                            "color": {"type": "string", "enum": ["red", "blue"],
                                      "default": "red"},
                            "options": {
                                "type": "object",
                                "default": {},
                                "properties": {
                                    "retries": {"type": "integer", "default": 2},
                                },
                            },
                        },
                    },
                },
            }},
        }],
    },
}


def crd_structural_schema(ns):
    ext = client.ApiextensionsV1Api()
    ext.create_custom_resource_definition(CRD)
    deadline = time.time() + 30
    while True:
        crd = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        conditions = {c.type: c.status for c in (crd.status.conditions or [])} if crd.status else {}
        if conditions.get("Established") == "True":
            break
        check(time.time() < deadline, "the CRD is Established within 30s", conditions)
        time.sleep(0.2)
    custom = client.CustomObjectsApi()

    def gadget(name, spec, **extra):
        return {"apiVersion": f"{GROUP}/v1", "kind": "Gadget",
                "metadata": {"name": name}, "spec": spec, **extra}

    # Create until discovery of the new group settles (a fresh CRD may 404 for a moment).
    while True:
        try:
            created = custom.create_namespaced_custom_object(
                GROUP, "v1", ns, PLURAL,
                gadget("g1", {"name": "first", "extra": "dropped"}, bogus=1))
            break
        except ApiException as err:
            check(err.status == 404 and time.time() < deadline, "create the first Gadget",
                  (err.status, err.body))
            time.sleep(0.2)
    want = {"name": "first", "size": 3, "color": "red", "options": {"retries": 2}}
    check(created["spec"] == want, "defaults filled in and the unknown field pruned (create)",
          created["spec"])
    check("bogus" not in created, "an unknown top-level field is pruned", created)
    stored = custom.get_namespaced_custom_object(GROUP, "v1", ns, PLURAL, "g1")
    check(stored["spec"] == want, "defaults and pruning are stored", stored["spec"])

    # Given values are kept; defaults apply inside a given object too.
    created = custom.create_namespaced_custom_object(
        GROUP, "v1", ns, PLURAL,
        gadget("g2", {"name": "second", "size": 7, "color": "blue", "options": {}}))
    check(created["spec"] == {"name": "second", "size": 7, "color": "blue",
                              "options": {"retries": 2}},
          "given values kept, nested default applied", created["spec"])

    # Strict field validation refuses the unknown field instead of pruning it.
    err = expect_api_error(
        lambda: custom.create_namespaced_custom_object(
            GROUP, "v1", ns, PLURAL, gadget("g3", {"name": "third", "extra": 1}),
            field_validation="Strict"),
        (400,), "Strict refuses an unknown field")
    check('unknown field "spec.extra"' in json.loads(err.body).get("message", ""),
          "Strict names the unknown field", err.body)

    # Violations: one cause per field path.
    err = expect_api_error(
        lambda: custom.create_namespaced_custom_object(
            GROUP, "v1", ns, PLURAL, gadget("bad", {"size": 0, "color": "green"})),
        (422,), "schema violations")
    status = json.loads(err.body)
    check(status.get("reason") == "Invalid", "reason Invalid", status)
    check(status.get("details", {}).get("kind") == "Gadget"
          and status["details"].get("name") == "bad", "details name the object", status)
    causes = {c.get("field"): c.get("reason") for c in status["details"].get("causes", [])}
    check(causes == {"spec.size": "FieldValueInvalid", "spec.color": "FieldValueNotSupported",
                     "spec.name": "FieldValueRequired"},
          "one cause per violated field", status["details"].get("causes"))
    check(len(status["details"]["causes"]) == 3, "exactly three causes", status["details"])
    expect_api_error(lambda: custom.get_namespaced_custom_object(GROUP, "v1", ns, PLURAL, "bad"),
                     (404,), "an invalid object is not stored")

    # An update that violates the schema is refused too.
    err = expect_api_error(
        lambda: custom.patch_namespaced_custom_object(
            GROUP, "v1", ns, PLURAL, "g1", {"spec": {"size": -5}}),
        (422,), "a patch below the minimum")
    fields = [c.get("field") for c in json.loads(err.body)["details"]["causes"]]
    check(fields == ["spec.size"], "the patch's cause", fields)
    stored = custom.get_namespaced_custom_object(GROUP, "v1", ns, PLURAL, "g1")
    check(stored["spec"]["size"] == 3, "a refused patch changes nothing", stored["spec"])


def wrong_type_rejected(ns):
    apps = client.AppsV1Api()
    apps.create_namespaced_deployment(ns, web("good", replicas=1))
    bad = web("bad")
    bad["spec"]["replicas"] = "two"
    # The typed API checks types itself (pydantic) and would never send this; the dynamic
    # client sends the body as it is, so the server has to refuse it.
    deployments = dynamic_client().resources.get(
        api_version="apps/v1", kind="Deployment")
    err = expect_api_error(lambda: deployments.create(body=bad, namespace=ns), (400, 422),
                           'replicas "two"')
    status = json.loads(err.body)
    check(status.get("kind") == "Status" and status.get("status") == "Failure",
          "a Status body", status)
    check("replicas" in status.get("message", ""), "the message names replicas", status)
    # The typed list still decodes: nothing malformed was stored.
    listed = apps.list_namespaced_deployment(ns)
    check([d.metadata.name for d in listed.items] == ["good"], "only the good Deployment",
          [d.metadata.name for d in listed.items])
    check(listed.items[0].spec.replicas == 1, "typed replicas", listed.items[0].spec.replicas)
    expect_api_error(lambda: apps.read_namespaced_deployment("bad", ns), (404,),
                     "the bad Deployment was not stored")


def typed_lists_of_every_group(ns):
    # Each group's typed API lists (and so decodes) what the server answers, and creates one
    # object where the kind is namespaced and needs no other object.
    core = client.CoreV1Api()
    lists = {
        "pods": lambda: core.list_namespaced_pod(ns),
        "services": lambda: core.list_namespaced_service(ns),
        "persistentvolumes": core.list_persistent_volume,
        "resourcequotas": lambda: core.list_namespaced_resource_quota(ns),
        "limitranges": lambda: core.list_namespaced_limit_range(ns),
        "endpoints": lambda: core.list_namespaced_endpoints(ns),
        "nodes": core.list_node,
        "deployments": lambda: client.AppsV1Api().list_namespaced_deployment(ns),
        "jobs": lambda: client.BatchV1Api().list_namespaced_job(ns),
        "horizontalpodautoscalers":
            lambda: client.AutoscalingV2Api().list_namespaced_horizontal_pod_autoscaler(ns),
        "poddisruptionbudgets":
            lambda: client.PolicyV1Api().list_namespaced_pod_disruption_budget(ns),
        "storageclasses": client.StorageV1Api().list_storage_class,
        "csidrivers": client.StorageV1Api().list_csi_driver,
        "volumeattachments": client.StorageV1Api().list_volume_attachment,
        "endpointslices": lambda: client.DiscoveryV1Api().list_namespaced_endpoint_slice(ns),
        "priorityclasses": client.SchedulingV1Api().list_priority_class,
        "runtimeclasses": client.NodeV1Api().list_runtime_class,
        "ingresses": lambda: client.NetworkingV1Api().list_namespaced_ingress(ns),
        "networkpolicies": lambda: client.NetworkingV1Api().list_namespaced_network_policy(ns),
        "leases": lambda: client.CoordinationV1Api().list_namespaced_lease(ns),
        "roles": lambda: client.RbacAuthorizationV1Api().list_namespaced_role(ns),
    }
    for name, call in lists.items():
        listed = call()
        check(isinstance(listed.items, list), f"{name}: a typed list", listed)
    client.PolicyV1Api().create_namespaced_pod_disruption_budget(ns, {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    client.AutoscalingV2Api().create_namespaced_horizontal_pod_autoscaler(ns, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 3}})
    client.DiscoveryV1Api().create_namespaced_endpoint_slice(ns, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "es"},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]})
    pdb = client.PolicyV1Api().read_namespaced_pod_disruption_budget("pdb", ns)
    check(pdb.spec.min_available == 1, "the PDB reads back typed", pdb.spec)
    hpa = client.AutoscalingV2Api().read_namespaced_horizontal_pod_autoscaler("hpa", ns)
    check(hpa.spec.max_replicas == 3, "the HPA reads back typed", hpa.spec)
    slices = client.DiscoveryV1Api().list_namespaced_endpoint_slice(ns).items
    check([s.endpoints[0].addresses for s in slices] == [["10.0.0.1"]], "the EndpointSlice",
          slices)


def garbage_collection(ns):
    core = client.CoreV1Api()

    def owned(name, owner):
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name,
               "uid": owner.metadata.uid, "blockOwnerDeletion": True}
        return core.create_namespaced_config_map(ns, {
            "metadata": {"name": name, "ownerReferences": [ref]}})

    def wait_gone(name):
        for _ in range(600):
            try:
                core.read_namespaced_config_map(name, ns)
            except ApiException as err:
                if err.status == 404:
                    return
                raise
            time.sleep(0.1)
        raise AssertionError(f"{name} was not collected")

    for policy in ("Background", "Foreground", "Orphan"):
        owner = core.create_namespaced_config_map(ns, {"metadata": {"name": f"owner-{policy.lower()}"}})
        owned(f"dep-{policy.lower()}", owner)
        answer = core.delete_namespaced_config_map(
            owner.metadata.name, ns, body=client.V1DeleteOptions(propagation_policy=policy))
        # The typed call's V1Status model cannot hold the object kube answers: it is a dict.
        finalizers = (answer.get("metadata") or {}).get("finalizers") \
            if isinstance(answer, dict) else None
        if policy == "Foreground":
            check(finalizers == ["foregroundDeletion"],
                  "a foreground delete answers the owner held", answer)
        if policy == "Orphan":
            check(finalizers == ["orphan"], "an orphaning delete answers the owner held", answer)
        wait_gone(owner.metadata.name)
        if policy == "Orphan":
            kept = core.read_namespaced_config_map(f"dep-{policy.lower()}", ns)
            check(not kept.metadata.owner_references, "the dependent is orphaned",
                  kept.metadata.owner_references)
        else:
            wait_gone(f"dep-{policy.lower()}")


SCENARIOS = {
    "typed-lists-of-every-group": typed_lists_of_every_group,
    "garbage-collection": garbage_collection,
    "typed-strategic-patch": typed_strategic_patch,
    "configmap-patch": configmap_patch,
    "dynamic-server-side-apply": dynamic_server_side_apply,
    "crd-structural-schema": crd_structural_schema,
    "wrong-type-rejected": wrong_type_rejected,
}


def main():
    scenario, ns = sys.argv[1], sys.argv[2]
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])
    SCENARIOS[scenario](ns)
    print(f"ok {scenario}")


if __name__ == "__main__":
    main()
