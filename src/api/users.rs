//! The `/users` endpoints. Handlers stay thin: validate, hash off the workers, apply one
//! change through the store, answer.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::Audited;
use crate::api::access::is_self_or_admin;
use crate::auth::{Account, Admin, AuthError, Authenticator, retry_after};
use crate::blocking::run_blocking;
use crate::config::Config;
use crate::directory::Directory;
use crate::error::ApiError;
use crate::http::extract::{JsonBody, path_user};
use crate::names::Role;
use crate::users::model::{Accounts, Refusal, UserView};
use crate::users::store::{StoreError, UserStore};
use crate::validate;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::get().to(list))
            .route(web::post().to(create).wrap(Audited::change("user.create"))),
    )
    .service(
        web::resource("/users/{user}")
            .route(web::get().to(get))
            .route(
                web::delete()
                    .to(delete)
                    .wrap(Audited::change("user.delete")),
            ),
    )
    .service(
        web::resource("/users/{user}/password").route(
            web::put()
                .to(set_password)
                .wrap(Audited::change("user.password")),
        ),
    )
    .service(
        web::resource("/users/{user}/disable").route(
            web::post()
                .to(disable)
                .wrap(Audited::change("user.disable")),
        ),
    )
    .service(
        web::resource("/users/{user}/enable")
            .route(web::post().to(enable).wrap(Audited::change("user.enable"))),
    )
    .service(
        web::resource("/users/{user}/role")
            .route(web::put().to(set_role).wrap(Audited::change("user.role"))),
    );
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(list, create, get, delete, set_password, disable, enable, set_role))]
pub struct UsersApi;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    #[schema(pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")]
    username: String,
    #[schema(min_length = 8, max_length = 72)]
    password: String,
    /// "admin" or "user" (default).
    role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    #[schema(min_length = 8, max_length = 72)]
    password: String,
    /// Required when an account changes its own password (admins included), so a stolen
    /// token cannot take the account over.
    current_password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRole {
    role: String,
}

/// Applies one change to the accounts under the store's lock, off the async workers.
async fn change<T: Send + 'static>(
    store: &web::Data<UserStore>,
    f: impl FnOnce(&mut Accounts) -> Result<T, Refusal> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(store);
    Ok(run_blocking(move || store.modify(f)).await??)
}

/// All accounts, sorted by name.
#[utoipa::path(get, path = "/users", tag = "users", responses((status = 200, description = "accounts", body = [UserView])), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn list(
    _admin: Admin,
    store: web::Data<UserStore>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(store.current()?.list()))
}

