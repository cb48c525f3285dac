//! Newest-first queries over the audit files. Files are read backwards in large blocks; lines
//! that cannot match are rejected with a byte search (the same trick grep uses) before any JSON
//! is parsed, and the scan stops at `limit` or once `since` is well passed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use memchr::memmem::Finder;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::files::AuditFiles;

const BLOCK: u64 = 1 << 20;
/// Entries are stamped when created and sealed a moment later, so the file is only roughly in
/// time order: keep scanning this far past `since` before stopping.
const SINCE_GRACE_MINUTES: i64 = 5;

#[derive(Debug, Default, Clone)]
pub struct Filters {
    pub user: Option<String>,
    pub image: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Filters {
    fn fingerprint(&self) -> String {
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.user, self.image, self.action, self.outcome, self.since, self.until
        );
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }

    /// Byte strings every matching line must contain.
    pub(crate) fn needles(&self) -> Vec<Vec<u8>> {
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut n = Vec::new();
        if let Some(u) = &self.user {
            n.push(quoted(u).into_bytes());
        }
        if let Some(i) = &self.image {
            n.push(format!("\"image\":{}", quoted(i)).into_bytes());
        }
        if let Some(a) = &self.action {
            n.push(format!("\"action\":{}", quoted(a)).into_bytes());
        }
        if let Some(o) = &self.outcome {
            n.push(format!("\"outcome\":{}", quoted(o)).into_bytes());
        }
        // Longest first: it is searched block-wide, the others per candidate line.
        n.sort_by_key(|x| std::cmp::Reverse(x.len()));
        n
    }

    fn matches(&self, v: &Value) -> bool {
        let field = |k: &str| v.get(k).and_then(Value::as_str);
        if let Some(u) = &self.user
            && field("actor") != Some(u)
            && field("user") != Some(u)
        {
            return false;
        }
        let exact =
            |k: &str, want: &Option<String>| want.as_deref().is_none_or(|w| field(k) == Some(w));
        exact("image", &self.image)
            && exact("action", &self.action)
            && exact("outcome", &self.outcome)
    }
}

#[derive(Debug, PartialEq)]
pub struct Cursor {
    file: u64,
    offset: u64,
    fingerprint: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CursorError {
    #[error("cursor is not one this server issued")]
    Malformed,
    #[error("cursor belongs to a query with other filters; repeat the same filters with it")]
    OtherFilters,
    /// Well-formed, but naming a file or a position no page ever ended at: forged, or the file
    /// was cut short since.
    #[error("cursor points outside the audit log; start again without it")]
    Outside,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Database(#[from] crate::store::DatabaseError),
}

impl Cursor {
    /// A cursor of the database backend: entries before `seq`. File number 0 is never a
    /// file's, so a cursor of one backend is refused by the other.
    pub(crate) fn before_seq(seq: i64, filters: &Filters) -> Cursor {
        Cursor {
            file: 0,
            offset: seq.max(0) as u64,
            fingerprint: filters.fingerprint(),
        }
    }

    /// The `seq` a database cursor stands before; `None` for a cursor of the files.
    pub(crate) fn seq(&self) -> Option<i64> {
        (self.file == 0).then(|| i64::try_from(self.offset).ok())?
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}.{}.{}",
            self.file, self.offset, self.fingerprint
        ))
    }

    pub fn decode(s: &str, filters: &Filters) -> Result<Cursor, CursorError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| CursorError::Malformed)?;
        let text = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
        let mut parts = text.splitn(3, '.');
        let (Some(f), Some(o), Some(fp)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CursorError::Malformed);
        };
        let cursor = Cursor {
            file: f.parse().map_err(|_| CursorError::Malformed)?,
            offset: o.parse().map_err(|_| CursorError::Malformed)?,
            fingerprint: fp.to_string(),
        };
        if cursor.fingerprint != filters.fingerprint() {
            return Err(CursorError::OtherFilters);
        }
        Ok(cursor)
    }
}

pub struct Page {
    pub entries: Vec<Value>,
    pub next_cursor: Option<String>,
}

enum Flow {
    Continue,
    Stop,
}

