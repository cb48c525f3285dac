//! `robots.json` beside grants.json. Read without a lock (it is only ever replaced whole) and
//! cached until the file changes; written only under the htpasswd lock, through
//! `UserStore::modify_with`, so an owner's deletion takes its robots in the same critical
//! section, and a robot's grants are checked against the owner's grants as they are on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::model::Robots;
use crate::cached_json::CachedJsonFile;
use crate::durable::{DurableError, LockGuard};

pub const FILE_NAME: &str = "robots.json";

pub struct RobotsStore {
    file: CachedJsonFile<Robots>,
    /// When this process last wrote each robot's `last_used_at`, so a burst of pulls writes
    /// the file once, not once per request.
    touched: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl RobotsStore {
    pub fn new(path: impl Into<PathBuf>) -> RobotsStore {
        RobotsStore {
            file: CachedJsonFile::new(path),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// `robots.json` where `place` keeps things.
    pub fn at(place: &crate::store::Place) -> RobotsStore {
        RobotsStore {
            file: CachedJsonFile::at(place, FILE_NAME),
            touched: Mutex::new(HashMap::new()),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The robots on disk; no file is no robots. A file that does not parse is an error, so
    /// no robot is ever accepted or refused by a guess.
    pub fn current(&self) -> Result<Arc<Robots>, DurableError> {
        self.file.current()
    }

    /// Whether this request should write `name`'s `last_used_at` (none did within `every`).
    pub fn claim_touch(&self, name: &str, now: DateTime<Utc>, every: Duration) -> bool {
        let mut touched = crate::sync::lock(&self.touched);
        if touched.get(name).is_some_and(|t| now - *t < every) {
            return false;
        }
        if touched.len() >= 10_000 {
            touched.clear();
        }
        touched.insert(name.to_string(), now);
        true
    }

    /// Re-reads under `held` (the htpasswd lock), applies `change`, writes if it changed.
    /// [`Self::update`] that writes only a real change.
    pub fn update_when_changed<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut Robots) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update_when_changed(held, change)
    }

    pub fn update<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut Robots) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update(held, change)
    }
}
