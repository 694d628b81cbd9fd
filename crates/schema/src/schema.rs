//! The schema model every algorithm in this crate walks: OpenAPI v3 schemas (built-in kinds and
//! CRDs alike) reduced to what merging, ownership and validation need, with named definitions
//! resolved through [`Node`].

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// The JSON type a schema declares (`type`), or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Type {
    /// No `type`: anything goes (e.g. `x-kubernetes-preserve-unknown-fields` or `JSON`).
    #[default]
    Unspecified,
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => return None,
        })
    }

    /// The name OpenAPI uses (`""` for [`Type::Unspecified`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Unspecified => "",
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

/// How a list merges and is owned (`x-kubernetes-list-type`, or what the patch strategy implies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole; one owner.
    Atomic,
    /// A set of scalars; each value owned on its own.
    Set,
    /// Items identified by these keys; each item owned on its own.
    Map(Vec<String>),
}

/// One schema node as written (a property, an item, a definition). Fields mirror OpenAPI v3 and
/// the Kubernetes extensions; unset means absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    /// `$ref` target: the name of a definition in the same [`Definitions`].
    pub reference: Option<String>,
    pub ty: Type,
    pub description: Option<String>,
    pub format: Option<String>,
    pub nullable: bool,
    pub default: Option<Value>,
    pub enumeration: Vec<Value>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub pattern: Option<String>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub unique_items: bool,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub required: Vec<String>,
    pub properties: BTreeMap<String, Schema>,
    /// `additionalProperties` as a schema (a map's values).
    pub additional_properties: Option<Box<Schema>>,
    /// `additionalProperties: true` without a schema.
    pub additional_any: bool,
    pub items: Option<Box<Schema>>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`: `atomic` or `granular`.
    pub map_type: Option<String>,
    /// `x-kubernetes-patch-strategy`, split on commas (`merge`, `retainKeys`, `replace`).
    pub patch_strategy: Vec<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<String>,
    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    /// `allOf`/`anyOf`/`oneOf`/`not` sub-schemas, kept for validation only.
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
}

/// A schema could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// Where, as a dotted path from the root of the schema.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for SchemaError {}

fn reference_name(r: &str) -> String {
    r.rsplit('/').next().unwrap_or(r).to_string()
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

fn count(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

impl Schema {
    /// Reads an OpenAPI v3 (or JSON Schema) object. `$ref`s (`#/components/schemas/X`,
    /// `#/$defs/X`, `#/definitions/X`, also wrapped in a one-element `allOf`) become
    /// [`Schema::reference`] to definition `X`.
    pub fn from_openapi(v: &Value) -> Result<Schema, SchemaError> {
        Self::read(v, "")
    }

    fn read(v: &Value, path: &str) -> Result<Schema, SchemaError> {
        let err = |message: String| SchemaError {
            path: if path.is_empty() {
                "<root>".into()
            } else {
                path.to_string()
            },
            message,
        };
        let o = match v {
            Value::Object(o) => o,
            Value::Bool(true) => return Ok(Schema::default()),
            other => return Err(err(format!("a schema must be an object, not {other}"))),
        };
        let at = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        let string = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
        let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
        let mut s = Schema {
            reference: string("$ref").map(|r| reference_name(&r)),
            description: string("description"),
            format: string("format"),
            nullable: flag("nullable"),
            default: o.get("default").cloned(),
            minimum: num(o.get("minimum")),
            maximum: num(o.get("maximum")),
            exclusive_minimum: flag("exclusiveMinimum"),
            exclusive_maximum: flag("exclusiveMaximum"),
            multiple_of: num(o.get("multipleOf")),
            min_length: count(o.get("minLength")),
            max_length: count(o.get("maxLength")),
            pattern: string("pattern"),
            min_items: count(o.get("minItems")),
            max_items: count(o.get("maxItems")),
            unique_items: flag("uniqueItems"),
            min_properties: count(o.get("minProperties")),
            max_properties: count(o.get("maxProperties")),
            list_type: string("x-kubernetes-list-type"),
            map_type: string("x-kubernetes-map-type"),
            patch_merge_key: string("x-kubernetes-patch-merge-key"),
            preserve_unknown_fields: flag("x-kubernetes-preserve-unknown-fields"),
            embedded_resource: flag("x-kubernetes-embedded-resource"),
            int_or_string: flag("x-kubernetes-int-or-string"),
            ..Schema::default()
        };
        match o.get("type") {
            None => {}
            Some(Value::String(t)) => {
                s.ty = Type::parse(t).ok_or_else(|| err(format!("unknown type {t:?}")))?;
            }
            // JSON Schema 2020-12 (schemars) writes nullable types as ["string", "null"].
            Some(Value::Array(ts)) => {
                for t in ts.iter().filter_map(Value::as_str) {
                    if t == "null" {
                        s.nullable = true;
                    } else {
                        s.ty = Type::parse(t).ok_or_else(|| err(format!("unknown type {t:?}")))?;
                    }
                }
            }
            Some(other) => return Err(err(format!("type must be a string, not {other}"))),
        }
        if let Some(e) = o.get("enum") {
            s.enumeration = e
                .as_array()
                .ok_or_else(|| err("enum must be a list".into()))?
                .clone();
        }
        if let Some(r) = o.get("required").and_then(Value::as_array) {
            s.required = r
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
        if let Some(k) = o
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
        {
            s.list_map_keys = k
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
        if let Some(p) = o.get("x-kubernetes-patch-strategy").and_then(Value::as_str) {
            s.patch_strategy = p.split(',').map(|x| x.trim().to_string()).collect();
        }
        if let Some(props) = o.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| err("properties must be an object".into()))?;
            for (k, v) in props {
                s.properties
                    .insert(k.clone(), Self::read(v, &at(&format!("properties.{k}")))?);
            }
        }
        match o.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => s.additional_any = true,
            Some(v) => {
                s.additional_properties =
                    Some(Box::new(Self::read(v, &at("additionalProperties"))?));
            }
        }
        if let Some(items) = o.get("items") {
            s.items = Some(Box::new(Self::read(items, &at("items"))?));
        }
        let list = |k: &str| -> Result<Vec<Schema>, SchemaError> {
            match o.get(k) {
                None => Ok(Vec::new()),
                Some(Value::Array(xs)) => xs
                    .iter()
                    .enumerate()
                    .map(|(i, x)| Self::read(x, &at(&format!("{k}[{i}]"))))
                    .collect(),
                Some(_) => Err(err(format!("{k} must be a list"))),
            }
        };
        s.all_of = list("allOf")?;
        s.any_of = list("anyOf")?;
        s.one_of = list("oneOf")?;
        if let Some(n) = o.get("not") {
            s.not = Some(Box::new(Self::read(n, &at("not"))?));
        }
        // `allOf: [{$ref}]` is how OpenAPI 3.0 attaches a description to a reference.
        if s.reference.is_none()
            && s.all_of.len() == 1
            && let Some(r) = s.all_of[0].reference.clone()
        {
            s.reference = Some(r);
            s.all_of.clear();
        }
        Ok(s)
    }

    /// Sets the Kubernetes list/map/patch extensions from a metadata object such as
    /// `{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}`.
    pub fn set_extensions(&mut self, meta: &Map<String, Value>) {
        let string = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(t) = string("x-kubernetes-list-type") {
            self.list_type = Some(t);
        }
        if let Some(t) = string("x-kubernetes-map-type") {
            self.map_type = Some(t);
        }
        if let Some(k) = string("x-kubernetes-patch-merge-key") {
            self.patch_merge_key = Some(k);
        }
        if let Some(p) = string("x-kubernetes-patch-strategy") {
            self.patch_strategy = p.split(',').map(|x| x.trim().to_string()).collect();
        }
        if let Some(k) = meta
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
        {
            self.list_map_keys = k
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
    }
}

