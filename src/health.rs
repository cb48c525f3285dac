//! Liveness and readiness, open to anyone and free of secrets.

use std::path::Path;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;
use crate::paths::parent_dir;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(live))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

/// Same as `/health/live`.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "up", body = Object)))]
#[allow(dead_code)] // documentation only: `live` serves this path
pub(crate) fn doc_health() {}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "up", body = Object)))]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Registry reachable and accepting our credentials, htpasswd directory and audit log writable.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, description = "ready", body = Object),
    (status = 503, description = "not ready; `checks` says why", body = Object)))]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let registry = check_registry(&state).await;
    let htpasswd_dir = parent_dir(state.store.htpasswd_path()).to_path_buf();
    let audit_dir = parent_dir(&state.config.audit_log_path).to_path_buf();
    let (htpasswd, audit) =
        match web::block(move || (dir_writable(&htpasswd_dir), dir_writable(&audit_dir))).await {
            Ok(pair) => pair,
            Err(_) => ("check failed".to_string(), "check failed".to_string()),
        };
    let audit = match state.audit.last_error() {
        Some(e) if audit == "ok" => format!("last write failed: {e}"),
        _ => audit,
    };
    let all_ok = [&registry, &htpasswd, &audit]
        .iter()
        .all(|c| c.as_str() == "ok");
    let body = json!({
        "status": if all_ok { "ok" } else { "fail" },
        "checks": {"registry": registry, "htpasswd": htpasswd, "audit": audit},
    });
    if all_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// registry:2 answers `GET /v2/` with 200 only when it accepts our credentials.
async fn check_registry(state: &AppState) -> String {
    use crate::registry::client::UpstreamError;
    match state.registry.ping().await {
        Ok(()) => "ok".into(),
        Err(UpstreamError::Unauthorized) => "registry rejects registry-admin's credentials".into(),
        Err(UpstreamError::Timeout) => "registry timed out".into(),
        Err(UpstreamError::Unavailable(_)) => "registry unreachable".into(),
        Err(UpstreamError::Status { status, .. }) => format!("registry answered {status}"),
        Err(UpstreamError::Invalid(_)) => "registry sent an unusable answer".into(),
    }
}

fn dir_writable(dir: &Path) -> String {
    match tempfile::tempfile_in(dir) {
        Ok(_) => "ok".into(),
        Err(e) => format!("directory not writable: {}", e.kind()),
    }
}
