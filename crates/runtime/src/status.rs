//! The one way controllers write status they share with other controllers: server-side apply
//! of only the fields and conditions the writer owns (the CRDs mark `conditions` as a list-map
//! keyed by `type`, so each writer's conditions stay its own), or — where the API server
//! answers apply patches with 415 — a JSON merge patch from the status as read to the status
//! wanted, guarded by the resourceVersion it was read at, so a concurrent writer's conditions
//! are never erased. Owns the write only; callers decide the status.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::apply::ServerSideApply;

/// One status write.
#[derive(Clone, Debug)]
pub struct StatusWrite<'a> {
    /// The writer's field manager (`flotilla-<controller>`).
    pub field_manager: &'a str,
    /// The status fields the writer owns, with only its own conditions (see [`owned`]).
    pub owned: Value,
    /// The whole status as read.
    pub before: Value,
    /// The whole status wanted.
    pub after: Value,
}

/// The conditions of `types` in `conditions`: what a writer that owns those types applies.
pub fn owned(conditions: &[Condition], types: &[&str]) -> Vec<Condition> {
    conditions
        .iter()
        .filter(|c| types.contains(&c.type_.as_str()))
        .cloned()
        .collect()
}

/// Writes `object`'s status through its `/status` subresource; returns the object as written.
///
/// # Errors
///
/// The client error of the write (a 409 Conflict when the object changed since it was read and
/// the server has no server-side apply).
pub async fn write<K>(
    api: &Api<K>,
    object: &K,
    ssa: &ServerSideApply,
    write: StatusWrite<'_>,
) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = object.name_any();
    let apply = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": write.owned,
    });
    let params = PatchParams::apply(write.field_manager).force();
    let applied = ssa
        .try_apply(api.patch_status(&name, &params, &Patch::Apply(&apply)))
        .await?;
    if let Some(written) = applied {
        return Ok(written);
    }
    let patch = json!({
        "metadata": {"resourceVersion": object.resource_version()},
        "status": merge_patch(&write.before, &write.after),
    });
    let params = PatchParams {
        field_manager: Some(write.field_manager.to_owned()),
        ..Default::default()
    };
    api.patch_status(&name, &params, &Patch::Merge(&patch))
        .await
}

/// An RFC 7386 JSON merge patch that turns `before` into `after`: changed values, and `null`
/// for removed keys (so a resource that vanished from a summary is removed, not kept).
pub fn merge_patch(before: &Value, after: &Value) -> Value {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = serde_json::Map::new();
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            for (key, value) in new {
                match old.get(key) {
                    Some(previous) if previous == value => {}
                    Some(previous) => {
                        patch.insert(key.clone(), merge_patch(previous, value));
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        _ => after.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_null_removed_keys_and_keep_equal_ones() {
        let table: Vec<(Value, Value, Value)> = vec![
            (json!({"a": 1}), json!({"a": 1}), json!({})),
            (json!({"a": 1}), json!({"a": 2}), json!({"a": 2})),
            (
                json!({"m": {"cpu": "1", "gpu": "2"}, "x": 1}),
                json!({"m": {"cpu": "1"}, "x": 1}),
                json!({"m": {"gpu": null}}),
            ),
            (json!({"l": [1, 2]}), json!({"l": [2]}), json!({"l": [2]})),
            (json!({}), json!({"n": {"a": 1}}), json!({"n": {"a": 1}})),
            (json!({"gone": true}), json!({}), json!({"gone": null})),
        ];
        for (before, after, want) in table {
            assert_eq!(merge_patch(&before, &after), want, "{before} -> {after}");
        }
    }

    #[test]
    fn a_writer_applies_only_its_own_condition_types() {
        let condition = |t: &str| Condition {
            type_: t.to_owned(),
            status: "True".to_owned(),
            reason: "Test".to_owned(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Default::default(),
            ),
        };
        let all = vec![
            condition("Ready"),
            condition("Scheduled"),
            condition("Applied"),
        ];
        let types: Vec<String> = owned(&all, &["Ready", "Applied"])
            .into_iter()
            .map(|c| c.type_)
            .collect();
        assert_eq!(types, ["Ready", "Applied"]);
        assert!(owned(&all, &[]).is_empty());
    }
}
