//! Each replica's copy of the documents (`rows`): read without a round trip, refreshed from
//! the database when another replica announces a write and every 200 ms in any case. A copy
//! not refreshed for `STALE_AFTER` is not used: reads fail with 503 rather than serve
//! accounts a replica can no longer check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::error::DatabaseError;
use crate::sync::lock;

/// A cache not refreshed for this long is not used.
pub const STALE_AFTER: Duration = Duration::from_secs(3);

/// One version of a document as this replica last read it.
#[derive(Clone)]
pub struct CachedDocument {
    pub version: i64,
    pub body: Arc<Vec<u8>>,
}

#[derive(Default)]
pub struct DocumentCache {
    documents: RwLock<HashMap<String, CachedDocument>>,
    refreshed: Mutex<Option<Instant>>,
    /// Held by the one on-demand refresh under way (`rows::refresh`).
    pub(crate) refreshing: Mutex<()>,
}

impl DocumentCache {
    /// Re-reads every document whose version moved. A handful of rows: the whole
    /// (name, version) list is read each time, so a slow writer's commit is never skipped.
    /// Blocking.
    pub fn refresh(&self, conn: &mut impl postgres::GenericClient) -> Result<(), DatabaseError> {
        let versions = conn.query("SELECT name, version FROM documents", &[])?;
        let stale: Vec<String> = {
            let known = self.documents.read().map_err(poisoned)?;
            versions
                .iter()
                .filter_map(|row| {
                    let (name, version): (String, i64) = (row.get(0), row.get(1));
                    (known.get(&name).map(|d| d.version) != Some(version)).then_some(name)
                })
                .collect()
        };
        if !stale.is_empty() {
            let rows = conn.query(
                "SELECT name, version, body FROM documents WHERE name = ANY($1)",
                &[&stale],
            )?;
            for row in rows {
                self.offer(row.get(0), row.get(1), row.get(2));
            }
        }
        *lock(&self.refreshed) = Some(Instant::now());
        Ok(())
    }

    /// Keeps `body` unless a newer version is already known (a local commit and the
    /// background refresh can race).
    pub(crate) fn offer(&self, name: String, version: i64, body: Vec<u8>) {
        if let Ok(mut docs) = self.documents.write() {
            let newer = docs.get(&name).is_none_or(|d| d.version < version);
            if newer {
                docs.insert(
                    name,
                    CachedDocument {
                        version,
                        body: Arc::new(body),
                    },
                );
            }
        }
    }

    /// The document as last seen; `None` when no replica ever wrote it.
    pub fn get(&self, name: &str) -> Result<Option<CachedDocument>, DatabaseError> {
        let fresh = lock(&self.refreshed).is_some_and(|t| t.elapsed() < STALE_AFTER);
        if !fresh {
            return Err(DatabaseError(
                "documents have not been refreshed from the database recently".into(),
            ));
        }
        Ok(self.documents.read().map_err(poisoned)?.get(name).cloned())
    }
}

fn poisoned<T>(_: T) -> DatabaseError {
    DatabaseError("document cache lock poisoned".into())
}
