//! Core names, parsed once at the edge and passed as types: repository names, tags and
//! digests in the distribution grammar (so that nothing like `../` or `%2F` ever reaches a
//! registry URL), usernames, roles, and the one `Action` on a repository. Nothing here imports
//! a slice: every layer above may name these types.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use crate::error::{ErrorCode, StatusCode};

#[derive(Debug, Error, PartialEq)]
pub enum InvalidReference {
    #[error(
        "invalid repository name {0:?}: use lowercase path components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', at most 255 characters"
    )]
    Name(String),
    #[error(
        "invalid tag {0:?}: use up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'"
    )]
    Tag(String),
    #[error("invalid digest {0:?}: use algorithm:hex, e.g. sha256:<64 hex digits>")]
    Digest(String),
    /// A path that cannot even be split into a repository name (bad percent-encoding, an
    /// encoded slash, an empty segment); the text says which.
    #[error("{0}")]
    Path(String),
}

impl ErrorCode for InvalidReference {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &'static str {
        match self {
            InvalidReference::Name(_) | InvalidReference::Path(_) => "invalid_name",
            InvalidReference::Tag(_) => "invalid_tag",
            InvalidReference::Digest(_) => "invalid_digest",
        }
    }
}

pub const MAX_NAME_LEN: usize = 255;
pub const MAX_TAG_LEN: usize = 128;

/// One path component: `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or any number of '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

pub fn repository(name: &str) -> Result<(), InvalidReference> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.split('/').all(component_ok) {
        return Err(InvalidReference::Name(name.to_string()));
    }
    Ok(())
}

/// `[\w][\w.-]{0,127}`.
pub fn tag(tag: &str) -> Result<(), InvalidReference> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-');
    if !ok {
        return Err(InvalidReference::Tag(tag.to_string()));
    }
    Ok(())
}

/// `algorithm:encoded`, with the lengths the registry accepts for sha256 and sha512.
pub fn digest(d: &str) -> Result<(), InvalidReference> {
    let bad = || InvalidReference::Digest(d.to_string());
    let (alg, hex) = d.split_once(':').ok_or_else(bad)?;
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(bad()),
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(bad());
    }
    Ok(())
}

/// A string that passed its grammar check, so a handler signature says what it holds and no
/// unchecked `&str` can reach an upstream URL. It reads as `&str` everywhere else.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $check:path, $err:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<$name, $err> {
                let value = value.into();
                $check(&value)?;
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

checked_string!(
    /// A repository name in the distribution grammar (`team/app`).
    RepoName,
    repository,
    InvalidReference
);
checked_string!(
    /// A tag: `[\w][\w.-]{0,127}`.
    Tag,
    tag,
    InvalidReference
);
checked_string!(
    /// A content digest: `sha256:<64 hex>` or `sha512:<128 hex>`.
    Digest,
    digest,
    InvalidReference
);

/// What a manifest is asked for by: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) => t.as_str(),
            Reference::Digest(d) => d.as_str(),
        }
    }
}

impl From<Tag> for Reference {
    fn from(t: Tag) -> Reference {
        Reference::Tag(t)
    }
}

impl From<Digest> for Reference {
    fn from(d: Digest) -> Reference {
        Reference::Digest(d)
    }
}

impl From<&Tag> for Reference {
    fn from(t: &Tag) -> Reference {
        Reference::Tag(t.clone())
    }
}

impl From<&Digest> for Reference {
    fn from(d: &Digest) -> Reference {
        Reference::Digest(d.clone())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A username that breaks the account-name rules; the text says which rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct InvalidUsername(pub String);

impl ErrorCode for InvalidUsername {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &'static str {
        "invalid_username"
    }
}

pub const MAX_USERNAME_CHARS: usize = 64;

/// Letters, digits, '.', '_', '@', '-'; 1 to 64 of them; not starting with '-' or '.'.
pub fn username(name: &str) -> Result<(), InvalidUsername> {
    let fail = |why: &str| Err(InvalidUsername(format!("invalid username: {why}")));
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_USERNAME_CHARS {
        return fail("it is longer than 64 characters");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        return fail(&format!(
            "{c:?} is not allowed (use letters, digits, '.', '_', '@', '-')"
        ));
    }
    if name.starts_with('-') || name.starts_with('.') {
        return fail("it must not start with '-' or '.'");
    }
    Ok(())
}

checked_string!(
    /// A username that passed [`username`]: what handlers take instead of a raw path segment.
    Username,
    username,
    InvalidUsername
);

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    /// registry-admin's own account toward registry:2; never assignable through the API.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Service => "service",
        }
    }
}

