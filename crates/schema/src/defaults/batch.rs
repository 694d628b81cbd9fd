//! batch/v1: Job and CronJob.

use serde_json::{Value, json};

use super::pod;
use super::util::*;
use crate::Cause;

const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_UID_LABEL: &str = "controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_NAME_LABEL: &str = "job-name";

fn meta_str(obj: &Obj, k: &str) -> String {
    obj.get("metadata")
        .and_then(|m| m.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Defaults of a batch/v1 kind.
pub(crate) fn default(kind: &str, obj: &mut Obj) {
    match kind {
        "Job" => default_job(obj),
        "CronJob" => {
            if let Some(spec) = ensure_obj(obj, "spec") {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
                if let Some(jt) = ensure_obj(spec, "jobTemplate") {
                    ensure_obj(jt, "metadata");
                    if let Some(js) = ensure_obj(jt, "spec")
                        && let Some(t) = ensure_obj(js, "template")
                    {
                        pod::default_template(t);
                    }
                }
            }
            ensure_obj(obj, "status");
        }
        _ => {}
    }
}

/// `SetDefaults_Job` and the Job strategy's selector generation (from `metadata.uid`).
fn default_job(obj: &mut Obj) {
    let uid = meta_str(obj, "uid");
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    if absent(spec, "completions") && absent(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    if absent(spec, "backoffLimitPerIndex") {
        set_default(spec, "backoffLimit", json!(6));
    } else {
        set_default(spec, "backoffLimit", json!(i32::MAX));
    }
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let rpr = if absent(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_default(spec, "podReplacementPolicy", json!(rpr));
    if let Some(pfp) = obj_at(spec, "podFailurePolicy") {
        for rule in each_obj(pfp, "rules") {
            for pattern in each_obj(rule, "onPodConditions") {
                set_default(pattern, "status", json!("True"));
            }
        }
    }
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if let Some(t) = ensure_obj(spec, "template") {
        pod::default_template(t);
    }
    if !manual && !uid.is_empty() {
        spec.insert("manualSelector".into(), json!(false));
    }
    ensure_obj(obj, "status");
}

/// The Job strategy's `PrepareForCreate`: the selector generated from `metadata.uid`, the
/// template's controller and job-name labels, and the Job's labels from its template. Filled
/// after managed fields are recorded, so no manager owns them.
pub(crate) fn prepare_for_create(kind: &str, obj: &mut Obj) {
    if kind != "Job" {
        return;
    }
    let uid = meta_str(obj, "uid");
    let name = meta_str(obj, "name");
    let Some(spec) = ensure_obj(obj, "spec") else {
        return;
    };
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual
        && !uid.is_empty()
        && let Some(t) = ensure_obj(spec, "template")
        && let Some(meta) = ensure_obj(t, "metadata")
        && let Some(labels) = ensure_obj(meta, "labels")
    {
        for (k, v) in [
            (LEGACY_UID_LABEL, &uid),
            (UID_LABEL, &uid),
            (LEGACY_NAME_LABEL, &name),
            (NAME_LABEL, &name),
        ] {
            labels.entry(k).or_insert(json!(v));
        }
    }
    if !manual
        && !uid.is_empty()
        && let Some(sel) = ensure_obj(spec, "selector")
        && let Some(ml) = ensure_obj(sel, "matchLabels")
    {
        ml.entry(UID_LABEL).or_insert(json!(uid));
    }
    let template_labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned()
        .filter(|l| l.as_object().is_some_and(|l| !l.is_empty()));
    if let Some(meta) = ensure_obj(obj, "metadata")
        && meta
            .get("labels")
            .and_then(Value::as_object)
            .is_none_or(|l| l.is_empty())
        && let Some(l) = template_labels
    {
        meta.insert("labels".into(), l);
    }
}

/// Validation of a batch/v1 kind; `old` on update.
pub(crate) fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut out = Vec::new();
    let empty = json!({});
    let spec = get(obj, "spec").unwrap_or(&empty);
    match kind {
        "Job" => {
            let meta = get(obj, "metadata").unwrap_or(&empty);
            job_spec(&mut out, spec, "spec");
            if spec.get("manualSelector").and_then(Value::as_bool) != Some(true) {
                generated_selector(&mut out, spec, meta);
            }
            if let Some(old) = old {
                job_update(&mut out, spec, get(old, "spec").unwrap_or(&empty));
            }
        }
        "CronJob" => {
            let name = get(obj, "metadata").map(|m| s(m, "name")).unwrap_or("");
            cronjob_spec(&mut out, spec, old.and_then(|o| get(o, "spec")));
            if old.is_none() && name.len() > 52 {
                out.push(invalid(
                    "metadata.name",
                    &json!(name),
                    "must be no more than 52 characters",
                ));
            }
        }
        _ => {}
    }
    out
}

/// `ValidateJobSpec` at `path` (`spec`, or `spec.jobTemplate.spec` in a CronJob).
fn job_spec(out: &mut Vec<Cause>, spec: &Value, path: &str) {
    for k in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        non_negative(out, spec, k, &child(path, k));
    }
    let t = get(spec, "template");
    let tpath = child(path, "template");
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true)
        || get(spec, "selector").is_some()
    {
        if get(spec, "selector").is_none() {
            out.push(required(child(path, "selector"), ""));
        }
        selector_selects_template(out, spec, child(&tpath, "metadata.labels"));
    }
    pod::validate_template(out, t, &tpath);
    let rp = t
        .and_then(|t| get(t, "spec"))
        .map(|x| s(x, "restartPolicy"))
        .unwrap_or("");
    if rp != "OnFailure" && rp != "Never" {
        out.push(required(
            child(&tpath, "spec.restartPolicy"),
            "valid values: \"OnFailure\", \"Never\"",
        ));
    }
    if let Some(m) = get(spec, "completionMode").and_then(Value::as_str)
        && !["NonIndexed", "Indexed"].contains(&m)
    {
        out.push(not_supported(
            child(path, "completionMode"),
            &json!(m),
            &["NonIndexed", "Indexed"],
        ));
    }
    if s(spec, "completionMode") == "Indexed" && get(spec, "completions").is_none() {
        out.push(required(
            child(path, "completions"),
            "when completion mode is Indexed",
        ));
    }
    if let Some(p) = get(spec, "podReplacementPolicy").and_then(Value::as_str)
        && !["Failed", "TerminatingOrFailed"].contains(&p)
    {
        out.push(not_supported(
            child(path, "podReplacementPolicy"),
            &json!(p),
            &["Failed", "TerminatingOrFailed"],
        ));
    }
}

/// `ValidateGeneratedSelector`: without `manualSelector`, the selector and template labels must
/// be exactly the generated ones.
fn generated_selector(out: &mut Vec<Cause>, spec: &Value, meta: &Value) {
    let Some(sel) = get(spec, "selector") else {
        return;
    };
    let uid = s(meta, "uid");
    let name = s(meta, "name");
    if uid.is_empty() {
        out.push(required("metadata.uid", ""));
    }
    let labels = get(spec, "template")
        .and_then(|t| get(t, "metadata"))
        .and_then(|m| get(m, "labels"));
    for (k, want) in [
        (LEGACY_UID_LABEL, uid),
        (LEGACY_NAME_LABEL, name),
        (UID_LABEL, uid),
        (NAME_LABEL, name),
    ] {
        let f = key("spec.template.metadata.labels", k);
        match labels.and_then(|l| l.get(k)).and_then(Value::as_str) {
            None => out.push(required(f, want)),
            Some(v) if v != want => out.push(invalid(f, labels.unwrap_or(&Value::Null), want)),
            Some(_) => {}
        }
    }
    if *sel != json!({"matchLabels": {UID_LABEL: uid}}) {
        out.push(invalid(
            "spec.selector",
            sel,
            "`selector` not auto-generated",
        ));
    }
}

fn job_update(out: &mut Vec<Cause>, spec: &Value, old: &Value) {
    immutable(out, spec, old, "selector", "spec.selector");
    let suspended = old.get("suspend").and_then(Value::as_bool) == Some(true);
    if !suspended {
        immutable(out, spec, old, "template", "spec.template");
    }
    let indexed = s(spec, "completionMode") == "Indexed";
    if spec.get("completions") != old.get("completions") {
        if !indexed {
            immutable(out, spec, old, "completions", "spec.completions");
        } else if spec.get("completions") != spec.get("parallelism")
            || old.get("completions") != old.get("parallelism")
        {
            out.push(invalid(
                "spec.completions",
                spec.get("completions").unwrap_or(&Value::Null),
                "can only be modified in tandem with spec.parallelism",
            ));
        }
    }
    immutable(out, spec, old, "completionMode", "spec.completionMode");
}

fn cronjob_spec(out: &mut Vec<Cause>, spec: &Value, old: Option<&Value>) {
    let schedule = s(spec, "schedule");
    if !schedule.is_empty() {
        let tz_allowed = old.is_some_and(|o| s(o, "schedule").contains("TZ"));
        if !tz_allowed && (schedule.contains("TZ=") || schedule.contains("CRON_TZ=")) {
            out.push(invalid(
                "spec.schedule",
                &json!(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if let Err(e) = parse_schedule(schedule) {
            out.push(invalid("spec.schedule", &json!(schedule), &e));
        }
    }
    non_negative(
        out,
        spec,
        "startingDeadlineSeconds",
        "spec.startingDeadlineSeconds",
    );
    let tz = get(spec, "timeZone").and_then(Value::as_str);
    let tz_changed = old.is_none_or(|o| get(o, "timeZone").and_then(Value::as_str) != tz);
    if let Some(tz) = tz
        && tz_changed
        && !plausible_time_zone(tz)
    {
        out.push(invalid(
            "spec.timeZone",
            &json!(tz),
            &format!("unknown time zone {tz}"),
        ));
    }
    let cp = s(spec, "concurrencyPolicy");
    if !["Allow", "Forbid", "Replace"].contains(&cp) {
        if cp.is_empty() {
            out.push(required("spec.concurrencyPolicy", ""));
        } else {
            out.push(not_supported(
                "spec.concurrencyPolicy",
                &json!(cp),
                &["Allow", "Forbid", "Replace"],
            ));
        }
    }
    let empty = json!({});
    let jt = get(spec, "jobTemplate")
        .and_then(|j| get(j, "spec"))
        .unwrap_or(&empty);
    job_spec(out, jt, "spec.jobTemplate.spec");
    non_negative(
        out,
        spec,
        "successfulJobsHistoryLimit",
        "spec.successfulJobsHistoryLimit",
    );
    non_negative(
        out,
        spec,
        "failedJobsHistoryLimit",
        "spec.failedJobsHistoryLimit",
    );
    if schedule.is_empty() {
        out.push(required("spec.schedule", ""));
    }
}

/// A time zone name kube would find in the tz database: `UTC`, `Local` is refused, and
/// `Area/Location` names with a known area.
fn plausible_time_zone(tz: &str) -> bool {
    const AREAS: &[&str] = &[
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
        "Etc",
        "US",
        "Canada",
        "Brazil",
        "Mexico",
        "Chile",
    ];
    if tz.is_empty() || tz == "Local" || tz.contains(' ') {
        return false;
    }
    if matches!(
        tz,
        "UTC" | "GMT" | "Zulu" | "UCT" | "Universal" | "Greenwich"
    ) {
        return true;
    }
    tz.split_once('/')
        .is_some_and(|(area, rest)| AREAS.contains(&area) && !rest.is_empty())
}

/// The robfig/cron standard parser kube uses: a descriptor or five fields; the error text is
/// the parser's.
fn parse_schedule(x: &str) -> Result<(), String> {
    if let Some(d) = x.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if d.starts_with("every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {x}")),
        };
    }
    let fields: Vec<&str> = x.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (i, f) in fields.iter().enumerate() {
        let (min, max, names, base) = bounds[i];
        for part in f.split(',') {
            parse_range(part, min, max, names, base, i == 2 || i == 4)?;
        }
    }
    Ok(())
}

fn parse_range(
    expr: &str,
    min: i64,
    max: i64,
    names: &[&str],
    base: i64,
    question: bool,
) -> Result<(), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, st)) => (r, Some(st)),
        None => (expr, None),
    };
    let value = |t: &str| -> Result<i64, String> {
        if let Some(pos) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(pos as i64 + base);
        }
        let n: i64 = t.parse().map_err(|_| {
            format!("failed to parse int from {t}: strconv.Atoi: parsing \"{t}\": invalid syntax")
        })?;
        if n < 0 {
            return Err(format!("negative number ({n}) not allowed: {t}"));
        }
        Ok(n)
    };
    let (start, end) = if range == "*" || (question && range == "?") {
        (min, max)
    } else {
        match range.split_once('-') {
            Some((a, b)) => (value(a)?, value(b)?),
            None => {
                let v = value(range)?;
                (v, v)
            }
        }
    };
    if let Some(st) = step {
        let n = value(st)?;
        if n == 0 {
            return Err(format!("step of range should be a positive number: {expr}"));
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
}
