//! Robot accounts: credentials for CI that are not a person's password. A robot
//! `robot.OWNER.NAME` belongs to one user, holds grants that its owner's rights still bound at
//! every use, expires, and authenticates with a random secret stored only as a hash.
//!
//! Token mode only: in htpasswd mode registry:2 checks passwords itself and could not enforce a
//! robot's scope, so every `/robots` call there is 409 `token_mode_required`.

pub mod caller;
pub mod cover;
pub mod error;
pub mod metrics;
pub mod model;
pub mod secret;
pub mod store;

pub use caller::RobotCaller;
pub use error::RobotError;
pub use model::{ROBOT_PREFIX, Robot, RobotView, Robots};
pub use store::RobotsStore;
