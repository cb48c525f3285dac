//! Files that must survive a crash and never be seen half-written: htpasswd and `users.json`
//! today, grants and GC jobs next. Three pieces, used together:
//!
//! - [`FileLock`]: an exclusive lock file (so two registry-admin processes, or the server and a
//!   command run on the host, serialise) plus an in-process mutex (so threads of one process
//!   queue without each holding a file descriptor in `flock`).
//! - [`replace_atomically`]: temp file in the target's directory, fsync, the old file's
//!   permissions and owner, an mtime later than the old one (registry:2 reloads htpasswd on an
//!   mtime change only, and a kernel with coarse timestamps could give two writes the same one),
//!   rename, directory fsync. A reader sees the old file or the new one, never a mix. A symlink
//!   is written through: its target is replaced and the link stays a link.
//! - [`JsonFile`]: a typed JSON document read (missing → `Default`), changed, validated and
//!   written back under a lock the caller names.
//!
//! A crash can leave a temp file behind; [`remove_leftovers`] deletes those of one file, and
//! only under that file's lock, so it never races a writer that is still going.

use std::cell::RefCell;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::error::{ErrorCode, StatusCode};
use crate::paths::parent_dir;
use crate::store::rows::Transaction;
use crate::store::{Database, DatabaseError, Place};
use crate::sync::lock;

/// Every temp file starts with this; [`remove_leftovers`] recognises them by it.
pub const TEMP_PREFIX: &str = ".tmp-";
/// Mode of a file that did not exist before: private unless the caller says otherwise.
pub const NEW_FILE_MODE: u32 = 0o600;
/// Files above this are refused rather than read: tens of thousands of accounts fit easily.
pub const DEFAULT_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// The kernel's own limit on symlink hops (`MAXSYMLINKS`); a loop ends here.
const MAX_SYMLINK_HOPS: usize = 40;

#[derive(Debug, Error)]
pub enum DurableError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Position and category only: serde's own message can quote file content, which for
    /// `users.json` may be a password hash.
    #[error("{path}: invalid JSON ({category}) at line {line}, column {column}")]
    Json {
        path: PathBuf,
        category: &'static str,
        line: usize,
        column: usize,
    },
    /// Cluster mode: the document's database could not answer.
    #[error("{0}")]
    Database(#[from] DatabaseError),
}

/// A file that cannot be read or written is the server's problem: 500, details in the log. A
/// database that does not answer is a 503 the client may retry.
impl ErrorCode for DurableError {
    fn status(&self) -> StatusCode {
        match self {
            DurableError::Database(e) => e.status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            DurableError::Database(e) => e.code(),
            _ => "internal",
        }
    }
    fn message(&self) -> String {
        match self {
            DurableError::Database(e) => e.message(),
            other => other.to_string(),
        }
    }
}

impl DurableError {
    fn json(path: &Path, e: &serde_json::Error) -> DurableError {
        use serde_json::error::Category;
        DurableError::Json {
            path: path.to_path_buf(),
            category: match e.classify() {
                Category::Io => "read error",
                Category::Syntax => "syntax",
                Category::Data => "unexpected value",
                Category::Eof => "truncated",
            },
            line: e.line(),
            column: e.column(),
        }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DurableError + '_ {
    move |source| DurableError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens (creating it owner-only) and exclusively locks the lock file at `path`; the lock lasts
/// as long as the returned file is open. Blocking. Other processes (the CLI beside the service)
/// wait on the same file.
pub fn lock_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.lock()?;
    Ok(file)
}

/// An exclusive lock on a lock file, shared by every process using the same path; in cluster
/// mode, a PostgreSQL advisory lock of the same name, shared by every replica, held by a
/// transaction that the documents written under it commit with.
pub struct FileLock {
    path: PathBuf,
    in_process: Mutex<()>,
    db: Option<Arc<Database>>,
}

/// Proof that a [`FileLock`] is held; the lock is released when this is dropped. In cluster
/// mode the writes made under it count only once [`LockGuard::commit`] says so.
pub struct LockGuard<'a> {
    // Field order is drop order: release the file lock before letting the next thread in.
    held: Held,
    _in_process: MutexGuard<'a, ()>,
    lock: &'a FileLock,
}

