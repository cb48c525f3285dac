//! One audit entry and the hash chain that links it to the one before.
//!
//! The entry is serialised with `prev` and without `hash` as compact JSON, giving bytes `B`;
//! `hash` = hex SHA-256 of (`prev` as 64 hex characters, then `B`); the line written is `B` with
//! `,"hash":"<hash>"` inserted before its final `}`. Anyone can check a line by removing that last
//! member and hashing.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every action an entry can carry; `GET /audit?action=` accepts these only, so a typo is a 400
/// that lists them instead of a silently empty answer.
pub const ACTIONS: &[&str] = &[
    "audit.export",
    "audit.torn_line",
    "auth.failure",
    "auth.token",
    "backup.restore",
    "cluster.import",
    "gc.finish",
    "gc.start",
    "grants.update",
    "image.delete",
    "image.pull",
    "image.push",
    "retention.apply",
    "retention.plan",
    "retention.update",
    "robot.create",
    "robot.delete",
    "robot.expired",
    "robot.grants",
    "robot.rotate",
    "tag.delete",
    "token.issue",
    "user.create",
    "user.delete",
    "user.disable",
    "user.enable",
    "user.password",
    "user.role",
];

/// `prev` of the first entry ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Api,
    Registry,
    /// A command run on the host (`registry-admin reset-password`, `restore`).
    Cli,
}

/// Field order is the order on disk: `time` first keeps time filters cheap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    pub time: String,
    pub action: String,
    pub actor: String,
    pub outcome: Outcome,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many identical entries before this one were not written one by one (see
    /// `coalesce`): this entry stands for them too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u64>,
    /// Set by the writer, which owns the chain.
    #[serde(default)]
    pub prev: String,
}

/// Text from outside (attempted usernames, registry event fields) as it may be written: no
/// control characters, at most `max` characters.
pub fn clean(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Entry {
    pub fn new(action: &str, actor: &str, outcome: Outcome, source: Source) -> Entry {
        Entry {
            time: format_time(Utc::now()),
            action: action.to_string(),
            actor: actor.to_string(),
            outcome,
            source,
            user: None,
            image: None,
            tag: None,
            digest: None,
            status: None,
            request_id: None,
            remote_addr: None,
            detail: None,
            repeats: None,
            prev: String::new(),
        }
    }
}

fn chain_hash(prev: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// The line for `entry` chained after `prev` (no newline), and its hash.
pub fn seal(entry: &mut Entry, prev: &str) -> (Vec<u8>, String) {
    entry.prev = prev.to_string();
    // Serialising a struct of strings and numbers cannot fail.
    let body = serde_json::to_vec(entry).unwrap_or_default();
    let hash = chain_hash(prev, &body);
    let mut line = body;
    line.pop(); // the final '}'
    line.extend_from_slice(b",\"hash\":\"");
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    (line, hash)
}

/// A line taken apart: its `prev`, the hash it states, and whether that hash is right.
#[derive(Debug, PartialEq)]
pub struct Unsealed {
    pub prev: String,
    pub hash: String,
    pub hash_ok: bool,
    pub action: String,
}

/// Splits a line into `B` and its stated hash; `None` when it is not a sealed entry at all.
pub fn unseal(line: &[u8]) -> Option<Unsealed> {
    const MARK: &[u8] = b",\"hash\":\"";
    let tail_len = MARK.len() + 64 + 2;
    if line.len() < tail_len || !line.ends_with(b"\"}") {
        return None;
    }
    let split = line.len() - tail_len;
    if &line[split..split + MARK.len()] != MARK {
        return None;
    }
    let hash = std::str::from_utf8(&line[split + MARK.len()..line.len() - 2]).ok()?;
    if !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut body = line[..split].to_vec();
    body.push(b'}');
    #[derive(Deserialize)]
    struct Head {
        prev: String,
        action: String,
    }
    let head: Head = serde_json::from_slice(&body).ok()?;
    let hash_ok = chain_hash(&head.prev, &body) == hash;
    Some(Unsealed {
        prev: head.prev,
        hash: hash.to_string(),
        hash_ok,
        action: head.action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_verifies_and_any_edit_breaks_it() {
        let mut e = Entry::new("user.create", "admin", Outcome::Success, Source::Api);
        e.user = Some("alice".into());
        let (line, hash) = seal(&mut e, GENESIS);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with("{\"time\":\""), "{text}");
        assert!(text.ends_with(&format!(",\"hash\":\"{hash}\"}}")));
        let u = unseal(&line).unwrap();
        assert_eq!(
            (u.prev.as_str(), u.hash.as_str(), u.hash_ok),
            (GENESIS, hash.as_str(), true)
        );

        // The documented recipe, done by hand: drop the last member, hash prev + B.
        let body = format!("{}}}", &text[..text.rfind(",\"hash\"").unwrap()]);
        assert_eq!(chain_hash(GENESIS, body.as_bytes()), hash);

        let edited = text.replace("alice", "alicf");
        assert!(!unseal(edited.as_bytes()).unwrap().hash_ok);
        assert!(unseal(b"{\"time\":\"2026").is_none());
    }
}
