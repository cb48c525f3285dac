//! Credentials and roles as extractors: a handler that takes `Admin` can only run for an
//! enabled admin, one that takes `Account` for any enabled account, whether it came with HTTP
//! Basic or a bearer token. Failed password attempts are throttled per (address, username) and
//! address; bearer tokens are not (see `check_bearer`).

pub mod failure_key;
pub mod limit;
pub mod robot;
pub mod shared_failures;
pub mod token;
pub mod verify;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use base64::Engine;

use std::sync::Arc;

use crate::error::ApiError;
use crate::names::Role;
use crate::net::ClientAddresses;
use crate::request_id::AccountName;
use crate::robots::RobotCaller;
use crate::robots::caller::is_robot_name;
use limit::{FailureLimiter, Throttled};
use token::TokenSigner;
use verify::Verifier;
pub use verify::{Account, AuthError};

enum Credentials {
    Basic(String, String),
    Bearer(String),
    /// A header that is neither: counted as a failure.
    Malformed,
}

/// How the request authenticated; `POST /auth/token` takes Basic only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    Basic,
    Bearer,
}

fn credentials(req: &HttpRequest) -> Option<Credentials> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let (scheme, rest) = value.to_str().ok()?.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Credentials::Bearer(rest.to_string()));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let (user, password) = String::from_utf8(decoded)
            .ok()?
            .split_once(':')
            .map(|(u, p)| (u.to_string(), p.to_string()))?;
        Some(Credentials::Basic(user, password))
    })();
    Some(parsed.unwrap_or(Credentials::Malformed))
}

/// The username a failed authentication tried, as given (sanitised before it is written). The
/// extractor leaves it only for attempts worth an audit entry.
#[derive(Debug, Clone)]
pub struct AuthAttempt(pub String);

/// The 429 for a throttled attempt, with whole seconds rounded up.
pub fn retry_after(Throttled(wait): Throttled) -> ApiError {
    ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// Everything that decides who a request is: the password check, the throttle, API tokens and
/// which address the request came from.
pub struct Authenticator {
    pub verifier: Verifier,
    pub limiter: Arc<FailureLimiter>,
    pub tokens: TokenSigner,
    pub addresses: Arc<ClientAddresses>,
}

async fn authenticate(req: HttpRequest) -> Result<Account, ApiError> {
    match credentials(&req) {
        None => Err(ApiError::Unauthorized),
        Some(creds) => check(&req, creds).await,
    }
}

/// What `GET /token` asks: `None` without an `Authorization` header (an anonymous caller),
/// otherwise the account, checked exactly as the API checks Basic credentials (throttle,
/// cache, bcrypt). A bearer token there is refused like a malformed header, never a way in:
/// registry tokens are issued for passwords only.
pub async fn authenticate_basic(req: &HttpRequest) -> Result<Option<Account>, ApiError> {
    match credentials(req) {
        None => Ok(None),
        Some(Credentials::Bearer(_)) => check(req, Credentials::Malformed).await.map(Some),
        Some(creds) => check(req, creds).await.map(Some),
    }
}

async fn check(req: &HttpRequest, creds: Credentials) -> Result<Account, ApiError> {
    let state = req
        .app_data::<web::Data<Authenticator>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("authenticator missing".into()))?;
    match creds {
        Credentials::Basic(user, password) => check_password(req, &state, user, password).await,
        Credentials::Bearer(token) => check_bearer(req, &state, &token).await,
        Credentials::Malformed => Err(refused_unthrottled(req)),
    }
}

/// A failure that is answered 401 and never throttled: it names no account, so its audit entry
/// is bounded like an anonymous caller's (see `audit::api`).
fn refused_unthrottled(req: &HttpRequest) -> ApiError {
    req.extensions_mut().insert(AuthAttempt(String::new()));
    ApiError::CredentialsRejected
}

