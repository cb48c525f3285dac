//! Why a garbage-collection job cannot start or failed; answered over HTTP as its `ErrorCode` says.

use thiserror::Error;

use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::error::{ErrorCode, StatusCode};
use crate::registry::client::UpstreamError;

#[derive(Debug, Error)]
pub enum GcError {
    #[error("a garbage-collection job is already running ({0})")]
    Running(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    RegistryWritable(String),
    /// `gc.json` could not be read for a listing: answered as any internal failure.
    #[error("{0}")]
    Jobs(DurableError),
    #[error("no garbage-collection job {0:?}")]
    NoSuchJob(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

impl ErrorCode for GcError {
    fn status(&self) -> StatusCode {
        match self {
            GcError::Running(_) | GcError::Unavailable(_) | GcError::RegistryWritable(_) => {
                StatusCode::CONFLICT
            }
            GcError::Jobs(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GcError::NoSuchJob(_) => StatusCode::NOT_FOUND,
            GcError::Upstream(u) => u.status(),
            GcError::Durable(d) => d.status(),
            GcError::Blocking(b) => b.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            GcError::Running(_) => "gc_running",
            GcError::Unavailable(_) => "gc_unavailable",
            GcError::RegistryWritable(_) => "registry_writable",
            GcError::Jobs(_) => "internal",
            GcError::NoSuchJob(_) => "not_found",
            GcError::Upstream(u) => u.code(),
            GcError::Durable(d) => d.code(),
            GcError::Blocking(b) => b.code(),
        }
    }
    fn message(&self) -> String {
        match self {
            GcError::Upstream(u) => u.message(),
            GcError::Durable(d) => d.message(),
            GcError::Blocking(b) => b.message(),
            other => other.to_string(),
        }
    }
}
