//! Reading manifest files: multi-document YAML streams, from files or directories, into JSON
//! values. Shared by `flotilla validate` and the tests over `examples/`.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// One document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from.
    pub path: PathBuf,
    /// The object.
    pub object: serde_json::Value,
}

/// Reads every document of a file, or of every `.yaml`/`.yml` file under a directory and its
/// subdirectories (sorted by path). Empty documents are skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Document>> {
    let mut files = Vec::new();
    if path.is_dir() {
        collect(path, &mut files)?;
        files.sort();
    } else {
        files.push(path.to_owned());
    }
    let mut documents = Vec::new();
    for file in files {
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let objects: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("parsing YAML in {}", file.display()))?;
        documents.extend(
            objects
                .into_iter()
                .filter(|object| !object.is_null())
                .map(|object| Document {
                    path: file.clone(),
                    object,
                }),
        );
    }
    Ok(documents)
}

/// Every `.yaml`/`.yml` file under `dir`, recursively.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    Ok(())
}
