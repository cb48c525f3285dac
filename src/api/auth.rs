//! `POST /auth/token`: Basic credentials in, a bearer token for the API out.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::{SecondsFormat, Utc};

use super::audited::Audited;
use crate::auth::{Account, Authenticator, Scheme};
use crate::error::ApiError;
use crate::users::store::UserStore;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/auth/token",
        web::post()
            .to(issue_token)
            .wrap(Audited::no_change("auth.token")),
    );
}

/// This module's part of the OpenAPI document (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(issue_token))]
pub struct AuthApi;

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
    auth: web::Data<Authenticator>,
    store: web::Data<UserStore>,
) -> Result<HttpResponse, ApiError> {
    if req.extensions().get::<Scheme>() != Some(&Scheme::Basic) {
        return Err(ApiError::InvalidRequest(
            "a token is issued for Basic credentials only".into(),
        ));
    }
    let accounts = store.current()?;
    let hash = accounts
        .htpasswd
        .get(&account.username)
        .ok_or(ApiError::CredentialsRejected)?;
    let (token, expires) = auth.tokens.issue(
        &account.username,
        hash,
        account.role,
        accounts.token_epoch(&account.username),
        Utc::now(),
    );
    Ok(HttpResponse::Ok().json(TokenResponse {
        token,
        expires_at: expires.to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}
