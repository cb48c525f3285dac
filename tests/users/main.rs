//! Accounts: the users API, what registry:2 accepts after each change, Apache `htpasswd`
//! interop, and the htpasswd under concurrent writes and crashes.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod concurrency;
mod htpasswd_interop;
mod registry;
