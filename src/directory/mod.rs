//! The directory: accounts, their grants and their robots — what changes together. Every change
//! is one unit of work ([`Directory::modify`]): under the accounts lock (a file lock, or in
//! cluster mode a database transaction), all three are read as stored, changed together, and
//! written — robots, then grants, then accounts, so a crash between two file writes leaves less
//! access, never more. Each change is one named method here (accounts.rs, grants.rs, robots.rs)
//! that checks and changes everything it needs inside its one unit of work and answers a domain
//! result or error; handlers parse, call one, and answer.

mod accounts;
mod error;
mod grants;
mod robots;

pub use error::DirectoryError;
pub use robots::SecretRotation;

use std::sync::Arc;

use crate::blocking::{BlockingError, run_blocking};
use crate::durable::DurableError;
use crate::grants::GrantsStore;
use crate::grants::model::Grants;
use crate::robots::RobotsStore;
use crate::robots::model::Robots;
use crate::users::model::Accounts;
use crate::users::store::{StoreError, UserStore};

pub struct Directory {
    pub users: Arc<UserStore>,
    pub grants: Arc<GrantsStore>,
    pub robots: Arc<RobotsStore>,
}

impl Directory {
    /// Applies `change` to the accounts, grants and robots as stored, and writes what changed;
    /// nothing is written when it fails. Blocking.
    fn modify<T, E>(
        &self,
        change: impl FnOnce(&mut Accounts, &mut Grants, &mut Robots) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + From<DurableError>,
    {
        self.users.modify_with(|accounts, held| {
            self.grants.update_when_changed(held, |grants| {
                self.robots
                    .update_when_changed(held, |robots| change(accounts, grants, robots))
            })
        })
    }

    /// [`Directory::modify`] off the async workers.
    async fn change<T, E>(
        self: &Arc<Self>,
        change: impl FnOnce(&mut Accounts, &mut Grants, &mut Robots) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + From<DurableError> + From<BlockingError> + Send + 'static,
    {
        let me = Arc::clone(self);
        run_blocking(move || me.modify(change)).await?
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::error::ErrorCode;
    use crate::grants::Grant;
    use crate::names::{Role, Username};
    use crate::robots::Robot;
    use crate::users::model::Account;

    fn directory(dir: &tempfile::TempDir) -> Arc<Directory> {
        let users = Arc::new(UserStore::new(dir.path().join("htpasswd")));
        let grants = Arc::new(GrantsStore::at(users.place()));
        let robots = Arc::new(RobotsStore::at(users.place()));
        users
            .modify(|a| {
                a.create("root", "$2y$05$x", Role::Admin, None, Utc::now())?;
                a.create("alice", "$2y$05$y", Role::User, None, Utc::now())?;
                a.provision_service("registry-admin", "$2y$05$z", Utc::now())
            })
            .unwrap();
        Arc::new(Directory {
            users,
            grants,
            robots,
        })
    }

    fn robot(owner: &str, short: &str, grants: Vec<Grant>) -> Robot {
        Robot {
            name: format!("robot.{owner}.{short}"),
            owner: owner.into(),
            description: String::new(),
            grants,
            created_at: Utc::now(),
            created_by: owner.into(),
            expires_at: None,
            last_used_at: None,
            secret_sha256: "h".into(),
            previous_sha256: None,
            previous_until: None,
            expiry_reported: false,
        }
    }

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    fn answer(e: &impl ErrorCode) -> (u16, &'static str, String) {
        (e.status().as_u16(), e.code(), e.message())
    }

    #[actix_web::test]
    async fn grants_name_an_existing_account_other_than_the_service_one() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(&tmp);
        let pull = vec![Grant::new("team/*", &["pull"]).unwrap()];
        let e = d
            .set_user_grants(user("bob"), pull.clone())
            .await
            .unwrap_err();
        assert_eq!(
            answer(&e),
            (404, "not_found", "user \"bob\" not found".into())
        );
        let e = d
            .set_user_grants(user("registry-admin"), pull.clone())
            .await
            .unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (409, "protected_account"));
        let stored = d
            .set_user_grants(user("alice"), pull.clone())
            .await
            .unwrap();
        assert_eq!(stored, pull);
        assert_eq!(d.grants.current().unwrap().user("alice"), &pull[..]);
    }

    #[actix_web::test]
    async fn a_deleted_account_takes_its_robots_and_grants_along() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(&tmp);
        let pull = vec![Grant::new("team/*", &["pull"]).unwrap()];
        d.set_user_grants(user("alice"), pull.clone())
            .await
            .unwrap();
        d.create_robot(robot("alice", "ci", pull.clone()))
            .await
            .unwrap();
        d.delete_account(user("alice")).await.unwrap();
        assert!(d.users.current().unwrap().view("alice").is_none());
        assert!(d.grants.current().unwrap().user("alice").is_empty());
        assert!(d.robots.current().unwrap().robots.is_empty());
        let e = d.delete_account(user("alice")).await.unwrap_err();
        assert_eq!((e.status().as_u16(), e.code()), (404, "not_found"));
    }

    #[actix_web::test]
    async fn a_robot_is_created_within_its_owners_rights_and_seen_only_by_them() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(&tmp);
        let pull = vec![Grant::new("team/*", &["pull"]).unwrap()];
        let e = d
            .create_robot(robot("alice", "ci", pull.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "grants_exceed_owner");
        let e = d
            .create_robot(robot("registry-admin", "ci", vec![]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_robot");
        d.set_user_grants(user("alice"), pull.clone())
            .await
            .unwrap();
        d.create_robot(robot("alice", "ci", pull.clone()))
            .await
            .unwrap();
        let e = d
            .create_robot(robot("alice", "ci", vec![]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "robot_exists");

        let bob = Account {
            username: "bob".into(),
            role: Role::User,
        };
        let e = d
            .delete_robot(bob, "robot.alice.ci".into())
            .await
            .unwrap_err();
        assert_eq!(
            answer(&e),
            (
                404,
                "not_found",
                "robot \"robot.alice.ci\" not found".into()
            )
        );
        let alice = Account {
            username: "alice".into(),
            role: Role::User,
        };
        let push = vec![Grant::new("team/*", &["push"]).unwrap()];
        let e = d
            .set_robot_grants(alice.clone(), "robot.alice.ci".into(), push)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "grants_exceed_owner");
        let now = Utc::now();
        let view = d
            .rotate_robot(
                alice.clone(),
                "robot.alice.ci".into(),
                SecretRotation {
                    secret_sha256: "new".into(),
                    overlap_seconds: 60,
                    now,
                    expires: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(view.name, "robot.alice.ci");
        let stored = d.robots.current().unwrap();
        let r = stored.get("robot.alice.ci").unwrap();
        assert_eq!(
            (r.secret_sha256.as_str(), r.previous_sha256.as_deref()),
            ("new", Some("h"))
        );
        d.delete_robot(alice, "robot.alice.ci".into())
            .await
            .unwrap();
        assert!(d.robots.current().unwrap().robots.is_empty());
    }

    #[actix_web::test]
    async fn an_owner_has_at_most_the_robot_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let d = directory(&tmp);
        for i in 0..crate::robots::model::MAX_ROBOTS_PER_OWNER {
            d.create_robot(robot("root", &format!("r{i}"), vec![]))
                .await
                .unwrap();
        }
        let e = d
            .create_robot(robot("root", "one-more", vec![]))
            .await
            .unwrap_err();
        assert_eq!(
            answer(&e),
            (
                400,
                "invalid_robot",
                "\"root\" already has 100 robots and an account may have at most 100 robots; delete one first".into()
            )
        );
    }
}
