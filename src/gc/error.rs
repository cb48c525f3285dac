//! Why a garbage-collection job cannot start or failed; converted to HTTP in `crate::error`.

use thiserror::Error;

use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::registry::client::UpstreamError;

#[derive(Debug, Error)]
pub enum GcError {
    #[error("a garbage-collection job is already running ({0})")]
    Running(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    RegistryWritable(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}
