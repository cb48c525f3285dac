//! The write freeze that makes garbage collection safe while the registry serves: while it
//! holds, `GET /token` grants no `push` or `delete`, and API writes that touch the registry
//! answer 409 `maintenance`. It also remembers how long write-capable registry tokens already
//! handed out stay valid, and counts the API writes under way, so a job knows how long to wait
//! before it may mark and sweep: a tag delete that passed its check just before the freeze may
//! still be talking to the registry.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::sync::lock;

/// registry:2 accepts a token this long past its `exp` (docs/registry-facts.md, "Token auth").
pub const REGISTRY_LEEWAY_SECS: i64 = 60;

#[derive(Default)]
struct State {
    frozen: bool,
    /// The latest `exp` of any token issued with `push` or `delete`.
    writes_valid_until: Option<DateTime<Utc>>,
    /// API writes to the registry under way (none can begin while frozen).
    writes_in_flight: usize,
}

/// One API write to the registry under way; ends (and stops holding a job back) on drop.
pub struct WriteInFlight<'a> {
    freeze: &'a WriteFreeze,
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.freeze.state);
        s.writes_in_flight = s.writes_in_flight.saturating_sub(1);
    }
}

#[derive(Default)]
pub struct WriteFreeze {
    state: Mutex<State>,
}

impl WriteFreeze {
    pub fn is_frozen(&self) -> bool {
        lock(&self.state).frozen
    }

    /// Starts an API write to the registry, or `None` while frozen. Checked and counted under
    /// one lock, so a write either counts before a freeze starts or is refused after it.
    pub fn begin_write(&self) -> Option<WriteInFlight<'_>> {
        let mut s = lock(&self.state);
        if s.frozen {
            return None;
        }
        s.writes_in_flight += 1;
        Some(WriteInFlight { freeze: self })
    }

    pub fn writes_in_flight(&self) -> usize {
        lock(&self.state).writes_in_flight
    }

    /// Called by the token server for every token that grants `push` or `delete`.
    pub fn note_write_token(&self, expires_at: DateTime<Utc>) {
        let mut s = lock(&self.state);
        if s.writes_valid_until.is_none_or(|t| t < expires_at) {
            s.writes_valid_until = Some(expires_at);
        }
    }

    /// Starts the freeze; returns until when writes already granted may still reach the
    /// registry (the latest write-token expiry plus the registry's leeway), if any is left.
    pub fn freeze(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut s = lock(&self.state);
        s.frozen = true;
        s.writes_valid_until
            .map(|t| t + chrono::Duration::seconds(REGISTRY_LEEWAY_SECS))
            .filter(|t| *t > now)
    }

    pub fn thaw(&self) {
        lock(&self.state).frozen = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_waits_for_the_latest_write_token_plus_leeway() {
        let f = WriteFreeze::default();
        let now = Utc::now();
        assert_eq!(f.freeze(now), None, "no write token was ever issued");
        f.thaw();
        f.note_write_token(now + chrono::Duration::seconds(300));
        f.note_write_token(now + chrono::Duration::seconds(100));
        let until = f.freeze(now).expect("tokens outstanding");
        assert_eq!((until - now).num_seconds(), 360);
        assert!(f.is_frozen());
        assert_eq!(f.freeze(now + chrono::Duration::seconds(400)), None);
        f.thaw();
        assert!(!f.is_frozen());
    }

    #[test]
    fn a_write_counts_until_it_ends_and_none_starts_while_frozen() {
        let f = WriteFreeze::default();
        let w = f.begin_write().expect("not frozen");
        assert_eq!(f.writes_in_flight(), 1);
        f.freeze(Utc::now());
        assert!(f.begin_write().is_none(), "refused while frozen");
        assert_eq!(f.writes_in_flight(), 1, "the earlier write still counts");
        drop(w);
        assert_eq!(f.writes_in_flight(), 0);
        f.thaw();
        assert!(f.begin_write().is_some());
    }
}
