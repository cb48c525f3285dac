//! Failed logins counted across replicas (cluster mode): the `auth_failures` table, keyed by
//! digests of the (address, username) pair and of the address, so the limits of
//! [`super::limit`] hold whichever replica a guess reaches.
//!
//! Cheap for everyone who does not fail: a replica keeps a hint of the keys that have failures
//! in the table (its own, and every other replica's, read every [`REFRESH_EVERY`]); only an
//! attempt of such a key pays a round trip before its check, and only a failure (or a success
//! of a key with failures) one after it. A clean key's login touches the database not at all.
//!
//! The shared window is simpler than the local log: failures count while they are less than
//! [`super::limit::WINDOW`] apart, and a key at its limit waits until a window after its latest
//! failure. Each replica still bounds concurrent checks by itself, so a burst spread over N
//! replicas at the very same moment may get up to N times the limit checked before the counts
//! meet; sequential guesses stop at the limit exactly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::failure_key::{Throttled, name_key};
use crate::store::{Database, DatabaseError};
use crate::sync::lock;

/// How often a replica learns which keys failed elsewhere.
pub const REFRESH_EVERY: Duration = Duration::from_millis(200);
/// How often rows past the window are deleted.
const CLEAN_EVERY: Duration = Duration::from_secs(60);
/// Rows read per refresh at most; an attack that fails faster than this is still counted in
/// the table, and its keys are learnt at their next failure here.
const MAX_PER_REFRESH: i64 = 10_000;

pub struct SharedFailures {
    db: Arc<Database>,
    pair_limit: usize,
    address_limit: usize,
    window: Duration,
    max_hinted: usize,
    /// Keys with failures in the table, and when this replica learnt of the latest.
    hint: Mutex<HashMap<String, Instant>>,
    /// The latest `last_at` read (database clock, epoch milliseconds).
    read_up_to: Mutex<Option<i64>>,
}

/// The table's keys of one attempt: the pair's and the address's.
fn keys(ip: IpAddr, user: &str) -> [String; 2] {
    let ip_bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let mut pair = Sha256::new();
    pair.update(&ip_bytes);
    pair.update(name_key(user));
    [
        format!("p:{}", hex::encode(&pair.finalize()[..16])),
        format!("a:{}", hex::encode(&Sha256::digest(&ip_bytes)[..16])),
    ]
}

impl SharedFailures {
    pub fn new(
        db: Arc<Database>,
        pair_limit: usize,
        address_limit: usize,
        window: Duration,
        max_hinted: usize,
    ) -> SharedFailures {
        SharedFailures {
            db,
            pair_limit,
            address_limit,
            window,
            max_hinted,
            hint: Mutex::default(),
            read_up_to: Mutex::default(),
        }
    }

    fn hinted(&self, key: &str) -> bool {
        lock(&self.hint)
            .get(key)
            .is_some_and(|t| t.elapsed() < self.window)
    }

    fn note(&self, key: &str) {
        let mut hint = lock(&self.hint);
        if hint.len() >= self.max_hinted {
            let window = self.window;
            hint.retain(|_, t| t.elapsed() < window);
            if hint.len() >= self.max_hinted {
                // Forgetting a key costs only its round trip until its next failure here.
                hint.clear();
            }
        }
        hint.insert(key.to_string(), Instant::now());
    }

    /// Whether this attempt's pair or address has failures anywhere, as far as known.
    pub fn flagged(&self, ip: IpAddr, user: &str) -> bool {
        keys(ip, user).iter().any(|k| self.hinted(k))
    }

    /// How long this attempt must wait, when its pair or address is at its limit across the
    /// cluster. Blocking (one round trip).
    pub fn throttled(&self, ip: IpAddr, user: &str) -> Result<Option<Throttled>, DatabaseError> {
        let [pair, address] = keys(ip, user);
        let rows = self.db.connection()?.query(
            "SELECT key, failures,
                    (extract(epoch FROM last_at + make_interval(secs => $2) - now()) * 1000)::bigint
             FROM auth_failures
             WHERE key = ANY($1) AND last_at > now() - make_interval(secs => $2)",
            &[&vec![pair.clone(), address], &self.window.as_secs_f64()],
        )?;
        let wait = rows
            .iter()
            .filter_map(|row| {
                let (key, failures, left_ms): (String, i32, i64) =
                    (row.get(0), row.get(1), row.get(2));
                let limit = if key == pair {
                    self.pair_limit
                } else {
                    self.address_limit
                };
                (usize::try_from(failures).unwrap_or(0) >= limit)
                    .then(|| Duration::from_millis(left_ms.max(1000) as u64))
            })
            .max();
        Ok(wait.map(Throttled))
    }

