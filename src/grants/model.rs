//! The content of `grants.json`: per-user grants, grants for every signed-in user, and the
//! patterns anyone (signed in or not) may pull. Every value that reaches this type is valid and
//! normalised, whether it came from the file or from the API.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use super::pattern::{Pattern, PatternError};
use crate::error::{ErrorCode, StatusCode};
use crate::names::Action;

/// Grants in one list beyond this are refused: the file is read on every `/token`.
pub const MAX_GRANTS_PER_LIST: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GrantError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("unknown action {0:?}: use pull, push or delete")]
    UnknownAction(String),
    #[error("a grant needs at least one action")]
    NoActions,
    #[error("{list} has {count} entries; at most {MAX_GRANTS_PER_LIST} are allowed")]
    TooMany { list: String, count: usize },
}

impl ErrorCode for GrantError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &'static str {
        "invalid_grant"
    }
}

/// A grant as it arrives (API body or file), before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    pub repository: String,
    pub actions: Vec<String>,
}

/// A valid grant: `actions` sorted, deduplicated, never empty, and holding `pull` whenever it
/// holds `push` (pushing needs the reads a push makes, so a push-only grant would not work).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GrantSpec")]
pub struct Grant {
    pub repository: Pattern,
    actions: Vec<Action>,
}

impl Grant {
    pub fn new<S: AsRef<str>>(repository: &str, actions: &[S]) -> Result<Grant, GrantError> {
        let repository = Pattern::parse(repository)?;
        let mut set = BTreeSet::new();
        for a in actions {
            let a = a.as_ref();
            set.insert(Action::parse(a).ok_or_else(|| GrantError::UnknownAction(a.into()))?);
        }
        if set.is_empty() {
            return Err(GrantError::NoActions);
        }
        if set.contains(&Action::Push) {
            set.insert(Action::Pull);
        }
        Ok(Grant {
            repository,
            actions: set.into_iter().collect(),
        })
    }

    /// Sorted and deduplicated.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }
}

impl TryFrom<GrantSpec> for Grant {
    type Error = GrantError;
    fn try_from(spec: GrantSpec) -> Result<Grant, GrantError> {
        Grant::new(&spec.repository, &spec.actions)
    }
}

/// Validates one list of grants (a user's, or `everyone`); `list` names it in the error.
pub fn validate_list(list: &str, specs: Vec<GrantSpec>) -> Result<Vec<Grant>, GrantError> {
    check_len(list, specs.len())?;
    specs.into_iter().map(Grant::try_from).collect()
}

/// Validates the list of public patterns.
pub fn validate_public(patterns: &[impl AsRef<str>]) -> Result<Vec<Pattern>, GrantError> {
    check_len("public", patterns.len())?;
    patterns
        .iter()
        .map(|p| Pattern::parse(p.as_ref()).map_err(GrantError::from))
        .collect()
}

fn check_len(list: &str, count: usize) -> Result<(), GrantError> {
    if count > MAX_GRANTS_PER_LIST {
        return Err(GrantError::TooMany {
            list: list.into(),
            count,
        });
    }
    Ok(())
}

/// The whole file. Grants only add up: there is no deny and no order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "GrantsFile")]
pub struct Grants {
    users: BTreeMap<String, Vec<Grant>>,
    everyone: Vec<Grant>,
    public: Vec<Pattern>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    #[serde(default)]
    users: BTreeMap<String, Vec<Grant>>,
    #[serde(default)]
    everyone: Vec<Grant>,
    #[serde(default)]
    public: Vec<Pattern>,
}

impl TryFrom<GrantsFile> for Grants {
    type Error = GrantError;
    fn try_from(f: GrantsFile) -> Result<Grants, GrantError> {
        for (user, grants) in &f.users {
            check_len(&format!("the grants of {user:?}"), grants.len())?;
        }
        check_len("everyone", f.everyone.len())?;
        check_len("public", f.public.len())?;
        // A user with an empty list is the same as a user without one; keep one spelling.
        let users = f.users.into_iter().filter(|(_, g)| !g.is_empty()).collect();
        Ok(Grants {
            users,
            everyone: f.everyone,
            public: f.public,
        })
    }
}

impl Grants {
    pub fn user(&self, name: &str) -> &[Grant] {
        self.users.get(name).map_or(&[], Vec::as_slice)
    }

    pub fn users(&self) -> &BTreeMap<String, Vec<Grant>> {
        &self.users
    }

    pub fn everyone(&self) -> &[Grant] {
        &self.everyone
    }

    pub fn public(&self) -> &[Pattern] {
        &self.public
    }

    /// Replaces a user's grants; an empty list removes the entry.
    pub fn set_user(&mut self, name: &str, grants: Vec<Grant>) -> Result<(), GrantError> {
        check_len(&format!("the grants of {name:?}"), grants.len())?;
        if grants.is_empty() {
            self.users.remove(name);
        } else {
            self.users.insert(name.into(), grants);
        }
        Ok(())
    }

