//! The audit log of this configuration, for the host-side commands: the database's chain when
//! `DATABASE_URL` is set (cluster mode), else the files of `AUDIT_LOG_PATH` — the choice the
//! service makes at start.

use std::sync::Arc;

use registry_admin::audit::files::AuditFiles;
use registry_admin::audit::source::AuditSource;
use registry_admin::config::Config;
use registry_admin::store::{Database, DatabaseError};

use super::CliError;

/// What a command that reads or appends to the audit log must read: the files' settings, and
/// cluster mode's (`DATABASE_URL` is only accepted with the settings it needs, as at start).
pub const SETTINGS: &[&str] = &[
    "AUDIT_LOG_PATH",
    "AUDIT_MAX_BYTES",
    "DATABASE_URL",
    "AUTH_MODE",
    "TOKEN_SECRET",
    "REPLICA_ID",
];

/// A command needs few connections.
const POOL_SIZE: u32 = 2;

/// The database of cluster mode, migrated; `None` in files mode. Blocking.
pub fn database(config: &Config) -> Result<Option<Arc<Database>>, CliError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let db = Database::open(&cluster.database_url, &cluster.replica_id, POOL_SIZE)
        .map_err(|e| DatabaseError(format!("DATABASE_URL: {}", e.0)))?;
    Ok(Some(db))
}

/// The chain of this configuration. Blocking.
pub fn open(config: &Config) -> Result<AuditSource, CliError> {
    Ok(source(config, database(config)?.as_ref()))
}

/// The chain in `db` (cluster mode, already open), else the files of `config`.
pub fn source(config: &Config, db: Option<&Arc<Database>>) -> AuditSource {
    match db {
        Some(db) => AuditSource::Database(Arc::clone(db)),
        None => AuditSource::Files {
            files: AuditFiles::new(&config.audit_log_path),
            max_bytes: config.audit_max_bytes,
        },
    }
}
