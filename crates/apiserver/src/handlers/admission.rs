//! What happens to a body between decoding and storage, as in kube-apiserver: field
//! validation (`fieldValidation=Strict|Warn|Ignore`: unknown and duplicate fields), type checks,
//! pruning, defaults and validation (built-in kinds from their schemas and kube's defaulting and
//! validation rules; CRDs from their structural schemas), and managed fields. The algorithms
//! live in `flotilla-schema`; this module picks the schema for a resource and maps the results
//! onto Status errors and `Warning` headers.

use axum::http::HeaderValue;
use axum::response::Response;
use flotilla_schema::managed::{self, Operation};
use flotilla_schema::{Node, builtin, defaults, validate};
use serde_json::Value;

use crate::app::ResourceRequest;
use crate::errors::{Cause, Error, Result};
use crate::registry::ResourceInfo;

/// `fieldValidation`: what to do with unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    /// From the request's query; kube-apiserver's default is `Warn`. `options` names the
    /// verb's options kind in the error (`CreateOptions`, `UpdateOptions`, `PatchOptions`).
    pub(crate) fn of(rr: &ResourceRequest, options: &str) -> Result<Self> {
        match rr.query.get("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(Self::Warn),
            "Strict" => Ok(Self::Strict),
            "Ignore" => Ok(Self::Ignore),
            other => Err(Error::invalid(
                "meta.k8s.io",
                options,
                "",
                vec![Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: \"{other}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                    ),
                    field: "fieldValidation".into(),
                }],
            )),
        }
    }
}

/// The schema objects of a resource are checked against: the CRD version's schema, or the
/// built-in kind's. None for a kind without one (then nothing is pruned or checked).
pub(crate) fn schema_of(info: &ResourceInfo) -> Option<Node<'_>> {
    match &info.schema {
        Some(s) => Some(Node::standalone(s.schema())),
        None if info.custom => None,
        None => builtin::builtins().kind(&info.group, &info.version, &info.kind),
    }
}

/// Warnings for the response (`Warning: 299 - "..."` headers).
#[derive(Debug, Default)]
pub(crate) struct Warnings(Vec<String>);

impl Warnings {
    pub(crate) fn push(&mut self, w: impl Into<String>) {
        self.0.push(w.into());
    }

    /// Adds the headers to a response.
    pub(crate) fn attach(self, mut resp: Response) -> Response {
        for w in self.0 {
            let text = format!("299 - {}", serde_json::Value::String(w));
            if let Ok(v) = HeaderValue::from_str(&text) {
                resp.headers_mut().append("warning", v);
            }
        }
        resp
    }
}

/// The field problems of one body: unknown fields (found while pruning) and duplicates (found
/// while decoding), reported as `fieldValidation` says.
#[derive(Debug, Default)]
pub(crate) struct FieldProblems {
    pub(crate) duplicates: Vec<String>,
    pub(crate) unknown: Vec<String>,
}

impl FieldProblems {
    /// The duplicate fields of a JSON body (other encodings cannot carry duplicates this server
    /// would see).
    pub(crate) fn of_body(content_type: Option<&str>, body: &[u8]) -> Self {
        let media = crate::codec::media_type(content_type);
        let json = matches!(
            media.as_str(),
            "" | "application/json"
                | "*/*"
                | "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
        ) || body.first() == Some(&b'{');
        FieldProblems {
            duplicates: if json {
                validate::duplicate_fields(body)
            } else {
                Vec::new()
            },
            unknown: Vec::new(),
        }
    }

    fn report(
        &self,
        info: &ResourceInfo,
        mode: FieldValidation,
        warnings: &mut Warnings,
    ) -> Result<()> {
        let mut all: Vec<String> = Vec::new();
        for u in &self.unknown {
            all.push(format!("unknown field \"{u}\""));
        }
        for d in &self.duplicates {
            all.push(format!("duplicate field \"{d}\""));
        }
        match mode {
            FieldValidation::Ignore => Ok(()),
            FieldValidation::Warn => {
                for w in all {
                    warnings.push(w);
                }
                Ok(())
            }
            FieldValidation::Strict if all.is_empty() => Ok(()),
            FieldValidation::Strict => Err(Error::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                all.join(", "),
                kind = info.kind,
                v = info.version,
            ))),
        }
    }
}

fn causes(c: Vec<flotilla_schema::Cause>) -> Vec<Cause> {
    c.into_iter()
        .map(|c| Cause {
            reason: c.reason,
            message: c.message,
            field: c.field,
        })
        .collect()
}