/// What may be done on a repository: pull, push or delete.
// The one action type of grants, policy, token scopes and upstream requests. Declared in
// alphabetical order so that sets of actions come out sorted as text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Delete,
    Pull,
    Push,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Delete, Action::Pull, Action::Push];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Pull => "pull",
            Action::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller asked for on one resource: named actions, and/or `*` for every action it
/// may have there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub actions: BTreeSet<Action>,
    pub any: bool,
}

impl Wanted {
    pub fn any() -> Wanted {
        Wanted {
            actions: BTreeSet::new(),
            any: true,
        }
    }

    pub fn of(actions: &[Action]) -> Wanted {
        Wanted {
            actions: actions.iter().copied().collect(),
            any: false,
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.any && self.actions.is_empty()
    }

    /// Adds what `other` asked for (a resource named twice in one request).
    pub fn merge(&mut self, other: &Wanted) {
        self.any |= other.any;
        self.actions.extend(other.actions.iter().copied());
    }
}

/// What a scope is about: one repository, or the registry's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Repository(RepoName),
    /// `registry:catalog`.
    Catalog,
}

/// Actions on one resource, as the token spec's scopes write them: what a `GET /token` asks
/// for, and what the decision grants. For the catalog only `any` (`*`) means something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub resource: Resource,
    pub wanted: Wanted,
}

impl fmt::Display for Scope {
    /// The spec's own spelling (`repository:team/app:pull,push`), for audit details.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Resource::Catalog => f.write_str("registry:catalog:*"),
            Resource::Repository(name) => {
                let mut actions: Vec<&str> =
                    self.wanted.actions.iter().map(|a| a.as_str()).collect();
                if self.wanted.any {
                    actions.push("*");
                }
                write!(f, "repository:{name}:{}", actions.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_holds_only_a_valid_name() {
        assert_eq!(Username::parse("alice").unwrap().as_str(), "alice");
        assert!(Username::parse("-x").is_err() && Username::parse("a:b").is_err());
    }

    #[test]
    fn usernames() {
        for ok in ["a", "alice", "a.b_c@d-e", "A9", &"x".repeat(64)] {
            assert_eq!(username(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a:b",
            "a\nb",
            "a\0b",
            "a b",
            "é",
            "-a",
            ".a",
            "a/b",
            "..%2Fadmin",
            &"x".repeat(65),
        ] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn actions_read_and_print_lowercase() {
        assert_eq!(serde_json::to_string(&Action::Pull).unwrap(), "\"pull\"");
        assert_eq!(Action::parse("delete"), Some(Action::Delete));
        assert_eq!(Action::parse("*"), None);
        assert_eq!(
            serde_json::to_string(&Role::Service).unwrap(),
            "\"service\""
        );
    }

    #[test]
    fn checked_strings_hold_only_what_their_grammar_allows() {
        let name = RepoName::parse("team/app").unwrap();
        assert_eq!((name.as_str(), &*name), ("team/app", "team/app"));
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"team/app\"");
        assert!(RepoName::parse("../etc").is_err());
        assert!(Tag::parse("v1.0").is_ok() && Tag::parse(".hidden").is_err());
        assert!(Digest::parse(format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(Digest::parse("sha256:abc").is_err());
    }

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "app",
            "team/app",
            "x/tags",
            "a.b_c__d---e/f9",
            "library/ubuntu",
            &"a".repeat(255),
        ] {
            assert_eq!(repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "A/b",
            "a//b",
            "/a",
            "a/",
            "team%2Fapp",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a b",
            "a:b",
            &"a".repeat(256),
        ] {
            assert!(repository(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags() {
        for ok in ["v1", "latest", "1.0.0-rc_1", "_x", "V", &"t".repeat(128)] {
            assert_eq!(tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-tag", ".tag", "a/b", "a:b", "é", &"t".repeat(129)] {
            assert!(tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digests() {
        assert!(digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        for bad in [
            "sha256:abc",
            "md5:abc",
            "sha256",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(digest(bad).is_err(), "{bad:?}");
        }
    }
}
