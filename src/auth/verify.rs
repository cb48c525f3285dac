//! Checks Basic credentials against the shared htpasswd. Successful checks are remembered so a
//! script's repeated calls do not each pay a bcrypt; the memory is keyed by the hash in force,
//! so a password change, disable or delete invalidates it without any bookkeeping.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use chrono::Utc;

use super::token::{TokenSigner, fingerprint};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::users::htpasswd::is_bcrypt;
use crate::users::model::Role;
use crate::users::store::UserStore;

/// Beyond this many remembered accounts the memory starts over; it is only a cache.
const MAX_CACHED: usize = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub username: String,
    pub role: Role,
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
    cache: Mutex<HashMap<String, Remembered>>,
    /// Verified against for unknown users so that they cost the same time as known ones.
    dummy_hash: String,
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

    fn remembered(&self, user: &str, hash: &str, digest: &[u8; 32]) -> bool {
        let cache = lock(&self.cache);
        cache
            .get(user)
            .is_some_and(|r| r.hash == hash && bool::from(r.password_digest.ct_eq(digest)))
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

    /// The account these credentials belong to, or `Unauthorized`. Disabled accounts have no
    /// htpasswd line and so fail like unknown ones; the service account cannot use the API.
    pub async fn verify(&self, user: &str, password: &str) -> Result<Account, ApiError> {
        let accounts = self.store.current()?;
        let view = accounts
            .view(user)
            .filter(|v| !v.disabled && v.role != Role::Service);
        let hash = accounts
            .htpasswd
            .get(user)
            .filter(|h| is_bcrypt(h))
            .map(str::to_string);
        let (Some(view), Some(hash)) = (view, hash) else {
            self.metrics.bcrypt_verify();
            let dummy = self.dummy_hash.clone();
            let pw = password.to_string();
            let _ = run_blocking(move || bcrypt::verify(pw, &dummy)).await;
            return Err(ApiError::Unauthorized);
        };
        let digest = self.digest(user, password);
        if self.remembered(user, &hash, &digest) {
            return Ok(Account {
                username: view.username,
                role: view.role,
            });
        }
        self.metrics.bcrypt_verify();
        let pw = password.to_string();
        let h = hash.clone();
        let ok = run_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false)).await?;
        if !ok {
            return Err(ApiError::Unauthorized);
        }
        self.remember(user, hash, digest);
        Ok(Account {
            username: view.username,
            role: view.role,
        })
    }
}

impl Verifier {
    /// The account a bearer token speaks for, if the token is genuine, unexpired, and the
    /// account is still enabled with the same password and role it had when the token was made.
    pub fn verify_bearer(&self, signer: &TokenSigner, token: &str) -> Result<Account, ApiError> {
        let claims = signer
            .check(token, Utc::now())
            .ok_or(ApiError::Unauthorized)?;
        let accounts = self.store.current()?;
        let view = accounts
            .view(&claims.sub)
            .filter(|v| !v.disabled && v.role != Role::Service)
            .ok_or(ApiError::Unauthorized)?;
        let hash = accounts
            .htpasswd
            .get(&claims.sub)
            .ok_or(ApiError::Unauthorized)?;
        if fingerprint(hash, view.role) != claims.ver {
            return Err(ApiError::Unauthorized);
        }
        Ok(Account {
            username: view.username,
            role: view.role,
        })
    }
}

/// Runs CPU-heavy or blocking work (bcrypt, locked file writes) off the async workers.
pub async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    actix_web::web::block(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))
}
