//! Checks Basic credentials against the shared htpasswd. Successful checks are remembered so a
//! script's repeated calls do not each pay a bcrypt; the memory is keyed by the hash in force,
//! so a password change, disable or delete invalidates it without any bookkeeping.
//!
//! A failed check always costs at least one bcrypt at the *failure cost*: `BCRYPT_COST`, or the
//! cost of the costliest hash in htpasswd when that is higher (up to `MAX_FAILURE_COST`). An
//! unknown user is checked against a dummy hash of that cost, and a line of a cheaper cost
//! (htpasswd's default is 5) is followed by the dummy too, so timing does not tell which
//! accounts exist. A successful check of a hash whose cost is not `BCRYPT_COST` re-hashes the
//! password at `BCRYPT_COST`, so costs converge on the setting as people log in.
//!
//! Passwords over 72 bytes are refused without a look at the account: bcrypt reads only the
//! first 72, so such a password would otherwise pass with any tail, and setting one is refused.

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
use crate::error::{ErrorCode, StatusCode};
use crate::metrics::Metrics;
use crate::names::Role;
use crate::users::htpasswd::{bcrypt_hash, is_bcrypt};
use crate::users::model::Accounts;
use crate::users::store::{StoreError, UserStore};
use crate::validate::MAX_PASSWORD_BYTES;

/// Beyond this many remembered accounts the memory starts over; it is only a cache.
const MAX_CACHED: usize = 10_000;
/// The failure cost follows costlier hashes in htpasswd up to this (about 5 s a check); a line
/// costlier still is hand-made and would let every failed login hold a thread for minutes.
pub const MAX_FAILURE_COST: u32 = 16;

pub use crate::users::model::Account;

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

