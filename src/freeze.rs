//! The write freeze that makes garbage collection safe while the registry serves: while it
//! holds, `GET /token` grants no `push` or `delete`, and API writes that touch the registry
//! answer 409 `maintenance`. It also remembers how long write-capable registry tokens already
//! handed out stay valid, and counts the API writes under way, so a job knows how long to wait
//! before it may mark and sweep: a tag delete that passed its check just before the freeze may
//! still be talking to the registry.
//!
//! In cluster mode the freeze is the database's `maintenance` row, shared by every replica:
//! a background poll ([`WriteFreeze::observe`], see `gc::cluster`) copies it here, and a
//! replica that has not read it for [`CLUSTER_STALE_AFTER`] counts as frozen (it cannot tell
//! that a job elsewhere has not begun). A push or delete token is admitted by
//! [`WriteFreeze::admit_write_token`], which records its expiry in the same transaction that
//! reads the row `FOR SHARE`: the job's freeze (an UPDATE of that row) and any write token are
//! strictly ordered, so the job knows every write token it must wait out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::store::{Database, DatabaseError};
use crate::sync::lock;

/// A replica that has not read the cluster's maintenance row for this long refuses writes.
pub const CLUSTER_STALE_AFTER: Duration = Duration::from_secs(2);
/// A runner that has not read the maintenance row for this long stops deleting.
pub const FREEZE_LOST_AFTER: Duration = Duration::from_secs(5);

/// registry:2 accepts a token this long past its `exp` (docs/registry-facts.md, "Token auth").
pub const REGISTRY_LEEWAY_SECS: i64 = 60;

#[derive(Default)]
struct State {
    frozen: bool,
    /// The latest `exp` of any token issued with `push` or `delete`.
    writes_valid_until: Option<DateTime<Utc>>,
    /// API writes to the registry under way (none can begin while frozen).
    writes_in_flight: usize,
    /// Cluster mode: the maintenance row as last read, and when.
    cluster: Option<ClusterView>,
}

#[derive(Clone)]
struct ClusterView {
    /// The job holding the freeze, if any.
    frozen_by_job: Option<String>,
    read_at: Instant,
}

impl State {
    fn refuses_writes(&self) -> bool {
        self.frozen
            || self.cluster.as_ref().is_some_and(|c| {
                c.frozen_by_job.is_some() || c.read_at.elapsed() >= CLUSTER_STALE_AFTER
            })
    }
}

/// One API write to the registry under way; ends (and stops holding a job back) on drop.
pub struct WriteInFlight<'a> {
    freeze: &'a WriteFreeze,
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.freeze.state);
        s.writes_in_flight = s.writes_in_flight.saturating_sub(1);
    }
}

#[derive(Default)]
pub struct WriteFreeze {
    state: Mutex<State>,
    /// Cluster mode: where the shared maintenance row and the replicas' token expiries are.
    database: Option<Arc<Database>>,
}

impl WriteFreeze {
    /// Cluster mode: frozen until the maintenance row has been read (see [`Self::observe`]).
    pub fn clustered(database: Arc<Database>) -> WriteFreeze {
        WriteFreeze {
            state: Mutex::new(State {
                cluster: Some(ClusterView {
                    frozen_by_job: None,
                    read_at: Instant::now() - CLUSTER_STALE_AFTER,
                }),
                ..State::default()
            }),
            database: Some(database),
        }
    }

    pub fn database(&self) -> Option<&Arc<Database>> {
        self.database.as_ref()
    }

    /// Whether push, delete and API writes are refused now: this process's job holds the
    /// freeze, or (cluster mode) any replica's does, or the shared state is not known.
    pub fn is_frozen(&self) -> bool {
        lock(&self.state).refuses_writes()
    }

    /// Cluster mode: the maintenance row as just read (`job`: the job freezing, if any).
    pub fn observe(&self, job: Option<String>) {
        let mut s = lock(&self.state);
        if s.cluster.is_some() {
            s.cluster = Some(ClusterView {
                frozen_by_job: job,
                read_at: Instant::now(),
            });
        }
    }

    /// Cluster mode: writes are refused because of a job this process does not run (or a
    /// maintenance row it cannot read). registry-admin then signs itself no push or delete
    /// token either, so its own API writes that began before the freeze cannot outlast it.
    pub fn frozen_elsewhere(&self) -> bool {
        let s = lock(&self.state);
        !s.frozen && s.refuses_writes()
    }

    /// Whether `job` may go on deleting: files mode, always; cluster mode, while the
    /// maintenance row, read within [`FREEZE_LOST_AFTER`], still names it. The other replicas
    /// take a runner for dead only after `gc::cluster::DEAD_AFTER`, well after this says no.
    pub fn still_holds(&self, job: &str) -> bool {
        let s = lock(&self.state);
        s.cluster.as_ref().is_none_or(|c| {
            c.read_at.elapsed() < FREEZE_LOST_AFTER && c.frozen_by_job.as_deref() == Some(job)
        })
    }

    /// The job that freezes the cluster, as last read (cluster mode).
    pub fn cluster_job(&self) -> Option<String> {
        lock(&self.state)
            .cluster
            .as_ref()
            .and_then(|c| c.frozen_by_job.clone())
    }