    /// For deleting the account: its grants go in the same write.
    pub fn remove_user(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
    }

    pub fn set_everyone(&mut self, grants: Vec<Grant>) -> Result<(), GrantError> {
        check_len("everyone", grants.len())?;
        self.everyone = grants;
        Ok(())
    }

    pub fn set_public(&mut self, patterns: Vec<Pattern>) -> Result<(), GrantError> {
        check_len("public", patterns.len())?;
        self.public = patterns;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_normalised_so_push_always_lists_pull() {
        let cases: &[(&[&str], &[Action])] = &[
            (&["push"], &[Action::Pull, Action::Push]),
            (&["pull"], &[Action::Pull]),
            (&["delete"], &[Action::Delete]),
            (&["push", "pull", "push"], &[Action::Pull, Action::Push]),
            (
                &["push", "delete"],
                &[Action::Delete, Action::Pull, Action::Push],
            ),
        ];
        for &(given, want) in cases {
            let g = Grant::new("team/*", given).unwrap();
            assert_eq!(g.actions(), want, "{given:?}");
        }
    }

    #[test]
    fn a_grant_with_a_bad_action_or_pattern_is_refused() {
        assert_eq!(
            Grant::new("team/*", &["pull", "admin"]),
            Err(GrantError::UnknownAction("admin".into()))
        );
        assert_eq!(
            Grant::new("team/*", &["*"]),
            Err(GrantError::UnknownAction("*".into()))
        );
        assert_eq!(
            Grant::new::<&str>("team/*", &[]),
            Err(GrantError::NoActions)
        );
        assert!(matches!(
            Grant::new("team/**/x", &["pull"]),
            Err(GrantError::Pattern(_))
        ));
    }

    #[test]
    fn the_file_reads_and_writes_in_normal_form() {
        let text = r#"{
            "users": {"alice": [{"repository": "team/**", "actions": ["push"]}], "bob": []},
            "everyone": [{"repository": "shared/*", "actions": ["pull"]}],
            "public": ["library/*"]
        }"#;
        let g: Grants = serde_json::from_str(text).unwrap();
        assert_eq!(g.user("alice")[0].actions(), [Action::Pull, Action::Push]);
        assert!(g.user("bob").is_empty());
        assert!(g.user("carol").is_empty());
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"users":{"alice":[{"repository":"team/**","actions":["pull","push"]}]},"everyone":[{"repository":"shared/*","actions":["pull"]}],"public":["library/*"]}"#
        );
        let empty: Grants = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Grants::default());
    }

    #[test]
    fn a_file_with_any_invalid_entry_is_refused_whole() {
        for bad in [
            r#"{"users":{"a":[{"repository":"Team","actions":["pull"]}]}}"#,
            r#"{"everyone":[{"repository":"x","actions":["pul"]}]}"#,
            r#"{"everyone":[{"repository":"x","actions":["pull"],"extra":1}]}"#,
            r#"{"public":["**/x"]}"#,
            r#"{"publik":[]}"#,
        ] {
            assert!(serde_json::from_str::<Grants>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn more_than_one_hundred_grants_in_a_list_are_refused() {
        let spec = |i: usize| GrantSpec {
            repository: format!("r{i}"),
            actions: vec!["pull".into()],
        };
        assert_eq!(
            validate_list("everyone", (0..100).map(spec).collect()).map(|v| v.len()),
            Ok(100)
        );
        assert_eq!(
            validate_list("everyone", (0..101).map(spec).collect()),
            Err(GrantError::TooMany {
                list: "everyone".into(),
                count: 101
            })
        );
        let many: Vec<String> = (0..101).map(|i| format!("r{i}")).collect();
        assert!(matches!(
            validate_public(&many),
            Err(GrantError::TooMany { .. })
        ));
        let mut g = Grants::default();
        let grants = (0..101).map(|i| Grant::new(&format!("r{i}"), &["pull"]).unwrap());
        assert!(g.set_user("alice", grants.collect()).is_err());
        let file = format!(
            r#"{{"users":{{"a":[{}]}}}}"#,
            vec![r#"{"repository":"x","actions":["pull"]}"#; 101].join(",")
        );
        assert!(serde_json::from_str::<Grants>(&file).is_err());
    }

    #[test]
    fn setting_an_empty_list_removes_the_user_entry() {
        let mut g = Grants::default();
        g.set_user("alice", vec![Grant::new("a", &["pull"]).unwrap()])
            .unwrap();
        assert_eq!(g.users().len(), 1);
        g.set_user("alice", vec![]).unwrap();
        assert!(g.users().is_empty());
        g.set_user("bob", vec![Grant::new("a", &["pull"]).unwrap()])
            .unwrap();
        assert!(g.remove_user("bob"));
        assert!(!g.remove_user("bob"));
    }
}
