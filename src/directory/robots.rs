//! Changes to robots, each checked against the accounts and grants read under the same lock,
//! so the owner's rights a robot is checked against are the ones in force.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Directory;
use crate::grants::Grant;
use crate::names::Role;
use crate::robots::cover::check_covered;
use crate::robots::model::MAX_ROBOTS_PER_OWNER;
use crate::robots::{Robot, RobotError, RobotView};
use crate::users::model::Account;

/// A new secret for a robot ([`Directory::rotate_robot`]).
pub struct SecretRotation {
    pub secret_sha256: String,
    /// How long the previous secret keeps working; 0: not at all.
    pub overlap_seconds: i64,
    pub now: DateTime<Utc>,
    /// A new expiry (`Some(None)`: never); `None` leaves it as it is.
    pub expires: Option<Option<DateTime<Utc>>>,
}

impl Directory {
    /// Stores a new robot: its owner exists and is not the service account, its grants are
    /// covered by the owner's, its name is free and the owner has room for one more.
    pub async fn create_robot(self: &Arc<Self>, robot: Robot) -> Result<RobotView, RobotError> {
        self.change(move |accounts, grants, all| {
            let owner = robot.owner.clone();
            let owner_view = accounts
                .view(&owner)
                .ok_or_else(|| RobotError::OwnerNotFound(owner.clone()))?;
            if owner_view.role == Role::Service {
                return Err(RobotError::Invalid(
                    "registry-admin's own service account cannot own robots".into(),
                ));
            }
            check_covered(accounts, grants, &owner, &robot.grants)?;
            if all.robots.contains_key(&robot.name) {
                return Err(RobotError::Exists(robot.name));
            }
            if all.owned_by(&owner) >= MAX_ROBOTS_PER_OWNER {
                return Err(RobotError::Invalid(format!(
                    "{owner:?} already has {MAX_ROBOTS_PER_OWNER} robots and an account may have at most {MAX_ROBOTS_PER_OWNER} robots; delete one first"
                )));
            }
            let view = robot.view();
            all.robots.insert(robot.name.clone(), robot);
            Ok(view)
        })
        .await
    }

    /// Replaces the grants of a robot `caller` may see, covered by its owner's rights.
    pub async fn set_robot_grants(
        self: &Arc<Self>,
        caller: Account,
        name: String,
        list: Vec<Grant>,
    ) -> Result<RobotView, RobotError> {
        self.change(move |accounts, grants, all| {
            let robot = all.visible_mut(&caller, &name)?;
            check_covered(accounts, grants, &robot.owner, &list)?;
            robot.grants = list;
            Ok(robot.view())
        })
        .await
    }

    /// Gives a robot `caller` may see a new secret.
    pub async fn rotate_robot(
        self: &Arc<Self>,
        caller: Account,
        name: String,
        rotation: SecretRotation,
    ) -> Result<RobotView, RobotError> {
        self.change(move |_, _, all| {
            let robot = all.visible_mut(&caller, &name)?;
            robot.rotate(
                rotation.secret_sha256,
                rotation.overlap_seconds,
                rotation.now,
                rotation.expires,
            );
            Ok(robot.view())
        })
        .await
    }

    /// Deletes a robot `caller` may see.
    pub async fn delete_robot(
        self: &Arc<Self>,
        caller: Account,
        name: String,
    ) -> Result<(), RobotError> {
        self.change(move |_, _, all| {
            all.visible(&caller, &name)?;
            all.robots.remove(&name);
            Ok(())
        })
        .await
    }

    /// Records a robot's use (`last_used_at`), if it still exists.
    pub async fn touch_robot(
        self: &Arc<Self>,
        name: String,
        now: DateTime<Utc>,
    ) -> Result<(), RobotError> {
        self.change(move |_, _, robots| {
            if let Some(robot) = robots.robots.get_mut(&name) {
                robot.last_used_at = Some(now);
            }
            Ok(())
        })
        .await
    }

    /// Marks an expired robot's expiry as reported; whether this call was the first to.
    pub async fn report_robot_expired(
        self: &Arc<Self>,
        name: String,
        now: DateTime<Utc>,
    ) -> Result<bool, RobotError> {
        self.change(move |_, _, all| {
            Ok(match all.robots.get_mut(&name) {
                Some(robot) if robot.is_expired(now) && !robot.expiry_reported => {
                    robot.expiry_reported = true;
                    true
                }
                _ => false,
            })
        })
        .await
    }
}
