//! The set of audit files: `audit.log` (being written) and `audit.log.1`, `audit.log.2`, … in the
//! order they were rotated out. Rotation renames `audit.log` to the next number, so a file keeps
//! its number for good and query cursors stay valid across rotations.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Opens an audit file for appending, creating it readable and writable by the owner only: the
/// log names accounts, addresses and images, which is no business of other users on the host.
/// A rotated file keeps this mode, since rotation is a rename.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[derive(Debug, Clone)]
pub struct AuditFiles {
    path: PathBuf,
}

impl AuditFiles {
    pub fn new(path: impl Into<PathBuf>) -> AuditFiles {
        AuditFiles { path: path.into() }
    }

    pub fn current(&self) -> &Path {
        &self.path
    }

    pub fn dir(&self) -> PathBuf {
        crate::paths::parent_dir(&self.path).to_path_buf()
    }

    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audit.log".into())
    }

    /// Numbers of the rotated files, ascending (oldest first).
    pub fn rotated(&self) -> Vec<u64> {
        let prefix = format!("{}.", self.file_name());
        let mut nums: Vec<u64> = std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(&prefix)?.parse::<u64>().ok()
            })
            .collect();
        nums.sort_unstable();
        nums
    }

    /// The number `audit.log` will get when it is rotated out.
    pub fn current_number(&self) -> u64 {
        self.rotated().last().copied().unwrap_or(0) + 1
    }

    pub fn numbered(&self, n: u64) -> PathBuf {
        self.dir().join(format!("{}.{n}", self.file_name()))
    }

    /// The file with number `n`, where `current` is the number `audit.log` has now.
    pub fn path_of(&self, n: u64, current: u64) -> PathBuf {
        if n == current {
            self.path.clone()
        } else {
            self.numbered(n)
        }
    }

    /// Every file, oldest first, with its number and a display name.
    pub fn all(&self) -> Vec<(u64, PathBuf)> {
        let mut out: Vec<(u64, PathBuf)> = self
            .rotated()
            .into_iter()
            .map(|n| (n, self.numbered(n)))
            .collect();
        let current = out.last().map_or(1, |(n, _)| n + 1);
        out.push((current, self.path.clone()));
        out
    }

    pub fn display_name(path: &Path) -> String {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}
