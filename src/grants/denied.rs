//! Why an action on a repository is refused; converted to HTTP in `crate::error`.

use thiserror::Error;

use super::model::Action;

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
