//! Building a revision: the manifests under a GitRepo's paths, as JSON objects with where each
//! came from. Plain YAML and JSON files (multi-document, recursive, sorted by path) and
//! directories holding a `kustomization.yaml`, built with kustomize. Pure reading of a
//! checkout; applies nothing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

/// One object of a revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// The file it came from, relative to the repository root (for kustomize output, the
    /// directory's `kustomization.yaml`).
    pub file: String,
    /// Its position among the file's documents, from 1.
    pub position: usize,
    /// The object.
    pub object: Value,
}

/// Why a revision cannot be built, naming the file and the document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A document is broken.
    #[error("{file}, document {position}: {reason}")]
    Document {
        /// The file.
        file: String,
        /// The document's position, from 1.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A file or a path cannot be read.
    #[error("{file}: {reason}")]
    File {
        /// The file or path.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A kustomization needs kustomize, and there is none.
    #[error(
        "{dir} holds a kustomization, and neither kustomize nor kubectl is on the hub's PATH \
         (or given with --kustomize)"
    )]
    NoKustomize {
        /// The directory.
        dir: String,
    },
}

/// How kustomizations are built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kustomize {
    /// `kustomize build <dir>`.
    Kustomize(PathBuf),
    /// `kubectl kustomize <dir>`.
    Kubectl(PathBuf),
    /// Neither is available.
    Missing,
}

impl Kustomize {
    /// A `kustomize` on `path` (the `PATH` variable's value), else a `kubectl`, else missing.
    pub fn find(path: Option<&std::ffi::OsStr>) -> Self {
        let find = |name: &str| {
            path.into_iter()
                .flat_map(std::env::split_paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        };
        find("kustomize")
            .map(Self::Kustomize)
            .or_else(|| find("kubectl").map(Self::Kubectl))
            .unwrap_or(Self::Missing)
    }

    /// The binary given: `kubectl` when its name starts so, kustomize otherwise.
    pub fn at(binary: PathBuf) -> Self {
        let is_kubectl = binary
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("kubectl"));
        if is_kubectl {
            Self::Kubectl(binary)
        } else {
            Self::Kustomize(binary)
        }
    }
}

const KUSTOMIZATIONS: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

fn kustomization(dir: &Path) -> Option<&'static str> {
    KUSTOMIZATIONS.into_iter().find(|k| dir.join(k).is_file())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Whether `path` (relative, `/`-separated) matches `pattern`: `*` matches within one
/// segment, `**` any number of segments.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    fn segments(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.first(), path.first()) {
            (None, None) => true,
            (Some(&"**"), _) => {
                segments(&pattern[1..], path) || (!path.is_empty() && segments(pattern, &path[1..]))
            }
            (Some(p), Some(s)) => segment(p, s) && segments(&pattern[1..], &path[1..]),
            _ => false,
        }
    }
    fn segment(pattern: &str, text: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == text,
            Some((prefix, rest)) => {
                let Some(text) = text.strip_prefix(prefix) else {
                    return false;
                };
                (0..=text.len())
                    .filter(|i| text.is_char_boundary(*i))
                    .any(|i| segment(rest, &text[i..]))
            }
        }
    }
    let split = |s: &str| -> Vec<String> {
        s.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .map(str::to_owned)
            .collect()
    };
    let (pattern, path) = (split(pattern), split(path));
    let pattern: Vec<&str> = pattern.iter().map(String::as_str).collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    segments(&pattern, &path)
}

fn directories(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    dirs.sort();
    for d in dirs {
        out.push(d.clone());
        directories(&d, out);
    }
}

/// The directories `paths` select in the checkout `root` (the root when empty), in order,
/// without repeats.
///
/// # Errors
///
/// When a path selects nothing.
pub fn selected(root: &Path, paths: &[String]) -> Result<Vec<PathBuf>, BuildError> {
    if paths.is_empty() {
        return Ok(vec![root.to_owned()]);
    }
    let mut all = Vec::new();
    directories(root, &mut all);
    let mut out: Vec<PathBuf> = Vec::new();
    for path in paths {
        let matched: Vec<PathBuf> = if path.contains('*') {
            all.iter()
                .filter(|d| glob_matches(path, &relative(root, d)))
                .cloned()
                .collect()
        } else {
            let dir = root.join(path.trim_start_matches("./"));
            if dir.is_dir() { vec![dir] } else { vec![] }
        };
        if matched.is_empty() {
            return Err(BuildError::File {
                file: path.clone(),
                reason: "no such directory in this revision (spec.paths)".to_owned(),
            });
        }
        for dir in matched {
            // A directory inside one already selected adds nothing.
            if !out.iter().any(|o| dir.starts_with(o)) {
                out.retain(|o| !o.starts_with(&dir));
                out.push(dir);
            }
        }
    }
    Ok(out)
}

/// Every object under `paths` of the checkout `root`.
///
/// # Errors
///
/// The first file or document that cannot be read, parsed or built.
pub fn build(
    root: &Path,
    paths: &[String],
    kustomize: &Kustomize,
) -> Result<Vec<Document>, BuildError> {
    let mut documents = Vec::new();
    for dir in selected(root, paths)? {
        walk(root, &dir, kustomize, &mut documents)?;
    }
    Ok(documents)
}

