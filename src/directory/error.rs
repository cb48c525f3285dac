//! What can go wrong with a change to accounts and grants, each answered as the error it wraps.

use thiserror::Error;

use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::error::{ErrorCode, StatusCode};
use crate::grants::GrantError;
use crate::users::store::StoreError;

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error(transparent)]
    Durable(#[from] DurableError),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

impl ErrorCode for DirectoryError {
    fn status(&self) -> StatusCode {
        match self {
            DirectoryError::Store(e) => e.status(),
            DirectoryError::Grant(e) => e.status(),
            DirectoryError::Durable(e) => e.status(),
            DirectoryError::Blocking(e) => e.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            DirectoryError::Store(e) => e.code(),
            DirectoryError::Grant(e) => e.code(),
            DirectoryError::Durable(e) => e.code(),
            DirectoryError::Blocking(e) => e.code(),
        }
    }
    fn message(&self) -> String {
        match self {
            DirectoryError::Store(e) => e.message(),
            DirectoryError::Grant(e) => e.message(),
            DirectoryError::Durable(e) => e.message(),
            DirectoryError::Blocking(e) => e.message(),
        }
    }
}