/// Checks and completes an object about to be stored (the full object after a create, update or
/// patch), in kube-apiserver's order up to managed fields: type errors of built-in kinds (400),
/// unknown fields (pruned; Strict → 400, Warn → warnings), then defaults (which the writer
/// owns). [`validate`] follows once managed fields are recorded.
pub(crate) fn admit(
    info: &ResourceInfo,
    obj: &mut Value,
    problems: &mut FieldProblems,
    mode: FieldValidation,
    warnings: &mut Warnings,
) -> Result<()> {
    let Some(node) = schema_of(info) else {
        return problems.report(info, mode, warnings);
    };
    check_types(info, obj, node)?;
    problems.unknown = validate::prune(obj, node, info.custom);
    problems.report(info, mode, warnings)?;
    if info.custom {
        validate::apply_defaults(obj, node);
    } else {
        defaults::default(&info.group, &info.kind, obj);
        if info.group == "apiextensions.k8s.io" && info.kind == "CustomResourceDefinition" {
            default_crd(obj);
        }
        validate::drop_empty(obj, node);
    }
    Ok(())
}

/// A built-in kind's wrongly typed field: the Go decoder's 400, whatever `fieldValidation` says.
fn check_types(info: &ResourceInfo, obj: &Value, node: Node<'_>) -> Result<()> {
    if info.custom {
        return Ok(());
    }
    match validate::builtin_type_error(obj, node) {
        Some(e) => Err(Error::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
            kind = info.kind,
            v = info.version,
        ))),
        None => Ok(()),
    }
}

/// What the create strategies fill after managed fields are recorded (owned by no manager).
pub(crate) fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    if !info.custom {
        defaults::prepare_for_create(&info.group, &info.kind, obj);
    }
}

/// What the update strategies fill after managed fields are recorded: a Service that newly
/// needs an address gets its IP families.
pub(crate) fn prepare_for_update(info: &ResourceInfo, obj: &mut Value) {
    if !info.custom {
        defaults::prepare_for_update(&info.group, &info.kind, obj);
    }
}

/// kube-apiserver's validation of the object to store (422 with one cause per field): CRDs'
/// structural schemas, built-in kinds' rules; then the strategies' warnings on a valid object.
/// `old` is the stored object on update.
pub(crate) fn validate(
    info: &ResourceInfo,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
    warnings: &mut Warnings,
) -> Result<()> {
    let Some(node) = schema_of(info) else {
        return Ok(());
    };
    let found = if info.custom {
        validate::validate_custom(obj, node)
    } else {
        defaults::validate(&info.group, &info.kind, obj, old)
    };
    if !found.is_empty() {
        return Err(Error::invalid(&info.group, &info.kind, name, causes(found)));
    }
    if !info.custom {
        for w in defaults::warnings(&info.group, &info.kind, obj) {
            warnings.push(w);
        }
    }
    Ok(())
}

/// CustomResourceDefinition defaults: `spec.conversion.strategy: None`, and the names
/// `singular` (the kind in lower case) and `listKind` (the kind + `List`).
fn default_crd(obj: &mut Value) {
    if let Some(names) = obj
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
        && let Some(kind) = names
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_string)
    {
        names
            .entry("singular")
            .or_insert_with(|| serde_json::json!(kind.to_lowercase()));
        names
            .entry("listKind")
            .or_insert_with(|| serde_json::json!(format!("{kind}List")));
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        let conversion = spec
            .entry("conversion")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(c) = conversion.as_object_mut() {
            c.entry("strategy")
                .or_insert_with(|| serde_json::json!("None"));
        }
    }
}

/// Checks a server-side apply body before it is merged: type errors of built-in kinds (400) and
/// unknown fields (pruned; Strict → 400, Warn → warnings), so the applier never owns a field the
/// schema does not have.
pub(crate) fn check_applied(
    info: &ResourceInfo,
    applied: &mut Value,
    problems: &mut FieldProblems,
    mode: FieldValidation,
    warnings: &mut Warnings,
) -> Result<()> {
    if let Some(node) = schema_of(info) {
        check_types(info, applied, node)?;
        problems.unknown = validate::prune(applied, node, info.custom);
    }
    let reported = problems.report(info, mode, warnings);
    *problems = FieldProblems::default();
    reported
}

/// Defaults applied when a stored custom resource is read (its CRD may have gained defaults
/// since it was written), as kube-apiserver does on read.
/// Whether [`default_on_read`] would change `obj`.
pub(crate) fn defaults_missing_on_read(info: &ResourceInfo, obj: &Value) -> bool {
    info.custom && schema_of(info).is_some_and(|node| validate::defaults_missing(obj, node))
}

pub(crate) fn default_on_read(info: &ResourceInfo, obj: &mut Value) {
    if info.custom
        && let Some(node) = schema_of(info)
    {
        validate::apply_defaults(obj, node);
    }
}

