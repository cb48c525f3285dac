//! The one writer of the audit log in this process. A dedicated thread owns the chain: callers
//! send entries and wait until their line is stored. Entries that arrive together are stored in
//! one group commit (one write and one fsync in files, one transaction in the database), so
//! durability does not cost a flush per request.
//!
//! Where the lines go is the thread's [`Sink`]: the audit files (`store_files`, shared with the
//! host-side commands under a file lock) or, in cluster mode, the `audit_log` table
//! (`store_rows`, shared with the other replicas under an advisory lock). Either way `prev` is
//! the hash of the real last entry, so the chain never forks.
//!
//! The writer also keeps the log bounded and fail-closed: each entry is cut to 4 KiB
//! (`bound`), identical `token.issue` and `image.pull` successes within a minute are coalesced
//! (`coalesce`), and `reserve` lets a state-changing request find out, before it changes
//! anything, that its entry can be stored (`space` for files; the database answering for rows).

use crate::sync::lock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::coalesce::Coalescer;
use super::entry::Entry;
use super::files::AuditFiles;
pub use super::sink::{AuditError, TORN_LINE_ACTION};
use super::sink::{Sink, io_err};
use super::source::AuditSource;
use super::space;
use super::store_files::FileSink;
use super::store_rows::RowSink;
use crate::store::{Database, DatabaseError};

/// The host-side commands append to and lock the files through these.
pub use super::store_files::{AuditLock, append, lock_files, lock_path, reserve};

/// Most entries one group commit takes.
const MAX_BATCH: usize = 4096;
/// Longest wait for a reservation before the request is refused.
const RESERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reservation the writer made stands for further requests without asking it again,
/// and for how many (each of whose entries takes at most 4 KiB): together with the bytes
/// written since, well inside `space::RESERVE`. Asking the writer each time would queue every
/// state-changing request behind the fsync of other requests' entries, and release them in
/// bursts.
const FRESH_FOR: Duration = Duration::from_secs(1);
const FRESH_ADMITS: u32 = 16;
/// How often the writer wakes to write coalesced repeats whose minute has passed.
const FLUSH_TICK: Duration = Duration::from_secs(5);

/// Why a batch or a reservation failed, as the writer thread tells every waiter (a copy each).
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    database: bool,
}

impl Failure {
    fn of(e: &AuditError) -> Failure {
        Failure {
            reason: e.reason(),
            database: matches!(e, AuditError::Database(_)),
        }
    }
}

impl From<Failure> for AuditError {
    fn from(f: Failure) -> AuditError {
        if f.database {
            AuditError::Database(DatabaseError(f.reason))
        } else {
            AuditError::Write(f.reason)
        }
    }
}

type Done = oneshot::Sender<Result<(), Failure>>;

enum Job {
    /// Write this entry; answered once it is on disk (or counted, when it is a repeat).
    Entry { entry: Box<Entry>, done: Done },
    /// Make sure entries will have room; answered once they will.
    Reserve { done: Done },
}

/// What the writer counts, shared with the `AuditLog` handle.
#[derive(Default)]
struct Counters {
    written: AtomicU64,
    coalesced: AtomicU64,
    failures: AtomicU64,
    /// Bytes appended since the last reservation that worked.
    since_reserve: AtomicU64,
}

/// The last reservation that worked, while no write or reservation has failed since.
struct Fresh {
    at: Instant,
    /// Requests let through on it without asking the writer.
    admitted: u32,
}

pub struct AuditLog {
    source: AuditSource,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    last_error: Arc<Mutex<Option<String>>>,
    fresh: Arc<Mutex<Option<Fresh>>>,
}

struct Writer<S: Sink> {
    sink: S,
    coalescer: Coalescer,
    counters: Arc<Counters>,
    last_error: Arc<Mutex<Option<String>>>,
    fresh: Arc<Mutex<Option<Fresh>>>,
}

