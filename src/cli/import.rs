//! `import-files`: moves a files-mode installation into cluster mode's database.
//!
//! Everything the files hold goes in one transaction, into a database that holds no document
//! and no audit entry yet (the tables are locked for the check and the writes, so a replica
//! starting meanwhile waits, then finds the imported state). The files' audit chain is checked
//! first and copied line for line, so the database's chain verifies, with the same hashes, and
//! new entries continue it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use registry_admin::audit::entry::{Entry, Outcome, Source, unseal};
use registry_admin::audit::files::AuditFiles;
use registry_admin::audit::source::AuditSource;
use registry_admin::audit::{store_files, store_rows, verify};
use registry_admin::paths::parent_dir;
use registry_admin::store::DatabaseError;
use registry_admin::users::htpasswd::Htpasswd;

use super::{CliError, audit_of, io_err, os_actor, settings};

pub const ACTION: &str = "cluster.import";

/// The documents beside htpasswd, named as their rows are.
const DOCUMENTS: &[&str] = &[
    "users.json",
    "grants.json",
    registry_admin::robots::store::FILE_NAME,
    registry_admin::retention::store::FILE_NAME,
    registry_admin::gc::job::FILE_NAME,
];
/// The row htpasswd becomes (`UserStore::in_database`).
const HTPASSWD_ROW: &str = "htpasswd";
/// Larger documents are refused rather than read into memory.
const MAX_DOCUMENT_BYTES: u64 = 64 << 20;
/// A line longer than this is no entry this service wrote (entries are at most 4 KiB).
const MAX_LINE_BYTES: u64 = 1 << 20;
/// Audit rows per INSERT.
const CHUNK: usize = 1000;

pub fn run() -> Result<ExitCode, CliError> {
    let mut names = vec!["HTPASSWD_PATH"];
    names.extend_from_slice(audit_of::SETTINGS);
    let config = settings(&names)?;
    if config.cluster.is_none() {
        return Err(CliError::Refused(
            "import-files loads the files into cluster mode's database: set DATABASE_URL (and \
             the settings cluster mode needs: AUTH_MODE=token, TOKEN_SECRET)"
                .into(),
        ));
    }
    let audit = AuditFiles::new(&config.audit_log_path);
    // Held until the end: a files-mode process still running beside this command cannot append
    // to or rotate the files between their check and their copy.
    let _audit_lock = if audit.dir().is_dir() {
        Some(store_files::lock_files(&audit).map_err(|e| {
            CliError::Refused(format!("cannot lock the audit files: {}", e.reason()))
        })?)
    } else {
        None
    };
    let documents = read_documents(&config.htpasswd_path)?;
    let report = verify::verify(&audit).map_err(io_err(&config.audit_log_path))?;
    if let Some(bad) = &report.first_bad_line {
        return Err(CliError::Refused(format!(
            "the audit chain of the files is broken at line {} of {}: nothing was imported",
            bad.line, bad.file
        )));
    }
    let Some(db) = audit_of::database(&config)? else {
        return Err(CliError::Refused("DATABASE_URL is not set".into()));
    };

    let mut conn = db.connection()?;
    let mut tx = conn.transaction().map_err(DatabaseError::from)?;
    tx.batch_execute("LOCK TABLE documents, audit_log IN EXCLUSIVE MODE")
        .map_err(DatabaseError::from)?;
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM audit_log)",
            &[],
        )
        .map_err(DatabaseError::from)?;
    let (held_documents, held_entries): (i64, i64) = (row.get(0), row.get(1));
    if held_documents > 0 || held_entries > 0 {
        return Err(CliError::Refused(format!(
            "the database is not empty ({held_documents} documents, {held_entries} audit entries): \
             import-files only fills a new database; nothing was changed"
        )));
    }
    for (name, body) in &documents {
        tx.execute(
            "INSERT INTO documents (name, body, version) VALUES ($1, $2, nextval('document_versions'))",
            &[name, body],
        )
        .map_err(DatabaseError::from)?;
    }
    let entries = copy_audit(&mut tx, &audit)?;
    // Checked before it counts: a chain that does not verify in the database is rolled back,
    // so a failed import leaves the database empty and can be run again.
    let copied = store_rows::verify_in(&mut tx)?;
    if !copied.ok {
        return Err(CliError::Refused(
            "the chain copied into the database does not verify; nothing was imported".into(),
        ));
    }
    tx.commit().map_err(DatabaseError::from)?;
    drop(conn);

    let source = AuditSource::Database(db);
    let after = source.verify()?;
    let imported: Vec<&str> = documents.iter().map(|(n, _)| n.as_str()).collect();
    let mut note = Entry::new(ACTION, &os_actor(), Outcome::Success, Source::Cli);
    note.detail = Some(format!(
        "imported {} and {entries} audit entries from the files",
        imported.join(", ")
    ));
    let audited = source.append(&[note]);
    eprintln!(
        "registry-admin: imported {} and {entries} audit entries; the chain in the database {}",
        imported.join(", "),
        if after.ok {
            "verifies"
        } else {
            "does NOT verify"
        }
    );
    println!(
        "{}",
        serde_json::json!({"documents": imported, "audit_entries": entries, "chain_ok": after.ok})
    );
    if !after.ok {
        return Ok(ExitCode::FAILURE);
    }
    if let Err(e) = audited {
        eprintln!("registry-admin: the import is done, but its audit entry was not written: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// htpasswd (which must exist and parse) and the documents beside it that exist (each must be
/// JSON), as `(row name, bytes)`.
fn read_documents(htpasswd: &Path) -> Result<Vec<(String, Vec<u8>)>, CliError> {
    let Some(text) = read_bounded(htpasswd)? else {
        return Err(CliError::Refused(format!(
            "{} does not exist: no files-mode installation to import (set HTPASSWD_PATH)",
            htpasswd.display()
        )));
    };
    let parsed = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| Htpasswd::parse(t).ok());
    if parsed.is_none() {
        return Err(CliError::Refused(format!(
            "{} is not a valid htpasswd file: nothing was imported",
            htpasswd.display()
        )));
    }
    let mut out = vec![(HTPASSWD_ROW.to_string(), text)];
    let dir = parent_dir(htpasswd);
    for name in DOCUMENTS {
        let path = dir.join(name);
        let Some(body) = read_bounded(&path)? else {
            continue;
        };
        if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
            return Err(CliError::Refused(format!(
                "{} is not valid JSON: nothing was imported",
                path.display()
            )));
        }
        out.push((name.to_string(), body));
    }
    Ok(out)
}

