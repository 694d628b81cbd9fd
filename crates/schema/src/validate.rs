//! Field validation and CRD structural schemas (being written).
