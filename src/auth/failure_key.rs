//! What the failed-login limits key on and answer, shared by this replica's limiter (`limit`)
//! and the cluster's counts (`shared_failures`).

use std::time::Duration;

use sha2::{Digest, Sha256};

/// How much of a username tells pairs apart: valid usernames are at most 64 characters.
pub const NAME_KEY_BYTES: usize = 64;

/// A fixed-size stand-in for a username: 16 bytes of SHA-256 of its first `NAME_KEY_BYTES`.
pub(crate) type NameKey = [u8; 16];

pub(crate) fn name_key(user: &str) -> NameKey {
    let bytes = user.as_bytes();
    let digest = Sha256::digest(&bytes[..bytes.len().min(NAME_KEY_BYTES)]);
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Refused: the caller must wait this long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled(pub Duration);
