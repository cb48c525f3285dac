//! Throttling of failed authentications, per (client address, username) and per client address.
//!
//! A slot is reserved *before* a password is checked and given back only when the check
//! succeeds, so however many attempts arrive at once, at most `PAIR_FAILURES` per pair and
//! `ADDRESS_FAILURES` per address are ever evaluated in `WINDOW`: the next one is refused
//! without a bcrypt. The window is a log of failure times rather than a token bucket
//! (governor's GCRA), because a bucket can neither give a reservation back nor keep its promise
//! over a whole window (it refills one cell every `WINDOW / limit`).
//!
//! A success clears its pair, and a username is never locked out as such: someone guessing
//! alice's password from one address does not lock alice out from another.
//!
//! Memory is bounded whatever is sent: a pair is keyed by a digest of the first
//! `NAME_KEY_BYTES` bytes of the username (a valid one is at most 64 characters; a 60 KB name
//! costs no more than a short one), and past `MAX_TRACKED` keys the least recently active ones
//! are forgotten.

use super::shared_failures::{SharedFailures, spawn_refresh};
use crate::blocking::run_blocking;
use crate::error::ApiError;
use crate::store::Database;
use crate::sync::lock;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PAIR_FAILURES: usize = 10;
pub const ADDRESS_FAILURES: usize = 50;
pub const WINDOW: Duration = Duration::from_secs(300);
/// While a pair is throttled, at most one audit entry per this long.
const AUDIT_EVERY: Duration = Duration::from_secs(60);
/// While throttled, an address spraying a new username on each attempt writes at most this
/// many entries per `AUDIT_EVERY`, whatever the names.
const AUDIT_PER_ADDRESS: u32 = 10;
/// Past this many tracked pairs (or addresses), expired bookkeeping is dropped, and if that is
/// not enough the least recently active half is forgotten: it bounds memory against an attacker
/// with many addresses and names. Each key is a few hundred bytes at most.
pub const MAX_TRACKED: usize = 50_000;
pub use super::failure_key::{NAME_KEY_BYTES, Throttled};
use super::failure_key::{NameKey, name_key};
type Pair = (IpAddr, NameKey);

/// Failures still inside the window, plus reservations whose check has not finished.
#[derive(Default)]
struct Log {
    failures: VecDeque<Instant>,
    pending: usize,
}

impl Log {
    fn expire(&mut self, now: Instant, window: Duration) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.failures.pop_front();
        }
    }

    fn used(&self) -> usize {
        self.failures.len() + self.pending
    }

    /// How long until a slot frees up, when all are taken; a pending check frees its slot
    /// when it ends, so a second is the honest estimate then.
    fn wait(&self, now: Instant, window: Duration) -> Duration {
        self.failures
            .front()
            .map_or(Duration::from_secs(1), |t| window - now.duration_since(*t))
    }

    fn idle(&self) -> bool {
        self.failures.is_empty() && self.pending == 0
    }

    /// When this key last saw a failure; keys with a check in flight are never forgotten.
    fn last_active(&self) -> Option<Instant> {
        (self.pending == 0).then(|| self.failures.back().copied())?
    }
}

#[derive(Default)]
struct Book {
    pairs: HashMap<Pair, Log>,
    addresses: HashMap<IpAddr, Log>,
    last_audited: HashMap<Pair, Instant>,
    /// Throttled entries written per address in the current minute: (minute start, count).
    audited_per_address: HashMap<IpAddr, (Instant, u32)>,
}

pub struct FailureLimiter {
    pair_limit: usize,
    address_limit: usize,
    window: Duration,
    max_tracked: usize,
    book: Mutex<Book>,
    /// Cluster mode: the counts every replica shares.
    shared: Option<Arc<SharedFailures>>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(PAIR_FAILURES, ADDRESS_FAILURES, WINDOW)
    }
}

/// A reserved failure slot. Dropped without `succeeded`, it counts as a failure, so a client
/// that hangs up mid-check gains nothing.
pub struct Reservation {
    limiter: Arc<FailureLimiter>,
    pair: Pair,
    settled: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Settled {
    Failed,
    Succeeded,
    /// The check could not run (an unreadable htpasswd): nothing was learnt, nothing counts.
    NotChecked,
}

impl Reservation {
    /// The check passed: the slot is given back and the pair starts afresh.
    pub fn succeeded(mut self) {
        self.settle(Settled::Succeeded);
    }

    pub fn failed(mut self) {
        self.settle(Settled::Failed);
    }

