use thiserror::Error;

use super::policy::InvalidPolicy;
use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::error::{ErrorCode, StatusCode};
use crate::registry::client::UpstreamError;
use crate::registry::delete::DeleteError;

#[derive(Debug, Error)]
pub enum RetentionError {
    /// 400 `invalid_policy`.
    #[error(transparent)]
    Invalid(#[from] InvalidPolicy),
    /// `retention.json` on disk does not hold valid policies (a hand edit): 500, never "none".
    #[error("the stored retention policies are invalid: {0}")]
    Stored(String),
    /// 404.
    #[error("no retention plan {0:?} (unknown, or expired: plans last one hour)")]
    PlanNotFound(String),
    /// 409 `maintenance`.
    #[error("a garbage collection holds registry writes back; retry when it has finished")]
    Maintenance,
    #[error("could not write the audit entry: {0}")]
    Audit(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Delete(#[from] DeleteError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error(transparent)]
    Database(#[from] crate::store::DatabaseError),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

impl ErrorCode for RetentionError {
    fn status(&self) -> StatusCode {
        match self {
            RetentionError::Invalid(_) => StatusCode::BAD_REQUEST,
            RetentionError::PlanNotFound(_) => StatusCode::NOT_FOUND,
            RetentionError::Maintenance => StatusCode::CONFLICT,
            RetentionError::Upstream(u) => u.status(),
            RetentionError::Delete(d) => d.status(),
            RetentionError::Blocking(b) => b.status(),
            RetentionError::Durable(d) => d.status(),
            RetentionError::Database(d) => d.status(),
            RetentionError::Stored(_) | RetentionError::Audit(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
    fn code(&self) -> &'static str {
        match self {
            RetentionError::Invalid(_) => "invalid_policy",
            RetentionError::PlanNotFound(_) => "not_found",
            RetentionError::Maintenance => "maintenance",
            RetentionError::Upstream(u) => u.code(),
            RetentionError::Delete(d) => d.code(),
            RetentionError::Blocking(b) => b.code(),
            RetentionError::Durable(d) => d.code(),
            RetentionError::Database(d) => d.code(),
            RetentionError::Stored(_) | RetentionError::Audit(_) => "internal",
        }
    }
    fn message(&self) -> String {
        match self {
            RetentionError::Upstream(u) => u.message(),
            RetentionError::Delete(d) => d.message(),
            RetentionError::Blocking(b) => b.message(),
            RetentionError::Durable(d) => d.message(),
            RetentionError::Database(d) => d.message(),
            other => other.to_string(),
        }
    }
}
