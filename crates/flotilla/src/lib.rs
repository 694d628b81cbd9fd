//! The `flotilla` command: wires the libraries into subcommands. Logic lives in the library
//! crates; this crate only reads flags and environment and calls them.

pub mod auto_join;
pub mod cli;
pub mod controllers;
pub mod crds;
pub mod hub;
pub mod join;
pub mod lifecycle;
pub mod local_provider;
pub mod logs;
pub mod manifests;
pub mod members;
pub mod output;
pub mod progress;
pub mod up;