    pub fn not_checked(mut self) {
        self.settle(Settled::NotChecked);
    }

    fn settle(&mut self, how: Settled) {
        if !self.settled {
            self.settled = true;
            self.limiter.settle(&self.pair, how);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle(Settled::Failed);
    }
}

impl FailureLimiter {
    pub fn new(pair_limit: usize, address_limit: usize, window: Duration) -> FailureLimiter {
        FailureLimiter {
            pair_limit,
            address_limit,
            window,
            max_tracked: MAX_TRACKED,
            book: Mutex::new(Book::default()),
            shared: None,
        }
    }

    /// Cluster mode: failures also count in `db`'s `auth_failures`, across replicas (a
    /// background thread keeps this replica's hint of them current).
    pub fn shared_with(mut self, db: Arc<Database>) -> FailureLimiter {
        let shared = Arc::new(SharedFailures::new(
            db,
            self.pair_limit,
            self.address_limit,
            self.window,
            self.max_tracked,
        ));
        spawn_refresh(Arc::clone(&shared));
        self.shared = Some(shared);
        self
    }

    /// Cluster mode, before a credential check (remembered passwords included): how long to
    /// wait when the pair or the address is at its limit across replicas. Costs a round trip
    /// only for a key that has failures somewhere; nothing in files mode.
    pub async fn throttled_anywhere(
        &self,
        ip: IpAddr,
        user: &str,
    ) -> Result<Option<Throttled>, ApiError> {
        let Some(shared) = self.shared.clone().filter(|s| s.flagged(ip, user)) else {
            return Ok(None);
        };
        let user = user.to_string();
        Ok(run_blocking(move || shared.throttled(ip, &user)).await??)
    }

    /// Cluster mode, after a check: counts a failure where every replica sees it, or starts
    /// a succeeding pair afresh there. A database that cannot be written is logged: the local
    /// count still holds.
    pub async fn settled_anywhere(&self, ip: IpAddr, user: &str, failed: bool) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        if !failed && !shared.flagged(ip, user) {
            return;
        }
        let user = user.to_string();
        let result = run_blocking(move || {
            if failed {
                shared.failed(ip, &user)
            } else {
                shared.succeeded(ip, &user)
            }
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("cluster mode: recording a login's outcome: {e}"),
            Err(e) => log::warn!("cluster mode: recording a login's outcome: {e}"),
        }
    }

    /// The same limiter tracking at most `max_tracked` pairs and addresses (tests use a small
    /// table).
    pub fn with_max_tracked(mut self, max_tracked: usize) -> FailureLimiter {
        self.max_tracked = max_tracked.max(2);
        self
    }

    /// How many pairs, addresses and audit stamps are tracked now.
    pub fn tracked(&self) -> usize {
        let book = lock(&self.book);
        book.pairs.len()
            + book.addresses.len()
            + book.last_audited.len()
            + book.audited_per_address.len()
    }

    /// Takes a slot for one credential check of `user` from `ip`, or says how long to wait.
    pub fn reserve(self: &Arc<Self>, ip: IpAddr, user: &str) -> Result<Reservation, Throttled> {
        let now = Instant::now();
        let pair = (ip, name_key(user));
        let mut guard = lock(&self.book);
        let book: &mut Book = &mut guard;
        if book.pairs.len() >= self.max_tracked || book.addresses.len() >= self.max_tracked {
            prune(book, now, self.window, self.max_tracked);
        }
        let window = self.window;
        let pair_log = book.pairs.entry(pair).or_default();
        pair_log.expire(now, window);
        let address_log = book.addresses.entry(ip).or_default();
        address_log.expire(now, window);
        let pair_wait = (pair_log.used() >= self.pair_limit).then(|| pair_log.wait(now, window));
        let address_wait =
            (address_log.used() >= self.address_limit).then(|| address_log.wait(now, window));
        if let Some(wait) = pair_wait.into_iter().chain(address_wait).max() {
            return Err(Throttled(wait));
        }
        pair_log.pending += 1;
        address_log.pending += 1;
        drop(guard);
        Ok(Reservation {
            limiter: Arc::clone(self),
            pair,
            settled: false,
        })
    }

