//! Garbage collection across replicas (cluster mode, `DATABASE_URL`).
//!
//! - **One freeze**: the `maintenance` row names the job that freezes writes. Every replica
//!   reads it every [`POLL_EVERY`] into its [`WriteFreeze`] (one that cannot read it for
//!   `freeze::CLUSTER_STALE_AFTER` refuses writes), and issues a push/delete token only after
//!   recording its expiry in `replicas.write_tokens_until` under a `FOR SHARE` read of that row
//!   (`WriteFreeze::admit_write_token`). So once [`freeze`] has committed, no replica issues a
//!   write token, and [`write_tokens_until`] is final: the job waits for it plus registry:2's
//!   leeway.
//! - **API writes begun elsewhere** (a tag delete on another replica that passed its check just
//!   before that replica saw the freeze) are not counted across replicas; they are bounded
//!   instead ([`OTHER_REPLICAS_WRITES`]): that replica sees the freeze within
//!   `CLUSTER_STALE_AFTER` (or refuses writes by itself), from then on signs itself no write
//!   token (`token::upstream`), and the write tokens it signed before expire within
//!   `SELF_TOKEN_TTL`, after which registry:2 honours them for its leeway at most.
//! - **One job**: gc.json is a row under an advisory lock, so `insert_if_idle` is cluster-wide;
//!   the job names its runner, and the runner writes its progress every [`PROGRESS_EVERY`].
//! - **A dead runner**: every replica heartbeats every [`HEARTBEAT_EVERY`]; every replica
//!   watches, and an unfinished job whose runner's heartbeat is older than [`DEAD_AFTER`] is
//!   failed ("interrupted", with its `gc.finish`), which ends its freeze — about 20 s after
//!   the kill. A restarted replica fails its own jobs that it no longer runs, never others'.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

use super::Jobs;
use super::job::Job;
use crate::audit::entry::format_time;
use crate::audit::writer::AuditLog;
use crate::freeze::{CLUSTER_STALE_AFTER, REGISTRY_LEEWAY_SECS, WriteFreeze};
use crate::store::{Database, DatabaseError};
use crate::token::upstream::SELF_TOKEN_TTL;

/// How often each replica reads the maintenance row.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How often each replica says it is alive, and looks for jobs whose runner is not.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A runner silent this long is taken for dead (seven missed heartbeats: a loaded machine or a
/// slow database must not fail a live job).
pub const DEAD_AFTER: Duration = Duration::from_secs(15);
/// How often a running job's progress (state, counts, log) is written for the other replicas.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long after the freeze the API writes other replicas began before they saw it may
/// still reach the registry (see the module header).
pub const OTHER_REPLICAS_WRITES: Duration = Duration::from_secs(
    CLUSTER_STALE_AFTER.as_secs() + SELF_TOKEN_TTL.as_secs() + REGISTRY_LEEWAY_SECS as u64,
);

/// Freezes the cluster for `job`. Blocking.
pub fn freeze(db: &Database, job: &str) -> Result<(), DatabaseError> {
    db.connection()?.execute(
        "UPDATE maintenance SET frozen_by = $1, job_id = $2, since = now() WHERE id = 1",
        &[&db.replica_id(), &job],
    )?;
    Ok(())
}

/// Ends `job`'s freeze (a freeze by another job is left alone). Blocking.
pub fn thaw(db: &Database, job: &str) -> Result<(), DatabaseError> {
    db.connection()?.execute(
        "UPDATE maintenance SET frozen_by = NULL, job_id = NULL, since = NULL
         WHERE id = 1 AND job_id = $1",
        &[&job],
    )?;
    Ok(())
}

/// The job freezing the cluster, if any. Blocking.
pub fn frozen_by(db: &Database) -> Result<Option<String>, DatabaseError> {
    Ok(db
        .connection()?
        .query_one("SELECT job_id FROM maintenance WHERE id = 1", &[])?
        .get(0))
}

