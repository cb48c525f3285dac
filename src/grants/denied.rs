//! Why an action on a repository is refused; answered over HTTP as its `ErrorCode` says.

use thiserror::Error;

use crate::error::{ErrorCode, StatusCode};
use crate::names::Action;

/// Why an action on a repository is refused, in the order a handler checks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Denied {
    /// The caller may not even pull: the handler answers exactly as for a repository that does
    /// not exist, so names the caller cannot see do not leak.
    #[error("repository not visible")]
    Hidden,
    #[error("this account has no \"{action}\" grant on {repo}")]
    Missing { action: Action, repo: String },
    #[error(
        "a garbage collection is running: {action} on {repo} is not possible until it finishes"
    )]
    Frozen { action: Action, repo: String },
}

/// `Hidden` has no answer of its own: the handler answers as for a missing repository, with
/// that endpoint's own not-found body.
impl ErrorCode for Denied {
    fn status(&self) -> StatusCode {
        match self {
            Denied::Hidden => StatusCode::NOT_FOUND,
            Denied::Missing { .. } => StatusCode::FORBIDDEN,
            Denied::Frozen { .. } => StatusCode::CONFLICT,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Denied::Hidden => "not_found",
            Denied::Missing { .. } => "forbidden",
            Denied::Frozen { .. } => "maintenance",
        }
    }
    fn message(&self) -> String {
        match self {
            Denied::Hidden => "not found".into(),
            other => other.to_string(),
        }
    }
}
