//! The audit files as the writer appends to them: `audit.log` and its rotated files, the chain
//! continued from the last whole line, group commits of one write and one fdatasync.
//!
//! Other processes append too (the host-side commands in `cli`), so every batch is written under
//! an exclusive lock on a file beside the log (`.audit.log.lock`), and under that lock the writer
//! first checks that `audit.log` is still the file, and the size, it last wrote. When it is not
//! (another process appended, or rotated it), the tail is read again, so `prev` is always the hash
//! of the real last entry and the chain never forks.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::bound;
use super::entry::{Entry, GENESIS, Outcome, Source, unseal};
use super::files::AuditFiles;
use super::sink::{AuditError, Sink, Stored, TORN_LINE_ACTION};
use super::space;

/// How far back the writer looks for the last whole line.
const TAIL_WINDOW: u64 = 1 << 20;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
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

/// The audit files as the writer thread (or a host-side command) appends to them.
pub(crate) struct FileSink {
    files: AuditFiles,
    /// `None` until the first batch, and again after a failure: the next batch reads the disk.
    open: Option<Open>,
    /// The entry recording a torn line found at the tail, written with the next batch.
    torn_note: Option<Entry>,
    max_bytes: u64,
}

impl FileSink {
    pub(crate) fn new(files: AuditFiles, max_bytes: u64) -> FileSink {
        FileSink {
            files,
            open: None,
            torn_note: None,
            max_bytes,
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
    fn write_files(&mut self, entries: &[Entry]) -> Result<Stored, AuditError> {
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
    fn reserve_room(&mut self) -> Result<(), AuditError> {
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

    fn append(&mut self, entries: &[Entry]) -> Result<Stored, AuditError> {
        let Some(open) = self.open.as_mut() else {
            return Err(AuditError::Write("audit log is not open".into()));
        };
        let path = self.files.current().to_path_buf();
        let mut buf = Vec::with_capacity((entries.len() + 1) * 320);
        let mut prev = open.prev.clone();
        let mut count = 0u64;
        for e in self.torn_note.iter().chain(entries) {
            let (line, hash) = bound::seal_within(e, &prev);
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            prev = hash;
            count += 1;
        }
        if buf.is_empty() {
            return Ok(Stored::default());
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
        Ok(Stored {
            entries: count,
            bytes: buf.len() as u64,
        })
    }
}

impl Sink for FileSink {
    fn write_batch(&mut self, entries: &[Entry]) -> Result<Stored, AuditError> {
        self.write_files(entries)
    }

    fn reserve(&mut self) -> Result<(), AuditError> {
        self.reserve_room()
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
    FileSink::new(files, max_bytes)
        .write_files(entries)
        .map(|_| ())
}

/// Makes sure an entry appended to the log at `path` will have room, as `AuditLog::reserve`
/// does for the service, without a writer thread: a host-side command asks this before it
/// changes anything, so a change is never made that the trail cannot record.
pub fn reserve(path: impl Into<PathBuf>, max_bytes: u64) -> Result<(), AuditError> {
    let files = AuditFiles::new(path);
    let dir = files.dir();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    FileSink::new(files, max_bytes).reserve_room()
}
