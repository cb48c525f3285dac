//! Documents as rows: htpasswd, users.json, grants.json, robots.json, retention.json and gc.json
//! each live in one row of `documents`, with the same bytes as the file.
//!
//! - A change is one transaction under a PostgreSQL advisory lock named like the file lock it
//!   replaces ([`Transaction`]): the same critical sections as files mode, across replicas.
//! - A read outside a change comes from this replica's `cache::DocumentCache`. Every write sends a
//!   notification on [`CHANNEL`] at commit; each replica listens and re-reads at once, and also
//!   every [`REFRESH_EVERY`] in case a notification is lost (a change on one replica is in force
//!   on all within a second, usually within milliseconds). When the refresh has not worked for
//!   `cache::STALE_AFTER`, reads fail with 503 rather than serve accounts a replica can no longer
//!   check.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::database::{Connection, Database, DatabaseError};

/// How often each replica looks for documents changed by others without being told.
pub const REFRESH_EVERY: Duration = Duration::from_millis(200);
/// The notification channel a document write is announced on.
pub const CHANNEL: &str = "registry_admin_documents";
/// Re-reads the documents other replicas changed, now. Blocking.
/// Concurrent callers share one refresh (a flood of failed logins, each asking for one, takes
/// one pooled connection at a time, never the pool).
pub fn refresh(db: &Database) -> Result<(), DatabaseError> {
    let _only = match db.documents.refreshing.try_lock() {
        Ok(guard) => guard,
        Err(_) => {
            // Another caller is refreshing: what it reads is at least as new as ours would be.
            drop(crate::sync::lock(&db.documents.refreshing));
            return Ok(());
        }
    };
    db.documents.refresh(&mut *db.connection()?)
}

/// Refreshes `db`'s documents whenever another replica announces a write, and every
/// [`REFRESH_EVERY`] in any case, until the process ends.
pub fn spawn_refresh(db: Arc<Database>) {
    let spawned = std::thread::Builder::new()
        .name("documents-refresh".into())
        .spawn(move || {
            let mut listener: Option<postgres::Client> = None;
            let mut failing = false;
            loop {
                wait_for_news(&db, &mut listener);
                // On the listening connection when there is one: the pool is the requests'.
                let refreshed = match listener.as_mut() {
                    Some(conn) => db.documents.refresh(conn).inspect_err(|_| listener = None),
                    None => refresh(&db),
                };
                match refreshed {
                    Ok(()) if failing => {
                        log::info!("cluster mode: the database answers again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        log::error!("cluster mode: cannot refresh documents: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cluster mode: cannot start the document refresh: {e}");
    }
}

/// Waits up to [`REFRESH_EVERY`] for a write notification (then takes every other one already
/// queued, so a burst costs one refresh). Without a listening connection, (re)opens one; when
/// that fails, just waits.
fn wait_for_news(db: &Database, listener: &mut Option<postgres::Client>) {
    use postgres::fallible_iterator::FallibleIterator;
    if listener.is_none() {
        match db.dedicated_connection() {
            Ok(mut conn) => match conn.batch_execute(&format!("LISTEN {CHANNEL}")) {
                Ok(()) => *listener = Some(conn),
                Err(e) => log::debug!("cluster mode: cannot listen: {e}"),
            },
            Err(e) => log::debug!("cluster mode: cannot listen: {e}"),
        }
    }
    let Some(conn) = listener.as_mut() else {
        std::thread::sleep(REFRESH_EVERY);
        return;
    };
    let broken = {
        let mut notifications = conn.notifications();
        let waited = notifications.timeout_iter(REFRESH_EVERY).next();
        match waited {
            Ok(Some(_)) => {
                // Drain what is already there without waiting.
                while let Ok(Some(_)) = notifications.iter().next() {}
                false
            }
            Ok(None) => false,
            Err(_) => true,
        }
    };
    if broken {
        // The connection broke (a database restart): open a new one next time.
        *listener = None;
        std::thread::sleep(REFRESH_EVERY);
    }
}

/// The advisory-lock key of a lock name: the first 8 bytes of its SHA-256.
fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// A change in progress: one connection in a transaction holding the advisory lock `name`.
/// Dropped without [`Transaction::commit`], it is rolled back and nothing it wrote remains.
pub struct Transaction {
    db: Arc<Database>,
    conn: Option<Connection>,
    written: Vec<(String, i64, Vec<u8>)>,
}

impl Transaction {
    /// Blocks until the lock is ours (bounded by the statement timeout). Blocking.
    pub fn begin(db: &Arc<Database>, lock_name: &str) -> Result<Transaction, DatabaseError> {
        let mut conn = db.connection()?;
        conn.batch_execute("BEGIN")?;
        let mut tx = Transaction {
            db: Arc::clone(db),
            conn: None,
            written: Vec::new(),
        };
        let locked = conn.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(lock_name)]);
        tx.conn = Some(conn);
        locked?;
        Ok(tx)
    }

    fn conn(&mut self) -> Result<&mut Connection, DatabaseError> {
        self.conn
            .as_mut()
            .ok_or_else(|| DatabaseError("transaction already ended".into()))
    }

    /// The document as committed (or as this transaction wrote it).
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, DatabaseError> {
        let row = self
            .conn()?
            .query_opt("SELECT body FROM documents WHERE name = $1", &[&name])?;
        Ok(row.map(|r| r.get(0)))
    }

    pub fn write(&mut self, name: &str, body: &[u8]) -> Result<(), DatabaseError> {
        let row = self.conn()?.query_one(
            "INSERT INTO documents (name, body, version) VALUES ($1, $2, nextval('document_versions'))
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, version = excluded.version
             RETURNING version",
            &[&name, &body],
        )?;
        self.written
            .push((name.to_string(), row.get(0), body.to_vec()));
        // Delivered to the other replicas when (and only if) the transaction commits.
        self.conn()?
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &name])?;
        Ok(())
    }

    /// Makes the writes durable and visible, this replica's cache first.
    pub fn commit(mut self) -> Result<(), DatabaseError> {
        let mut conn = self
            .conn
            .take()
            .ok_or_else(|| DatabaseError("transaction already ended".into()))?;
        conn.batch_execute("COMMIT")?;
        for (name, version, body) in std::mem::take(&mut self.written) {
            self.db.documents.offer(name, version, body);
        }
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take()
            && let Err(e) = conn.batch_execute("ROLLBACK")
        {
            log::warn!("cluster mode: rollback failed: {}", DatabaseError::from(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_differ_per_name_and_are_stable() {
        assert_eq!(lock_key(".htpasswd.lock"), lock_key(".htpasswd.lock"));
        assert_ne!(lock_key(".htpasswd.lock"), lock_key(".gc.lock"));
    }
}
