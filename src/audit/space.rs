//! Room on the audit volume: how much is free (for the metric and the readiness warning), and a
//! reservation that lets an action be refused *before* it happens when its entry could not be
//! written.
//!
//! The reservation allocates `RESERVE` bytes past the end of `audit.log` without changing its
//! size (`fallocate` with `FALLOC_FL_KEEP_SIZE`). Appends then land in blocks that are already
//! the file's, so once a reservation succeeded the entries after it do not fail for want of
//! space even if something else fills the volume meanwhile. Besides, a volume with less than
//! `RESERVE` free counts as full: the reservation is a margin for requests already under way,
//! not room to go on with. Where the filesystem cannot preallocate, only the free space is
//! checked.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Room kept ahead of the end of `audit.log`: 64 entries of the largest size, more than the
/// actions that can be under way between two reservations in practice.
pub const RESERVE: u64 = 64 * super::bound::MAX_ENTRY_BYTES as u64;

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` a buffer statvfs fills on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Makes sure the `RESERVE` bytes after `size` are allocated to `file`.
pub fn reserve(file: &File, size: u64, dir: &Path) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(size), i64::try_from(RESERVE)) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file too large",
        ));
    };
    // SAFETY: a plain syscall on an open descriptor; no memory is passed.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // No preallocation on this filesystem: the free space below is the next best thing.
        if !matches!(
            err.raw_os_error(),
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS)
        ) {
            return Err(err);
        }
    }
    if free_bytes(dir)? < RESERVE {
        return Err(io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_keeps_the_size_and_free_space_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, b"x\n").unwrap();
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        reserve(&f, 2, dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2);
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
