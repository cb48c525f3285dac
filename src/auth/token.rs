//! API bearer tokens: `ra1.<claims>.<HMAC-SHA256>`, short-lived, and bound to the account's state
//! so that disabling, deleting, demoting or changing the password of the account ends its tokens
//! at once and for good, with no revocation list: a token carries the account's token epoch
//! (users.json; every such change moves it, and it never moves back) and a fingerprint of the
//! hash and role (which also catches edits made to htpasswd by hand).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::names::Role;

type HmacSha256 = Hmac<Sha256>;
const PREFIX: &str = "ra1";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    /// Fingerprint of the account state the token was issued for.
    pub ver: String,
    /// The account's token epoch when the token was issued.
    pub ep: u64,
}

pub struct TokenSigner {
    key: Vec<u8>,
    ttl_secs: u64,
}

/// Changes whenever the account's password or role does.
pub fn fingerprint(hash: &str, role: Role) -> String {
    let mut h = Sha256::new();
    h.update(hash.as_bytes());
    h.update([0]);
    h.update(role.as_str().as_bytes());
    hex::encode(&h.finalize()[..16])
}

impl TokenSigner {
    /// With no key given, one is made up for this process: tokens then die with it.
    pub fn new(key: Option<&[u8]>, ttl_secs: u64) -> TokenSigner {
        let key = match key {
            Some(k) => k.to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                rand::rng().fill_bytes(&mut k);
                k
            }
        };
        TokenSigner { key, ttl_secs }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    pub fn issue(
        &self,
        user: &str,
        hash: &str,
        role: Role,
        epoch: u64,
        now: DateTime<Utc>,
    ) -> (String, DateTime<Utc>) {
        let expires = now + chrono::Duration::seconds(self.ttl_secs as i64);
        let claims = Claims {
            sub: user.to_string(),
            exp: expires.timestamp(),
            ver: fingerprint(hash, role),
            ep: epoch,
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (format!("{PREFIX}.{body}.{sig}"), expires)
    }

    /// The claims of a token this process would have issued and that has not expired.
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> Option<Claims> {
        let mut parts = token.split('.');
        let (Some(prefix), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if prefix != PREFIX {
            return None;
        }
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        mac.verify_slice(&sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (claims.exp > now.timestamp()).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_resist_tampering() {
        let s = TokenSigner::new(None, 60);
        let now = Utc::now();
        let (t, exp) = s.issue("alice", "$2y$04$h", Role::Admin, 7, now);
        assert_eq!((exp - now).num_seconds(), 60);
        let c = s.check(&t, now).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.ver, c.ep),
            ("alice", fingerprint("$2y$04$h", Role::Admin), 7)
        );
        assert!(s.check(&t, now + chrono::Duration::seconds(61)).is_none());
        assert!(
            TokenSigner::new(None, 60).check(&t, now).is_none(),
            "another key"
        );
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"root","exp":9999999999,"ver":"x","ep":0}"#);
        parts[1] = &forged;
        assert!(s.check(&parts.join("."), now).is_none());
        assert!(s.check("garbage", now).is_none());
        assert_ne!(fingerprint("h", Role::Admin), fingerprint("h", Role::User));
    }
}
