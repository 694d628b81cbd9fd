//! Propagation as pure functions over plain data, shared by the hub's controllers and the
//! `flotilla render` what-if: which policy claims a resource template ([`matching`]), what a
//! template asks for and depends on ([`interpreter`]), and how a template becomes one cluster's
//! manifest ([`overrides`], [`render`]). No I/O; every rule is table-tested in its module.

pub mod interpreter;
pub mod matching;
pub mod overrides;
pub mod render;
