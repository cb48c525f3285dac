//! Grants and robot accounts, against the real binary and a real registry.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod robots;
