//! The write freeze that makes garbage collection safe while the registry serves: while it
//! holds, `GET /token` grants no `push` or `delete`, and API writes that touch the registry
//! answer 409 `maintenance`. It also remembers how long write-capable registry tokens already
//! handed out stay valid, so a job knows how long to wait before it may mark and sweep.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::sync::lock;

/// registry:2 accepts a token this long past its `exp` (REGISTRY-FACTS §h).
pub const REGISTRY_LEEWAY_SECS: i64 = 60;

#[derive(Default)]
struct State {
    frozen: bool,
    /// The latest `exp` of any token issued with `push` or `delete`.
    writes_valid_until: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct WriteFreeze {
    state: Mutex<State>,
}

impl WriteFreeze {
    pub fn is_frozen(&self) -> bool {
        lock(&self.state).frozen
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
}
