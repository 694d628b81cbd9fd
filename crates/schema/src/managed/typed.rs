//! The schema-aware operations server-side apply is built from, restating structured-merge-diff:
//! the field set a value sets, merging an applied configuration into a live object, comparing
//! two objects, removing a set of paths from an object, and validating an applied configuration.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::fieldpath::{Pe, Set, json, path_string, value_eq};
use crate::schema::{ListKind, Node, Type};

/// A schema position; `None` is an untyped position (no schema, or a field a schema does not
/// declare), where maps are granular and lists atomic, as kube deduces them.
#[derive(Debug, Clone, Copy)]
pub struct Ty<'a>(pub Option<Node<'a>>);

/// What a value is at a schema position.
enum Atom<'a> {
    Scalar,
    List {
        items: Ty<'a>,
        kind: ListKind,
    },
    Map {
        node: Option<Node<'a>>,
        atomic: bool,
    },
}

fn schema_atom<'a>(n: Node<'a>) -> Option<Atom<'a>> {
    if n.is_int_or_string() {
        return Some(Atom::Scalar);
    }
    let s = n.schema();
    let map = || Atom::Map {
        node: Some(n),
        atomic: n.is_atomic_map(),
    };
    let list = || Atom::List {
        items: Ty(n.items()),
        kind: n.list_kind(),
    };
    Some(match n.ty() {
        // An object type declaring nothing (RawExtension, such as a ControllerRevision's
        // `data`) is raw JSON to kube: one leaf.
        Type::Object
            if s.properties.is_empty()
                && s.additional_properties.is_none()
                && !n.preserves_unknown_fields() =>
        {
            Atom::Map {
                node: Some(n),
                atomic: true,
            }
        }
        Type::Object => map(),
        Type::Array => list(),
        Type::String | Type::Integer | Type::Number | Type::Boolean => Atom::Scalar,
        Type::Unspecified => {
            if !s.properties.is_empty() || s.additional_properties.is_some() {
                map()
            } else if s.items.is_some() {
                list()
            } else {
                return None;
            }
        }
    })
}

fn deduced<'a>(v: Option<&Value>) -> Atom<'a> {
    match v {
        Some(Value::Object(_)) => Atom::Map {
            node: None,
            atomic: false,
        },
        Some(Value::Array(_)) => Atom::List {
            items: Ty(None),
            kind: ListKind::Atomic,
        },
        _ => Atom::Scalar,
    }
}

/// The atom for `v` at `ty`. A value whose shape the schema does not expect is a leaf.
fn atom<'a>(ty: Ty<'a>, v: Option<&Value>) -> Atom<'a> {
    match ty.0.and_then(schema_atom) {
        None => deduced(v),
        Some(a) => {
            let fits = match (&a, v) {
                (_, None | Some(Value::Null)) => true,
                (Atom::Map { .. }, Some(v)) => v.is_object(),
                (Atom::List { .. }, Some(v)) => v.is_array(),
                (Atom::Scalar, Some(v)) => !v.is_object() && !v.is_array(),
            };
            if fits { a } else { Atom::Scalar }
        }
    }
}

fn child_ty<'a>(node: Option<Node<'a>>, key: &str) -> (Ty<'a>, bool) {
    match node {
        Some(n) => match n.field(key) {
            Some(f) => (Ty(Some(f)), true),
            None => (Ty(n.additional()), false),
        },
        None => (Ty(None), false),
    }
}

/// Whether `ty` is a struct declaring field `name`.
fn declares(ty: Ty<'_>, name: &str) -> bool {
    matches!(ty.0.and_then(schema_atom), Some(Atom::Map { node: Some(n), .. }) if n.field(name).is_some())
}

fn key_default(items: Ty<'_>, key: &str) -> Option<Value> {
    let f = items.0.and_then(|n| n.field(key))?;
    if let Some(d) = f
        .outer()
        .default
        .clone()
        .or_else(|| f.schema().default.clone())
    {
        return Some(d);
    }
    // kube-apiserver's OpenAPI declares `protocol` (a key of container and service ports)
    // with default TCP; the built-in schemas here come without defaults.
    (key == "protocol" && f.ty() == Type::String).then(|| Value::String("TCP".into()))
}

/// The path element of one list item.
fn item_pe(items: Ty<'_>, kind: &ListKind, item: &Value, index: usize) -> Result<Pe, String> {
    match kind {
        ListKind::Atomic => Ok(Pe::Index(index)),
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => {
                Err("associative list without keys has an element that's a list type".into())
            }
            v => Ok(Pe::Value(v.clone())),
        },
        ListKind::Map(keys) => {
            let o = match item {
                Value::Object(o) => o,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into());
                }
                _ => {
                    return Err("associative list with keys may not have non-map elements".into());
                }
            };
            let mut fields: Vec<(String, Value)> = Vec::new();
            for k in keys {
                if let Some(v) = o.get(k) {
                    fields.push((k.clone(), v.clone()));
                } else if let Some(d) = key_default(items, k) {
                    fields.push((k.clone(), d));
                }
            }
            if fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {} (and doesn't have default values for any key fields)",
                    json(&Value::from(keys.clone()))
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Pe::Key(fields))
        }
    }
}

