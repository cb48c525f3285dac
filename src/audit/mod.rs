//! The audit trail: one append-only, hash-chained JSON-lines log of API actions and registry
//! events, with newest-first queries and a chain check.

pub mod bound;
pub mod burst;
pub mod coalesce;
pub mod entry;
pub mod events;
pub mod files;
pub mod query;
pub mod sink;
pub mod source;
pub mod space;
pub mod store_files;
pub mod store_rows;
pub mod verify;
pub mod writer;

pub use writer::AuditLog;
