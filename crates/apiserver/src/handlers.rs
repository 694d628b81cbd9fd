//! Request handlers: discovery documents, CRUD verbs with kube-apiserver semantics, and watch
//! streams. Routing and authentication live in `app.rs`; storage in `storage.rs`.

pub mod crud;
pub mod discovery;
pub mod watch;
