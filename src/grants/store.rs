//! `grants.json` beside users.json. Read without a lock (it is only ever replaced whole) and
//! cached until the file changes; written only under the htpasswd lock, through
//! `UserStore::modify_with`, so a user's deletion and its grants change in one critical section.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::Grants;
use crate::cached_json::CachedJsonFile;
use crate::durable::{DurableError, LockGuard};

pub const FILE_NAME: &str = "grants.json";

pub struct GrantsStore {
    file: CachedJsonFile<Grants>,
}

impl GrantsStore {
    pub fn new(path: impl Into<PathBuf>) -> GrantsStore {
        GrantsStore {
            file: CachedJsonFile::new(path),
        }
    }

    /// `grants.json` where `place` keeps things.
    pub fn at(place: &crate::store::Place) -> GrantsStore {
        GrantsStore {
            file: CachedJsonFile::at(place, FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The grants in force; an absent file is no grants at all (private by default). A file
    /// that does not parse is an error, never an empty grant set that would look like a change.
    pub fn current(&self) -> Result<Arc<Grants>, DurableError> {
        self.file.current()
    }

    /// Re-reads under `held` (the htpasswd lock), applies `change`, writes if it changed.
    /// [`Self::update`] that writes only a real change.
    pub fn update_when_changed<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut Grants) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update_when_changed(held, change)
    }

    pub fn update<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut Grants) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update(held, change)
    }
}
