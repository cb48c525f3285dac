//! The htpasswd and `users.json` on disk. Every change takes an exclusive lock (a lock file
//! beside htpasswd, so two registry-admin processes also serialise), re-reads both files,
//! applies the change, checks that the result parses, and replaces each file atomically:
//! temp file in the same directory, fsync, an mtime that differs from the old file's (registry:2
//! reloads on mtime change only), rename, directory fsync. registry:2 never sees a partial file.

use crate::sync::lock;
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use thiserror::Error;

use super::htpasswd::{Htpasswd, ParseError};
use super::model::{Accounts, Metadata, Refusal};
use crate::paths::parent_dir;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("user {0:?} not found")]
    NotFound(String),
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    LastAdmin(String),
    #[error("account {0:?} is protected")]
    Protected(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: refusing to rewrite a file registry:2 cannot read: {source}")]
    Htpasswd { path: PathBuf, source: ParseError },
    #[error("{path}: {source}")]
    Metadata {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl From<Refusal> for StoreError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound(u) => StoreError::NotFound(u),
            Refusal::Exists(u) => StoreError::Exists(u),
            Refusal::LastAdmin(m) => StoreError::LastAdmin(m),
            Refusal::Protected(u) => StoreError::Protected(u),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What identifies one version of a file cheaply: a rename changes the inode, a write the
/// mtime or size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    fs::metadata(path).ok().map(|m| Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

struct Snapshot {
    stamps: (Option<Stamp>, Option<Stamp>),
    accounts: Arc<Accounts>,
}

pub struct UserStore {
    htpasswd_path: PathBuf,
    meta_path: PathBuf,
    lock_path: PathBuf,
    /// Serialises writers inside this process; the file lock covers other processes.
    write_lock: Mutex<()>,
    snapshot: RwLock<Option<Snapshot>>,
}

impl UserStore {
    pub fn new(htpasswd_path: impl Into<PathBuf>) -> UserStore {
        let htpasswd_path = htpasswd_path.into();
        let dir = parent_dir(&htpasswd_path);
        let name = htpasswd_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "htpasswd".into());
        UserStore {
            meta_path: dir.join("users.json"),
            lock_path: dir.join(format!(".{name}.lock")),
            htpasswd_path,
            write_lock: Mutex::new(()),
            snapshot: RwLock::new(None),
        }
    }

    pub fn htpasswd_path(&self) -> &Path {
        &self.htpasswd_path
    }

    /// The current accounts, re-read only when either file changed on disk (two `stat`s per call),
    /// so hand edits are seen at once, as registry:2 sees them.
    pub fn current(&self) -> Result<Arc<Accounts>, StoreError> {
        let stamps = (stamp(&self.htpasswd_path), stamp(&self.meta_path));
        if let Ok(guard) = self.snapshot.read()
            && let Some(snap) = guard.as_ref()
            && snap.stamps == stamps
        {
            return Ok(snap.accounts.clone());
        }
        let accounts = Arc::new(self.read()?);
        if let Ok(mut guard) = self.snapshot.write() {
            *guard = Some(Snapshot {
                stamps,
                accounts: accounts.clone(),
            });
        }
        Ok(accounts)
    }

    fn read(&self) -> Result<Accounts, StoreError> {
        let htpasswd = match fs::read_to_string(&self.htpasswd_path) {
            Ok(text) => Htpasswd::parse(&text).map_err(|source| StoreError::Htpasswd {
                path: self.htpasswd_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Htpasswd::default(),
            Err(e) => return Err(io_err(&self.htpasswd_path)(e)),
        };
        let meta = match fs::read(&self.meta_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StoreError::Metadata {
                path: self.meta_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Metadata::default(),
            Err(e) => return Err(io_err(&self.meta_path)(e)),
        };
        Ok(Accounts { htpasswd, meta })
    }

    /// Applies `change` under the lock and writes what it changed. Blocking: call it from
    /// a blocking thread. Nothing is written when `change` fails.
    pub fn modify<T>(
        &self,
        change: impl FnOnce(&mut Accounts) -> Result<T, Refusal>,
    ) -> Result<T, StoreError> {
        let _inner = lock(&self.write_lock);
        let dir = parent_dir(&self.htpasswd_path);
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(io_err(&self.lock_path))?;
        lock_file.lock().map_err(io_err(&self.lock_path))?;

        let old = self.read()?;
        let mut new = old.clone();
        let out = change(&mut new)?;
        new.prune_stale();

        let htpasswd_text = new.htpasswd.render();
        // The registry keeps its previous user list when a file fails to parse, so a bad
        // write would silently keep removed users alive: check before swapping.
        Htpasswd::parse(&htpasswd_text).map_err(|source| StoreError::Htpasswd {
            path: self.htpasswd_path.clone(),
            source,
        })?;
        let meta_text =
            serde_json::to_vec_pretty(&new.meta).map_err(|source| StoreError::Metadata {
                path: self.meta_path.clone(),
                source,
            })?;

        let htpasswd_changed = new.htpasswd != old.htpasswd;
        let meta_changed = new.meta != old.meta;
        // A crash between the two renames must never grant more than either state: when the
        // change puts a line into htpasswd, write htpasswd first (a new line without metadata
        // is a plain user); otherwise write metadata first (a line whose metadata is gone or
        // says disabled is still an enabled account, htpasswd being authoritative).
        let old_users = old.htpasswd.entries();
        let adds_a_line = new
            .htpasswd
            .entries()
            .iter()
            .any(|(u, h)| old_users.get(u) != Some(h));
        let write_htpasswd = || -> Result<(), StoreError> {
            if htpasswd_changed || !self.htpasswd_path.exists() {
                replace_atomically(&self.htpasswd_path, htpasswd_text.as_bytes())?;
            }
            Ok(())
        };
        let write_meta = || -> Result<(), StoreError> {
            if meta_changed || !self.meta_path.exists() {
                replace_atomically(&self.meta_path, &meta_text)?;
            }
            Ok(())
        };
        if adds_a_line {
            write_htpasswd()?;
            write_meta()?;
        } else {
            write_meta()?;
            write_htpasswd()?;
        }
        // lock_file is closed (and the lock released) when it goes out of scope.
        Ok(out)
    }
}

/// Replaces `path` with `contents` so that a reader sees either the old or the new file.
pub fn replace_atomically(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let dir = parent_dir(path);
    let err = io_err(path);
    let old = fs::metadata(path).ok();
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(contents).map_err(io_err(path))?;
    if let Some(old) = &old {
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(old.mode() & 0o7777))
            .map_err(io_err(path))?;
        bump_mtime_past(tmp.as_file(), old).map_err(io_err(path))?;
    }
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

/// registry:2 reloads htpasswd only when the mtime differs from what it saw; on a kernel with
/// coarse timestamps two writes in one tick could share an mtime, so push ours past the old one.
fn bump_mtime_past(file: &File, old: &fs::Metadata) -> io::Result<()> {
    let new_mtime = file.metadata()?.modified()?;
    let old_mtime = old.modified()?;
    if new_mtime <= old_mtime {
        let later: SystemTime = old_mtime + Duration::from_millis(1);
        file.set_times(FileTimes::new().set_modified(later))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::model::Role;
    use chrono::Utc;

    #[test]
    fn writes_both_files_and_sees_hand_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        fs::write(&path, "# mine\nhand:$2y$05$x\n").unwrap();
        let store = UserStore::new(&path);
        store
            .modify(|a| a.create("alice", "$2y$05$y", Role::Admin, None, Utc::now()))
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "# mine\nhand:$2y$05$x\nalice:$2y$05$y\n");
        let meta = fs::read_to_string(dir.path().join("users.json")).unwrap();
        assert!(meta.contains("\"alice\"") && meta.contains("\"admin\""));

        assert!(store.current().unwrap().view("late").is_none());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"late:$2y$05$z\n").unwrap();
        drop(f);
        assert_eq!(
            store.current().unwrap().view("late").unwrap().role,
            Role::User
        );
    }

    #[test]
    fn refuses_to_rewrite_an_unparsable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        fs::write(&path, "garbage-line\n").unwrap();
        let store = UserStore::new(&path);
        let err = store
            .modify(|a| a.create("alice", "h", Role::User, None, Utc::now()))
            .unwrap_err();
        assert!(matches!(err, StoreError::Htpasswd { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "garbage-line\n");
    }

    #[test]
    fn a_refused_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let store = UserStore::new(&path);
        store
            .modify(|a| a.create("alice", "h", Role::Admin, None, Utc::now()))
            .unwrap();
        let before = (fs::read(&path).unwrap(), stamp(&path));
        assert!(matches!(
            store.modify(|a| a.delete("alice")),
            Err(StoreError::LastAdmin(_))
        ));
        assert_eq!((fs::read(&path).unwrap(), stamp(&path)), before);
    }

    #[test]
    fn mtime_always_moves_forward() {
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
}
