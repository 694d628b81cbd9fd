//! The platform every Flotilla controller stands on: one [`Runner`], shared caches
//! ([`cache`]), member clients ([`members`]), per-object [`Backoff`], metrics ([`metrics`]),
//! the health and metrics endpoint ([`health`]), leader election ([`leader`]) and graceful
//! shutdown, handed to controllers through one [`Context`]. Holds no controller logic.

pub mod backoff;
pub mod cache;
pub mod context;
pub mod error;
pub mod health;
pub mod leader;
pub mod members;
pub mod metrics;
pub mod runner;
pub mod status;

pub use backoff::Backoff;
pub use context::{Context, ContextOptions};
pub use error::{Error, Result};
pub use runner::{ReconcileError, Runner, Settings};
