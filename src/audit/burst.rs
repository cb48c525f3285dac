//! Bursts of entries a caller can make as fast as it can send: an account repeating a refused
//! action (a user-role account hammering an admin endpoint), and anonymous callers, who need no
//! account at all (`GET /token` of a public repository). Per (who, action) — who being the
//! account, or for anonymous callers their address — the first `BURST` entries of a minute are
//! written one by one; past that, at most one entry a minute is written, carrying the count of
//! those left out. An account's successes never come here: they are always written.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Entries per (who, action) and minute that are written one by one.
pub const BURST: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Keys are (account or address, action) pairs; the cap bounds memory against many addresses.
const MAX_TRACKED: usize = 10_000;

/// Whose entries are counted together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    /// An account's refused requests.
    Actor(String),
    /// Everything anonymous callers from one address cause.
    Anonymous { address: String },
}

/// Refusals that were not written, to be reported by the next entry that is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unreported {
    pub count: u64,
    /// When the first of them happened.
    pub since: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Write the entry; if it carries `Unreported`, say so in its detail.
    Write(Option<Unreported>),
    /// Leave it out; it is counted for the next entry that is written.
    Skip,
}

struct Track {
    window_start: Instant,
    in_window: u32,
    last_seen: Instant,
    /// Set while the key is past its burst: left-out refusals and when the next entry is due.
    burst: Option<(Option<Unreported>, Instant)>,
}

#[derive(Default)]
pub struct BurstTracker {
    tracks: Mutex<HashMap<(Who, String), Track>>,
}

fn count_one(u: &mut Option<Unreported>, wall: DateTime<Utc>) {
    match u {
        Some(u) => u.count += 1,
        None => {
            *u = Some(Unreported {
                count: 1,
                since: wall,
            })
        }
    }
}

impl BurstTracker {
    /// What to do with one more entry of `action` by `who`, at `now` (`wall` is the same moment
    /// on the clock the entries are stamped with).
    pub fn admit(&self, who: Who, action: &str, now: Instant, wall: DateTime<Utc>) -> Verdict {
        let mut tracks = lock(&self.tracks);
        let key = (who, action.to_string());
        if !tracks.contains_key(&key) && tracks.len() >= MAX_TRACKED {
            tracks.retain(|_, t| now.saturating_duration_since(t.last_seen) < WINDOW);
            if tracks.len() >= MAX_TRACKED
                && let Some(oldest) = tracks
                    .iter()
                    .min_by_key(|(_, t)| t.last_seen)
                    .map(|(k, _)| k.clone())
            {
                tracks.remove(&oldest);
            }
        }
        let t = tracks.entry(key).or_insert(Track {
            window_start: now,
            in_window: 0,
            last_seen: now,
            burst: None,
        });
        // A quiet minute ends a burst; what it left out is reported by this entry.
        let mut carried = None;
        if now.saturating_duration_since(t.last_seen) >= WINDOW {
            carried = t.burst.take().and_then(|(u, _)| u);
            t.window_start = now;
            t.in_window = 0;
        } else if t.burst.is_none() && now.saturating_duration_since(t.window_start) >= WINDOW {
            t.window_start = now;
            t.in_window = 0;
        }
        t.last_seen = now;
        t.in_window = t.in_window.saturating_add(1);
        match &mut t.burst {
            None if t.in_window <= BURST => Verdict::Write(carried),
            None => {
                let mut left_out = None;
                count_one(&mut left_out, wall);
                t.burst = Some((left_out, now + WINDOW));
                Verdict::Skip
            }
            Some((left_out, due)) if now >= *due => {
                *due = now + WINDOW;
                Verdict::Write(left_out.take())
            }
            Some((left_out, _)) => {
                count_one(left_out, wall);
                Verdict::Skip
            }
        }
    }
}

