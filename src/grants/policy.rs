//! The one decision: which actions a caller has on a repository. `/token`, the API's image
//! endpoints and `GET /users/{user}/access` all ask here, so the registry and the API can never
//! disagree about who may do what.

use std::collections::BTreeSet;

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{Grant, Grants};
use super::pattern::Pattern;
use crate::names::{Action, RepoName, Role, Wanted};

/// Who is asking. Disabled accounts never get this far: they fail authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    User {
        name: String,
    },
    Anonymous,
    /// registry-admin itself, toward registry:2 (token mode).
    Service,
}

/// The caller as the policy sees it. Disabled accounts never authenticate, so they never
/// reach this.
pub fn principal_of(username: &str, role: Role) -> Principal {
    match role {
        Role::Admin => Principal::Admin,
        Role::User => Principal::User {
            name: username.to_string(),
        },
        Role::Service => Principal::Service,
    }
}

/// Where a reason comes from: the caller's role, one of its own grants, the grants every
/// user has, or the public patterns.
// Named `ReasonSource` in the OpenAPI document: the audit entry's `Source` is another schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ReasonSource)]
pub enum Source {
    Role,
    Grant,
    Everyone,
    Public,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reason {
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub pattern: Option<Pattern>,
    pub actions: Vec<Action>,
}

/// The answer of `GET /users/{user}/access`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Explanation {
    /// What the caller has there now, sorted.
    pub actions: Vec<Action>,
    pub reasons: Vec<Reason>,
    /// A garbage collection holds back push and delete, whatever the reasons say.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub frozen: bool,
}

/// The actions granted on `repository` (a valid repository name): those asked for that the
/// caller has, or all it has when `*` was asked. While `frozen` (garbage collection), never
/// push or delete, for anyone.
fn granted(
    principal: &Principal,
    grants: &Grants,
    repository: &RepoName,
    wanted: &Wanted,
    frozen: bool,
) -> BTreeSet<Action> {
    let available = available(&reasons(principal, grants, repository), frozen);
    if wanted.any {
        available
    } else {
        available.intersection(&wanted.actions).copied().collect()
    }
}

/// Whether `principal` may do `action` on `repo` (a valid repository name): the one question
/// "may this principal do this here", asked by the API's `Access` and, through `decide`, by
/// `GET /token`. Admins may do everything everywhere; while `frozen` (garbage collection)
/// nobody may push or delete.
pub fn authorize(
    principal: &Principal,
    action: Action,
    repo: &RepoName,
    grants: &Grants,
    frozen: bool,
) -> bool {
    granted(principal, grants, repo, &Wanted::of(&[action]), frozen).contains(&action)
}

/// `registry:catalog:*`: the list of every repository name is for admins (and the service,
/// which lists images for them), never for users or anonymous callers.
pub fn catalog_allowed(principal: &Principal) -> bool {
    matches!(principal, Principal::Admin | Principal::Service)
}

pub fn explain(
    principal: &Principal,
    grants: &Grants,
    repository: &RepoName,
    frozen: bool,
) -> Explanation {
    let reasons = reasons(principal, grants, repository);
    Explanation {
        actions: available(&reasons, frozen).into_iter().collect(),
        reasons,
        frozen,
    }
}

fn available(reasons: &[Reason], frozen: bool) -> BTreeSet<Action> {
    reasons
        .iter()
        .flat_map(|r| r.actions.iter().copied())
        .filter(|a| !frozen || *a == Action::Pull)
        .collect()
}