    /// Cluster mode, on the token path for push/delete only: records that this replica issues
    /// a write token valid until `expires_at`, unless the cluster is frozen — then `false`, and
    /// the token must not carry push or delete. Files mode: the local freeze decides and the
    /// token is noted. Blocking (one transaction in cluster mode).
    pub fn admit_write_token(&self, expires_at: DateTime<Utc>) -> Result<bool, DatabaseError> {
        let Some(db) = &self.database else {
            if self.is_frozen() {
                return Ok(false);
            }
            self.note_write_token(expires_at);
            return Ok(true);
        };
        // One statement, so one round trip and one transaction: the row lock of `FOR SHARE`
        // is held until the expiry is committed, and a freeze (an UPDATE of the row) waits for
        // it — or, committed first, is what this statement reads.
        let row = db.connection()?.query_one(
            "WITH m AS (SELECT job_id FROM maintenance WHERE id = 1 FOR SHARE),
             noted AS (
                 INSERT INTO replicas (id, heartbeat_at, write_tokens_until)
                 SELECT $1, now(), to_timestamp($2::float8 / 1000)
                 WHERE (SELECT job_id FROM m) IS NULL
                 ON CONFLICT (id) DO UPDATE SET write_tokens_until =
                     GREATEST(replicas.write_tokens_until, excluded.write_tokens_until)
                 RETURNING 1)
             SELECT (SELECT job_id FROM m), EXISTS (SELECT 1 FROM noted)",
            &[&db.replica_id(), &(expires_at.timestamp_millis() as f64)],
        )?;
        let (job, noted): (Option<String>, bool) = (row.get(0), row.get(1));
        if job.is_some() || !noted {
            self.observe(job);
            return Ok(false);
        }
        self.note_write_token(expires_at);
        Ok(true)
    }

    /// Starts an API write to the registry, or `None` while frozen. Checked and counted under
    /// one lock, so a write either counts before a freeze starts or is refused after it.
    pub fn begin_write(&self) -> Option<WriteInFlight<'_>> {
        let mut s = lock(&self.state);
        if s.refuses_writes() {
            return None;
        }
        s.writes_in_flight += 1;
        Some(WriteInFlight { freeze: self })
    }

    pub fn writes_in_flight(&self) -> usize {
        lock(&self.state).writes_in_flight
    }

    /// Called by the token server for every token that grants `push` or `delete`.
    pub fn note_write_token(&self, expires_at: DateTime<Utc>) {
        let mut s = lock(&self.state);
        if s.writes_valid_until.is_none_or(|t| t < expires_at) {
            s.writes_valid_until = Some(expires_at);
        }
    }

    /// Starts the freeze; returns until when writes already granted may still reach the
    /// registry (the latest write-token expiry plus the registry's leeway), if any is left.
    pub fn freeze(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut s = lock(&self.state);
        s.frozen = true;
        s.writes_valid_until
            .map(|t| t + chrono::Duration::seconds(REGISTRY_LEEWAY_SECS))
            .filter(|t| *t > now)
    }

    pub fn thaw(&self) {
        lock(&self.state).frozen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_waits_for_the_latest_write_token_plus_leeway() {
        let f = WriteFreeze::default();
        let now = Utc::now();
        assert_eq!(f.freeze(now), None, "no write token was ever issued");
        f.thaw();
        f.note_write_token(now + chrono::Duration::seconds(300));
        f.note_write_token(now + chrono::Duration::seconds(100));
        let until = f.freeze(now).expect("tokens outstanding");
        assert_eq!((until - now).num_seconds(), 360);
        assert!(f.is_frozen());
        assert_eq!(f.freeze(now + chrono::Duration::seconds(400)), None);
        f.thaw();
        assert!(!f.is_frozen());
    }

    #[test]
    fn a_cluster_freeze_or_an_unread_maintenance_row_refuses_writes() {
        let f = WriteFreeze {
            state: Mutex::new(State {
                cluster: Some(ClusterView {
                    frozen_by_job: None,
                    read_at: Instant::now() - CLUSTER_STALE_AFTER,
                }),
                ..State::default()
            }),
            database: None,
        };
        assert!(f.is_frozen() && f.frozen_elsewhere(), "never read: frozen");
        f.observe(None);
        assert!(!f.is_frozen() && f.begin_write().is_some());
        f.observe(Some("job1".into()));
        assert!(f.is_frozen() && f.begin_write().is_none());
        assert!(f.frozen_elsewhere(), "another replica's job");
        f.freeze(Utc::now());
        assert!(!f.frozen_elsewhere(), "this process runs the job");
        assert_eq!(f.cluster_job().as_deref(), Some("job1"));
    }

    #[test]
    fn files_mode_admits_write_tokens_until_frozen() {
        let f = WriteFreeze::default();
        let exp = Utc::now() + chrono::Duration::seconds(30);
        assert!(f.admit_write_token(exp).unwrap());
        assert!(!f.frozen_elsewhere());
        assert!(
            f.freeze(Utc::now()).is_some(),
            "the admitted token was noted"
        );
        assert!(!f.admit_write_token(exp).unwrap());
    }

    #[test]
    fn a_write_counts_until_it_ends_and_none_starts_while_frozen() {
        let f = WriteFreeze::default();
        let w = f.begin_write().expect("not frozen");
        assert_eq!(f.writes_in_flight(), 1);
        f.freeze(Utc::now());
        assert!(f.begin_write().is_none(), "refused while frozen");
        assert_eq!(f.writes_in_flight(), 1, "the earlier write still counts");
        drop(w);
        assert_eq!(f.writes_in_flight(), 0);
        f.thaw();
        assert!(f.begin_write().is_some());
    }
}
