//! `backup DIR` and `restore DIR`.
//!
//! In cluster mode (`DATABASE_URL`) `backup` reads the documents and the audit chain from the
//! database in one snapshot and writes the same format; `restore` refuses to run there (it puts
//! files back): a cluster backup is restored into files mode, then loaded with `import-files`.
//!
//! A backup is a directory of plain copies plus `backup.json`, a manifest of every file's kind,
//! size and SHA-256 and the number of audit entries. The account files and the current audit
//! log are copied under the htpasswd lock and the audit lock, the two locks every writer takes,
//! so no change lands half in the copy; rotated audit files never change once rotated, so they
//! are copied before, keeping the service's audit writes waiting only for `audit.log` itself.
//!
//! Besides the accounts (htpasswd, users.json), a backup holds grants.json, the robot accounts
//! (`robots.json`) and retention policies (`retention.json`) when they exist, and the token key
//! and certificate. `robots.json` is written only under the htpasswd lock, so it is copied
//! consistently with the accounts its robots belong to; `retention.json` is only ever replaced
//! whole (temp file and rename), so one open of it is one consistent version.
//!
//! Restore checks everything before it touches anything: the manifest, every checksum, that the
//! account, robot and policy files parse as the service parses them and that the audit chain is
//! whole. Only then does it stage each file as a
//! temp file beside its destination and, once the audit volume is seen to have the margin every
//! audited change needs (for its own `backup.restore` entry), rename it into place. Audit files already present are
//! moved aside into `pre-restore-<time>/` beside them, never deleted: the trail is evidence.
//!
//! A backup holds plain files only: a symbolic link in it (which would restore whatever it
//! points to) is refused, and every file is opened without following links. Sizes are compared
//! with the manifest before anything is hashed, so a huge file listed as small costs nothing.
//! Every file is checked as the service checks it at start (a `token.key` it would refuse is
//! refused here). A destination that is a symbolic link (a `HTPASSWD_PATH` pointing into a
//! shared volume) stays one: the file it points to is replaced, as the service writes through
//! such links. Missing directories (a fresh host) are created.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use registry_admin::audit::entry::{Entry, Outcome, Source, clean, format_time};
use registry_admin::audit::files::AuditFiles;
use registry_admin::audit::space;
use registry_admin::audit::verify::verify;
use registry_admin::audit::writer;
use registry_admin::paths::parent_dir;
use registry_admin::retention::policy::{Policies, compile};
use registry_admin::robots::Robots;
use registry_admin::token::key::TokenKey;
use registry_admin::users::htpasswd::Htpasswd;
use registry_admin::users::model::Metadata;

use registry_admin::audit::store_rows;
use registry_admin::store::{Database, DatabaseError};

use super::{CliError, audit_of, io_err, os_actor, settings};

const FORMAT: &str = "registry-admin-backup/1";
const MANIFEST: &str = "backup.json";
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Account files are small; restore parses them whole, so it bounds what it reads.
const MAX_ACCOUNT_FILE_BYTES: u64 = 64 << 20;
const AUDIT_NAME: &str = "audit.log";
const ROBOTS_NAME: &str = registry_admin::robots::store::FILE_NAME;
const RETENTION_NAME: &str = registry_admin::retention::store::FILE_NAME;
/// The service refuses a JSON state file larger than this (`durable::JsonFile`), so restore
/// refuses it too rather than put back a file the service would not read.
const MAX_SERVICE_JSON_BYTES: u64 = registry_admin::durable::DEFAULT_MAX_BYTES;
pub const RESTORE_ACTION: &str = "backup.restore";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
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
struct FileRecord {
    name: String,
    kind: Kind,
    size: u64,
    sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    created_at: String,
    /// The version that wrote it.
    registry_admin: String,
    /// Entries in the copied audit chain.
    audit_entries: u64,
    files: Vec<FileRecord>,
}

/// Where each file lives on this host, from the settings.
struct Layout {
    htpasswd: PathBuf,
    users: PathBuf,
    grants: PathBuf,
    robots: PathBuf,
    retention: PathBuf,
    token_key: PathBuf,
    token_cert: PathBuf,
    audit: AuditFiles,
    audit_max_bytes: u64,
}

