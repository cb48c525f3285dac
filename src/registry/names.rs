//! The distribution grammar for repository names, tags and digests, checked before any
//! upstream call so that nothing like `../` or `%2F` ever reaches a registry URL.

use crate::error::{ErrorCode, StatusCode};
use thiserror::Error;

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
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<$name, InvalidReference> {
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

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_string!(
    /// A repository name in the distribution grammar (`team/app`).
    RepoName,
    repository
);
checked_string!(
    /// A tag: `[\w][\w.-]{0,127}`.
    Tag,
    tag
);
checked_string!(
    /// A content digest: `sha256:<64 hex>` or `sha512:<128 hex>`.
    Digest,
    digest
);

#[cfg(test)]
mod tests {
    use super::*;

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
