//! Running it like production: start-up, the command line, the reverse proxy, packaging, and
//! the test harness itself.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod harness;
mod packaging;
mod proxy;
mod running;
mod startup;
