//! Strategic merge patch (`application/strategic-merge-patch+json`) as kube-apiserver applies it
//! to the built-in kinds: the server side of client-side `kubectl apply`, `kubectl edit`,
//! `kubectl patch`, `kubectl set image`, `kubectl rollout restart` and Helm's three-way patches.
//!
//! The schema gives each position its patch metadata (`x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key`); where there is no schema the patch behaves like a JSON merge
//! patch (maps merge, `null` deletes, lists are replaced).
//!
//! What kube-apiserver does, and so what this does:
//!
//! - Maps merge key by key; `null` deletes a key (and is a no-op for a missing one).
//! - A list whose field has patch strategy `merge` merges: lists of maps by the merge key (a
//!   matching item merges recursively, a new one is added), lists of scalars as a union without
//!   duplicates. Any other list is replaced by the patch's list, and an empty patch list leaves a
//!   merge list untouched. Items keep the order kube gives them: the patch's items in the patch's
//!   order, the original's other items in their original order, each original item placed before
//!   the first patch item it came before in the original (so a new item listed first in the
//!   patch lands first).
//! - Directives: `$patch: replace|delete` on a map (a deleted map that existed becomes `{}`, as
//!   kube leaves it), `{"$patch": "delete", <key>: ..}` and `{"$patch": "replace"}` items in a
//!   merge list, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`
//!   (which only orders: it never adds an item). They never reach the result; a malformed one is
//!   a [`PatchError`].
//! - A value that has nothing to merge with (a new key, a new list item, a replacing list, a
//!   value of another type) is taken from the patch with its `null`s and directive keys removed;
//!   for a new key, maps carrying `$patch` are dropped altogether (kube drops them there too).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::Node;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVES: &str = "$deleteFromPrimitiveList/";

/// A strategic merge patch that cannot be applied: a malformed directive, a merge-list item
/// without its merge key, lists whose items do not agree in type. The message says where, as a
/// dotted path from the root of the object, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// What is wrong, prefixed by where (`spec.strategy: invalid patch format of retainKeys: ..`).
    pub message: String,
}

impl PatchError {
    fn at(path: &str, message: impl fmt::Display) -> PatchError {
        PatchError {
            message: if path.is_empty() {
                message.to_string()
            } else {
                format!("{path}: {message}")
            },
        }
    }
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatchError {}

/// Applies strategic merge patch `patch` to `original` (a `null` original is an empty object),
/// with `schema` the schema of the whole object, e.g.
/// `builtins().kind("apps", "v1", "Deployment")`, or `None` for JSON merge patch behaviour.
/// Neither input is modified; the result holds no directive and no `null` the patch brought.
pub fn patch(
    original: &Value,
    patch: &Value,
    schema: Option<Node<'_>>,
) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::at(
            "",
            format!(
                "a strategic merge patch must be a JSON object, not {}",
                type_name(patch)
            ),
        ));
    };
    let o = match original {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::at(
                "",
                format!("cannot patch {}: not an object", type_name(other)),
            ));
        }
    };
    merge_map(o, p, schema, "").map(Value::Object)
}

/// How a field's value merges, from its `x-kubernetes-patch-strategy` (`retainKeys` aside, which
/// only tells clients to send `$retainKeys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Default,
    Merge,
    Replace,
}

fn strategy(field: Option<Node<'_>>) -> Strategy {
    let Some(n) = field else {
        return Strategy::Default;
    };
    if n.has_patch_strategy("replace") {
        Strategy::Replace
    } else if n.has_patch_strategy("merge") {
        Strategy::Merge
    } else {
        Strategy::Default
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn is_directive_key(k: &str) -> bool {
    k == PATCH || k == RETAIN_KEYS || k.starts_with(SET_ORDER) || k.starts_with(DELETE_PRIMITIVES)
}

/// A value for a position the original does not have: `null`s dropped, maps that carry `$patch`
/// dropped (`None` when `v` itself is one), other directive keys removed. A `$patch` other than
/// `replace` or `delete` is an error (kube drops those silently too).
fn adopt(v: &Value, path: &str) -> Result<Option<Value>, PatchError> {
    Ok(match v {
        Value::Object(m) => {
            match m.get(PATCH) {
                None | Some(Value::Null) => {}
                Some(Value::String(d)) if d == "replace" || d == "delete" => return Ok(None),
                Some(d) => return Err(unknown_directive(path, d, m)),
            }
            let mut out = Map::new();
            for (k, x) in m {
                if x.is_null() || is_directive_key(k) {
                    continue;
                }
                if let Some(y) = adopt(x, path)? {
                    out.insert(k.clone(), y);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(xs) => Some(Value::Array(adopt_list(xs, path)?)),
        other => Some(other.clone()),
    })
}

fn adopt_list(xs: &[Value], path: &str) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(xs.len());
    for x in xs.iter().filter(|x| !x.is_null()) {
        if let Some(y) = adopt(x, path)? {
            out.push(y);
        }
    }
    Ok(out)
}

/// A value taken verbatim from the patch (a replacing list, a new list item, a replaced map):
/// `null`s and directive keys removed, as decoding the result into the kind's type does.
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip_map(m)),
        Value::Array(xs) => Value::Array(xs.iter().filter(|x| !x.is_null()).map(strip).collect()),
        other => other.clone(),
    }
}

fn strip_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, x)| !x.is_null() && !is_directive_key(k))
        .map(|(k, x)| (k.clone(), strip(x)))
        .collect()
}

