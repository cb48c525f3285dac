//! `backup DIR`: plain copies under the service's locks (or one database snapshot in cluster
//! mode), the copied audit chain checked, then the manifest.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use sha2::{Digest, Sha256};

use registry_admin::audit::entry::format_time;
use registry_admin::audit::files::AuditFiles;
use registry_admin::audit::store_rows;
use registry_admin::audit::verify::verify;
use registry_admin::audit::writer;
use registry_admin::durable::sync_dir;
use registry_admin::store::{Database, DatabaseError};

use super::hash::{Hashing, copy_hashed};
use super::layout::{
    AUDIT_NAME, Layout, RETENTION_NAME, ROBOTS_NAME, audit_backup_name, lock_accounts,
};
use super::manifest::{FORMAT, FileRecord, Kind, MANIFEST, Manifest};
use crate::cli::{CliError, audit_of, io_err, settings};

/// Copies `src` to a new file `dst` (mode 0600, synced); `None` when `src` does not exist.
fn copy_new(src: &Path, dst: &Path) -> Result<Option<(u64, String)>, CliError> {
    let mut from = match File::open(src) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(src)(e)),
    };
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(io_err(dst))?;
    let copied = copy_hashed(&mut from, &mut to).map_err(io_err(src))?;
    to.sync_all().map_err(io_err(dst))?;
    Ok(Some(copied))
}

/// `dir` must be empty or missing, so a backup never mixes with another.
fn prepare_empty_dir(dir: &Path) -> Result<(), CliError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::Refused(format!(
                    "{} is not empty; give an empty or new directory",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir)),
        Err(e) => Err(io_err(dir)(e)),
    }
}

pub fn backup(dir: &Path) -> Result<ExitCode, CliError> {
    let layout = Layout::from_env()?;
    if let Some(db) = audit_of::database(&settings(audit_of::SETTINGS)?)? {
        return backup_database(&db, &layout, dir);
    }
    if !layout.htpasswd.exists() {
        return Err(CliError::Refused(format!(
            "nothing to back up: {} (HTPASSWD_PATH) does not exist",
            layout.htpasswd.display()
        )));
    }
    prepare_empty_dir(dir)?;
    let mut files = Vec::new();
    let mut copy = |kind: Kind, name: String, src: &Path| -> Result<(), CliError> {
        if let Some((size, sha256)) = copy_new(src, &dir.join(&name))? {
            files.push(FileRecord {
                name,
                kind,
                size,
                sha256,
            });
        }
        Ok(())
    };
    let mut copied_rotated = Vec::new();
    for n in layout.audit.rotated() {
        copy(
            Kind::Audit,
            audit_backup_name(Some(n)),
            &layout.audit.numbered(n),
        )?;
        copied_rotated.push(n);
    }
    {
        let _accounts = lock_accounts(&layout.htpasswd)?;
        let _audit = writer::lock_files(&layout.audit)?;
        for (kind, name, path) in layout.singles() {
            copy(kind, name.to_string(), path)?;
        }
        // A rotation may have happened since the first pass.
        for n in layout.audit.rotated() {
            if !copied_rotated.contains(&n) {
                copy(
                    Kind::Audit,
                    audit_backup_name(Some(n)),
                    &layout.audit.numbered(n),
                )?;
            }
        }
        copy(Kind::Audit, audit_backup_name(None), layout.audit.current())?;
    }
    finish(dir, files)
}

