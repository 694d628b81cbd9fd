//! Server-side apply and managed-fields tracking, as kube-apiserver does it (structured-merge-diff
//! semantics): [`apply`] merges a user's applied configuration into the live object honouring
//! field ownership, [`update`] records which fields any other write changed, and both keep
//! `metadata.managedFields` the way kube renders it.
//!
//! What is tracked: every leaf (scalar, atomic list, atomic map), every map-list and set item,
//! and every map or list that appeared as a whole, as a path in a [`fieldpath::Set`]; never
//! `apiVersion`, `kind`, `metadata` itself nor `metadata.{name, namespace, creationTimestamp,
//! selfLink, uid, clusterName, generation, managedFields, resourceVersion}`.
//!
//! Managers: an `Apply` entry is one per (manager, subresource), whatever apiVersion it applied
//! with; an `Update` entry is one per (manager, apiVersion, subresource). At most ten `Update`
//! entries are kept: older ones are merged into `ancient-changes`.
//!
//! Callers pass `new` (for [`update`]) after the write's defaults were applied, as kube does: the
//! writer owns the defaulted fields; an applied configuration is never defaulted for ownership.

pub mod fieldpath;
pub mod typed;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::Cause;
use crate::schema::{Node, Type};
use fieldpath::{Pe, Set, path_string, value_eq};
use typed::{Ty, compare, ensure_named_fields_are_members, merge, remove_items, to_field_set};

/// The kind of write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
    /// Any other write: create, update, JSON/merge/strategic patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes, how and when.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The field manager (`fieldManager`, or what kube derives from the user agent).
    pub manager: &'a str,
    pub operation: Operation,
    /// The apiVersion of the endpoint written to, e.g. `apps/v1`.
    pub api_version: &'a str,
    /// The kind served there; an applied configuration must say the same.
    pub kind: &'a str,
    /// `""` for the main resource, else `status`, `scale`, ...
    pub subresource: &'a str,
    /// Now, RFC 3339 in seconds (`2024-01-02T03:04:05Z`).
    pub time: &'a str,
    /// `force=true` on an apply: take conflicting fields instead of failing.
    pub force: bool,
    /// Fields this endpoint resets (kube's strategies' `GetResetFields`), as dotted field paths,
    /// e.g. `["status"]` for a main resource with a status subresource: never owned through it
    /// and never a conflict.
    pub reset: &'a [&'a str],
}

/// Why a write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The applied configuration sets fields other managers own with other values (409).
    Conflicts(Vec<Conflict>),
    /// The request is malformed (400): kind or apiVersion not the endpoint's, managedFields in an
    /// applied configuration, a value of the wrong type. kube answers the last with 500; the
    /// message is kube's (`failed to create typed patch object (...): .spec.replicas: expected
    /// numeric (int or float), got string`).
    BadRequest(String),
    /// Explicitly written managedFields are not valid (422), e.g.
    /// `metadata.managedFields[0].manager: Too long: may not be more than 128 bytes`.
    Invalid(Vec<Cause>),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Conflicts(c) => f.write_str(&conflict_message(c)),
            ApplyError::BadRequest(m) => f.write_str(m),
            ApplyError::Invalid(causes) => {
                let parts: Vec<String> = causes
                    .iter()
                    .map(|c| format!("{}: {}", c.field, c.message))
                    .collect();
                f.write_str(&parts.join(", "))
            }
        }
    }
}

impl std::error::Error for ApplyError {}

/// One field another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation; kube names `Update` managers with their apiVersion.
    pub operation: Operation,
    pub api_version: String,
    pub subresource: String,
    /// The field, as kube prints it: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="app"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as kube names it in messages: `"m"`, `"m" with subresource "status"`,
    /// `"m" using apps/v1` (an `Update` manager).
    pub fn manager_display(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {}", go_quote(&self.subresource));
        }
        if self.operation == Operation::Update {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn identifier(&self) -> String {
        Id {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: if self.operation == Operation::Apply {
                String::new()
            } else {
                self.api_version.clone()
            },
            subresource: self.subresource.clone(),
        }
        .identifier()
    }
}

fn go_quote(s: &str) -> String {
    fieldpath::json(&Value::String(s.to_string()))
}