    /// How long this pair must wait, if a check now would be refused. `reserve` decides for
    /// real; this lets a remembered password be refused too while its pair is throttled.
    pub fn throttled(&self, ip: IpAddr, user: &str) -> Option<Throttled> {
        let now = Instant::now();
        let mut guard = lock(&self.book);
        let book: &mut Book = &mut guard;
        let window = self.window;
        let mut waits = Vec::with_capacity(2);
        if let Some(log) = book.pairs.get_mut(&(ip, name_key(user))) {
            log.expire(now, window);
            if log.used() >= self.pair_limit {
                waits.push(log.wait(now, window));
            }
        }
        if let Some(log) = book.addresses.get_mut(&ip) {
            log.expire(now, window);
            if log.used() >= self.address_limit {
                waits.push(log.wait(now, window));
            }
        }
        waits.into_iter().max().map(Throttled)
    }

    fn settle(&self, pair: &Pair, how: Settled) {
        let now = Instant::now();
        let mut book = lock(&self.book);
        if let Some(log) = book.addresses.get_mut(&pair.0) {
            log.pending = log.pending.saturating_sub(1);
            if how == Settled::Failed {
                log.failures.push_back(now);
            }
        }
        if let Some(log) = book.pairs.get_mut(pair) {
            log.pending = log.pending.saturating_sub(1);
            match how {
                Settled::Failed => log.failures.push_back(now),
                // A success starts the pair afresh; the address keeps its count.
                Settled::Succeeded => log.failures.clear(),
                Settled::NotChecked => {}
            }
        }
    }

