//! A robot as stored in `robots.json` and as answered by the API (never its secret's hash),
//! and the rules for its name, description and expiry.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::RobotError;
use crate::grants::{Grant, GrantSpec};
use crate::users::model::{Account, is_self_or_admin};
use crate::validate;

/// Every robot's full name starts with this; `POST /users` refuses such names.
pub const ROBOT_PREFIX: &str = "robot.";
/// The `NAME` part: short enough to read in a CI log.
pub const MAX_SHORT_NAME: usize = 32;
pub const MAX_DESCRIPTION: usize = 200;
pub const DEFAULT_EXPIRY_DAYS: i64 = 90;
pub const MAX_EXPIRY_DAYS: i64 = 3650;
/// Robots one account may own. Every robot change rewrites robots.json whole under the
/// htpasswd lock, and the service reads at most 32 MiB of it: without a cap one user could grow
/// it until no robot anywhere authenticates. 100 robots of 100 grants each stay far below.
pub const MAX_ROBOTS_PER_OWNER: usize = 100;

/// One robot on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Robot {
    pub name: String,
    pub owner: String,
    pub description: String,
    pub grants: Vec<Grant>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Hex SHA-256 of the secret in force.
    pub secret_sha256: String,
    /// The secret before the last rotation, accepted until `previous_until`.
    pub previous_sha256: Option<String>,
    pub previous_until: Option<DateTime<Utc>>,
    /// Set when the first refusal after expiry was audited (`robot.expired`), so it is once.
    #[serde(default)]
    pub expiry_reported: bool,
}

impl Robot {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Expires within `days` from `now`, or has expired: both need someone's attention.
    pub fn expires_within(&self, now: DateTime<Utc>, days: i64) -> bool {
        self.expires_at
            .is_some_and(|e| e <= now + Duration::days(days))
    }

    /// A new secret hash; the previous one keeps working for `overlap_seconds` (none at 0).
    /// `expires`, when given, replaces the expiry, which is then not yet reported.
    pub fn rotate(
        &mut self,
        new_hash: String,
        overlap_seconds: i64,
        now: DateTime<Utc>,
        expires: Option<Option<DateTime<Utc>>>,
    ) {
        let old = std::mem::replace(&mut self.secret_sha256, new_hash);
        if overlap_seconds > 0 {
            self.previous_sha256 = Some(old);
            self.previous_until = Some(now + Duration::seconds(overlap_seconds));
        } else {
            self.previous_sha256 = None;
            self.previous_until = None;
        }
        if let Some(e) = expires {
            self.expires_at = e;
            self.expiry_reported = false;
        }
    }

    pub fn view(&self) -> RobotView {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        RobotView {
            name: self.name.clone(),
            owner: self.owner.clone(),
            description: self.description.clone(),
            grants: self.grants.clone(),
            created_at: time(&self.created_at),
            created_by: self.created_by.clone(),
            expires_at: self.expires_at.as_ref().map(time),
            last_used_at: self.last_used_at.as_ref().map(time),
        }
    }
}

/// `robots.json`: every robot by full name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Robots {
    #[serde(default)]
    pub robots: BTreeMap<String, Robot>,
}

impl Robots {
    pub fn get(&self, name: &str) -> Option<&Robot> {
        self.robots.get(name)
    }

    /// The robot, if `caller` may see it; someone else's is answered as missing.
    pub fn visible(&self, caller: &Account, name: &str) -> Result<&Robot, RobotError> {
        self.robots
            .get(name)
            .filter(|r| is_self_or_admin(caller, &r.owner))
            .ok_or_else(|| RobotError::NotFound(name.to_string()))
    }

    /// The same, to change it.
    pub fn visible_mut(&mut self, caller: &Account, name: &str) -> Result<&mut Robot, RobotError> {
        self.robots
            .get_mut(name)
            .filter(|r| is_self_or_admin(caller, &r.owner))
            .ok_or_else(|| RobotError::NotFound(name.to_string()))
    }

    /// How many robots `owner` has.
    pub fn owned_by(&self, owner: &str) -> usize {
        self.robots.values().filter(|r| r.owner == owner).count()
    }

    /// Removes every robot `owner` owns; how many went.
    pub fn remove_owner(&mut self, owner: &str) -> usize {
        let before = self.robots.len();
        self.robots.retain(|_, r| r.owner != owner);
        before - self.robots.len()
    }

    pub fn expiring_within(&self, now: DateTime<Utc>, days: i64) -> usize {
        self.robots
            .values()
            .filter(|r| r.expires_within(now, days))
            .count()
    }
}

/// A robot as the API shows it: never a secret nor its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RobotView {
    /// `robot.OWNER.NAME`.
    pub name: String,
    pub owner: String,
    pub description: String,
    #[schema(value_type = Vec<GrantSpec>)]
    pub grants: Vec<Grant>,
    /// RFC 3339.
    pub created_at: String,
    pub created_by: String,
    /// RFC 3339; `null`: never expires.
    pub expires_at: Option<String>,
    /// RFC 3339 of the latest successful use (updated at most once a minute).
    pub last_used_at: Option<String>,
}