impl<S: Sink> Writer<S> {
    fn new(sink: S) -> Writer<S> {
        Writer {
            sink,
            coalescer: Coalescer::default(),
            counters: Arc::default(),
            last_error: Arc::new(Mutex::new(None)),
            fresh: Arc::new(Mutex::new(None)),
        }
    }

    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        let stored = self.sink.write_batch(entries)?;
        self.counters
            .written
            .fetch_add(stored.entries, Ordering::Relaxed);
        self.counters
            .since_reserve
            .fetch_add(stored.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// The next job, waking for coalesced repeats that fall due meanwhile. `None` once every
    /// sender is gone.
    fn next_job(&self, rx: &mpsc::Receiver<Job>) -> Option<Option<Job>> {
        if !self.coalescer.has_pending() {
            return rx.recv().ok().map(Some);
        }
        match rx.recv_timeout(FLUSH_TICK) {
            Ok(j) => Some(Some(j)),
            Err(mpsc::RecvTimeoutError::Timeout) => Some(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Some(first) = self.next_job(&rx) {
            let mut jobs: Vec<Job> = first.into_iter().collect();
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            let mut entries = self.coalescer.flush(now);
            let mut waiting = Vec::new();
            let mut reserving = Vec::new();
            for job in jobs {
                match job {
                    Job::Entry { entry, done } => match self.coalescer.admit(*entry, now) {
                        Some(e) => {
                            entries.push(e);
                            waiting.push(done);
                        }
                        // A repeat, counted for a later entry: nothing to wait for.
                        None => {
                            let _ = done.send(Ok(()));
                        }
                    },
                    Job::Reserve { done } => reserving.push(done),
                }
            }
            self.counters
                .coalesced
                .store(self.coalescer.coalesced(), Ordering::Relaxed);
            self.settle(&entries, waiting, reserving);
        }
        let rest = self.coalescer.drain();
        self.settle(&rest, Vec::new(), Vec::new());
    }

    /// Writes `entries`, then reserves room if asked, answers every waiter and records how the
    /// log stands for `/health/ready`.
    fn settle(&mut self, entries: &[Entry], waiting: Vec<Done>, reserving: Vec<Done>) {
        if entries.is_empty() && reserving.is_empty() {
            return;
        }
        let fail = |e: AuditError| {
            log::error!("audit log write failed: {e}");
            Failure::of(&e)
        };
        let written = if entries.is_empty() {
            Ok(())
        } else {
            self.write_batch(entries).map_err(fail)
        };
        if written.is_err() {
            self.counters
                .failures
                .fetch_add(entries.len() as u64, Ordering::Relaxed);
        }
        let reserved = match (&written, reserving.is_empty()) {
            (_, true) => Ok(()),
            (Err(e), false) => Err(e.clone()),
            (Ok(()), false) => self.sink.reserve().map_err(fail),
        };
        *lock(&self.last_error) = written
            .clone()
            .err()
            .or_else(|| reserved.clone().err())
            .map(|f| f.reason);
        if written.is_err() || reserved.is_err() {
            *lock(&self.fresh) = None;
        } else if !reserving.is_empty() {
            self.counters.since_reserve.store(0, Ordering::Relaxed);
            *lock(&self.fresh) = Some(Fresh {
                at: Instant::now(),
                admitted: 0,
            });
        }
        for done in waiting {
            let _ = done.send(written.clone());
        }
        for done in reserving {
            let _ = done.send(reserved.clone());
        }
    }
}

impl AuditLog {
    /// Opens the log, continues the chain from the last whole entry, records a torn last line
    /// (from a crash mid-write) as such, and starts the writer thread.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64) -> Result<AuditLog, AuditError> {
        let files = AuditFiles::new(path);
        std::fs::create_dir_all(files.dir()).map_err(io_err(&files.dir()))?;
        let mut writer = Writer::new(FileSink::new(files.clone(), max_bytes));
        // An empty batch creates the file, finds the chain's end and writes a torn-line note,
        // so a log that cannot be written stops start-up.
        writer.write_batch(&[])?;
        Self::start(writer, AuditSource::Files { files, max_bytes })
    }

    /// Cluster mode: the chain is the `audit_log` table of `db`, one for every replica. A
    /// database that does not answer stops start-up. Blocking.
    pub fn open_database(db: Arc<Database>) -> Result<AuditLog, AuditError> {
        db.check()?;
        let writer = Writer::new(RowSink::new(Arc::clone(&db)));
        Self::start(writer, AuditSource::Database(db))
    }

    fn start<S: Sink>(writer: Writer<S>, source: AuditSource) -> Result<AuditLog, AuditError> {
        let counters = Arc::clone(&writer.counters);
        let last_error = Arc::clone(&writer.last_error);
        let fresh = Arc::clone(&writer.fresh);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::Write(format!("cannot start the audit writer: {e}")))?;
        Ok(AuditLog {
            source,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            counters,
            last_error,
            fresh,
        })
    }

    /// Where the chain is: what `/audit`, `/audit/verify` and retention read.
    pub fn source(&self) -> &AuditSource {
        &self.source
    }

    /// Why the last write or reservation failed, if it did (cleared by the next that works).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Entries written since start.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Repeats counted instead of written since start (see `coalesce`).
    pub fn coalesced(&self) -> u64 {
        self.counters.coalesced.load(Ordering::Relaxed)
    }

    /// Entries that could not be written since start.
    pub fn failures(&self) -> u64 {
        self.counters.failures.load(Ordering::Relaxed)
    }

    fn send(
        &self,
        job: impl FnOnce(Done) -> Job,
    ) -> Result<oneshot::Receiver<Result<(), Failure>>, AuditError> {
        let (done, rx) = oneshot::channel();
        let guard = lock(&self.tx);
        let tx = guard.as_ref().ok_or(AuditError::Closed)?;
        tx.send(job(done)).map_err(|_| AuditError::Closed)?;
        Ok(rx)
    }

    fn submit(&self, entry: Entry) -> Result<oneshot::Receiver<Result<(), Failure>>, AuditError> {
        self.send(|done| Job::Entry {
            entry: Box::new(entry),
            done,
        })
    }

    /// Returns once entries written after it will have room on disk (see `space`), or why they
    /// would not: what a state-changing request asks before it changes anything. A reservation
    /// the writer made less than `FRESH_FOR` ago, with nothing failed since, stands for up to
    /// `FRESH_ADMITS` requests while little has been written on it.
    pub async fn reserve(&self) -> Result<(), AuditError> {
        {
            let mut fresh = lock(&self.fresh);
            let written = self.counters.since_reserve.load(Ordering::Relaxed);
            if let Some(f) = fresh.as_mut()
                && f.at.elapsed() < FRESH_FOR
                && f.admitted < FRESH_ADMITS
                && written < space::RESERVE / 2
            {
                f.admitted += 1;
                return Ok(());
            }
        }
        self.reserve_now().await
    }

    /// Asks the writer for a reservation now (what `/health/ready` checks). A writer stuck on a
    /// hung disk answers late or never: after `RESERVE_TIMEOUT` that counts as a failure, so
    /// requests are refused instead of hanging.
    pub async fn reserve_now(&self) -> Result<(), AuditError> {
        let rx = self.send(|done| Job::Reserve { done })?;
        tokio::time::timeout(RESERVE_TIMEOUT, rx)
            .await
            .map_err(|_| {
                AuditError::Write(format!(
                    "the audit log did not answer within {} s",
                    RESERVE_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|_| AuditError::Closed)?
            .map_err(AuditError::from)
    }

    /// Appends `entry` and returns once it is stored.
    pub async fn record(&self, entry: Entry) -> Result<(), AuditError> {
        let rx = self.submit(entry)?;
        rx.await
            .map_err(|_| AuditError::Closed)?
            .map_err(AuditError::from)
    }

    /// Stops taking entries, writes those already queued and waits for the writer to finish.
    pub fn close(&self) {
        lock(&self.tx).take();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::bound;
    use crate::audit::entry::{Outcome, Source};
    use crate::audit::store_files::{append, lock_path};
    use crate::audit::verify::verify;
    use crate::error::ErrorCode;
    use std::io;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn an_unwritable_log_is_a_503_that_names_the_reason_but_not_the_path() {
        let e = AuditError::Io {
            path: PathBuf::from("/secret/place/audit.log"),
            source: io::Error::other("No space left on device"),
        };
        assert_eq!(
            (e.status().as_u16(), e.code(), e.message()),
            (
                503,
                "audit_unavailable",
                "the audit log cannot be written (No space left on device); nothing was changed: retry once it can be".to_string()
            )
        );
    }

    #[test]
    fn a_database_that_does_not_take_entries_is_database_unavailable_without_the_driver_text() {
        let e = AuditError::Database(DatabaseError(
            "connection to 10.0.0.5 as role registry_admin refused".into(),
        ));
        // As it travels from the writer thread to each waiter.
        let e = AuditError::from(Failure::of(&e));
        assert_eq!(
            (e.status().as_u16(), e.code(), e.message()),
            (
                503,
                "database_unavailable",
                "the database is unavailable; retry shortly".to_string()
            )
        );
        let written = AuditError::from(Failure::of(&AuditError::Write("disk full".into())));
        assert_eq!(written.code(), "audit_unavailable");
    }

    fn entry(action: &str) -> Entry {
        Entry::new(action, "tester", Outcome::Success, Source::Api)
    }

    fn record(log: &AuditLog, action: &str) {
        log.submit(entry(action))
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
    }

    #[test]
    fn another_process_appending_between_two_entries_keeps_the_chain_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 1 << 20).unwrap();
        record(&log, "user.create");
        append(
            &path,
            1 << 20,
            &[entry("user.password"), entry("user.role")],
        )
        .unwrap();
        record(&log, "user.delete");
        let report = verify(log.source().files().unwrap()).unwrap();
        assert_eq!((report.ok, report.entries), (true, 4), "{report:?}");
    }

    #[test]
    fn a_rotation_by_another_process_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 1 << 20).unwrap();
        record(&log, "user.create");
        // A tiny limit makes the other writer rotate audit.log away under us.
        append(&path, 1, &[entry("user.password")]).unwrap();
        record(&log, "user.delete");
        record(&log, "user.enable");
        let files = log.source().files().unwrap();
        assert_eq!(files.rotated(), vec![1]);
        let current = std::fs::read_to_string(&path).unwrap();
        assert_eq!(current.lines().count(), 3, "{current}");
        let report = verify(files).unwrap();
        assert_eq!((report.ok, report.entries), (true, 4), "{report:?}");
    }

    #[test]
    fn a_torn_tail_left_by_another_process_is_noted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 1 << 20).unwrap();
        record(&log, "user.create");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"time\":\"2026").unwrap();
        drop(f);
        record(&log, "user.delete");
        let report = verify(log.source().files().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.torn_lines.len(), 1, "{report:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(TORN_LINE_ACTION).count(), 1, "{text}");
    }

    #[test]
    fn an_oversized_entry_is_written_cut_to_4_kib_and_the_chain_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 1 << 20).unwrap();
        let mut big = entry("grants.update");
        big.detail = Some("x".repeat(50_000));
        log.submit(big).unwrap().blocking_recv().unwrap().unwrap();
        record(&log, "user.create");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].len() <= bound::MAX_ENTRY_BYTES,
            "{}",
            lines[0].len()
        );
        assert!(lines[0].contains(" more bytes cut)"));
        let report = verify(log.source().files().unwrap()).unwrap();
        assert_eq!((report.ok, report.entries), (true, 2), "{report:?}");
    }

    #[test]
    fn a_reservation_succeeds_with_room_and_leaves_the_log_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, 1 << 20).unwrap();
        record(&log, "user.create");
        let before = std::fs::read(&path).unwrap();
        log.send(|done| Job::Reserve { done })
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(log.last_error(), None);
    }

    #[test]
    fn audit_files_and_their_lock_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        append(&path, 1 << 20, &[entry("user.create")]).unwrap();
        for p in [path.clone(), lock_path(&AuditFiles::new(&path))] {
            let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}
