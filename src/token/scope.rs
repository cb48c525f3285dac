//! The `scope` parameters of `GET /token` (docs/registry-facts.md, "The token request"): several
//! space-separated scopes per parameter, each `TYPE:NAME:ACTIONS`.
//!
//! The type runs to the first ':' and the actions follow the last one, so a name holding ':'
//! reaches the name check (and fails it) rather than shifting the actions. Types and actions
//! this service does not grant are left out, not refused: clients ask for what they might use.

use thiserror::Error;

use crate::error::{ErrorCode, StatusCode};
use crate::names::{Action, InvalidReference, RepoName, Resource, Scope, Wanted};

/// Scopes beyond this in one request are refused; docker asks for one or two.
pub const MAX_SCOPES: usize = 64;

#[derive(Debug, PartialEq, Error)]
pub enum ScopeError {
    #[error("invalid scope {0:?}: use TYPE:NAME:ACTIONS, e.g. repository:team/app:pull,push")]
    Malformed(String),
    #[error("invalid scope {scope:?}: {source}")]
    Name {
        scope: String,
        #[source]
        source: InvalidReference,
    },
    #[error("too many scopes: at most {MAX_SCOPES} in one request")]
    TooMany,
}

impl ErrorCode for ScopeError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &'static str {
        "invalid_scope"
    }
}

/// Parses every `scope` parameter of one request, in order of first mention.
pub fn parse_scopes<'a>(
    params: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ScopeError> {
    let mut out: Vec<Scope> = Vec::new();
    let mut seen = 0;
    for text in params.into_iter().flat_map(str::split_ascii_whitespace) {
        seen += 1;
        if seen > MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        let Some(scope) = parse_one(text)? else {
            continue;
        };
        match out.iter_mut().find(|s| s.resource == scope.resource) {
            Some(earlier) => earlier.wanted.merge(&scope.wanted),
            None => out.push(scope),
        }
    }
    Ok(out)
}