/// Named schemas that [`Schema::reference`]s point into.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    defs: HashMap<String, Schema>,
}

impl Definitions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, schema: Schema) {
        self.defs.insert(name.into(), schema);
    }

    pub fn get(&self, name: &str) -> Option<&Schema> {
        self.defs.get(name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Schema> {
        self.defs.get_mut(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }

    /// A walkable view of `schema`, resolving references through these definitions.
    pub fn node<'a>(&'a self, schema: &'a Schema) -> Node<'a> {
        Node::new(self, schema)
    }

    /// The definition `name` as a node.
    pub fn named(&self, name: &str) -> Option<Node<'_>> {
        self.defs.get(name).map(|s| Node::new(self, s))
    }
}

static EMPTY: std::sync::LazyLock<Definitions> = std::sync::LazyLock::new(Definitions::default);

/// A schema position: the schema as written at that place (`outer`, which carries a property's
/// own description and list/patch extensions) and the schema it resolves to (`target`, after
/// following `$ref`s).
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    defs: &'a Definitions,
    outer: &'a Schema,
    target: &'a Schema,
}

impl<'a> Node<'a> {
    fn new(defs: &'a Definitions, outer: &'a Schema) -> Self {
        let mut target = outer;
        // Bounded: a definition that refers to itself directly must not loop.
        for _ in 0..16 {
            match target.reference.as_deref().and_then(|r| defs.defs.get(r)) {
                Some(t) if !std::ptr::eq(t, target) => target = t,
                _ => break,
            }
        }
        Node {
            defs,
            outer,
            target,
        }
    }