/// The full name `robot.OWNER.NAME` for a valid `owner` and `short` name.
pub fn full_name(owner: &str, short: &str) -> Result<String, RobotError> {
    check_short_name(short)?;
    if owner.starts_with(ROBOT_PREFIX) {
        return Err(RobotError::Invalid("a robot cannot own robots".into()));
    }
    validate::username(owner).map_err(|e| RobotError::Invalid(format!("owner: {e}")))?;
    let name = format!("{ROBOT_PREFIX}{owner}.{short}");
    validate::username(&name).map_err(|_| {
        RobotError::Invalid(format!(
            "{name:?} is longer than a username may be (64 characters); choose a shorter name"
        ))
    })?;
    Ok(name)
}

/// `robot.OWNER.NAME` split into its owner and name, when it is one. The name holds no `.`,
/// so the owner is everything between the prefix and the last dot.
pub fn split_name(full: &str) -> Option<(&str, &str)> {
    let rest = full.strip_prefix(ROBOT_PREFIX)?;
    let (owner, short) = rest.rsplit_once('.')?;
    (check_short_name(short).is_ok() && validate::username(owner).is_ok()).then_some((owner, short))
}

/// `NAME`: 1–32 of `[a-z0-9-]`, not starting with `-`.
pub fn check_short_name(short: &str) -> Result<(), RobotError> {
    let ok = !short.is_empty()
        && short.len() <= MAX_SHORT_NAME
        && !short.starts_with('-')
        && short
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(RobotError::Invalid(format!(
            "robot name {short:?} must be 1-{MAX_SHORT_NAME} characters of a-z, 0-9 and '-', not starting with '-'"
        )))
    }
}

pub fn check_description(text: &str) -> Result<(), RobotError> {
    if text.chars().count() > MAX_DESCRIPTION || text.chars().any(char::is_control) {
        return Err(RobotError::Invalid(format!(
            "description must be at most {MAX_DESCRIPTION} characters, without control characters"
        )));
    }
    Ok(())
}

/// `expires_in_days` as sent: absent (default 90), `null` (never), or a number of days.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ExpiryRequest {
    #[default]
    Default,
    Never,
    Days(i64),
}

impl ExpiryRequest {
    /// The expiry it sets, for a caller who is (`admin`) or is not an admin.
    pub fn resolve(
        self,
        now: DateTime<Utc>,
        admin: bool,
    ) -> Result<Option<DateTime<Utc>>, RobotError> {
        match self {
            ExpiryRequest::Default => Ok(Some(now + Duration::days(DEFAULT_EXPIRY_DAYS))),
            ExpiryRequest::Never if admin => Ok(None),
            ExpiryRequest::Never => Err(RobotError::Invalid(
                "only an admin may make a robot that never expires (\"expires_in_days\": null)"
                    .into(),
            )),
            ExpiryRequest::Days(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => {
                Ok(Some(now + Duration::days(d)))
            }
            ExpiryRequest::Days(d) => Err(RobotError::Invalid(format!(
                "expires_in_days must be 1-{MAX_EXPIRY_DAYS}, not {d}"
            ))),
        }
    }
}

/// Reads `expires_in_days` telling an absent field from `null`.
pub fn expiry_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ExpiryRequest, D::Error> {
    let value: Option<serde_json::Value> = Option::deserialize(d)?;
    match value {
        None => Ok(ExpiryRequest::Never),
        Some(v) => v.as_i64().map(ExpiryRequest::Days).ok_or_else(|| {
            serde::de::Error::custom("expires_in_days must be a whole number or null")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_last_dot_and_follow_the_grammar() {
        assert_eq!(split_name("robot.team.ci"), Some(("team", "ci")));
        assert_eq!(split_name("robot.a.b.deploy-1"), Some(("a.b", "deploy-1")));
        assert_eq!(split_name("robot.team.CI"), None);
        assert_eq!(split_name("robot.team.-x"), None);
        assert_eq!(split_name("robot.ci"), None);
        assert_eq!(split_name("team.ci"), None);
        assert_eq!(full_name("team", "ci").unwrap(), "robot.team.ci");
        for (owner, short) in [("team", ""), ("team", "a_b"), ("team", "a$b"), ("-x", "ci")] {
            assert!(full_name(owner, short).is_err(), "{owner} {short}");
        }
        assert!(full_name("robot.team.ci", "x").is_err());
        assert!(full_name(&"a".repeat(40), &"b".repeat(30)).is_err());
        assert!(check_short_name(&"a".repeat(32)).is_ok());
        assert!(check_short_name(&"a".repeat(33)).is_err());
    }

    #[test]
    fn expiry_defaults_to_90_days_and_never_is_for_admins() {
        let now = Utc::now();
        assert_eq!(
            ExpiryRequest::Default.resolve(now, false).unwrap(),
            Some(now + Duration::days(90))
        );
        assert_eq!(ExpiryRequest::Never.resolve(now, true).unwrap(), None);
        assert!(ExpiryRequest::Never.resolve(now, false).is_err());
        assert!(ExpiryRequest::Days(0).resolve(now, true).is_err());
        assert!(ExpiryRequest::Days(3651).resolve(now, true).is_err());
        assert!(ExpiryRequest::Days(3650).resolve(now, false).is_ok());
    }
}
