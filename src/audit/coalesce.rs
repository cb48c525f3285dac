//! Repeats of the same successful `token.issue` or `image.pull` within a minute are written once.
//!
//! A client pulling in a loop asks for a token and pulls the manifest again and again; each time
//! the entry is the same but for its time and request id. The first is written; identical ones
//! in the next `WINDOW` are only counted. When the window has passed, the next one written — a
//! new occurrence, or, if none comes, the last repeat, written by `flush` — carries
//! `repeats`: how many identical entries before it were not written. So for each kind of entry,
//! the occurrences are the entries written plus the sum of their `repeats`, and nothing is lost.
//!
//! "Identical" is everything but `time` and `request_id`: same action, actor, client address,
//! repository, tag, digest, status and detail (for `token.issue` the detail holds the requested
//! and granted scopes; for `image.pull` the user agent).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::entry::{Entry, Outcome};

/// How long identical entries are counted instead of written.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Kinds of entries tracked at once. Past this, entries of new kinds are written one by one
/// (nothing is lost, only not coalesced), so memory stays bounded: each tracked kind holds at
/// most one entry of at most 4 KiB.
const MAX_TRACKED: usize = 2048;

/// Only these are coalesced; every other action is written one by one.
fn coalescible(e: &Entry) -> bool {
    e.outcome == Outcome::Success && matches!(e.action.as_str(), "token.issue" | "image.pull")
}

type Key = [u8; 32];