impl ErrorCode for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            AuthError::Rejected => StatusCode::UNAUTHORIZED,
            AuthError::Store(s) => s.status(),
            AuthError::Blocking(b) => b.status(),
            AuthError::Hash(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            AuthError::Rejected => "unauthorized",
            AuthError::Store(s) => s.code(),
            AuthError::Blocking(b) => b.code(),
            AuthError::Hash(_) => "internal",
        }
    }
    fn message(&self) -> String {
        match self {
            AuthError::Store(s) => s.message(),
            AuthError::Blocking(b) => b.message(),
            AuthError::Hash(m) => m.clone(),
            AuthError::Rejected => self.to_string(),
        }
    }
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
    /// Hashes of a random secret per cost, checked on failure paths so that each failure costs
    /// one bcrypt at the failure cost; the one at `cost` is made at start, others when needed.
    dummies: Mutex<HashMap<u32, Arc<String>>>,
    /// The failure cost of the accounts snapshot it was worked out for (the same `Arc` until
    /// a file changes).
    failure_cost: Mutex<Option<(Arc<Accounts>, u32)>>,
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
            dummies: Mutex::new(HashMap::from([(cost, Arc::new(dummy_hash))])),
            failure_cost: Mutex::new(None),
        })
    }

    /// What a failure must cost at least: `BCRYPT_COST`, or the costliest usable hash's cost
    /// when higher, capped at `MAX_FAILURE_COST`.
    pub fn failure_cost(&self, accounts: &Arc<Accounts>) -> u32 {
        let mut memo = lock(&self.failure_cost);
        if let Some((seen, cost)) = memo.as_ref()
            && Arc::ptr_eq(seen, accounts)
        {
            return *cost;
        }
        let costliest = accounts
            .htpasswd
            .entries()
            .values()
            .filter(|h| is_bcrypt(h))
            .filter_map(|h| bcrypt_cost(h))
            .max()
            .unwrap_or(0);
        let cost = self.cost.max(costliest.min(MAX_FAILURE_COST));
        *memo = Some((Arc::clone(accounts), cost));
        cost
    }

    /// A hash of a random secret at `cost`, made (once) off the async workers.
    async fn dummy(&self, cost: u32) -> Result<Arc<String>, AuthError> {
        if let Some(h) = lock(&self.dummies).get(&cost) {
            return Ok(Arc::clone(h));
        }
        let secret = hex::encode(self.key);
        let made = run_blocking(move || bcrypt::hash(secret, cost))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))?;
        let made = Arc::new(made);
        lock(&self.dummies).insert(cost, Arc::clone(&made));
        Ok(made)
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
    ///
    /// In cluster mode a failure is checked once more after re-reading the accounts: an
    /// account created or a password set through another replica a moment ago must work at
    /// once (a script creates a user, then logs in through the load balancer).
    pub async fn verify(&self, user: &str, password: &str) -> Result<Account, AuthError> {
        let accounts = self.store.current()?;
        match self.verify_against(&accounts, user, password).await {
            Err(AuthError::Rejected) => {}
            decided => return decided,
        }
        let store = Arc::clone(&self.store);
        let refreshed = run_blocking(move || store.refresh_now()).await??;
        let now = self.store.current()?;
        if !refreshed || Arc::ptr_eq(&now, &accounts) {
            return Err(AuthError::Rejected);
        }
        self.verify_against(&now, user, password).await
    }

    async fn verify_against(
        &self,
        accounts: &Arc<Accounts>,
        user: &str,
        password: &str,
    ) -> Result<Account, AuthError> {
        let accounts = Arc::clone(accounts);
        let failure_cost = self.failure_cost(&accounts);
        let found = usable(&accounts, user).filter(|_| password.len() <= MAX_PASSWORD_BYTES);
        let Some((account, hash)) = found else {
            self.spend_a_failure(password, failure_cost).await;
            return Err(AuthError::Rejected);
        };
        self.metrics.bcrypt_verify();
        let pw = password.to_string();
        let h = hash.clone();
        let ok = run_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false)).await?;
        if !ok {
            if bcrypt_cost(&hash).is_none_or(|c| c < failure_cost) {
                self.spend_a_failure(password, failure_cost).await;
            }
            return Err(AuthError::Rejected);
        }
        let hash = if bcrypt_cost(&hash) == Some(self.cost) {
            hash
        } else {
            self.rehash(user, password, hash).await
        };
        self.remember(user, hash, self.digest(user, password));
        Ok(account)
    }

    /// Replaces `old` with a hash of the same password at `BCRYPT_COST`, under the htpasswd lock
    /// and only if `old` is still the account's hash (a password change meanwhile wins). The
    /// token epoch does not move: the password is the same. Returns the hash now in force; a
    /// failure is logged and leaves the old hash, which still works.
    async fn rehash(&self, user: &str, password: &str, old: String) -> String {
        let new = match self.hash(password.to_string()).await {
            Ok(h) => h,
            Err(e) => {
                log::warn!("could not re-hash the password of {user:?}: {e}");
                return old;
            }
        };
        let store = Arc::clone(&self.store);
        let (name, was, now) = (user.to_string(), old.clone(), new.clone());
        let written = run_blocking(move || {
            store.modify(|accounts| {
                let still = accounts.htpasswd.get(&name) == Some(was.as_str());
                if still {
                    accounts.htpasswd.set(&name, &now);
                }
                Ok(still)
            })
        })
        .await;
        match written {
            Ok(Ok(true)) => {
                log::info!(
                    "re-hashed the password of {user:?} at BCRYPT_COST {} (was cost {})",
                    self.cost,
                    bcrypt_cost(&old).map_or("unknown".into(), |c| c.to_string())
                );
                new
            }
            // Changed meanwhile: the new hash in force is checked on the next login.
            Ok(Ok(false)) => old,
            Ok(Err(e)) => {
                log::warn!("could not re-hash the password of {user:?}: {e}");
                old
            }
            Err(e) => {
                log::warn!("could not re-hash the password of {user:?}: {e}");
                old
            }
        }
    }

    /// A new password's htpasswd hash at `BCRYPT_COST`, computed off the async workers.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let cost = self.cost;
        self.metrics.bcrypt_hash();
        run_blocking(move || bcrypt_hash(&password, cost))
            .await?
            .map_err(|e| AuthError::Hash(e.to_string()))
    }

    /// One bcrypt at `cost` whose answer is thrown away.
    async fn spend_a_failure(&self, password: &str, cost: u32) {
        let dummy = match self.dummy(cost).await {
            Ok(d) => d,
            Err(e) => {
                log::error!("no dummy hash at cost {cost}: {e}");
                return;
            }
        };
        self.metrics.bcrypt_verify();
        let pw = password.to_string();
        let _ = run_blocking(move || bcrypt::verify(pw, &dummy)).await;
    }

    /// The account a bearer token speaks for, if the token is genuine, unexpired, and the
    /// account is still enabled under the token epoch, password and role it was issued for.
    /// A refusal costs no bcrypt: tokens are not throttled (anyone could make the server spend
    /// one bcrypt per request), and a refusal tells nothing about accounts (a forged token fails
    /// its HMAC before any account is looked up).
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
        found.map(|(account, _)| account).ok_or(AuthError::Rejected)
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
