//! What a robot may be given: its own grants, bounded by what its owner may do. When grants
//! are set, each robot grant must be covered by the owner's rights (a pattern inside one of the
//! owner's patterns, with the action). At every use the decision (`crate::grants::decide`)
//! intersects the owner's current rights with the robot's grants, so a robot never outlives its
//! owner's rights.

use super::error::RobotError;
use crate::grants::{Grant, Grants, Pattern, Principal, principal_of};
use crate::names::Action;
use crate::users::model::Accounts;

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

/// A user-owned robot's grants must be covered by what its owner may do (an admin owner's
/// always are); the owner must exist.
pub fn check_covered(
    accounts: &Accounts,
    grants: &Grants,
    owner: &str,
    wanted: &[Grant],
) -> Result<(), RobotError> {
    let role = accounts
        .view(owner)
        .map(|v| v.role)
        .ok_or_else(|| RobotError::OwnerNotFound(owner.to_string()))?;
    if let Some((pattern, action)) = uncovered(&principal_of(owner, role), grants, wanted) {
        return Err(RobotError::ExceedsOwner(format!(
            "{owner:?} may not {action} on all of {}, so its robot may not either",
            pattern.as_str()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Delete, Push};

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
}
