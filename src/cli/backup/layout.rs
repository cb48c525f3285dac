//! Where each file of a backup lives on this host, from the settings, and the account lock a
//! backup and a restore hold.

use std::fs::File;
use std::path::{Path, PathBuf};

use registry_admin::audit::files::AuditFiles;
use registry_admin::paths::parent_dir;

use super::manifest::{FileRecord, Kind};
use crate::cli::{CliError, io_err, settings};

pub(super) const AUDIT_NAME: &str = "audit.log";
pub(super) const ROBOTS_NAME: &str = registry_admin::robots::store::FILE_NAME;
pub(super) const RETENTION_NAME: &str = registry_admin::retention::store::FILE_NAME;

/// Where each file lives on this host, from the settings.
pub(super) struct Layout {
    pub(super) htpasswd: PathBuf,
    pub(super) users: PathBuf,
    pub(super) grants: PathBuf,
    pub(super) robots: PathBuf,
    pub(super) retention: PathBuf,
    pub(super) token_key: PathBuf,
    pub(super) token_cert: PathBuf,
    pub(super) audit: AuditFiles,
    pub(super) audit_max_bytes: u64,
}

impl Layout {
    pub(super) fn from_env() -> Result<Layout, CliError> {
        let config = settings(&["HTPASSWD_PATH", "AUDIT_LOG_PATH", "AUDIT_MAX_BYTES"])?;
        let auth = parent_dir(&config.htpasswd_path);
        // Only the path is needed here, not a usable key: read the variable alone.
        let token_key: PathBuf = std::env::var("REGISTRY_TOKEN_KEY")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "./auth/token.key".into())
            .into();
        Ok(Layout {
            users: auth.join("users.json"),
            grants: auth.join("grants.json"),
            // Where the service keeps them: beside grants.json (src/lib.rs).
            robots: auth.join(registry_admin::robots::store::FILE_NAME),
            retention: auth.join(registry_admin::retention::store::FILE_NAME),
            token_cert: parent_dir(&token_key).join("token.crt"),
            token_key,
            htpasswd: config.htpasswd_path.clone(),
            audit: AuditFiles::new(&config.audit_log_path),
            audit_max_bytes: config.audit_max_bytes,
        })
    }

    /// The single files: kind, name in the backup, path here. Restored in this order.
    pub(super) fn singles(&self) -> [(Kind, &'static str, &Path); 7] {
        [
            (Kind::Users, "users.json", &self.users),
            (Kind::Grants, "grants.json", &self.grants),
            (Kind::Robots, ROBOTS_NAME, &self.robots),
            (Kind::Retention, RETENTION_NAME, &self.retention),
            (Kind::Htpasswd, "htpasswd", &self.htpasswd),
            (Kind::TokenKey, "token.key", &self.token_key),
            (Kind::TokenCert, "token.crt", &self.token_cert),
        ]
    }

    /// Where a backed-up file goes; `None` when its name does not fit its kind (a manifest
    /// edited to point elsewhere).
    pub(super) fn destination(&self, rec: &FileRecord) -> Option<PathBuf> {
        if rec.kind == Kind::Audit {
            return match audit_number(&rec.name)? {
                None => Some(self.audit.current().to_path_buf()),
                Some(n) => Some(self.audit.numbered(n)),
            };
        }
        self.singles()
            .into_iter()
            .find(|(k, name, _)| *k == rec.kind && *name == rec.name)
            .map(|(_, _, p)| p.to_path_buf())
    }
}

/// `audit.log` → `Some(None)`, `audit.log.N` → `Some(Some(N))`, anything else → `None`.
pub(super) fn audit_number(name: &str) -> Option<Option<u64>> {
    if name == AUDIT_NAME {
        return Some(None);
    }
    let n = name.strip_prefix("audit.log.")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<u64>().ok().filter(|n| *n > 0).map(Some)
}

pub(super) fn audit_backup_name(n: Option<u64>) -> String {
    n.map_or_else(|| AUDIT_NAME.to_string(), |n| format!("{AUDIT_NAME}.{n}"))
}

/// Holds the lock `UserStore::modify` takes (`.<htpasswd name>.lock` beside it), so no account
/// change happens while it is held.
pub(super) fn lock_accounts(htpasswd: &Path) -> Result<File, CliError> {
    let name = htpasswd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htpasswd".into());
    let path = parent_dir(htpasswd).join(format!(".{name}.lock"));
    registry_admin::durable::lock_file(&path).map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_audit_names_the_backup_writes_are_accepted() {
        assert_eq!(audit_number("audit.log"), Some(None));
        assert_eq!(audit_number("audit.log.12"), Some(Some(12)));
        for bad in [
            "audit.log.",
            "audit.log.0",
            "audit.log.+1",
            "audit.log.1/../x",
            "../audit.log",
            "audit.logx",
        ] {
            assert_eq!(audit_number(bad), None, "{bad}");
        }
    }
}
