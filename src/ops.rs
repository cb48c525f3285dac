//! Operations endpoints that need an account: `GET /metrics` for admins. Health and the API
//! description, which need none, live in `health` and `openapi`.

use actix_web::{HttpResponse, web};

use crate::audit::AuditLog;
use crate::auth::Admin;
use crate::metrics::Metrics;
use crate::robots::RobotsStore;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", body = String, content_type = "text/plain")), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn metrics(
    _admin: Admin,
    metrics: web::Data<Metrics>,
    audit: web::Data<AuditLog>,
    robots: web::Data<RobotsStore>,
) -> HttpResponse {
    let mut text = metrics.render(audit.written());
    text.push_str(&crate::robots::metrics::render(&robots));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