/// The detail of an entry that also stands for entries left out.
pub fn summary_detail(detail: Option<&str>, action: &str, who: &Who, u: Unreported) -> String {
    let what = match who {
        Who::Actor(_) => format!("refused {action} requests by the same actor"),
        Who::Anonymous { .. } => format!("anonymous {action} requests from the same address"),
    };
    let note = format!(
        "{} more {what} since {} were not written one by one",
        u.count,
        super::entry::format_time(u.since)
    );
    match detail {
        Some(d) => format!("{d}; {note}"),
        None => note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Clock {
        start: Instant,
        wall: DateTime<Utc>,
    }

    impl Clock {
        fn new() -> Clock {
            Clock {
                start: Instant::now(),
                wall: DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            }
        }

        fn at(&self, secs: u64) -> (Instant, DateTime<Utc>) {
            (
                self.start + Duration::from_secs(secs),
                self.wall + chrono::Duration::seconds(secs as i64),
            )
        }
    }

    fn refuse(t: &BurstTracker, c: &Clock, secs: u64, actor: &str) -> Verdict {
        let (now, wall) = c.at(secs);
        t.admit(Who::Actor(actor.into()), "user.create", now, wall)
    }

    #[test]
    fn the_first_refusals_of_a_minute_are_written_and_the_rest_once_a_minute() {
        let (t, c) = (BurstTracker::default(), Clock::new());
        for _ in 0..BURST {
            assert_eq!(refuse(&t, &c, 0, "alice"), Verdict::Write(None));
        }
        for _ in 0..500 {
            assert_eq!(refuse(&t, &c, 1, "alice"), Verdict::Skip);
        }
        assert_eq!(
            refuse(&t, &c, 30, "bob"),
            Verdict::Write(None),
            "other actors are not affected"
        );
        assert_eq!(refuse(&t, &c, 59, "alice"), Verdict::Skip);
        // A minute after the burst began: one entry for the 501 left out so far.
        let (_, since) = c.at(1);
        assert_eq!(
            refuse(&t, &c, 61, "alice"),
            Verdict::Write(Some(Unreported { count: 501, since }))
        );
        // Still hammering: no new burst of ten, one entry per minute.
        for s in 62..120 {
            assert_eq!(refuse(&t, &c, s, "alice"), Verdict::Skip);
        }
        let (_, since) = c.at(62);
        assert_eq!(
            refuse(&t, &c, 121, "alice"),
            Verdict::Write(Some(Unreported { count: 58, since }))
        );
    }

    #[test]
    fn after_a_quiet_minute_the_left_out_count_rides_on_the_next_entry() {
        let (t, c) = (BurstTracker::default(), Clock::new());
        for _ in 0..BURST + 3 {
            refuse(&t, &c, 0, "alice");
        }
        let (_, since) = c.at(0);
        assert_eq!(
            refuse(&t, &c, 200, "alice"),
            Verdict::Write(Some(Unreported { count: 3, since }))
        );
        for _ in 1..BURST {
            assert_eq!(refuse(&t, &c, 200, "alice"), Verdict::Write(None));
        }
        assert_eq!(refuse(&t, &c, 200, "alice"), Verdict::Skip);
    }

    #[test]
    fn a_steady_trickle_below_the_burst_is_always_written() {
        let (t, c) = (BurstTracker::default(), Clock::new());
        for s in 0..600 {
            if s % 7 == 0 {
                assert_eq!(refuse(&t, &c, s, "alice"), Verdict::Write(None), "{s}");
            }
        }
    }

    #[test]
    fn the_number_of_tracked_keys_is_bounded() {
        let (t, c) = (BurstTracker::default(), Clock::new());
        for i in 0..MAX_TRACKED + 50 {
            refuse(&t, &c, 0, &format!("u{i}"));
        }
        assert!(lock(&t.tracks).len() <= MAX_TRACKED);
    }

    #[test]
    fn the_summary_says_how_many_were_left_out_and_since_when() {
        let (_, since) = Clock::new().at(0);
        let d = summary_detail(
            Some("forbidden"),
            "user.create",
            &Who::Actor("alice".into()),
            Unreported { count: 7, since },
        );
        assert_eq!(
            d,
            "forbidden; 7 more refused user.create requests by the same actor since 2026-11-23T10:00:00.000Z were not written one by one"
        );
        let d = summary_detail(
            None,
            "token.issue",
            &Who::Anonymous {
                address: "192.0.2.7".into(),
            },
            Unreported { count: 3, since },
        );
        assert_eq!(
            d,
            "3 more anonymous token.issue requests from the same address since 2026-11-23T10:00:00.000Z were not written one by one"
        );
    }

    #[test]
    fn anonymous_callers_are_counted_per_address_apart_from_accounts() {
        let (t, c) = (BurstTracker::default(), Clock::new());
        let (now, wall) = c.at(0);
        let anon = |a: &str| Who::Anonymous { address: a.into() };
        for _ in 0..BURST {
            assert_eq!(
                t.admit(anon("192.0.2.7"), "token.issue", now, wall),
                Verdict::Write(None)
            );
        }
        assert_eq!(
            t.admit(anon("192.0.2.7"), "token.issue", now, wall),
            Verdict::Skip
        );
        assert_eq!(
            t.admit(anon("192.0.2.8"), "token.issue", now, wall),
            Verdict::Write(None),
            "another address"
        );
        assert_eq!(
            t.admit(Who::Actor("192.0.2.7".into()), "token.issue", now, wall),
            Verdict::Write(None),
            "an account named like the address"
        );
    }
}
