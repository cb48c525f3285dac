use thiserror::Error;

use super::policy::InvalidPolicy;
use crate::blocking::BlockingError;
use crate::durable::DurableError;
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
    Blocking(#[from] BlockingError),
}