    /// Counts one failure of the pair and of the address. Blocking (one round trip).
    pub fn failed(&self, ip: IpAddr, user: &str) -> Result<(), DatabaseError> {
        let keys = keys(ip, user);
        self.db.connection()?.execute(
            "INSERT INTO auth_failures (key, failures, last_at)
             SELECT k, 1, now() FROM unnest($1::text[]) AS k
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE
                     WHEN auth_failures.last_at < now() - make_interval(secs => $2) THEN 1
                     ELSE auth_failures.failures + 1 END,
                 last_at = now()",
            &[&keys.to_vec(), &self.window.as_secs_f64()],
        )?;
        for k in &keys {
            self.note(k);
        }
        Ok(())
    }

    /// A success starts its pair afresh (the address keeps its count). A round trip only
    /// when the pair has failures. Blocking.
    pub fn succeeded(&self, ip: IpAddr, user: &str) -> Result<(), DatabaseError> {
        let [pair, _] = keys(ip, user);
        if !self.hinted(&pair) {
            return Ok(());
        }
        self.db
            .connection()?
            .execute("DELETE FROM auth_failures WHERE key = $1", &[&pair])?;
        lock(&self.hint).remove(&pair);
        Ok(())
    }

    /// Learns the keys that failed since the last look (on any replica), looking 2 s further
    /// back than the latest seen: a failure's `last_at` is its transaction's start, and it may
    /// commit after a later one. Blocking.
    fn refresh(&self) -> Result<(), DatabaseError> {
        let since = *lock(&self.read_up_to);
        let rows = self.db.connection()?.query(
            "SELECT key, (extract(epoch FROM last_at) * 1000)::bigint AS at
             FROM auth_failures
             WHERE last_at >= COALESCE(to_timestamp(($1::float8 - 2000) / 1000),
                                       now() - make_interval(secs => $2))
             ORDER BY last_at LIMIT $3",
            &[
                &since.map(|ms| ms as f64),
                &self.window.as_secs_f64(),
                &MAX_PER_REFRESH,
            ],
        )?;
        let mut latest = since;
        for row in &rows {
            let (key, at): (String, i64) = (row.get(0), row.get(1));
            self.note(&key);
            latest = Some(latest.map_or(at, |l| l.max(at)));
        }
        *lock(&self.read_up_to) = latest;
        Ok(())
    }

    fn clean(&self) -> Result<(), DatabaseError> {
        self.db.connection()?.execute(
            "DELETE FROM auth_failures WHERE last_at < now() - make_interval(secs => $1)",
            &[&self.window.as_secs_f64()],
        )?;
        Ok(())
    }
}

/// Refreshes the hint every [`REFRESH_EVERY`] and deletes expired rows every minute, until
/// the process ends.
pub fn spawn_refresh(shared: Arc<SharedFailures>) {
    let spawned = std::thread::Builder::new()
        .name("auth-failures-refresh".into())
        .spawn(move || {
            let mut cleaned = Instant::now();
            let mut failing = false;
            loop {
                std::thread::sleep(REFRESH_EVERY);
                let mut result = shared.refresh();
                if result.is_ok() && cleaned.elapsed() >= CLEAN_EVERY {
                    cleaned = Instant::now();
                    result = shared.clean();
                }
                match result {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        log::warn!("cluster mode: reading failed logins: {e}");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cluster mode: cannot start reading failed logins: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_pairs_and_addresses_apart_and_hide_both() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let [pa, aa] = keys(a, "alice");
        let [pb, ab] = keys(b, "alice");
        assert!(pa.starts_with("p:") && aa.starts_with("a:"));
        assert_ne!(pa, pb);
        assert_ne!(aa, ab);
        assert_eq!(keys(a, "alice")[0], pa, "stable");
        assert_ne!(keys(a, "bob")[0], pa);
        assert_eq!(keys(a, "bob")[1], aa, "one address key per address");
        assert!(!pa.contains("alice") && !aa.contains("10.0.0.1"));
    }
}
