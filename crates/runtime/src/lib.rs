//! Shared controller plumbing: what every Flotilla controller needs around kube-runtime and
//! kube-runtime does not provide. Holds no controller logic and speaks to no API server.

pub mod apply;
pub mod backoff;

pub use apply::ServerSideApply;
pub use backoff::Backoff;