/// The items of a granular list with their path elements, first occurrence of each element
/// only (live objects may hold duplicates; the applied configuration is checked separately).
fn index_items<'v>(items: Ty<'_>, kind: &ListKind, list: &'v [Value]) -> Vec<(Pe, &'v Value)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        if let Ok(pe) = item_pe(items, kind, item, i)
            && seen.insert(pe.clone())
        {
            out.push((pe, item));
        }
    }
    out
}

fn is_empty_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// The set of fields a value sets (`ToFieldSet`): scalars, atomic lists and maps as leaves;
/// list items as members; map entries as members when empty or null, or when the map is not a
/// struct.
pub fn to_field_set(ty: Ty<'_>, v: &Value) -> Set {
    let mut out = Set::new();
    field_set(ty, v, &mut Vec::new(), &mut out);
    out
}

fn field_set(ty: Ty<'_>, v: &Value, path: &mut Vec<Pe>, out: &mut Set) {
    match atom(ty, Some(v)) {
        Atom::Scalar
        | Atom::List {
            kind: ListKind::Atomic,
            ..
        }
        | Atom::Map { atomic: true, .. } => out.insert(path),
        Atom::List { items, kind } => {
            let Some(list) = v.as_array() else { return };
            for (pe, item) in index_items(items, &kind, list) {
                path.push(pe);
                field_set(items, item, path, out);
                out.insert(path);
                path.pop();
            }
        }
        Atom::Map { node, .. } => {
            let Some(o) = v.as_object() else { return };
            for (k, val) in o {
                let (cty, declared) = child_ty(node, k);
                path.push(Pe::Field(k.clone()));
                field_set(cty, val, path, out);
                let empty_map = val.as_object().is_some_and(Map::is_empty);
                if val.is_null() || empty_map || !declared {
                    out.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// Merges `rhs` into `lhs` (the applied configuration into the live object): scalars, atomic
/// lists and maps from `rhs` replace; maps merge key by key; map and set lists merge item by
/// item, keeping `rhs`'s order for items both have and `lhs`'s items in between.
pub fn merge(ty: Ty<'_>, lhs: Option<&Value>, rhs: Option<&Value>) -> Option<Value> {
    if lhs.is_none() && rhs.is_none() {
        return None;
    }
    let leaf = || rhs.or(lhs).cloned();
    let promote = is_empty_value(lhs) && is_empty_value(rhs);
    match atom(ty, rhs.or(lhs)) {
        Atom::Scalar => leaf(),
        Atom::List { items, kind } => {
            if kind == ListKind::Atomic || promote {
                return leaf();
            }
            let empty = Vec::new();
            let l = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let r = rhs.and_then(Value::as_array).unwrap_or(&empty);
            if !lhs.is_some_and(Value::is_array) && !rhs.is_some_and(Value::is_array) {
                return leaf();
            }
            let out = merge_items(items, &kind, l, r);
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Atom::Map { node, atomic } => {
            if atomic || promote {
                return leaf();
            }
            let l = lhs.and_then(Value::as_object);
            let r = rhs.and_then(Value::as_object);
            if l.is_none() && r.is_none() {
                return leaf();
            }
            let keys: BTreeSet<&String> = l.iter().chain(r.iter()).flat_map(|m| m.keys()).collect();
            let mut out = Map::new();
            for k in keys {
                let (cty, _) = child_ty(node, k);
                if let Some(v) = merge(cty, l.and_then(|m| m.get(k)), r.and_then(|m| m.get(k))) {
                    out.insert(k.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

fn merge_items(items: Ty<'_>, kind: &ListKind, lhs: &[Value], rhs: &[Value]) -> Vec<Value> {
    let lpes = index_items(items, kind, lhs);
    let rpes = index_items(items, kind, rhs);
    let lmap: BTreeMap<&Pe, &Value> = lpes.iter().map(|(p, v)| (p, *v)).collect();
    let rmap: BTreeMap<&Pe, &Value> = rpes.iter().map(|(p, v)| (p, *v)).collect();
    let mut shared = rpes.iter().map(|(p, _)| p).filter(|p| lmap.contains_key(p));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&Pe> = BTreeSet::new();
    let mut out = Vec::new();
    let (ll, rl) = (lpes.len(), rpes.len());
    let (mut li, mut ri) = (0, 0);
    while li < ll || ri < rl {
        if li < ll && ri < rl {
            let pe = &lpes[li].0;
            if *pe == rpes[ri].0 {
                merged_rhs.insert(pe);
                out.extend(merge(items, lmap.get(pe).copied(), rmap.get(pe).copied()));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if rmap.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < ll {
            let pe = &lpes[li].0;
            if !rmap.contains_key(pe) {
                out.extend(merge(items, Some(lpes[li].1), None));
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rl {
            let pe = &rpes[ri].0;
            merged_rhs.insert(pe);
            out.extend(merge(items, lmap.get(pe).copied(), Some(rpes[ri].1)));
            ri += 1;
            if next_shared.is_some_and(|n| n == pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// What changed between two objects: leaves added, removed and modified; a map, granular list
/// or list item that appeared or disappeared as a whole is added or removed itself too.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: Set,
    pub removed: Set,
    pub modified: Set,
}

/// Compares `lhs` (old) with `rhs` (new).
pub fn compare(ty: Ty<'_>, lhs: Option<&Value>, rhs: Option<&Value>) -> Comparison {
    let mut c = Comparison::default();
    compare_at(ty, lhs, rhs, &mut Vec::new(), &mut c);
    c
}

fn compare_at(
    ty: Ty<'_>,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    path: &mut Vec<Pe>,
    c: &mut Comparison,
) {
    if lhs.is_none() && rhs.is_none() {
        return;
    }
    let leaf = |c: &mut Comparison| match (lhs, rhs) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(l), Some(r)) if !value_eq(l, r) => c.modified.insert(path),
        _ => {}
    };
    let promote = is_empty_value(lhs) && is_empty_value(rhs);
    // Values of different shapes (a map replaced by a list, say) compare as leaves.
    let shapes_differ = match (lhs, rhs) {
        (Some(l), Some(r)) if !l.is_null() && !r.is_null() => {
            (l.is_object() != r.is_object()) || (l.is_array() != r.is_array())
        }
        _ => false,
    };
    match atom(ty, rhs.or(lhs)) {
        _ if shapes_differ => leaf(c),
        Atom::Scalar => leaf(c),
        Atom::List { items, kind } => {
            if kind == ListKind::Atomic || promote {
                return leaf(c);
            }
            let empty = Vec::new();
            let l = index_items(
                items,
                &kind,
                lhs.and_then(Value::as_array).unwrap_or(&empty),
            );
            let r = index_items(
                items,
                &kind,
                rhs.and_then(Value::as_array).unwrap_or(&empty),
            );
            let lmap: BTreeMap<&Pe, &Value> = l.iter().map(|(p, v)| (p, *v)).collect();
            let rmap: BTreeMap<&Pe, &Value> = r.iter().map(|(p, v)| (p, *v)).collect();
            let pes: BTreeSet<&Pe> = lmap.keys().chain(rmap.keys()).copied().collect();
            for pe in pes {
                path.push(pe.clone());
                compare_at(items, lmap.get(pe).copied(), rmap.get(pe).copied(), path, c);
                path.pop();
            }
            whole(lhs, rhs, path, c);
        }
        Atom::Map { node, atomic } => {
            if atomic || promote {
                return leaf(c);
            }
            let l = lhs.and_then(Value::as_object);
            let r = rhs.and_then(Value::as_object);
            let keys: BTreeSet<&String> = l.iter().chain(r.iter()).flat_map(|m| m.keys()).collect();
            for k in keys {
                let (cty, _) = child_ty(node, k);
                path.push(Pe::Field(k.clone()));
                compare_at(
                    cty,
                    l.and_then(|m| m.get(k)),
                    r.and_then(|m| m.get(k)),
                    path,
                    c,
                );
                path.pop();
            }
            whole(lhs, rhs, path, c);
        }
    }
}

fn whole(lhs: Option<&Value>, rhs: Option<&Value>, path: &[Pe], c: &mut Comparison) {
    if lhs.is_none() {
        c.added.insert(path);
    } else if rhs.is_none() {
        c.removed.insert(path);
    }
}

/// `v` without the paths in `set` (a member takes its whole subtree). Maps and lists left
/// empty by the removal disappear (`None`).
pub fn remove_items(ty: Ty<'_>, v: &Value, set: &Set) -> Option<Value> {
    match atom(ty, Some(v)) {
        Atom::Scalar => Some(v.clone()),
        Atom::List { items, kind } => {
            if kind == ListKind::Atomic {
                return None;
            }
            let list = v.as_array()?;
            let mut out = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let Ok(pe) = item_pe(items, &kind, item, i) else {
                    out.push(item.clone());
                    continue;
                };
                if set.members.contains(&pe) {
                    continue;
                }
                match set.child(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => out.extend(remove_items(items, item, sub)),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Atom::Map { node, atomic } => {
            if atomic {
                return None;
            }
            let o = v.as_object()?;
            let mut out = Map::new();
            for (k, val) in o {
                let pe = Pe::Field(k.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                match set.child(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => {
                        if let Some(x) = remove_items(child_ty(node, k).0, val, sub) {
                            out.insert(k.clone(), x);
                        }
                    }
                    None => {
                        out.insert(k.clone(), val.clone());
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
    }
}

/// The set with every struct field that has owned descendants made a member too
/// (`EnsureNamedFieldsAreMembers`), so that removing it removes the field itself.
pub fn ensure_named_fields_are_members(set: &Set, ty: Ty<'_>) -> Set {
    let mut out = Set {
        members: set.members.clone(),
        children: BTreeMap::new(),
    };
    let atom = ty.0.and_then(schema_atom);
    for (pe, child) in &set.children {
        let cty = match (pe, &atom) {
            (Pe::Field(name), Some(Atom::Map { node, .. })) => {
                if declares(ty, name) {
                    out.members.insert(pe.clone());
                }
                child_ty(*node, name).0
            }
            (Pe::Key(_), Some(Atom::List { items, .. })) => *items,
            _ => Ty(None),
        };
        out.children
            .insert(pe.clone(), ensure_named_fields_are_members(child, cty));
    }
    out
}

/// Checks an applied configuration against the schema: value types, list items' keys, and no
/// duplicate items in map and set lists. The error names the path, e.g.
/// `.spec.replicas: expected numeric (int or float), got string`.
pub fn validate(ty: Ty<'_>, v: &Value) -> Result<(), String> {
    validate_at(ty, v, &mut Vec::new())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn validate_at(ty: Ty<'_>, v: &Value, path: &mut Vec<Pe>) -> Result<(), String> {
    let err = |path: &[Pe], m: String| {
        if path.is_empty() {
            m
        } else {
            format!("{}: {m}", path_string(path))
        }
    };
    if v.is_null() {
        return Ok(());
    }
    let Some(n) = ty.0 else { return Ok(()) };
    let Some(a) = schema_atom(n) else {
        return Ok(());
    };
    match a {
        Atom::Scalar => {
            if n.is_int_or_string() {
                return match v {
                    Value::Number(_) | Value::String(_) => Ok(()),
                    other => Err(err(
                        path,
                        format!("expected string or int, got {}", type_name(other)),
                    )),
                };
            }
            let ok = match n.ty() {
                Type::String => v.is_string(),
                Type::Integer | Type::Number => v.is_number(),
                Type::Boolean => v.is_boolean(),
                _ => true,
            };
            if ok {
                return Ok(());
            }
            let m = match n.ty() {
                Type::String => format!("expected string, got {}", json(v)),
                Type::Boolean => format!("expected boolean, got {}", json(v)),
                _ => format!("expected numeric (int or float), got {}", type_name(v)),
            };
            Err(err(path, m))
        }
        Atom::List { items, kind } => {
            let Some(list) = v.as_array() else {
                return Err(err(path, format!("expected list, got {}", json(v))));
            };
            let mut seen = BTreeSet::new();
            for (i, item) in list.iter().enumerate() {
                let pe = item_pe(items, &kind, item, i)
                    .map_err(|e| err(path, format!("element {i}: {e}")))?;
                if kind != ListKind::Atomic && !seen.insert(pe.clone()) {
                    return Err(err(path, format!("duplicate entries for key {pe}")));
                }
                path.push(pe);
                validate_at(items, item, path)?;
                path.pop();
            }
            Ok(())
        }
        Atom::Map { node, .. } => {
            let Some(o) = v.as_object() else {
                return Err(err(path, format!("expected map, got {}", json(v))));
            };
            for (k, val) in o {
                let (cty, _) = child_ty(node, k);
                path.push(Pe::Field(k.clone()));
                validate_at(cty, val, path)?;
                path.pop();
            }
            Ok(())
        }
    }
}

/// `v` with null map entries removed where the schema does not allow null (kube drops them when
/// it decodes the object into its typed form, or prunes them from custom resources).
pub fn drop_nulls(ty: Ty<'_>, v: &mut Value) {
    match v {
        Value::Object(o) => {
            let node = match atom(ty, None) {
                Atom::Map { node, .. } => node,
                _ => None,
            };
            o.retain(|k, x| {
                !x.is_null()
                    || child_ty(node, k)
                        .0
                        .0
                        .is_some_and(|n| n.schema().nullable || n.outer().nullable)
            });
            for (k, x) in o.iter_mut() {
                drop_nulls(child_ty(node, k).0, x);
            }
        }
        Value::Array(xs) => {
            let items = match atom(ty, None) {
                Atom::List { items, .. } => items,
                _ => Ty(None),
            };
            for x in xs {
                drop_nulls(items, x);
            }
        }
        _ => {}
    }
}
