//! The one place where failures become HTTP statuses and JSON error bodies.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use thiserror::Error;

use crate::auth::verify::AuthError;
use crate::blocking::BlockingError;
use crate::durable::DurableError;
use crate::gc::error::GcError;
use crate::grants::GrantError;
use crate::grants::denied::Denied;
use crate::registry::client::UpstreamError;
use crate::registry::delete::DeleteError;
use crate::registry::names::InvalidReference;
use crate::retention::RetentionError;
use crate::token::ScopeError;
use crate::users::store::StoreError;
use crate::users::validate::InvalidInput;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidUsername(String),
    #[error("{0}")]
    InvalidPassword(String),
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
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("{0}")]
    LastAdmin(String),
    #[error("the account {0:?} is managed by registry-admin itself and cannot be changed")]
    ProtectedAccount(String),
    #[error("too many failed authentications; retry in {0} seconds")]
    RateLimited(u64),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidTag(String),
    #[error("{0}")]
    InvalidDigest(String),
    #[error("{0}")]
    UpstreamUnavailable(String),
    #[error("{0}")]
    UpstreamTimeout(String),
    #[error("{0}")]
    Upstream(String),
    /// The htpasswd on disk cannot be used (a hand edit broke it, or it vanished): accounts are
    /// unknown until someone fixes the file, so nothing that needs them is answered.
    #[error("the htpasswd file cannot be used: {0}; accounts are unavailable until it is fixed")]
    HtpasswdInvalid(String),
    /// A `scope` of `GET /token` that names no valid repository.
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidGrant(String),
    /// A garbage collection holds registry writes back.
    #[error("{0}")]
    Maintenance(String),
    #[error("{0}")]
    GcRunning(String),
    #[error("{0}")]
    GcUnavailable(String),
    #[error("{0}")]
    RegistryWritable(String),
    /// The audit log cannot take entries (disk full, I/O error), so nothing that would need
    /// one is done.
    #[error("the audit log cannot be written ({0}); nothing was changed: retry once it can be")]
    AuditUnavailable(String),
    #[error("{0}")]
    InvalidRobot(String),
    /// A user's robot may hold only what its owner may do.
    #[error("{0}")]
    GrantsExceedOwner(String),
    #[error("{0}")]
    RobotExists(String),
    /// Robots exist in token mode only.
    #[error("{0}")]
    TokenModeRequired(String),
    /// A retention policy that is not valid (DESIGN "Retention").
    #[error("{0}")]
    InvalidPolicy(String),
    #[error("{0}")]
    Internal(String),
}

/// The error code of an error response, left in the response's extensions for the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

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
            ApiError::InvalidUsername(_) => "invalid_username",
            ApiError::InvalidPassword(_) => "invalid_password",
            ApiError::Unauthorized | ApiError::CredentialsRejected => "unauthorized",
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::UserExists(_) => "user_exists",
            ApiError::LastAdmin(_) => "last_admin",
            ApiError::ProtectedAccount(_) => "protected_account",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::InvalidName(_) => "invalid_name",
            ApiError::InvalidTag(_) => "invalid_tag",
            ApiError::InvalidDigest(_) => "invalid_digest",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::UpstreamTimeout(_) => "upstream_timeout",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::HtpasswdInvalid(_) => "htpasswd_invalid",
            ApiError::InvalidGrant(_) => "invalid_grant",
            ApiError::Maintenance(_) => "maintenance",
            ApiError::InvalidScope(_) => "invalid_scope",
            ApiError::GcRunning(_) => "gc_running",
            ApiError::GcUnavailable(_) => "gc_unavailable",
            ApiError::RegistryWritable(_) => "registry_writable",
            ApiError::AuditUnavailable(_) => "audit_unavailable",
            ApiError::InvalidRobot(_) => "invalid_robot",
            ApiError::GrantsExceedOwner(_) => "grants_exceed_owner",
            ApiError::RobotExists(_) => "robot_exists",
            ApiError::TokenModeRequired(_) => "token_mode_required",
            ApiError::InvalidPolicy(_) => "invalid_policy",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::InvalidUsername(_)
            | ApiError::InvalidPassword(_)
            | ApiError::InvalidName(_)
            | ApiError::InvalidTag(_)
            | ApiError::InvalidDigest(_)
            | ApiError::InvalidGrant(_)
            | ApiError::InvalidScope(_)
            | ApiError::InvalidRobot(_)
            | ApiError::InvalidPolicy(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::CredentialsRejected => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden
            | ApiError::ForbiddenBecause(_)
            | ApiError::GrantsExceedOwner(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::UserExists(_)
            | ApiError::LastAdmin(_)
            | ApiError::ProtectedAccount(_)
            | ApiError::Maintenance(_)
            | ApiError::GcRunning(_)
            | ApiError::GcUnavailable(_)
            | ApiError::RegistryWritable(_)
            | ApiError::RobotExists(_)
            | ApiError::TokenModeRequired(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UpstreamUnavailable(_) | ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::HtpasswdInvalid(_) | ApiError::AuditUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let message = match self {
            // Details of internal failures go to the log, not to the client.
            ApiError::Internal(detail) => {
                log::error!("internal error: {detail}");
                "internal error; see the registry-admin log".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = HttpResponse::build(self.status_code());
        if let ApiError::Unauthorized | ApiError::CredentialsRejected = self {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"registry-admin\""),
            ));
        }
        if let ApiError::RateLimited(secs) = self {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        resp.extensions_mut().insert(ErrorCode(self.code()));
        resp.json(ErrorBody {
            error: self.code(),
            message,
        })
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Rejected => ApiError::CredentialsRejected,
            AuthError::Store(s) => s.into(),
            AuthError::Blocking(b) => b.into(),
            AuthError::Hash(m) => ApiError::Internal(m),
        }
    }
}

