//! When each tag was last pushed and each digest last pulled, learnt from the audit's registry
//! events: built by one scan of the audit files at start and kept current by `/events`.
//!
//! A tag's push time is its own latest `image.push` (re-tagging an old digest resets it); a pull
//! is recorded per digest, so a pull by digest counts for every tag pointing at that digest. What
//! is not known stays unknown, and evaluation keeps such tags. Memory is bounded: past
//! `MAX_KEYS` new keys are not recorded (they stay unknown, so kept), and over-long lines in the
//! audit files are skipped without being held in memory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::DateTime;
use serde::Deserialize;

use crate::audit::entry::{Entry, Source};
use crate::audit::files::AuditFiles;
use crate::audit::source::AuditSource;
use crate::audit::store_rows;
use crate::store::Database;

/// Most (repository, tag) plus (repository, digest) pairs remembered (about 100 bytes each):
/// ten times 2,000 repositories of 50 tags, pushed and pulled.
pub const MAX_KEYS: usize = 1_000_000;
/// Audit lines are at most 4 KiB; anything much longer is not an entry this index needs.
const MAX_LINE: usize = 64 * 1024;

/// Milliseconds since the epoch.
pub type Millis = i64;

#[derive(Default)]
struct Index {
    pushed: HashMap<String, HashMap<String, Millis>>,
    pulled: HashMap<String, HashMap<String, Millis>>,
    keys: usize,
    /// Set once a key was left out for the cap: a missing pull no longer means "never pulled".
    full: bool,
}

impl Index {
    /// Records `at` for `key`; false when a new key was left out for the cap.
    fn note(
        map: &mut HashMap<String, HashMap<String, Millis>>,
        keys: &mut usize,
        repo: &str,
        key: &str,
        at: Millis,
    ) -> bool {
        if let Some(t) = map.get_mut(repo).and_then(|r| r.get_mut(key)) {
            *t = (*t).max(at);
            return true;
        }
        if *keys >= MAX_KEYS {
            return false;
        }
        map.entry(repo.to_string())
            .or_default()
            .insert(key.to_string(), at);
        *keys += 1;
        true
    }

    fn push(&mut self, repo: &str, tag: &str, at: Millis) {
        // A push left out stays unknown, and a tag without a push time is kept anyway.
        if !Self::note(&mut self.pushed, &mut self.keys, repo, tag, at) {
            self.full = true;
        }
    }

    fn pull(&mut self, repo: &str, digest: &str, at: Millis) {
        if !Self::note(&mut self.pulled, &mut self.keys, repo, digest, at) {
            self.full = true;
        }
    }
}

/// The push and pull times of one repository, copied out for one evaluation.
#[derive(Debug, Default, Clone)]
pub struct RepoFacts {
    pub pushed: HashMap<String, Millis>,
    pub pulled: HashMap<String, Millis>,
    /// Pulls were left out for the memory cap: a digest without a pull time may have been
    /// pulled, so pull criteria keep it.
    pub pulls_incomplete: bool,
}

#[derive(Default)]
pub struct Facts {
    index: RwLock<Index>,
    /// Cluster mode: the audit table, and the last row read from it. Other replicas record
    /// the pushes and pulls they receive there, so a plan catches up before it is made.
    cluster: Option<(Arc<Database>, AtomicI64)>,
}

fn millis(time: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The few fields of an audit line this index reads; borrowed from the line unless a value
/// holds an escape.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    source: Source,
    #[serde(default, borrow)]
    image: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tag: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    digest: Option<Cow<'a, str>>,
}

impl Facts {
    /// Scans every audit file, oldest first. Unreadable files are skipped with a warning:
    /// what they held stays unknown, which keeps tags. Blocking.
    pub fn from_audit(files: &AuditFiles) -> Facts {
        let facts = Facts::default();
        for (_, path) in files.all() {
            match facts.scan(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => log::warn!("retention: reading {}: {e}", path.display()),
            }
        }
        facts
    }

    /// The facts of whichever audit chain this configuration has (in cluster mode the
    /// `audit_log` table, read a page at a time). Unreadable, it is skipped with a warning, as
    /// an unreadable file is. Blocking.
    pub fn from_source(source: &AuditSource) -> Facts {
        let Some(db) = source.database() else {
            return source.files().map(Facts::from_audit).unwrap_or_default();
        };
        let facts = Facts {
            index: RwLock::default(),
            cluster: Some((Arc::clone(db), AtomicI64::new(0))),
        };
        if let Err(e) = facts.catch_up() {
            log::warn!("retention: reading the audit log: {e}");
        }
        facts
    }

    /// Cluster mode: notes the pushes and pulls any replica recorded since the last call (each
    /// time only once; noting a push or pull twice changes nothing). Files mode: nothing to do.
    /// Blocking.
    pub fn catch_up(&self) -> Result<(), crate::store::DatabaseError> {
        let Some((db, seen)) = &self.cluster else {
            return Ok(());
        };
        let push = memchr::memmem::Finder::new(PUSH_OR_PULL);
        let mut index = match self.index.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut last = seen.load(Ordering::Acquire);
        let mut conn = db.connection()?;
        store_rows::for_each_row_after(&mut *conn, last, |seq, line, _| {
            if push.find(line.as_bytes()).is_some() {
                take_line(&mut index, line.as_bytes());
            }
            last = seq;
            true
        })?;
        seen.store(last, Ordering::Release);
        Ok(())
    }

