//! Credentials and roles as extractors: a handler that takes `Admin` can only run for an
//! enabled admin, one that takes `Account` for any enabled account, whether it came with HTTP
//! Basic or a bearer token. Failed attempts are throttled per (address, username) and address.

pub mod limit;
pub mod token;
pub mod verify;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, dev::Payload, web};
use base64::Engine;
use chrono::{SecondsFormat, Utc};

use crate::AppState;
use crate::audit::api::AuthAttempt;
use crate::error::ApiError;
use crate::users::model::Role;
pub use verify::Account;

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

async fn authenticate(req: HttpRequest) -> Result<Account, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("app state missing".into()))?;
    let ip = state.client_ip(&req);
    let Some(creds) = credentials(&req) else {
        return Err(ApiError::Unauthorized);
    };
    // Bearer and malformed attempts are throttled under the empty username.
    let (user, scheme) = match &creds {
        Credentials::Basic(u, _) => (u.clone(), Scheme::Basic),
        Credentials::Bearer(_) | Credentials::Malformed => (String::new(), Scheme::Bearer),
    };
    if let Some(wait) = state.limiter.blocked(ip, &user) {
        if state.limiter.audit_throttled(ip, &user) {
            req.extensions_mut().insert(AuthAttempt(user));
        }
        return Err(ApiError::RateLimited(wait.as_secs().max(1)));
    }
    let result = match creds {
        Credentials::Basic(u, p) => state.verifier.verify(&u, &p).await,
        Credentials::Bearer(t) => state.verifier.verify_bearer(&state.tokens, &t),
        Credentials::Malformed => Err(ApiError::Unauthorized),
    };
    match result {
        Ok(account) => {
            state.limiter.record_success(ip, &user);
            let mut ext = req.extensions_mut();
            ext.insert(account.clone());
            ext.insert(scheme);
            Ok(account)
        }
        Err(ApiError::Unauthorized) => {
            state.limiter.record_failure(ip, &user);
            req.extensions_mut().insert(AuthAttempt(user));
            Err(ApiError::Unauthorized)
        }
        Err(other) => Err(other),
    }
}

impl FromRequest for Account {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Account, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
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
                return Err(ApiError::Forbidden);
            }
            Ok(Admin(account))
        })
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/token", web::post().to(issue_token));
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse {
    token: String,
    /// RFC 3339.
    expires_at: String,
}

/// Basic credentials in, a bearer token out (lives TOKEN_TTL seconds).
#[utoipa::path(post, path = "/auth/token", tag = "auth", responses((status = 200, description = "a token", body = TokenResponse)),
    security(("basic" = [])))]
pub(crate) async fn issue_token(
    account: Account,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if req.extensions().get::<Scheme>() != Some(&Scheme::Basic) {
        return Err(ApiError::InvalidRequest(
            "a token is issued for Basic credentials only".into(),
        ));
    }
    let accounts = state.store.current()?;
    let hash = accounts
        .htpasswd
        .get(&account.username)
        .ok_or(ApiError::Unauthorized)?;
    let (token, expires) = state
        .tokens
        .issue(&account.username, hash, account.role, Utc::now());
    Ok(HttpResponse::Ok().json(TokenResponse {
        token,
        expires_at: expires.to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}
