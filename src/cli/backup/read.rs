//! Reading a backup's files without trusting them: plain files only, never through a link,
//! never more than the manifest says.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::hash::copy_hashed;
use crate::cli::{CliError, io_err};

/// A restore refused before it changed anything: every check happens before the first write.
pub(super) fn refuse(why: impl std::fmt::Display) -> CliError {
    CliError::Refused(format!("refusing to restore: {why}; nothing was changed"))
}

/// Opens a file of a backup for reading: never through a symbolic link, and only a regular
/// file (a FIFO would hang the read; a device could be anything).
pub(super) fn open_backup_file(path: &Path) -> Result<File, CliError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refuse(format!(
                    "{} is a symbolic link; a backup holds plain files only",
                    path.display()
                ))
            } else {
                io_err(path)(e)
            }
        })?;
    let meta = f.metadata().map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(refuse(format!("{} is not a regular file", path.display())));
    }
    Ok(f)
}

/// Size and hex SHA-256 of at most `max + 1` bytes of `path`: a file that grew past what the
/// manifest says is not read to its end.
pub(super) fn hash_file(path: &Path, max: u64) -> Result<(u64, String), CliError> {
    let f = open_backup_file(path)?;
    copy_hashed(&mut f.take(max.saturating_add(1)), &mut io::sink()).map_err(io_err(path))
}

/// What a name in the backup is, without following a link: refused unless a regular file.
pub(super) fn backup_entry(path: &Path, name: &str) -> Result<fs::Metadata, CliError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(refuse(format!("{name} is missing from the backup")));
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(refuse(format!(
            "{name} in the backup is a symbolic link; a backup holds plain files only"
        )));
    }
    if !kind.is_file() {
        return Err(refuse(format!(
            "{name} in the backup is not a regular file"
        )));
    }
    Ok(meta)
}

pub(super) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, CliError> {
    let f = open_backup_file(path)?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    if buf.len() as u64 > max {
        return Err(refuse(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(buf)
}
