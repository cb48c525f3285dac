//! A small tmpfs volume for tests of what happens when a disk is full.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped. `None` where mounting is not
/// permitted (not root): the caller skips, except under CI, where it must run.
pub struct SmallVolume {
    dir: PathBuf,
}

impl SmallVolume {
    pub fn mount(dir: &Path, size: &str) -> Option<SmallVolume> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallVolume {
                dir: dir.to_path_buf(),
            }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI must be able to mount a tmpfs (run as root): {why}"
                );
                eprintln!("SKIPPED: cannot mount a small tmpfs here ({why}); run as root");
                None
            }
        }
    }

    /// Writes a file until the volume is full; returns its path.
    pub fn fill(&self) -> PathBuf {
        let (path, _, _) = self.write_until_full();
        path
    }

    /// Fills the volume, then frees `leave` bytes of it again.
    pub fn fill_leaving(&self, leave: u64) {
        let (_, f, written) = self.write_until_full();
        f.set_len(written.saturating_sub(leave)).unwrap();
    }

    /// Writes 4 KiB chunks to `filler` until one fails (bounded: panics if the volume never
    /// fills); returns the file and how many bytes the whole chunks that fit hold.
    fn write_until_full(&self) -> (PathBuf, File, u64) {
        let path = self.dir.join("filler");
        let mut f = File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        for _ in 0..100_000 {
            if f.write_all(&chunk).is_err() {
                return (path, f, written);
            }
            written += chunk.len() as u64;
        }
        panic!("the volume did not fill up");
    }
}

impl Drop for SmallVolume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
