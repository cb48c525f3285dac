//! The htpasswd format exactly as registry:2 reads it (docs/registry-facts.md, "The htpasswd file"):
//! each line trimmed, blank lines and `#` comments skipped, `user:hash` split at the first
//! colon, and for a duplicated user the last line wins. Lines we do not own are kept as they
//! are, so hand edits and the `htpasswd` tool's users survive our writes.

use std::collections::HashMap;

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
#[error("htpasswd: invalid entry at line {line}: no ':' separator")]
pub struct ParseError {
    /// 1-based, as the registry reports it.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Line {
    /// A blank line or a comment, kept verbatim.
    Other(String),
    Entry {
        user: String,
        hash: String,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Htpasswd {
    lines: Vec<Line>,
}

impl Htpasswd {
    pub fn parse(text: &str) -> Result<Htpasswd, ParseError> {
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or(ParseError { line: i + 1 })?;
            lines.push(Line::Entry {
                user: user.to_string(),
                hash: hash.to_string(),
            });
        }
        Ok(Htpasswd { lines })
    }

    /// `\n` endings and a trailing newline, so a later `>>` append cannot join two lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Other(raw) => out.push_str(raw),
                Line::Entry { user, hash } => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(hash);
                }
            }
            out.push('\n');
        }
        out
    }

    /// The hash registry:2 would use for `user` (the last line wins).
    pub fn get(&self, user: &str) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Entry { user: u, hash } if u == user => Some(hash.as_str()),
            _ => None,
        })
    }

    /// Every user with the hash registry:2 would use.
    pub fn entries(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        for line in &self.lines {
            if let Line::Entry { user, hash } = line {
                map.insert(user.clone(), hash.clone());
            }
        }
        map
    }

    /// Sets `user`'s hash: the first line of that user is rewritten in place and any duplicates
    /// dropped, so the file stays unambiguous; a new user is appended.
    pub fn set(&mut self, user: &str, new_hash: &str) {
        let mut seen = false;
        self.lines.retain_mut(|l| match l {
            Line::Entry { user: u, hash } if u == user => {
                if seen {
                    return false;
                }
                seen = true;
                *hash = new_hash.to_string();
                true
            }
            _ => true,
        });
        if !seen {
            self.lines.push(Line::Entry {
                user: user.to_string(),
                hash: new_hash.to_string(),
            });
        }
    }

    /// Removes every line of `user`; returns the hash that was in force, if any.
    pub fn remove(&mut self, user: &str) -> Option<String> {
        let current = self.get(user).map(str::to_string);
        self.lines
            .retain(|l| !matches!(l, Line::Entry { user: u, .. } if u == user));
        current
    }
}

/// A bcrypt hash in the `$2y$` form Apache's `htpasswd -B` writes, so both tools read our lines.
pub fn bcrypt_hash(password: &str, cost: u32) -> Result<String, bcrypt::BcryptError> {
    Ok(bcrypt::hash_with_result(password, cost)?.format_for_version(bcrypt::Version::TwoY))
}

/// Whether registry:2 would accept this hash at all: it verifies bcrypt only.
pub fn is_bcrypt(hash: &str) -> bool {
    ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_registry() {
        let text = "# comment\r\n\n  alice:$2y$05$abc  \r\nbob:h1\nbob:h2\n";
        let h = Htpasswd::parse(text).unwrap();
        assert_eq!(h.get("alice"), Some("$2y$05$abc"));
        assert_eq!(h.get("bob"), Some("h2"), "last line wins");
        assert_eq!(h.entries().len(), 2);
        assert_eq!(h.get("carol"), None);
    }

    #[test]
    fn a_line_without_colon_fails_with_its_number() {
        assert_eq!(
            Htpasswd::parse("a:b\n#c\nbroken\n"),
            Err(ParseError { line: 3 })
        );
    }

    #[test]
    fn render_keeps_foreign_lines_and_ends_with_newline() {
        let mut h = Htpasswd::parse("# keep me\nalice:x").unwrap();
        h.set("bob", "y");
        assert_eq!(h.render(), "# keep me\nalice:x\nbob:y\n");
        assert_eq!(Htpasswd::parse(&h.render()).unwrap(), h);
    }

    #[test]
    fn set_collapses_duplicates_and_remove_drops_all() {
        let mut h = Htpasswd::parse("dup:1\nother:o\ndup:2\n").unwrap();
        h.set("dup", "3");
        assert_eq!(h.render(), "dup:3\nother:o\n");
        h.set("dup", "4");
        assert_eq!(h.remove("dup"), Some("4".into()));
        assert_eq!(h.render(), "other:o\n");
        assert_eq!(h.remove("dup"), None);
    }

    #[test]
    fn bcrypt_prefixes() {
        assert!(is_bcrypt("$2y$05$x"));
        assert!(is_bcrypt("$2b$10$x"));
        assert!(!is_bcrypt("$apr1$x"));
        assert!(!is_bcrypt("{SHA}x"));
    }
}
