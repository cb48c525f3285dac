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
/// Past this many tracked keys, expired bookkeeping is dropped; it bounds memory against an
/// attacker with many addresses.
const PRUNE_AT: usize = 50_000;

type Pair = (IpAddr, String);

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
    book: Mutex<Book>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(PAIR_FAILURES, ADDRESS_FAILURES, WINDOW)
    }
}

/// Refused: the caller must wait this long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled(pub Duration);

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
            book: Mutex::new(Book::default()),
        }
    }

    /// Takes a slot for one credential check of `user` from `ip`, or says how long to wait.
    pub fn reserve(self: &Arc<Self>, ip: IpAddr, user: &str) -> Result<Reservation, Throttled> {
        let now = Instant::now();
        let pair = (ip, user.to_string());
        let mut guard = lock(&self.book);
        let book: &mut Book = &mut guard;
        if book.pairs.len() + book.addresses.len() > PRUNE_AT {
            prune(book, now, self.window);
        }
        let window = self.window;
        let pair_log = book.pairs.entry(pair.clone()).or_default();
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
        if let Some(log) = book.pairs.get_mut(&(ip, user.to_string())) {
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
        let mut book = lock(&self.book);
        let pair = (ip, user.to_string());
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

fn prune(book: &mut Book, now: Instant, window: Duration) {
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
}
