//! The token decision: which of the scopes a `GET /token` asks for the caller gets. It asks
//! [`authorize`] one action at a time, as the API's [`super::Access`] does, so the registry
//! and the API cannot disagree about who may do what.
//!
//! A robot acts within its owner's rights as they are now, further bounded by its own grants:
//! the narrowing is part of the question ([`Caller::may`]), not of any handler.

use std::collections::BTreeSet;

use super::model::{Grant, Grants};
use super::policy::{Principal, authorize, catalog_allowed};
use crate::names::{Action, RepoName, Resource, Scope, Wanted};

/// Who asks: a principal, or a robot acting for its owner's principal within its own grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// A robot's own grants; `principal` is then its owner's.
    pub robot: Option<Vec<Grant>>,
}

impl Caller {
    /// A person (or anonymous caller) asking for itself.
    pub fn person(principal: Principal) -> Caller {
        Caller {
            principal,
            robot: None,
        }
    }

    /// A robot holding `own` grants, acting for `owner`.
    pub fn robot(owner: Principal, own: Vec<Grant>) -> Caller {
        Caller {
            principal: owner,
            robot: Some(own),
        }
    }

    /// Whether this caller may do `action` on `repo`: the policy's answer for the principal,
    /// narrowed by a robot's own grants.
    pub fn may(&self, action: Action, repo: &RepoName, grants: &Grants, frozen: bool) -> bool {
        self.robot_holds(action, repo) && authorize(&self.principal, action, repo, grants, frozen)
    }

    /// A person holds everything its principal has; a robot only what its grants name.
    fn robot_holds(&self, action: Action, repo: &RepoName) -> bool {
        self.robot.as_ref().is_none_or(|own| {
            own.iter()
                .any(|g| g.repository.matches(repo) && g.actions().contains(&action))
        })
    }
}

/// What `caller` is granted of `requested`: one scope per requested resource that gets at
/// least one action, holding only requested actions (`*` spelled out as every action the
/// caller has there), in the order asked. A resource named twice is one entry. The catalog
/// is granted whole (`*`) to the principals that may list it, never to a robot: a robot's
/// grants name repositories only. While `frozen`, never push or delete.
pub fn decide(caller: &Caller, grants: &Grants, requested: &[Scope], frozen: bool) -> Vec<Scope> {
    let mut out: Vec<Scope> = Vec::new();
    for scope in requested {
        let granted = match &scope.resource {
            Resource::Repository(name) => {
                let actions: BTreeSet<Action> = Action::ALL
                    .into_iter()
                    .filter(|a| scope.wanted.any || scope.wanted.actions.contains(a))
                    .filter(|a| caller.may(*a, name, grants, frozen))
                    .collect();
                if actions.is_empty() {
                    continue;
                }
                Wanted {
                    actions,
                    any: false,
                }
            }
            Resource::Catalog => {
                if !(scope.wanted.any
                    && caller.robot.is_none()
                    && catalog_allowed(&caller.principal))
                {
                    continue;
                }
                Wanted::any()
            }
        };
        match out.iter_mut().find(|s| s.resource == scope.resource) {
            Some(earlier) => earlier.wanted.merge(&granted),
            None => out.push(Scope {
                resource: scope.resource.clone(),
                wanted: granted,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Pull, Push};

    fn g(repo: &str, actions: &[&str]) -> Grant {
        Grant::new(repo, actions).unwrap()
    }

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    fn grants() -> Grants {
        serde_json::from_str(
            r#"{"users":{"alice":[{"repository":"team/**","actions":["push"]}]},
                "everyone":[{"repository":"shared/*","actions":["pull"]}],
                "public":["pub/*"]}"#,
        )
        .unwrap()
    }

    fn requested() -> Vec<Scope> {
        let scope = |name: &str, actions: &[Action]| Scope {
            resource: Resource::Repository(repo(name)),
            wanted: Wanted::of(actions),
        };
        vec![
            scope("team/app", &[Pull, Push, Action::Delete]),
            scope("team/other", &[Pull]),
            scope("other/x", &[Pull]),
            Scope {
                resource: Resource::Catalog,
                wanted: Wanted::any(),
            },
        ]
    }

    #[test]
    fn a_robot_gets_what_both_it_and_its_owner_have_now() {
        let alice = Principal::User {
            name: "alice".into(),
        };
        let robot = Caller::robot(
            alice.clone(),
            vec![g("team/app", &["push"]), g("other/*", &["pull"])],
        );
        let got = decide(&robot, &grants(), &requested(), false);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (&got[0].resource, &got[0].wanted),
            (
                &Resource::Repository(repo("team/app")),
                &Wanted::of(&[Pull, Push])
            )
        );
        // The owner narrowed to pull: the robot is narrowed too, at once.
        let narrowed: Grants = serde_json::from_str(
            r#"{"users":{"alice":[{"repository":"team/**","actions":["pull"]}]}}"#,
        )
        .unwrap();
        let got = decide(&robot, &narrowed, &requested(), false);
        assert_eq!(got[0].wanted, Wanted::of(&[Pull]));
        // An admin owner lends everything the robot holds, and a freeze still takes push.
        let admins = Caller::robot(Principal::Admin, robot.robot.clone().unwrap());
        let got = decide(&admins, &Grants::default(), &requested(), true);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].wanted, Wanted::of(&[Pull]));
        assert!(robot.may(Pull, &repo("team/app"), &grants(), false));
    }

    #[test]
    fn a_person_gets_the_catalog_only_when_the_principal_may_list_it() {
        let admin = decide(
            &Caller::person(Principal::Admin),
            &grants(),
            &requested(),
            false,
        );
        assert_eq!(admin.len(), 4);
        assert_eq!(admin[3].wanted, Wanted::any());
        let robot = Caller::robot(Principal::Admin, vec![g("**", &["pull"])]);
        let got = decide(&robot, &grants(), &requested(), false);
        assert!(got.iter().all(|s| s.resource != Resource::Catalog));
    }
}
