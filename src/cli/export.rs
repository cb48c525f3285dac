//! `export-audit FILE`: the whole audit chain as audit.log lines in a new file, so the chain of
//! a cluster (or of a files installation with its rotated files) can be kept, handed over or
//! checked with `verify-audit` like any audit.log.
//!
//! The file is written beside FILE under a temporary name, fsynced, then linked to FILE (a link
//! fails on an existing name, where a rename would replace it: FILE is never overwritten, not
//! even one created meanwhile) and the directory fsynced.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use registry_admin::audit::entry::{Entry, Outcome, Source};
use registry_admin::paths::parent_dir;

use super::{CliError, audit_of, io_err, os_actor, settings};

pub const ACTION: &str = "audit.export";

pub fn run(file: &Path) -> Result<ExitCode, CliError> {
    let config = settings(audit_of::SETTINGS)?;
    if file.symlink_metadata().is_ok() {
        return Err(CliError::Refused(format!(
            "{} exists; export-audit never overwrites a file: name a new one",
            file.display()
        )));
    }
    let source = audit_of::open(&config)?;
    // As the other commands: nothing done that the trail could not record.
    source.reserve().map_err(|e| {
        CliError::Refused(format!(
            "nothing was exported: the audit log cannot take this command's entry ({e})"
        ))
    })?;
    let temp = temp_beside(file);
    let written = write_new(&temp, |out| source.export(out).map(|_| ()));
    let lines = match written {
        Ok(lines) => lines,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let linked = std::fs::hard_link(&temp, file);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(CliError::Refused(format!(
                "{} was created meanwhile; export-audit never overwrites a file",
                file.display()
            )));
        }
        Err(e) => return Err(io_err(file)(e)),
    }
    let dir = parent_dir(file);
    registry_admin::durable::sync_dir(dir).map_err(io_err(dir))?;

    let mut entry = Entry::new(ACTION, &os_actor(), Outcome::Success, Source::Cli);
    entry.detail = Some(format!("{lines} lines written to {}", file.display()));
    let audited = source.append(&[entry]);
    eprintln!(
        "registry-admin: wrote {lines} audit lines to {} (from {})",
        file.display(),
        if config.cluster.is_some() {
            "the database"
        } else {
            "the audit files"
        }
    );
    if let Err(e) = audited {
        eprintln!("registry-admin: the export is done, but its audit entry was not written: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// `.NAME.export-PID.tmp` beside `file`.
fn temp_beside(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit.log".into());
    parent_dir(file).join(format!(".{name}.export-{}.tmp", std::process::id()))
}

/// Creates `path` (owner-only, as audit files are), lets `fill` write it, and makes it
/// durable. Returns how many lines were written.
fn write_new(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), registry_admin::audit::source::ReadError>,
) -> Result<u64, CliError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let mut out = LineCounter {
        inner: BufWriter::with_capacity(1 << 20, file),
        lines: 0,
    };
    fill(&mut out)?;
    let lines = out.lines;
    let file = out
        .inner
        .into_inner()
        .map_err(|e| io_err(path)(e.into_error()))?;
    file.sync_all().map_err(io_err(path))?;
    Ok(lines)
}

/// Counts the lines going through it.
struct LineCounter<W> {
    inner: W,
    lines: u64,
}

impl<W: Write> Write for LineCounter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