impl Layout {
    fn from_env() -> Result<Layout, CliError> {
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
    fn singles(&self) -> [(Kind, &'static str, &Path); 7] {
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
    fn destination(&self, rec: &FileRecord) -> Option<PathBuf> {
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
fn audit_number(name: &str) -> Option<Option<u64>> {
    if name == AUDIT_NAME {
        return Some(None);
    }
    let n = name.strip_prefix("audit.log.")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse::<u64>().ok().filter(|n| *n > 0).map(Some)
}

fn audit_backup_name(n: Option<u64>) -> String {
    n.map_or_else(|| AUDIT_NAME.to_string(), |n| format!("{AUDIT_NAME}.{n}"))
}

/// Holds the lock `UserStore::modify` takes (`.<htpasswd name>.lock` beside it), so no account
/// change happens while it is held.
fn lock_accounts(htpasswd: &Path) -> Result<File, CliError> {
    let name = htpasswd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htpasswd".into());
    let path = parent_dir(htpasswd).join(format!(".{name}.lock"));
    registry_admin::durable::lock_file(&path).map_err(io_err(&path))
}

/// Passes writes through while counting and hashing them.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies `src` into `dst`, returning size and hex SHA-256 of what was written.
fn copy_hashed(src: &mut impl Read, dst: &mut impl Write) -> io::Result<(u64, String)> {
    let mut out = Hashing {
        inner: dst,
        hasher: Sha256::new(),
        len: 0,
    };
    io::copy(src, &mut out)?;
    out.flush()?;
    Ok((out.len, hex::encode(out.hasher.finalize())))
}

/// Opens a file of a backup for reading: never through a symbolic link, and only a regular
/// file (a FIFO would hang the read; a device could be anything).
fn open_backup_file(path: &Path) -> Result<File, CliError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refuse(format!(
                    "{} is a symbolic link; a backup holds plain files only",
                    path.display()
                ))
            } else {
                io_err(path)(e)
            }
        })?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!("{} is not a regular file", path.display())));
    }
    Ok(f)
}

/// Size and hex SHA-256 of at most `max + 1` bytes of `path`: a file that grew past what the
/// manifest says is not read to its end.
fn hash_file(path: &Path, max: u64) -> Result<(u64, String), CliError> {
    let f = open_backup_file(path)?;
    copy_hashed(&mut f.take(max.saturating_add(1)), &mut io::sink()).map_err(io_err(path))
}

/// What a name in the backup is, without following a link: refused unless a regular file.
fn backup_entry(path: &Path, name: &str) -> Result<fs::Metadata, CliError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(refuse(format!("{name} is missing from the backup")));
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(refuse(format!(
            "{name} in the backup is a symbolic link; a backup holds plain files only"
        )));
    }
    if !kind.is_file() {
        return Err(refuse(format!(
            "{name} in the backup is not a regular file"
        )));
    }
    Ok(meta)
}

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

fn sync_dir(dir: &Path) -> Result<(), CliError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
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
    sync_dir(dir)?;
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

/// One file the restore will put back.
struct Planned {
    record: FileRecord,
    src: PathBuf,
    dest: PathBuf,
}