enum Held {
    File(#[expect(dead_code, reason = "held open for its lock")] File),
    // Boxed: a transaction is far larger than a file handle.
    Rows(Box<RefCell<Option<Transaction>>>),
}

impl FileLock {
    pub fn new(path: impl Into<PathBuf>) -> FileLock {
        FileLock {
            path: path.into(),
            in_process: Mutex::new(()),
            db: None,
        }
    }

    /// The lock `name` (a lock file's name, e.g. `.htpasswd.lock`) where `place` keeps things.
    pub fn at(place: &Place, name: &str) -> FileLock {
        let (path, db) = place.locate(name);
        FileLock {
            path,
            in_process: Mutex::new(()),
            db,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks until the lock is ours; creates the lock file (and its directory) if needed.
    /// Blocking: call it from a blocking thread.
    pub fn acquire(&self) -> Result<LockGuard<'_>, DurableError> {
        let in_process = lock(&self.in_process);
        let held = match &self.db {
            Some(db) => Held::Rows(Box::new(RefCell::new(Some(Transaction::begin(
                db,
                &self.path.to_string_lossy(),
            )?)))),
            None => {
                let dir = parent_dir(&self.path);
                fs::create_dir_all(dir).map_err(io_at(dir))?;
                Held::File(lock_file(&self.path).map_err(io_at(&self.path))?)
            }
        };
        Ok(LockGuard {
            held,
            _in_process: in_process,
            lock: self,
        })
    }

    /// Cluster mode: the database this lock is in.
    pub fn database(&self) -> Option<&Arc<Database>> {
        self.db.as_ref()
    }
}

impl LockGuard<'_> {
    /// The lock file this guard holds.
    pub fn lock_path(&self) -> &Path {
        &self.lock.path
    }

    /// Ends the critical section: in cluster mode commits what was written under it (files are
    /// already in place when each write returns). Dropping the guard instead releases it and,
    /// in cluster mode, discards the writes.
    pub fn commit(self) -> Result<(), DurableError> {
        if let Held::Rows(tx) = &self.held
            && let Some(tx) = tx.borrow_mut().take()
        {
            tx.commit()?;
        }
        Ok(())
    }

    /// The transaction of a cluster-mode guard, for a document's read or write under it.
    fn with_rows<R>(
        &self,
        f: impl FnOnce(&mut Transaction) -> Result<R, DatabaseError>,
    ) -> Option<Result<R, DurableError>> {
        match &self.held {
            Held::File(_) => None,
            Held::Rows(tx) => Some(match tx.borrow_mut().as_mut() {
                Some(tx) => f(tx).map_err(DurableError::from),
                None => Err(DatabaseError("the change was already committed".into()).into()),
            }),
        }
    }
}

/// Where a write to `path` really lands: symlinks followed (a relative target is relative to
/// the link's directory). The result need not exist yet.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINK_HOPS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = if target.is_absolute() {
                    target
                } else {
                    parent_dir(&current).join(target)
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_SYMLINK_HOPS} symlinks"
    )))
}

/// Replaces `path` with `contents`; a new file gets mode 0600.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> Result<(), DurableError> {
    replace_atomically_with_mode(path, contents, NEW_FILE_MODE)
}

/// Replaces `path` with `contents` so that a reader sees either the old or the new file. An
/// existing file keeps its mode and, as far as we are allowed, its owner; a new one gets
/// `new_mode`.
pub fn replace_atomically_with_mode(
    path: &Path,
    contents: &[u8],
    new_mode: u32,
) -> Result<(), DurableError> {
    let target = resolve(path).map_err(io_at(path))?;
    let dir = parent_dir(&target);
    let old = fs::metadata(&target).ok();
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(&target))
        .tempfile_in(dir)
        .map_err(io_at(dir))?;
    let err = io_at(&target);
    let written = (|| {
        tmp.write_all(contents)?;
        let file = tmp.as_file();
        match &old {
            Some(old) => {
                file.set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))?;
                keep_owner(file, old);
                bump_mtime_past(file, old)?;
            }
            None => file.set_permissions(fs::Permissions::from_mode(new_mode & 0o7777))?,
        }
        file.sync_all()
    })();
    written.map_err(err)?;
    tmp.persist(&target).map_err(|e| io_at(&target)(e.error))?;
    sync_dir(dir).map_err(io_at(dir))?;
    Ok(())
}

