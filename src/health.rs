//! Liveness and readiness, open to anyone and free of secrets.

use std::path::Path;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(live))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let registry = check_registry(&state).await;
    let htpasswd_dir = parent(state.store.htpasswd_path());
    let audit_dir = parent(&state.config.audit_log_path);
    let (htpasswd, audit) =
        match web::block(move || (dir_writable(&htpasswd_dir), dir_writable(&audit_dir))).await {
            Ok(pair) => pair,
            Err(_) => ("check failed".to_string(), "check failed".to_string()),
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
    let (user, password) = &state.registry_credentials;
    let url = format!("{}/v2/", state.config.registry_url);
    match state
        .http
        .get(url)
        .basic_auth(user, Some(password))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => "ok".into(),
        Ok(r) if r.status().as_u16() == 401 => {
            "registry rejects registry-admin's credentials".into()
        }
        Ok(r) => format!("registry answered {}", r.status().as_u16()),
        Err(e) if e.is_timeout() => "registry timed out".into(),
        Err(_) => "registry unreachable".into(),
    }
}

fn parent(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => ".".into(),
    }
}

fn dir_writable(dir: &Path) -> String {
    match tempfile::tempfile_in(dir) {
        Ok(_) => "ok".into(),
        Err(e) => format!("directory not writable: {}", e.kind()),
    }
}
