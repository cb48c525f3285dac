//! What the audit writer stores entries through, for either store (`store_files`,
//! `store_rows`): the [`Sink`] trait, what one group commit stored, and the error every part
//! of the audit answers with.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::entry::Entry;
use crate::error::{ErrorCode, StatusCode};
use crate::store::DatabaseError;

pub const TORN_LINE_ACTION: &str = "audit.torn_line";

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("audit log is closed")]
    Closed,
    #[error("audit log write failed: {0}")]
    Write(String),
    /// Cluster mode: the database did not take the entries (or did not answer).
    #[error("audit log: {0}")]
    Database(#[from] DatabaseError),
}

impl AuditError {
    /// Why, without the file's path: for answers to clients and for `/health/ready`.
    pub fn reason(&self) -> String {
        match self {
            AuditError::Io { source, .. } => source.to_string(),
            AuditError::Closed => "the audit log is closed".into(),
            AuditError::Write(reason) => reason.clone(),
            // Not the driver's text: it can name hosts and roles.
            AuditError::Database(_) => "the database is unavailable".into(),
        }
    }
}

/// The audit log cannot take entries (disk full, I/O error), so nothing that would need one is
/// done: 503, with the reason but not the file's path.
/// In cluster mode a database that does not answer is `database_unavailable`, as for every other
/// call that needs it.
impl ErrorCode for AuditError {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn code(&self) -> &'static str {
        match self {
            AuditError::Database(e) => e.code(),
            _ => "audit_unavailable",
        }
    }
    fn message(&self) -> String {
        match self {
            AuditError::Database(e) => e.message(),
            _ => format!(
                "the audit log cannot be written ({}); nothing was changed: retry once it can be",
                self.reason()
            ),
        }
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a writer stores sealed entries: the audit files (`store_files`) or the cluster's
/// database (`store_rows`). The writer thread around it (batching, coalescing, reservations,
/// counters) is the same for both.
pub(crate) trait Sink: Send + 'static {
    /// One group commit: seals `entries` after the chain's real last entry and stores them all
    /// or none.
    fn write_batch(&mut self, entries: &[Entry]) -> Result<Stored, AuditError>;
    /// Makes sure the next entries can be stored.
    fn reserve(&mut self) -> Result<(), AuditError>;
}

/// What one group commit stored.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stored {
    pub entries: u64,
    pub bytes: u64,
}
