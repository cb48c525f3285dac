//! Whether a robot's credentials (`robot.OWNER.NAME:SECRET`) hold, from the stored robots and
//! accounts alone: the secret (current, or the previous one within its overlap), the expiry,
//! and the owner as it stands now (disabled or deleted → refused). The HTTP side (throttle,
//! `last_used_at`, the `robot.expired` audit entry) is `crate::auth::robot`.

use chrono::{DateTime, Utc};

use super::model::{ROBOT_PREFIX, Robot, Robots};
use super::secret;
use crate::grants::Grant;
use crate::names::Role;
use crate::users::model::{Account, Accounts};

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
pub(crate) enum Refusal {
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
pub(crate) fn decide(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::model::Accounts;
    use chrono::Duration;

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