/// The field manager of a write: `fieldManager`, else the User-Agent up to its first `/`
/// (kube-apiserver's rule), else `unknown`. `options` names the verb's options kind in the 422
/// for a name over 128 bytes.
pub(crate) fn manager_of(rr: &ResourceRequest, options: &str) -> Result<String> {
    if let Some(m) = rr.query.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.len() > 128 {
            return Err(Error::invalid(
                "meta.k8s.io",
                options,
                "",
                vec![Cause {
                    reason: "FieldValueTooLong".into(),
                    message: "Too long: may not be more than 128 bytes".into(),
                    field: "fieldManager".into(),
                }],
            ));
        }
        return Ok(m.to_string());
    }
    let ua = rr.user_agent.as_deref().unwrap_or("");
    let prefix = ua.split('/').next().unwrap_or("").trim();
    Ok(if prefix.is_empty() {
        "unknown".to_string()
    } else {
        prefix.chars().take(128).collect()
    })
}

/// The fields a write through this endpoint never owns (kube's strategies' reset fields): the
/// main resource of a kind with a status subresource leaves `status` alone, and the status
/// subresource everything but `status`.
fn reset_fields(info: &ResourceInfo, sub: &str) -> &'static [&'static str] {
    match sub {
        "status" => &["spec", "metadata.labels", "metadata.annotations"],
        "" if info.status => &["status"],
        _ => &[],
    }
}

fn request<'a>(
    info: &'a ResourceInfo,
    manager: &'a str,
    sub: &'a str,
    time: &'a str,
    operation: Operation,
    force: bool,
    api_version: &'a str,
) -> managed::Request<'a> {
    managed::Request {
        manager,
        operation,
        api_version,
        kind: &info.kind,
        subresource: sub,
        time,
        force,
        reset: reset_fields(info, sub),
    }
}

fn managed_error(info: &ResourceInfo, name: &str, e: managed::ApplyError) -> Error {
    match e {
        managed::ApplyError::Conflicts(c) => {
            let status = managed::conflict_status(&c);
            Error::Api {
                code: 409,
                reason: "Conflict",
                message: managed::conflict_message(&c),
                details: status.get("details").cloned().map(Box::new),
            }
        }
        managed::ApplyError::BadRequest(m) => Error::bad_request(m),
        managed::ApplyError::Invalid(c) => Error::invalid(&info.group, &info.kind, name, causes(c)),
    }
}

/// Records a non-apply write's field ownership in `new.metadata.managedFields`.
pub(crate) fn record_update(
    rr: &ResourceRequest,
    options: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<Value> {
    let manager = manager_of(rr, options)?;
    let sub = rr.sub.as_deref().unwrap_or("");
    let name = rr.name.as_deref().unwrap_or("");
    record_update_by(&rr.info, &manager, sub, name, old, new)
}

/// Records an update by `manager` (through subresource `sub`, `""` for the main resource) in
/// `new.metadata.managedFields`: what kube's field manager does for any client's write, the
/// server's own controllers included.
pub(crate) fn record_update_by(
    info: &ResourceInfo,
    manager: &str,
    sub: &str,
    name: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<Value> {
    let Some(node) = schema_of(info) else {
        return Ok(new.clone());
    };
    let time = crate::handlers::crud::now();
    let api_version = info.api_version();
    let req = request(
        info,
        manager,
        sub,
        &time,
        Operation::Update,
        false,
        &api_version,
    );
    managed::update(old, new, node, &req)
        .map(|o| without_managed_fields(info, o))
        .map_err(|e| managed_error(info, name, e))
}

/// `obj` without `metadata.managedFields` for a resource that keeps none.
fn without_managed_fields(info: &ResourceInfo, mut obj: Value) -> Value {
    if !info.managed_fields
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.remove("managedFields");
    }
    obj
}

/// Server-side apply of `applied` onto `live` (None: the object does not exist yet).
pub(crate) fn server_side_apply(
    rr: &ResourceRequest,
    live: Option<&Value>,
    applied: &Value,
) -> Result<Value> {
    let info = &rr.info;
    let node = schema_of(info).ok_or_else(|| {
        Error::api(
            415,
            "UnsupportedMediaType",
            "server-side apply needs a schema for this resource",
        )
    })?;
    if rr.query.get("fieldManager").is_some_and(|m| m.len() > 128) {
        // The same limit as every other write's (`manager_of`).
        manager_of(rr, "PatchOptions")?;
    }
    let manager = rr
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            Error::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: is required for apply patch".into(),
                    field: "fieldManager".into(),
                }],
            )
        })?
        .to_string();
    let time = crate::handlers::crud::now();
    let api_version = info.api_version();
    let sub = rr.sub.as_deref().unwrap_or("");
    let force = rr.query.flag("force");
    let req = request(
        info,
        &manager,
        sub,
        &time,
        Operation::Apply,
        force,
        &api_version,
    );
    let name = rr.name.as_deref().unwrap_or("");
    managed::apply(live, applied, node, &req)
        .map(|o| without_managed_fields(info, o))
        .map_err(|e| managed_error(info, name, e))
}
