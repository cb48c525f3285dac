//! What can go wrong with a robot request, each with the API error it is answered as.

use thiserror::Error;

use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::error::{ErrorCode, StatusCode};
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

impl ErrorCode for RobotError {
    fn status(&self) -> StatusCode {
        match self {
            RobotError::Invalid(_) => StatusCode::BAD_REQUEST,
            RobotError::Grant(g) => g.status(),
            RobotError::ExceedsOwner(_) => StatusCode::FORBIDDEN,
            RobotError::Exists(_) | RobotError::TokenModeRequired => StatusCode::CONFLICT,
            RobotError::NotFound(_) | RobotError::OwnerNotFound(_) => StatusCode::NOT_FOUND,
            RobotError::Durable(d) => d.status(),
            RobotError::Store(s) => s.status(),
            RobotError::Blocking(b) => b.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RobotError::Invalid(_) => "invalid_robot",
            RobotError::Grant(g) => g.code(),
            RobotError::ExceedsOwner(_) => "grants_exceed_owner",
            RobotError::Exists(_) => "robot_exists",
            RobotError::NotFound(_) | RobotError::OwnerNotFound(_) => "not_found",
            RobotError::TokenModeRequired => "token_mode_required",
            RobotError::Durable(d) => d.code(),
            RobotError::Store(s) => s.code(),
            RobotError::Blocking(b) => b.code(),
        }
    }
    fn message(&self) -> String {
        match self {
            RobotError::Grant(g) => g.message(),
            RobotError::Durable(d) => d.message(),
            RobotError::Store(s) => s.message(),
            RobotError::Blocking(b) => b.message(),
            other => other.to_string(),
        }
    }
}
