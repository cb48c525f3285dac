//! `GET|PUT /retention`, `POST /retention/plans`, `GET /retention/plans/{id}`,
//! `POST /retention/plans/{id}/apply` (admins). The audit middleware writes `retention.update`,
//! `retention.plan` and `retention.apply` with the detail noted here; apply writes one
//! `tag.delete` per tag itself.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::future::{Ready, ready};
use utoipa::{OpenApi, ToSchema};

use crate::api::Audited;
use crate::audit::AuditLog;
use crate::auth::Admin;
use crate::blocking::run_blocking;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::Pattern;
use crate::registry::client::RegistryClient;
use crate::registry::delete::TagDeletes;
use crate::retention::apply::{ApplyReport, DEFAULT_MAX_DELETE, MAX_MAX_DELETE};
use crate::retention::plan::Plan;
use crate::retention::policy::{Policies, parse_body};
use crate::retention::{Retention, RetentionError, Services};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/retention")
            .route(web::get().to(get_policies))
            .route(
                web::put()
                    .to(put_policies)
                    .wrap(Audited::change("retention.update")),
            ),
    )
    .route(
        "/retention/plans",
        web::post()
            .to(make_plan)
            .wrap(Audited::change("retention.plan")),
    )
    .route("/retention/plans/{id}", web::get().to(get_plan))
    .route(
        "/retention/plans/{id}/apply",
        web::post()
            .to(apply_plan)
            .wrap(Audited::change("retention.apply")),
    );
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(get_policies, put_policies, make_plan, get_plan, apply_plan))]
pub struct RetentionApi;

/// What making and applying a plan use, taken from the app's shared services, so the handlers
/// name one argument instead of four.
impl FromRequest for Services {
    type Error = ApiError;
    type Future = Ready<Result<Services, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        fn shared<T: 'static>(req: &HttpRequest) -> Result<Arc<T>, ApiError> {
            req.app_data::<web::Data<T>>()
                .map(|d| d.clone().into_inner())
                .ok_or_else(|| ApiError::Internal("a retention service is missing".into()))
        }
        ready((|| {
            Ok(Services {
                registry: shared::<RegistryClient>(req)?,
                locks: shared::<TagDeletes>(req)?,
                freeze: shared::<WriteFreeze>(req)?,
                audit: shared::<AuditLog>(req)?,
            })
        })())
    }
}

/// A JSON body that may be empty (`{}` implied); anything else must parse into `T`.
fn optional_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}

/// The retention policies in force.
#[utoipa::path(get, path = "/retention", tag = "retention",
    responses((status = 200, description = "policies", body = Policies)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn get_policies(
    _admin: Admin,
    retention: web::Data<Retention>,
) -> Result<HttpResponse, ApiError> {
    let (policies, _) = retention.into_inner().policies().await?;
    Ok(HttpResponse::Ok().json(policies))
}

/// Replaces the retention policies. Anything invalid — an unknown field included — is 400
/// `invalid_policy` and changes nothing.
#[utoipa::path(put, path = "/retention", tag = "retention", request_body = Policies,
    responses((status = 200, description = "the policies now in force", body = Policies),
        (status = 400, description = "`invalid_policy`", body = crate::error::ErrorBodyDoc)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn put_policies(
    req: HttpRequest,
    _admin: Admin,
    retention: web::Data<Retention>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::from(RetentionError::Invalid(
            crate::retention::policy::InvalidPolicy(format!("invalid JSON body: {e}")),
        ))
    })?;
    let (policies, _) = parse_body(value).map_err(RetentionError::from)?;
    let retention: Arc<Retention> = retention.into_inner();
    let stored = policies.clone();
    run_blocking(move || retention.store.replace(&stored)).await??;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!("{} policies", policies.policies.len()));
    });
    Ok(HttpResponse::Ok().json(policies))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Limit the plan to repositories matching this pattern (the grant grammar).
    pub repositories: Option<String>,
}

/// Computes a plan: every tag of every repository a policy matches, kept or to delete, with
/// the reason. Changes nothing.
#[utoipa::path(post, path = "/retention/plans", tag = "retention",
    request_body(content = Option<PlanRequest>),
    responses((status = 201, description = "the plan", body = Plan),
        (status = 409, description = "`maintenance`", body = crate::error::ErrorBodyDoc)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn make_plan(
    req: HttpRequest,
    _admin: Admin,
    retention: web::Data<Retention>,
    services: Services,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: PlanRequest = optional_body(&body)?;
    let only = request
        .repositories
        .as_deref()
        .map(Pattern::parse)
        .transpose()
        .map_err(|e| ApiError::InvalidRequest(format!("repositories: {e}")))?;
    let plan = retention.into_inner().make_plan(&services, only).await?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!(
            "plan {}: {} repositories, {} kept, {} to delete",
            plan.id, plan.summary.repositories, plan.summary.kept, plan.summary.delete
        ));
    });
    Ok(HttpResponse::Created().json(plan.as_ref()))
}

fn plan_id(id: &str) -> Result<&str, ApiError> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("no such retention plan".into()));
    }
    Ok(id)
}

/// A plan made within the last hour.
#[utoipa::path(get, path = "/retention/plans/{id}", tag = "retention",
    params(("id" = String, Path, description = "plan id")),
    responses((status = 200, description = "the plan", body = Plan)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn get_plan(
    _admin: Admin,
    retention: web::Data<Retention>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = plan_id(&id)?;
    let plan = retention.into_inner().plan(id).await?;
    Ok(HttpResponse::Ok().json(plan.as_ref()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// At most this many tags are deleted by this call (default 1000).
    pub max_delete: Option<usize>,
}

/// Deletes the plan's tags that are still candidates on a live re-check; the rest is
/// `skipped` with the reason.
#[utoipa::path(post, path = "/retention/plans/{id}/apply", tag = "retention",
    params(("id" = String, Path, description = "plan id")),
    request_body(content = Option<ApplyRequest>),
    responses((status = 200, description = "what was deleted and skipped", body = ApplyReport),
        (status = 409, description = "`maintenance`", body = crate::error::ErrorBodyDoc)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn apply_plan(
    req: HttpRequest,
    admin: Admin,
    retention: web::Data<Retention>,
    services: Services,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: ApplyRequest = optional_body(&body)?;
    let max_delete = request.max_delete.unwrap_or(DEFAULT_MAX_DELETE);
    if !(1..=MAX_MAX_DELETE).contains(&max_delete) {
        return Err(ApiError::InvalidRequest(format!(
            "max_delete must be from 1 to {MAX_MAX_DELETE}"
        )));
    }
    let id = plan_id(&id)?;
    let retention = retention.into_inner();
    let plan = retention.plan(id).await?;
    let report = retention
        .apply(&services, &plan, max_delete, &admin.0.username)
        .await?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!(
            "plan {}: {} deleted, {} skipped (max_delete {max_delete})",
            plan.id,
            report.deleted.len(),
            report.skipped.len()
        ));
    });
    Ok(HttpResponse::Ok().json(report))
}
