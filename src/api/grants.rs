//! The grants API: read and replace a user's grants, the `everyone` grants and the public
//! patterns, and explain what an account may do on one repository. Every write is one
//! `Directory` method, one unit of work: the account it names is checked in the same critical
//! section that writes grants.json, and a concurrent delete of that account cannot leave grants
//! behind.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api::Audited;
use crate::api::access::{current_grants, is_self_or_admin, principal_of};
use crate::auth::{Account, Admin};
use crate::config::{AuthMode, Config};
use crate::directory::Directory;
use crate::error::ApiError;
use crate::freeze::{REGISTRY_LEEWAY_SECS, WriteFreeze};
use crate::grants::model::{Grant, GrantSpec, validate_list, validate_public};
use crate::grants::pattern::Pattern;
use crate::grants::policy::{Explanation, explain};
use crate::http::extract::{JsonBody, path_user};
use crate::names::{RepoName, Username};
use crate::users::store::UserStore;

/// Audit details stay short: the list itself can be 100 patterns of 255 characters.
const MAX_DETAIL_CHARS: usize = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/grants").route(web::get().to(overview)))
        .service(
            web::resource("/grants/everyone").route(
                web::put()
                    .to(set_everyone)
                    .wrap(Audited::change("grants.update")),
            ),
        )
        .service(
            web::resource("/grants/public").route(
                web::put()
                    .to(set_public)
                    .wrap(Audited::change("grants.update")),
            ),
        )
        .service(
            web::resource("/users/{user}/grants")
                .route(web::get().to(user_grants))
                .route(
                    web::put()
                        .to(set_user_grants)
                        .wrap(Audited::change("grants.update")),
                ),
        )
        .service(web::resource("/users/{user}/access").route(web::get().to(access)));
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(
    overview,
    user_grants,
    set_user_grants,
    set_everyone,
    set_public,
    access
))]
pub struct GrantsApi;

