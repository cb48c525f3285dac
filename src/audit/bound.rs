//! No audit entry is larger than `MAX_ENTRY_BYTES`. Every field but `detail` is already short by
//! construction (names, tags and digests are validated or cut where they come in), so `detail`
//! is what gives: lists in it are cut where they are built, saying how many items were left
//! out (`list_within`), and whatever is still too long is cut by the writer (`fit`), which says
//! how much was left out.

use super::entry::{Entry, seal};

/// Largest line an entry may take on disk, its `hash` included (the newline is not counted).
pub const MAX_ENTRY_BYTES: usize = 4096;

/// Budget for one list in a `detail` that holds two (`token.issue`: requested and granted
/// scopes), leaving room for the fixed fields of the entry.
pub const LIST_BUDGET: usize = 1400;

/// `items` joined by spaces, at most `budget` bytes of them; when some do not fit, the text
/// ends with `… and N more`.
pub fn list_within(items: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let sep = usize::from(!out.is_empty());
        if out.len() + sep + item.len() > budget {
            let more = items.len() - i;
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("… and {more} more"));
            return out;
        }
        if sep == 1 {
            out.push(' ');
        }
        out.push_str(item);
    }
    out
}

/// Cuts `entry.detail` until the sealed line fits `MAX_ENTRY_BYTES`; returns whether it was cut.
/// Cut at a character boundary, ending with how many bytes were left out.
pub fn fit(entry: &mut Entry, prev: &str) -> bool {
    let (line, _) = seal(&mut entry.clone(), prev);
    if line.len() <= MAX_ENTRY_BYTES {
        return false;
    }
    let Some(detail) = entry.detail.take() else {
        // Nothing to cut: every other field is bounded where it is set.
        log::error!("audit entry of {} bytes has no detail to cut", line.len());
        return false;
    };
    // JSON escaping makes a character take up to six bytes on disk, so the longest prefix that
    // fits is searched for; a byte of detail takes at least a byte, so it is under the cap.
    let with = |keep: usize| {
        let mut e = entry.clone();
        e.detail = Some(cut_note(&detail, keep));
        seal(&mut e, prev).0.len()
    };
    let (mut fits, mut too_long) = (0, detail.len().min(MAX_ENTRY_BYTES) + 1);
    while too_long - fits > 1 {
        let mid = (fits + too_long) / 2;
        if with(mid) <= MAX_ENTRY_BYTES {
            fits = mid;
        } else {
            too_long = mid;
        }
    }
    entry.detail = Some(cut_note(&detail, fits));
    true
}

/// The line for `entry` chained after `prev`, cut to `MAX_ENTRY_BYTES` when it is larger, and
/// its hash: what every writer stores, in files or in the database.
pub fn seal_within(entry: &Entry, prev: &str) -> (Vec<u8>, String) {
    let mut e = entry.clone();
    let sealed = seal(&mut e, prev);
    // Sealed once; only an oversized entry is cut and sealed again.
    if sealed.0.len() > MAX_ENTRY_BYTES && fit(&mut e, prev) {
        log::warn!("audit entry {} cut to {MAX_ENTRY_BYTES} bytes", e.action);
        return seal(&mut e, prev);
    }
    sealed
}

/// The first `keep` bytes of `detail` (fewer, to end on a character), and what was cut.
fn cut_note(detail: &str, keep: usize) -> String {
    let mut keep = keep.min(detail.len());
    while !detail.is_char_boundary(keep) {
        keep -= 1;
    }
    format!(
        "{}… ({} more bytes cut)",
        &detail[..keep],
        detail.len() - keep
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::{GENESIS, Outcome, Source};

    fn items(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:0len$}")).collect()
    }

    #[test]
    fn a_list_that_fits_is_whole_and_a_long_one_says_how_many_were_left_out() {
        assert_eq!(list_within(&items(3, 2), 100), "00 01 02");
        assert_eq!(list_within(&[], 100), "");
        let cut = list_within(&items(64, 200), LIST_BUDGET);
        assert!(cut.ends_with("… and 58 more"), "{cut}");
        assert_eq!(cut.split(' ').filter(|w| w.len() == 200).count(), 6);
        assert!(cut.len() <= LIST_BUDGET + "… and 58 more".len() + 1);
        assert_eq!(list_within(&items(2, 300), 100), "… and 2 more");
    }

    #[test]
    fn an_oversized_detail_is_cut_to_fit_and_says_so() {
        for ch in ["x", "é", "\"", "\u{1}"] {
            let mut e = Entry::new("token.issue", "alice", Outcome::Success, Source::Api);
            e.detail = Some(ch.repeat(30_000));
            assert!(fit(&mut e, GENESIS), "{ch}");
            let (line, _) = seal(&mut e.clone(), GENESIS);
            assert!(line.len() <= MAX_ENTRY_BYTES, "{ch}: {}", line.len());
            assert!(line.len() > MAX_ENTRY_BYTES - 200, "{ch}: cut too much");
            let detail = e.detail.unwrap();
            assert!(detail.ends_with(" more bytes cut)"), "{detail}");
        }
        let mut small = Entry::new("user.create", "admin", Outcome::Success, Source::Api);
        small.detail = Some("short".into());
        assert!(!fit(&mut small, GENESIS));
        assert_eq!(small.detail.as_deref(), Some("short"));
    }
}
