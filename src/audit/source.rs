//! Where this configuration's audit chain is: the audit files (files mode) or the `audit_log`
//! table (cluster mode). Everything that reads the chain (`/audit`, `/audit/verify`,
//! `verify-audit`, `export-audit`, retention) or appends to it from a short-lived process (the
//! host-side commands) goes through here, so it works the same in both modes.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use super::entry::Entry;
use super::files::AuditFiles;
use super::query::{self, Cursor, Filters, Page, QueryError};
use super::sink::AuditError;
use super::store_files as writer;
use super::store_rows;
use super::verify::{self, Report};
use crate::store::{Database, DatabaseError};

#[derive(Clone)]
pub enum AuditSource {
    /// `audit.log` and its rotated files; `max_bytes` is where a file is rotated.
    Files { files: AuditFiles, max_bytes: u64 },
    /// The cluster's `audit_log` table.
    Database(Arc<Database>),
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// Writing what was read (an export) failed.
    #[error("{0}")]
    Output(io::Error),
}

impl AuditSource {
    pub fn files(&self) -> Option<&AuditFiles> {
        match self {
            AuditSource::Files { files, .. } => Some(files),
            AuditSource::Database(_) => None,
        }
    }

    pub fn database(&self) -> Option<&Arc<Database>> {
        match self {
            AuditSource::Files { .. } => None,
            AuditSource::Database(db) => Some(db),
        }
    }

    /// The chain check (`GET /audit/verify`, `verify-audit`). Blocking.
    pub fn verify(&self) -> Result<Report, ReadError> {
        match self {
            AuditSource::Files { files, .. } => {
                verify::verify(files).map_err(|source| ReadError::Io {
                    path: files.current().to_path_buf(),
                    source,
                })
            }
            AuditSource::Database(db) => Ok(store_rows::verify(db)?),
        }
    }

    /// A page of `GET /audit`. Blocking.
    pub fn query(
        &self,
        filters: &Filters,
        limit: usize,
        cursor: Option<&Cursor>,
    ) -> Result<Page, QueryError> {
        match self {
            AuditSource::Files { files, .. } => query::query(files, filters, limit, cursor),
            AuditSource::Database(db) => store_rows::query(db, filters, limit, cursor),
        }
    }

    /// Writes the whole chain to `out` as audit.log lines, oldest first: the files copied as
    /// they are, in order, `audit.log` under the writers' lock (so no half-written batch is
    /// copied); or the table's rows, a page at a time. Returns the bytes written. Blocking.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, ReadError> {
        match self {
            AuditSource::Files { files, .. } => {
                let mut copy = |path: PathBuf| -> Result<u64, ReadError> {
                    let mut file = match std::fs::File::open(&path) {
                        Ok(f) => f,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                        Err(source) => return Err(ReadError::Io { path, source }),
                    };
                    // io::copy does not say which side failed; the source is the likelier.
                    io::copy(&mut file, out).map_err(|source| ReadError::Io { path, source })
                };
                // Rotated files never change: copied first, without keeping writers waiting.
                let mut total = 0;
                let mut copied = Vec::new();
                for n in files.rotated() {
                    total += copy(files.numbered(n))?;
                    copied.push(n);
                }
                let _lock = writer::lock_files(files).map_err(|e| ReadError::Io {
                    path: files.current().to_path_buf(),
                    source: io::Error::other(e.to_string()),
                })?;
                // A rotation may have happened since.
                for n in files.rotated() {
                    if !copied.contains(&n) {
                        total += copy(files.numbered(n))?;
                    }
                }
                total += copy(files.current().to_path_buf())?;
                Ok(total)
            }
            AuditSource::Database(db) => {
                let mut total = 0u64;
                let mut failed = None;
                store_rows::for_each_row(db, |_, line, _| {
                    let written = out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"));
                    match written {
                        Ok(()) => {
                            total += line.len() as u64 + 1;
                            true
                        }
                        Err(e) => {
                            failed = Some(e);
                            false
                        }
                    }
                })?;
                match failed {
                    Some(e) => Err(ReadError::Output(e)),
                    None => Ok(total),
                }
            }
        }
    }

    /// Appends `entries` and returns once they are stored, without a writer thread: for a
    /// short-lived process (the host-side commands). Safe while the service runs. Blocking.
    pub fn append(&self, entries: &[Entry]) -> Result<(), AuditError> {
        match self {
            AuditSource::Files { files, max_bytes } => {
                writer::append(files.current(), *max_bytes, entries)
            }
            AuditSource::Database(db) => Ok(store_rows::append(db, entries)?),
        }
    }

    /// Makes sure an entry appended next can be stored (see `AuditLog::reserve`), for a
    /// host-side command to ask before it changes anything. Blocking.
    pub fn reserve(&self) -> Result<(), AuditError> {
        match self {
            AuditSource::Files { files, max_bytes } => writer::reserve(files.current(), *max_bytes),
            AuditSource::Database(db) => Ok(db.check()?),
        }
    }
}
