//! Copying while counting and hashing: what the manifest records of every file.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

/// Passes writes through while counting and hashing them.
pub(super) struct Hashing<W> {
    pub(super) inner: W,
    pub(super) hasher: Sha256,
    pub(super) len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies `src` into `dst`, returning size and hex SHA-256 of what was written.
pub(super) fn copy_hashed(src: &mut impl Read, dst: &mut impl Write) -> io::Result<(u64, String)> {
    let mut out = Hashing {
        inner: dst,
        hasher: Sha256::new(),
        len: 0,
    };
    io::copy(src, &mut out)?;
    out.flush()?;
    Ok((out.len, hex::encode(out.hasher.finalize())))
}