    /// A node for a self-contained schema (no references), e.g. a CRD's `openAPIV3Schema`.
    pub fn standalone(schema: &'a Schema) -> Self {
        Node::new(&EMPTY, schema)
    }

    /// The resolved schema.
    pub fn schema(&self) -> &'a Schema {
        self.target
    }

    /// The schema as written at this position (before following `$ref`).
    pub fn outer(&self) -> &'a Schema {
        self.outer
    }

    pub fn definitions(&self) -> &'a Definitions {
        self.defs
    }

    pub fn ty(&self) -> Type {
        self.target.ty
    }

    pub fn description(&self) -> Option<&'a str> {
        self.outer
            .description
            .as_deref()
            .or(self.target.description.as_deref())
    }

    /// The definition name this node resolves to, if any.
    pub fn reference(&self) -> Option<&'a str> {
        self.outer.reference.as_deref()
    }

    /// The schema of property `name` of an object.
    pub fn field(&self, name: &str) -> Option<Node<'a>> {
        self.target
            .properties
            .get(name)
            .map(|s| Node::new(self.defs, s))
    }

    /// Declared properties, in name order.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, Node<'a>)> + 'a {
        let defs = self.defs;
        self.target
            .properties
            .iter()
            .map(move |(k, s)| (k.as_str(), Node::new(defs, s)))
    }

    /// The schema of a map's values (`additionalProperties`).
    pub fn additional(&self) -> Option<Node<'a>> {
        self.target
            .additional_properties
            .as_deref()
            .map(|s| Node::new(self.defs, s))
    }

    /// The schema of a list's items.
    pub fn items(&self) -> Option<Node<'a>> {
        self.target
            .items
            .as_deref()
            .map(|s| Node::new(self.defs, s))
    }

    /// The schema for child `key` of an object: a declared property, else the map value schema.
    pub fn child(&self, key: &str) -> Option<Node<'a>> {
        self.field(key).or_else(|| self.additional())
    }

    fn ext<T>(&self, f: impl Fn(&'a Schema) -> Option<T>) -> Option<T> {
        f(self.outer).or_else(|| f(self.target))
    }

    /// The patch strategies at this position (`merge`, `retainKeys`, `replace`).
    pub fn patch_strategy(&self) -> &'a [String] {
        if self.outer.patch_strategy.is_empty() {
            &self.target.patch_strategy
        } else {
            &self.outer.patch_strategy
        }
    }

    pub fn has_patch_strategy(&self, s: &str) -> bool {
        self.patch_strategy().iter().any(|x| x == s)
    }

    pub fn patch_merge_key(&self) -> Option<&'a str> {
        self.ext(|s| s.patch_merge_key.as_deref())
    }

    /// How this list merges and is owned: `x-kubernetes-list-type` when set; otherwise, as
    /// kube-apiserver derives it from the patch strategy, `merge` with a merge key is a map list
    /// keyed by it and `merge` without one a set; anything else is atomic.
    pub fn list_kind(&self) -> ListKind {
        match self.ext(|s| s.list_type.as_deref()) {
            Some("set") => return ListKind::Set,
            Some("map") => {
                let keys = if self.outer.list_map_keys.is_empty() {
                    &self.target.list_map_keys
                } else {
                    &self.outer.list_map_keys
                };
                if !keys.is_empty() {
                    return ListKind::Map(keys.clone());
                }
                if let Some(k) = self.patch_merge_key() {
                    return ListKind::Map(vec![k.to_string()]);
                }
                return ListKind::Atomic;
            }
            Some(_) => return ListKind::Atomic,
            None => {}
        }
        if self.has_patch_strategy("merge") {
            return match self.patch_merge_key() {
                Some(k) => ListKind::Map(vec![k.to_string()]),
                None => ListKind::Set,
            };
        }
        ListKind::Atomic
    }

    /// `x-kubernetes-map-type: atomic` (also set on whole structs, e.g. `LabelSelector`).
    pub fn is_atomic_map(&self) -> bool {
        self.ext(|s| s.map_type.as_deref()) == Some("atomic")
    }

    pub fn preserves_unknown_fields(&self) -> bool {
        self.outer.preserve_unknown_fields || self.target.preserve_unknown_fields
    }

    pub fn is_embedded_resource(&self) -> bool {
        self.outer.embedded_resource || self.target.embedded_resource
    }

    pub fn is_int_or_string(&self) -> bool {
        self.outer.int_or_string || self.target.int_or_string
    }

    /// Whether an object at this position accepts fields it does not declare.
    pub fn accepts_unknown_fields(&self) -> bool {
        self.ty() == Type::Unspecified
            || self.preserves_unknown_fields()
            || self.target.additional_properties.is_some()
            || self.target.additional_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs() -> Definitions {
        let mut d = Definitions::new();
        d.insert(
            "Spec",
            Schema::from_openapi(&json!({
                "type": "object",
                "properties": {
                    "containers": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Container"},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "name"
                    },
                    "finalizers": {
                        "type": "array", "items": {"type": "string"},
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "args": {"type": "array", "items": {"type": "string"}},
                    "ports": {
                        "type": "array", "items": {"type": "object"},
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                        "x-kubernetes-patch-merge-key": "containerPort"
                    },
                    "selector": {"allOf": [{"$ref": "#/$defs/Selector"}], "description": "here"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }))
            .unwrap(),
        );
        d.insert(
            "Container",
            Schema::from_openapi(&json!({"type": "object", "required": ["name"],
                "properties": {"name": {"type": "string"}}}))
            .unwrap(),
        );
        d.insert(
            "Selector",
            Schema::from_openapi(&json!({"type": "object", "description": "there",
                "x-kubernetes-map-type": "atomic"}))
            .unwrap(),
        );
        d
    }

    #[test]
    fn list_kinds_follow_list_type_then_patch_strategy() {
        let d = defs();
        let spec = d.named("Spec").unwrap();
        let cases = [
            ("containers", ListKind::Map(vec!["name".into()])),
            ("finalizers", ListKind::Set),
            ("args", ListKind::Atomic),
            (
                "ports",
                ListKind::Map(vec!["containerPort".into(), "protocol".into()]),
            ),
        ];
        for (field, want) in cases {
            assert_eq!(spec.field(field).unwrap().list_kind(), want, "{field}");
        }
    }

    #[test]
    fn references_resolve_and_keep_the_outer_description() {
        let d = defs();
        let spec = d.named("Spec").unwrap();
        let sel = spec.field("selector").unwrap();
        assert!(sel.is_atomic_map());
        assert_eq!(sel.description(), Some("here"));
        let item = spec.field("containers").unwrap().items().unwrap();
        assert_eq!(item.ty(), Type::Object);
        assert_eq!(item.schema().required, vec!["name".to_string()]);
        let labels = spec.field("labels").unwrap();
        assert_eq!(labels.child("anything").unwrap().ty(), Type::String);
        assert!(labels.accepts_unknown_fields());
        assert!(!item.accepts_unknown_fields());
    }

    #[test]
    fn nullable_type_lists_and_bad_schemas() {
        let s = Schema::from_openapi(&json!({"type": ["string", "null"]})).unwrap();
        assert_eq!((s.ty, s.nullable), (Type::String, true));
        let e = Schema::from_openapi(&json!({"properties": {"a": {"type": "strng"}}})).unwrap_err();
        assert_eq!(e.path, "properties.a");
        assert!(Schema::from_openapi(&json!(3)).is_err());
    }
}
