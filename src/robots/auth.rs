//! A robot's HTTP Basic credentials (`robot.OWNER.NAME:SECRET`), checked for the throttled
//! authentication path in `crate::auth`: the secret (current, or the previous one within its
//! overlap), the expiry, and the owner as it stands now (disabled or deleted → refused). A
//! success records `last_used_at` at most once a minute; an expired robot's first refusal is
//! audited `robot.expired`.

use std::sync::Arc;

use actix_web::{HttpRequest, web};
use chrono::{DateTime, Duration, Utc};

use super::model::{ROBOT_PREFIX, Robot, Robots, split_name};
use super::secret;
use super::store::RobotsStore;
use crate::audit::AuditLog;
use crate::audit::entry::{Entry, Outcome, Source};
use crate::auth::{Account, AuthError};
use crate::blocking::run_blocking;
use crate::config::{AuthMode, Config};
use crate::grants::Grant;
use crate::net::ClientAddresses;
use crate::users::model::{Accounts, Role};
use crate::users::store::{StoreError, UserStore};

/// `last_used_at` is written at most this often per robot.
const LAST_USED_EVERY: Duration = Duration::seconds(60);

/// A request authenticated as a robot, left in the request's extensions beside its `Account`
/// (the robot's name, role `user`): what the owner may do and the robot's own grants.
#[derive(Debug, Clone)]
pub struct RobotCaller {
    pub name: String,
    pub owner: Account,
    pub grants: Vec<Grant>,
}

/// Whether Basic credentials with this username are a robot's.
pub fn is_robot_name(user: &str) -> bool {
    user.starts_with(ROBOT_PREFIX)
}

/// Why the stored robot does not let these credentials in.
#[derive(Debug, PartialEq)]
enum Refusal {
    Rejected,
    /// The right secret of an expired robot; `reported` once its first refusal was audited.
    Expired {
        reported: bool,
    },
}

/// The owner as the policy sees it, if it may still lend rights: enabled, a person.
fn usable_owner(accounts: &Accounts, owner: &str) -> Option<Account> {
    let view = accounts.view(owner)?;
    if view.disabled || view.role == Role::Service || accounts.htpasswd.get(owner).is_none() {
        return None;
    }
    Some(Account {
        username: view.username,
        role: view.role,
    })
}

fn secret_holds(robot: &Robot, given: &str, now: DateTime<Utc>) -> bool {
    // Both comparisons run whatever the first says, so timing does not tell which matched.
    let current = secret::matches(given, &robot.secret_sha256);
    let previous = match (&robot.previous_sha256, robot.previous_until) {
        (Some(hash), Some(until)) => secret::matches(given, hash) && until > now,
        _ => false,
    };
    current | previous
}

/// The decision, from the files as read.
fn decide(
    robots: &Robots,
    accounts: &Accounts,
    name: &str,
    given: &str,
    now: DateTime<Utc>,
) -> Result<RobotCaller, Refusal> {
    let Some(robot) = robots.get(name) else {
        // Same work as for a robot that exists.
        let _ = secret::matches(given, &"0".repeat(64));
        return Err(Refusal::Rejected);
    };
    if !secret::well_formed(given) || !secret_holds(robot, given, now) {
        return Err(Refusal::Rejected);
    }
    // Only the holder of the secret learns, through the audit, that the robot expired.
    if robot.is_expired(now) {
        return Err(Refusal::Expired {
            reported: robot.expiry_reported,
        });
    }
    let owner = usable_owner(accounts, &robot.owner).ok_or(Refusal::Rejected)?;
    Ok(RobotCaller {
        name: robot.name.clone(),
        owner,
        grants: robot.grants.clone(),
    })
}

fn data<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, AuthError> {
    req.app_data::<web::Data<T>>()
        .cloned()
        .ok_or(AuthError::Rejected)
}

/// Checks `name:given`; `Rejected` for anything but a usable robot with that secret. Called
/// with a throttle slot taken.
pub async fn verify(
    req: &HttpRequest,
    name: &str,
    given: &str,
) -> Result<(Account, RobotCaller), AuthError> {
    let config = data::<Config>(req)?;
    // htpasswd mode: registry:2 could not hold a robot to its grants, so robots do not exist.
    if config.auth_mode != AuthMode::Token || split_name(name).is_none() {
        return Err(AuthError::Rejected);
    }
    let robots_store = data::<RobotsStore>(req)?;
    let users = data::<UserStore>(req)?;
    let robots = robots_store.current().map_err(StoreError::from)?;
    let accounts = users.current()?;
    let now = Utc::now();
    match decide(&robots, &accounts, name, given, now) {
        Ok(caller) => {
            let stale = robots
                .get(name)
                .is_none_or(|r| r.last_used_at.is_none_or(|t| now - t >= LAST_USED_EVERY));
            if stale && robots_store.claim_touch(name, now, LAST_USED_EVERY) {
                touch(&users, &robots_store, name, now).await;
            }
            let account = Account {
                username: caller.name.clone(),
                role: Role::User,
            };
            Ok((account, caller))
        }
        Err(Refusal::Expired { reported: false }) => {
            report_expired(req, &users, &robots_store, name, now).await;
            Err(AuthError::Rejected)
        }
        Err(_) => Err(AuthError::Rejected),
    }
}