/// The latest expiry of the write tokens any replica issued. Blocking.
pub fn write_tokens_until(db: &Database) -> Result<Option<DateTime<Utc>>, DatabaseError> {
    let millis: Option<i64> = db
        .connection()?
        .query_one(
            "SELECT (extract(epoch FROM max(write_tokens_until)) * 1000)::bigint FROM replicas",
            &[],
        )?
        .get(0);
    Ok(millis.and_then(|m| Utc.timestamp_millis_opt(m).single()))
}

/// Until when a job that froze the cluster at `frozen_at` must wait for other replicas: their
/// write tokens plus the leeway, and the bound on their API writes. Blocking.
pub fn others_done_by(
    db: &Database,
    frozen_at: DateTime<Utc>,
) -> Result<DateTime<Utc>, DatabaseError> {
    let api_writes =
        frozen_at + chrono::Duration::from_std(OTHER_REPLICAS_WRITES).unwrap_or_default();
    let tokens =
        write_tokens_until(db)?.map(|t| t + chrono::Duration::seconds(REGISTRY_LEEWAY_SECS));
    Ok(tokens.map_or(api_writes, |t| t.max(api_writes)))
}

const HEARTBEAT_SQL: &str = "INSERT INTO replicas (id, heartbeat_at) VALUES ($1, now())
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()";

fn heartbeat(db: &Database) -> Result<(), DatabaseError> {
    db.connection()?
        .execute(HEARTBEAT_SQL, &[&db.replica_id()])?;
    Ok(())
}

/// Heartbeats every [`HEARTBEAT_EVERY`] on a connection of its own, outside the pool, and on
/// a thread of its own: a busy pool, slow lock waits or the watch's audit writes must never
/// delay it, or the other replicas would take a replica that runs a job for dead and end its
/// freeze while it sweeps. Runs until the process ends.
fn spawn_heartbeat(db: Arc<Database>) {
    let spawned = std::thread::Builder::new()
        .name("replica-heartbeat".into())
        .spawn(move || {
            let mut conn: Option<postgres::Client> = None;
            loop {
                if conn.is_none() {
                    conn = db.dedicated_connection().ok();
                }
                if let Some(c) = conn.as_mut()
                    && let Err(e) = c.execute(HEARTBEAT_SQL, &[&db.replica_id()])
                {
                    log::warn!("cluster mode: heartbeat: {}", DatabaseError::from(e));
                    conn = None;
                }
                std::thread::sleep(HEARTBEAT_EVERY);
            }
        });
    if let Err(e) = spawned {
        log::error!("cluster mode: cannot start the heartbeat: {e}");
    }
}