/// Calls `visit` with each whole line of `file` that ends before `end`, newest first, with the
/// line's start offset. With a `finder`, only lines containing its needle are visited.
fn scan_back(
    file: &File,
    end: u64,
    finder: Option<&Finder>,
    mut visit: impl FnMut(&[u8], u64) -> Flow,
) -> io::Result<Flow> {
    let mut pos = end;
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 || !carry.is_empty() {
        let lo = pos.saturating_sub(BLOCK);
        let mut data = vec![0u8; (pos - lo) as usize];
        file.read_exact_at(&mut data, lo)?;
        data.extend_from_slice(&carry);
        // Unless this block starts the file, its first line may begin in an earlier block.
        let first_whole = if lo == 0 {
            0
        } else {
            match memchr::memchr(b'\n', &data) {
                Some(i) => i + 1,
                None => {
                    carry = data;
                    pos = lo;
                    continue;
                }
            }
        };
        let region = &data[first_whole..];
        let base = lo + first_whole as u64;
        let mut starts: Vec<usize> = match finder {
            Some(f) => {
                let mut s: Vec<usize> = f
                    .find_iter(region)
                    .map(|hit| memchr::memrchr(b'\n', &region[..hit]).map_or(0, |p| p + 1))
                    .collect();
                s.dedup();
                s
            }
            None => std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', region).map(|p| p + 1))
                .filter(|&p| p < region.len())
                .collect(),
        };
        starts.reverse();
        for start in starts {
            let len = memchr::memchr(b'\n', &region[start..]).unwrap_or(region.len() - start);
            let line = &region[start..start + len];
            if line.is_empty() {
                continue;
            }
            if let Flow::Stop = visit(line, base + start as u64) {
                return Ok(Flow::Stop);
            }
        }
        carry = data[..first_whole].to_vec();
        pos = lo;
        if lo == 0 {
            break;
        }
    }
    Ok(Flow::Continue)
}

/// Whether `offset` in `file` (of `len` bytes) is where a page can have ended: the start of a
/// line, inside the file. Anything else would be read as a line cut in two, or past the end.
fn check_offset(file: &File, offset: u64, len: u64) -> Result<(), QueryError> {
    if offset > len {
        return Err(CursorError::Outside.into());
    }
    if offset > 0 {
        let mut before = [0u8; 1];
        file.read_exact_at(&mut before, offset - 1)?;
        if before[0] != b'\n' {
            return Err(CursorError::Outside.into());
        }
    }
    Ok(())
}

/// What a newest-first scan does with one line that contains every needle.
pub(crate) enum Judged {
    /// Not a match (or a torn line): go on.
    Skip,
    /// Well before `since`: nothing older can match.
    Stop,
    Take(Value),
}

/// The time before which a newest-first scan for `filters` stops.
pub(crate) fn stop_before(filters: &Filters) -> Option<DateTime<Utc>> {
    filters
        .since
        .map(|s| s - Duration::minutes(SINCE_GRACE_MINUTES))
}

/// The one rule of both backends for whether a line is in a page.
pub(crate) fn judge(filters: &Filters, stop_before: Option<DateTime<Utc>>, line: &[u8]) -> Judged {
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return Judged::Skip; // a torn line
    };
    let time = v
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Only our own entries are stamped at append time; a registry event keeps the
    // registry's timestamp and may arrive late, so it never ends the scan.
    let appended_at = time.filter(|_| v.get("source").and_then(Value::as_str) == Some("api"));
    if let (Some(t), Some(stop)) = (appended_at, stop_before)
        && t < stop
    {
        return Judged::Stop;
    }
    let in_range = time.is_some_and(|t| {
        filters.since.is_none_or(|s| t >= s) && filters.until.is_none_or(|u| t <= u)
    });
    if !in_range || !filters.matches(&v) {
        return Judged::Skip;
    }
    Judged::Take(v)
}