    /// Whether a throttled attempt of this pair should be written to the audit log now.
    pub fn audit_throttled(&self, ip: IpAddr, user: &str) -> bool {
        let now = Instant::now();
        let mut guard = lock(&self.book);
        let book: &mut Book = &mut guard;
        if book.last_audited.len() >= self.max_tracked
            || book.audited_per_address.len() >= self.max_tracked
        {
            prune(book, now, self.window, self.max_tracked);
        }
        let pair = (ip, name_key(user));
        if book
            .last_audited
            .get(&pair)
            .is_some_and(|at| now.duration_since(*at) < AUDIT_EVERY)
        {
            return false;
        }
        let minute = book.audited_per_address.entry(ip).or_insert((now, 0));
        if now.duration_since(minute.0) >= AUDIT_EVERY {
            *minute = (now, 0);
        }
        if minute.1 >= AUDIT_PER_ADDRESS {
            return false;
        }
        minute.1 += 1;
        book.last_audited.insert(pair, now);
        true
    }
}

/// Drops what has expired; a table still at `max` afterwards loses its least recently active
/// half, so a flood of fresh keys costs one sort per `max / 2` new keys, not one per key.
fn prune(book: &mut Book, now: Instant, window: Duration, max: usize) {
    for log in book.pairs.values_mut() {
        log.expire(now, window);
    }
    for log in book.addresses.values_mut() {
        log.expire(now, window);
    }
    book.pairs.retain(|_, l| !l.idle());
    book.addresses.retain(|_, l| !l.idle());
    book.last_audited
        .retain(|_, at| now.duration_since(*at) < AUDIT_EVERY);
    book.audited_per_address
        .retain(|_, (start, _)| now.duration_since(*start) < AUDIT_EVERY);
    forget_oldest(&mut book.pairs, max, Log::last_active);
    forget_oldest(&mut book.addresses, max, Log::last_active);
    forget_oldest(&mut book.last_audited, max, |at| Some(*at));
    forget_oldest(&mut book.audited_per_address, max, |(start, _)| {
        Some(*start)
    });
}

/// Keeps the newest `max / 2` entries of a table that has reached `max`. Entries without a time
/// (a check in flight) are kept: their reservation settles them.
fn forget_oldest<K: std::hash::Hash + Eq + Copy, V>(
    table: &mut HashMap<K, V>,
    max: usize,
    active: impl Fn(&V) -> Option<Instant>,
) {
    if table.len() < max {
        return;
    }
    let mut times: Vec<(Instant, K)> = table
        .iter()
        .filter_map(|(k, v)| active(v).map(|t| (t, *k)))
        .collect();
    let excess = table.len().saturating_sub(max / 2).min(times.len());
    if excess == 0 {
        return;
    }
    times.select_nth_unstable_by_key(excess - 1, |(t, _)| *t);
    for (_, k) in &times[..excess] {
        table.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn limiter() -> Arc<FailureLimiter> {
        Arc::new(FailureLimiter::default())
    }

    #[test]
    fn the_eleventh_check_of_a_pair_is_refused_and_others_are_not() {
        let l = limiter();
        for _ in 0..PAIR_FAILURES {
            l.reserve(A, "alice").expect("a slot").failed();
        }
        let Throttled(wait) = l.reserve(A, "alice").err().expect("throttled");
        assert!(
            wait > Duration::from_secs(250) && wait <= WINDOW,
            "{wait:?}"
        );
        assert!(
            l.reserve(B, "alice").is_ok(),
            "alice from elsewhere is not locked out"
        );
        assert!(l.reserve(A, "bob").is_ok());
    }

    #[test]
    fn concurrent_checks_cannot_exceed_the_limit() {
        let l = limiter();
        let held: Vec<_> = (0..PAIR_FAILURES)
            .map(|_| l.reserve(A, "alice").expect("a slot"))
            .collect();
        assert!(
            l.reserve(A, "alice").is_err(),
            "pending checks hold their slots"
        );
        drop(held);
        assert!(
            l.reserve(A, "alice").is_err(),
            "abandoned checks count as failures"
        );
    }

    #[test]
    fn a_success_gives_its_slot_back_and_resets_its_pair() {
        let l = limiter();
        for _ in 0..PAIR_FAILURES - 1 {
            l.reserve(A, "alice").unwrap().failed();
        }
        l.reserve(A, "alice").unwrap().succeeded();
        for _ in 0..PAIR_FAILURES {
            l.reserve(A, "alice").expect("a fresh pair").failed();
        }
        assert!(l.reserve(A, "alice").is_err());
    }

    #[test]
    fn an_address_spraying_usernames_is_refused_at_the_fifty_first() {
        let l = limiter();
        for i in 0..ADDRESS_FAILURES {
            l.reserve(A, &format!("user{i}"))
                .expect("within the address limit")
                .failed();
        }
        assert!(l.reserve(A, "someone-new").is_err());
        assert!(l.reserve(B, "someone-new").is_ok());
    }

    #[test]
    fn failures_leave_the_window() {
        let l = Arc::new(FailureLimiter::new(2, 50, Duration::from_millis(50)));
        l.reserve(A, "al").unwrap().failed();
        l.reserve(A, "al").unwrap().failed();
        assert!(l.reserve(A, "al").is_err());
        std::thread::sleep(Duration::from_millis(80));
        assert!(l.reserve(A, "al").is_ok());
    }

    #[test]
    fn throttled_attempts_are_audited_once_a_minute() {
        let l = limiter();
        assert!(l.audit_throttled(A, "alice"));
        assert!(!l.audit_throttled(A, "alice"));
        assert!(l.audit_throttled(B, "alice"));
    }

    #[test]
    fn an_address_spraying_names_while_throttled_writes_a_bounded_number_of_entries() {
        let l = limiter();
        let written = (0..500)
            .filter(|i| l.audit_throttled(A, &format!("spray{i}")))
            .count();
        assert_eq!(written, AUDIT_PER_ADDRESS as usize);
        assert!(
            l.audit_throttled(B, "spray1"),
            "another address is not affected"
        );
    }

    #[test]
    fn names_are_told_apart_by_their_first_64_bytes_only() {
        let l = limiter();
        let long = "n".repeat(60_000);
        for i in 0..PAIR_FAILURES {
            // Each attempt a different 60 KB name; all share their first 64 bytes.
            l.reserve(A, &format!("{long}{i}"))
                .expect("a slot")
                .failed();
        }
        assert!(
            l.reserve(A, &"n".repeat(NAME_KEY_BYTES)).is_err(),
            "one pair, however the tail varies"
        );
        assert!(l.reserve(A, &"n".repeat(NAME_KEY_BYTES - 1)).is_ok());
    }

    #[test]
    fn the_tables_stay_bounded_under_many_long_names_from_many_addresses() {
        let max = 200;
        let l = Arc::new(FailureLimiter::default().with_max_tracked(max));
        let long = "x".repeat(60_000);
        for i in 0..5_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i / 3));
            let name = format!("{i}{long}");
            l.reserve(ip, &name).expect("a slot").failed();
            l.audit_throttled(ip, &name);
            // Pairs, addresses, and the two audit tables, each at most `max`.
            assert!(l.tracked() <= 4 * max, "{} keys after {i}", l.tracked());
        }
        // The newest address is still throttled as it should be.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + 4_999 / 3));
        assert!(l.throttled(newest, &format!("4999{long}")).is_none());
        for _ in 0..PAIR_FAILURES {
            l.reserve(newest, "victim").expect("a slot").failed();
        }
        assert!(l.reserve(newest, "victim").is_err());
    }
}
