//! Retention policies: what people write (`Policy`, kept as given in `retention.json`) and the
//! checked, compiled form evaluation uses (`Compiled`). Everything is validated strictly — an
//! unknown field is an error, not ignored — because a misspelt criterion would otherwise keep
//! or drop tags nobody meant to.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::grants::Pattern;

/// At most this many policies in `retention.json`.
pub const MAX_POLICIES: usize = 100;
/// At most this many rules in one policy.
pub const MAX_RULES: usize = 20;
/// At most this many `protect` expressions in one policy.
pub const MAX_PROTECT: usize = 50;
/// A regular expression is at most this long (characters).
pub const MAX_REGEX_LEN: usize = 512;
/// Compiled size cap: a short expression can still compile into a huge automaton.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// `newest_*` counts are at most this.
pub const MAX_COUNT: u64 = 100_000;
/// Durations are at most ten years.
const MAX_DURATION_MINUTES: u64 = 10 * 366 * 24 * 60;

#[derive(Debug, Error, PartialEq)]
#[error("{0}")]
pub struct InvalidPolicy(pub String);

fn invalid(msg: impl Into<String>) -> InvalidPolicy {
    InvalidPolicy(msg.into())
}

/// One policy as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// A repository pattern (the grant grammar: `team/*`, `team/**`, `**`).
    pub repositories: String,
    /// Full-match regular expressions on the tag: a matching tag is always kept.
    #[serde(default)]
    pub protect: Vec<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A retain rule: keeps the tags it selects that meet all of its criteria.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_pushed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_within: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_pulled: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled_within: Option<String>,
}

/// `retention.json` and the body of `PUT /retention`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    pub policies: Vec<Policy>,
}

/// A tag expression compiled to match the whole tag, never a part of it.
#[derive(Debug, Clone)]
pub struct TagRegex {
    pub text: String,
    re: Regex,
}

impl TagRegex {
    pub fn parse(text: &str) -> Result<TagRegex, InvalidPolicy> {
        if text.is_empty() || text.chars().count() > MAX_REGEX_LEN {
            return Err(invalid(format!(
                "a tag expression must be 1-{MAX_REGEX_LEN} characters"
            )));
        }
        let re = RegexBuilder::new(&format!("^(?:{text})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| {
                let first = e.to_string();
                let first = first.lines().last().unwrap_or("").trim().to_string();
                invalid(format!("invalid tag expression {text:?}: {first}"))
            })?;
        Ok(TagRegex {
            text: text.to_string(),
            re,
        })
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.re.is_match(tag)
    }
}

/// `<n>d`, `<n>h` or `<n>m`, as minutes.
pub fn parse_duration(text: &str) -> Result<u64, InvalidPolicy> {
    let bad = || {
        invalid(format!(
            "invalid duration {text:?}: write <n>d, <n>h or <n>m, e.g. 30d"
        ))
    };
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 9 {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "d" => n * 24 * 60,
        "h" => n * 60,
        "m" => n,
        _ => return Err(bad()),
    };
    if minutes == 0 || minutes > MAX_DURATION_MINUTES {
        return Err(invalid(format!(
            "invalid duration {text:?}: it must be more than 0 and at most 10 years"
        )));
    }
    Ok(minutes)
}

#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// How the rule is named in reasons: `policy 1 rule 2`.
    pub label: String,
    pub include: Option<TagRegex>,
    pub exclude: Option<TagRegex>,
    pub newest_pushed: Option<usize>,
    pub pushed_within_minutes: Option<u64>,
    pub newest_pulled: Option<usize>,
    pub pulled_within_minutes: Option<u64>,
}

impl CompiledRule {
    pub fn selects(&self, tag: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.matches(tag))
            && !self.exclude.as_ref().is_some_and(|r| r.matches(tag))
    }
}

#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub pattern: Pattern,
    pub protect: Vec<TagRegex>,
    pub rules: Vec<CompiledRule>,
}

/// The policies in force, compiled once per plan.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    pub policies: Vec<CompiledPolicy>,
}

impl Compiled {
    /// The policies matching `repository`; empty means the repository is left alone.
    pub fn for_repository(&self, repository: &str) -> Vec<&CompiledPolicy> {
        self.policies
            .iter()
            .filter(|p| p.pattern.matches(repository))
            .collect()
    }
}

fn count(what: &str, n: Option<u64>) -> Result<Option<usize>, InvalidPolicy> {
    match n {
        None => Ok(None),
        Some(n) if (1..=MAX_COUNT).contains(&n) => Ok(Some(n as usize)),
        Some(_) => Err(invalid(format!("{what} must be from 1 to {MAX_COUNT}"))),
    }
}