/// A bearer token is checked without the throttle, before or after any failure from its
/// address: it costs no bcrypt and cannot be guessed, so counting its failures would only let
/// anyone sharing an address (a NAT, a proxy) lock out the web UI.
async fn check_bearer(
    req: &HttpRequest,
    state: &Authenticator,
    token: &str,
) -> Result<Account, ApiError> {
    match state.verifier.verify_bearer(&state.tokens, token).await {
        Ok(account) => Ok(accept(req, account, Scheme::Bearer)),
        Err(AuthError::Rejected) => Err(refused_unthrottled(req)),
        Err(other) => Err(other.into()),
    }
}

/// Password guessing is throttled per (address, username) and per address.
async fn check_password(
    req: &HttpRequest,
    state: &Authenticator,
    user: String,
    password: String,
) -> Result<Account, ApiError> {
    let ip = state.addresses.client_ip(req);
    let throttled = |wait: Throttled| {
        if state.limiter.audit_throttled(ip, &user) {
            req.extensions_mut().insert(AuthAttempt(user.clone()));
        }
        retry_after(wait)
    };
    // A throttled pair is refused even with the right password, remembered or not.
    if let Some(wait) = state.limiter.throttled(ip, &user) {
        return Err(throttled(wait));
    }
    if let Some(wait) = state.limiter.throttled_anywhere(ip, &user).await? {
        return Err(throttled(wait));
    }
    if !is_robot_name(&user)
        && let Some(account) = state.verifier.remembered(&user, &password)?
    {
        return Ok(accept(req, account, Scheme::Basic));
    }
    // The slot is taken before the bcrypt, so a burst cannot get more checks than the limit.
    let slot = state.limiter.reserve(ip, &user).map_err(throttled)?;
    let result = if is_robot_name(&user) {
        // A robot's secret costs no bcrypt, but its failures count against the same slots.
        robot::verify(req, &user, &password)
            .await
            .map(|(account, robot)| {
                req.extensions_mut().insert(robot);
                account
            })
    } else {
        state.verifier.verify(&user, &password).await
    };
    match result {
        Ok(account) => {
            slot.succeeded();
            state.limiter.settled_anywhere(ip, &user, false).await;
            Ok(accept(req, account, Scheme::Basic))
        }
        Err(AuthError::Rejected) => {
            slot.failed();
            state.limiter.settled_anywhere(ip, &user, true).await;
            req.extensions_mut().insert(AuthAttempt(user));
            Err(ApiError::CredentialsRejected)
        }
        Err(other) => {
            slot.not_checked();
            Err(other.into())
        }
    }
}

fn accept(req: &HttpRequest, account: Account, scheme: Scheme) -> Account {
    let mut ext = req.extensions_mut();
    ext.insert(AccountName(account.username.clone()));
    ext.insert(account.clone());
    ext.insert(scheme);
    account
}

/// A person's account: robots are answered 403 here, so every endpoint that takes `Account`
/// or `Admin` is closed to them. The image reads take `grants::Access`, which uses [`caller`].
impl FromRequest for Account {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Account, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let account = authenticate(req.clone()).await?;
            if req.extensions().get::<RobotCaller>().is_some() {
                return Err(ApiError::ForbiddenBecause(
                    "a robot account may only read the images its grants let it pull".into(),
                ));
            }
            Ok(account)
        })
    }
}

/// Whoever the request authenticates as, robots included (their `RobotCaller` is then in the
/// request's extensions).
pub async fn caller(req: HttpRequest) -> Result<Account, ApiError> {
    authenticate(req).await
}

/// An enabled account with the `admin` role.
pub struct Admin(pub Account);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let account = Account::from_request(req, payload);
        Box::pin(async move {
            let account = account.await?;
            if account.role != Role::Admin {
                return Err(ApiError::ForbiddenBecause(
                    "this needs the admin role; this account has the user role".into(),
                ));
            }
            Ok(Admin(account))
        })
    }
}