fn unknown_directive(path: &str, directive: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::at(
        path,
        format!(
            "unknown patch type {directive} in map {}: $patch must be \"replace\" or \"delete\"",
            Value::Object(m.clone())
        ),
    )
}

fn missing_merge_key(path: &str, m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::at(
        path,
        format!(
            "map {} does not contain declared merge key: {key}",
            Value::Object(m.clone())
        ),
    )
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<Node<'_>>,
    path: &str,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(d) = patch.get(PATCH) {
        return match d.as_str() {
            Some("replace") => Ok(strip_map(patch)),
            Some("delete") => Ok(Map::new()),
            _ => Err(unknown_directive(path, d, patch)),
        };
    }
    if let Some(keys) = patch.get(RETAIN_KEYS) {
        retain_keys(&mut original, patch, keys, path)?;
    }
    let mut ordered = HashSet::new();
    for (k, order) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            set_element_order(&mut original, patch, field, order, schema, path)?;
            ordered.insert(field);
        }
    }
    let mut deletions = Vec::new();
    for (k, v) in patch {
        if k == RETAIN_KEYS || k.starts_with(SET_ORDER) || ordered.contains(k.as_str()) {
            continue;
        }
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVES) {
            deletions.push((field, v));
            continue;
        }
        merge_key(&mut original, k, v, schema.and_then(|s| s.child(k)), path)?;
    }
    for (field, v) in deletions {
        delete_from_list(
            &mut original,
            field,
            v,
            &join(path, &k_of(DELETE_PRIMITIVES, field)),
        )?;
    }
    Ok(original)
}

/// The directive key's name for messages, e.g. `$deleteFromPrimitiveList/finalizers`.
fn k_of(prefix: &str, field: &str) -> String {
    format!("{prefix}{field}")
}

fn merge_key(
    original: &mut Map<String, Value>,
    k: &str,
    v: &Value,
    field: Option<Node<'_>>,
    path: &str,
) -> Result<(), PatchError> {
    if v.is_null() {
        original.remove(k);
        return Ok(());
    }
    let Some(slot) = original.get_mut(k) else {
        if let Some(new) = adopt(v, &join(path, k))? {
            original.insert(k.to_string(), new);
        }
        return Ok(());
    };
    let current = std::mem::take(slot);
    let next = match (current, v) {
        (Value::Object(o), Value::Object(p)) => Some(Value::Object(match strategy(field) {
            Strategy::Replace => strip_map(p),
            _ => merge_map(o, p, field, &join(path, k))?,
        })),
        (Value::Array(o), Value::Array(p)) => Some(Value::Array(match strategy(field) {
            Strategy::Merge => merge_list(o, p, field, &join(path, k))?,
            _ => p.iter().filter(|x| !x.is_null()).map(strip).collect(),
        })),
        (_, v) => adopt(v, &join(path, k))?,
    };
    match next {
        Some(n) => *slot = n,
        None => {
            original.remove(k);
        }
    }
    Ok(())
}

/// `$retainKeys`: every key the patch sets must be listed; keys of the original not listed go.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    keys: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let Value::Array(keys) = keys else {
        return Err(PatchError::at(
            path,
            format!(
                "invalid patch format of retainKeys: $retainKeys must be a list, not {}",
                type_name(keys)
            ),
        ));
    };
    let listed: HashSet<&str> = keys.iter().filter_map(Value::as_str).collect();
    let listed = |k: &str| listed.contains(k);
    for (k, v) in patch {
        if v.is_null() || is_directive_key(k) {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::at(
                path,
                format!(
                    "invalid patch format of retainKeys: {k:?} is set by the patch but not in $retainKeys {}",
                    Value::Array(keys.clone())
                ),
            ));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes the listed values from the original's list (`null`
/// deletes the field, as kube does; a missing field or one that is not a list is left alone).
fn delete_from_list(
    original: &mut Map<String, Value>,
    field: &str,
    v: &Value,
    path: &str,
) -> Result<(), PatchError> {
    let gone = match v {
        Value::Null => {
            original.remove(field);
            return Ok(());
        }
        Value::Array(gone) => gone,
        other => {
            return Err(PatchError::at(
                path,
                format!(
                    "invalid patch format of primitive list: must be a list, not {}",
                    type_name(other)
                ),
            ));
        }
    };
    if let Some(Value::Array(list)) = original.get_mut(field) {
        let gone: HashSet<String> = gone.iter().map(canonical).collect();
        list.retain(|x| !gone.contains(&canonical(x)));
    }
    Ok(())
}

/// A value's identity for hashing: its JSON text (object keys are sorted, so equal values have
/// equal text). Keeps list merging linear in the lists' lengths.
fn canonical(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The first position of each identity in `list` (see [`ident`]).
fn index(list: &[Value], key: Option<&str>) -> HashMap<String, usize> {
    let mut out = HashMap::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        if let Some(id) = ident(v, key) {
            out.entry(canonical(id)).or_insert(i);
        }
    }
    out
}

/// What identifies a list item for merging and ordering: its merge key's value, or the item
/// itself in a list without a merge key.
fn ident<'v>(v: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => v.get(k),
        None => Some(v),
    }
}

