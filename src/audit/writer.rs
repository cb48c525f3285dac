//! The one writer of the audit log. A dedicated thread owns the file and the chain: callers send
//! entries and wait until their line is on disk. Entries that arrive together are written with
//! one write and one fsync (group commit), so durability does not cost a flush per request.

use crate::sync::lock;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use thiserror::Error;
use tokio::sync::oneshot;

use super::entry::{Entry, GENESIS, Outcome, Source, seal, unseal};
use super::files::AuditFiles;

/// Most entries one group commit takes.
const MAX_BATCH: usize = 4096;
/// How far back start-up looks for the last whole line.
const TAIL_WINDOW: u64 = 1 << 20;

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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct Job {
    entry: Entry,
    done: oneshot::Sender<Result<(), String>>,
}

pub struct AuditLog {
    files: AuditFiles,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    written: Arc<AtomicU64>,
    last_error: Arc<Mutex<Option<String>>>,
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
        f.read_to_end(&mut buf).map_err(io_err(path))?;
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

fn open_append(path: &Path) -> Result<File, AuditError> {
    super::files::open_append(path).map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

struct Writer {
    files: AuditFiles,
    file: File,
    size: u64,
    prev: String,
    max_bytes: u64,
    written: Arc<AtomicU64>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Writer {
    /// Renames `audit.log` to the next number and starts a new one; the chain simply goes on.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let target = self.files.numbered(self.files.current_number());
        std::fs::rename(self.files.current(), &target)?;
        self.file = super::files::open_append(self.files.current())?;
        self.size = 0;
        sync_dir(&self.files.dir())
    }

    fn write_batch(&mut self, entries: &mut [Entry]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * 320);
        let mut prev = self.prev.clone();
        for e in entries.iter_mut() {
            let (line, hash) = seal(e, &prev);
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            prev = hash;
        }
        if self.size > 0 && self.size + buf.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&buf)?;
        self.file.sync_data()?;
        self.size += buf.len() as u64;
        self.prev = prev;
        self.written
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let mut entries: Vec<Entry> = jobs.iter().map(|j| j.entry.clone()).collect();
            let result = self.write_batch(&mut entries).map_err(|e| {
                log::error!("audit log write failed: {e}");
                // Bytes of a failed write were never acknowledged: cut them off so the next
                // entry does not land in the middle of a half line.
                if let Err(t) = self.file.set_len(self.size) {
                    log::error!("audit log: could not cut back a failed write: {t}");
                }
                e.to_string()
            });
            *lock(&self.last_error) = result.clone().err();
            for job in jobs {
                let _ = job.done.send(result.clone());
            }
        }
    }
}

impl AuditLog {
    /// Opens the log, continues the chain from the last whole entry, records a torn last line
    /// (from a crash mid-write) as such, and starts the writer thread.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64) -> Result<AuditLog, AuditError> {
        let files = AuditFiles::new(path);
        std::fs::create_dir_all(files.dir()).map_err(io_err(&files.dir()))?;
        let tail = read_tail(&files)?;
        let mut file = open_append(files.current())?;
        if tail.torn.is_some() {
            // End the fragment so the next entry starts on a line of its own; the fragment
            // itself stays, as evidence.
            file.write_all(b"\n").map_err(io_err(files.current()))?;
        }
        let size = file.metadata().map_err(io_err(files.current()))?.len();
        let written = Arc::new(AtomicU64::new(0));
        let last_error = Arc::new(Mutex::new(None));
        let writer = Writer {
            last_error: Arc::clone(&last_error),
            files: files.clone(),
            file,
            size,
            prev: tail.prev,
            max_bytes,
            written: Arc::clone(&written),
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(files.current()))?;
        let log = AuditLog {
            files,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            written,
            last_error,
        };
        if let Some((line, bytes)) = tail.torn {
            let name = AuditFiles::display_name(log.files.current());
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
            log.submit(e)?
                .blocking_recv()
                .map_err(|_| AuditError::Closed)?
                .map_err(AuditError::Write)?;
        }
        Ok(log)
    }

    pub fn files(&self) -> &AuditFiles {
        &self.files
    }

    /// The error of the last write, if it failed (cleared by the next successful one).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Entries written since start.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn submit(&self, entry: Entry) -> Result<oneshot::Receiver<Result<(), String>>, AuditError> {
        let (done, rx) = oneshot::channel();
        let guard = lock(&self.tx);
        let tx = guard.as_ref().ok_or(AuditError::Closed)?;
        tx.send(Job { entry, done })
            .map_err(|_| AuditError::Closed)?;
        Ok(rx)
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
