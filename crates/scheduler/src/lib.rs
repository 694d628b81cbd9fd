//! flotilla-scheduler: decides which member clusters run each (Cluster)ResourceBinding and how
//! many replicas each gets.
//!
//! The pure part ([`schedule`]) is plain functions over a [`Snapshot`] of Clusters and one
//! [`ScheduleInput`]: filter → score → select (spread constraints) → divide replicas. It does
//! no IO and never mutates the snapshot. The [`controller`] is a thin kube-runtime loop around
//! it, and [`what_if()`] backs `flotilla schedule -f FILE`.

pub mod algorithm;
pub mod controller;
pub mod division;
pub mod error;
pub mod estimator;
pub mod framework;
pub mod plugins;
pub mod selector;
pub mod snapshot;
pub mod spread;
pub mod what_if;

pub use algorithm::{Decision, ScheduleInput, schedule};
pub use error::{Diagnosis, Error, Result};
pub use snapshot::Snapshot;
pub use what_if::{Outcome, OutputFormat, format_outcome, what_if};
