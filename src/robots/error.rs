//! What can go wrong with a robot request, each with the API error it is answered as.

use thiserror::Error;

use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::error::ApiError;
use crate::grants::GrantError;
use crate::users::store::StoreError;

#[derive(Debug, Error)]
pub enum RobotError {
    /// A body or query that breaks the rules (unknown field, bad name, bad expiry).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error("{0}")]
    ExceedsOwner(String),
    #[error("robot {0:?} already exists")]
    Exists(String),
    #[error("robot {0:?} not found")]
    NotFound(String),
    #[error("user {0:?} not found")]
    OwnerNotFound(String),
    #[error(
        "robot accounts need AUTH_MODE=token: in htpasswd mode registry:2 checks passwords itself and cannot enforce a robot's grants"
    )]
    TokenModeRequired,
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

impl From<RobotError> for ApiError {
    fn from(e: RobotError) -> Self {
        let message = e.to_string();
        match e {
            RobotError::Invalid(_) => ApiError::InvalidRobot(message),
            RobotError::Grant(g) => g.into(),
            RobotError::ExceedsOwner(_) => ApiError::GrantsExceedOwner(message),
            RobotError::Exists(_) => ApiError::RobotExists(message),
            RobotError::NotFound(_) | RobotError::OwnerNotFound(_) => ApiError::NotFound(message),
            RobotError::TokenModeRequired => ApiError::TokenModeRequired(message),
            RobotError::Durable(d) => d.into(),
            RobotError::Store(s) => s.into(),
            RobotError::Blocking(b) => b.into(),
        }
    }
}
