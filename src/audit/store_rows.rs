//! Cluster mode's audit chain: the `audit_log` table (`seq`, `line`, `hash`), one chain for
//! every replica, each `line` byte for byte what audit.log would hold.
//!
//! A group commit is one transaction: it takes an advisory lock that every replica's writer
//! takes, reads the last `(seq, hash)`, seals the batch after it with the rules of the files
//! (`bound::seal_within`), inserts all its rows with one statement and commits. So the chain
//! never forks, whichever replica appends, and a batch is stored whole or not at all. The table
//! refuses UPDATE, DELETE and TRUNCATE (a trigger, `store/schema/0001_cluster.sql`).
//!
//! Reads go in pages of [`PAGE`] rows by `seq`, never the whole table at once.

use std::sync::Arc;

use super::bound;
use super::entry::{Entry, GENESIS, unseal};
use super::query::{self, Cursor, Filters, Judged, Page};
use super::sink::{AuditError, Sink, Stored};
use super::verify::{LineRef, Report};
use crate::store::{Database, DatabaseError};

/// Rows read per round trip.
pub const PAGE: i64 = 500;
/// Most rows one query statement of `GET /audit` looks at.
const WINDOW: i64 = 20_000;
/// What `first_bad_line.file` names in cluster mode; `line` is the row's `seq`.
pub const TABLE: &str = "audit_log";
/// The advisory lock every replica's writer holds while it appends ("audit_lo").
const APPEND_LOCK: i64 = 0x6175_6469_745f_6c6f;

pub(crate) struct RowSink {
    db: Arc<Database>,
}

impl RowSink {
    pub(crate) fn new(db: Arc<Database>) -> RowSink {
        RowSink { db }
    }
}

impl Sink for RowSink {
    fn write_batch(&mut self, entries: &[Entry]) -> Result<Stored, AuditError> {
        if entries.is_empty() {
            return Ok(Stored::default());
        }
        Ok(append_rows(&self.db, entries)?)
    }

    /// The database answering is what lets an entry be stored.
    fn reserve(&mut self) -> Result<(), AuditError> {
        Ok(self.db.check()?)
    }
}

/// Appends `entries` without a writer thread (a host-side command). Blocking.
pub fn append(db: &Database, entries: &[Entry]) -> Result<(), DatabaseError> {
    if !entries.is_empty() {
        append_rows(db, entries)?;
    }
    Ok(())
}

/// Seals `entries` after the chain's last row and inserts them, in one transaction. Blocking.
fn append_rows(db: &Database, entries: &[Entry]) -> Result<Stored, DatabaseError> {
    let mut conn = db.connection()?;
    let mut tx = conn.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])?;
    let (mut seq, mut prev) = last_row(&mut tx)?;
    let mut seqs = Vec::with_capacity(entries.len());
    let mut lines = Vec::with_capacity(entries.len());
    let mut hashes = Vec::with_capacity(entries.len());
    let mut bytes = 0u64;
    for e in entries {
        let (line, hash) = bound::seal_within(e, &prev);
        seq += 1;
        bytes += line.len() as u64 + 1;
        seqs.push(seq);
        // serde_json writes UTF-8: nothing is replaced.
        lines.push(String::from_utf8_lossy(&line).into_owned());
        hashes.push(hash.clone());
        prev = hash;
    }
    insert_rows(&mut tx, &seqs, &lines, &hashes)?;
    tx.commit()?;
    Ok(Stored {
        entries: entries.len() as u64,
        bytes,
    })
}

/// The last row's `(seq, hash)`, or `(0, GENESIS)` for an empty chain.
fn last_row(tx: &mut postgres::Transaction) -> Result<(i64, String), DatabaseError> {
    let row = tx.query_opt(
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
        &[],
    )?;
    Ok(row.map_or((0, GENESIS.to_string()), |r| (r.get(0), r.get(1))))
}

/// One statement for the whole batch: arrays unnested into rows.
fn insert_rows(
    tx: &mut postgres::Transaction,
    seqs: &[i64],
    lines: &[String],
    hashes: &[String],
) -> Result<(), DatabaseError> {
    tx.execute(
        "INSERT INTO audit_log (seq, line, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])",
        &[&seqs, &lines, &hashes],
    )?;
    Ok(())
}

/// Rows already sealed elsewhere (the audit files of `import-files`), inserted as they are
/// after the chain's last row, inside the caller's transaction: `lines` must continue the chain
/// (checked before with `verify`).
pub fn insert_sealed(
    tx: &mut postgres::Transaction,
    first_seq: i64,
    lines: &[(String, String)],
) -> Result<(), DatabaseError> {
    let seqs: Vec<i64> = (first_seq..).take(lines.len()).collect();
    let (text, hashes): (Vec<String>, Vec<String>) = lines.iter().cloned().unzip();
    insert_rows(tx, &seqs, &text, &hashes)
}

/// Calls `visit` with each row `(seq, line, hash)`, oldest first, a page at a time, until it
/// returns `false`. Blocking.
pub fn for_each_row(
    db: &Database,
    visit: impl FnMut(i64, &str, &str) -> bool,
) -> Result<(), DatabaseError> {
    let mut conn = db.connection()?;
    for_each_row_in(&mut *conn, visit)
}

