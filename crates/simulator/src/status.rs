//! Status writes and the clock: whether an object's status already says everything the
//! simulator would write (so an unchanged pass writes nothing and never wakes itself), the
//! forced server-side apply through `/status` under [`crate::FIELD_MANAGER`], conditions that
//! keep their transition time while their status holds, and timestamps at the precision the
//! API keeps. Owns no decision about what a status should be.

use std::time::Duration;

use flotilla_api::quantity::parse_millis_str;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::FIELD_MANAGER;

/// Now, at the precision of `metav1.Time` (seconds), so what is written reads back equal.
pub(crate) fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Now, at the precision of `metav1.MicroTime`.
pub(crate) fn now_micro() -> MicroTime {
    MicroTime(
        Timestamp::from_microsecond(Timestamp::now().as_microsecond())
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

/// How long since `time` (zero when it is in the future).
pub(crate) fn elapsed(time: &Time) -> Duration {
    let since = Timestamp::now().duration_since(time.0);
    if since.is_negative() {
        Duration::ZERO
    } else {
        since.unsigned_abs()
    }
}

/// How long until `period` has passed since `time` (zero once it has).
pub(crate) fn remaining(time: &Time, period: Duration) -> Duration {
    period.saturating_sub(elapsed(time))
}

/// Whether a value is what kube-apiserver leaves out when it writes JSON (`omitempty`): a
/// missing field reads as it.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}

/// Whether `current` already holds everything in `desired`: objects key by key (extra keys in
/// `current` are someone else's; a missing key holds an empty value, as kube-apiserver omits
/// those), lists of objects keyed by `type` or `name` (the list-map keys of conditions,
/// addresses and container statuses) item by item, other values equal.
pub(crate) fn covers(current: &Value, desired: &Value) -> bool {
    match (current, desired) {
        (Value::Object(current), Value::Object(desired)) => {
            desired.iter().all(|(key, want)| match current.get(key) {
                Some(have) => covers(have, want),
                None => is_empty(want),
            })
        }
        (Value::Null, want) => is_empty(want),
        (Value::Array(current), Value::Array(desired)) => {
            let keyed = |key: &str| desired.iter().all(|d| d.get(key).is_some());
            let key = ["type", "name"].into_iter().find(|k| keyed(k));
            match key {
                Some(key) => desired.iter().all(|want| {
                    current
                        .iter()
                        .find(|have| have.get(key) == want.get(key))
                        .is_some_and(|have| covers(have, want))
                }),
                None => {
                    current.len() == desired.len()
                        && current.iter().zip(desired).all(|(h, w)| covers(h, w))
                }
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        // A quantity the server wrote in its canonical form (`1` for `1000m`) is the same.
        (Value::String(a), Value::String(b)) => {
            a == b
                || matches!(
                    (parse_millis_str(a), parse_millis_str(b)),
                    (Ok(x), Ok(y)) if x == y
                )
        }
        (current, desired) => current == desired,
    }
}

/// Writes `status` (JSON) as `object`'s status through `/status` unless the object already
/// says it; returns whether it wrote.
///
/// # Errors
///
/// The client error of the write.
pub(crate) async fn write<K>(api: &Api<K>, object: &K, status: Value) -> kube::Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + serde::Serialize,
{
    let current = serde_json::to_value(object)
        .ok()
        .and_then(|mut v| v.get_mut("status").map(Value::take))
        .unwrap_or(Value::Null);
    if covers(&current, &status) {
        return Ok(false);
    }
    flotilla_runtime::status::write(
        api,
        object,
        flotilla_runtime::status::StatusWrite {
            field_manager: FIELD_MANAGER,
            owned: status,
        },
    )
    .await?;
    tracing::debug!(name = %object.name_any(), "status written");
    Ok(true)
}

/// A condition as JSON, keeping `lastTransitionTime` (and `lastUpdateTime` when `updates`)
/// from `previous` when its status (or, for the update time, status, reason and message) is
/// unchanged.
pub(crate) fn condition(
    previous: Option<&Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &Time,
    updates: bool,
) -> Value {
    let find = |c: &&Value| c.get("type").and_then(Value::as_str) == Some(type_);
    let before = previous
        .and_then(Value::as_array)
        .and_then(|list| list.iter().find(find));
    let same_status = before.and_then(|b| b.get("status")).and_then(Value::as_str) == Some(status);
    let same_all = same_status
        && before.and_then(|b| b.get("reason")).and_then(Value::as_str) == Some(reason)
        && before
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            == Some(message);
    let stamp = serde_json::to_value(now).unwrap_or(Value::Null);
    let keep = |field: &str, same: bool| {
        before
            .and_then(|b| b.get(field))
            .filter(|v| same && !v.is_null())
            .cloned()
            .unwrap_or_else(|| stamp.clone())
    };
    let mut out = serde_json::json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": keep("lastTransitionTime", same_status),
    });
    if updates && let Some(o) = out.as_object_mut() {
        o.insert("lastUpdateTime".into(), keep("lastUpdateTime", same_all));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn covers_reads_list_maps_by_key_and_ignores_other_writers_fields() {
        let current = json!({"replicas": 3, "other": 1, "conditions": [
            {"type": "Progressing", "status": "True", "reason": "A"},
            {"type": "Available", "status": "True", "reason": "B", "extra": 1}]});
        assert!(covers(
            &current,
            &json!({"replicas": 3, "conditions": [
            {"type": "Available", "status": "True", "reason": "B"}]})
        ));
        assert!(!covers(&current, &json!({"replicas": 4})));
        assert!(!covers(
            &current,
            &json!({"conditions": [
            {"type": "Available", "status": "False"}]})
        ));
        assert!(!covers(&current, &json!({"readyReplicas": 1})));
        // kube-apiserver leaves zero values out.
        assert!(covers(
            &current,
            &json!({"missing": null, "readyReplicas": 0, "flag": false,
            "text": "", "list": [], "object": {"n": 0}})
        ));
        assert!(!covers(&json!({"replicas": 2}), &json!({"replicas": 0})));
        assert!(covers(&json!({"n": 1}), &json!({"n": 1.0})));
        assert!(!covers(&json!({"ips": ["a", "b"]}), &json!({"ips": ["a"]})));
        assert!(covers(&json!({"cpu": "1"}), &json!({"cpu": "1000m"})));
        assert!(!covers(&json!({"cpu": "1"}), &json!({"cpu": "1001m"})));
    }

    #[test]
    fn conditions_keep_their_times_while_their_status_holds() {
        let then = json!([{"type": "Ready", "status": "True", "reason": "A", "message": "",
            "lastTransitionTime": "2020-01-01T00:00:00Z", "lastUpdateTime": "2020-01-01T00:00:00Z"}]);
        let now = now();
        let same = condition(Some(&then), "Ready", "True", "A", "", &now, true);
        assert_eq!(same["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(same["lastUpdateTime"], "2020-01-01T00:00:00Z");
        let reworded = condition(Some(&then), "Ready", "True", "B", "", &now, true);
        assert_eq!(reworded["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_ne!(reworded["lastUpdateTime"], "2020-01-01T00:00:00Z");
        let flipped = condition(Some(&then), "Ready", "False", "A", "", &now, false);
        assert_ne!(flipped["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert!(flipped.get("lastUpdateTime").is_none());
    }
}
