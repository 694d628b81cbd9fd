//! No command panics when the reader of its output goes away early
//! (`flotilla crds | head -1`): it stops printing and exits as its work earned.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Output, Stdio},
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `flotilla args`, reads `lines` lines of its stdout, closes the pipe and waits.
fn run_and_close_after(args: &[&str], lines: usize) -> (Output, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(args)
        .current_dir(repo())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flotilla");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut read = Vec::new();
    {
        let mut reader = BufReader::new(stdout);
        for _ in 0..lines {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read stdout");
            read.push(line);
        }
        // Dropping the reader closes the pipe.
    }
    let output = child.wait_with_output().expect("wait for flotilla");
    (output, read)
}

fn assert_clean_exit(what: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "{what} panicked on a closed stdout:\n{stderr}"
    );
    assert_ne!(
        output.status.code(),
        Some(101),
        "{what}: exit code of a panic"
    );
    assert!(
        output.status.success(),
        "{what}: exit status {:?}, stderr:\n{stderr}",
        output.status
    );
}

#[test]
fn crds_piped_into_head_exits_cleanly() {
    // The CRDs are far larger than a pipe's buffer, so the command is still writing when the
    // pipe closes after the first line.
    let (output, lines) = run_and_close_after(&["crds"], 1);
    assert_eq!(
        lines,
        ["---\n"],
        "crds starts with a YAML document separator"
    );
    assert_clean_exit("flotilla crds", &output);
}

#[test]
fn validate_and_schedule_with_a_closed_stdout_exit_as_their_work_earned() {
    let (output, _) = run_and_close_after(&["validate", "-f", "examples"], 0);
    assert_clean_exit("flotilla validate", &output);
    let (output, _) = run_and_close_after(
        &["schedule", "-f", "examples/what-if/nginx-weighted.yaml"],
        0,
    );
    assert_clean_exit("flotilla schedule", &output);
}
