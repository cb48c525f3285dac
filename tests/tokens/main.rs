//! Token mode: registry:2 sending real clients to `GET /token`, and the tokens it accepts.

#[path = "../common/mod.rs"]
mod common;

mod mode;
mod registry;