/// Cluster mode: the documents and the audit chain as one snapshot of the database (one
/// read-only, repeatable-read transaction), written as the files a files-mode backup holds, and
/// the token key and certificate from their files. The same format: `restore` puts it back into
/// a files-mode installation, and `import-files` moves that into an empty database.
fn backup_database(db: &Database, layout: &Layout, dir: &Path) -> Result<ExitCode, CliError> {
    prepare_empty_dir(dir)?;
    let mut files = Vec::new();
    let mut conn = db.connection()?;
    let mut tx = conn
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(DatabaseError::from)?;
    for (kind, name) in [
        (Kind::Htpasswd, "htpasswd"),
        (Kind::Users, "users.json"),
        (Kind::Grants, "grants.json"),
        (Kind::Robots, ROBOTS_NAME),
        (Kind::Retention, RETENTION_NAME),
    ] {
        let row = tx
            .query_opt("SELECT body FROM documents WHERE name = $1", &[&name])
            .map_err(DatabaseError::from)?;
        let Some(row) = row else {
            if kind == Kind::Htpasswd {
                return Err(CliError::Refused(
                    "nothing to back up: the database holds no accounts".into(),
                ));
            }
            continue;
        };
        let body: Vec<u8> = row.get(0);
        let (size, sha256) = write_new(&dir.join(name), |out| out.write_all(&body))?;
        files.push(FileRecord {
            name: name.to_string(),
            kind,
            size,
            sha256,
        });
    }
    let audit = dir.join(AUDIT_NAME);
    let (size, sha256) = write_new(&audit, |out| {
        let mut failed = Ok(());
        store_rows::for_each_row_in(&mut tx, |_, line, _| {
            failed = out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"));
            failed.is_ok()
        })
        .map_err(io::Error::other)?;
        failed
    })?;
    files.push(FileRecord {
        name: AUDIT_NAME.to_string(),
        kind: Kind::Audit,
        size,
        sha256,
    });
    tx.commit().map_err(DatabaseError::from)?;
    for (kind, name, path) in [
        (Kind::TokenKey, "token.key", &layout.token_key),
        (Kind::TokenCert, "token.crt", &layout.token_cert),
    ] {
        if let Some((size, sha256)) = copy_new(path, &dir.join(name))? {
            files.push(FileRecord {
                name: name.to_string(),
                kind,
                size,
                sha256,
            });
        }
    }
    finish(dir, files)
}

/// Creates `dst` (mode 0600), lets `fill` write it, syncs it; its size and SHA-256.
fn write_new(
    dst: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(u64, String), CliError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(io_err(dst))?;
    let mut out = Hashing {
        inner: io::BufWriter::new(file),
        hasher: Sha256::new(),
        len: 0,
    };
    fill(&mut out).map_err(io_err(dst))?;
    let (len, sha256) = (out.len, hex::encode(out.hasher.finalize()));
    let file = out
        .inner
        .into_inner()
        .map_err(|e| io_err(dst)(e.into_error()))?;
    file.sync_all().map_err(io_err(dst))?;
    Ok((len, sha256))
}

/// Checks the copied chain, then writes the manifest: what makes `dir` a backup.
fn finish(dir: &Path, files: Vec<FileRecord>) -> Result<ExitCode, CliError> {
    let report = verify(&AuditFiles::new(dir.join(AUDIT_NAME))).map_err(io_err(dir))?;
    if let Some(bad) = &report.first_bad_line {
        return Err(CliError::Refused(format!(
            "the audit chain is broken at line {} of {} (see verify-audit); the copy in {} has no manifest and cannot be restored",
            bad.line,
            bad.file,
            dir.display()
        )));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: format_time(Utc::now()),
        registry_admin: env!("CARGO_PKG_VERSION").into(),
        audit_entries: report.entries,
        files,
    };
    let path = dir.join(MANIFEST);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(&path))?;
    let text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    out.write_all(&text)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.sync_all())
        .map_err(io_err(&path))?;
    sync_dir(dir).map_err(io_err(dir))?;
    for f in &manifest.files {
        eprintln!("registry-admin: copied {} ({} bytes)", f.name, f.size);
    }
    eprintln!(
        "registry-admin: backup written to {} ({} files, audit chain intact with {} entries)",
        dir.display(),
        manifest.files.len(),
        manifest.audit_entries
    );
    Ok(ExitCode::SUCCESS)
}
