//! Extractors several slices' handlers share, and the error handlers that make actix's own
//! extractor failures answer in the one JSON error shape.

use actix_web::web;

use crate::error::ApiError;
use crate::names::Username;

/// A JSON body whose failure the handler returns itself. The body is read only after the
/// credentials pass, so a caller without credentials learns nothing from a malformed body: it
/// gets 401 like any other.
pub type JsonBody<T> = Result<web::Json<T>, actix_web::Error>;

/// The `{user}` path segment, checked like a body's username.
pub fn path_user(path: web::Path<String>) -> Result<Username, ApiError> {
    Ok(Username::parse(path.into_inner())?)
}

/// Error handler for the JSON extractor: oversize is 413, everything else 400.
pub fn json_payload_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::PayloadTooLarge(crate::error::MAX_BODY_BYTES).into()
        }
        J::ContentType => {
            ApiError::InvalidRequest("Content-Type must be application/json".into()).into()
        }
        J::Deserialize(e) => ApiError::InvalidRequest(format!("invalid JSON body: {e}")).into(),
        other => {
            ApiError::InvalidRequest(format!("could not read the request body: {other}")).into()
        }
    }
}

/// Error handler for path and query extractors.
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::InvalidRequest(format!("invalid path: {err}")).into()
}

pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::InvalidRequest(format!("invalid query: {err}")).into()
}