/// kube-apiserver's 409 message: `Apply failed with 1 conflict: conflict with "m1": .spec.replicas`,
/// or for several, `Apply failed with 2 conflicts: conflicts with "m1":\n- .a\n- .b` with the
/// managers in the order of their identifiers.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_display(),
            c.field
        );
    }
    let mut by: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        by.entry(c.identifier())
            .or_insert_with(|| (c.manager_display(), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (display, fields) in by.values() {
        lines.push(format!("conflicts with {display}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// The 409 Status's `details.causes`: reason `FieldManagerConflict`, message
/// `conflict with "<manager>"` (as [`Conflict::manager_display`]), field the path.
pub fn conflict_causes(conflicts: &[Conflict]) -> Vec<Cause> {
    conflicts
        .iter()
        .map(|c| {
            Cause::new(
                "FieldManagerConflict",
                c.field.clone(),
                format!("conflict with {}", c.manager_display()),
            )
        })
        .collect()
}

/// The kube-apiserver 409 Status body for conflicts.
pub fn conflict_status(conflicts: &[Conflict]) -> Value {
    let causes: Vec<Value> = conflict_causes(conflicts)
        .into_iter()
        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
        .collect();
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": conflict_message(conflicts),
        "reason": "Conflict",
        "details": {"causes": causes},
        "code": 409
    })
}

/// A manager's identity: what kube's manager identifier holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Id {
    manager: String,
    operation: Operation,
    /// Empty for `Apply`.
    api_version: String,
    subresource: String,
}

impl Id {
    fn of(req: &Request<'_>) -> Id {
        Id {
            manager: req.manager.to_string(),
            operation: req.operation,
            api_version: match req.operation {
                Operation::Apply => String::new(),
                Operation::Update => req.api_version.to_string(),
            },
            subresource: req.subresource.to_string(),
        }
    }

    /// kube's identifier: the JSON of the entry without fields and time (and without apiVersion
    /// for `Apply`); conflicts are listed in its order.
    fn identifier(&self) -> String {
        let mut s = format!(
            "{{\"manager\":{},\"operation\":\"{}\"",
            go_quote(&self.manager),
            self.operation.as_str()
        );
        if !self.api_version.is_empty() {
            s.push_str(&format!(",\"apiVersion\":{}", go_quote(&self.api_version)));
        }
        if !self.subresource.is_empty() {
            s.push_str(&format!(",\"subresource\":{}", go_quote(&self.subresource)));
        }
        s.push('}');
        s
    }
}

#[derive(Debug, Clone)]
struct Entry {
    api_version: String,
    set: Set,
    time: Option<String>,
}

type Managed = BTreeMap<Id, Entry>;

const CURRENT: &str = "\u{0}current-operation";
const ANCIENT: &str = "ancient-changes";
const MAX_UPDATE_MANAGERS: usize = 10;
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn strip_set() -> Set {
    let mut s = Set::new();
    for p in [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ] {
        s.insert(&fields(p));
    }
    s
}

fn fields(p: &[&str]) -> Vec<Pe> {
    p.iter().map(|f| Pe::Field(f.to_string())).collect()
}

fn reset_set(reset: &[&str]) -> Set {
    let mut s = Set::new();
    for r in reset {
        s.insert(&fields(&r.split('.').collect::<Vec<_>>()));
    }
    s
}

/// Decodes `metadata.managedFields` as kube does; an error means kube would not use them.
fn decode(v: Option<&Value>) -> Result<Managed, String> {
    let mut out = Managed::new();
    let list = match v {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(l)) => l,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    for (i, e) in list.iter().enumerate() {
        let o = e
            .as_object()
            .ok_or_else(|| format!("managed fields entry {i} is not an object"))?;
        let s = |k: &str| -> Result<String, String> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(format!("managed fields entry {i}: {k} must be a string")),
            }
        };
        let operation = match s("operation")?.as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err("operation must be `Apply` or `Update`".into()),
        };
        let api_version = s("apiVersion")?;
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match s("fieldsType")?.as_str() {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            t => {
                return Err(format!(
                    "invalid fieldsType {t:?} in managed fields entry {i}"
                ));
            }
        }
        let set = match o.get("fieldsV1") {
            None | Some(Value::Null) => Set::new(),
            Some(f) => {
                Set::from_fields_v1(f).map_err(|e| format!("error decoding versioned set: {e}"))?
            }
        };
        let time = Some(s("time")?).filter(|t| !t.is_empty());
        let id = Id {
            manager: s("manager")?,
            operation,
            api_version: if operation == Operation::Apply {
                String::new()
            } else {
                api_version.clone()
            },
            subresource: s("subresource")?,
        };
        out.insert(
            id,
            Entry {
                api_version,
                set,
                time,
            },
        );
    }
    Ok(out)
}