impl From<crate::audit::writer::AuditError> for ApiError {
    fn from(e: crate::audit::writer::AuditError) -> Self {
        ApiError::AuditUnavailable(e.reason())
    }
}

impl From<BlockingError> for ApiError {
    fn from(e: BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        match e {
            InvalidInput::Username(m) => ApiError::InvalidUsername(m),
            InvalidInput::Password(m) => ApiError::InvalidPassword(m),
            InvalidInput::Role(m) => ApiError::InvalidRequest(m),
        }
    }
}

impl From<InvalidReference> for ApiError {
    fn from(e: InvalidReference) -> Self {
        let message = e.to_string();
        match e {
            InvalidReference::Name(_) => ApiError::InvalidName(message),
            InvalidReference::Tag(_) => ApiError::InvalidTag(message),
            InvalidReference::Digest(_) => ApiError::InvalidDigest(message),
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        let message = e.to_string();
        match e {
            UpstreamError::Unavailable(_) => ApiError::UpstreamUnavailable(message),
            UpstreamError::Timeout => ApiError::UpstreamTimeout(message),
            _ => ApiError::Upstream(message),
        }
    }
}

impl From<DeleteError> for ApiError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::NotFound(what) => ApiError::NotFound(format!("tag {what} not found")),
            DeleteError::Disabled(_) => ApiError::Upstream(e.to_string()),
            DeleteError::Upstream(u) => u.into(),
        }
    }
}

impl From<ScopeError> for ApiError {
    fn from(e: ScopeError) -> Self {
        ApiError::InvalidScope(e.to_string())
    }
}

impl From<GcError> for ApiError {
    fn from(e: GcError) -> Self {
        let message = e.to_string();
        match e {
            GcError::Running(_) => ApiError::GcRunning(message),
            GcError::Unavailable(_) => ApiError::GcUnavailable(message),
            GcError::RegistryWritable(_) => ApiError::RegistryWritable(message),
            GcError::Upstream(u) => u.into(),
            GcError::Durable(d) => ApiError::Internal(d.to_string()),
            GcError::Blocking(b) => b.into(),
        }
    }
}

impl From<RetentionError> for ApiError {
    fn from(e: RetentionError) -> Self {
        let message = e.to_string();
        match e {
            RetentionError::Invalid(_) => ApiError::InvalidPolicy(message),
            RetentionError::PlanNotFound(_) => ApiError::NotFound(message),
            RetentionError::Maintenance => ApiError::Maintenance(message),
            RetentionError::Upstream(u) => u.into(),
            RetentionError::Delete(d) => d.into(),
            RetentionError::Blocking(b) => b.into(),
            RetentionError::Stored(_) | RetentionError::Audit(_) | RetentionError::Durable(_) => {
                ApiError::Internal(message)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(u) => ApiError::NotFound(format!("user {u:?} not found")),
            StoreError::Exists(u) => ApiError::UserExists(u),
            StoreError::LastAdmin(m) => ApiError::LastAdmin(m),
            StoreError::Protected(u) => ApiError::ProtectedAccount(u),
            StoreError::Htpasswd { problem, .. } => ApiError::HtpasswdInvalid(problem.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        ApiError::InvalidGrant(e.to_string())
    }
}

impl From<DurableError> for ApiError {
    fn from(e: DurableError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// `Hidden` has no answer of its own: the handler answers as for a missing repository, with
/// that endpoint's own not-found body.
impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        match e {
            Denied::Hidden => ApiError::NotFound("not found".into()),
            Denied::Missing { .. } => ApiError::ForbiddenBecause(e.to_string()),
            Denied::Frozen { .. } => ApiError::Maintenance(e.to_string()),
        }
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
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::MAX_BODY_BYTES),
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

/// Error handler for the JSON extractor: oversize is 413, everything else 400.
pub fn json_payload_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => {
            ApiError::PayloadTooLarge(crate::MAX_BODY_BYTES).into()
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
