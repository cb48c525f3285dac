//! The one writer of the audit log in this process. A dedicated thread owns the file and the
//! chain: callers send entries and wait until their line is on disk. Entries that arrive together
//! are written with one write and one fsync (group commit), so durability does not cost a flush
//! per request.
//!
//! Other processes append too (the host-side commands in `cli`), so every batch is written under
//! an exclusive lock on a file beside the log (`.audit.log.lock`), and under that lock the writer
//! first checks that `audit.log` is still the file, and the size, it last wrote. When it is not
//! (another process appended, or rotated it), the tail is read again, so `prev` is always the hash
//! of the real last entry and the chain never forks.
//!
//! The writer also keeps the log bounded and fail-closed: each entry is cut to 4 KiB
//! (`bound`), identical `token.issue` and `image.pull` successes within a minute are coalesced
//! (`coalesce`), and `reserve` lets a state-changing request find out, before it changes
//! anything, that its entry will have room on disk (`space`).

use crate::sync::lock;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::oneshot;

use super::bound;
use super::coalesce::Coalescer;
use super::entry::{Entry, GENESIS, Outcome, Source, seal, unseal};
use super::files::AuditFiles;
use super::space;
use crate::error::{ErrorCode, StatusCode};

/// Most entries one group commit takes.
const MAX_BATCH: usize = 4096;
/// How far back the writer looks for the last whole line.
const TAIL_WINDOW: u64 = 1 << 20;
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

pub const TORN_LINE_ACTION: &str = "audit.torn_line";

#[derive(Debug, Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("audit log is closed")]
    Closed,
    #[error("audit log write failed: {0}")]
    Write(String),
}

impl AuditError {
    /// Why, without the file's path: for answers to clients and for `/health/ready`.
    pub fn reason(&self) -> String {
        match self {
            AuditError::Io { source, .. } => source.to_string(),
            AuditError::Closed => "the audit log is closed".into(),
            AuditError::Write(reason) => reason.clone(),
        }
    }
}

/// The audit log cannot take entries (disk full, I/O error), so nothing that would need one is
/// done: 503, with the reason but not the file's path.
impl ErrorCode for AuditError {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn code(&self) -> &'static str {
        "audit_unavailable"
    }
    fn message(&self) -> String {
        format!(
            "the audit log cannot be written ({}); nothing was changed: retry once it can be",
            self.reason()
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

type Done = oneshot::Sender<Result<(), String>>;

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
    files: AuditFiles,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    last_error: Arc<Mutex<Option<String>>>,
    fresh: Arc<Mutex<Option<Fresh>>>,
}

/// Where the chain stands in the existing files.
struct Tail {
    prev: String,
    /// (line number, byte length) of a last line cut short by a crash.
    torn: Option<(usize, usize)>,
}

/// The hash of the last whole entry, looked for in the current file, then in the rotated ones.
fn read_tail(files: &AuditFiles) -> Result<Tail, AuditError> {
    let mut torn = None;
    let mut candidates: Vec<PathBuf> = vec![files.current().to_path_buf()];
    candidates.extend(files.rotated().into_iter().rev().map(|n| files.numbered(n)));
    for (i, path) in candidates.iter().enumerate() {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        let len = f.metadata().map_err(io_err(path))?.len();
        let start = len.saturating_sub(TAIL_WINDOW);
        f.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
        let mut buf = Vec::new();
        f.take(TAIL_WINDOW)
            .read_to_end(&mut buf)
            .map_err(io_err(path))?;
        let mut whole = &buf[..];
        if i == 0 && !buf.is_empty() && !buf.ends_with(b"\n") {
            let cut = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
            let lines_before = if start == 0 {
                memchr::memchr_iter(b'\n', &buf).count()
            } else {
                count_lines(path)?
            };
            torn = Some((lines_before + 1, buf.len() - cut));
            whole = &buf[..cut];
        }
        for line in whole.split(|&b| b == b'\n').rev() {
            if let Some(u) = unseal(line) {
                return Ok(Tail { prev: u.hash, torn });
            }
        }
    }
    Ok(Tail {
        prev: GENESIS.to_string(),
        torn,
    })
}

fn count_lines(path: &Path) -> Result<usize, AuditError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Ok(memchr::memchr_iter(b'\n', &bytes).count())
}