/// The replicas whose heartbeat is recent, by the database's clock (replicas' clocks may
/// differ). Blocking.
fn live_replicas(db: &Database) -> Result<Vec<String>, DatabaseError> {
    let secs = DEAD_AFTER.as_secs_f64();
    Ok(db
        .connection()?
        .query(
            "SELECT id FROM replicas WHERE heartbeat_at > now() - make_interval(secs => $1)",
            &[&secs],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Whether `job` (unfinished) has no one running it: its runner is this replica but this
/// process does not run it (a restart under the same `REPLICA_ID`), or its runner's heartbeat
/// has stopped. A job without a runner came from files mode (import-files): nobody runs it.
fn abandoned(job: &Job, me: &str, running_here: Option<&str>, live: &[String]) -> bool {
    match job.runner.as_deref() {
        None => true,
        Some(r) if r == me => running_here != Some(job.id.as_str()),
        Some(r) => !live.iter().any(|l| l == r),
    }
}

/// One look: fails the jobs nobody runs (auditing each), and ends a freeze whose job is over.
/// Blocking; `audit` runs the `gc.finish` entries.
fn watch_once(
    db: &Database,
    jobs: &Jobs,
    record: &dyn Fn(&Job),
) -> Result<(), Box<dyn std::error::Error>> {
    let unfinished = jobs.list()?.into_iter().any(|j| !j.state.finished());
    if unfinished {
        let live = live_replicas(db)?;
        let me = db.replica_id().to_string();
        let marked = jobs
            .store
            .mark_interrupted_where(&format_time(Utc::now()), |j| {
                let here = jobs.running_id();
                abandoned(j, &me, here.as_deref(), &live)
            })?;
        for j in marked {
            log::warn!(
                "gc: job {} of replica {:?} was interrupted (its runner stopped); marked failed",
                j.id,
                j.runner.as_deref().unwrap_or("?")
            );
            record(&j);
        }
    }
    if let Some(job) = frozen_by(db)? {
        // Read under the jobs' lock: the cache may not have the job that froze a moment ago.
        let still = jobs.store.unfinished_locked()?;
        if still.as_ref().is_none_or(|j| j.id != job) {
            log::warn!("gc: the cluster was frozen by job {job}, which is over; ending it");
            thaw(db, &job)?;
        }
    }
    Ok(())
}

/// Cluster mode: reads the maintenance row into `freeze` every [`POLL_EVERY`]; heartbeats and
/// watches for abandoned jobs every [`HEARTBEAT_EVERY`]. Runs until the process ends.
pub fn spawn_watch(
    db: Arc<Database>,
    freeze: Arc<WriteFreeze>,
    jobs: Arc<Jobs>,
    audit: Arc<AuditLog>,
) {
    // The first read now, so a fresh replica grants pushes at once when nothing is frozen.
    match frozen_by(&db) {
        Ok(job) => freeze.observe(job),
        Err(e) => log::error!("cluster mode: cannot read the maintenance state: {e}"),
    }
    if let Err(e) = heartbeat(&db) {
        log::error!("cluster mode: heartbeat: {e}");
    }
    spawn_heartbeat(Arc::clone(&db));
    let spawned = std::thread::Builder::new()
        .name("gc-cluster-watch".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    log::error!("cluster mode: cannot start the GC watch: {e}");
                    return;
                }
            };
            let record = |j: &Job| {
                if let Err(e) = runtime.block_on(audit.record(super::finish::finish_entry(j))) {
                    log::error!("gc: audit of interrupted job {}: {e}", j.id);
                }
            };
            let mut last_beat: Option<Instant> = None;
            let mut failing = false;
            loop {
                let mut result: Result<(), String> = frozen_by(&db)
                    .map(|job| freeze.observe(job))
                    .map_err(|e| e.to_string());
                if result.is_ok() && last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
                    last_beat = Some(Instant::now());
                    result = watch_once(&db, &jobs, &record).map_err(|e| e.to_string());
                }
                match result {
                    Ok(()) if failing => {
                        log::info!("cluster mode: the GC watch works again");
                        failing = false;
                    }
                    Ok(()) => {}
                    Err(e) if !failing => {
                        log::error!("cluster mode: GC watch: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
                std::thread::sleep(POLL_EVERY);
            }
        });
    if let Err(e) = spawned {
        log::error!("cluster mode: cannot start the GC watch: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::job::State;

    fn job(id: &str, runner: Option<&str>) -> Job {
        let mut j = Job::new(id.into(), false, false, "admin", "t");
        j.state = State::Freezing;
        j.runner = runner.map(str::to_string);
        j
    }

    #[test]
    fn a_job_is_abandoned_when_its_runner_is_silent_or_restarted() {
        let live = vec!["a".to_string(), "b".to_string()];
        assert!(
            !abandoned(&job("1", Some("b")), "a", None, &live),
            "b is alive"
        );
        assert!(
            abandoned(&job("1", Some("c")), "a", None, &live),
            "c is silent"
        );
        assert!(
            !abandoned(&job("1", Some("a")), "a", Some("1"), &live),
            "this process runs it"
        );
        assert!(
            abandoned(&job("1", Some("a")), "a", None, &live),
            "ours, but not running here: a restart"
        );
        assert!(abandoned(&job("1", None), "a", None, &live), "nobody's");
    }

    #[test]
    fn other_replicas_writes_are_bounded_by_their_token_life_and_leeway() {
        assert_eq!(OTHER_REPLICAS_WRITES, Duration::from_secs(122));
    }
}