/// `Ok(None)`: well-formed but asking for nothing this service grants.
fn parse_one(text: &str) -> Result<Option<Scope>, ScopeError> {
    let malformed = || ScopeError::Malformed(text.into());
    let (kind, rest) = text.split_once(':').ok_or_else(malformed)?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(malformed)?;
    let actions = || actions.split(',');
    let scope = match kind {
        "repository" => {
            let name = RepoName::parse(name).map_err(|source| ScopeError::Name {
                scope: text.into(),
                source,
            })?;
            let mut wanted = Wanted::default();
            for a in actions() {
                if a == "*" {
                    wanted.any = true;
                } else if let Some(a) = Action::parse(a) {
                    wanted.actions.insert(a);
                }
            }
            Scope {
                resource: Resource::Repository(name),
                wanted,
            }
        }
        "registry" if name == "catalog" && actions().any(|a| a == "*") => Scope {
            resource: Resource::Catalog,
            wanted: Wanted::any(),
        },
        _ => return Ok(None),
    };
    Ok((!scope.wanted.is_empty()).then_some(scope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Delete, Pull, Push};

    fn repo(name: &str, actions: &[Action], any: bool) -> Scope {
        Scope {
            resource: Resource::Repository(RepoName::parse(name).unwrap()),
            wanted: Wanted {
                actions: actions.iter().copied().collect(),
                any,
            },
        }
    }

    fn catalog() -> Scope {
        Scope {
            resource: Resource::Catalog,
            wanted: Wanted::any(),
        }
    }

    #[test]
    fn scopes_parse_as_the_token_spec_writes_them() {
        let cases: &[(&[&str], Vec<Scope>)] = &[
            (&[], vec![]),
            (&[""], vec![]),
            (
                &["repository:team/app:pull"],
                vec![repo("team/app", &[Pull], false)],
            ),
            (
                &["repository:team/app:pull,push"],
                vec![repo("team/app", &[Pull, Push], false)],
            ),
            (
                &["repository:a/b/c:delete"],
                vec![repo("a/b/c", &[Delete], false)],
            ),
            (
                &["repository:team/app:*"],
                vec![repo("team/app", &[], true)],
            ),
            (&["registry:catalog:*"], vec![catalog()]),
            // Several per parameter, several parameters, in order of first mention.
            (
                &["repository:a:pull repository:b:push", "registry:catalog:*"],
                vec![
                    repo("a", &[Pull], false),
                    repo("b", &[Push], false),
                    catalog(),
                ],
            ),
            // A resource named twice is merged.
            (
                &[
                    "repository:a:pull",
                    "repository:b:pull repository:a:push,delete",
                ],
                vec![
                    repo("a", &[Delete, Pull, Push], false),
                    repo("b", &[Pull], false),
                ],
            ),
            (
                &["repository:a:pull repository:a:*"],
                vec![repo("a", &[Pull], true)],
            ),
            // Unknown actions are left out, and a scope left with none is dropped.
            (
                &["repository:a:pull,tag,admin"],
                vec![repo("a", &[Pull], false)],
            ),
            (&["repository:a:frobnicate"], vec![]),
            (&["repository:a:"], vec![]),
            // Unknown types and registry resources other than the catalog are left out.
            (&["repository(plugin):a:pull"], vec![]),
            (&["registry:catalog:pull"], vec![]),
            (&["registry:other:*"], vec![]),
            (
                &["blob:a:pull repository:b:pull"],
                vec![repo("b", &[Pull], false)],
            ),
            // Extra spaces are separators, not scopes.
            (
                &["  repository:a:pull   repository:b:pull  "],
                vec![repo("a", &[Pull], false), repo("b", &[Pull], false)],
            ),
        ];
        for (params, want) in cases {
            assert_eq!(
                parse_scopes(params.iter().copied()).as_ref(),
                Ok(want),
                "{params:?}"
            );
        }
    }

    #[test]
    fn bad_scopes_are_invalid_scope_errors() {
        // (scope, whether the name is what is wrong rather than the shape)
        let cases: &[(&str, bool)] = &[
            ("repository", false),
            ("repository:team/app", false),
            ("repository:Team/App:pull", true),
            ("repository::pull", true),
            ("repository:../etc:pull", true),
            // The name runs to the last ':', so a ':' in it fails the name check.
            ("repository:team/app:v1:pull", true),
            ("repository:localhost:5000/app:pull", true),
        ];
        for &(text, name_error) in cases {
            let err = parse_scopes([text]).unwrap_err();
            assert_eq!(
                matches!(err, ScopeError::Name { .. }),
                name_error,
                "{text}: {err:?}"
            );
            assert_eq!(
                matches!(err, ScopeError::Malformed(_)),
                !name_error,
                "{text}: {err:?}"
            );
            assert!(err.to_string().contains(text), "{err}");
        }
        // A bad repository name is an error even when every action is unknown.
        assert!(parse_scopes(["repository:A:frobnicate"]).is_err());
        // One bad scope spoils the request.
        assert!(parse_scopes(["repository:a:pull", "repository:B:pull"]).is_err());
    }

    #[test]
    fn more_than_the_limit_of_scopes_is_refused() {
        let ok = vec!["repository:a:pull"; MAX_SCOPES].join(" ");
        assert_eq!(parse_scopes([ok.as_str()]).map(|v| v.len()), Ok(1));
        let too_many = vec!["repository:a:pull"; MAX_SCOPES + 1].join(" ");
        assert_eq!(parse_scopes([too_many.as_str()]), Err(ScopeError::TooMany));
    }

    #[test]
    fn scopes_print_in_the_spec_form() {
        let v = parse_scopes(["repository:a:push,pull,* registry:catalog:*"]).unwrap();
        let shown: Vec<String> = v.iter().map(Scope::to_string).collect();
        assert_eq!(shown, ["repository:a:pull,push,*", "registry:catalog:*"]);
    }
}
