//! The one error of the storage seam's database side: 503 `database_unavailable`.

use thiserror::Error;

use crate::error::{ErrorCode, StatusCode};

/// The database could not answer. The reason is for the log; clients get a fixed message (a
/// driver's text can name hosts and roles).
#[derive(Debug, Error)]
#[error("the database is unavailable: {0}")]
pub struct DatabaseError(pub String);

impl ErrorCode for DatabaseError {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn code(&self) -> &'static str {
        "database_unavailable"
    }
    fn message(&self) -> String {
        "the database is unavailable; retry shortly".into()
    }
}

impl From<postgres::Error> for DatabaseError {
    fn from(e: postgres::Error) -> Self {
        // `{e:#}`-style sources can carry the query's parameters; the code and the kind suffice.
        match e.as_db_error() {
            Some(db) => DatabaseError(format!("{} ({})", db.message(), db.code().code())),
            None => DatabaseError(e.to_string()),
        }
    }
}

impl From<r2d2::Error> for DatabaseError {
    fn from(e: r2d2::Error) -> Self {
        DatabaseError(format!("no connection: {e}"))
    }
}
