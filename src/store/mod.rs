//! The storage seam: where registry-admin keeps its state.
//!
//! Two backends, chosen once at start:
//! - **files** (the default): htpasswd and the JSON documents beside it, the audit files, state
//!   in memory for what one process alone needs (the freeze, event ids, failed logins);
//! - **database** (cluster mode, `DATABASE_URL`): the same documents as rows of PostgreSQL, the
//!   audit chain as a table, and tables for what every replica must share.
//!
//! The units of work are the documents that change together under one lock (accounts, grants
//! and robots under the accounts lock; retention policies; GC jobs), the audit log, the
//! maintenance freeze, event ids and failed logins. [`Place`] is how a store names where its
//! documents are; `durable` reads and writes them for either backend, so a store's code is the
//! same in both modes.

pub mod cache;
pub mod database;
pub mod error;
pub mod rows;
pub mod token_key;

use std::path::PathBuf;
use std::sync::Arc;

pub use database::{Database, DatabaseError};

/// Where a store's documents live.
#[derive(Clone)]
pub enum Place {
    /// Files in this directory (the one htpasswd is in).
    Files(PathBuf),
    /// Rows of the cluster's database, named like the files.
    Database(Arc<Database>),
}

impl Place {
    /// Where the document `name` (a file name such as `grants.json`) is: its path in files mode;
    /// in the database, the name alone (its row, and what errors call it).
    pub fn locate(&self, name: &str) -> (PathBuf, Option<Arc<Database>>) {
        match self {
            Place::Files(dir) => (dir.join(name), None),
            Place::Database(db) => (PathBuf::from(name), Some(Arc::clone(db))),
        }
    }

    pub fn database(&self) -> Option<&Arc<Database>> {
        match self {
            Place::Files(_) => None,
            Place::Database(db) => Some(db),
        }
    }
}
