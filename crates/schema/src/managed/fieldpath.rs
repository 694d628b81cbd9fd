//! Field paths and field sets as server-side apply tracks them, and their `FieldsV1` encoding.
//!
//! A path is a list of elements: a field name (`f:name`), a map-list item by its keys
//! (`k:{"name":"app"}`), a set item by its value (`v:"x"`) or a list index (`i:0`). A [`Set`] is a
//! tree of elements whose nodes are either members (the node itself is owned) or parents of
//! owned nodes, or both (`"."` in `FieldsV1`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum Pe {
    /// A field of a struct or a key of a map: `f:name`, `.name`.
    Field(String),
    /// An item of a map list, by its key fields sorted by name: `k:{...}`, `[name="app"]`.
    Key(Vec<(String, Value)>),
    /// An item of a set list, by its value: `v:...`, `[=...]`.
    Value(Value),
    /// An item of a list by position: `i:0`, `[0]`.
    Index(usize),
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// The total order structured-merge-diff gives values: numbers, strings, booleans, lists, maps,
/// null; numbers by value, lists and maps element by element.
pub fn value_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x.cmp(&y);
            }
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return x.cmp(&y);
            }
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = value_cmp(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xi = x.iter();
            let mut yi = y.iter();
            loop {
                match (xi.next(), yi.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some((kx, vx)), Some((ky, vy))) => {
                        let c = kx.cmp(ky).then_with(|| value_cmp(vx, vy));
                        if c != Ordering::Equal {
                            return c;
                        }
                    }
                }
            }
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Whether two values are equal as structured-merge-diff compares them (numbers by value).
pub fn value_eq(a: &Value, b: &Value) -> bool {
    value_cmp(a, b) == Ordering::Equal
}

