//! A [`JsonFile`] that is only ever replaced whole, read without a lock and cached until the
//! file changes: what grants.json and robots.json are. Writes go through the lock the caller
//! holds (the htpasswd lock for both), so a change and the accounts it depends on are read and
//! written in one critical section.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::durable::{DurableError, JsonFile, LockGuard, Stamp};
use crate::store::Place;

pub struct CachedJsonFile<T> {
    file: JsonFile<T>,
    cache: RwLock<Option<(Stamp, Arc<T>)>>,
}

impl<T: Serialize + DeserializeOwned + Default + PartialEq + Clone> CachedJsonFile<T> {
    pub fn new(path: impl Into<PathBuf>) -> CachedJsonFile<T> {
        Self::of(JsonFile::new(path))
    }

    /// The document `name` where `place` keeps things.
    pub fn at(place: &Place, name: &str) -> CachedJsonFile<T> {
        Self::of(JsonFile::at(place, name))
    }

    fn of(file: JsonFile<T>) -> CachedJsonFile<T> {
        CachedJsonFile {
            file,
            cache: RwLock::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The document as stored; none is `T::default()`. A document that does not parse is an
    /// error, never a default that would look like a change.
    pub fn current(&self) -> Result<Arc<T>, DurableError> {
        let now = self.file.document().stamp()?;
        if let Ok(guard) = self.cache.read()
            && let Some((seen, value)) = guard.as_ref()
            && *seen == now
        {
            return Ok(Arc::clone(value));
        }
        let value = Arc::new(self.file.read()?);
        if let Ok(mut guard) = self.cache.write() {
            *guard = Some((now, Arc::clone(&value)));
        }
        Ok(value)
    }

    /// Re-reads under `held`, applies `change`, writes only a real change (no empty document
    /// is created).
    pub fn update_when_changed<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update_when_changed(held, change)
    }

    /// Re-reads under `held`, applies `change`, writes if it changed.
    pub fn update<R, E: From<DurableError>>(
        &self,
        held: &LockGuard<'_>,
        change: impl FnOnce(&mut T) -> Result<R, E>,
    ) -> Result<R, E> {
        self.file.update(held, change, |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::{FileLock, replace_atomically};
    use std::collections::BTreeMap;

    type Doc = BTreeMap<String, u32>;

    #[test]
    fn no_file_is_the_default_and_a_replaced_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        let file: CachedJsonFile<Doc> = CachedJsonFile::new(&path);
        assert_eq!(*file.current().unwrap(), Doc::new());
        let lock = FileLock::new(dir.path().join("doc.lock"));
        let held = lock.acquire().unwrap();
        file.update(&held, |d| {
            d.insert("a".into(), 1);
            Ok::<_, DurableError>(())
        })
        .unwrap();
        held.commit().unwrap();
        assert_eq!(*file.current().unwrap(), Doc::from([("a".into(), 1)]));
        // Replaced behind the store's back, as another process would.
        replace_atomically(&path, br#"{"b": 2}"#).unwrap();
        assert_eq!(*file.current().unwrap(), Doc::from([("b".into(), 2)]));
    }

    #[test]
    fn a_file_that_does_not_parse_is_an_error_not_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc.json");
        replace_atomically(&path, b"{not json").unwrap();
        let file: CachedJsonFile<Doc> = CachedJsonFile::new(&path);
        assert!(file.current().is_err());
    }
}
