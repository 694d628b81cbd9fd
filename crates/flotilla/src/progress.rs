//! Progress of a multi-step command (`flotilla up`): on a terminal each step shows a spinner
//! and becomes a ticked line when it finishes; otherwise each finished step is one plain line;
//! in JSON log mode each is a log line. Never used for logs.

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

/// Where progress goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A spinner per step on a terminal, else plain lines on stdout.
    Stdout,
    /// One `info` log line per finished step.
    Log,
    /// Nowhere (tests, library callers).
    Quiet,
}

/// A command's progress: [`Progress::begin`] a step, then [`Progress::finish`] it.
#[derive(Debug)]
pub struct Progress {
    mode: Mode,
    spinner: Option<ProgressBar>,
    step: String,
    started: Instant,
}

impl Progress {
    /// Progress reported as `mode` says (a spinner only when stdout is a terminal).
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            spinner: None,
            step: String::new(),
            started: Instant::now(),
        }
    }

    /// Progress that reports nothing.
    pub fn quiet() -> Self {
        Self::new(Mode::Quiet)
    }

    /// Starts a step (finishing the previous one if it was left open).
    pub fn begin(&mut self, step: impl Into<String>) {
        if !self.step.is_empty() {
            self.finish("");
        }
        self.step = step.into();
        self.started = Instant::now();
        if self.mode == Mode::Stdout && std::io::stdout().is_terminal() {
            let spinner = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                spinner.set_style(style);
            }
            spinner.set_message(self.step.clone());
            spinner.enable_steady_tick(Duration::from_millis(100));
            self.spinner = Some(spinner);
        }
    }

    /// Finishes the current step with `detail` (may be empty) and how long it took.
    pub fn finish(&mut self, detail: impl AsRef<str>) {
        let detail = detail.as_ref();
        let elapsed = self.started.elapsed().as_secs_f64();
        let step = std::mem::take(&mut self.step);
        let line = if detail.is_empty() {
            format!("{step} ({elapsed:.1} s)")
        } else {
            format!("{step}: {detail} ({elapsed:.1} s)")
        };
        match (self.mode, self.spinner.take()) {
            (Mode::Stdout, Some(spinner)) => spinner.finish_with_message(format!("✓ {line}")),
            (Mode::Stdout, None) => {
                let _ = crate::output::Output::stdout().println(&line);
            }
            (Mode::Log, _) => tracing::info!(step = %step, elapsed_seconds = elapsed, "{detail}"),
            (Mode::Quiet, _) => {}
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.abandon();
        }
    }
}
