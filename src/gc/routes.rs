//! `POST /gc`, `GET /gc`, `GET /gc/{id}` (admins). `gc.start` is written by the audit
//! middleware (with the request id and address, refusals included); the job writes
//! `gc.finish` and one `image.delete` per untagged manifest it deletes.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::job::Job;
use super::{Context, Jobs, StartRequest};
use crate::audit;
use crate::audit::{AuditLog, Audited};
use crate::auth::Admin;
use crate::blocking::run_blocking;
use crate::config::Config;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::metrics::Metrics;
use crate::registry::client::RegistryClient;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/gc")
            .route(web::post().to(start).wrap(Audited::change("gc.start")))
            .route(web::get().to(list)),
    )
    .route("/gc/{id}", web::get().to(get));
}

/// This slice's part of the OpenAPI document (`crate::openapi`).
#[derive(OpenApi)]
#[openapi(paths(start, list, get))]
pub struct GcApi;

#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// Newest first; the last 50 finished jobs, and the running one.
    pub jobs: Vec<Job>,
}

/// Starts a garbage-collection job; the body may be empty (a dry run).
#[utoipa::path(post, path = "/gc", tag = "gc",
    request_body(content = Option<StartRequest>, description = "`dry_run` defaults to true, `untagged` and `prune_empty` to false"),
    responses(
        (status = 202, description = "the job, queued", body = Job),
        (status = 409, description = "`gc_running`: a job is not finished; `gc_unavailable`: REGISTRY_CONFIG unset or unreadable, a blob-descriptor cache, REGISTRY_BIN missing, or untagged cleanup outside token mode and filesystem storage; `registry_writable`: htpasswd mode and registry:2 accepts uploads", body = crate::error::ErrorBodyDoc),
    ),
    security(("basic" = []), ("bearer" = [])))]
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    req: HttpRequest,
    admin: Admin,
    body: web::Bytes,
    config: web::Data<Config>,
    jobs: web::Data<Jobs>,
    registry: web::Data<RegistryClient>,
    audit_log: web::Data<AuditLog>,
    metrics: web::Data<Metrics>,
    freeze: web::Data<WriteFreeze>,
) -> Result<HttpResponse, ApiError> {
    let request: StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))?
    };
    let ctx = Context {
        config: config.into_inner(),
        registry: registry.into_inner(),
        audit: audit_log.into_inner(),
        metrics: metrics.into_inner(),
        freeze: freeze.into_inner(),
        jobs: jobs.into_inner(),
    };
    let job = super::start(ctx, request, &admin.0.username).await?;
    audit::api::note(&req, |n| {
        n.detail = Some(format!(
            "job {}: dry_run={} untagged={} prune_empty={}",
            job.id, job.dry_run, job.untagged, job.prune_empty
        ));
    });
    Ok(HttpResponse::Accepted().json(job))
}

async fn jobs_of(jobs: web::Data<Jobs>) -> Result<Vec<Job>, ApiError> {
    let jobs: Arc<Jobs> = jobs.into_inner();
    run_blocking(move || jobs.list())
        .await?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/gc", tag = "gc",
    responses((status = 200, description = "jobs", body = JobList)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn list(_admin: Admin, jobs: web::Data<Jobs>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(JobList {
        jobs: jobs_of(jobs).await?,
    }))
}

/// One job.
#[utoipa::path(get, path = "/gc/{id}", tag = "gc",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "the job", body = Job)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn get(
    _admin: Admin,
    id: web::Path<String>,
    jobs: web::Data<Jobs>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    jobs_of(jobs)
        .await?
        .into_iter()
        .find(|j| j.id == id)
        .map(|j| HttpResponse::Ok().json(j))
        .ok_or_else(|| {
            let shown: String = id.chars().take(64).collect();
            ApiError::NotFound(format!("no garbage-collection job {shown:?}"))
        })
}
