//! The `/robots` endpoints: create, list, read, set grants, rotate, delete. Admins act on any
//! owner's robots, users on their own; a robot itself never reaches them (the `Account`
//! extractor answers robots 403). Every change is one `Directory` method, which runs it in one
//! critical section under the htpasswd lock, where the owner and its grants are read as they
//! are on disk.

use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api::Audited;
use crate::api::access::is_self_or_admin;
use crate::config::{AuthMode, Config};
use crate::directory::{Directory, SecretRotation};
use crate::error::ApiError;
use crate::grants::model::validate_list;
use crate::grants::{Grant, GrantSpec};
use crate::http::extract::JsonBody;
use crate::names::Role;
use crate::robots::error::RobotError;
use crate::robots::model::{
    ExpiryRequest, Robot, RobotView, check_description, expiry_field, full_name, split_name,
};
use crate::robots::secret;
use crate::robots::store::RobotsStore;
use crate::users::model::Account;

/// Longest overlap in which a rotated-out secret still works: a day, enough for a rolling
/// update of image-pull secrets.
pub const MAX_OVERLAP_SECONDS: i64 = 86_400;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/robots")
            .route(web::get().to(list))
            .route(web::post().to(create).wrap(Audited::change("robot.create"))),
    )
    .service(
        web::resource("/robots/{robot}")
            .route(web::get().to(get))
            .route(
                web::delete()
                    .to(delete)
                    .wrap(Audited::change("robot.delete")),
            ),
    )
    .service(
        web::resource("/robots/{robot}/grants").route(
            web::put()
                .to(set_grants)
                .wrap(Audited::change("robot.grants")),
        ),
    )
    .service(
        web::resource("/robots/{robot}/rotate")
            .route(web::post().to(rotate).wrap(Audited::change("robot.rotate"))),
    );
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(create, list, get, set_grants, rotate, delete))]
pub struct RobotsApi;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRobot {
    /// `NAME` of `robot.OWNER.NAME`: 1–32 of `[a-z0-9-]`, not starting with `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,31}$")]
    name: String,
    /// Defaults to the caller; only admins name another account.
    owner: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    description: String,
    /// 1–3650, default 90; `null` (never) for admins only.
    #[serde(default, deserialize_with = "expiry_field")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3650)]
    expires_in_days: ExpiryRequest,
    /// At most 100; covered by the owner's rights unless the owner is an admin.
    grants: Vec<GrantSpec>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRobotGrants {
    grants: Vec<GrantSpec>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rotation {
    /// 0–86400, default 0: how long the previous secret keeps working.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86400)]
    overlap_seconds: i64,
    /// Sets a new expiry counted from now (absent: unchanged; `null`: never, admins only).
    #[serde(default, deserialize_with = "rotation_expiry")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3650)]
    expires_in_days: Option<ExpiryRequest>,
}

fn rotation_expiry<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<ExpiryRequest>, D::Error> {
    expiry_field(d).map(Some)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this owner's robots (users may name only themselves).
    owner: Option<String>,
    /// Only robots that expire within this many days (expired ones included), 0–3650.
    expiring_within: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RobotList {
    robots: Vec<RobotView>,
}

/// A robot and its new secret: the only answers that ever carry it.
#[derive(Serialize, ToSchema)]
pub(crate) struct RobotWithSecret {
    #[serde(flatten)]
    robot: RobotView,
    /// `ra_…`: shown once; use it as the password of `robot.OWNER.NAME`.
    secret: String,
    /// Where clients log in (`PUBLIC_REGISTRY_HOST`), for the `docker login` command.
    registry: String,
}

fn token_mode(config: &Config) -> Result<(), RobotError> {
    if config.auth_mode == AuthMode::Token {
        Ok(())
    } else {
        Err(RobotError::TokenModeRequired)
    }
}

/// A body as `T`, every mistake in it (unknown field included) 400 `invalid_robot`.
fn parse<T: DeserializeOwned>(body: JsonBody<serde_json::Value>) -> Result<T, actix_web::Error> {
    let value = body?.into_inner();
    serde_json::from_value(value)
        .map_err(|e| ApiError::from(RobotError::Invalid(format!("invalid robot body: {e}"))).into())
}

/// The `{robot}` path segment: a full robot name.
fn path_robot(path: web::Path<String>) -> Result<String, RobotError> {
    let name = path.into_inner();
    if split_name(&name).is_none() {
        return Err(RobotError::Invalid(format!(
            "{:?} is not a robot name (robot.OWNER.NAME)",
            crate::audit::entry::clean(&name, 80)
        )));
    }
    Ok(name)
}

/// The robot a change to `/robots/{robot}` names (token mode only), noted as its audit entry's
/// user before anything else can fail, so that even a refused change says whom it was for.
fn robot_to_change(
    config: &Config,
    req: &HttpRequest,
    path: web::Path<String>,
) -> Result<String, RobotError> {
    token_mode(config)?;
    let name = path_robot(path)?;
    crate::api::audit_middleware::note(req, |n| n.user = Some(name.clone()));
    Ok(name)
}

/// The answer that carries a robot's new secret, kept out of every cache.
fn with_secret(
    mut answer: HttpResponseBuilder,
    robot: RobotView,
    secret: String,
    config: &Config,
) -> HttpResponse {
    answer
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(RobotWithSecret {
            robot,
            secret,
            registry: config.public_registry_host.clone(),
        })
}

fn grants_text(list: &[Grant]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|g| {
            let actions: Vec<&str> = g.actions().iter().map(|a| a.as_str()).collect();
            format!("{}={}", g.repository.as_str(), actions.join(","))
        })
        .collect();
    let text = format!("grants: {} [{}]", items.len(), items.join(" "));
    if text.chars().count() > 500 {
        text.chars().take(500).collect::<String>() + "…"
    } else {
        text
    }
}

fn expiry_text(expires: Option<DateTime<Utc>>) -> String {
    match expires {
        Some(t) => format!(
            "expires {}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "never expires".into(),
    }
}

/// Creates a robot; the answer holds its secret, which is never shown again.
#[utoipa::path(post, path = "/robots", tag = "robots", request_body = NewRobot,
    responses((status = 201, description = "created, with its secret", body = RobotWithSecret)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn create(
    account: Account,
    config: web::Data<Config>,
    files: web::Data<Directory>,
    req: HttpRequest,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, actix_web::Error> {
    token_mode(&config).map_err(ApiError::from)?;
    let body: NewRobot = parse(body)?;
    let admin = account.role == Role::Admin;
    let owner = body
        .owner
        .clone()
        .unwrap_or_else(|| account.username.clone());
    let name = full_name(&owner, &body.name).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| n.user = Some(name.clone()));
    if !is_self_or_admin(&account, &owner) {
        return Err(ApiError::ForbiddenBecause(
            "only an admin may create a robot for another account".into(),
        )
        .into());
    }
    check_description(&body.description).map_err(ApiError::from)?;
    let now = Utc::now();
    let expires_at = body
        .expires_in_days
        .resolve(now, admin)
        .map_err(ApiError::from)?;
    let list = validate_list("the robot's grants", body.grants).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!(
            "{}; {}",
            grants_text(&list),
            expiry_text(expires_at)
        ))
    });
    let secret = secret::generate();
    let robot = Robot {
        name,
        owner,
        description: body.description,
        grants: list,
        created_at: now,
        created_by: account.username.clone(),
        expires_at,
        last_used_at: None,
        secret_sha256: secret::hash(&secret),
        previous_sha256: None,
        previous_until: None,
        expiry_reported: false,
    };
    let view = files
        .into_inner()
        .create_robot(robot)
        .await
        .map_err(ApiError::from)?;
    Ok(with_secret(HttpResponse::Created(), view, secret, &config))
}

/// Robots sorted by name: every robot for admins, one's own for users.
#[utoipa::path(get, path = "/robots", tag = "robots", params(ListQuery),
    responses((status = 200, description = "robots, never a secret", body = RobotList)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn list(
    account: Account,
    config: web::Data<Config>,
    robots: web::Data<RobotsStore>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    token_mode(&config)?;
    let ListQuery {
        owner,
        expiring_within,
    } = query.into_inner();
    if let Some(days) = expiring_within
        && !(0..=3650).contains(&days)
    {
        return Err(RobotError::Invalid(format!(
            "expiring_within must be 0-3650 days, not {days}"
        ))
        .into());
    }
    if let Some(o) = &owner
        && !is_self_or_admin(&account, o)
    {
        return Err(ApiError::ForbiddenBecause(
            "a user may list only its own robots".into(),
        ));
    }
    let now = Utc::now();
    let all = robots.current()?;
    let robots: Vec<RobotView> = all
        .robots
        .values()
        .filter(|r| is_self_or_admin(&account, &r.owner))
        .filter(|r| owner.as_ref().is_none_or(|o| &r.owner == o))
        .filter(|r| expiring_within.is_none_or(|d| r.expires_within(now, d)))
        .map(Robot::view)
        .collect();
    Ok(HttpResponse::Ok().json(RobotList { robots }))
}

#[utoipa::path(get, path = "/robots/{robot}", tag = "robots",
    params(("robot" = String, Path, description = "robot.OWNER.NAME")),
    responses((status = 200, description = "the robot", body = RobotView)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn get(
    account: Account,
    config: web::Data<Config>,
    robots: web::Data<RobotsStore>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    token_mode(&config)?;
    let name = path_robot(path)?;
    let all = robots.current()?;
    Ok(HttpResponse::Ok().json(all.visible(&account, &name)?.view()))
}

/// Replaces a robot's grants (covered by the owner's rights unless the owner is an admin).
#[utoipa::path(put, path = "/robots/{robot}/grants", tag = "robots",
    params(("robot" = String, Path, description = "robot.OWNER.NAME")), request_body = NewRobotGrants,
    responses((status = 200, description = "the robot", body = RobotView)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn set_grants(
    account: Account,
    config: web::Data<Config>,
    files: web::Data<Directory>,
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, actix_web::Error> {
    let name = robot_to_change(&config, &req, path).map_err(ApiError::from)?;
    let body: NewRobotGrants = parse(body)?;
    let list = validate_list("the robot's grants", body.grants).map_err(ApiError::from)?;
    crate::api::audit_middleware::note(&req, |n| n.detail = Some(grants_text(&list)));
    let view = files
        .into_inner()
        .set_robot_grants(account, name, list)
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(view))
}

/// A new secret; the previous one keeps working for `overlap_seconds`.
#[utoipa::path(post, path = "/robots/{robot}/rotate", tag = "robots",
    params(("robot" = String, Path, description = "robot.OWNER.NAME")), request_body = Rotation,
    responses((status = 200, description = "the robot, with its new secret", body = RobotWithSecret)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn rotate(
    account: Account,
    config: web::Data<Config>,
    files: web::Data<Directory>,
    req: HttpRequest,
    path: web::Path<String>,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, actix_web::Error> {
    let name = robot_to_change(&config, &req, path).map_err(ApiError::from)?;
    let rotation: Rotation = parse(body)?;
    if !(0..=MAX_OVERLAP_SECONDS).contains(&rotation.overlap_seconds) {
        return Err(ApiError::from(RobotError::Invalid(format!(
            "overlap_seconds must be 0-{MAX_OVERLAP_SECONDS}, not {}",
            rotation.overlap_seconds
        )))
        .into());
    }
    let now = Utc::now();
    let admin = account.role == Role::Admin;
    let expires = rotation
        .expires_in_days
        .map(|e| e.resolve(now, admin))
        .transpose()
        .map_err(ApiError::from)?;
    let overlap = rotation.overlap_seconds;
    crate::api::audit_middleware::note(&req, |n| {
        let mut detail = format!("overlap {overlap} s");
        if let Some(e) = expires {
            detail.push_str(&format!("; {}", expiry_text(e)));
        }
        n.detail = Some(detail);
    });
    let secret = secret::generate();
    let new_secret = SecretRotation {
        secret_sha256: secret::hash(&secret),
        overlap_seconds: overlap,
        now,
        expires,
    };
    let view = files
        .into_inner()
        .rotate_robot(account, name, new_secret)
        .await
        .map_err(ApiError::from)?;
    Ok(with_secret(HttpResponse::Ok(), view, secret, &config))
}

/// Deletes a robot: its secrets stop working for new tokens at once.
#[utoipa::path(delete, path = "/robots/{robot}", tag = "robots",
    params(("robot" = String, Path, description = "robot.OWNER.NAME")),
    responses((status = 204, description = "deleted")),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn delete(
    account: Account,
    config: web::Data<Config>,
    files: web::Data<Directory>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = robot_to_change(&config, &req, path)?;
    files.into_inner().delete_robot(account, name).await?;
    Ok(HttpResponse::NoContent().finish())
}