fn walk(
    root: &Path,
    dir: &Path,
    kustomize: &Kustomize,
    out: &mut Vec<Document>,
) -> Result<(), BuildError> {
    if let Some(file) = kustomization(dir) {
        return kustomize_build(root, dir, file, kustomize, out);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| BuildError::File {
        file: relative(root, dir),
        reason: e.to_string(),
    })?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, kustomize, out)?;
            continue;
        }
        let json = name.ends_with(".json");
        if !(json || name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let file = relative(root, &path);
        let text = std::fs::read_to_string(&path).map_err(|e| BuildError::File {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        parse(&file, &text, json, out)?;
    }
    Ok(())
}

/// The documents of one YAML stream (or one JSON value), `*List` kinds flattened.
///
/// # Errors
///
/// The first document that does not parse or is not a Kubernetes object.
pub fn parse(
    file: &str,
    text: &str,
    json: bool,
    out: &mut Vec<Document>,
) -> Result<(), BuildError> {
    let broken = |position: usize, reason: String| BuildError::Document {
        file: file.to_owned(),
        position,
        reason,
    };
    let sources: Vec<String> = if json {
        vec![text.to_owned()]
    } else {
        split_documents(text)
    };
    for (i, source) in sources.iter().enumerate() {
        let position = i + 1;
        let value: Value = if json {
            serde_json::from_str(source)
                .map_err(|e| broken(position, format!("invalid JSON: {e}")))?
        } else {
            serde_saphyr::from_str(source)
                .map_err(|e| broken(position, format!("invalid YAML: {e}")))?
        };
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.ends_with("List") && value.get("items").is_some_and(Value::is_array) {
            for item in value["items"].as_array().into_iter().flatten() {
                check_object(item).map_err(|r| broken(position, r))?;
                out.push(Document {
                    file: file.to_owned(),
                    position,
                    object: item.clone(),
                });
            }
            continue;
        }
        check_object(&value).map_err(|r| broken(position, r))?;
        out.push(Document {
            file: file.to_owned(),
            position,
            object: value,
        });
    }
    Ok(())
}

/// The documents of a YAML stream, split at `---` lines.
fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        let marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t'));
        if marker {
            documents.push(String::new());
            continue;
        }
        if line.starts_with("...") && line.trim_end() == "..." {
            continue;
        }
        if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    // A stream starting with `---` has no document before it.
    if documents.len() > 1 && documents[0].trim().is_empty() {
        documents.remove(0);
    }
    documents
}

fn check_object(value: &Value) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err("not an object (a Kubernetes manifest is a mapping)".to_owned());
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or_default();
    if text("apiVersion").is_empty() {
        return Err("apiVersion is missing".to_owned());
    }
    if text("kind").is_empty() {
        return Err("kind is missing".to_owned());
    }
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(format!(
            "{} {} has no metadata.name",
            text("apiVersion"),
            text("kind")
        ));
    }
    Ok(())
}

fn kustomize_build(
    root: &Path,
    dir: &Path,
    file: &str,
    kustomize: &Kustomize,
    out: &mut Vec<Document>,
) -> Result<(), BuildError> {
    let name = relative(root, dir);
    let display = if name.is_empty() {
        ".".to_owned()
    } else {
        name.clone()
    };
    let mut command = match kustomize {
        Kustomize::Kustomize(binary) => {
            let mut c = Command::new(binary);
            c.arg("build");
            c
        }
        Kustomize::Kubectl(binary) => {
            let mut c = Command::new(binary);
            c.arg("kustomize");
            c
        }
        Kustomize::Missing => return Err(BuildError::NoKustomize { dir: display }),
    };
    let output = command
        .arg(dir)
        .env("HOME", dir)
        .output()
        .map_err(|e| BuildError::File {
            file: display.clone(),
            reason: format!("running kustomize: {e}"),
        })?;
    let file = if name.is_empty() {
        file.to_owned()
    } else {
        format!("{name}/{file}")
    };
    if !output.status.success() {
        return Err(BuildError::File {
            file,
            reason: format!(
                "kustomize build failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    parse(&file, &String::from_utf8_lossy(&output.stdout), false, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segments() {
        for (pattern, path, want) in [
            ("apps/*", "apps/web", true),
            ("apps/*", "apps/web/base", false),
            ("apps/**", "apps/web/base", true),
            ("**/overlays/prod", "apps/web/overlays/prod", true),
            ("clusters/*-prod", "clusters/eu-prod", true),
            ("clusters/*-prod", "clusters/eu-dev", false),
            ("./apps", "apps", true),
        ] {
            assert_eq!(glob_matches(pattern, path), want, "{pattern} {path}");
        }
    }

    #[test]
    fn documents_are_numbered_from_one_and_empty_ones_skipped() {
        let mut out = Vec::new();
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# empty\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n";
        parse("x.yaml", text, false, &mut out).expect("parses");
        let found: Vec<(usize, &str)> = out
            .iter()
            .map(|d| {
                (
                    d.position,
                    d.object["metadata"]["name"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(found, vec![(1, "a"), (3, "b")]);
    }

    #[test]
    fn a_broken_document_names_its_file_and_position() {
        let mut out = Vec::new();
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: [oops\n";
        let error = parse("apps/cm.yaml", text, false, &mut out).expect_err("broken");
        assert!(
            matches!(&error, BuildError::Document { file, position: 2, .. } if file == "apps/cm.yaml"),
            "{error}"
        );
        let mut out = Vec::new();
        let error = parse(
            "a.yaml",
            "kind: ConfigMap\nmetadata:\n  name: x\n",
            false,
            &mut out,
        )
        .expect_err("no apiVersion");
        assert_eq!(
            error.to_string(),
            "a.yaml, document 1: apiVersion is missing"
        );
    }

    #[test]
    fn lists_are_flattened() {
        let mut out = Vec::new();
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"}}]}"#;
        parse("l.json", text, true, &mut out).expect("parses");
        assert_eq!(out.len(), 2);
    }
}