/// Makes the names in `dir` durable: after a rename, a create or a remove in it, the entry
/// survives a crash only once the directory itself is synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `.tmp-<file name>.`: a leftover names the file it was meant to become, so cleaning one file's
/// leftovers never touches another file's write in progress.
fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Leaves room for the random suffix within the 255-byte name limit.
    let name: String = name.chars().take(200).collect();
    format!("{TEMP_PREFIX}{name}.")
}

/// A registry running as another user must still be able to read the file: keep the old
/// owner when we may (we are root, or only the group changes to one of ours). Best effort: a
/// refusal leaves the file ours, with the old mode.
fn keep_owner(file: &File, old: &fs::Metadata) {
    let Ok(new) = file.metadata() else { return };
    if (new.uid(), new.gid()) == (old.uid(), old.gid()) {
        return;
    }
    if std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_err() {
        let _ = std::os::unix::fs::fchown(file, None, Some(old.gid()));
    }
}

/// Pushes the file's mtime past the old file's when the clock has not moved on since.
pub fn bump_mtime_past(file: &File, old: &fs::Metadata) -> io::Result<()> {
    let new_mtime = file.metadata()?.modified()?;
    let old_mtime = old.modified()?;
    if new_mtime <= old_mtime {
        file.set_times(FileTimes::new().set_modified(old_mtime + Duration::from_millis(1)))?;
    }
    Ok(())
}

/// Deletes the temp files a crash left beside `path` (beside its symlink target, where the
/// writes happen): names `.tmp-<file name>.*`, and `.tmp-` plus six letters or digits, the
/// names earlier versions used. Taking `_held` makes the caller prove it holds the lock that
/// guards `path`, so no write in progress loses its temp file. Returns what was removed.
pub fn remove_leftovers(_held: &LockGuard<'_>, path: &Path) -> Result<Vec<PathBuf>, DurableError> {
    let target = resolve(path).map_err(io_at(path))?;
    let dir = parent_dir(&target);
    let ours = temp_prefix(&target);
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_at(dir)(e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(&ours) || is_legacy_temp(name)) {
            continue;
        }
        // Never follow a link or descend into a directory someone named like this.
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file {
            continue;
        }
        let leftover = entry.path();
        match fs::remove_file(&leftover) {
            Ok(()) => removed.push(leftover),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&leftover)(e)),
        }
    }
    Ok(removed)
}

fn is_legacy_temp(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .is_some_and(|rest| rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The bytes of `path`, `None` if it does not exist, an error above `max_bytes` (a file
/// someone filled by mistake must not fill our memory).
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>, DurableError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_at(path))?;
    if bytes.len() as u64 > max_bytes {
        return Err(io_at(path)(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {max_bytes} bytes"),
        )));
    }
    Ok(Some(bytes))
}

/// What identifies one version of a document cheaply. For a file: a rename changes the inode,
/// a write the mtime or size, and ctime also moves on writes that keep both. For a row: its
/// version number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    Missing,
    File {
        ino: u64,
        len: u64,
        mtime_ns: i64,
        ctime_ns: i64,
    },
    Row(i64),
}

/// The stamp of the file at `path` (`Missing` when it cannot be looked at).
pub fn file_stamp(path: &Path) -> Stamp {
    match fs::metadata(path) {
        Ok(m) => Stamp::File {
            ino: m.ino(),
            len: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        },
        Err(_) => Stamp::Missing,
    }
}

/// A document's bytes: a file replaced whole ([`replace_atomically`]), or in cluster mode the
/// row of the same name. Reading needs no lock; writing needs the lock its store names.
#[derive(Clone)]
pub struct Document {
    path: PathBuf,
    db: Option<Arc<Database>>,
}

impl Document {
    pub fn new(path: impl Into<PathBuf>) -> Document {
        Document {
            path: path.into(),
            db: None,
        }
    }

    /// The document `name` (a file name such as `users.json`) where `place` keeps things.
    pub fn at(place: &Place, name: &str) -> Document {
        let (path, db) = place.locate(name);
        Document { path, db }
    }

