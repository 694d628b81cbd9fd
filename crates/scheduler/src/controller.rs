//! The scheduler controller (placeholder while the library settles).
