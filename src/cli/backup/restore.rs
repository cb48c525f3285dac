//! `restore DIR`: once everything is checked ([`super::check`]), each file is staged as a temp
//! file beside its destination and renamed into place under the service's locks; the audit
//! files present are moved aside, never deleted.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use tempfile::NamedTempFile;

use registry_admin::audit::entry::{Entry, Outcome, Source, clean};
use registry_admin::audit::files::AuditFiles;
use registry_admin::audit::space;
use registry_admin::audit::writer;
use registry_admin::durable::sync_dir;
use registry_admin::paths::parent_dir;

use super::check::{Planned, plan};
use super::hash::copy_hashed;
use super::layout::{Layout, lock_accounts};
use super::manifest::Kind;
use super::read::{open_backup_file, refuse};
use crate::cli::{CliError, audit_of, io_err, os_actor, settings};

pub const RESTORE_ACTION: &str = "backup.restore";

/// Copies the backed-up file into a temp file beside its destination, checking it once more
/// against the manifest; an existing file's mode is kept (new files are 0600), except the
/// signing key's, which is always 0600 (the service refuses a key others may read).
fn stage(p: &Planned) -> Result<NamedTempFile, CliError> {
    let dir = parent_dir(&p.dest);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let old = fs::metadata(&p.dest).ok();
    let mut tmp = tempfile::Builder::new()
        .prefix(".restore-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let src = open_backup_file(&p.src)?;
    let (size, sha256) = copy_hashed(&mut src.take(p.record.size + 1), tmp.as_file_mut())
        .map_err(io_err(&p.dest))?;
    if size != p.record.size || sha256 != p.record.sha256 {
        return Err(refuse(format!(
            "{} changed while it was being restored",
            p.record.name
        )));
    }
    if let Some(old) = &old {
        let mode = if p.record.kind == Kind::TokenKey {
            0o600
        } else {
            old.mode() & 0o777
        };
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .and_then(|()| registry_admin::durable::bump_mtime_past(tmp.as_file(), old))
            .map_err(io_err(&p.dest))?;
    }
    tmp.as_file().sync_all().map_err(io_err(&p.dest))?;
    Ok(tmp)
}

/// The free space the service asks of the audit volume before any audited change
/// (`space::RESERVE`), checked on the directory the restored log goes to.
fn audit_room(audit: &AuditFiles) -> Result<(), CliError> {
    let dir = audit.dir();
    let free = space::free_bytes(&dir).map_err(io_err(&dir))?;
    if free < space::RESERVE {
        return Err(refuse(format!(
            "the audit log's volume ({}) has {free} bytes free, less than the {} every audited change needs, so the restore's audit entry might not be written",
            dir.display(),
            space::RESERVE
        )));
    }
    Ok(())
}

/// Moves the audit files present now into `pre-restore-<time>/` beside them.
fn move_audit_aside(audit: &AuditFiles) -> Result<Option<PathBuf>, CliError> {
    let present: Vec<PathBuf> = audit
        .all()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.exists())
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    let aside = audit.dir().join(format!(
        "pre-restore-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    ));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&aside)
        .map_err(io_err(&aside))?;
    for p in present {
        let to = aside.join(AuditFiles::display_name(&p));
        fs::rename(&p, &to).map_err(io_err(&p))?;
    }
    sync_dir(&aside).map_err(io_err(&aside))?;
    Ok(Some(aside))
}

pub fn restore(dir: &Path) -> Result<ExitCode, CliError> {
    let layout = Layout::from_env()?;
    if settings(audit_of::SETTINGS)?.cluster.is_some() {
        // Putting files back would change nothing the replicas read.
        return Err(CliError::Refused(
            "restore puts files back, and cluster mode keeps its state in the database: restore \
             without DATABASE_URL into a files-mode installation, then load that into an empty \
             database with import-files"
                .into(),
        ));
    }
    let (manifest, planned) = plan(&layout, dir)?;
    // On a fresh host the directory of HTPASSWD_PATH, where the accounts lock lives, and the
    // audit log's, whose free space is checked, may not exist yet.
    for dir in [parent_dir(&layout.htpasswd), &layout.audit.dir()] {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
    }
    let aside = {
        let _accounts = lock_accounts(&layout.htpasswd)?;
        let _audit = writer::lock_files(&layout.audit)?;
        let staged = planned
            .iter()
            .map(|p| stage(p).map(|t| (t, p)))
            .collect::<Result<Vec<_>, _>>()?;
        // The staged files hold their room now; the restore's own audit entry must have its
        // margin too, or the restore would be a change the trail cannot record. Refused here,
        // the staged temp files are removed and nothing has changed.
        audit_room(&layout.audit)?;
        let aside = move_audit_aside(&layout.audit)?;
        for (tmp, p) in staged {
            tmp.persist(&p.dest).map_err(|e| {
                CliError::Refused(format!(
                    "restore stopped half way: {}: {}; files restored so far stay, run restore again",
                    p.dest.display(),
                    e.error
                ))
            })?;
            let dir = parent_dir(&p.dest);
            sync_dir(dir).map_err(io_err(dir))?;
            eprintln!(
                "registry-admin: restored {} to {}",
                p.record.name,
                p.dest.display()
            );
        }
        aside
    };
    for (kind, name, path) in layout.singles() {
        if !manifest.files.iter().any(|f| f.kind == kind) && path.exists() {
            eprintln!(
                "registry-admin: {name} is not in the backup; {} is left as it is",
                path.display()
            );
        }
    }
    if let Some(aside) = &aside {
        eprintln!(
            "registry-admin: the audit files that were there are kept in {}",
            aside.display()
        );
    }
    let mut entry = Entry::new(RESTORE_ACTION, &os_actor(), Outcome::Success, Source::Cli);
    entry.detail = Some(clean(
        &format!(
            "restored {} files from {} (backup made {})",
            planned.len(),
            dir.display(),
            manifest.created_at
        ),
        300,
    ));
    writer::append(layout.audit.current(), layout.audit_max_bytes, &[entry])?;
    eprintln!(
        "registry-admin: restore done; start registry-admin and restart registry:2 so both read the restored files"
    );
    Ok(ExitCode::SUCCESS)
}
