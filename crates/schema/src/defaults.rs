//! Built-in kinds: defaults and validation (being written).