/// Creates an account; registry:2 accepts it at once.
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, description = "created", body = UserView)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn create(
    Admin(admin): Admin,
    store: web::Data<UserStore>,
    auth: web::Data<Authenticator>,
    config: web::Data<Config>,
    req: HttpRequest,
    body: JsonBody<NewUser>,
) -> Result<HttpResponse, actix_web::Error> {
    let NewUser {
        username,
        password,
        role,
    } = body?.into_inner();
    validate::username(&username).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| n.user = Some(username.clone()));
    if username.starts_with(crate::robots::ROBOT_PREFIX) {
        return Err(ApiError::from(validate::InvalidInput::Username(
            "usernames starting with \"robot.\" are reserved for robot accounts (POST /robots)"
                .into(),
        ))
        .into());
    }
    // The name registry-admin goes by at the registry is never a person's, in either mode.
    if username == crate::bootstrap::own_registry_account(&config) {
        return Err(ApiError::from(StoreError::Protected(username)).into());
    }
    validate::password(&password).map_err(ApiError::from)?;
    let role = match role.as_deref() {
        None => Role::User,
        Some(r) => validate::assignable_role(r).map_err(ApiError::from)?,
    };
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!("role {}", role.as_str()))
    });
    if store
        .current()
        .map_err(ApiError::from)?
        .view(&username)
        .is_some()
    {
        // Saves a bcrypt for the common mistake; the check under the lock below is the real one.
        return Err(ApiError::from(StoreError::Exists(username)).into());
    }
    let hash = auth.verifier.hash(password).await.map_err(ApiError::from)?;
    let view: UserView = change(&store, move |a| {
        a.create(&username, &hash, role, Some(&admin.username), Utc::now())
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(get, path = "/users/{user}", tag = "users", params(("user" = String, Path, description = "username", pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 200, description = "the account", body = UserView)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn get(
    _admin: Admin,
    store: web::Data<UserStore>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path_user(path)?;
    let view = store
        .current()?
        .view(&user)
        .ok_or_else(|| ApiError::NotFound(format!("user {user:?} not found")))?;
    Ok(HttpResponse::Ok().json(view))
}

/// Deletes an account (not the last enabled admin, not the service account), its grants and
/// its robots.
#[utoipa::path(delete, path = "/users/{user}", tag = "users", params(("user" = String, Path, description = "username", pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 204, description = "deleted")), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn delete(
    _admin: Admin,
    directory: web::Data<Directory>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path_user(path)?;
    directory.into_inner().delete_account(user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets a password: admins for anyone, users for themselves.
#[utoipa::path(put, path = "/users/{user}/password", tag = "users", params(("user" = String, Path, description = "username", pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")),
    request_body = NewPassword, responses((status = 204, description = "changed")), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn set_password(
    account: Account,
    store: web::Data<UserStore>,
    auth: web::Data<Authenticator>,
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<NewPassword>,
) -> Result<HttpResponse, actix_web::Error> {
    let user = path_user(path)?;
    let own = account.username == user.as_str();
    if !is_self_or_admin(&account, &user) {
        return Err(ApiError::Forbidden.into());
    }
    let NewPassword {
        password,
        current_password,
    } = body?.into_inner();
    validate::password(&password).map_err(ApiError::from)?;
    if own {
        check_current_password(&auth, &req, &user, current_password).await?;
    }
    let hash = auth.verifier.hash(password).await.map_err(ApiError::from)?;
    change(&store, move |a| a.set_password(&user, &hash)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changing one's own password proves the old one, throttled like a login: a wrong guess here
/// costs the same slot as a wrong password at the door.
async fn check_current_password(
    auth: &Authenticator,
    req: &HttpRequest,
    user: &str,
    current: Option<String>,
) -> Result<(), ApiError> {
    let Some(current) = current else {
        return Err(ApiError::ForbiddenBecause(
            "changing your own password needs \"current_password\"".into(),
        ));
    };
    if auth.verifier.remembered(user, &current)?.is_some() {
        return Ok(());
    }
    let ip = auth.addresses.client_ip(req);
    if let Some(wait) = auth.limiter.throttled_anywhere(ip, user).await? {
        return Err(retry_after(wait));
    }
    let slot = auth.limiter.reserve(ip, user).map_err(retry_after)?;
    match auth.verifier.verify(user, &current).await {
        Ok(_) => {
            slot.succeeded();
            auth.limiter.settled_anywhere(ip, user, false).await;
            Ok(())
        }
        Err(AuthError::Rejected) => {
            slot.failed();
            auth.limiter.settled_anywhere(ip, user, true).await;
            Err(ApiError::ForbiddenBecause(
                "\"current_password\" is not the account's password".into(),
            ))
        }
        Err(other) => {
            slot.not_checked();
            Err(other.into())
        }
    }
}

/// Disables an account: its htpasswd line is removed (kept aside for enable).
#[utoipa::path(post, path = "/users/{user}/disable", tag = "users", params(("user" = String, Path, description = "username", pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 200, description = "the account", body = UserView)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn disable(
    _admin: Admin,
    store: web::Data<UserStore>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path_user(path)?;
    let view = change(&store, move |a| a.disable(&user)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Enables an account with the password it had.
#[utoipa::path(post, path = "/users/{user}/enable", tag = "users", params(("user" = String, Path, description = "username", pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")),
    responses((status = 200, description = "the account", body = UserView)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn enable(
    _admin: Admin,
    store: web::Data<UserStore>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = path_user(path)?;
    let view = change(&store, move |a| a.enable(&user)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(put, path = "/users/{user}/role", tag = "users", params(("user" = String, Path, description = "username", pattern = "^[A-Za-z0-9_@][A-Za-z0-9._@-]{0,63}$")),
    request_body = NewRole, responses((status = 200, description = "the account", body = UserView)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn set_role(
    _admin: Admin,
    store: web::Data<UserStore>,
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<NewRole>,
) -> Result<HttpResponse, actix_web::Error> {
    let user = path_user(path)?;
    let NewRole { role } = body?.into_inner();
    let role = validate::assignable_role(&role).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!("role {}", role.as_str()))
    });
    let view = change(&store, move |a| a.set_role(&user, role)).await?;
    Ok(HttpResponse::Ok().json(view))
}