/// [`for_each_row`] through `client`: inside a transaction, the rows of its snapshot.
pub fn for_each_row_in(
    client: &mut impl postgres::GenericClient,
    visit: impl FnMut(i64, &str, &str) -> bool,
) -> Result<(), DatabaseError> {
    for_each_row_after(client, 0, visit)
}

/// [`for_each_row_in`] from the row after `seq` on.
pub fn for_each_row_after(
    client: &mut impl postgres::GenericClient,
    seq: i64,
    mut visit: impl FnMut(i64, &str, &str) -> bool,
) -> Result<(), DatabaseError> {
    let mut after = seq;
    loop {
        let rows = client.query(
            "SELECT seq, line, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &PAGE],
        )?;
        for row in &rows {
            let seq: i64 = row.get(0);
            if !visit(seq, row.get(1), row.get(2)) {
                return Ok(());
            }
            after = seq;
        }
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

/// The chain check of the table, with the report of the files: `first_bad_line` names the
/// table and the row's `seq`. Besides each line's own hash and link, the `hash` column must be
/// the line's and the `seq`s must have no gap. Blocking.
pub fn verify(db: &Database) -> Result<Report, DatabaseError> {
    verify_in(&mut *db.connection()?)
}

/// [`verify`] through `client`: inside a transaction, what it would commit.
pub fn verify_in(client: &mut impl postgres::GenericClient) -> Result<Report, DatabaseError> {
    let mut report = Report::empty();
    let mut expected = GENESIS.to_string();
    let mut next_seq = 1i64;
    for_each_row_in(client, |seq, line, hash| {
        let at = LineRef {
            file: TABLE.to_string(),
            line: usize::try_from(seq).unwrap_or(usize::MAX),
        };
        let unsealed = unseal(line.as_bytes());
        let intact = seq == next_seq
            && unsealed
                .as_ref()
                .is_some_and(|u| u.hash_ok && u.prev == expected && u.hash == hash);
        if unsealed.is_some() {
            report.entries += 1;
        }
        if !intact && report.first_bad_line.is_none() {
            report.first_bad_line = Some(at);
        }
        // Go on from what the row says, so one bad row is reported once.
        expected = hash.to_string();
        next_seq = seq + 1;
        true
    })?;
    Ok(report.finished())
}

/// `%`, `_` and `\` in `needle` taken literally by LIKE.
fn like_pattern(needle: &[u8]) -> String {
    let text = String::from_utf8_lossy(needle);
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Up to `limit` entries matching `filters`, newest first (highest `seq` first), continuing
/// from `cursor`: the same rules as the files (`query::judge`), lines that cannot match left
/// out by the database (LIKE on the same needles the files are searched for). Blocking.
pub fn query(
    db: &Database,
    filters: &Filters,
    limit: usize,
    cursor: Option<&Cursor>,
) -> Result<Page, query::QueryError> {
    let end = {
        let mut conn = db.connection()?;
        let last: i64 = conn
            .query_one("SELECT coalesce(max(seq), 0) FROM audit_log", &[])
            .map_err(DatabaseError::from)?
            .get(0);
        last + 1
    };
    // A cursor is the caller's text: one past the end of the table would make the window loop
    // below walk down from anywhere up to i64::MAX.
    let before = match cursor {
        None => end,
        Some(c) => c
            .seq()
            .filter(|seq| (1..=end).contains(seq))
            .ok_or(query::CursorError::Outside)?,
    };
    let patterns: Vec<String> = filters.needles().iter().map(|n| like_pattern(n)).collect();
    let stop_before = query::stop_before(filters);
    let mut conn = db.connection()?;
    let mut entries = Vec::new();
    let mut last_seq = None;
    let mut more = false;
    // Entries before `upto` are still to be read; each statement looks at one window of
    // `WINDOW` rows at most, so a filter that rarely matches never makes one statement scan
    // the whole table (and run into the statement timeout).
    let mut upto = before;
    'windows: while upto > 1 {
        let floor = upto.saturating_sub(WINDOW).max(1);
        let rows = conn
            .query(
                "SELECT seq, line FROM audit_log
                 WHERE seq < $1 AND seq >= $2 AND line LIKE ALL($3)
                 ORDER BY seq DESC LIMIT $4",
                &[&upto, &floor, &patterns, &PAGE],
            )
            .map_err(DatabaseError::from)?;
        for row in &rows {
            let seq: i64 = row.get(0);
            let line: &str = row.get(1);
            match query::judge(filters, stop_before, line.as_bytes()) {
                Judged::Skip => {}
                Judged::Stop => break 'windows,
                Judged::Take(_) if entries.len() == limit => {
                    more = true;
                    break 'windows;
                }
                Judged::Take(v) => {
                    entries.push(v);
                    last_seq = Some(seq);
                }
            }
        }
        upto = match rows.last() {
            Some(row) if rows.len() as i64 == PAGE => row.get(0),
            _ => floor,
        };
    }
    let next_cursor = match (more, last_seq) {
        (true, Some(seq)) => Some(Cursor::before_seq(seq, filters).encode()),
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

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern(b"\"user\":\"a_b\""), "%\"user\":\"a\\_b\"%");
        assert_eq!(like_pattern(b"50%\\"), "%50\\%\\\\%");
    }
}