fn open_append(path: &Path) -> io::Result<File> {
    super::files::open_append(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The lock file every appender takes, beside the log: `.audit.log.lock`.
pub fn lock_path(files: &AuditFiles) -> PathBuf {
    let name = AuditFiles::display_name(files.current());
    files.dir().join(format!(".{name}.lock"))
}

/// Held while a process writes to (or copies) the audit files; released when dropped.
pub struct AuditLock {
    _file: File,
}

/// Takes the exclusive lock that every appender, in any process, writes under. Blocking.
pub fn lock_files(files: &AuditFiles) -> Result<AuditLock, AuditError> {
    let dir = files.dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = lock_path(files);
    let file = crate::durable::lock_file(&path).map_err(io_err(&path))?;
    Ok(AuditLock { _file: file })
}

/// The file this writer appends to, as it was after the writer's own last write.
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    size: u64,
    prev: String,
}

struct Writer {
    files: AuditFiles,
    /// `None` until the first batch, and again after a failure: the next batch reads the disk.
    open: Option<Open>,
    /// The entry recording a torn line found at the tail, written with the next batch.
    torn_note: Option<Entry>,
    max_bytes: u64,
    coalescer: Coalescer,
    counters: Arc<Counters>,
    last_error: Arc<Mutex<Option<String>>>,
    fresh: Arc<Mutex<Option<Fresh>>>,
}

impl Writer {
    fn new(files: AuditFiles, max_bytes: u64) -> Writer {
        Writer {
            files,
            open: None,
            torn_note: None,
            max_bytes,
            coalescer: Coalescer::default(),
            counters: Arc::default(),
            last_error: Arc::new(Mutex::new(None)),
            fresh: Arc::new(Mutex::new(None)),
        }
    }

    /// Under the lock: makes sure `open` is the file at the log's path with the chain's real
    /// last hash, re-reading the tail when another process appended or rotated since our last
    /// write. A torn last line is ended with a newline and noted for the next batch.
    fn catch_up(&mut self) -> Result<(), AuditError> {
        let path = self.files.current();
        let on_disk = match std::fs::metadata(path) {
            Ok(m) => Some((m.dev(), m.ino(), m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(path)(e)),
        };
        if let (Some(o), Some(disk)) = (&self.open, on_disk)
            && (o.dev, o.ino, o.size) == disk
        {
            return Ok(());
        }
        let tail = read_tail(&self.files)?;
        let mut file = open_append(path).map_err(io_err(path))?;
        if let Some((line, bytes)) = tail.torn {
            // End the fragment so the next entry starts on a line of its own; the fragment
            // itself stays, as evidence.
            file.write_all(b"\n").map_err(io_err(path))?;
            let name = AuditFiles::display_name(path);
            log::warn!("audit log: line {line} of {name} was cut short by a crash ({bytes} bytes)");
            let mut e = Entry::new(
                TORN_LINE_ACTION,
                "registry-admin",
                Outcome::Failure,
                Source::Api,
            );
            e.detail = Some(format!(
                "line {line} of {name} ({bytes} bytes) was cut short by a crash; the chain continues from the entry before it"
            ));
            self.torn_note = Some(e);
        }
        let m = file.metadata().map_err(io_err(path))?;
        self.open = Some(Open {
            file,
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            prev: tail.prev,
        });
        Ok(())
    }

    /// Renames `audit.log` to the next number and starts a new one; the chain simply goes on.
    fn rotate(files: &AuditFiles, open: &mut Open) -> io::Result<()> {
        open.file.sync_all()?;
        let target = files.numbered(files.current_number());
        std::fs::rename(files.current(), &target)?;
        open.file = open_append(files.current())?;
        let m = open.file.metadata()?;
        (open.dev, open.ino, open.size) = (m.dev(), m.ino(), 0);
        sync_dir(&files.dir())
    }

    /// One group commit: lock, catch up with the disk, one write, one fdatasync.
    fn write_batch(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        let _lock = lock_files(&self.files)?;
        self.catch_up()?;
        let result = self.append(entries);
        if result.is_err() {
            // Whatever happened on disk, the next batch must look at it afresh.
            self.open = None;
        }
        result
    }

    /// Under the lock: room for the next entries, allocated to the file (`space::reserve`).
    fn reserve(&mut self) -> Result<(), AuditError> {
        let _lock = lock_files(&self.files)?;
        self.catch_up()?;
        let dir = self.files.dir();
        let Some(open) = self.open.as_ref() else {
            return Err(AuditError::Write("audit log is not open".into()));
        };
        let path = self.files.current().to_path_buf();
        // A failed reservation wrote nothing, so the file is as the writer knows it: no need
        // to read its tail again (which a flood of refused requests would make costly).
        space::reserve(&open.file, open.size, &dir).map_err(io_err(&path))
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        let Some(open) = self.open.as_mut() else {
            return Err(AuditError::Write("audit log is not open".into()));
        };
        let path = self.files.current().to_path_buf();
        let mut buf = Vec::with_capacity((entries.len() + 1) * 320);
        let mut prev = open.prev.clone();
        let mut count = 0u64;
        for e in self.torn_note.iter().chain(entries) {
            let mut e = e.clone();
            let mut sealed = seal(&mut e, &prev);
            // Sealed once; only an oversized entry is cut and sealed again.
            if sealed.0.len() > bound::MAX_ENTRY_BYTES && bound::fit(&mut e, &prev) {
                log::warn!(
                    "audit entry {} cut to {} bytes",
                    e.action,
                    bound::MAX_ENTRY_BYTES
                );
                sealed = seal(&mut e, &prev);
            }
            let (line, hash) = sealed;
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            prev = hash;
            count += 1;
        }
        if buf.is_empty() {
            return Ok(());
        }
        // A torn fragment and the entry naming it stay in one file, as verification expects.
        if self.torn_note.is_none()
            && open.size > 0
            && open.size + buf.len() as u64 > self.max_bytes
        {
            Self::rotate(&self.files, open).map_err(io_err(&path))?;
        }
        let written = open
            .file
            .write_all(&buf)
            .and_then(|()| open.file.sync_data());
        if let Err(e) = written {
            // Bytes of a failed write were never acknowledged: cut them off so the next
            // entry does not land in the middle of a half line.
            if let Err(t) = open.file.set_len(open.size) {
                log::error!("audit log: could not cut back a failed write: {t}");
            }
            return Err(io_err(&path)(e));
        }
        open.size += buf.len() as u64;
        open.prev = prev;
        self.torn_note = None;
        self.counters.written.fetch_add(count, Ordering::Relaxed);
        self.counters
            .since_reserve
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
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
            e.reason()
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
            (Ok(()), false) => self.reserve().map_err(fail),
        };
        *lock(&self.last_error) = written.clone().err().or_else(|| reserved.clone().err());
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

/// Appends `entries` to the log at `path` and returns once they are on disk, without a writer
/// thread: for a short-lived process (the host-side commands). Safe while the service runs.
pub fn append(
    path: impl Into<PathBuf>,
    max_bytes: u64,
    entries: &[Entry],
) -> Result<(), AuditError> {
    let files = AuditFiles::new(path);
    let dir = files.dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    Writer::new(files, max_bytes).write_batch(entries)
}

/// Makes sure an entry appended to the log at `path` will have room, as `AuditLog::reserve`
/// does for the service, without a writer thread: a host-side command asks this before it
/// changes anything, so a change is never made that the trail cannot record.
pub fn reserve(path: impl Into<PathBuf>, max_bytes: u64) -> Result<(), AuditError> {
    let files = AuditFiles::new(path);
    let dir = files.dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    Writer::new(files, max_bytes).reserve()
}

impl AuditLog {
    /// Opens the log, continues the chain from the last whole entry, records a torn last line
    /// (from a crash mid-write) as such, and starts the writer thread.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64) -> Result<AuditLog, AuditError> {
        let files = AuditFiles::new(path);
        std::fs::create_dir_all(files.dir()).map_err(io_err(&files.dir()))?;
        let mut writer = Writer::new(files.clone(), max_bytes);
        // An empty batch creates the file, finds the chain's end and writes a torn-line note,
        // so a log that cannot be written stops start-up.
        writer.write_batch(&[])?;
        let counters = Arc::clone(&writer.counters);
        let last_error = Arc::clone(&writer.last_error);
        let fresh = Arc::clone(&writer.fresh);
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(files.current()))?;
        Ok(AuditLog {
            files,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            counters,
            last_error,
            fresh,
        })
    }

    pub fn files(&self) -> &AuditFiles {
        &self.files
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
    ) -> Result<oneshot::Receiver<Result<(), String>>, AuditError> {
        let (done, rx) = oneshot::channel();
        let guard = lock(&self.tx);
        let tx = guard.as_ref().ok_or(AuditError::Closed)?;
        tx.send(job(done)).map_err(|_| AuditError::Closed)?;
        Ok(rx)
    }

    fn submit(&self, entry: Entry) -> Result<oneshot::Receiver<Result<(), String>>, AuditError> {
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
            .map_err(AuditError::Write)
    }

    /// Appends `entry` and returns once it is on disk.
    pub async fn record(&self, entry: Entry) -> Result<(), AuditError> {
        let rx = self.submit(entry)?;
        rx.await
            .map_err(|_| AuditError::Closed)?
            .map_err(AuditError::Write)
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
    use crate::audit::verify::verify;

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
        let report = verify(log.files()).unwrap();
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
        let files = log.files();
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
        let report = verify(log.files()).unwrap();
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
        let report = verify(log.files()).unwrap();
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