/// The file's bytes, `None` when it does not exist; one over `MAX_DOCUMENT_BYTES` is refused.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, CliError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut body = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(io_err(path))?;
    if body.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(CliError::Refused(format!(
            "{} is larger than {MAX_DOCUMENT_BYTES} bytes: nothing was imported",
            path.display()
        )));
    }
    Ok(Some(body))
}

/// Inserts every whole entry of the audit files, oldest first, as rows 1, 2, …; fragments cut
/// short by a crash are left out, as the chain itself skips them. Returns how many.
fn copy_audit(tx: &mut postgres::Transaction, audit: &AuditFiles) -> Result<u64, CliError> {
    let mut chunk: Vec<(String, String)> = Vec::with_capacity(CHUNK);
    let mut next_seq = 1i64;
    for (_, path) in audit.all() {
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::with_capacity(4096);
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)
                .map_err(io_err(&path))?;
            if read == 0 {
                break;
            }
            if line.len() as u64 > MAX_LINE_BYTES {
                return Err(CliError::Refused(format!(
                    "{} holds a line longer than {MAX_LINE_BYTES} bytes: nothing was imported",
                    path.display()
                )));
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let Some(sealed) = unseal(&line) else {
                continue;
            };
            let Ok(text) = String::from_utf8(line.clone()) else {
                return Err(CliError::Refused(format!(
                    "{} holds an entry that is not UTF-8: nothing was imported",
                    path.display()
                )));
            };
            chunk.push((text, sealed.hash));
            if chunk.len() == CHUNK {
                store_rows::insert_sealed(tx, next_seq, &chunk)?;
                next_seq += chunk.len() as i64;
                chunk.clear();
            }
        }
    }
    if !chunk.is_empty() {
        store_rows::insert_sealed(tx, next_seq, &chunk)?;
        next_seq += chunk.len() as i64;
    }
    Ok((next_seq - 1) as u64)
}
