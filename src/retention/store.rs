//! `retention.json` beside grants.json: the policies, replaced whole through the durable-file
//! layer (lock file, temp + fsync + rename) like gc.json, under a lock of its own so a policy
//! change never waits behind account changes. The file is validated on read too: a hand edit
//! that breaks it makes plans fail loudly instead of running with no policies.

use std::path::PathBuf;

use super::RetentionError;
use super::policy::{Compiled, Policies, compile};
use crate::durable::{FileLock, JsonFile};

pub const FILE_NAME: &str = "retention.json";

pub struct PolicyStore {
    file: JsonFile<Policies>,
    lock: FileLock,
}

impl PolicyStore {
    pub fn new(path: impl Into<PathBuf>) -> PolicyStore {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        PolicyStore {
            file: JsonFile::new(path),
            lock: FileLock::new(lock_path),
        }
    }

    /// `retention.json` (and its lock) where `place` keeps things.
    pub fn at(place: &crate::store::Place) -> PolicyStore {
        PolicyStore {
            file: JsonFile::at(place, FILE_NAME),
            lock: FileLock::at(place, &format!("{FILE_NAME}.lock")),
        }
    }

    /// The policies and their compiled form; none when the file does not exist. Blocking.
    pub fn current(&self) -> Result<(Policies, Compiled), RetentionError> {
        let policies = self.file.read()?;
        let compiled = compile(&policies)
            .map_err(|e| RetentionError::Stored(format!("{}: {e}", self.file.path().display())))?;
        Ok((policies, compiled))
    }

    /// Replaces the policies (already validated by the caller). Blocking.
    pub fn replace(&self, policies: &Policies) -> Result<(), RetentionError> {
        self.file.modify(
            &self.lock,
            |p: &mut Policies| {
                *p = policies.clone();
                Ok::<(), RetentionError>(())
            },
            |_| Ok(()),
        )
    }
}
