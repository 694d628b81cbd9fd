//! Git repositories for tests, made with the `git` command: a bare `origin.git` that a
//! GitRepo fetches from, and a working copy that commits and pushes to it. `git` runs with no
//! system or user configuration, so the machine's settings do not leak in.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, ensure};

/// A repository: a bare `origin.git` and a working copy that pushes to it, in a temporary
/// directory removed when dropped.
pub struct Repo {
    dir: tempfile::TempDir,
    /// The bare repository.
    pub bare: PathBuf,
    /// The working copy.
    pub work: PathBuf,
}

/// Runs `git args` in `dir` with a fixed identity and no system or user configuration; its
/// trimmed stdout.
///
/// # Errors
///
/// When git cannot start or fails (with its stderr).
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .with_context(|| format!("git {args:?}"))?;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Repo {
    /// An empty repository with branch `main`.
    ///
    /// # Errors
    ///
    /// When git is missing or fails.
    pub fn new() -> Result<Repo> {
        let dir = tempfile::tempdir()?;
        let bare = dir.path().join("origin.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work)?;
        git(dir.path(), &["init", "--bare", "-b", "main", "origin.git"])?;
        git(&work, &["init", "-b", "main"])?;
        git(&work, &["remote", "add", "origin", &bare.to_string_lossy()])?;
        Ok(Repo { dir, bare, work })
    }

    /// The directory holding `origin.git` and the working copy.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The bare repository's `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Writes `contents` to `path` in the working copy, creating directories.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write(&self, path: &str, contents: &str) -> Result<()> {
        let file = self.work.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, contents)?;
        Ok(())
    }

    /// Removes `path` from the working copy.
    ///
    /// # Errors
    ///
    /// When the file cannot be removed.
    pub fn remove(&self, path: &str) -> Result<()> {
        std::fs::remove_file(self.work.join(path))?;
        Ok(())
    }

    /// Commits everything, pushes `main`, and returns the commit.
    ///
    /// # Errors
    ///
    /// When git fails.
    pub fn commit(&self, message: &str) -> Result<String> {
        git(&self.work, &["add", "-A"])?;
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        )?;
        git(&self.work, &["push", "-q", "origin", "HEAD:main"])?;
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Tags the last commit with an annotated `tag` and pushes it.
    ///
    /// # Errors
    ///
    /// When git fails.
    pub fn tag(&self, tag: &str) -> Result<()> {
        git(&self.work, &["tag", "-a", "-m", tag, tag])?;
        git(&self.work, &["push", "-q", "origin", tag])?;
        Ok(())
    }
}