/// Kube's order for a merged list: the items `patch_order` names, in that order, interleaved with
/// the others in `server_order`'s order; an item of the others goes before a named item when both
/// are in `server_order` and it came first there.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let mut named = Vec::new();
    let mut others = Vec::new();
    let (patch_index, server_index) = (index(patch_order, key), index(server_order, key));
    for v in merged {
        let id = ident(&v, key).map(canonical);
        let server = id.as_ref().and_then(|id| server_index.get(id).copied());
        match id.as_ref().and_then(|id| patch_index.get(id).copied()) {
            Some(p) => named.push((p, server, v)),
            None => others.push((server.unwrap_or(usize::MAX), server, v)),
        }
    }
    named.sort_by_key(|(p, _, _)| *p);
    others.sort_by_key(|(s, _, _)| *s);
    let mut out = Vec::with_capacity(named.len() + others.len());
    let mut left = others.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((_, l, _)), Some((_, r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, _, v)) = next {
            out.push(v);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Scalar,
    Map,
}

/// The one JSON type the items of both lists share (numbers of any kind count as one).
fn item_kind(lists: [&[Value]; 2], path: &str) -> Result<ItemKind, PatchError> {
    let mut seen: Option<&'static str> = None;
    for v in lists.into_iter().flatten() {
        match v {
            Value::Array(_) => {
                return Err(PatchError::at(path, "lists of lists are not supported"));
            }
            Value::Null => {
                return Err(PatchError::at(path, "a merge list cannot hold null items"));
            }
            _ => {}
        }
        let t = type_name(v);
        match seen {
            None => seen = Some(t),
            Some(s) if s != t => {
                return Err(PatchError::at(
                    path,
                    format!("list item types are not identical: {s} and {t}"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(match seen {
        Some("a map") => ItemKind::Map,
        _ => ItemKind::Scalar,
    })
}

fn check_merge_keys(list: &[Value], key: &str, path: &str) -> Result<(), PatchError> {
    for v in list {
        match v {
            Value::Object(m) if m.contains_key(key) => {}
            Value::Object(m) => return Err(missing_merge_key(path, m, key)),
            other => {
                return Err(PatchError::at(
                    path,
                    format!(
                        "expected a map with merge key {key}, not {}",
                        type_name(other)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    field: Option<Node<'_>>,
    path: &str,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = item_kind([&original, patch], path)?;
    if kind == ItemKind::Scalar {
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        let mut seen = HashSet::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch) {
            if seen.insert(canonical(v)) {
                merged.push(v.clone());
            }
        }
        return Ok(normalize_order(merged, patch, &original, None));
    }
    let Some(key) = field.and_then(|f| f.patch_merge_key()) else {
        return Err(PatchError::at(
            path,
            "cannot merge lists of maps without a merge key (x-kubernetes-patch-merge-key)",
        ));
    };
    let items = field.and_then(|f| f.items());
    let mut server = original;
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = v else { continue };
        let Some(d) = m.get(PATCH) else {
            plain.push(m);
            continue;
        };
        match d.as_str() {
            Some("delete") => {
                let Some(id) = m.get(key) else {
                    return Err(missing_merge_key(path, m, key));
                };
                server.retain(|x| x.get(key) != Some(id));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::at(
                    path,
                    "$patch: merge is not supported in a list (merging lists is the default)",
                ));
            }
            _ => return Err(unknown_directive(path, d, m)),
        }
    }
    for m in &plain {
        if !m.contains_key(key) {
            return Err(missing_merge_key(path, m, key));
        }
    }
    if replace {
        return Ok(plain.iter().map(|m| Value::Object(strip_map(m))).collect());
    }
    let mut merged = server.clone();
    let mut at = index(&merged, Some(key));
    for m in &plain {
        let id = m.get(key).map(canonical);
        match id.as_ref().and_then(|id| at.get(id).copied()) {
            Some(i) => {
                let Value::Object(o) = std::mem::take(&mut merged[i]) else {
                    continue;
                };
                merged[i] = Value::Object(merge_map(o, m, items, &format!("{path}[{i}]"))?);
            }
            None => {
                if let Some(id) = id {
                    at.insert(id, merged.len());
                }
                merged.push(Value::Object(strip_map(m)));
            }
        }
    }
    check_merge_keys(&merged, key, path)?;
    let order: Vec<Value> = plain
        .into_iter()
        .map(|m| Value::Object(m.clone()))
        .collect();
    Ok(normalize_order(merged, &order, &server, Some(key)))
}

/// Checks that the patch list's items (deletions and directives aside) appear in
/// `$setElementOrder` in the same relative order.
fn check_order_covers_patch(
    patch_list: &[Value],
    order: &[Value],
    key: Option<&str>,
    path: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch_list
        .iter()
        .filter(|v| key.is_none() || v.get(PATCH).and_then(Value::as_str) != Some("delete"))
        .collect();
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if items[p].get(PATCH).is_some() {
            p += 1;
            continue;
        }
        let equal = match key {
            None => items[p] == &order[o],
            Some(k) => {
                for v in [items[p], &order[o]] {
                    check_merge_keys(std::slice::from_ref(v), k, path)?;
                }
                items[p].get(k) == order[o].get(k)
            }
        };
        if equal {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() {
        return Err(PatchError::at(
            path,
            format!(
                "the order in patch list {} doesn't match $setElementOrder list {}",
                Value::Array(patch_list.to_vec()),
                Value::Array(order.to_vec())
            ),
        ));
    }
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's patch list (if any) into the original's and
/// orders the result by the directive, the original's other items interleaved by their original
/// order. Items named only by the directive are not added.
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    name: &str,
    order: &Value,
    schema: Option<Node<'_>>,
    path: &str,
) -> Result<(), PatchError> {
    let here = join(path, name);
    let Value::Array(order) = order else {
        return Err(PatchError::at(
            &join(path, &k_of(SET_ORDER, name)),
            format!(
                "invalid patch format of setElementOrder list: must be a list, not {}",
                type_name(order)
            ),
        ));
    };
    let list_at = |m: &Map<String, Value>, what: &str| -> Result<Option<Vec<Value>>, PatchError> {
        match m.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(other) => Err(PatchError::at(
                &here,
                format!(
                    "$setElementOrder/{name} needs a list in the {what}, not {}",
                    type_name(other)
                ),
            )),
        }
    };
    let field = schema.and_then(|s| s.child(name));
    let key = field.and_then(|f| f.patch_merge_key());
    let from = list_at(original, "original")?;
    let with = list_at(patch, "patch")?;
    check_order_covers_patch(with.as_deref().unwrap_or(&[]), order, key, &here)?;
    let merged = match (&from, &with) {
        (None, None) => return Ok(()),
        (Some(o), None) => o.clone(),
        (None, Some(p)) => adopt_list(p, &here)?,
        (Some(o), Some(p)) => match strategy(field) {
            Strategy::Merge => merge_list(o.clone(), p, field, &here)?,
            _ => p.iter().filter(|x| !x.is_null()).map(strip).collect(),
        },
    };
    let server = from.unwrap_or_default();
    let kind = item_kind([&server, &merged], &here)?;
    let key = if kind == ItemKind::Map { key } else { None };
    if let Some(k) = key {
        check_merge_keys(order, k, &join(path, &k_of(SET_ORDER, name)))?;
        check_merge_keys(&merged, k, &here)?;
    }
    let ordered = normalize_order(merged, order, &server, key);
    original.insert(name.to_string(), Value::Array(ordered));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::builtins;
    use crate::schema::{Definitions, Schema};
    use serde_json::json;

    fn defs() -> Definitions {
        let mut d = Definitions::new();
        d.insert(
            "Root",
            Schema::from_openapi(&json!({
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "properties": {
                        "finalizers": {"type": "array", "items": {"type": "string"},
                            "x-kubernetes-patch-strategy": "merge"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }},
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "name"},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "atomic": {"type": "array", "items": {"type": "object"}},
                    "nokey": {"type": "array", "items": {"type": "object"},
                        "x-kubernetes-patch-strategy": "merge"},
                    "strategy": {"type": "object", "x-kubernetes-patch-strategy": "retainKeys",
                        "properties": {"type": {"type": "string"},
                            "rollingUpdate": {"type": "object"}}},
                    "replaced": {"type": "object", "x-kubernetes-patch-strategy": "replace",
                        "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }))
            .unwrap(),
        );
        d.insert(
            "Item",
            Schema::from_openapi(&json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "value": {"type": "string"},
                    "ports": {"type": "array", "items": {"type": "object"},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "port"},
                    "tags": {"type": "array", "items": {"type": "string"},
                        "x-kubernetes-patch-strategy": "merge"}
                }
            }))
            .unwrap(),
        );
        d
    }

    fn run(cases: &[(&str, Value, Value, Value)]) {
        let d = defs();
        let root = d.named("Root");
        for (name, original, p, want) in cases {
            let got = patch(original, p, root).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&got, want, "{name}");
        }
    }

    #[test]
    fn maps_merge_and_nulls_delete() {
        run(&[
            (
                "recursive merge",
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "k": 1}),
                json!({"metadata": {"labels": {"b": "3", "c": "4"}}}),
                json!({"metadata": {"labels": {"a": "1", "b": "3", "c": "4"}}, "k": 1}),
            ),
            (
                "null deletes, null for a missing key is a no-op",
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"a": null, "zz": null}}, "gone": null}),
                json!({"metadata": {"labels": {"b": "2"}}}),
            ),
            (
                "a new subtree loses its nulls",
                json!({}),
                json!({"free": {"a": null, "b": {"c": null, "d": 1}, "l": [{"x": null, "y": 2}, null]}}),
                json!({"free": {"b": {"d": 1}, "l": [{"y": 2}]}}),
            ),
            (
                "a value of another type replaces",
                json!({"free": "s", "n": {"a": 1}}),
                json!({"free": {"a": 1, "b": null}, "n": 3}),
                json!({"free": {"a": 1}, "n": 3}),
            ),
            (
                "replace strategy replaces the map",
                json!({"replaced": {"x": 1, "y": 2}}),
                json!({"replaced": {"y": 3}}),
                json!({"replaced": {"y": 3}}),
            ),
            (
                "preserve-unknown subtree merges like a JSON merge patch",
                json!({"free": {"a": {"b": 1, "c": 2}, "l": [1, 2]}}),
                json!({"free": {"a": {"c": null, "d": 3}, "l": [3]}}),
                json!({"free": {"a": {"b": 1, "d": 3}, "l": [3]}}),
            ),
        ]);
    }

    #[test]
    fn lists_replace_without_a_merge_strategy() {
        run(&[
            (
                "scalar list",
                json!({"args": ["a", "b"]}),
                json!({"args": ["c"]}),
                json!({"args": ["c"]}),
            ),
            (
                "list of maps",
                json!({"atomic": [{"a": 1}, {"b": 2}]}),
                json!({"atomic": [{"c": 3, "d": null}]}),
                json!({"atomic": [{"c": 3}]}),
            ),
            (
                "empty list clears",
                json!({"args": ["a"]}),
                json!({"args": []}),
                json!({"args": []}),
            ),
            (
                "unknown field",
                json!({"other": [{"name": "a", "v": 1}]}),
                json!({"other": [{"name": "a", "w": 2}]}),
                json!({"other": [{"name": "a", "w": 2}]}),
            ),
        ]);
    }

    #[test]
    fn schemaless_patch_is_a_json_merge_patch() {
        let got = patch(
            &json!({"items": [{"name": "a", "v": 1}], "m": {"a": 1, "b": 2}}),
            &json!({"items": [{"name": "b"}], "m": {"a": null, "c": 3}}),
            None,
        )
        .unwrap();
        assert_eq!(
            got,
            json!({"items": [{"name": "b"}], "m": {"b": 2, "c": 3}})
        );
    }

    #[test]
    fn merge_lists_of_maps() {
        run(&[
            (
                "matching items merge, new ones follow",
                json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "1"}]}),
                json!({"items": [{"name": "b", "value": "2"}, {"name": "c"}]}),
                json!({"items": [{"name": "a", "value": "1"}, {"name": "b", "value": "2"}, {"name": "c"}]}),
            ),
            (
                "a new item listed first in the patch lands first",
                json!({"items": [{"name": "a"}, {"name": "b"}]}),
                json!({"items": [{"name": "c"}, {"name": "a", "value": "9"}]}),
                json!({"items": [{"name": "c"}, {"name": "a", "value": "9"}, {"name": "b"}]}),
            ),
            (
                "patch items keep the patch's order; an earlier original item goes first",
                json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"items": [{"name": "c", "value": "x"}, {"name": "a", "value": "y"}]}),
                json!({"items": [{"name": "b"}, {"name": "c", "value": "x"}, {"name": "a", "value": "y"}]}),
            ),
            (
                "nested merge lists and nulls inside an item",
                json!({"items": [{"name": "a", "value": "v", "ports": [{"port": 80, "p": "TCP"}], "tags": ["x"]}]}),
                json!({"items": [{"name": "a", "value": null, "ports": [{"port": 443}], "tags": ["y", "x"]}]}),
                json!({"items": [{"name": "a", "ports": [{"port": 443}, {"port": 80, "p": "TCP"}], "tags": ["y", "x"]}]}),
            ),
            (
                "$patch: delete removes by merge key",
                json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"items": [{"name": "b", "$patch": "delete"}]}),
                json!({"items": [{"name": "a"}, {"name": "c"}]}),
            ),
            (
                "deleting a missing item is a no-op",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"name": "zz", "$patch": "delete"}]}),
                json!({"items": [{"name": "a"}]}),
            ),
            (
                "$patch: replace replaces the list with the other items",
                json!({"items": [{"name": "a"}, {"name": "b"}]}),
                json!({"items": [{"$patch": "replace"}, {"name": "z", "value": "1"}]}),
                json!({"items": [{"name": "z", "value": "1"}]}),
            ),
            (
                "$patch: replace alone empties the list",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"$patch": "replace"}]}),
                json!({"items": []}),
            ),
            (
                "an empty patch list leaves a merge list alone",
                json!({"items": [{"name": "a"}], "metadata": {"finalizers": ["f"]}}),
                json!({"items": [], "metadata": {"finalizers": []}}),
                json!({"items": [{"name": "a"}], "metadata": {"finalizers": ["f"]}}),
            ),
            (
                "null deletes a merge list",
                json!({"items": [{"name": "a"}]}),
                json!({"items": null}),
                json!({}),
            ),
            (
                "a new item is taken verbatim, directives stripped",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"name": "n", "value": null, "ports": [{"port": 1, "$patch": "delete"}]}]}),
                json!({"items": [{"name": "n", "ports": [{"port": 1}]}, {"name": "a"}]}),
            ),
            (
                "a new list under a new key drops $patch items",
                json!({}),
                json!({"items": [{"name": "x", "$patch": "delete"}, {"name": "y"}]}),
                json!({"items": [{"name": "y"}]}),
            ),
        ]);
    }

    #[test]
    fn merge_lists_of_scalars() {
        run(&[
            (
                "union without duplicates, patch order first",
                json!({"metadata": {"finalizers": ["x", "y"]}}),
                json!({"metadata": {"finalizers": ["z", "x", "z"]}}),
                json!({"metadata": {"finalizers": ["z", "x", "y"]}}),
            ),
            (
                "appending",
                json!({"metadata": {"finalizers": ["x"]}}),
                json!({"metadata": {"finalizers": ["x", "y"]}}),
                json!({"metadata": {"finalizers": ["x", "y"]}}),
            ),
            (
                "$deleteFromPrimitiveList removes values",
                json!({"metadata": {"finalizers": ["x", "y", "z"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["y", "nope"]}}),
                json!({"metadata": {"finalizers": ["x", "z"]}}),
            ),
            (
                "$deleteFromPrimitiveList with additions",
                json!({"metadata": {"finalizers": ["x", "y"]}}),
                json!({"metadata": {"finalizers": ["w"], "$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!({"metadata": {"finalizers": ["w", "y"]}}),
            ),
            (
                "$deleteFromPrimitiveList on a missing or non-merge list",
                json!({"args": ["a", "b"]}),
                json!({"$deleteFromPrimitiveList/args": ["a"], "$deleteFromPrimitiveList/none": ["x"]}),
                json!({"args": ["b"]}),
            ),
        ]);
    }

    #[test]
    fn set_element_order() {
        run(&[
            (
                "reorders scalars without a list",
                json!({"metadata": {"finalizers": ["x", "y"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["y", "x"]}}),
                json!({"metadata": {"finalizers": ["y", "x"]}}),
            ),
            (
                "scalars with additions and a deletion",
                json!({"metadata": {"finalizers": ["x", "y", "d"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["z", "y", "x"],
                    "finalizers": ["z"], "$deleteFromPrimitiveList/finalizers": ["d"]}}),
                json!({"metadata": {"finalizers": ["z", "y", "x"]}}),
            ),
            (
                "maps by merge key, with a deletion",
                json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"$setElementOrder/items": [{"name": "c"}, {"name": "a"}],
                    "items": [{"name": "b", "$patch": "delete"}]}),
                json!({"items": [{"name": "c"}, {"name": "a"}]}),
            ),
            (
                "items named only by the directive are not added",
                json!({"items": [{"name": "a"}, {"name": "b"}]}),
                json!({"$setElementOrder/items": [{"name": "ghost"}, {"name": "b"}, {"name": "a"}]}),
                json!({"items": [{"name": "b"}, {"name": "a"}]}),
            ),
            (
                "items the directive leaves out keep their place",
                json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
                json!({"$setElementOrder/items": [{"name": "c"}, {"name": "a"}]}),
                json!({"items": [{"name": "b"}, {"name": "c"}, {"name": "a"}]}),
            ),
            (
                "merging and ordering new items",
                json!({"items": [{"name": "a", "value": "1"}]}),
                json!({"$setElementOrder/items": [{"name": "n"}, {"name": "a"}],
                    "items": [{"name": "n"}, {"name": "a", "value": "2"}]}),
                json!({"items": [{"name": "n"}, {"name": "a", "value": "2"}]}),
            ),
            (
                "a list the original lacks",
                json!({}),
                json!({"$setElementOrder/items": [{"name": "b"}, {"name": "a"}],
                    "items": [{"name": "b"}, {"name": "a"}, {"name": "x", "$patch": "delete"}]}),
                json!({"items": [{"name": "b"}, {"name": "a"}]}),
            ),
            (
                "neither list exists",
                json!({"k": 1}),
                json!({"$setElementOrder/items": [{"name": "a"}]}),
                json!({"k": 1}),
            ),
        ]);
    }

    #[test]
    fn map_directives_and_retain_keys() {
        run(&[
            (
                "$patch: replace replaces the map",
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"$patch": "replace", "c": "3", "d": null}}}),
                json!({"metadata": {"labels": {"c": "3"}}}),
            ),
            (
                "$patch: delete leaves an existing map empty, as kube does",
                json!({"metadata": {"labels": {"a": "1"}}, "free": {"x": 1}}),
                json!({"metadata": {"labels": {"$patch": "delete"}}, "free": {"$patch": "delete"}}),
                json!({"metadata": {"labels": {}}, "free": {}}),
            ),
            (
                "a map directive for a missing key adds nothing (kube drops it)",
                json!({}),
                json!({"free": {"$patch": "replace", "a": 1}, "other": {"$patch": "delete"}}),
                json!({}),
            ),
            (
                "$patch: delete at the root empties the object",
                json!({"a": 1}),
                json!({"$patch": "delete"}),
                json!({}),
            ),
            (
                "$retainKeys drops unlisted keys",
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
                json!({"strategy": {"type": "Recreate"}}),
            ),
            (
                "$retainKeys with a null for a dropped key",
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}),
                json!({"strategy": {"type": "Recreate"}}),
            ),
            (
                "$retainKeys keeps listed keys and merges them",
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}, "x": 1}}),
                json!({"strategy": {"$retainKeys": ["type", "rollingUpdate"], "rollingUpdate": {"maxUnavailable": 0}}}),
                json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}),
            ),
            (
                "$retainKeys for a missing map is dropped with it",
                json!({}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}),
                json!({"strategy": {"type": "Recreate"}}),
            ),
        ]);
    }

    #[test]
    fn invalid_patches_are_errors() {
        let d = defs();
        let root = d.named("Root");
        let cases = [
            (
                "unknown map directive",
                json!({}),
                json!({"free": {"$patch": "bogus"}}),
                "unknown patch type",
            ),
            (
                "merge map directive",
                json!({"free": {}}),
                json!({"free": {"$patch": "merge"}}),
                "unknown patch type",
            ),
            (
                "unknown list directive",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"name": "a", "$patch": "bogus"}]}),
                "unknown patch type",
            ),
            (
                "merge list directive",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"$patch": "merge"}]}),
                "not supported in a list",
            ),
            (
                "item without merge key",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"value": "x"}]}),
                "does not contain declared merge key: name",
            ),
            (
                "delete without merge key",
                json!({"items": [{"name": "a"}]}),
                json!({"items": [{"$patch": "delete"}]}),
                "does not contain declared merge key",
            ),
            (
                "original item without merge key",
                json!({"items": [{"value": "a"}]}),
                json!({"items": [{"name": "b"}]}),
                "does not contain declared merge key",
            ),
            (
                "setElementOrder not a list",
                json!({}),
                json!({"$setElementOrder/items": {"name": "a"}}),
                "setElementOrder",
            ),
            (
                "setElementOrder item without key",
                json!({"items": [{"name": "a"}]}),
                json!({"$setElementOrder/items": [{"value": "a"}]}),
                "merge key",
            ),
            (
                "setElementOrder against the patch order",
                json!({"items": [{"name": "a"}, {"name": "b"}]}),
                json!({"$setElementOrder/items": [{"name": "a"}, {"name": "b"}], "items": [{"name": "b"}, {"name": "a"}]}),
                "doesn't match $setElementOrder",
            ),
            (
                "retainKeys not a list",
                json!({"strategy": {}}),
                json!({"strategy": {"$retainKeys": "type"}}),
                "retainKeys",
            ),
            (
                "key outside retainKeys",
                json!({"strategy": {}}),
                json!({"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate", "rollingUpdate": {}}}),
                "not in $retainKeys",
            ),
            (
                "deleteFromPrimitiveList not a list",
                json!({"args": ["a"]}),
                json!({"$deleteFromPrimitiveList/args": "a"}),
                "primitive list",
            ),
            (
                "list of lists",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": [["b"]]}}),
                "lists of lists",
            ),
            (
                "mixed item types",
                json!({"metadata": {"finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": [1]}}),
                "not identical",
            ),
            (
                "merge list of maps without merge key",
                json!({"nokey": [{"a": 1}]}),
                json!({"nokey": [{"b": 1}]}),
                "without a merge key",
            ),
            (
                "patch not an object",
                json!({}),
                json!([1]),
                "must be a JSON object",
            ),
            (
                "original not an object",
                json!(3),
                json!({}),
                "not an object",
            ),
        ];
        for (name, original, p, want) in cases {
            let e = patch(&original, &p, root).expect_err(name);
            assert!(e.message.contains(want), "{name}: {e}");
        }
        let e = patch(
            &json!({"items": [{"name": "a"}]}),
            &json!({"items": [{"name": "a", "$patch": "x"}]}),
            root,
        )
        .unwrap_err();
        assert!(e.message.starts_with("items: "), "{e}");
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "x"},
                "finalizers": ["example.com/a"]},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "tolerations": [{"key": "a", "operator": "Exists"}],
                        "imagePullSecrets": [{"name": "reg1"}],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "containers": [
                            {"name": "app", "image": "nginx:1",
                             "ports": [{"containerPort": 80, "protocol": "TCP"}],
                             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]},
                            {"name": "sidecar", "image": "busybox:1", "args": ["sleep", "1d"]}
                        ]
                    }
                }
            }
        })
    }

    fn patched(p: Value) -> Value {
        let schema = builtins().kind("apps", "v1", "Deployment");
        assert!(schema.is_some());
        patch(&deployment(), &p, schema).unwrap()
    }

    fn at<'v>(v: &'v Value, pointer: &str) -> &'v Value {
        v.pointer(pointer).unwrap_or(&Value::Null)
    }

    #[test]
    fn deployment_set_image_keeps_the_sidecar() {
        let got = patched(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}}),
        );
        let mut want = deployment();
        want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_eq!(got, want);
    }

    #[test]
    fn deployment_rollout_restart_adds_an_annotation() {
        let got = patched(json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-12-02T02:00:00Z"}}}}}));
        let mut want = deployment();
        want["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": "2026-12-02T02:00:00Z"});
        assert_eq!(got, want);
    }

    #[test]
    fn deployment_three_way_apply_removes_an_env_var() {
        // What kubectl apply sends when B was removed from the manifest.
        let got = patched(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                "env": [{"$patch": "delete", "name": "B"}],
                "name": "app"
            }]
        }}}}));
        let mut want = deployment();
        want["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]);
        assert_eq!(got, want);
    }

    #[test]
    fn deployment_strategy_change_drops_rolling_update() {
        let got =
            patched(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}));
        assert_eq!(at(&got, "/spec/strategy"), &json!({"type": "Recreate"}));
        let e = patch(
            &deployment(),
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}),
            builtins().kind("apps", "v1", "Deployment"),
        )
        .unwrap_err();
        assert!(e.message.contains("spec.strategy"), "{e}");
    }

    #[test]
    fn deployment_lists_follow_kube_metadata() {
        let got = patched(json!({
            "metadata": {"finalizers": ["example.com/b", "example.com/a"]},
            "spec": {"template": {"spec": {
                "tolerations": [{"key": "b", "operator": "Exists"}],
                "imagePullSecrets": [{"name": "reg2"}],
                "volumes": [{"name": "cache", "emptyDir": {}}],
                "containers": [{"name": "app", "ports": [{"containerPort": 443}], "args": ["-v"]},
                               {"name": "sidecar", "args": ["sleep", "2d"]}]
            }}}
        }));
        // finalizers: a merge list of strings; the union keeps the patch's order first.
        assert_eq!(
            at(&got, "/metadata/finalizers"),
            &json!(["example.com/b", "example.com/a"])
        );
        // tolerations are atomic in kube: the patch's list replaces.
        assert_eq!(
            at(&got, "/spec/template/spec/tolerations"),
            &json!([{"key": "b", "operator": "Exists"}])
        );
        assert_eq!(
            at(&got, "/spec/template/spec/imagePullSecrets"),
            &json!([{"name": "reg2"}, {"name": "reg1"}])
        );
        assert_eq!(
            at(&got, "/spec/template/spec/volumes"),
            &json!([{"name": "cache", "emptyDir": {}}, {"name": "data", "emptyDir": {}}])
        );
        assert_eq!(
            at(&got, "/spec/template/spec/containers/0/ports"),
            &json!([{"containerPort": 443}, {"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(
            at(&got, "/spec/template/spec/containers/0/args"),
            &json!(["-v"])
        );
        assert_eq!(
            at(&got, "/spec/template/spec/containers/1/args"),
            &json!(["sleep", "2d"])
        );
        let got = patched(
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
        );
        assert_eq!(at(&got, "/metadata/finalizers"), &json!([]));
    }

    #[test]
    fn deployment_nulls_delete() {
        let got = patched(json!({
            "metadata": {"labels": {"tier": null, "nope": null}},
            "spec": {"replicas": null, "template": {"spec": {"containers": [{"name": "sidecar", "args": null}]}}}
        }));
        let mut want = deployment();
        if let Some(m) = want["metadata"]["labels"].as_object_mut() {
            m.remove("tier");
        }
        if let Some(m) = want["spec"].as_object_mut() {
            m.remove("replicas");
        }
        if let Some(m) = want["spec"]["template"]["spec"]["containers"][1].as_object_mut() {
            m.remove("args");
        }
        assert_eq!(got, want);
    }

    #[test]
    fn deployment_container_replace_and_new_container() {
        let got = patched(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "init", "image": "alpine", "env": [{"name": "X", "value": "1"}]}
        ]}}}}));
        let names: Vec<&Value> = got["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().map(|c| &c["name"]).collect())
            .unwrap_or_default();
        assert_eq!(names, [&json!("init"), &json!("app"), &json!("sidecar")]);
        let got = patched(json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"}, {"name": "only", "image": "o"}
        ]}}}}));
        assert_eq!(
            at(&got, "/spec/template/spec/containers"),
            &json!([{"name": "only", "image": "o"}])
        );
    }
}