fn refuse(why: impl std::fmt::Display) -> CliError {
    CliError::Refused(format!("refusing to restore: {why}; nothing was changed"))
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, CliError> {
    let f = open_backup_file(path)?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() as u64 > max {
        return Err(refuse(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Everything restore checks before it changes anything.
fn plan(layout: &Layout, dir: &Path) -> Result<(Manifest, Vec<Planned>), CliError> {
    let manifest_path = dir.join(MANIFEST);
    if fs::symlink_metadata(&manifest_path).is_err() {
        return Err(refuse(format!(
            "{} has no {MANIFEST}: it is not a finished backup",
            dir.display()
        )));
    }
    backup_entry(&manifest_path, MANIFEST)?;
    let manifest: Manifest =
        serde_json::from_slice(&read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?)
            .map_err(|e| refuse(format!("{MANIFEST} is not a backup manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(refuse(format!(
            "{MANIFEST} has format {:?}, this version reads {FORMAT:?}",
            manifest.format
        )));
    }
    if !manifest.files.iter().any(|f| f.kind == Kind::Htpasswd) {
        return Err(refuse("the backup has no htpasswd"));
    }
    let mut planned: Vec<Planned> = Vec::new();
    for rec in &manifest.files {
        let dest = layout.destination(rec).ok_or_else(|| {
            refuse(format!(
                "{MANIFEST} lists an unexpected file {:?}",
                rec.name
            ))
        })?;
        if planned.iter().any(|p| p.record.name == rec.name) {
            return Err(refuse(format!("{MANIFEST} lists {:?} twice", rec.name)));
        }
        let src = dir.join(&rec.name);
        // The size first: hashing a file far larger than listed is time wasted on a lie.
        let on_disk = backup_entry(&src, &rec.name)?.len();
        if on_disk != rec.size {
            return Err(refuse(format!(
                "{} is {on_disk} bytes, the manifest says {}",
                rec.name, rec.size
            )));
        }
        let (size, sha256) = hash_file(&src, rec.size)?;
        if size != rec.size {
            return Err(refuse(format!(
                "{} is {size} bytes, the manifest says {}",
                rec.name, rec.size
            )));
        }
        if sha256 != rec.sha256 {
            return Err(refuse(format!(
                "the checksum of {} does not match the manifest",
                rec.name
            )));
        }
        // Where the service would write: through a symbolic link, to the file it points to,
        // so the link stays.
        let dest = registry_admin::durable::resolve(&dest).map_err(io_err(&dest))?;
        planned.push(Planned {
            record: rec.clone(),
            src,
            dest,
        });
    }
    let copied = AuditFiles::new(dir.join(AUDIT_NAME));
    for (_, path) in copied.all() {
        let name = AuditFiles::display_name(&path);
        let present = fs::symlink_metadata(&path).is_ok();
        if present && !planned.iter().any(|p| p.record.name == name) {
            return Err(refuse(format!(
                "{name} is in the backup but not in {MANIFEST}"
            )));
        }
    }
    for p in &planned {
        check_content(p)?;
    }
    check_key_and_certificate(&planned)?;
    let report = verify(&copied).map_err(io_err(dir))?;
    if let Some(bad) = &report.first_bad_line {
        return Err(refuse(format!(
            "the backup's audit chain is broken at line {} of {}",
            bad.line, bad.file
        )));
    }
    if report.entries != manifest.audit_entries {
        return Err(refuse(format!(
            "the backup's audit chain has {} entries, the manifest says {}",
            report.entries, manifest.audit_entries
        )));
    }
    Ok((manifest, planned))
}

/// The account files must be usable by the service and registry:2 as they are.
fn check_content(p: &Planned) -> Result<(), CliError> {
    let read = || read_bounded(&p.src, MAX_ACCOUNT_FILE_BYTES);
    match p.record.kind {
        Kind::Htpasswd => {
            let text = String::from_utf8(read()?).map_err(|_| refuse("htpasswd is not UTF-8"))?;
            Htpasswd::parse(&text).map_err(|e| refuse(format!("the backup's {e}")))?;
        }
        Kind::Users => {
            serde_json::from_slice::<Metadata>(&read()?)
                .map_err(|e| refuse(format!("users.json does not parse: {e}")))?;
        }
        Kind::Grants => {
            // The same parser the service uses: a file it would refuse is not restored.
            serde_json::from_slice::<registry_admin::grants::Grants>(&read()?)
                .map_err(|e| refuse(format!("grants.json is not a valid grants file: {e}")))?;
        }
        Kind::Robots => {
            // The parser `RobotsStore` reads the file with: one it would refuse (and so refuse
            // every robot) is not restored.
            let bytes = read_bounded(&p.src, MAX_SERVICE_JSON_BYTES)?;
            serde_json::from_slice::<Robots>(&bytes)
                .map_err(|e| refuse(format!("{ROBOTS_NAME} is not a valid robots file: {e}")))?;
        }
        Kind::Retention => {
            // As `PolicyStore::current` reads it: parsed, then compiled (patterns, regular
            // expressions, durations), so no plan fails on a restored file.
            let bytes = read_bounded(&p.src, MAX_SERVICE_JSON_BYTES)?;
            let policies = serde_json::from_slice::<Policies>(&bytes).map_err(|e| {
                refuse(format!(
                    "{RETENTION_NAME} is not a valid policies file: {e}"
                ))
            })?;
            compile(&policies).map_err(|e| {
                refuse(format!(
                    "{RETENTION_NAME} is not a valid policies file: {e}"
                ))
            })?;
        }
        Kind::TokenKey => {
            // The loader the service uses at start: a key it would refuse is not restored.
            TokenKey::from_pem(&read()?)
                .map_err(|e| refuse(format!("token.key is not a key the service accepts: {e}")))?;
        }
        Kind::TokenCert => {
            let text = read()?;
            let certificates = pem::parse_many(&text)
                .map(|blocks| blocks.iter().filter(|b| b.tag() == "CERTIFICATE").count())
                .unwrap_or(0);
            if certificates == 0 {
                return Err(refuse("token.crt holds no PEM certificate"));
            }
        }
        Kind::Audit => {}
    }
    Ok(())
}

/// A `token.crt` restored beside a `token.key` must be that key's: registry:2, given it as its
/// bundle, would refuse every token otherwise.
fn check_key_and_certificate(planned: &[Planned]) -> Result<(), CliError> {
    let of = |kind: Kind| planned.iter().find(|p| p.record.kind == kind);
    let (Some(key), Some(cert)) = (of(Kind::TokenKey), of(Kind::TokenCert)) else {
        return Ok(());
    };
    let key = TokenKey::from_pem(&read_bounded(&key.src, MAX_ACCOUNT_FILE_BYTES)?)
        .map_err(|e| refuse(format!("token.key is not a key the service accepts: {e}")))?;
    if !key.is_in_bundle(&read_bounded(&cert.src, MAX_ACCOUNT_FILE_BYTES)?) {
        return Err(refuse(
            "token.crt holds no certificate for token.key; registry:2 would refuse every token",
        ));
    }
    Ok(())
}

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
    sync_dir(&aside)?;
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
            sync_dir(parent_dir(&p.dest))?;
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
