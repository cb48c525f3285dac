//! Runs CPU-heavy or blocking work (bcrypt, locked file writes) off the async workers, so a
//! burst of logins cannot stall every other request.

use crate::error::{ErrorCode, StatusCode};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("a blocking task failed: {0}")]
pub struct BlockingError(String);

pub async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BlockingError> {
    actix_web::web::block(f)
        .await
        .map_err(|e| BlockingError(e.to_string()))
}

/// A task that panicked or was cancelled: our failure, told in the log only.
impl ErrorCode for BlockingError {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    fn code(&self) -> &'static str {
        "internal"
    }
}
