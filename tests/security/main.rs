//! Security: tokens, throttling, hostile input, files and upstreams, and the authentication
//! review's findings.

#[path = "../common/mod.rs"]
mod common;

mod hardening_auth;
mod hardening_events;
mod hardening_files;
mod hardening_upstream;
mod review_auth;
mod stack;
