//! GitRepo (`gitops.flotilla.io`): the hub reconciles Git repositories.
//!
//! - [`fetch`]: gix — a bare repository per GitRepo, shallow fetches, the tree written out.
//! - [`build`]: the manifests of a checkout (plain YAML/JSON, kustomize).
//! - [`controller`]: validate all, apply all (server-side apply, `flotilla-gitrepo`), prune,
//!   drift correction, the owned PropagationPolicy, the status.
//! - [`webhook`]: `POST /hooks/gitrepo/<namespace>/<name>` asks for a fetch now.
pub mod build;
pub mod controller;
pub mod fetch;
pub mod webhook;
