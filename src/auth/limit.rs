//! Throttling of failed authentications, per (client address, username) and per client address.
//! Only failures count, a success resets its pair, and a username is never locked out as such:
//! someone guessing alice's password from one address does not lock alice out from another.

use crate::sync::lock;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

pub const PAIR_FAILURES: u32 = 10;
pub const ADDRESS_FAILURES: u32 = 50;
pub const WINDOW: Duration = Duration::from_secs(300);
/// While a pair is throttled, at most one audit entry per this long.
const AUDIT_EVERY: Duration = Duration::from_secs(60);
/// Past this many tracked pairs, expired bookkeeping is dropped.
const PRUNE_AT: usize = 50_000;

type Pair = (IpAddr, String);

#[derive(Default)]
struct Book {
    /// Pairs with failures since their last success.
    failed: HashSet<Pair>,
    /// A success starts its pair afresh under a new generation, i.e. a new limiter key.
    generation: HashMap<Pair, u64>,
    next_generation: u64,
    pair_blocked: HashMap<Pair, Instant>,
    address_blocked: HashMap<IpAddr, Instant>,
    last_audited: HashMap<Pair, Instant>,
}

pub struct FailureLimiter {
    pairs: DefaultKeyedRateLimiter<(IpAddr, String, u64)>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    book: Mutex<Book>,
}

fn quota(failures: u32, window: Duration) -> Quota {
    let burst = NonZeroU32::new(failures.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(window / burst.get())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(PAIR_FAILURES, ADDRESS_FAILURES, WINDOW)
    }
}

impl FailureLimiter {
    pub fn new(pair_failures: u32, address_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter {
            pairs: DefaultKeyedRateLimiter::keyed(quota(pair_failures, window)),
            addresses: DefaultKeyedRateLimiter::keyed(quota(address_failures, window)),
            clock: DefaultClock::default(),
            book: Mutex::new(Book::default()),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        lock(&self.book)
    }

    /// How long this pair (or its address) must wait, if it is throttled now.
    pub fn blocked(&self, ip: IpAddr, user: &str) -> Option<Duration> {
        let now = Instant::now();
        let book = self.book();
        let pair = book.pair_blocked.get(&(ip, user.to_string())).copied();
        let address = book.address_blocked.get(&ip).copied();
        [pair, address]
            .into_iter()
            .flatten()
            .filter(|until| *until > now)
            .max()
            .map(|until| until - now)
    }

    pub fn record_failure(&self, ip: IpAddr, user: &str) {
        let pair = (ip, user.to_string());
        let mut book = self.book();
        book.failed.insert(pair.clone());
        let generation = book.generation.get(&pair).copied().unwrap_or(0);
        let now = Instant::now();
        if let Err(not_until) = self.pairs.check_key(&(ip, user.to_string(), generation)) {
            let wait = not_until.wait_time_from(self.clock.now());
            book.pair_blocked.insert(pair.clone(), now + wait);
        }
        if let Err(not_until) = self.addresses.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            book.address_blocked.insert(ip, now + wait);
        }
        if book.failed.len() > PRUNE_AT {
            book.pair_blocked.retain(|_, until| *until > now);
            book.address_blocked.retain(|_, until| *until > now);
            book.last_audited
                .retain(|_, at| now.duration_since(*at) < AUDIT_EVERY);
            book.generation.clear();
            book.failed.clear();
            self.pairs.retain_recent();
            self.addresses.retain_recent();
        }
    }

    pub fn record_success(&self, ip: IpAddr, user: &str) {
        let pair = (ip, user.to_string());
        let mut book = self.book();
        if book.failed.remove(&pair) {
            book.next_generation += 1;
            let g = book.next_generation;
            book.generation.insert(pair.clone(), g);
            book.pair_blocked.remove(&pair);
        }
    }

    /// Whether a throttled attempt of this pair should be written to the audit log now.
    pub fn audit_throttled(&self, ip: IpAddr, user: &str) -> bool {
        let now = Instant::now();
        let mut book = self.book();
        let pair = (ip, user.to_string());
        match book.last_audited.get(&pair) {
            Some(at) if now.duration_since(*at) < AUDIT_EVERY => false,
            _ => {
                book.last_audited.insert(pair, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_pair_is_throttled_after_its_failures_and_others_are_not() {
        let l = FailureLimiter::default();
        for _ in 0..PAIR_FAILURES {
            assert_eq!(l.blocked(A, "alice"), None);
            l.record_failure(A, "alice");
        }
        l.record_failure(A, "alice");
        let wait = l.blocked(A, "alice").expect("throttled");
        assert!(wait > Duration::from_secs(1) && wait <= WINDOW, "{wait:?}");
        assert_eq!(
            l.blocked(B, "alice"),
            None,
            "alice from elsewhere is not locked out"
        );
        assert_eq!(l.blocked(A, "bob"), None);
    }

    #[test]
    fn a_success_resets_its_pair() {
        let l = FailureLimiter::default();
        for _ in 0..PAIR_FAILURES - 1 {
            l.record_failure(A, "alice");
        }
        l.record_success(A, "alice");
        for _ in 0..PAIR_FAILURES {
            l.record_failure(A, "alice");
        }
        assert_eq!(l.blocked(A, "alice"), None);
    }

    #[test]
    fn an_address_spraying_usernames_is_throttled() {
        let l = FailureLimiter::default();
        for i in 0..=ADDRESS_FAILURES {
            l.record_failure(A, &format!("user{i}"));
        }
        assert!(l.blocked(A, "someone-new").is_some());
        assert_eq!(l.blocked(B, "someone-new"), None);
    }

    #[test]
    fn throttled_attempts_are_audited_once_a_minute() {
        let l = FailureLimiter::default();
        assert!(l.audit_throttled(A, "alice"));
        assert!(!l.audit_throttled(A, "alice"));
        assert!(l.audit_throttled(B, "alice"));
    }
}
