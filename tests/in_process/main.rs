//! The application in-process (through `registry_admin::startup::build`): extractors,
//! middleware, error bodies and the web UI's embedded files.

#[path = "../common/mod.rs"]
mod common;

mod app;
mod ui_assets;
