//! Operations endpoints that need an account: `GET /metrics` for admins. Health and the API
//! description, which need none, live in `health` and `openapi`.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use crate::audit::AuditLog;
use crate::auth::Admin;
use crate::config::Config;
use crate::metrics::{AuditVolume, Metrics, render_audit_volume};
use crate::paths::parent_dir;
use crate::robots::RobotsStore;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// This module's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(metrics))]
pub struct OpsApi;

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", body = String, content_type = "text/plain")), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn metrics(
    _admin: Admin,
    metrics: web::Data<Metrics>,
    audit: web::Data<AuditLog>,
    config: web::Data<Config>,
    robots: web::Data<RobotsStore>,
) -> HttpResponse {
    let dir = parent_dir(&config.audit_log_path).to_path_buf();
    // statvfs is quick on a local disk, but off the async workers all the same.
    let free_bytes = web::block(move || crate::audit::space::free_bytes(&dir).ok())
        .await
        .ok()
        .flatten();
    let volume = AuditVolume {
        free_bytes,
        min_free_bytes: config.audit_min_free_bytes,
        coalesced: audit.coalesced(),
        failures: audit.failures(),
        writable: audit.last_error().is_none(),
    };
    let mut text = metrics.render(audit.written());
    text.push_str(&render_audit_volume(&volume));
    text.push_str(&crate::robots::metrics::render(&robots));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