/// Sets `last_used_at`; a failure is logged, never the request's failure.
async fn touch(users: &Arc<UserStore>, robots: &Arc<RobotsStore>, name: &str, now: DateTime<Utc>) {
    let (users, robots, name) = (Arc::clone(users), Arc::clone(robots), name.to_string());
    let done = run_blocking(move || {
        users.modify_with(|_, held| {
            robots.update(held, |r| {
                if let Some(robot) = r.robots.get_mut(&name) {
                    robot.last_used_at = Some(now);
                }
                Ok::<(), StoreError>(())
            })
        })
    })
    .await;
    if let Err(e) = done
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        log::warn!("could not record a robot's last use: {e}");
    }
}

/// Marks the expiry as reported under the lock and, if this request was the first, writes
/// `robot.expired`.
async fn report_expired(
    req: &HttpRequest,
    users: &Arc<UserStore>,
    robots: &Arc<RobotsStore>,
    name: &str,
    now: DateTime<Utc>,
) {
    let (u, r, n) = (Arc::clone(users), Arc::clone(robots), name.to_string());
    let first = run_blocking(move || {
        u.modify_with(|_, held| {
            r.update(held, |all| {
                Ok::<bool, StoreError>(match all.robots.get_mut(&n) {
                    Some(robot) if robot.is_expired(now) && !robot.expiry_reported => {
                        robot.expiry_reported = true;
                        true
                    }
                    _ => false,
                })
            })
        })
    })
    .await;
    let first = match first {
        Ok(Ok(first)) => first,
        Ok(Err(e)) => {
            log::warn!("could not record a robot's expiry: {e}");
            false
        }
        Err(e) => {
            log::warn!("could not record a robot's expiry: {e}");
            false
        }
    };
    if !first {
        return;
    }
    let Some(audit) = req.app_data::<web::Data<AuditLog>>() else {
        return;
    };
    let expired_at = robots
        .current()
        .ok()
        .and_then(|all| all.get(name).and_then(|r| r.expires_at))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut entry = Entry::new("robot.expired", name, Outcome::Denied, Source::Api);
    entry.user = Some(name.to_string());
    entry.status = Some(401);
    entry.request_id = crate::request_id::of(req);
    entry.remote_addr = req
        .app_data::<web::Data<ClientAddresses>>()
        .map(|a| a.client_ip(req).to_string());
    entry.detail = Some(format!("refused: the robot expired at {expired_at}"));
    if let Err(e) = audit.record(entry).await {
        log::error!("could not write robot.expired for {name}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::model::Accounts;

    fn robot(secret: &str, now: DateTime<Utc>) -> Robot {
        Robot {
            name: "robot.alice.ci".into(),
            owner: "alice".into(),
            description: String::new(),
            grants: vec![],
            created_at: now,
            created_by: "alice".into(),
            expires_at: Some(now + Duration::days(1)),
            last_used_at: None,
            secret_sha256: secret::hash(secret),
            previous_sha256: None,
            previous_until: None,
            expiry_reported: false,
        }
    }

    fn accounts() -> Accounts {
        let mut a = Accounts::default();
        a.create(
            "alice",
            "$2y$04$abcdefghijklmnopqrstuuN3PZ2ESLq0Zq1oIfVD4w4lT0OXTkxu6",
            Role::User,
            None,
            Utc::now(),
        )
        .unwrap();
        a
    }

    #[test]
    fn the_secret_expiry_and_owner_decide() {
        let now = Utc::now();
        let s = secret::generate();
        let mut robots = Robots::default();
        robots
            .robots
            .insert("robot.alice.ci".into(), robot(&s, now));
        let a = accounts();
        let caller = decide(&robots, &a, "robot.alice.ci", &s, now).unwrap();
        assert_eq!(caller.owner.username, "alice");
        assert_eq!(
            decide(&robots, &a, "robot.alice.ci", &secret::generate(), now).unwrap_err(),
            Refusal::Rejected
        );
        assert_eq!(
            decide(&robots, &a, "robot.alice.other", &s, now).unwrap_err(),
            Refusal::Rejected
        );
        // Past the expiry, the right secret is told apart, once reported it says so.
        let later = now + Duration::days(2);
        assert_eq!(
            decide(&robots, &a, "robot.alice.ci", &s, later).unwrap_err(),
            Refusal::Expired { reported: false }
        );
        // The owner gone: refused.
        assert_eq!(
            decide(&robots, &Accounts::default(), "robot.alice.ci", &s, now).unwrap_err(),
            Refusal::Rejected
        );
    }

    #[test]
    fn the_previous_secret_holds_until_its_overlap_ends() {
        let now = Utc::now();
        let old = secret::generate();
        let new = secret::generate();
        let mut r = robot(&new, now);
        r.previous_sha256 = Some(secret::hash(&old));
        r.previous_until = Some(now + Duration::seconds(30));
        assert!(secret_holds(&r, &old, now));
        assert!(secret_holds(&r, &new, now));
        assert!(!secret_holds(&r, &old, now + Duration::seconds(31)));
        assert!(secret_holds(&r, &new, now + Duration::seconds(31)));
    }
}