/// Checks and compiles; the first problem found is the error, naming where it is.
pub fn compile(p: &Policies) -> Result<Compiled, InvalidPolicy> {
    if p.policies.len() > MAX_POLICIES {
        return Err(invalid(format!("at most {MAX_POLICIES} policies")));
    }
    let mut policies = Vec::with_capacity(p.policies.len());
    for (i, policy) in p.policies.iter().enumerate() {
        let at = format!("policy {}", i + 1);
        let pattern =
            Pattern::parse(&policy.repositories).map_err(|e| invalid(format!("{at}: {e}")))?;
        if policy.rules.len() > MAX_RULES {
            return Err(invalid(format!("{at}: at most {MAX_RULES} rules")));
        }
        if policy.protect.len() > MAX_PROTECT {
            return Err(invalid(format!(
                "{at}: at most {MAX_PROTECT} protect expressions"
            )));
        }
        let protect = policy
            .protect
            .iter()
            .map(|r| TagRegex::parse(r).map_err(|e| invalid(format!("{at} protect: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::with_capacity(policy.rules.len());
        for (j, r) in policy.rules.iter().enumerate() {
            let at = format!("{at} rule {}", j + 1);
            let wrap = |e: InvalidPolicy| invalid(format!("{at}: {e}"));
            let regex = |t: &Option<String>| t.as_deref().map(TagRegex::parse).transpose();
            rules.push(CompiledRule {
                label: at.clone(),
                include: regex(&r.include).map_err(wrap)?,
                exclude: regex(&r.exclude).map_err(wrap)?,
                newest_pushed: count("newest_pushed", r.newest_pushed).map_err(wrap)?,
                pushed_within_minutes: r
                    .pushed_within
                    .as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(wrap)?,
                newest_pulled: count("newest_pulled", r.newest_pulled).map_err(wrap)?,
                pulled_within_minutes: r
                    .pulled_within
                    .as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(wrap)?,
            });
        }
        policies.push(CompiledPolicy {
            pattern,
            protect,
            rules,
        });
    }
    Ok(Compiled { policies })
}

/// Parses a request body strictly: unknown fields, wrong types and bad values are all
/// `InvalidPolicy`, never a silent default.
pub fn parse_body(body: serde_json::Value) -> Result<(Policies, Compiled), InvalidPolicy> {
    let policies: Policies =
        serde_json::from_value(body).map_err(|e| invalid(format!("invalid policies: {e}")))?;
    let compiled = compile(&policies)?;
    Ok((policies, compiled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tag_expressions_match_the_whole_tag() {
        let r = TagRegex::parse("v[0-9]+").unwrap();
        assert!(r.matches("v12"));
        assert!(!r.matches("v12-rc"), "a partial match is no match");
        assert!(!r.matches("xv1"));
        let alt = TagRegex::parse("latest|stable").unwrap();
        assert!(alt.matches("latest") && alt.matches("stable") && !alt.matches("latest2"));
        assert!(TagRegex::parse("(").is_err());
        assert!(TagRegex::parse("").is_err());
        assert!(TagRegex::parse("a{1000}{1000}").is_err(), "size limit");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 24 * 60));
        assert_eq!(parse_duration("2h"), Ok(120));
        assert_eq!(parse_duration("5m"), Ok(5));
        for bad in [
            "",
            "d",
            "0d",
            "5",
            "5s",
            "-1d",
            "1.5d",
            "99999999999d",
            "1 d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let ok = json!({"policies": [{"repositories": "team/**", "protect": ["v.*"],
            "rules": [{"include": "ci-.*", "newest_pushed": 3, "pushed_within": "7d"}]}]});
        assert!(parse_body(ok).is_ok());
        for bad in [
            json!({"policies": [{"repositories": "**", "rules": [{"newest_push": 3}]}]}),
            json!({"policies": [{"repositories": "**", "extra": 1}]}),
            json!({"policies": [{"repositories": "**", "rules": [{"include": "("}]}]}),
            json!({"policies": [{"repositories": "Team", "rules": []}]}),
            json!({"policies": [{"repositories": "**", "rules": [{"newest_pushed": 0}]}]}),
            json!({"policies": [{"repositories": "**", "rules": [{"pulled_within": "1w"}]}]}),
            json!({"policies": [{"repositories": "**", "rules": [{"newest_pulled": -1}]}]}),
            json!({"polices": []}),
            json!({}),
        ] {
            assert!(parse_body(bad.clone()).is_err(), "{bad}");
        }
        let many = json!({"policies": vec![json!({"repositories": "**"}); 101]});
        assert!(parse_body(many).is_err());
        let rules = json!({"policies": [{"repositories": "**", "rules": vec![json!({}); 21]}]});
        assert!(parse_body(rules).is_err());
    }
}