impl Pe {
    fn kind(&self) -> u8 {
        match self {
            Pe::Field(_) => 0,
            Pe::Key(_) => 1,
            Pe::Value(_) => 2,
            Pe::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element (`f:`, `k:`, `v:`, `i:`).
    pub fn to_fields_key(&self) -> String {
        match self {
            Pe::Field(n) => format!("f:{n}"),
            Pe::Key(fields) => {
                let mut s = String::from("k:{");
                for (i, (n, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&json(&Value::String(n.clone())));
                    s.push(':');
                    s.push_str(&json(v));
                }
                s.push('}');
                s
            }
            Pe::Value(v) => format!("v:{}", json(v)),
            Pe::Index(i) => format!("i:{i}"),
        }
    }

    /// Reads a `FieldsV1` key. `Ok(None)` for a prefix this version does not know (kube drops
    /// those rather than fail).
    pub fn from_fields_key(s: &str) -> Result<Option<Pe>, String> {
        let (prefix, rest) = match s.split_at_checked(2) {
            Some(p) => p,
            None => return Err(format!("{s:?}: a path element is a prefix and a value")),
        };
        let parse = |r: &str| {
            serde_json::from_str::<Value>(r).map_err(|e| format!("{s:?}: invalid JSON: {e}"))
        };
        Ok(Some(match prefix {
            "f:" => Pe::Field(rest.to_string()),
            "v:" => Pe::Value(parse(rest)?),
            "i:" => Pe::Index(
                rest.parse()
                    .map_err(|_| format!("{s:?}: an index must be a non-negative integer"))?,
            ),
            "k:" => match parse(rest)? {
                // serde_json's map is ordered by key: the fields come out sorted by name.
                Value::Object(o) if !o.is_empty() => Pe::Key(o.into_iter().collect()),
                _ => return Err(format!("{s:?}: a key must be a non-empty JSON object")),
            },
            _ if s.as_bytes().get(1) == Some(&b':') => return Ok(None),
            _ => return Err(format!("{s:?}: unknown path element")),
        }))
    }
}

/// Go's `encoding/json` form of a value: compact, `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn json(v: &Value) -> String {
    go_escape(&serde_json::to_string(v).unwrap_or_default())
}

/// Escapes what Go's JSON encoder escapes and serde_json does not. Those characters can only
/// occur inside strings, so replacing them everywhere is safe.
pub fn go_escape(s: &str) -> String {
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A value as kube prints it in a path (`value.ToString`): strings quoted, numbers and booleans
/// bare.
fn value_string(v: &Value) -> String {
    match v {
        Value::Array(xs) => format!(
            "[{}]",
            xs.iter().map(value_string).collect::<Vec<_>>().join(",")
        ),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{k}={}", value_string(v)))
                .collect::<Vec<_>>()
                .join(";")
        ),
        other => json(other),
    }
}

impl std::fmt::Display for Pe {
    /// The element as kube prints it in a path: `.name`, `[name="app"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pe::Field(n) => write!(f, ".{n}"),
            Pe::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={}", value_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Pe::Value(v) => write!(f, "[={}]", value_string(v)),
            Pe::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Ord for Pe {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Pe::Field(a), Pe::Field(b)) => a.cmp(b),
            (Pe::Key(a), Pe::Key(b)) => {
                for ((na, va), (nb, vb)) in a.iter().zip(b) {
                    let c = na.cmp(nb).then_with(|| value_cmp(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Pe::Value(a), Pe::Value(b)) => value_cmp(a, b),
            (Pe::Index(a), Pe::Index(b)) => a.cmp(b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

impl PartialOrd for Pe {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pe {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pe {}

/// A path as kube prints it, e.g. `.spec.template.spec.containers[name="app"].image`.
pub fn path_string(path: &[Pe]) -> String {
    path.iter().map(|p| p.to_string()).collect()
}

/// A set of field paths, as a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    /// Elements owned themselves at this level.
    pub members: BTreeSet<Pe>,
    /// Elements with owned descendants.
    pub children: BTreeMap<Pe, Set>,
}

impl Set {
    /// An empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// Adds a path (the empty path is ignored).
    pub fn insert(&mut self, path: &[Pe]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is a member.
    pub fn has(&self, path: &[Pe]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// The subtree under `pe` (its descendants), if any.
    pub fn child(&self, pe: &Pe) -> Option<&Set> {
        self.children.get(pe)
    }

    fn prune(mut self) -> Set {
        self.children.retain(|_, c| !c.is_empty());
        self
    }

    /// Every path in either set.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, c) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out.prune()
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, c)| {
                other
                    .children
                    .get(pe)
                    .map(|o| (pe.clone(), c.intersection(o)))
            })
            .collect();
        Set { members, children }.prune()
    }

    /// Paths in this set and not in `other`. A member of `other` does not take away the
    /// descendants of the same element (they are different paths).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, c)| match other.children.get(pe) {
                Some(o) => (pe.clone(), c.difference(o)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set { members, children }.prune()
    }

    /// The paths with a member of `excluded` as prefix (or equal to one) taken out.
    pub fn exclude(&self, excluded: &Set) -> Set {
        let members = self
            .members
            .iter()
            .filter(|pe| !excluded.members.contains(pe))
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !excluded.members.contains(pe))
            .map(|(pe, c)| match excluded.children.get(pe) {
                Some(e) => (pe.clone(), c.exclude(e)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set { members, children }.prune()
    }

    /// Every path, in kube's order: at each level the members, then the children's paths.
    pub fn paths(&self) -> Vec<Vec<Pe>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<Pe>, out: &mut Vec<Vec<Pe>>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` form: `{"f:spec": {"f:replicas": {}}}`, `"."` marking a node that is
    /// itself a member and has children.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        let mut keys: BTreeSet<&Pe> = self.members.iter().collect();
        keys.extend(
            self.children
                .iter()
                .filter(|(_, c)| !c.is_empty())
                .map(|(pe, _)| pe),
        );
        for pe in keys {
            let child = self.children.get(pe).filter(|c| !c.is_empty());
            let mut node = match child {
                Some(c) => match c.to_fields_v1() {
                    Value::Object(o) => o,
                    _ => Map::new(),
                },
                None => Map::new(),
            };
            if child.is_some() && self.members.contains(pe) {
                node.insert(".".into(), Value::Object(Map::new()));
            }
            out.insert(pe.to_fields_key(), Value::Object(node));
        }
        Value::Object(out)
    }

    /// Reads the `FieldsV1` form. Unknown element prefixes are dropped, as kube does.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let o = v
            .as_object()
            .ok_or_else(|| format!("expected an object, got {}", json(v)))?;
        Ok(Self::read(o)?.0)
    }

    /// The set under one node, and whether the node itself is a member.
    fn read(o: &Map<String, Value>) -> Result<(Set, bool), String> {
        let mut set = Set::new();
        let mut member = false;
        let mut any = false;
        for (k, v) in o {
            if k == "." {
                member = true;
                continue;
            }
            let Some(pe) = Pe::from_fields_key(k)? else {
                continue;
            };
            any = true;
            let child = v
                .as_object()
                .ok_or_else(|| format!("{k:?}: expected an object, got {}", json(v)))?;
            let (grandchildren, child_member) = Self::read(child)?;
            if child_member {
                set.members.insert(pe.clone());
            }
            if !grandchildren.is_empty() {
                set.children.insert(pe, grandchildren);
            }
        }
        Ok((set, member || !any))
    }
}
