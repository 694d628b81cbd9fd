//! Flotilla's hub controllers. Each module is one controller: thin kube-runtime plumbing around
//! plain functions that hold the logic. Controllers speak only `kube::Client`; this crate never
//! links the embedded API server, reads flags or environment variables.

pub mod binding;
pub mod binding_status;
pub mod cluster;
pub mod cluster_status;
pub mod dependencies;
pub mod detector;
pub mod error;
pub mod execution;
pub mod fleet;
pub mod heartbeat;
pub mod machine;
pub mod machinehealthcheck;
pub mod machineset;
pub mod namespace_sync;
pub use flotilla_work::kinds;

pub use error::{Error, Result};
