//! Checks Basic credentials against the shared htpasswd. Successful checks are remembered so a
//! script's repeated calls do not each pay a bcrypt; the memory is keyed by the hash in force,
//! so a password change, disable or delete invalidates it without any bookkeeping.
//!
//! A failed check always costs at least one bcrypt at `BCRYPT_COST`: an unknown user is checked
//! against a dummy hash of that cost, and a hand-added line of a cheaper cost (htpasswd's
//! default is 5) is followed by the dummy too, so timing does not tell which accounts exist.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::token::{TokenSigner, fingerprint};
use crate::blocking::{BlockingError, run_blocking};
use crate::metrics::Metrics;
use crate::users::htpasswd::{bcrypt_hash, is_bcrypt};
use crate::users::model::{Accounts, Role};
use crate::users::store::{StoreError, UserStore};

/// Beyond this many remembered accounts the memory starts over; it is only a cache.
const MAX_CACHED: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Error)]
pub enum AuthError {
    /// Wrong password, unknown or disabled account, or a token that no longer holds.
    #[error("the credentials were rejected")]
    Rejected,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
    #[error("bcrypt: {0}")]
    Hash(String),
}

struct Remembered {
    /// Keyed digest of the password, never the password itself.
    password_digest: [u8; 32],
    /// The htpasswd hash it was verified against.
    hash: String,
}

pub struct Verifier {
    store: Arc<UserStore>,
    metrics: Arc<Metrics>,
    key: [u8; 32],
    cost: u32,
    cache: Mutex<HashMap<String, Remembered>>,
    /// Checked on every failure path, so each failure costs one bcrypt at `cost`.
    dummy_hash: String,
}

/// The cost field of a bcrypt hash (`$2y$05$…` → 5).
fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

/// The account as it stands now, if it may use the API.
fn usable(accounts: &Accounts, user: &str) -> Option<(Account, String)> {
    let view = accounts
        .view(user)
        .filter(|v| !v.disabled && v.role != Role::Service)?;
    let hash = accounts.htpasswd.get(user).filter(|h| is_bcrypt(h))?;
    Some((
        Account {
            username: view.username,
            role: view.role,
        },
        hash.to_string(),
    ))
}

impl Verifier {
    pub fn new(
        store: Arc<UserStore>,
        cost: u32,
        metrics: Arc<Metrics>,
    ) -> Result<Verifier, bcrypt::BcryptError> {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let dummy_hash = bcrypt::hash(hex::encode(key), cost)?;
        Ok(Verifier {
            store,
            metrics,
            key,
            cost,
            cache: Mutex::new(HashMap::new()),
            dummy_hash,
        })
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn remember(&self, user: &str, hash: String, password_digest: [u8; 32]) {
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(
            user.to_string(),
            Remembered {
                password_digest,
                hash,
            },
        );
    }

    /// The account, when these exact credentials passed a bcrypt check against the hash still
    /// in force: no bcrypt, so no throttle slot is needed.
    pub fn remembered(&self, user: &str, password: &str) -> Result<Option<Account>, AuthError> {
        let accounts = self.store.current()?;
        let Some((account, hash)) = usable(&accounts, user) else {
            return Ok(None);
        };
        let digest = self.digest(user, password);
        let cache = lock(&self.cache);
        let hit = cache
            .get(user)
            .is_some_and(|r| r.hash == hash && bool::from(r.password_digest.ct_eq(&digest)));
        Ok(hit.then_some(account))
    }

    /// The account these credentials belong to, or `Rejected`, after a bcrypt. Disabled
    /// accounts have no htpasswd line and so fail like unknown ones; the service account
    /// cannot use the API.
    pub async fn verify(&self, user: &str, password: &str) -> Result<Account, AuthError> {
        let accounts = self.store.current()?;
        let Some((account, hash)) = usable(&accounts, user) else {
            self.spend_a_failure(password).await;
            return Err(AuthError::Rejected);
        };
        self.metrics.bcrypt_verify();
        let pw = password.to_string();
        let h = hash.clone();
        let ok = run_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false)).await?;
        if !ok {
            if bcrypt_cost(&hash).is_none_or(|c| c < self.cost) {
                self.spend_a_failure(password).await;
            }
            return Err(AuthError::Rejected);
        }
        self.remember(user, hash, self.digest(user, password));
        Ok(account)
    }

    /// A new password's htpasswd hash at `BCRYPT_COST`, computed off the async workers.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let cost = self.cost;
        self.metrics.bcrypt_hash();
        run_blocking(move || bcrypt_hash(&password, cost))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))
    }

    /// One bcrypt at the configured cost whose answer is thrown away.
    async fn spend_a_failure(&self, password: &str) {
        self.metrics.bcrypt_verify();
        let dummy = self.dummy_hash.clone();
        let pw = password.to_string();
        let _ = run_blocking(move || bcrypt::verify(pw, &dummy)).await;
    }

    /// The account a bearer token speaks for, if the token is genuine, unexpired, and the
    /// account is still enabled under the token epoch, password and role it was issued for.
    pub async fn verify_bearer(
        &self,
        signer: &TokenSigner,
        token: &str,
    ) -> Result<Account, AuthError> {
        let found = match signer.check(token, Utc::now()) {
            None => None,
            Some(claims) => {
                let accounts = self.store.current()?;
                usable(&accounts, &claims.sub).filter(|(account, hash)| {
                    fingerprint(hash, account.role) == claims.ver
                        && accounts.token_epoch(&claims.sub) == claims.ep
                })
            }
        };
        match found {
            Some((account, _)) => Ok(account),
            None => {
                self.spend_a_failure(token).await;
                Err(AuthError::Rejected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_is_read_from_the_hash() {
        assert_eq!(bcrypt_cost("$2y$05$abcdefghijklmnopqrstuv"), Some(5));
        assert_eq!(bcrypt_cost("$2b$12$x"), Some(12));
        assert_eq!(bcrypt_cost("plain"), None);
    }
}
