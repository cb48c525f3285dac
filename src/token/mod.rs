//! Token mode: registry-admin signs the tokens registry:2 checks. The key and its certificate,
//! the libtrust key id, the `scope` grammar, the JWT, the `access` claim of what the one
//! decision (`crate::grants::decide`) grants, issuing under the write freeze (issue);
//! registry-admin's own tokens (upstream). `GET /token` is `crate::api::token`.

pub mod issue;
pub mod key;
pub mod kid;
pub mod scope;
pub mod sign;
pub mod upstream;

pub use key::{CertificateStatus, KeyError, KeySetup, TokenKey, load_or_generate};
pub use scope::{ScopeError, parse_scopes};
pub use sign::{AccessClaim, Claims, IssuedToken, TokenIssuer};
pub use upstream::SelfSignedAuth;

use crate::grants::{Caller, Grants, decide};
use crate::names::Scope;

/// The `access` claim for `scopes`: what the one decision grants `caller`, one entry per
/// requested resource granted at least one action.
pub fn access_for(
    caller: &Caller,
    grants: &Grants,
    scopes: &[Scope],
    frozen: bool,
) -> Vec<AccessClaim> {
    decide(caller, grants, scopes, frozen)
        .iter()
        .map(AccessClaim::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::Principal;

    fn access(kind: &str, name: &str, actions: &[&str]) -> AccessClaim {
        AccessClaim {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn access_holds_only_granted_requested_actions() {
        let g: Grants = serde_json::from_str(
            r#"{"users":{"alice":[{"repository":"team/*","actions":["push"]}]},"public":["pub/*"]}"#,
        )
        .unwrap();
        let scopes = parse_scopes([
            "repository:team/app:pull,push,delete repository:other:pull registry:catalog:*",
            "repository:pub/x:* repository:team/app:pull",
        ])
        .unwrap();
        let alice = Caller::person(Principal::User {
            name: "alice".into(),
        });
        assert_eq!(
            access_for(&alice, &g, &scopes, false),
            vec![
                access("repository", "team/app", &["pull", "push"]),
                access("repository", "pub/x", &["pull"]),
            ]
        );
        assert_eq!(
            access_for(&Caller::person(Principal::Anonymous), &g, &scopes, false),
            vec![access("repository", "pub/x", &["pull"])]
        );
        assert_eq!(
            access_for(&Caller::person(Principal::Admin), &g, &scopes, false),
            vec![
                access("repository", "team/app", &["delete", "pull", "push"]),
                access("repository", "other", &["pull"]),
                access("registry", "catalog", &["*"]),
                access("repository", "pub/x", &["delete", "pull", "push"]),
            ]
        );
        assert_eq!(
            access_for(&alice, &g, &scopes, true),
            vec![
                access("repository", "team/app", &["pull"]),
                access("repository", "pub/x", &["pull"]),
            ]
        );
    }
}
