//! Retention against a real registry and the real binary.

#[path = "../common/mod.rs"]
mod common;

mod retention;
