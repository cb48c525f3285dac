//! `grants.json` beside users.json. Read without a lock (it is only ever replaced whole) and
//! cached until the file changes; written only under the htpasswd lock, through
//! `UserStore::modify_with`, so a user's deletion and its grants change in one critical section.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::model::Grants;
use crate::durable::{DurableError, JsonFile, LockGuard};

pub const FILE_NAME: &str = "grants.json";

/// (inode, size, mtime ns, ctime ns): changes with every replace.
type Stamp = Option<(u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    fs::metadata(path).ok().map(|m| {
        (
            m.ino(),
            m.len(),
            m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        )
    })
}

pub struct GrantsStore {
    file: JsonFile<Grants>,
    cache: RwLock<Option<(Stamp, Arc<Grants>)>>,
}

impl GrantsStore {
    pub fn new(path: impl Into<PathBuf>) -> GrantsStore {
        GrantsStore {
            file: JsonFile::new(path),
            cache: RwLock::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The grants in force; an absent file is no grants at all (private by default). A file
    /// that does not parse is an error, never an empty grant set that would look like a change.
    pub fn current(&self) -> Result<Arc<Grants>, DurableError> {
        let now = stamp(self.file.path());
        if let Ok(guard) = self.cache.read()
            && let Some((seen, grants)) = guard.as_ref()
            && *seen == now
        {
            return Ok(Arc::clone(grants));
        }
        let grants = Arc::new(self.file.read()?);
        if let Ok(mut guard) = self.cache.write() {
            *guard = Some((now, Arc::clone(&grants)));
        }
        Ok(grants)
    }

    /// Re-reads under `held` (the htpasswd lock), applies `change`, writes if it changed.
    pub fn update<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut Grants) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update(held, change, |_| Ok(()))
    }
}
