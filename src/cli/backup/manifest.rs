//! `backup.json`: the manifest that makes a directory a backup — every file's kind, size and
//! SHA-256, and the number of audit entries.

use serde::{Deserialize, Serialize};

pub(super) const FORMAT: &str = "registry-admin-backup/1";
pub(super) const MANIFEST: &str = "backup.json";
pub(super) const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Htpasswd,
    Users,
    Grants,
    TokenKey,
    TokenCert,
    Audit,
    Robots,
    Retention,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FileRecord {
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) size: u64,
    pub(super) sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) format: String,
    pub(super) created_at: String,
    /// The version that wrote it.
    pub(super) registry_admin: String,
    /// Entries in the copied audit chain.
    pub(super) audit_entries: u64,
    pub(super) files: Vec<FileRecord>,
}
