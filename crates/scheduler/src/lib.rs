//! flotilla-scheduler.
