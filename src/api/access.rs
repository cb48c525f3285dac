//! The HTTP side of access decisions: [`Access`], an extractor that authenticates the request
//! and carries what the one question, [`crate::grants::policy::authorize`], needs (the caller, the
//! grants in force, the freeze), and asks it through [`Caller::may`]. `GET /token` asks the
//! same question through [`crate::grants::decide`], so what the API shows and what the registry allows
//! cannot drift apart.

pub use crate::grants::denied::Denied;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::durable::DurableError;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::decide::Caller;
use crate::grants::model::Grants;
pub use crate::grants::policy::principal_of;
use crate::grants::store::GrantsStore;
use crate::names::{Action, RepoName, Role};
use crate::robots::RobotCaller;
use crate::users::model::Account;
pub use crate::users::model::is_self_or_admin;

/// An authenticated caller with the grants and freeze state of this request.
pub struct Access {
    pub account: Account,
    /// The principal (a robot's owner's) and, for a robot, its own grants, which bound it
    /// further; at the API a robot only reads.
    pub caller: Caller,
    grants: Arc<Grants>,
    frozen: bool,
}

impl Access {
    pub fn new(account: Account, grants: Arc<Grants>, frozen: bool) -> Access {
        Access {
            caller: Caller::person(principal_of(&account.username, account.role)),
            account,
            grants,
            frozen,
        }
    }

    /// A robot `caller` (signed in as `account`), acting within its owner's rights.
    pub fn for_robot(
        account: Account,
        caller: &RobotCaller,
        grants: Arc<Grants>,
        frozen: bool,
    ) -> Access {
        Access {
            account,
            caller: Caller::robot(
                principal_of(&caller.owner.username, caller.owner.role),
                caller.grants.clone(),
            ),
            grants,
            frozen,
        }
    }

    /// Visibility: may the caller see (pull) this repository.
    pub fn may_pull(&self, repo: &RepoName) -> bool {
        self.caller.may(Action::Pull, repo, &self.grants, false)
    }

    /// For a write: hidden (404) before missing grant (403) before freeze (409), so the answer
    /// names the first thing the caller could fix.
    pub fn check(&self, action: Action, repo: &RepoName) -> Result<(), Denied> {
        if !self.may_pull(repo) {
            return Err(Denied::Hidden);
        }
        let missing = || Denied::Missing {
            action,
            repo: repo.to_string(),
        };
        if self.caller.robot.is_some() && action != Action::Pull {
            return Err(missing());
        }
        if !self.caller.may(action, repo, &self.grants, false) {
            return Err(missing());
        }
        if !self.caller.may(action, repo, &self.grants, self.frozen) {
            return Err(Denied::Frozen {
                action,
                repo: repo.to_string(),
            });
        }
        Ok(())
    }
}

/// The grants in force; a `grants.json` that does not parse stops every access decision
/// rather than being read as "no grants", which would look like a change.
pub fn current_grants(req: &HttpRequest) -> Result<Arc<Grants>, ApiError> {
    let store = req
        .app_data::<web::Data<GrantsStore>>()
        .ok_or_else(|| ApiError::Internal("GrantsStore is not registered".into()))?;
    store.current().map_err(|e: DurableError| e.into())
}

