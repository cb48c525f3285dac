//! What a robot may do: its own grants, bounded by what its owner may do. When grants are set,
//! each robot grant must be covered by the owner's rights (a pattern inside one of the owner's
//! patterns, with the action); at every use, the answer is the owner's current rights (the
//! one policy in `crate::grants::policy`) intersected with the robot's grants, so a robot never
//! outlives its owner's rights.

use std::collections::BTreeSet;

use crate::grants::{Action, Grant, Grants, Pattern, Principal, Wanted, granted};
use crate::token::{Access, Resource, Scope};

fn is_deep(p: &Pattern) -> bool {
    p.as_str() == "**" || p.as_str().ends_with("/**")
}

/// Whether every repository `inner` covers is covered by `outer`. Conservative: when in
/// doubt, no. `outer` reads `inner`'s text as a name in which each `*` is a letter that only
/// one of `outer`'s own `*` can absorb, which is sound for `*`-only components; a trailing
/// `**` in `inner` needs one in `outer` over a prefix no longer than `inner`'s.
pub fn pattern_covers(outer: &Pattern, inner: &Pattern) -> bool {
    if is_deep(inner) {
        let prefix = inner.as_str().strip_suffix("**").unwrap_or_default();
        // The shortest names `inner` covers are `prefix` + one component.
        is_deep(outer) && outer.matches(&format!("{prefix}x"))
    } else {
        outer.matches(inner.as_str())
    }
}

/// The patterns (with their actions) that give `owner` rights, per the grant sources of the
/// policy: its own grants, the `everyone` grants, and pull on public patterns.
fn owner_sources(owner: &str, grants: &Grants) -> Vec<(Pattern, Vec<Action>)> {
    let mut out: Vec<(Pattern, Vec<Action>)> = grants
        .user(owner)
        .iter()
        .chain(grants.everyone())
        .map(|g| (g.repository.clone(), g.actions().to_vec()))
        .collect();
    out.extend(
        grants
            .public()
            .iter()
            .map(|p| (p.clone(), vec![Action::Pull])),
    );
    out
}

/// The first robot grant (and action) the owner does not cover, if any. Admins cover all.
pub fn uncovered(
    owner: &Principal,
    grants: &Grants,
    wanted: &[Grant],
) -> Option<(Pattern, Action)> {
    let name = match owner {
        Principal::Admin | Principal::Service => return None,
        Principal::User { name } => name.as_str(),
        Principal::Anonymous => "",
    };
    let sources = owner_sources(name, grants);
    wanted.iter().find_map(|g| {
        g.actions()
            .iter()
            .find(|a| {
                !sources
                    .iter()
                    .any(|(p, acts)| acts.contains(a) && pattern_covers(p, &g.repository))
            })
            .map(|a| (g.repository.clone(), *a))
    })
}

/// The actions the robot's own grants give on `repository`.
fn robot_actions(robot: &[Grant], repository: &str) -> BTreeSet<Action> {
    robot
        .iter()
        .filter(|g| g.repository.matches(repository))
        .flat_map(|g| g.actions().iter().copied())
        .collect()
}

/// What a robot gets on `repository`: asked for ∩ its grants ∩ what its owner may do now.
pub fn robot_granted(
    owner: &Principal,
    grants: &Grants,
    robot: &[Grant],
    repository: &str,
    wanted: &Wanted,
    frozen: bool,
) -> BTreeSet<Action> {
    let own = robot_actions(robot, repository);
    granted(owner, grants, repository, wanted, frozen)
        .intersection(&own)
        .copied()
        .collect()
}