/// The checks kube's object-meta validation makes on written managedFields (422 when they fail).
fn validate_entries(v: Option<&Value>) -> Result<(), ApplyError> {
    let Some(Value::Array(list)) = v else {
        return Ok(());
    };
    let mut causes = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let at = |f: &str| format!("metadata.managedFields[{i}].{f}");
        let get = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let manager = get("manager");
        if manager.len() > 128 {
            causes.push(Cause::new(
                "FieldValueTooLong",
                at("manager"),
                "Too long: may not be more than 128 bytes",
            ));
        } else if manager.chars().any(|c| c.is_control()) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                at("manager"),
                format!(
                    "Invalid value: {}: must only contain printable characters",
                    go_quote(manager)
                ),
            ));
        }
        if get("subresource").len() > 256 {
            causes.push(Cause::new(
                "FieldValueTooLong",
                at("subresource"),
                "Too long: may not be more than 256 bytes",
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Invalid(causes))
    }
}

fn time_key(t: &Option<String>) -> &str {
    t.as_deref().map(|t| t.get(..19).unwrap_or(t)).unwrap_or("")
}

/// Encodes managers as kube writes `metadata.managedFields`: `Apply` entries first, then by
/// time, manager, apiVersion and subresource.
fn encode(managed: &Managed) -> Option<Value> {
    let mut entries: Vec<(&Id, &Entry)> =
        managed.iter().filter(|(_, e)| !e.set.is_empty()).collect();
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|(a, x), (b, y)| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| time_key(&x.time).cmp(time_key(&y.time)))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| x.api_version.cmp(&y.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let list = entries
        .into_iter()
        .map(|(id, e)| {
            let mut o = Map::new();
            o.insert("manager".into(), Value::String(id.manager.clone()));
            o.insert("operation".into(), id.operation.as_str().into());
            o.insert("apiVersion".into(), Value::String(e.api_version.clone()));
            if let Some(t) = &e.time {
                o.insert("time".into(), Value::String(t.clone()));
            }
            o.insert("fieldsType".into(), "FieldsV1".into());
            o.insert("fieldsV1".into(), e.set.to_fields_v1());
            if !id.subresource.is_empty() {
                o.insert("subresource".into(), Value::String(id.subresource.clone()));
            }
            Value::Object(o)
        })
        .collect();
    Some(Value::Array(list))
}