fn reasons(principal: &Principal, grants: &Grants, repository: &RepoName) -> Vec<Reason> {
    let from = |source: Source, list: &[Grant]| -> Vec<Reason> {
        list.iter()
            .filter(|g| g.repository.matches(repository))
            .map(|g| Reason {
                source,
                pattern: Some(g.repository.clone()),
                actions: g.actions().to_vec(),
            })
            .collect()
    };
    let public = || -> Vec<Reason> {
        grants
            .public()
            .iter()
            .filter(|p| p.matches(repository))
            .map(|p| Reason {
                source: Source::Public,
                pattern: Some(p.clone()),
                actions: vec![Action::Pull],
            })
            .collect()
    };
    match principal {
        Principal::Admin | Principal::Service => vec![Reason {
            source: Source::Role,
            pattern: None,
            actions: Action::ALL.to_vec(),
        }],
        Principal::User { name } => {
            let mut out = from(Source::Grant, grants.user(name));
            out.extend(from(Source::Everyone, grants.everyone()));
            out.extend(public());
            out
        }
        Principal::Anonymous => public(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Delete, Pull, Push};

    fn grants() -> Grants {
        serde_json::from_str(
            r#"{
            "users": {
                "alice": [
                    {"repository": "team/*", "actions": ["push"]},
                    {"repository": "alice/**", "actions": ["push", "delete"]}
                ],
                "bob": [{"repository": "team/app", "actions": ["delete"]}]
            },
            "everyone": [{"repository": "shared/**", "actions": ["pull"]}],
            "public": ["library/*"]
        }"#,
        )
        .unwrap()
    }

    fn user(name: &str) -> Principal {
        Principal::User { name: name.into() }
    }

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    fn set(actions: &[Action]) -> BTreeSet<Action> {
        actions.iter().copied().collect()
    }

    #[test]
    fn grants_intersect_with_what_was_asked() {
        let all = Wanted::any();
        let pp = Wanted::of(&[Pull, Push]);
        let everything = Wanted::of(&[Pull, Push, Delete]);
        let cases: &[(Principal, &str, &Wanted, bool, &[Action])] = &[
            (
                Principal::Admin,
                "any/thing",
                &everything,
                false,
                &[Delete, Pull, Push],
            ),
            (
                Principal::Admin,
                "any/thing",
                &all,
                false,
                &[Delete, Pull, Push],
            ),
            (
                Principal::Admin,
                "any/thing",
                &Wanted::of(&[Pull]),
                false,
                &[Pull],
            ),
            (Principal::Service, "x", &all, false, &[Delete, Pull, Push]),
            (user("alice"), "team/app", &pp, false, &[Pull, Push]),
            (user("alice"), "team/app", &everything, false, &[Pull, Push]),
            (user("alice"), "team/app", &all, false, &[Pull, Push]),
            // team/* covers one component only; team/** would cover this.
            (user("alice"), "team/app/sub", &pp, false, &[]),
            (
                user("alice"),
                "alice/a/b",
                &all,
                false,
                &[Delete, Pull, Push],
            ),
            (user("alice"), "alice", &all, false, &[]),
            (user("alice"), "shared/x/y", &all, false, &[Pull]),
            (user("alice"), "library/ubuntu", &pp, false, &[Pull]),
            (user("alice"), "other", &all, false, &[]),
            // Grants add up: bob's delete and the public pull are separate sources.
            (user("bob"), "team/app", &all, false, &[Delete]),
            (user("bob"), "team/app", &Wanted::of(&[Push]), false, &[]),
            (user("nobody"), "shared/x", &all, false, &[Pull]),
            (Principal::Anonymous, "library/ubuntu", &all, false, &[Pull]),
            (Principal::Anonymous, "library/ubuntu", &pp, false, &[Pull]),
            (
                Principal::Anonymous,
                "library/ubuntu",
                &Wanted::of(&[Push]),
                false,
                &[],
            ),
            // `everyone` means signed-in users, not anonymous callers.
            (Principal::Anonymous, "shared/x", &all, false, &[]),
            (Principal::Anonymous, "team/app", &all, false, &[]),
            // A freeze leaves only pull, for everyone including admins.
            (Principal::Admin, "x", &all, true, &[Pull]),
            (
                Principal::Admin,
                "x",
                &Wanted::of(&[Push, Delete]),
                true,
                &[],
            ),
            (Principal::Service, "x", &all, true, &[Pull]),
            (user("alice"), "alice/a", &all, true, &[Pull]),
            (Principal::Anonymous, "library/ubuntu", &all, true, &[Pull]),
            (user("alice"), "team/app", &Wanted::default(), false, &[]),
        ];
        for (principal, name, wanted, frozen, want) in cases {
            assert_eq!(
                granted(principal, &grants(), &repo(name), wanted, *frozen),
                set(want),
                "{principal:?} {name} {wanted:?} frozen={frozen}"
            );
        }
    }

    #[test]
    fn authorize_answers_for_one_action() {
        let g = grants();
        assert!(authorize(
            &user("alice"),
            Push,
            &repo("team/app"),
            &g,
            false
        ));
        assert!(!authorize(
            &user("alice"),
            Push,
            &repo("team/app"),
            &g,
            true
        ));
        assert!(!authorize(
            &user("alice"),
            Delete,
            &repo("team/app"),
            &g,
            false
        ));
        assert!(authorize(
            &Principal::Anonymous,
            Pull,
            &repo("library/x"),
            &g,
            false
        ));
    }

    #[test]
    fn only_admins_and_the_service_get_the_catalog() {
        assert!(catalog_allowed(&Principal::Admin));
        assert!(catalog_allowed(&Principal::Service));
        assert!(!catalog_allowed(&user("alice")));
        assert!(!catalog_allowed(&Principal::Anonymous));
    }

    #[test]
    fn explain_names_every_source_that_applies() {
        let g: Grants = serde_json::from_str(
            r#"{
            "users": {"alice": [{"repository": "team/*", "actions": ["push"]}]},
            "everyone": [{"repository": "team/**", "actions": ["pull"]}],
            "public": ["team/app", "other"]
        }"#,
        )
        .unwrap();
        let e = explain(&user("alice"), &g, &repo("team/app"), false);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "actions": ["pull", "push"],
                "reasons": [
                    {"source": "grant", "pattern": "team/*", "actions": ["pull", "push"]},
                    {"source": "everyone", "pattern": "team/**", "actions": ["pull"]},
                    {"source": "public", "pattern": "team/app", "actions": ["pull"]}
                ]
            })
        );
        let admin = explain(&Principal::Admin, &g, &repo("x"), false);
        assert_eq!(
            serde_json::to_value(&admin).unwrap(),
            serde_json::json!({
                "actions": ["delete", "pull", "push"],
                "reasons": [{"source": "role", "actions": ["delete", "pull", "push"]}]
            })
        );
        let frozen = explain(&user("alice"), &g, &repo("team/app"), true);
        assert_eq!(frozen.actions, vec![Pull]);
        assert!(frozen.frozen);
        assert_eq!(frozen.reasons.len(), 3);
        let none = explain(&user("bob"), &g, &repo("elsewhere"), false);
        assert!(none.actions.is_empty() && none.reasons.is_empty());
    }
}
