//! Token mode: registry-admin signs the tokens registry:2 checks. The key and its certificate,
//! the libtrust key id, the `scope` grammar, the JWT, and the step from requested scopes to the
//! `access` claim; `GET /token` (routes) and registry-admin's own tokens (upstream).

pub mod key;
pub mod kid;
pub mod routes;
pub mod scope;
pub mod sign;
pub mod upstream;

pub use key::{CertificateStatus, KeyError, KeySetup, TokenKey, load_or_generate};
pub use routes::routes;
pub use scope::{Resource, Scope, ScopeError, parse_scopes};
pub use sign::{Access, Claims, IssuedToken, TokenIssuer};
pub use upstream::SelfSignedAuth;

use crate::grants::{self, Grants, Principal};

/// The `access` claim for `scopes`: one entry per requested resource granted at least one
/// action, holding only requested actions (`*` expanded to what the caller has there).
pub fn access_for(
    principal: &Principal,
    grants: &Grants,
    scopes: &[Scope],
    frozen: bool,
) -> Vec<Access> {
    scopes
        .iter()
        .filter_map(|scope| match &scope.resource {
            Resource::Repository(name) => {
                let granted = grants::granted(principal, grants, name, &scope.wanted, frozen);
                (!granted.is_empty()).then(|| Access {
                    kind: "repository".into(),
                    name: name.clone(),
                    actions: granted.iter().map(|a| a.as_str().to_string()).collect(),
                })
            }
            // registry:2 asks for exactly `registry:catalog:*`, so the `*` stays literal.
            Resource::Catalog => {
                (scope.wanted.any && grants::catalog_allowed(principal)).then(|| Access {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(kind: &str, name: &str, actions: &[&str]) -> Access {
        Access {
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
        let alice = Principal::User {
            name: "alice".into(),
        };
        assert_eq!(
            access_for(&alice, &g, &scopes, false),
            vec![
                access("repository", "team/app", &["pull", "push"]),
                access("repository", "pub/x", &["pull"]),
            ]
        );
        assert_eq!(
            access_for(&Principal::Anonymous, &g, &scopes, false),
            vec![access("repository", "pub/x", &["pull"])]
        );
        assert_eq!(
            access_for(&Principal::Admin, &g, &scopes, false),
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