/// Up to `limit` entries matching `filters`, newest first, continuing from `cursor`.
pub fn query(
    files: &AuditFiles,
    filters: &Filters,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<Page, QueryError> {
    let needles = filters.needles();
    let finder = needles.first().map(|n| Finder::new(n.as_slice()));
    let others: Vec<Finder> = needles
        .iter()
        .skip(1)
        .map(|n| Finder::new(n.as_slice()))
        .collect();
    let stop_before = stop_before(filters);

    let all = files.all();
    let current = all.last().map_or(1, |(n, _)| *n);
    if cursor.is_some_and(|c| c.file == 0 || c.file > current) {
        return Err(CursorError::Outside.into());
    }
    let mut entries = Vec::new();
    let mut last_pos: Option<(u64, u64)> = None;
    let mut more = false;

    for (number, _) in all.iter().rev() {
        if cursor.is_some_and(|c| *number > c.file) {
            continue;
        }
        let path = files.path_of(*number, current);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        let end = match cursor {
            Some(c) if c.file == *number => {
                check_offset(&file, c.offset, len)?;
                c.offset
            }
            _ => len,
        };
        let flow = scan_back(&file, end, finder.as_ref(), |line, offset| {
            if !others.iter().all(|f| f.find(line).is_some()) {
                return Flow::Continue;
            }
            match judge(filters, stop_before, line) {
                Judged::Skip => Flow::Continue,
                Judged::Stop => Flow::Stop,
                Judged::Take(_) if entries.len() == limit => {
                    more = true;
                    Flow::Stop
                }
                Judged::Take(v) => {
                    entries.push(v);
                    last_pos = Some((*number, offset));
                    Flow::Continue
                }
            }
        })?;
        if let Flow::Stop = flow {
            break;
        }
    }
    let next_cursor = match (more, last_pos) {
        (true, Some((file, offset))) => Some(
            Cursor {
                file,
                offset,
                fingerprint: filters.fingerprint(),
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(Page {
        entries,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_back(
        text: &[u8],
        block_file: &tempfile::NamedTempFile,
        needle: Option<&str>,
    ) -> Vec<(String, u64)> {
        block_file.as_file().set_len(0).unwrap();
        block_file.as_file().write_all_at(text, 0).unwrap();
        let finder = needle.map(|n| Finder::new(n.as_bytes()).into_owned());
        let mut out = Vec::new();
        scan_back(
            block_file.as_file(),
            text.len() as u64,
            finder.as_ref(),
            |l, o| {
                out.push((String::from_utf8(l.to_vec()).unwrap(), o));
                Flow::Continue
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn scans_lines_newest_first_with_offsets() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let got = lines_back(b"one\ntwo\nthree\n", &f, None);
        assert_eq!(
            got,
            [("three".into(), 8), ("two".into(), 4), ("one".into(), 0)]
        );
        let got = lines_back(b"one\ntwo\nthr", &f, None);
        assert_eq!(got[0], ("thr".to_string(), 8));
        let got = lines_back(b"a-x\nb\nc-x-x\n", &f, Some("x"));
        assert_eq!(got, [("c-x-x".into(), 6), ("a-x".into(), 0)]);
    }

    #[test]
    fn lines_across_block_boundaries_are_whole() {
        let mut text = Vec::new();
        let mut want = Vec::new();
        for i in 0..60_000u32 {
            let line = format!(
                "{{\"n\":{i},\"pad\":\"{}\"}}",
                "p".repeat((i % 97) as usize)
            );
            want.push(line.clone());
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        assert!(text.len() as u64 > 2 * BLOCK);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&text).unwrap();
        let got: Vec<String> = lines_back(&text, &f, None)
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        want.reverse();
        assert_eq!(got, want);
        let hits = lines_back(&text, &f, Some("\"n\":59999,"));
        assert_eq!(hits.len(), 1);
    }

    #[test]
    fn cursors_round_trip_and_are_tied_to_filters() {
        let f = Filters {
            user: Some("alice".into()),
            ..Default::default()
        };
        let c = Cursor {
            file: 3,
            offset: 12345,
            fingerprint: f.fingerprint(),
        };
        assert_eq!(Cursor::decode(&c.encode(), &f), Ok(c));
        let other = Filters {
            user: Some("bob".into()),
            ..Default::default()
        };
        let c = Cursor {
            file: 1,
            offset: 1,
            fingerprint: f.fingerprint(),
        };
        assert_eq!(
            Cursor::decode(&c.encode(), &other),
            Err(CursorError::OtherFilters)
        );
        assert_eq!(Cursor::decode("!!", &f), Err(CursorError::Malformed));
    }

    #[test]
    fn a_cursor_outside_the_files_or_inside_a_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = AuditFiles::new(dir.path().join("audit.log"));
        let line = br#"{"time":"2026-11-23T10:00:00.000Z","action":"a","source":"api"}"#;
        let mut text = line.to_vec();
        text.push(b'\n');
        text.extend_from_slice(line);
        text.push(b'\n');
        std::fs::write(files.current(), &text).unwrap();
        let f = Filters::default();
        let at = |file: u64, offset: u64| Cursor {
            file,
            offset,
            fingerprint: f.fingerprint(),
        };
        let second = line.len() as u64 + 1;
        let page = query(&files, &f, 10, Some(&at(1, second))).unwrap();
        assert_eq!(page.entries.len(), 1);
        for bad in [at(1, second + 1), at(1, 1 << 40), at(2, 0), at(0, 0)] {
            assert!(
                matches!(
                    query(&files, &f, 10, Some(&bad)),
                    Err(QueryError::Cursor(CursorError::Outside))
                ),
                "{bad:?}"
            );
        }
    }
}
