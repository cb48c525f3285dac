//! The one error type handlers return, and its JSON body. Each slice's own errors declare their
//! status and code beside their definition ([`ErrorCode`]), so this module knows none of them.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
/// Re-exported so slices declare their statuses without naming the web framework.
pub use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use thiserror::Error;

/// Request bodies above this are refused with 413 (`ApiError::PayloadTooLarge`).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An error that knows how it is answered over HTTP. Each slice implements it beside its own
/// error type, so this module knows none of them and they all become the one [`ApiError`]
/// through `?`.
pub trait ErrorCode: std::fmt::Display {
    /// The status of the answer.
    fn status(&self) -> StatusCode;
    /// The stable snake_case `error` of the JSON body; docs/errors.md lists them all.
    fn code(&self) -> &'static str;
    /// The `message` of the JSON body: the error's own text unless a client must read
    /// something else (a file's path, say, is for the log only). A 500's message is never
    /// sent: it goes to the log.
    fn message(&self) -> String {
        self.to_string()
    }
}

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("authentication required: send HTTP Basic credentials or a bearer token")]
    Unauthorized,
    /// Credentials were sent and did not hold; said apart from `Unauthorized` so an operator
    /// knows the password (or token) is what failed.
    #[error("the credentials were rejected")]
    CredentialsRejected,
    #[error("this account may not do that")]
    Forbidden,
    /// A 403 that says what is missing.
    #[error("{0}")]
    ForbiddenBecause(String),
    #[error("{0}")]
    NotFound(String),
    #[error("too many failed authentications; retry in {0} seconds")]
    RateLimited(u64),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Internal(String),
    /// A slice's own error, answered as it declares ([`ErrorCode`]).
    #[error("{message}")]
    Declared {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

/// The error code of an error response, left in the response's extensions for the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredCode(pub &'static str);

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

/// The error body as documented: `error` is a stable snake_case code, `message` a sentence.
#[derive(utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct ErrorBodyDoc {
    /// e.g. `invalid_username`, `not_found`, `upstream_unavailable`.
    pub error: String,
    pub message: String,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Unauthorized | ApiError::CredentialsRejected => "unauthorized",
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Internal(_) => "internal",
            ApiError::Declared { code, .. } => code,
        }
    }
}

/// Every slice error becomes the one `ApiError` handlers return. `ApiError` itself does not
/// implement [`ErrorCode`], which is what lets this stand beside `From<T> for T`.
impl<T: ErrorCode> From<T> for ApiError {
    fn from(e: T) -> Self {
        ApiError::Declared {
            status: e.status(),
            code: e.code(),
            message: e.message(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::CredentialsRejected => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Declared { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let status = self.status_code();
        // Details of internal failures go to the log, not to the client.
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            log::error!("internal error: {self}");
            "internal error; see the registry-admin log".to_string()
        } else {
            self.to_string()
        };
        let mut resp = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"registry-admin\""),
            ));
        }
        if let ApiError::RateLimited(secs) = self {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        resp.extensions_mut().insert(AnsweredCode(self.code()));
        resp.json(ErrorBody {
            error: self.code(),
            message,
        })
    }
}

/// Turns error responses that were not built from `ApiError` (actix's own: unknown route,
/// wrong method, extractor failures) into the same JSON shape, so clients see one format.
pub fn json_error_responses<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound("no such endpoint".into()),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::FORBIDDEN => ApiError::Forbidden,
        s if s.is_client_error() => ApiError::InvalidRequest(
            s.canonical_reason()
                .unwrap_or("invalid request")
                .to_lowercase(),
        ),
        _ => ApiError::Internal(format!("unhandled {status} response")),
    };
    let mut new = err.error_response();
    *new.status_mut() = status;
    let (req, old) = res.into_parts();
    // Keep headers such as X-Request-Id or Allow that were already set.
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice error as any slice declares one.
    #[derive(Debug, Error)]
    #[error("{0}")]
    struct Declares(StatusCode, &'static str);

    impl ErrorCode for Declares {
        fn status(&self) -> StatusCode {
            self.0
        }
        fn code(&self) -> &'static str {
            self.1
        }
    }

    async fn answer(e: ApiError) -> (u16, Option<String>, serde_json::Value) {
        let resp = e.error_response();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = actix_web::body::to_bytes(resp.into_body()).await.unwrap();
        (status, challenge, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn a_declared_error_is_answered_with_its_own_status_code_and_text() {
        let e = ApiError::from(Declares(StatusCode::CONFLICT, "gc_running"));
        let (status, challenge, body) = answer(e).await;
        assert_eq!((status, challenge), (409, None));
        assert_eq!(
            body,
            serde_json::json!({"error": "gc_running", "message": "409 Conflict"})
        );
    }

    #[actix_web::test]
    async fn a_declared_500_keeps_its_detail_out_of_the_body() {
        let e = ApiError::from(Declares(StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        let (status, _, body) = answer(e).await;
        assert_eq!(status, 500);
        assert_eq!(
            body["message"],
            "internal error; see the registry-admin log"
        );
    }

    #[actix_web::test]
    async fn a_declared_401_challenges_for_basic_credentials() {
        let e = ApiError::from(Declares(StatusCode::UNAUTHORIZED, "unauthorized"));
        let (status, challenge, _) = answer(e).await;
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"registry-admin\""));
    }
}