/// The `access` claim of a robot's registry token. Never the catalog: a robot's grants name
/// repositories only.
pub fn robot_access(
    owner: &Principal,
    grants: &Grants,
    robot: &[Grant],
    scopes: &[Scope],
    frozen: bool,
) -> Vec<Access> {
    let mut out: Vec<Access> = Vec::new();
    for scope in scopes {
        let Resource::Repository(name) = &scope.resource else {
            continue;
        };
        let got = robot_granted(owner, grants, robot, name, &scope.wanted, frozen);
        if got.is_empty() {
            continue;
        }
        let actions: Vec<String> = got.iter().map(|a| a.as_str().to_string()).collect();
        // A repository named twice in one request is one entry with every action granted.
        match out.iter_mut().find(|a| a.name == *name) {
            Some(a) => {
                let merged: BTreeSet<String> = a.actions.drain(..).chain(actions).collect();
                a.actions = merged.into_iter().collect();
            }
            None => out.push(Access {
                kind: "repository".into(),
                name: name.clone(),
                actions,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::parse_scopes;
    use Action::{Delete, Pull, Push};

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    fn g(repo: &str, actions: &[&str]) -> Grant {
        Grant::new(repo, actions).unwrap()
    }

    #[test]
    fn a_pattern_covers_only_what_it_surely_contains() {
        let cases = [
            ("team/app", "team/app", true),
            ("team/*", "team/app", true),
            ("team/*", "team/app-*", true),
            ("team/app-*", "team/*", false),
            ("team/*", "team/**", false),
            ("team/**", "team/*", true),
            ("team/**", "team/a/b", true),
            ("team/**", "team/a/**", true),
            ("team/**", "team/**", true),
            ("team/**", "team", false),
            ("team/*/**", "team/**", false),
            ("*/**", "team/**", true),
            ("**", "**", true),
            ("**", "anything/at/all", true),
            ("team/**", "**", false),
            ("a*", "*", false),
            ("*x", "*", false),
            ("a*", "ab*", true),
            ("a*c", "a*bc", true),
            ("other/*", "team/app", false),
        ];
        for (outer, inner, want) in cases {
            assert_eq!(
                pattern_covers(&p(outer), &p(inner)),
                want,
                "{outer} ⊇ {inner}"
            );
        }
    }

    fn grants() -> Grants {
        serde_json::from_str(
            r#"{"users":{"alice":[{"repository":"team/**","actions":["push"]}]},
                "everyone":[{"repository":"shared/*","actions":["pull"]}],
                "public":["pub/*"]}"#,
        )
        .unwrap()
    }

    #[test]
    fn robot_grants_must_be_covered_by_the_owner() {
        let alice = Principal::User {
            name: "alice".into(),
        };
        let g0 = grants();
        assert_eq!(uncovered(&alice, &g0, &[g("team/app", &["push"])]), None);
        assert_eq!(
            uncovered(
                &alice,
                &g0,
                &[g("shared/x", &["pull"]), g("pub/y", &["pull"])]
            ),
            None
        );
        assert_eq!(
            uncovered(&alice, &g0, &[g("team/app", &["delete"])]),
            Some((p("team/app"), Delete))
        );
        assert_eq!(
            uncovered(&alice, &g0, &[g("shared/x", &["push"])]),
            Some((p("shared/x"), Push))
        );
        assert_eq!(
            uncovered(&Principal::Admin, &g0, &[g("**", &["delete"])]),
            None
        );
    }

    #[test]
    fn a_robot_gets_what_both_it_and_its_owner_have_now() {
        let alice = Principal::User {
            name: "alice".into(),
        };
        let robot = [g("team/app", &["push"]), g("other/*", &["pull"])];
        let scopes = parse_scopes([
            "repository:team/app:pull,push,delete repository:team/other:pull repository:other/x:pull registry:catalog:*",
        ])
        .unwrap();
        let got = robot_access(&alice, &grants(), &robot, &scopes, false);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].name.as_str(), got[0].actions.clone()),
            ("team/app", vec!["pull".to_string(), "push".to_string()])
        );
        // The owner narrowed to pull: the robot is narrowed too, at once.
        let narrowed: Grants = serde_json::from_str(
            r#"{"users":{"alice":[{"repository":"team/**","actions":["pull"]}]}}"#,
        )
        .unwrap();
        let got = robot_access(&alice, &narrowed, &robot, &scopes, false);
        assert_eq!(got[0].actions, vec!["pull".to_string()]);
        // An admin owner lends everything the robot holds, and a freeze still takes push.
        let got = robot_access(&Principal::Admin, &Grants::default(), &robot, &scopes, true);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].actions, vec!["pull".to_string()]);
        assert!(
            robot_granted(&alice, &grants(), &robot, "team/app", &Wanted::any(), false)
                .contains(&Pull)
        );
    }
}