    fn scan(&self, path: &Path) -> io::Result<()> {
        let mut reader = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let mut line = Vec::with_capacity(4096);
        let mut index = match self.index.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let push = memchr::memmem::Finder::new(PUSH_OR_PULL);
        loop {
            line.clear();
            let (read, too_long) = read_line_bounded(&mut reader, &mut line)?;
            if read == 0 {
                return Ok(());
            }
            if too_long || push.find(&line).is_none() {
                continue;
            }
            take_line(&mut index, &line);
        }
    }

    /// Notes an entry `/events` has just written.
    pub fn observe(&self, e: &Entry) {
        let mut index = match self.index.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        apply(
            &mut index,
            &e.action,
            e.source,
            &e.time,
            e.image.as_deref(),
            e.tag.as_deref(),
            e.digest.as_deref(),
        );
    }

    pub fn repository(&self, repo: &str) -> RepoFacts {
        let index = match self.index.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        RepoFacts {
            pushed: index.pushed.get(repo).cloned().unwrap_or_default(),
            pulled: index.pulled.get(repo).cloned().unwrap_or_default(),
            pulls_incomplete: index.full,
        }
    }

    /// Records a push directly (benchmarks and tests).
    pub fn note_push(&self, repo: &str, tag: &str, at: Millis) {
        if let Ok(mut i) = self.index.write() {
            i.push(repo, tag, at);
        }
    }
}

fn apply(
    index: &mut Index,
    action: &str,
    source: Source,
    time: &str,
    image: Option<&str>,
    tag: Option<&str>,
    digest: Option<&str>,
) {
    if source != Source::Registry {
        return;
    }
    let (Some(repo), Some(at)) = (image, millis(time)) else {
        return;
    };
    match action {
        "image.push" => {
            if let Some(tag) = tag.filter(|t| !t.is_empty()) {
                index.push(repo, tag, at);
            }
        }
        "image.pull" => {
            if let Some(digest) = digest.filter(|d| !d.is_empty()) {
                index.pull(repo, digest, at);
            }
        }
        _ => {}
    }
}

/// One line into `buf` (without its newline); a line longer than `MAX_LINE` is consumed but
/// not kept, and reported as too long. Returns the bytes read (0 at the end).
/// What every line worth parsing contains (`image.push`, `image.pull`).
const PUSH_OR_PULL: &[u8] = b"\"action\":\"image.pu";

/// Notes one audit line, when it parses.
fn take_line(index: &mut Index, line: &[u8]) {
    let Ok(l) = serde_json::from_slice::<Line>(line) else {
        return;
    };
    apply(
        index,
        &l.action,
        l.source,
        &l.time,
        l.image.as_deref(),
        l.tag.as_deref(),
        l.digest.as_deref(),
    );
}

fn read_line_bounded(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    let mut total = 0;
    let mut too_long = false;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok((total, too_long));
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long && buf.len() + chunk.len() <= MAX_LINE {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
            buf.clear();
        }
        let used = done.unwrap_or(chunk.len());
        total += used;
        r.consume(used);
        if done.is_some() {
            return Ok((total, too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::Outcome;

    fn event(action: &str, time: &str, tag: Option<&str>, digest: &str) -> Entry {
        let mut e = Entry::new(action, "ci", Outcome::Success, Source::Registry);
        e.time = time.into();
        e.image = Some("app".into());
        e.tag = tag.map(str::to_string);
        e.digest = Some(digest.into());
        e
    }

    #[test]
    fn the_latest_push_per_tag_and_pull_per_digest_count() {
        let f = Facts::default();
        f.observe(&event(
            "image.push",
            "2026-01-02T00:00:00.000Z",
            Some("v1"),
            "sha256:a",
        ));
        f.observe(&event(
            "image.push",
            "2026-01-01T00:00:00.000Z",
            Some("v1"),
            "sha256:a",
        ));
        f.observe(&event(
            "image.pull",
            "2026-01-03T00:00:00.000Z",
            None,
            "sha256:a",
        ));
        let mut api = event(
            "image.push",
            "2026-02-01T00:00:00.000Z",
            Some("v2"),
            "sha256:b",
        );
        api.source = Source::Api;
        f.observe(&api);
        let r = f.repository("app");
        assert_eq!(r.pushed.get("v1"), millis("2026-01-02T00:00:00Z").as_ref());
        assert_eq!(
            r.pulled.get("sha256:a"),
            millis("2026-01-03T00:00:00Z").as_ref()
        );
        assert!(!r.pushed.contains_key("v2"), "only registry events count");
    }

    #[test]
    fn past_the_cap_new_keys_are_left_out_and_pulls_marked_incomplete() {
        let mut index = Index::default();
        for i in 0..MAX_KEYS {
            index.push("app", &i.to_string(), 1);
        }
        assert!(!index.full);
        index.push("app", "0", 5);
        assert_eq!(index.pushed["app"]["0"], 5, "known keys still update");
        assert!(!index.full);
        index.pull("app", "sha256:new", 1);
        assert!(index.full && index.keys == MAX_KEYS);
        let f = Facts {
            index: RwLock::new(index),
            cluster: None,
        };
        assert!(f.repository("app").pulls_incomplete);
    }

    #[test]
    fn the_audit_files_are_scanned_and_long_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let push = serde_json::to_string(&event(
            "image.push",
            "2026-01-02T00:00:00.000Z",
            Some("v1"),
            "sha256:a",
        ))
        .unwrap();
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_LINE * 2));
        std::fs::write(&path, format!("{long}\n{push}\nnot json\n")).unwrap();
        let f = Facts::from_audit(&AuditFiles::new(&path));
        assert!(f.repository("app").pushed.contains_key("v1"));
    }
}
