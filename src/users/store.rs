//! The htpasswd and `users.json` on disk, written through the durable-file layer
//! (`crate::durable`). Every change takes one exclusive lock (a lock file beside htpasswd, so two
//! registry-admin processes also serialise), re-reads both files, applies the change, checks
//! that the result parses, and replaces each file atomically. registry:2 never sees a partial
//! file. Other files that must change together with the accounts (a deleted user's grants) are
//! written under the same lock through [`UserStore::modify_with`].
//!
//! Reading never serves accounts the files no longer hold: a file that does not parse, cannot
//! be read, or was deleted after we saw it is an error (`StoreError::Htpasswd`, answered 503),
//! and the cached snapshot is dropped.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use thiserror::Error;

use super::htpasswd::{Htpasswd, ParseError};
use super::model::{Accounts, Metadata, Refusal};
use crate::durable::{
    self, DEFAULT_MAX_BYTES, Document, DurableError, FileLock, JsonFile, LockGuard, Stamp,
};
use crate::error::{ErrorCode, StatusCode};
use crate::paths::parent_dir;
use crate::store::{Database, Place};

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
    /// The htpasswd on disk cannot be used; someone has to fix it by hand.
    #[error("{path}: {problem}")]
    Htpasswd {
        path: PathBuf,
        problem: HtpasswdProblem,
    },
    /// A change would produce an htpasswd registry:2 could not read: our bug, never written.
    #[error("{path}: refusing to write an htpasswd registry:2 cannot read: {source}")]
    WouldBreak { path: PathBuf, source: ParseError },
    #[error(transparent)]
    File(#[from] DurableError),
}

/// What is wrong with the htpasswd on disk. The text never quotes the file: a broken line may
/// be a hash.
#[derive(Debug, Error)]
pub enum HtpasswdProblem {
    #[error("line {}: invalid entry (no ':' separator)", .0.line)]
    Parse(ParseError),
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 { line: usize },
    #[error(
        "the file is missing (it existed earlier; restore it, or restart registry-admin to create a new one)"
    )]
    Missing,
    #[error("cannot be read: {0}")]
    Unreadable(io::Error),
}

impl StoreError {
    /// The reason, without the path, when the htpasswd file itself is what is wrong: the text
    /// `/health/ready` and the 503 `htpasswd_invalid` show.
    pub fn htpasswd_problem(&self) -> Option<String> {
        match self {
            StoreError::Htpasswd { problem, .. } => Some(problem.to_string()),
            _ => None,
        }
    }
}