    /// The file's path; in cluster mode, the row's name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn row(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    pub fn is_row(&self) -> bool {
        self.db.is_some()
    }

    pub fn stamp(&self) -> Result<Stamp, DurableError> {
        match &self.db {
            None => Ok(file_stamp(&self.path)),
            Some(db) => Ok(match db.documents.get(&self.row())? {
                Some(d) => Stamp::Row(d.version),
                None => Stamp::Missing,
            }),
        }
    }

    pub fn exists(&self) -> Result<bool, DurableError> {
        Ok(self.stamp()? != Stamp::Missing)
    }

    fn bounded(&self, bytes: Vec<u8>, max_bytes: u64) -> Result<Vec<u8>, DurableError> {
        if bytes.len() as u64 > max_bytes {
            return Err(io_at(&self.path)(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than {max_bytes} bytes"),
            )));
        }
        Ok(bytes)
    }

    /// The bytes, `None` when the document does not exist; an error above `max_bytes`.
    /// Without a lock: in cluster mode, this replica's copy (at most a second old).
    pub fn read(&self, max_bytes: u64) -> Result<Option<Vec<u8>>, DurableError> {
        match &self.db {
            None => read_bounded(&self.path, max_bytes),
            Some(db) => match db.documents.get(&self.row())? {
                Some(d) => self.bounded(d.body.as_ref().clone(), max_bytes).map(Some),
                None => Ok(None),
            },
        }
    }

    /// [`Document::read`] under `held`: in cluster mode, what the database has committed.
    pub fn read_locked(
        &self,
        held: &LockGuard<'_>,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, DurableError> {
        if self.db.is_none() {
            return read_bounded(&self.path, max_bytes);
        }
        let row = self.row();
        match held.with_rows(|tx| tx.read(&row)) {
            Some(Ok(Some(bytes))) => self.bounded(bytes, max_bytes).map(Some),
            Some(Ok(None)) => Ok(None),
            Some(Err(e)) => Err(e),
            None => Err(DatabaseError("a file lock cannot guard a database row".into()).into()),
        }
    }

    /// Replaces the document with `contents`; `held` is the lock that guards it.
    pub fn write(&self, held: &LockGuard<'_>, contents: &[u8]) -> Result<(), DurableError> {
        if self.db.is_none() {
            return replace_atomically(&self.path, contents);
        }
        let row = self.row();
        match held.with_rows(|tx| tx.write(&row, contents)) {
            Some(result) => result,
            None => Err(DatabaseError("a file lock cannot guard a database row".into()).into()),
        }
    }
}

