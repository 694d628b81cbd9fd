//! The one way controllers write status they share with other controllers: server-side apply
//! of only the fields and conditions the writer owns, forced (the writer is the only one that
//! sets them), through the `/status` subresource. The CRDs mark `conditions` as a list-map keyed
//! by `type`, so each writer's conditions stay its own and another writer's are never erased.
//! Owns the write only; callers decide the status.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One status write.
#[derive(Clone, Debug)]
pub struct StatusWrite<'a> {
    /// The writer's field manager (`flotilla-<controller>`).
    pub field_manager: &'a str,
    /// The status fields the writer owns, with only its own conditions (see [`owned`]).
    pub owned: Value,
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
/// The client error of the write.
pub async fn write<K>(api: &Api<K>, object: &K, write: StatusWrite<'_>) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let apply = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": write.owned,
    });
    let params = PatchParams::apply(write.field_manager).force();
    api.patch_status(&object.name_any(), &params, &Patch::Apply(&apply))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