fn key_of(e: &Entry) -> Key {
    let mut same = e.clone();
    same.time = String::new();
    same.request_id = None;
    same.prev = String::new();
    same.repeats = None;
    // Serialising a struct of strings and numbers cannot fail.
    let bytes = serde_json::to_vec(&same).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

struct Track {
    window_start: Instant,
    /// Identical entries counted but not written, and the last of them.
    pending: u64,
    last: Option<Entry>,
}

#[derive(Default)]
pub struct Coalescer {
    tracks: HashMap<Key, Track>,
    /// Entries counted instead of written, since start.
    coalesced: u64,
}

impl Coalescer {
    /// `Some(entry)` to write (with `repeats` set when it stands for left-out ones), or `None`
    /// when it is a repeat within the window, counted for later.
    pub fn admit(&mut self, mut entry: Entry, now: Instant) -> Option<Entry> {
        if !coalescible(&entry) {
            return Some(entry);
        }
        let key = key_of(&entry);
        if !self.tracks.contains_key(&key) && self.tracks.len() >= MAX_TRACKED {
            return Some(entry);
        }
        let track = match self.tracks.entry(key) {
            // A new kind: written, and it opens the window.
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Track {
                    window_start: now,
                    pending: 0,
                    last: None,
                });
                return Some(entry);
            }
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        };
        if now.saturating_duration_since(track.window_start) < WINDOW {
            track.pending += 1;
            track.last = Some(entry);
            self.coalesced += 1;
            return None;
        }
        if track.pending > 0 {
            entry.repeats = Some(track.pending);
        }
        *track = Track {
            window_start: now,
            pending: 0,
            last: None,
        };
        Some(entry)
    }

    /// The entries due at `now`: for each kind whose window has passed with repeats counted,
    /// its last repeat, carrying the count of those before it; that entry opens a new window.
    /// Kinds whose window passed quietly are forgotten.
    pub fn flush(&mut self, now: Instant) -> Vec<Entry> {
        let mut due = Vec::new();
        self.tracks.retain(|_, t| {
            if now.saturating_duration_since(t.window_start) < WINDOW {
                return true;
            }
            let Some(mut last) = t.last.take() else {
                return false;
            };
            if t.pending > 1 {
                last.repeats = Some(t.pending - 1);
            }
            // The last repeat is written now, so it no longer counts as coalesced.
            *t = Track {
                window_start: now,
                pending: 0,
                last: None,
            };
            due.push(last);
            true
        });
        self.coalesced = self.coalesced.saturating_sub(due.len() as u64);
        due
    }

    /// Every repeat still counted, written as at the end of its window: at shutdown.
    pub fn drain(&mut self) -> Vec<Entry> {
        let far = Instant::now() + WINDOW * 2;
        let due = self.flush(far);
        self.tracks.clear();
        due
    }

    /// Whether a `flush` may have something to write, and so the writer should wake for it.
    pub fn has_pending(&self) -> bool {
        self.tracks.values().any(|t| t.last.is_some())
    }

    /// Entries counted instead of written, since start.
    pub fn coalesced(&self) -> u64 {
        self.coalesced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::Source;

    fn pull(actor: &str, addr: &str) -> Entry {
        let mut e = Entry::new("image.pull", actor, Outcome::Success, Source::Registry);
        e.image = Some("team/app".into());
        e.digest = Some("sha256:aa".into());
        e.remote_addr = Some(addr.into());
        e
    }

    fn occurrences(written: &[Entry]) -> u64 {
        written.iter().map(|e| 1 + e.repeats.unwrap_or(0)).sum()
    }

    #[test]
    fn repeats_within_a_minute_are_counted_and_the_count_rides_on_the_next_entry() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut written = vec![];
        written.extend(c.admit(pull("alice", "10.0.0.1"), at(0)));
        for s in 0..50 {
            let mut e = pull("alice", "10.0.0.1");
            e.request_id = Some(format!("r{s}"));
            assert!(c.admit(e, at(s)).is_none(), "{s}");
        }
        assert_eq!(c.coalesced(), 50);
        // Someone else, another address, another digest, a failure: written at once.
        assert!(c.admit(pull("bob", "10.0.0.1"), at(1)).is_some());
        assert!(c.admit(pull("alice", "10.0.0.2"), at(1)).is_some());
        let mut other = pull("alice", "10.0.0.1");
        other.digest = Some("sha256:bb".into());
        assert!(c.admit(other, at(1)).is_some());
        let mut failed = pull("alice", "10.0.0.1");
        failed.outcome = Outcome::Denied;
        assert!(c.admit(failed, at(2)).is_some());
        let mut create = pull("alice", "10.0.0.1");
        create.action = "user.create".into();
        assert!(c.admit(create, at(2)).is_some());

        let next = c.admit(pull("alice", "10.0.0.1"), at(61)).unwrap();
        assert_eq!(next.repeats, Some(50));
        written.push(next);
        assert_eq!(occurrences(&written), 52);
    }

    #[test]
    fn without_a_next_entry_the_last_repeat_is_flushed_with_the_count() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut written: Vec<Entry> = c.admit(pull("alice", "a"), at(0)).into_iter().collect();
        for s in 1..=10 {
            let mut e = pull("alice", "a");
            e.request_id = Some(format!("r{s}"));
            assert!(c.admit(e, at(s)).is_none());
        }
        assert!(c.has_pending());
        assert!(c.flush(at(59)).is_empty(), "the window is still open");
        let due = c.flush(at(60));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].repeats, Some(9));
        assert_eq!(due[0].request_id.as_deref(), Some("r10"), "the last repeat");
        written.extend(due);
        assert_eq!(occurrences(&written), 11);
        assert!(!c.has_pending());
        // The flushed entry opened a new window; a quiet one is then forgotten.
        assert!(c.admit(pull("alice", "a"), at(70)).is_none());
        let due = c.flush(at(121));
        assert_eq!((due.len(), due[0].repeats), (1, None));
        assert!(c.flush(at(182)).is_empty());
        assert!(c.tracks.is_empty());
    }

    #[test]
    fn shutdown_writes_what_is_still_counted() {
        let mut c = Coalescer::default();
        let now = Instant::now();
        assert!(c.admit(pull("alice", "a"), now).is_some());
        assert!(c.admit(pull("alice", "a"), now).is_none());
        assert!(c.admit(pull("alice", "a"), now).is_none());
        let due = c.drain();
        assert_eq!((due.len(), due[0].repeats), (1, Some(1)));
    }

    #[test]
    fn the_number_of_tracked_kinds_is_bounded_and_the_rest_are_written() {
        let mut c = Coalescer::default();
        let now = Instant::now();
        for i in 0..MAX_TRACKED + 10 {
            assert!(c.admit(pull(&format!("u{i}"), "a"), now).is_some());
        }
        assert_eq!(c.tracks.len(), MAX_TRACKED);
        let late = pull(&format!("u{}", MAX_TRACKED + 5), "a");
        assert!(c.admit(late, now).is_some(), "untracked kinds are written");
    }
}