fn managed_fields(v: &Value) -> Option<&Value> {
    v.get("metadata").and_then(|m| m.get("managedFields"))
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn with_managed_fields(mut v: Value, managed: &Managed) -> Value {
    let encoded = encode(managed);
    if let Some(o) = v.as_object_mut() {
        let meta = o
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = meta.as_object_mut() {
            match encoded {
                Some(e) => {
                    m.insert("managedFields".into(), e);
                }
                None => {
                    m.remove("managedFields");
                }
            }
        }
    }
    v
}

/// Whether written managedFields ask for a reset: `[]` or `[{}]`.
fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(l)) => {
            l.is_empty() || (l.len() == 1 && l[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

/// Whether `schema` is a built-in kind's (then a created object starts from the kind's zero
/// value, as kube's typed objects do; a custom resource starts from its apiVersion and kind).
fn is_builtin(schema: Node<'_>) -> bool {
    std::ptr::eq(
        schema.definitions(),
        crate::builtin::builtins().definitions(),
    )
}

/// Struct fields kube's Go types hold by value (never omitted, so present in a zero object).
const BY_VALUE: &[&str] = &[
    "metadata",
    "spec",
    "status",
    "template",
    "strategy",
    "updateStrategy",
    "jobTemplate",
    // core/v1 Event's and VolumeAttachmentSpec's `source`; a PVC's and a container's
    // `resources`.
    "source",
    "resources",
    // A NetworkPolicy's `podSelector` (a LabelSelector held by value, unlike most).
    "podSelector",
];

/// The zero value of a built-in kind as kube converts it to unstructured: by-value structs as
/// `{}` (recursively), required lists, maps and pointers as null, required scalars as their
/// zero.
fn zero(n: Node<'_>, depth: usize) -> Value {
    let mut o = Map::new();
    if depth > 8 {
        return Value::Object(o);
    }
    let required = &n.schema().required;
    for (name, f) in n.fields() {
        let is_struct =
            f.ty() == Type::Object && !f.schema().properties.is_empty() && !f.is_atomic_map();
        let req = required.iter().any(|r| r == name);
        if is_struct && (BY_VALUE.contains(&name) || req) {
            o.insert(name.to_string(), zero(f, depth + 1));
        } else if f.ty() == Type::Object && f.is_atomic_map() && BY_VALUE.contains(&name) {
            o.insert(name.to_string(), Value::Object(Map::new()));
        } else if req {
            let v = match f.ty() {
                Type::String => Value::String(String::new()),
                Type::Integer | Type::Number => Value::from(0),
                Type::Boolean => Value::Bool(false),
                _ => Value::Null,
            };
            o.insert(name.to_string(), v);
        }
    }
    Value::Object(o)
}

fn empty_object(schema: Node<'_>, like: &Value) -> Value {
    if is_builtin(schema) {
        let mut z = zero(schema, 0);
        if let Some(o) = z.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.clear();
                m.insert("creationTimestamp".into(), Value::Null);
            }
        }
        // kube's zero objects carry apiVersion and kind once typed.
        for k in ["apiVersion", "kind"] {
            if let (Some(o), Some(v)) = (z.as_object_mut(), like.get(k)) {
                o.insert(k.into(), v.clone());
            }
        }
        z
    } else {
        let mut o = Map::new();
        for k in ["apiVersion", "kind"] {
            if let Some(v) = like.get(k) {
                o.insert(k.into(), v.clone());
            }
        }
        Value::Object(o)
    }
}

/// The conflicts of `updater_update`, per manager.
type ManagerConflicts = Vec<(Id, Set)>;

/// Takes the fields `new` changed relative to `live` from every manager but `workflow`
/// (structured-merge-diff's `update`): without `force`, fields owned by others that changed are
/// conflicts; removed fields leave every set.
fn take_changes(
    ty: Ty<'_>,
    live: &Value,
    new: &Value,
    managed: &mut Managed,
    workflow: &Id,
    force: bool,
    reset: &Set,
) -> Result<typed::Comparison, ManagerConflicts> {
    let mut c = compare(ty, Some(live), Some(new));
    c.added = c.added.exclude(reset);
    c.removed = c.removed.exclude(reset);
    c.modified = c.modified.exclude(reset);
    let changed = c.modified.union(&c.added);
    let mut conflicts = Vec::new();
    for (id, e) in managed.iter() {
        if id == workflow {
            continue;
        }
        let conflict = e.set.intersection(&changed);
        if !conflict.is_empty() {
            conflicts.push((id.clone(), conflict));
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(conflicts);
    }
    for (id, set) in &conflicts {
        if let Some(e) = managed.get_mut(id) {
            e.set = e.set.difference(set);
        }
    }
    if !c.removed.is_empty() {
        for (id, e) in managed.iter_mut() {
            if id != workflow {
                e.set = e.set.difference(&c.removed);
            }
        }
    }
    managed.retain(|id, e| id == workflow || !e.set.is_empty());
    Ok(c)
}

fn to_conflicts(cs: ManagerConflicts, managed: &Managed) -> Vec<Conflict> {
    let mut out = Vec::new();
    let mut cs = cs;
    cs.sort_by_key(|(id, _)| id.identifier());
    for (id, set) in cs {
        let api_version = managed
            .get(&id)
            .map(|e| e.api_version.clone())
            .unwrap_or_default();
        for p in set.paths() {
            out.push(Conflict {
                manager: id.manager.clone(),
                operation: id.operation,
                api_version: api_version.clone(),
                subresource: id.subresource.clone(),
                field: path_string(&p),
            });
        }
    }
    out
}

/// Keeps at most ten `Update` managers, merging the oldest into `ancient-changes` (one per
/// apiVersion).
fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<(Id, Option<String>)> = managed
        .iter()
        .filter(|(id, _)| id.operation == Operation::Update)
        .map(|(id, e)| (id.clone(), e.time.clone()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|a, b| time_key(&a.1).cmp(time_key(&b.1)));
    let mut length = updaters.len();
    let mut first_of_version: BTreeMap<String, Id> = BTreeMap::new();
    for (id, time) in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(e) = managed.get(&id).cloned() else {
            continue;
        };
        let bucket = Id {
            manager: ANCIENT.into(),
            operation: Operation::Update,
            api_version: e.api_version.clone(),
            subresource: String::new(),
        };
        match first_of_version.get(&e.api_version) {
            Some(first) => {
                if !managed.contains_key(&bucket)
                    && let Some(f) = managed.remove(first)
                {
                    managed.insert(bucket.clone(), f);
                }
                managed.remove(&id);
                if let Some(b) = managed.get_mut(&bucket) {
                    b.set = e.set.union(&b.set);
                    b.time = time;
                }
                length -= 1;
            }
            None => {
                first_of_version.insert(e.api_version.clone(), id);
            }
        }
    }
}

/// Records a non-apply write: `new` is the whole object the write produced (after defaulting),
/// `old` the object before (`None` on create). Every field the write added or changed becomes
/// this manager's (`Update` entry), taken from any other manager; removed fields leave every
/// manager. Updates never conflict.
///
/// Managed fields written explicitly in `new` (and not through a subresource) replace the
/// stored ones, as kube honours them: `[]` or `[{}]` resets them; entries kube cannot decode
/// (unknown operation or fieldsType, bad `fieldsV1`) are ignored in favour of `old`'s, as kube
/// does; a too-long manager name is [`ApplyError::Invalid`]. Without managedFields in `new`,
/// `old`'s carry over.
pub fn update(
    old: Option<&Value>,
    new: &Value,
    schema: Node<'_>,
    req: &Request<'_>,
) -> Result<Value, ApplyError> {
    let ty = Ty(Some(schema));
    let old_managed = || decode(old.and_then(managed_fields)).unwrap_or_default();
    let mut managed = if !req.subresource.is_empty() {
        old_managed()
    } else {
        let written = managed_fields(new);
        validate_entries(written)?;
        if is_reset(written) {
            Managed::new()
        } else {
            match decode(written) {
                Ok(m) if !m.is_empty() => m,
                _ => old_managed(),
            }
        }
    };
    let new_obj = without_managed_fields(new);
    let old_obj = match old {
        Some(o) => without_managed_fields(o),
        None => empty_object(schema, &new_obj),
    };
    let current = Id {
        manager: CURRENT.into(),
        operation: Operation::Update,
        api_version: req.api_version.into(),
        subresource: req.subresource.into(),
    };
    let reset = reset_set(req.reset);
    let c = take_changes(ty, &old_obj, &new_obj, &mut managed, &current, true, &reset)
        .unwrap_or_default();
    let set = c
        .modified
        .union(&c.added)
        .exclude(&reset)
        .difference(&strip_set());
    let me = Id::of(&Request {
        operation: Operation::Update,
        ..*req
    });
    if !set.is_empty() {
        let previous = managed.remove(&me).map(|e| e.set).unwrap_or_default();
        managed.insert(
            me,
            Entry {
                api_version: req.api_version.into(),
                set: set.union(&previous),
                time: Some(req.time.into()),
            },
        );
    }
    managed.remove(&current);
    cap_update_managers(&mut managed);
    Ok(with_managed_fields(new_obj, &managed))
}

fn group_version_kind(v: &Value) -> String {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// Removes from `merged` what the applier owned before (`last`) and no longer applies, unless
/// some manager (the applier's new configuration included) still owns it; fields nobody ever
/// owned stay (structured-merge-diff's `prune`).
fn prune(ty: Ty<'_>, merged: Value, managed: &Managed, last: Option<&Set>) -> Value {
    let Some(last) = last.filter(|l| !l.is_empty()) else {
        return merged;
    };
    let e = |s: &Set| ensure_named_fields_are_members(s, ty);
    let set_of = |v: &Value| e(&to_field_set(ty, v));
    let remove = |s: &Set| remove_items(ty, &merged, s).unwrap_or_else(|| json!({}));
    let last = e(last);
    let pruned = remove(&last);
    let owned = managed
        .values()
        .fold(Set::new(), |acc, m| acc.union(&m.set));
    let merged_set = set_of(&merged);
    let pruned = remove(&merged_set.difference(&set_of(&pruned).union(&e(&owned))));
    remove(&merged_set.difference(&set_of(&pruned)).intersection(&last))
}

/// Server-side apply: merges `applied` (the user's partial object) into `live` (`None`: the
/// object is created), honouring ownership, and returns the new object with
/// `metadata.managedFields` updated. The applier owns exactly the fields of its configuration;
/// fields it owned before and no longer applies are removed unless another manager owns them;
/// a field another manager owns with another value is a conflict, unless `force` (then it
/// changes hands). A no-op apply still records shared ownership but keeps the entry's time.
///
/// For the manager `kubectl`, as kube does: conflicts on fields whose live value is still what
/// the `kubectl.kubernetes.io/last-applied-configuration` annotation says are forced (the
/// client-side to server-side apply migration), and that annotation, when present, is rewritten
/// to the applied configuration.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    schema: Node<'_>,
    req: &Request<'_>,
) -> Result<Value, ApplyError> {
    let ty = Ty(Some(schema));
    let gvk = group_version_kind(applied);
    if applied.get("apiVersion").and_then(Value::as_str) != Some(req.api_version)
        || applied.get("kind").and_then(Value::as_str) != Some(req.kind)
    {
        return Err(ApplyError::BadRequest(format!(
            "invalid object type: {gvk}"
        )));
    }
    if managed_fields(applied).is_some_and(|m| !m.is_null()) {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    if let Err(e) = typed::validate(ty, applied) {
        let meta = |k: &str| {
            applied
                .get("metadata")
                .and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        return Err(ApplyError::BadRequest(format!(
            "failed to create typed patch object ({}/{}; {gvk}): {e}",
            meta("namespace"),
            meta("name")
        )));
    }
    let managed = decode(live.and_then(managed_fields))
        .map_err(|e| ApplyError::BadRequest(format!("failed to decode managed fields: {e}")))?;
    let live_obj = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));
    // Only kubectl's retry needs the managed fields again: keep a copy for it alone.
    let retry = (req.manager == "kubectl" && !req.force).then(|| managed.clone());
    let result = match apply_once(ty, &live_obj, applied, managed, req, req.force) {
        Err(ApplyError::Conflicts(conflicts)) if let Some(managed) = retry => {
            let allowed = allowed_from_last_applied(ty, &live_obj);
            let remaining: Vec<Conflict> = conflicts
                .into_iter()
                .filter(|c| !allowed.contains(&c.field))
                .collect();
            if remaining.is_empty() {
                apply_once(ty, &live_obj, applied, managed, req, true)
            } else {
                Err(ApplyError::Conflicts(remaining))
            }
        }
        other => other,
    }?;
    let (mut obj, managed) = result;
    if req.manager == "kubectl" {
        update_last_applied(&mut obj, applied);
    }
    typed::drop_nulls(ty, &mut obj);
    Ok(with_managed_fields(obj, &managed))
}

/// The fields a kubectl client-side apply recorded that still hold the recorded values.
fn allowed_from_last_applied(ty: Ty<'_>, live: &Value) -> Vec<String> {
    let Some(last) = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    else {
        return Vec::new();
    };
    let set = to_field_set(ty, &last);
    let c = compare(ty, Some(&last), Some(live));
    set.difference(&c.modified)
        .paths()
        .iter()
        .map(|p| path_string(p))
        .collect()
}

fn update_last_applied(obj: &mut Value, applied: &Value) {
    let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if !annotations.contains_key(LAST_APPLIED) {
        return;
    }
    let mut config = applied.clone();
    if let Some(a) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    // Go's encoder: compact, HTML characters escaped, a trailing newline.
    let encoded = format!("{}\n", fieldpath::json(&config));
    annotations.insert(LAST_APPLIED.into(), Value::String(encoded));
}

fn apply_once(
    ty: Ty<'_>,
    live: &Value,
    applied: &Value,
    mut managed: Managed,
    req: &Request<'_>,
    force: bool,
) -> Result<(Value, Managed), ApplyError> {
    let me = Id::of(&Request {
        operation: Operation::Apply,
        ..*req
    });
    let reset = reset_set(req.reset);
    let merged = merge(ty, Some(live), Some(applied)).unwrap_or_else(|| json!({}));
    let last = managed.get(&me).cloned();
    let set = to_field_set(ty, applied).exclude(&reset);
    managed.insert(
        me.clone(),
        Entry {
            api_version: req.api_version.into(),
            set,
            time: last.as_ref().and_then(|l| l.time.clone()),
        },
    );
    let new = prune(ty, merged, &managed, last.as_ref().map(|l| &l.set));
    if let Err(cs) = take_changes(ty, live, &new, &mut managed, &me, force, &reset) {
        return Err(ApplyError::Conflicts(to_conflicts(cs, &managed)));
    }
    let changed = !value_eq(live, &new);
    if let Some(e) = managed.get_mut(&me) {
        e.set = e.set.difference(&strip_set());
        if changed {
            e.time = Some(req.time.into());
        }
        if e.set.is_empty() {
            managed.remove(&me);
        }
    }
    cap_update_managers(&mut managed);
    Ok((new, managed))
}

#[cfg(test)]
mod tests;
