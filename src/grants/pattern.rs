//! Repository patterns for grants: a repository name whose components may hold `*` (any run of
//! characters inside one component) and whose last component may be `**` (one or more further
//! components). There is no other syntax, so a pattern always reads as the names it covers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::names;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    #[error("empty repository pattern")]
    Empty,
    #[error(
        "invalid repository pattern {0:?}: '**' may only be the whole last component (team/**, or ** alone)"
    )]
    MisplacedDoubleStar(String),
    #[error(
        "invalid repository pattern {0:?}: it must be a repository name (lowercase [a-z0-9] components joined by '.', '_', '__' or '-', separated by '/', at most 255 characters) once each '*' is read as a letter"
    )]
    Grammar(String),
}

/// A validated pattern. Equality and ordering follow the text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern {
    text: String,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let (fixed, _) = split_tail(text);
        if fixed.is_empty() {
            // Bare `**`.
            return Ok(Pattern { text: text.into() });
        }
        if fixed.split('/').any(|c| c.contains("**")) {
            return Err(PatternError::MisplacedDoubleStar(text.into()));
        }
        // A `*` can stand for a letter, so a pattern that is not a valid name with every `*`
        // read as one can match no valid name: such a pattern is a typo, not a grant.
        let as_name = fixed.replace('*', "a");
        if names::repository(&as_name).is_err() || text.len() > names::MAX_NAME_LEN {
            return Err(PatternError::Grammar(text.into()));
        }
        Ok(Pattern { text: text.into() })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `repository` (a valid repository name) is covered.
    pub fn matches(&self, repository: &str) -> bool {
        let (fixed, deep) = split_tail(&self.text);
        let mut names = repository.split('/');
        if !fixed.is_empty() {
            for part in fixed.split('/') {
                match names.next() {
                    Some(name) if glob(part.as_bytes(), name.as_bytes()) => {}
                    _ => return false,
                }
            }
        }
        match names.next() {
            // `**` needs at least one further component; components are never empty in a
            // valid name, but an empty one (`team/`) must not count as one.
            Some(rest) => deep && !rest.is_empty(),
            None => !deep,
        }
    }
}

/// The pattern without a trailing `**` component, and whether it had one.
fn split_tail(text: &str) -> (&str, bool) {
    if text == "**" {
        ("", true)
    } else if let Some(fixed) = text.strip_suffix("/**") {
        (fixed, true)
    } else {
        (text, false)
    }
}

/// `*` matches any run of bytes (none included); everything else matches itself. The classic
/// greedy walk with one backtrack point: linear enough for 255-byte names.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            back = Some((p, n));
            p += 1;
        } else if p < pattern.len() && pattern[p] == name[n] {
            p += 1;
            n += 1;
        } else if let Some((bp, bn)) = back {
            p = bp + 1;
            n = bn + 1;
            back = Some((bp, bn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Pattern, PatternError> {
        Pattern::parse(s)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        let text = String::deserialize(d)?;
        Pattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn patterns_match_the_names_they_describe() {
        let cases: &[(&str, &str, bool)] = &[
            ("team/app", "team/app", true),
            ("team/app", "team/app2", false),
            ("team/app", "team", false),
            ("team/*", "team/a", true),
            ("team/*", "team/app-1", true),
            ("team/*", "team/a/b", false),
            ("team/*", "team", false),
            ("team/*", "other/a", false),
            ("team/app-*", "team/app-web", true),
            ("team/app-*", "team/app", false),
            ("team/app-*", "team/api-web", false),
            ("*/app", "x/app", true),
            ("*/app", "x/y/app", false),
            ("*", "app", true),
            ("*", "team/app", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b*c", "acb", false),
            ("*-web", "app-web-web", true),
            ("team/**", "team/a", true),
            ("team/**", "team/a/b", true),
            ("team/**", "team/a/b/c", true),
            ("team/**", "team", false),
            ("team/**", "teams/a", false),
            ("team/**", "team/", false),
            ("t*/**", "team/a/b", true),
            ("t*/**", "x/a", false),
            ("**", "a", true),
            ("**", "a/b/c", true),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(p(pattern).matches(name), want, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_reason() {
        let cases: &[(&str, PatternError)] = &[
            ("", PatternError::Empty),
            ("**/x", PatternError::MisplacedDoubleStar("**/x".into())),
            (
                "team/**/x",
                PatternError::MisplacedDoubleStar("team/**/x".into()),
            ),
            (
                "team/a**",
                PatternError::MisplacedDoubleStar("team/a**".into()),
            ),
            (
                "team/***",
                PatternError::MisplacedDoubleStar("team/***".into()),
            ),
            ("Team/*", PatternError::Grammar("Team/*".into())),
            ("team//*", PatternError::Grammar("team//*".into())),
            ("team/", PatternError::Grammar("team/".into())),
            ("/team", PatternError::Grammar("/team".into())),
            ("team/*_", PatternError::Grammar("team/*_".into())),
            ("team/?", PatternError::Grammar("team/?".into())),
            ("team/[ab]", PatternError::Grammar("team/[ab]".into())),
            ("team:app", PatternError::Grammar("team:app".into())),
            ("../x", PatternError::Grammar("../x".into())),
        ];
        for (text, want) in cases {
            assert_eq!(Pattern::parse(text).as_ref(), Err(want), "{text:?}");
        }
        let long = format!("{}/**", "a".repeat(253));
        assert!(Pattern::parse(&long).is_err());
    }

    #[test]
    fn patterns_travel_as_plain_strings() {
        let v: Vec<Pattern> = serde_json::from_str(r#"["team/*","**"]"#).unwrap();
        assert_eq!(v, vec![p("team/*"), p("**")]);
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"["team/*","**"]"#);
        assert!(serde_json::from_str::<Pattern>(r#""team/**/x""#).is_err());
    }
}
