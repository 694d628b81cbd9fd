//! Flotilla's API: every custom resource as a Rust type, the condition vocabulary, well-known
//! label/annotation/finalizer keys, naming helpers and `validate()`.
//!
//! This crate does no IO. Everything here is plain data and pure functions, so the scheduler,
//! controllers and command-line tools can share it and test it without a server.

pub mod cluster;
pub mod conditions;
pub mod crds;
pub mod gitops;
pub mod keys;
pub mod names;
pub mod policy;
pub mod provisioning;
pub mod quantity;
pub mod schema;
pub mod validate;
pub mod work;

pub use cluster::Cluster;
pub use gitops::GitRepo;
pub use policy::{
    ClusterOverridePolicy, ClusterPropagationPolicy, OverridePolicy, PropagationPolicy,
};

pub use provisioning::{Machine, MachineHealthCheck, MachineSet};
pub use validate::{FieldError, Validate, ValidationErrors};
pub use work::{ClusterResourceBinding, ResourceBinding, Work};

/// The category every Flotilla kind belongs to, so `kubectl get flotilla` lists them all.
pub const CATEGORY: &str = "flotilla";

/// The API version every Flotilla group serves today.
pub const VERSION: &str = "v1alpha1";
