//! Request handlers: discovery documents, CRUD verbs with kube-apiserver semantics, and watch
//! streams. Routing and authentication live in `app.rs`; storage in `storage.rs`.

pub(crate) mod admission;
pub(crate) mod crud;
pub(crate) mod discovery;
pub(crate) mod pods;
pub(crate) mod serviceaccounts;
pub(crate) mod services;
pub(crate) mod table;
pub(crate) mod watch;
