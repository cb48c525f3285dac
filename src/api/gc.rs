//! `POST /gc`, `GET /gc`, `GET /gc/{id}` (admins). `gc.start` is written by the audit
//! middleware (with the request id and address, refusals included); the job writes
//! `gc.finish` and one `image.delete` per untagged manifest it deletes.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::Audited;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::gc::job::Job;
use crate::gc::{GcService, StartRequest};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/gc")
            .route(web::post().to(start).wrap(Audited::change("gc.start")))
            .route(web::get().to(list)),
    )
    .route("/gc/{id}", web::get().to(get));
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
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
pub(crate) async fn start(
    req: HttpRequest,
    admin: Admin,
    body: web::Bytes,
    gc: web::Data<GcService>,
) -> Result<HttpResponse, ApiError> {
    let request = StartRequest::from_body(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))?;
    let job = gc.start(request, &admin.0.username).await?;
    crate::api::audit_middleware::note(&req, |n| {
        n.detail = Some(format!(
            "job {}: dry_run={} untagged={} prune_empty={}",
            job.id, job.dry_run, job.untagged, job.prune_empty
        ));
    });
    Ok(HttpResponse::Accepted().json(job))
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/gc", tag = "gc",
    responses((status = 200, description = "jobs", body = JobList)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn list(
    _admin: Admin,
    gc: web::Data<GcService>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(JobList {
        jobs: gc.jobs().await?,
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
    gc: web::Data<GcService>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(gc.job(&id).await?))
}