impl FromRequest for Access {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Access, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let _ = payload;
        let req = req.clone();
        Box::pin(async move {
            // Robots too: they may read what their grants let them pull.
            let account = crate::auth::caller(req.clone()).await?;
            let robot = req.extensions().get::<RobotCaller>().cloned();
            let role = robot.as_ref().map_or(account.role, |r| r.owner.role);
            // Grants never change what an admin may do, so a broken grants.json (answered
            // 500 to users) does not lock the admins out of the images they must fix it for.
            let grants = if role == Role::Admin {
                Arc::new(Grants::default())
            } else {
                current_grants(&req)?
            };
            let frozen = req
                .app_data::<web::Data<WriteFreeze>>()
                .is_some_and(|f| f.is_frozen());
            Ok(match robot {
                Some(r) => Access::for_robot(account, &r, grants, frozen),
                None => Access::new(account, grants, frozen),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::policy::{Principal, authorize};
    use Action::{Delete, Pull, Push};

    fn grants() -> Grants {
        serde_json::from_str(
            r#"{
            "users": {
                "alice": [
                    {"repository": "team/*", "actions": ["pull"]},
                    {"repository": "team/app", "actions": ["delete"]},
                    {"repository": "alice/**", "actions": ["push", "delete"]}
                ],
                "bob": [{"repository": "**", "actions": ["push"]}]
            },
            "everyone": [{"repository": "shared/*", "actions": ["pull"]}],
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

    fn account(name: &str, role: Role) -> Account {
        Account {
            username: name.into(),
            role,
        }
    }

    #[test]
    fn authorize_follows_role_grants_everyone_and_public() {
        let g = grants();
        let cases: &[(Principal, Action, &str, bool, bool)] = &[
            // Admins may do everything everywhere, grants or not.
            (Principal::Admin, Delete, "any/thing", false, true),
            (Principal::Admin, Push, "x", false, true),
            (Principal::Admin, Pull, "x", false, true),
            (user("alice"), Pull, "team/app", false, true),
            (user("alice"), Delete, "team/app", false, true),
            (user("alice"), Push, "team/app", false, false),
            (user("alice"), Delete, "team/other", false, false),
            (user("alice"), Pull, "team/app/sub", false, false),
            (user("alice"), Push, "alice/a/b", false, true),
            (user("alice"), Pull, "alice/a/b", false, true),
            (user("alice"), Pull, "alice", false, false),
            (user("alice"), Pull, "shared/x", false, true),
            (user("alice"), Delete, "shared/x", false, false),
            (user("alice"), Pull, "library/ubuntu", false, true),
            (user("alice"), Push, "library/ubuntu", false, false),
            (user("alice"), Pull, "elsewhere", false, false),
            (user("bob"), Pull, "anything/at/all", false, true),
            (user("bob"), Delete, "anything", false, false),
            // A user without grants of its own still has everyone's and the public ones.
            (user("carol"), Pull, "shared/x", false, true),
            (user("carol"), Pull, "team/app", false, false),
            (Principal::Anonymous, Pull, "library/x", false, true),
            (Principal::Anonymous, Pull, "shared/x", false, false),
            // The freeze takes push and delete from everyone, admins included; pull stays.
            (Principal::Admin, Delete, "x", true, false),
            (Principal::Admin, Pull, "x", true, true),
            (user("alice"), Delete, "team/app", true, false),
            (user("alice"), Pull, "team/app", true, true),
        ];
        for (principal, action, name, frozen, want) in cases {
            assert_eq!(
                authorize(principal, *action, &repo(name), &g, *frozen),
                *want,
                "{principal:?} {action} {name} frozen={frozen}"
            );
        }
    }

    #[test]
    fn check_answers_hidden_then_missing_then_frozen() {
        let g = Arc::new(grants());
        let alice = |frozen| Access::new(account("alice", Role::User), Arc::clone(&g), frozen);
        let admin = |frozen| Access::new(account("root", Role::Admin), Arc::clone(&g), frozen);
        let missing = |action, repo: &str| {
            Err(Denied::Missing {
                action,
                repo: repo.into(),
            })
        };
        let frozen = |action, repo: &str| {
            Err(Denied::Frozen {
                action,
                repo: repo.into(),
            })
        };
        let cases: Vec<(Access, &str, Result<(), Denied>)> = vec![
            (alice(false), "team/app", Ok(())),
            (alice(false), "team/other", missing(Delete, "team/other")),
            (alice(false), "elsewhere", Err(Denied::Hidden)),
            // Hidden wins over the freeze, so a freeze does not tell what exists.
            (alice(true), "elsewhere", Err(Denied::Hidden)),
            (alice(true), "team/other", missing(Delete, "team/other")),
            (alice(true), "team/app", frozen(Delete, "team/app")),
            (admin(false), "anything", Ok(())),
            (admin(true), "anything", frozen(Delete, "anything")),
        ];
        for (access, name, want) in cases {
            assert_eq!(access.check(Delete, &repo(name)), want, "{name}");
        }
    }

    #[test]
    fn refusals_answer_403_forbidden_and_409_maintenance() {
        use actix_web::ResponseError;
        let cases = [
            (
                Denied::Missing {
                    action: Delete,
                    repo: "team/app".into(),
                },
                403,
                "forbidden",
                "this account has no \"delete\" grant on team/app",
            ),
            (
                Denied::Frozen {
                    action: Delete,
                    repo: "team/app".into(),
                },
                409,
                "maintenance",
                "a garbage collection is running: delete on team/app is not possible until it finishes",
            ),
        ];
        for (denied, status, code, message) in cases {
            let e = ApiError::from(denied);
            assert_eq!(
                (e.status_code().as_u16(), e.code(), e.to_string().as_str()),
                (status, code, message)
            );
        }
    }

    #[test]
    fn principals_follow_roles_and_self_or_admin_is_name_or_role() {
        assert_eq!(principal_of("a", Role::Admin), Principal::Admin);
        assert_eq!(principal_of("a", Role::User), user("a"));
        assert_eq!(principal_of("a", Role::Service), Principal::Service);
        let cases = [
            (account("root", Role::Admin), "bob", true),
            (account("bob", Role::User), "bob", true),
            (account("bob", Role::User), "alice", false),
            (account("bob", Role::User), "Bob", false),
        ];
        for (acc, user, want) in cases {
            assert_eq!(is_self_or_admin(&acc, user), want, "{acc:?} {user}");
        }
    }
}
