//! storage.k8s.io/v1: CSIDriver, CSINode, VolumeAttachment; discovery.k8s.io/v1: EndpointSlice.

use serde_json::{Value, json};

use super::util::*;

/// `SetDefaults_CSIDriver` and the zero values Go writes for a CSINode's drivers.
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    match kind {
        "CSIDriver" => {
            let Some(spec) = ensure_obj(obj, "spec") else {
                return;
            };
            set_default(spec, "attachRequired", json!(true));
            set_default(spec, "podInfoOnMount", json!(false));
            set_default(spec, "storageCapacity", json!(false));
            set_default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
            set_default(spec, "requiresRepublish", json!(false));
            if spec
                .get("volumeLifecycleModes")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
            }
            set_default(spec, "seLinuxMount", json!(false));
            set_default(spec, "preventPodSchedulingIfMissing", json!(false));
        }
        "CSINode" => {
            if let Some(spec) = obj_at(obj, "spec") {
                for d in each_obj(spec, "drivers") {
                    d.entry("topologyKeys").or_insert(Value::Null);
                }
            }
        }
        _ => {}
    }
}

/// A new CSINode's and VolumeAttachment's status, as Go writes their zero values.
pub(crate) fn prepare_for_create(kind: &str, obj: &mut Obj) {
    match kind {
        "CSINode" => {
            ensure_obj(obj, "status");
        }
        "VolumeAttachment" => {
            if let Some(st) = ensure_obj(obj, "status") {
                set_default(st, "attached", json!(false));
            }
        }
        _ => {}
    }
}

/// What kube warns about on a CSIDriver write.
pub(crate) fn warnings(kind: &str, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if kind == "CSIDriver"
        && let Some(spec) = get(obj, "spec")
        && !arr(spec, "tokenRequests").is_empty()
        && get(spec, "serviceAccountTokenInSecrets").is_none()
    {
        out.push("spec.serviceAccountTokenInSecrets is unset; if supported by this CSI driver, set to true to prevent possible logging of tokens in volume attributes".to_string());
    }
    out
}

/// An EndpointSlice's ports default to TCP and name `""`; Go writes each endpoint's
/// `conditions`.
pub(crate) fn default_endpoint_slice(obj: &mut Obj) {
    for p in each_obj(obj, "ports") {
        set_default(p, "name", json!(""));
        set_default(p, "protocol", json!("TCP"));
    }
    for e in each_obj(obj, "endpoints") {
        ensure_obj(e, "conditions");
    }
}