impl ErrorCode for StoreError {
    fn status(&self) -> StatusCode {
        match self {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Exists(_) | StoreError::LastAdmin(_) | StoreError::Protected(_) => {
                StatusCode::CONFLICT
            }
            StoreError::Htpasswd { .. } => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::File(e) => e.status(),
            StoreError::WouldBreak { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "not_found",
            StoreError::Exists(_) => "user_exists",
            StoreError::LastAdmin(_) => "last_admin",
            StoreError::Protected(_) => "protected_account",
            StoreError::Htpasswd { .. } => "htpasswd_invalid",
            StoreError::File(e) => e.code(),
            StoreError::WouldBreak { .. } => "internal",
        }
    }
    /// A broken htpasswd is named without its path; accounts are unknown until it is fixed,
    /// so nothing that needs them is answered.
    fn message(&self) -> String {
        match self {
            StoreError::Protected(u) => format!(
                "the account {u:?} is managed by registry-admin itself and cannot be changed"
            ),
            StoreError::Htpasswd { problem, .. } => format!(
                "the htpasswd file cannot be used: {problem}; accounts are unavailable until it is fixed"
            ),
            StoreError::File(e) => e.message(),
            other => other.to_string(),
        }
    }
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

struct Snapshot {
    stamps: (Stamp, Stamp),
    accounts: Arc<Accounts>,
}

pub struct UserStore {
    htpasswd_path: PathBuf,
    htpasswd: Document,
    meta: JsonFile<Metadata>,
    lock: FileLock,
    /// Where the documents that change with the accounts live (grants, robots, …).
    place: Place,
    /// Set once htpasswd has been on disk: from then on its absence is an error. Before (a
    /// first start), a missing file is an empty one that the bootstrap then creates.
    seen: AtomicBool,
    snapshot: RwLock<Option<Snapshot>>,
}

impl UserStore {
    /// Files mode: htpasswd at `htpasswd_path`, `users.json` and the other documents beside it.
    pub fn new(htpasswd_path: impl Into<PathBuf>) -> UserStore {
        let htpasswd_path = htpasswd_path.into();
        let dir = parent_dir(&htpasswd_path).to_path_buf();
        let name = htpasswd_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "htpasswd".into());
        let place = Place::Files(dir);
        UserStore {
            meta: JsonFile::at(&place, "users.json"),
            lock: FileLock::at(&place, &format!(".{name}.lock")),
            htpasswd: Document::new(&htpasswd_path),
            htpasswd_path,
            place,
            seen: AtomicBool::new(false),
            snapshot: RwLock::new(None),
        }
    }

    /// Cluster mode: the same documents as rows of `db` (`htpasswd`, `users.json`, …), under
    /// the advisory lock `.htpasswd.lock`.
    pub fn in_database(db: Arc<Database>) -> UserStore {
        let place = Place::Database(db);
        UserStore {
            meta: JsonFile::at(&place, "users.json"),
            lock: FileLock::at(&place, ".htpasswd.lock"),
            htpasswd: Document::at(&place, "htpasswd"),
            htpasswd_path: PathBuf::from("htpasswd"),
            place,
            seen: AtomicBool::new(false),
            snapshot: RwLock::new(None),
        }
    }

    /// Cluster mode: re-reads what other replicas changed, now, instead of within the next
    /// refresh; returns whether there is a database at all. Blocking.
    pub fn refresh_now(&self) -> Result<bool, StoreError> {
        match &self.place {
            Place::Files(_) => Ok(false),
            Place::Database(db) => {
                crate::store::rows::refresh(db).map_err(|e| StoreError::File(e.into()))?;
                Ok(true)
            }
        }
    }

    /// Where this store's documents and those that change with them live.
    pub fn place(&self) -> &Place {
        &self.place
    }

    pub fn htpasswd_path(&self) -> &Path {
        &self.htpasswd_path
    }

    /// A file beside htpasswd (as configured, not beside a symlink's target), such as
    /// `grants.json`: files that change with the accounts live with them. Files mode only;
    /// stores find their documents through [`UserStore::place`].
    pub fn beside(&self, name: &str) -> PathBuf {
        parent_dir(&self.htpasswd_path).join(name)
    }

    /// The current accounts, re-read only when either file changed on disk (two `stat`s per call),
    /// so hand edits are seen at once, as registry:2 sees them.
    pub fn current(&self) -> Result<Arc<Accounts>, StoreError> {
        let stamps = (self.htpasswd.stamp()?, self.meta.document().stamp()?);
        if let Ok(guard) = self.snapshot.read()
            && let Some(snap) = guard.as_ref()
            && snap.stamps == stamps
        {
            return Ok(snap.accounts.clone());
        }
        match self.read() {
            Ok(accounts) => {
                let accounts = Arc::new(accounts);
                if let Ok(mut guard) = self.snapshot.write() {
                    *guard = Some(Snapshot {
                        stamps,
                        accounts: accounts.clone(),
                    });
                }
                Ok(accounts)
            }
            Err(e) => {
                // Not needed for correctness (the stamps no longer match), but nothing should
                // keep accounts a broken or vanished file no longer holds.
                if let Ok(mut guard) = self.snapshot.write() {
                    *guard = None;
                }
                Err(e)
            }
        }
    }

    fn htpasswd_error(&self, problem: HtpasswdProblem) -> StoreError {
        StoreError::Htpasswd {
            path: self.htpasswd_path.clone(),
            problem,
        }
    }

    fn read_htpasswd(&self, held: Option<&LockGuard<'_>>) -> Result<Htpasswd, StoreError> {
        let read = match held {
            Some(held) => self.htpasswd.read_locked(held, DEFAULT_MAX_BYTES),
            None => self.htpasswd.read(DEFAULT_MAX_BYTES),
        };
        let bytes = match read {
            Ok(Some(bytes)) => bytes,
            Ok(None) if self.seen.load(Ordering::Relaxed) => {
                return Err(self.htpasswd_error(HtpasswdProblem::Missing));
            }
            Ok(None) => return Ok(Htpasswd::default()),
            Err(DurableError::Io { source, .. }) => {
                return Err(self.htpasswd_error(HtpasswdProblem::Unreadable(source)));
            }
            Err(other) => return Err(other.into()),
        };
        self.seen.store(true, Ordering::Relaxed);
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            self.htpasswd_error(HtpasswdProblem::NotUtf8 { line })
        })?;
        Htpasswd::parse(&text).map_err(|e| self.htpasswd_error(HtpasswdProblem::Parse(e)))
    }

    fn read(&self) -> Result<Accounts, StoreError> {
        Ok(Accounts {
            htpasswd: self.read_htpasswd(None)?,
            meta: self.meta.read()?,
        })
    }

    /// Under the lock: what is committed (in cluster mode, not this replica's copy).
    fn read_locked(&self, held: &LockGuard<'_>) -> Result<Accounts, StoreError> {
        Ok(Accounts {
            htpasswd: self.read_htpasswd(Some(held))?,
            meta: self.meta.read_locked(held)?,
        })
    }

    /// Applies `change` under the lock and writes what it changed. Blocking: call it from
    /// a blocking thread. Nothing is written when `change` fails.
    pub fn modify<T>(
        &self,
        change: impl FnOnce(&mut Accounts) -> Result<T, Refusal>,
    ) -> Result<T, StoreError> {
        self.modify_with(|accounts, _| change(accounts).map_err(StoreError::from))
    }

    /// [`UserStore::modify`] for a change that also writes other files in the same critical
    /// section: `change` gets the accounts and the held lock, which it passes to
    /// `JsonFile::update`/`write` (for a file at [`UserStore::beside`]). Its own writes land
    /// *before* the accounts are written, so a change that takes rights away elsewhere (a
    /// deleted user's grants) is on disk first and a crash between the two leaves less access,
    /// never more. `change` should refuse before it writes anything; once it returns `Ok`, a
    /// failed accounts write does not undo its files. Blocking.
    pub fn modify_with<T, E: From<StoreError>>(
        &self,
        change: impl FnOnce(&mut Accounts, &LockGuard<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let held = self.lock.acquire().map_err(StoreError::from)?;
        let old = self.read_locked(&held)?;
        let mut new = old.clone();
        let out = change(&mut new, &held)?;
        self.write(&held, &old, new)?;
        // Files: released after both renames. Cluster mode: every document written under the
        // lock commits at once.
        held.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    fn write(
        &self,
        held: &LockGuard<'_>,
        old: &Accounts,
        mut new: Accounts,
    ) -> Result<(), StoreError> {
        new.prune_stale();
        let htpasswd_text = new.htpasswd.render();
        // The registry keeps its previous user list when a file fails to parse, so a bad
        // write would silently keep removed users alive: check before swapping.
        Htpasswd::parse(&htpasswd_text).map_err(|source| StoreError::WouldBreak {
            path: self.htpasswd_path.clone(),
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
            if htpasswd_changed || !self.htpasswd.exists()? {
                self.htpasswd.write(held, htpasswd_text.as_bytes())?;
                self.seen.store(true, Ordering::Relaxed);
            }
            Ok(())
        };
        let write_meta = || -> Result<(), StoreError> {
            if meta_changed || !self.meta.exists() {
                self.meta.write(held, &new.meta)?;
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
        Ok(())
    }

    /// Removes the temp files a crash left beside htpasswd and `users.json` (beside their
    /// targets when they are symlinks). Call it once at start, before anything writes; it takes
    /// the lock, so another process's write in progress keeps its temp file. Returns how many
    /// files were removed. Blocking.
    pub fn clean_leftovers(&self) -> Result<usize, StoreError> {
        if self.htpasswd.is_row() || !parent_dir(&self.htpasswd_path).is_dir() {
            return Ok(0);
        }
        let held = self.lock.acquire()?;
        let mut removed = 0;
        for path in [self.htpasswd_path.as_path(), self.meta.path()] {
            for leftover in durable::remove_leftovers(&held, path)? {
                log::warn!(
                    "removed {}, left behind by an interrupted write",
                    leftover.display()
                );
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::file_stamp as stamp;
    use crate::names::Role;
    use chrono::Utc;
    use std::fs;
    use std::fs::OpenOptions;
    use std::io::Write;

    #[test]
    fn store_errors_answer_without_the_files_path() {
        let protected = StoreError::Protected("registry-admin".into());
        assert_eq!(
            (protected.status().as_u16(), protected.code(), protected.message()),
            (
                409,
                "protected_account",
                "the account \"registry-admin\" is managed by registry-admin itself and cannot be changed".to_string()
            )
        );
        let broken = StoreError::Htpasswd {
            path: PathBuf::from("/secret/place/htpasswd"),
            problem: HtpasswdProblem::NotUtf8 { line: 3 },
        };
        assert_eq!(
            (broken.status().as_u16(), broken.code(), broken.message()),
            (
                503,
                "htpasswd_invalid",
                "the htpasswd file cannot be used: line 3: not valid UTF-8; accounts are unavailable until it is fixed".to_string()
            )
        );
    }
    use std::os::unix::fs::symlink;

    fn problem(e: StoreError) -> String {
        e.htpasswd_problem()
            .unwrap_or_else(|| panic!("not an htpasswd problem: {e}"))
    }

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
        assert_eq!(problem(err), "line 1: invalid entry (no ':' separator)");
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
    fn a_broken_file_serves_no_accounts_until_it_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        fs::write(&path, "alice:$2y$05$x\n").unwrap();
        let store = UserStore::new(&path);
        assert!(store.current().unwrap().view("alice").is_some());

        fs::write(&path, "alice:$2y$05$x\n# note\n$2y$05$pasted-hash\n").unwrap();
        for _ in 0..2 {
            let reason = problem(store.current().unwrap_err());
            assert_eq!(reason, "line 3: invalid entry (no ':' separator)");
            assert!(!reason.contains("pasted"), "never the line's content");
        }

        fs::write(&path, "alice:$2y$05$x\nbob:$2y$05$y\n").unwrap();
        assert!(store.current().unwrap().view("bob").is_some());
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        fs::write(&path, b"a:b\nc:\xff\n").unwrap();
        let store = UserStore::new(&path);
        assert_eq!(
            problem(store.current().unwrap_err()),
            "line 2: not valid UTF-8"
        );
    }

    #[test]
    fn a_vanished_file_is_an_error_but_a_first_start_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        let store = UserStore::new(&path);
        assert!(
            store.current().unwrap().list().is_empty(),
            "never existed: empty"
        );
        store
            .modify(|a| a.create("alice", "$2y$05$y", Role::Admin, None, Utc::now()))
            .unwrap();
        assert_eq!(store.current().unwrap().list().len(), 1);

        fs::remove_file(&path).unwrap();
        assert!(problem(store.current().unwrap_err()).starts_with("the file is missing"));
        let err = store
            .modify(|a| a.create("bob", "$2y$05$z", Role::User, None, Utc::now()))
            .unwrap_err();
        assert!(problem(err).starts_with("the file is missing"));
        assert!(!path.exists(), "not recreated with only the new user");
    }

    #[test]
    fn a_symlinked_htpasswd_and_users_json_stay_links() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("htpasswd"), "hand:$2y$05$x\n").unwrap();
        fs::write(real.join("users.json"), "{}").unwrap();
        let auth = dir.path().join("auth");
        fs::create_dir(&auth).unwrap();
        symlink(real.join("htpasswd"), auth.join("htpasswd")).unwrap();
        symlink("../real/users.json", auth.join("users.json")).unwrap();

        let store = UserStore::new(auth.join("htpasswd"));
        store
            .modify(|a| a.create("alice", "$2y$05$y", Role::Admin, None, Utc::now()))
            .unwrap();
        for name in ["htpasswd", "users.json"] {
            let meta = fs::symlink_metadata(auth.join(name)).unwrap();
            assert!(meta.file_type().is_symlink(), "{name} is still a link");
        }
        assert!(
            fs::read_to_string(real.join("htpasswd"))
                .unwrap()
                .contains("alice:")
        );
        assert!(
            fs::read_to_string(real.join("users.json"))
                .unwrap()
                .contains("alice")
        );
        assert!(store.current().unwrap().view("alice").is_some());
    }

    #[test]
    fn clean_leftovers_removes_temp_files_beside_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        for name in [
            ".tmp-htpasswd.aaaaaa",
            ".tmp-users.json.bbbbbb",
            ".tmp-c1d2e3",
        ] {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        let store = UserStore::new(&path);
        assert_eq!(store.clean_leftovers().unwrap(), 3);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [".htpasswd.lock"]);
        let missing = UserStore::new(dir.path().join("none/htpasswd"));
        assert_eq!(missing.clean_leftovers().unwrap(), 0);
        assert!(!dir.path().join("none").exists(), "nothing created");
    }

    /// Stands for grants.json: a user's deletion and its grants change in one critical section.
    #[test]
    fn modify_with_writes_another_file_under_the_same_lock() {
        type Grants = std::collections::BTreeMap<String, Vec<String>>;
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::new(dir.path().join("htpasswd"));
        let grants = JsonFile::<Grants>::new(store.beside("grants.json"));
        store
            .modify(|a| {
                a.create("admin", "$2y$05$a", Role::Admin, None, Utc::now())?;
                a.create("bob", "$2y$05$b", Role::User, None, Utc::now())
            })
            .unwrap();
        let held_grants = Grants::from([("bob".into(), vec!["pull:app".into()])]);
        store
            .modify_with(|_, held| -> Result<(), StoreError> {
                Ok(grants.write(held, &held_grants)?)
            })
            .unwrap();

        store
            .modify_with(|a, held| -> Result<(), StoreError> {
                a.delete("bob")?;
                grants.update(
                    held,
                    |g| {
                        g.remove("bob");
                        Ok::<_, StoreError>(())
                    },
                    |_| Ok(()),
                )
            })
            .unwrap();
        assert!(grants.read().unwrap().is_empty());
        assert!(store.current().unwrap().view("bob").is_none());

        // A refusal before any write leaves both files alone.
        let before = fs::read(grants.path()).unwrap();
        let refused = store.modify_with(|a, held| -> Result<(), StoreError> {
            a.delete("admin")?;
            Ok(grants.write(held, &Grants::new())?)
        });
        assert!(matches!(refused, Err(StoreError::LastAdmin(_))));
        assert_eq!(fs::read(grants.path()).unwrap(), before);
    }
}