/// A JSON document of type `T` ([`Document`]). Reading needs no lock (documents are only ever
/// replaced whole); changing needs one, named by the caller, so several documents can change
/// in one critical section (a user's deletion and its grants).
pub struct JsonFile<T> {
    doc: Document,
    max_bytes: u64,
    _type: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned + Default + PartialEq + Clone> JsonFile<T> {
    pub fn new(path: impl Into<PathBuf>) -> JsonFile<T> {
        Self::of(Document::new(path))
    }

    /// The document `name` where `place` keeps things.
    pub fn at(place: &Place, name: &str) -> JsonFile<T> {
        Self::of(Document::at(place, name))
    }

    fn of(doc: Document) -> JsonFile<T> {
        JsonFile {
            doc,
            max_bytes: DEFAULT_MAX_BYTES,
            _type: PhantomData,
        }
    }

    pub fn path(&self) -> &Path {
        self.doc.path()
    }

    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// Whether the document exists; one that cannot be looked at counts as missing.
    pub fn exists(&self) -> bool {
        self.doc.exists().unwrap_or(false)
    }

    fn parse(&self, bytes: Option<Vec<u8>>) -> Result<T, DurableError> {
        match bytes {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| DurableError::json(self.path(), &e))
            }
            None => Ok(T::default()),
        }
    }

    /// The document, or `T::default()` when it does not exist.
    pub fn read(&self) -> Result<T, DurableError> {
        self.parse(self.doc.read(self.max_bytes)?)
    }

    /// The document as the lock holder sees it (in cluster mode: committed, not cached).
    pub fn read_locked(&self, held: &LockGuard<'_>) -> Result<T, DurableError> {
        self.parse(self.doc.read_locked(held, self.max_bytes)?)
    }

    /// The bytes [`JsonFile::write`] would put on disk.
    fn render(&self, value: &T) -> Result<Vec<u8>, DurableError> {
        serde_json::to_vec_pretty(value).map_err(|e| DurableError::json(self.path(), &e))
    }

    /// Replaces the document with `value`; `held` is the lock that guards it.
    pub fn write(&self, held: &LockGuard<'_>, value: &T) -> Result<(), DurableError> {
        self.doc.write(held, &self.render(value)?)
    }

    /// Re-reads under `held`, applies `change`, checks the result with `validate`, and writes
    /// it back if it differs (or the document did not exist). Nothing is written when `change`
    /// or `validate` fails. For a caller that already holds the lock, e.g. inside
    /// `UserStore::modify_with`.
    pub fn update<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut T) -> Result<R, E>,
        validate: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<R, E> {
        let bytes = self.doc.read_locked(held, self.max_bytes)?;
        let existed = bytes.is_some();
        let old = self.parse(bytes)?;
        let mut new = old.clone();
        let out = change(&mut new)?;
        validate(&new)?;
        if new != old || !existed {
            self.write(held, &new)?;
        }
        Ok(out)
    }

    /// [`JsonFile::update`] that writes only a real change: a document that does not exist and
    /// stays empty is not created.
    pub fn update_when_changed<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, E> {
        let old = self.read_locked(held)?;
        let mut new = old.clone();
        let out = change(&mut new)?;
        if new != old {
            self.write(held, &new)?;
        }
        Ok(out)
    }

    /// [`JsonFile::update`] under `lock`, taken here and committed. Blocking.
    pub fn modify<R, E: From<DurableError>>(
        &self,
        lock: &FileLock,
        change: impl FnOnce(&mut T) -> Result<R, E>,
        validate: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<R, E> {
        let held = lock.acquire()?;
        let out = self.update(&held, change, validate)?;
        held.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;
    use std::sync::Arc;
    use std::time::SystemTime;

    type Doc = BTreeMap<String, u32>;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_new_file_is_private_and_an_old_one_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        replace_atomically(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        replace_atomically(&path, b"two").unwrap();
        assert_eq!(
            (fs::read(&path).unwrap(), mode(&path)),
            (b"two".to_vec(), 0o644)
        );
        let other = dir.path().join("g");
        replace_atomically_with_mode(&other, b"x", 0o640).unwrap();
        assert_eq!(mode(&other), 0o640);
        assert_eq!(names(dir.path()), ["f", "g"], "no temp file left");
    }

    #[test]
    fn the_mtime_always_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "a").unwrap();
        let future = SystemTime::now() + Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(FileTimes::new().set_modified(future))
            .unwrap();
        replace_atomically(&path, b"b").unwrap();
        assert!(fs::metadata(&path).unwrap().modified().unwrap() > future);
    }

    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("target"), "old").unwrap();
        fs::set_permissions(real.join("target"), fs::Permissions::from_mode(0o640)).unwrap();
        // A relative link, through a second link: both hops are followed.
        let hop = dir.path().join("hop");
        symlink("real/target", &hop).unwrap();
        let link = dir.path().join("link");
        symlink("hop", &link).unwrap();

        replace_atomically(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(fs::symlink_metadata(&hop).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(real.join("target")).unwrap(), b"new");
        assert_eq!(mode(&real.join("target")), 0o640);
        assert_eq!(
            names(&real),
            ["target"],
            "temp file made and renamed in the target's dir"
        );
    }

    #[test]
    fn a_dangling_symlink_creates_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        symlink(dir.path().join("missing"), &link).unwrap();
        replace_atomically(&link, b"x").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(dir.path().join("missing")).unwrap(), b"x");
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        assert!(replace_atomically(&dir.path().join("a"), b"x").is_err());
    }

    #[test]
    fn leftovers_of_one_file_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        fs::write(&path, "keep").unwrap();
        for name in [
            ".tmp-htpasswd.Ab12Cd",
            ".tmp-Xy98Zw",
            ".tmp-grants.json.Qq11Rr",
            ".tmp-notes",
            ".tmpAbCdEf",
            "users.json",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        fs::create_dir(dir.path().join(".tmp-htpasswd.dir")).unwrap();
        let lock = FileLock::new(dir.path().join(".htpasswd.lock"));
        let held = lock.acquire().unwrap();
        let mut removed = remove_leftovers(&held, &path).unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [
                dir.path().join(".tmp-Xy98Zw"),
                dir.path().join(".tmp-htpasswd.Ab12Cd")
            ]
        );
        assert_eq!(
            names(dir.path()),
            [
                ".htpasswd.lock",
                ".tmp-grants.json.Qq11Rr",
                ".tmp-htpasswd.dir",
                ".tmp-notes",
                ".tmpAbCdEf",
                "htpasswd",
                "users.json"
            ]
        );
    }

    #[test]
    fn leftovers_of_a_symlinked_file_are_looked_for_beside_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("htpasswd"), "").unwrap();
        fs::write(real.join(".tmp-htpasswd.Zz99Yy"), "x").unwrap();
        let link = dir.path().join("htpasswd");
        symlink(real.join("htpasswd"), &link).unwrap();
        let lock = FileLock::new(dir.path().join(".lock"));
        let held = lock.acquire().unwrap();
        assert_eq!(
            remove_leftovers(&held, &link).unwrap(),
            [real.join(".tmp-htpasswd.Zz99Yy")]
        );
    }

    #[test]
    fn a_missing_directory_has_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FileLock::new(dir.path().join(".lock"));
        let held = lock.acquire().unwrap();
        let path = dir.path().join("nowhere/htpasswd");
        assert!(remove_leftovers(&held, &path).unwrap().is_empty());
    }

    #[test]
    fn a_file_above_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap().unwrap(), b"12345");
        let err = read_bounded(&path, 4).unwrap_err();
        assert!(
            matches!(&err, DurableError::Io { source, .. } if source.kind() == io::ErrorKind::FileTooLarge),
            "{err}"
        );
        assert!(read_bounded(&dir.path().join("none"), 4).unwrap().is_none());
    }

    #[test]
    fn the_lock_serialises_threads_and_a_second_lock_on_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join(".lock");
        // Two FileLocks on one path stand for two processes: only the file lock is shared.
        let locks = [
            Arc::new(FileLock::new(&lock_path)),
            Arc::new(FileLock::new(&lock_path)),
        ];
        let doc = Arc::new(JsonFile::<Doc>::new(dir.path().join("doc.json")));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let lock = Arc::clone(&locks[i % 2]);
                let doc = Arc::clone(&doc);
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        doc.modify(
                            &lock,
                            |d| {
                                *d.entry("n".into()).or_default() += 1;
                                Ok::<_, DurableError>(())
                            },
                            |_| Ok(()),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(doc.read().unwrap()["n"], 40, "no update lost");
    }

    #[derive(Debug, PartialEq)]
    enum TestError {
        Durable(String),
        Refused,
    }

    impl From<DurableError> for TestError {
        fn from(e: DurableError) -> Self {
            TestError::Durable(e.to_string())
        }
    }

    #[test]
    fn a_json_file_reads_default_when_missing_and_writes_only_what_validates() {
        let dir = tempfile::tempdir().unwrap();
        let lock = FileLock::new(dir.path().join(".lock"));
        let doc = JsonFile::<Doc>::new(dir.path().join("doc.json"));
        assert_eq!(doc.read().unwrap(), Doc::new());

        let refused = doc.modify(
            &lock,
            |d| {
                d.insert("a".into(), 1);
                Ok(())
            },
            |_| Err(TestError::Refused),
        );
        assert_eq!(refused, Err(TestError::Refused));
        assert!(!doc.exists(), "nothing written when validation fails");

        doc.modify(
            &lock,
            |d| {
                d.insert("a".into(), 1);
                Ok::<_, TestError>(())
            },
            |d| {
                if d.len() < 2 {
                    Ok(())
                } else {
                    Err(TestError::Refused)
                }
            },
        )
        .unwrap();
        assert_eq!(doc.read().unwrap(), Doc::from([("a".into(), 1)]));
        assert_eq!(mode(doc.path()), 0o600);

        // An unchanged document is not rewritten: same inode.
        let ino = fs::metadata(doc.path()).unwrap().ino();
        doc.modify(&lock, |_| Ok::<_, TestError>(()), |_| Ok(()))
            .unwrap();
        assert_eq!(fs::metadata(doc.path()).unwrap().ino(), ino);
    }

    #[test]
    fn invalid_json_is_reported_by_position_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let doc = JsonFile::<Doc>::new(dir.path().join("doc.json"));
        fs::write(doc.path(), "{\n  \"a\": \"$2y$05$secret-hash\"\n}").unwrap();
        let err = doc.read().unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