#[derive(Serialize, ToSchema)]
pub(crate) struct Overview {
    /// `false` in htpasswd mode: registry:2 then checks only the password, so every account
    /// can push, pull and delete everything there, and grants bind this API only.
    enforced_by_registry: bool,
    /// How long a registry token issued before a change (grants removed, account disabled or
    /// deleted) may still be honoured by registry:2: `REGISTRY_TOKEN_TTL` + its 60 s leeway in
    /// token mode; `0` in htpasswd mode, where registry:2 checks the password on each request.
    registry_token_bound_seconds: u64,
    #[schema(value_type = Vec<String>)]
    public: Vec<Pattern>,
    #[schema(value_type = Vec<GrantSpec>)]
    everyone: Vec<Grant>,
    #[schema(value_type = BTreeMap<String, Vec<GrantSpec>>)]
    users: BTreeMap<String, Vec<Grant>>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct UserGrants {
    #[schema(value_type = String)]
    user: Username,
    #[schema(value_type = Vec<GrantSpec>)]
    grants: Vec<Grant>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct GrantList {
    #[schema(value_type = Vec<GrantSpec>)]
    grants: Vec<Grant>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewGrants {
    /// At most 100; actions from `pull`, `push`, `delete` (`push` adds `pull`).
    grants: Vec<GrantSpec>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublicPatterns {
    /// Repository patterns anyone may pull (token mode: without signing in). At most 100.
    repositories: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AccessQuery {
    /// A repository name (not a pattern).
    repository: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AccessAnswer {
    #[schema(value_type = String)]
    user: Username,
    repository: String,
    #[serde(flatten)]
    explanation: Explanation,
}

fn summary(what: &str, items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let mut s = format!("{what}: {} [{}]", items.len(), items.join(" "));
    if s.chars().count() > MAX_DETAIL_CHARS {
        s = s.chars().take(MAX_DETAIL_CHARS).collect::<String>() + "…";
    }
    s
}

fn grant_text(g: &Grant) -> String {
    let actions: Vec<&str> = g.actions().iter().map(|a| a.as_str()).collect();
    format!("{}={}", g.repository.as_str(), actions.join(","))
}

/// Every grant and public pattern, and whether registry:2 enforces them.
#[utoipa::path(get, path = "/grants", tag = "grants",
    responses((status = 200, description = "all grants", body = Overview)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn overview(
    _admin: Admin,
    config: web::Data<Config>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let grants = current_grants(&req)?;
    Ok(HttpResponse::Ok().json(Overview {
        enforced_by_registry: config.auth_mode == AuthMode::Token,
        registry_token_bound_seconds: match config.auth_mode {
            AuthMode::Token => config.registry_token.ttl + REGISTRY_LEEWAY_SECS as u64,
            AuthMode::Htpasswd => 0,
        },
        public: grants.public().to_vec(),
        everyone: grants.everyone().to_vec(),
        users: grants.users().clone(),
    }))
}

/// One account's own grants (not `everyone` or public ones; see `/users/{user}/access`).
#[utoipa::path(get, path = "/users/{user}/grants", tag = "grants",
    params(("user" = String, Path, description = "username")),
    responses((status = 200, description = "the account's grants", body = UserGrants)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn user_grants(
    account: Account,
    store: web::Data<UserStore>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path_user(path)?;
    if !is_self_or_admin(&account, &user) {
        return Err(ApiError::ForbiddenBecause(
            "a user may read only its own grants".into(),
        ));
    }
    if store.current()?.view(&user).is_none() {
        return Err(ApiError::NotFound(format!("user {user:?} not found")));
    }
    let grants = current_grants(&req)?.user(&user).to_vec();
    Ok(HttpResponse::Ok().json(UserGrants { user, grants }))
}

/// Replaces an account's grants; `[]` removes them all.
#[utoipa::path(put, path = "/users/{user}/grants", tag = "grants",
    params(("user" = String, Path, description = "username")), request_body = NewGrants,
    responses((status = 200, description = "the stored grants", body = UserGrants)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn set_user_grants(
    _admin: Admin,
    directory: web::Data<Directory>,
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<NewGrants>,
) -> Result<HttpResponse, actix_web::Error> {
    let user = path_user(path)?;
    let specs = body?.into_inner().grants;
    let list = validate_list(&format!("the grants of {user:?}"), specs).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(summary("grants", list.iter().map(grant_text)))
    });
    let stored = directory
        .into_inner()
        .set_user_grants(user.clone(), list)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(UserGrants {
        user,
        grants: stored,
    }))
}

/// Replaces the grants every signed-in `user` account has.
#[utoipa::path(put, path = "/grants/everyone", tag = "grants", request_body = NewGrants,
    responses((status = 200, description = "the stored grants", body = GrantList)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn set_everyone(
    _admin: Admin,
    directory: web::Data<Directory>,
    req: HttpRequest,
    body: JsonBody<NewGrants>,
) -> Result<HttpResponse, actix_web::Error> {
    crate::api::audit_middleware::note(&req, |n| n.detail = Some("everyone".into()));
    let list = validate_list("everyone", body?.into_inner().grants).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(summary("everyone", list.iter().map(grant_text)))
    });
    let stored = directory
        .into_inner()
        .set_everyone(list)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(GrantList { grants: stored }))
}

/// Replaces the repository patterns anyone may pull.
#[utoipa::path(put, path = "/grants/public", tag = "grants", request_body = PublicPatterns,
    responses((status = 200, description = "the stored patterns", body = PublicPatterns)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn set_public(
    _admin: Admin,
    directory: web::Data<Directory>,
    req: HttpRequest,
    body: JsonBody<PublicPatterns>,
) -> Result<HttpResponse, actix_web::Error> {
    crate::api::audit_middleware::note(&req, |n| n.detail = Some("public".into()));
    let patterns = validate_public(&body?.into_inner().repositories).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(summary(
            "public",
            patterns.iter().map(|p| p.as_str().to_string()),
        ))
    });
    let stored = directory
        .into_inner()
        .set_public(patterns)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(PublicPatterns {
        repositories: stored.iter().map(|p| p.as_str().to_string()).collect(),
    }))
}

/// What an account may do on one repository now, and why.
#[utoipa::path(get, path = "/users/{user}/access", tag = "grants",
    params(("user" = String, Path, description = "username"), AccessQuery),
    responses((status = 200, description = "actions and their reasons", body = AccessAnswer)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn access(
    account: Account,
    store: web::Data<UserStore>,
    freeze: web::Data<WriteFreeze>,
    req: HttpRequest,
    path: web::Path<String>,
    query: Result<web::Query<AccessQuery>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let user = path_user(path)?;
    if !is_self_or_admin(&account, &user) {
        return Err(
            ApiError::ForbiddenBecause("a user may ask only about its own access".into()).into(),
        );
    }
    let repository = RepoName::parse(query?.into_inner().repository).map_err(ApiError::from)?;
    let view = store
        .current()
        .map_err(ApiError::from)?
        .view(&user)
        .ok_or_else(|| ApiError::NotFound(format!("user {user:?} not found")))?;
    let principal = principal_of(&user, view.role);
    let grants = current_grants(&req)?;
    let explanation = explain(&principal, &grants, &repository, freeze.is_frozen());
    Ok(HttpResponse::Ok().json(AccessAnswer {
        user,
        repository: repository.to_string(),
        explanation,
    }))
}
