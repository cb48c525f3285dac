//! Robot secrets: `ra_` + base64url of 32 random bytes + a 6-character checksum. 256 random
//! bits cannot be guessed, so one SHA-256 is enough to store them (no bcrypt: `/token` stays
//! fast), and comparisons are constant-time. The checksum lets a typo, a truncated paste or a
//! secret scanner's guess be told from a real secret without reading `robots.json`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "ra_";
const RANDOM_BYTES: usize = 32;
/// base64url of 32 bytes, unpadded.
const BODY_CHARS: usize = 43;
const CHECKSUM_CHARS: usize = 6;

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    URL_SAFE_NO_PAD
        .encode(&digest[..])
        .chars()
        .take(CHECKSUM_CHARS)
        .collect()
}

/// A fresh secret, to be shown once.
pub fn generate() -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let body = URL_SAFE_NO_PAD.encode(bytes);
    format!("{PREFIX}{body}{}", checksum(&body))
}

/// Whether `secret` has the shape and checksum of one [`generate`] makes.
pub fn well_formed(secret: &str) -> bool {
    let Some(rest) = secret.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != BODY_CHARS + CHECKSUM_CHARS || !rest.is_ascii() {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_CHARS);
    URL_SAFE_NO_PAD.decode(body).is_ok() && checksum(body).as_bytes().ct_eq(sum.as_bytes()).into()
}

/// What is stored: hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of `secret` with a stored hash.
pub fn matches(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_well_formed_and_checked() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("ra_"));
        let rest = &a[3..];
        assert!((40..=64).contains(&rest.len()));
        assert!(
            rest.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert!(well_formed(&a));
        // One character changed breaks the checksum.
        let mut typo = a.clone().into_bytes();
        typo[10] = if typo[10] == b'A' { b'B' } else { b'A' };
        assert!(!well_formed(&String::from_utf8(typo).unwrap()));
        assert!(!well_formed(&a[..a.len() - 1]));
        assert!(!well_formed("password123"));
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert_eq!(hash(&a).len(), 64);
    }
}
