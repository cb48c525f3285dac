//! Walks every audit file, oldest first, checking each line's hash and its link to the one
//! before. After a removed line, the first line whose `prev` does not match is the bad one.

use std::io::{BufRead, BufReader};

use serde::Serialize;

use super::entry::{GENESIS, unseal};
use super::files::AuditFiles;
use super::sink::TORN_LINE_ACTION;

#[derive(Debug, Serialize, PartialEq, Clone, utoipa::ToSchema)]
pub struct LineRef {
    pub file: String,
    /// 1-based.
    pub line: usize,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Report {
    pub ok: bool,
    pub entries: u64,
    pub first_bad_line: Option<LineRef>,
    /// Lines cut short by a crash: reported, not counted as tampering.
    pub torn_lines: Vec<LineRef>,
}

impl Report {
    /// Before the first line: nothing counted, nothing wrong. Both chains (the files here,
    /// the table in `store_rows`) start from this and end with [`Report::finished`].
    pub fn empty() -> Report {
        Report {
            ok: true,
            entries: 0,
            first_bad_line: None,
            torn_lines: Vec::new(),
        }
    }

    /// After the last line: the chain is whole when no line was bad (torn lines are not).
    pub fn finished(mut self) -> Report {
        self.ok = self.first_bad_line.is_none();
        self
    }
}

pub fn verify(files: &AuditFiles) -> std::io::Result<Report> {
    let mut report = Report::empty();
    let mut expected = GENESIS.to_string();
    let all = files.all();
    let last_file = all.len() - 1;
    for (i, (_, path)) in all.iter().enumerate() {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let name = AuditFiles::display_name(path);
        // A fragment is torn when it is the very last thing written, or when the writer
        // recorded it as torn in the entry right after it.
        let mut pending_torn: Option<LineRef> = None;
        for (n, line) in BufReader::with_capacity(1 << 20, file)
            .split(b'\n')
            .enumerate()
        {
            let line = line?;
            let at = LineRef {
                file: name.clone(),
                line: n + 1,
            };
            let Some(u) = unseal(&line) else {
                if pending_torn.is_some() {
                    report.first_bad_line.get_or_insert(at);
                    continue;
                }
                pending_torn = Some(at);
                continue;
            };
            report.entries += 1;
            if let Some(torn) = pending_torn.take() {
                if u.action == TORN_LINE_ACTION {
                    report.torn_lines.push(torn);
                } else {
                    report.first_bad_line.get_or_insert(torn);
                }
            }
            if report.first_bad_line.is_none() && (!u.hash_ok || u.prev != expected) {
                report.first_bad_line = Some(at);
            }
            expected = u.hash;
        }
        if let Some(torn) = pending_torn {
            if i == last_file && !ends_with_newline(path) {
                report.torn_lines.push(torn);
            } else {
                report.first_bad_line.get_or_insert(torn);
            }
        }
    }
    Ok(report.finished())
}

fn ends_with_newline(path: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1)).is_ok() && f.read_exact(&mut last).is_ok() && last[0] == b'\n'
}
