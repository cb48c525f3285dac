//! The audit trail end to end, and its bounds.

#[path = "../common/mod.rs"]
mod common;

mod bounds;
mod trail;
