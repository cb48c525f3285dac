//! Garbage collection against a real registry, in htpasswd and token mode.

#[path = "../common/mod.rs"]
mod common;

mod files;
mod token_mode;
