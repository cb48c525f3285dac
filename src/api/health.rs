//! Liveness and readiness, open to anyone and free of secrets.
//!
//! Readiness is polled often (load balancers, compose health checks), so it must neither hang
//! with a hung registry nor cost the registry a bcrypt per poll: it probes `GET /v2/` without
//! credentials (registry:2 answers 401 without touching htpasswd) on a client of its own with
//! a short timeout, and checks locally that registry-admin's own account is in htpasswd.
//!
//! The audit check is the reservation a state-changing request makes (`AuditLog::reserve`):
//! when it fails, those requests are being refused with 503 `audit_unavailable`, and readiness
//! says why; it turns "ok" again by itself once there is room. Free space under
//! `AUDIT_MIN_FREE_BYTES` is a warning (`"warnings"`), not a failure: the service still works.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::OpenApi;

use crate::audit::AuditLog;
use crate::bootstrap::SERVICE_ACCOUNT;
use crate::config::AuthMode;
use crate::config::Config;
use crate::durable::DurableError;
use crate::paths::parent_dir;
use crate::registry::client::USER_AGENT;
use crate::store::Database;
use crate::sync::lock;
use crate::users::htpasswd::is_bcrypt;
use crate::users::store::{StoreError, UserStore};

/// Whole budget of the registry probe: well inside the 3 s `/health/ready` promises.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Budget of the file checks, run beside the probe; a hung disk must not hang readiness either.
const LOCAL_TIMEOUT: Duration = Duration::from_millis(2500);

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(live))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

/// This module's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(doc_health, live, ready))]
pub struct HealthApi;

/// Same as `/health/live`.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "up", body = Object)))]
#[allow(dead_code)] // documentation only: `live` serves this path
pub(crate) fn doc_health() {}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "up", body = Object)))]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Registry reachable, registry-admin's account in htpasswd, htpasswd parsable and its
/// directory writable, audit log writable. Answers within 3 s whatever the registry does.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, description = "ready", body = Object),
    (status = 503, description = "not ready; `checks` says why", body = Object)))]
pub(crate) async fn ready(
    config: web::Data<Config>,
    store: web::Data<UserStore>,
    audit_log: web::Data<AuditLog>,
) -> HttpResponse {
    let database = store.place().database().cloned();
    let (reachable, local, audit, database) = futures_util::future::join4(
        probe_registry(&config.registry_url),
        local_checks(&config, Arc::clone(&store)),
        audit_check(&audit_log),
        database_check(database),
    )
    .await;
    let registry = match reachable {
        Ok(()) => local.account,
        Err(reason) => reason,
    };
    let htpasswd = local.htpasswd;
    let all_ok = [
        Some(&registry),
        Some(&htpasswd),
        Some(&audit),
        database.as_ref(),
    ]
    .iter()
    .flatten()
    .all(|c| c.as_str() == "ok");
    let mut body = json!({
        "status": if all_ok { "ok" } else { "fail" },
        "checks": {"registry": registry, "htpasswd": htpasswd, "audit": audit},
    });
    if let Some(database) = database {
        body["checks"]["database"] = json!(database);
    }
    if let Some(free) = local.audit_free
        && free < config.audit_min_free_bytes
    {
        body["warnings"] = json!([format!(
            "audit: {} free on the audit volume, under AUDIT_MIN_FREE_BYTES ({})",
            human(free),
            human(config.audit_min_free_bytes)
        )]);
    }
    if all_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Cluster mode: one round trip to the database, within the local budget. `None` in files mode.
async fn database_check(db: Option<Arc<Database>>) -> Option<String> {
    let db = db?;
    let work = web::block(move || db.check());
    Some(match tokio::time::timeout(LOCAL_TIMEOUT, work).await {
        Ok(Ok(Ok(()))) => "ok".into(),
        Ok(Ok(Err(e))) => {
            log::warn!("readiness: {e}");
            "unreachable".into()
        }
        Ok(Err(_)) => "check failed".into(),
        Err(_) => "check timed out".into(),
    })
}

/// Whether audit entries can be written now: the same reservation state-changing requests make.
async fn audit_check(audit: &AuditLog) -> String {
    match tokio::time::timeout(LOCAL_TIMEOUT, audit.reserve_now()).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("cannot write: {}", e.reason()),
        Err(_) => "check timed out".into(),
    }
}

/// Bytes for people: `12.5 MiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Built once: no pool shared with the API traffic's client, so a registry that exhausts that
/// client's connections cannot make readiness wait for one.
fn probe_client() -> Option<&'static reqwest::Client> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(PROBE_TIMEOUT)
                .timeout(PROBE_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(1)
                .build()
                .map_err(|e| log::error!("readiness probe client: {e}"))
                .ok()
        })
        .as_ref()
}

/// 200 (no auth configured) and 401 (auth configured) both mean registry:2 is up and routing.
async fn probe_registry(registry_url: &str) -> Result<(), String> {
    let Some(client) = probe_client() else {
        return Err("check failed".into());
    };
    let url = format!("{}/v2/", registry_url.trim_end_matches('/'));
    // The client's timeout already bounds the request; this bounds everything around it too.
    let sent = tokio::time::timeout(PROBE_TIMEOUT, client.get(url).send()).await;
    match sent {
        Ok(Ok(resp)) => match resp.status().as_u16() {
            200 | 401 => Ok(()),
            status => Err(format!("registry answered {status}")),
        },
        Ok(Err(e)) if e.is_timeout() => Err("registry timed out".into()),
        Ok(Err(e)) if e.is_connect() => Err("registry unreachable".into()),
        Ok(Err(_)) => Err("registry sent an unusable answer".into()),
        Err(_) => Err("registry timed out".into()),
    }
}

struct Local {
    /// What the registry check says once the registry is reachable.
    account: String,
    htpasswd: String,
    /// Free bytes on the audit volume, when known.
    audit_free: Option<u64>,
}

async fn local_checks(config: &Config, store: Arc<UserStore>) -> Local {
    // Token mode: registry-admin signs its own tokens; there is no htpasswd line to check.
    let credentials = match config.auth_mode {
        AuthMode::Htpasswd => Upstream::Htpasswd(config.registry_credentials.clone()),
        AuthMode::Token => Upstream::SelfSigned,
    };
    let audit_dir = parent_dir(&config.audit_log_path).to_path_buf();
    let work = web::block(move || file_checks(&store, credentials, &audit_dir));
    match tokio::time::timeout(LOCAL_TIMEOUT, work).await {
        Ok(Ok(local)) => local,
        Ok(Err(_)) => Local {
            account: "ok".into(),
            htpasswd: "check failed".into(),
            audit_free: None,
        },
        Err(_) => Local {
            account: "ok".into(),
            htpasswd: "check timed out".into(),
            audit_free: None,
        },
    }
}

/// What the registry check looks for locally.
enum Upstream {
    /// The given credentials, or (`None`) the provisioned service account.
    Htpasswd(Option<(String, String)>),
    SelfSigned,
}

fn file_checks(store: &UserStore, credentials: Upstream, audit_dir: &Path) -> Local {
    let htpasswd_dir: Option<PathBuf> = store
        .place()
        .database()
        .is_none()
        .then(|| parent_dir(store.htpasswd_path()).to_path_buf());
    let (account, htpasswd) = match store.current() {
        Ok(accounts) => {
            let hash = |user: &str| accounts.htpasswd.get(user).map(str::to_string);
            let account = match credentials {
                Upstream::SelfSigned => "ok".into(),
                Upstream::Htpasswd(Some((user, password))) => {
                    given_account(&user, &password, hash(&user))
                }
                Upstream::Htpasswd(None) if hash(SERVICE_ACCOUNT).is_some() => "ok".into(),
                Upstream::Htpasswd(None) => {
                    "registry rejects registry-admin's credentials: its service account \
                         is gone from htpasswd (restart registry-admin to provision it)"
                        .into()
                }
            };
            // Cluster mode: the accounts are rows, readable is all there is to check.
            let writable = htpasswd_dir.map_or_else(|| "ok".into(), |d| dir_writable(&d));
            (account, writable)
        }
        // The htpasswd check reports the file; the registry itself still has its old list.
        Err(e) => ("ok".into(), accounts_problem(&e)),
    };
    Local {
        account,
        htpasswd,
        audit_free: crate::audit::space::free_bytes(audit_dir).ok(),
    }
}

/// Why the accounts cannot be read, without paths or file content.
fn accounts_problem(e: &StoreError) -> String {
    match e {
        StoreError::File(DurableError::Json {
            category,
            line,
            column,
            ..
        }) => format!("users.json: invalid JSON ({category}) at line {line}, column {column}"),
        other => other.htpasswd_problem().unwrap_or_else(|| {
            log::warn!("readiness: accounts unreadable: {other}");
            "accounts unreadable; see the registry-admin log".into()
        }),
    }
}

/// Whether the htpasswd line of REGISTRY_USERNAME accepts REGISTRY_PASSWORD, as registry:2
/// would decide. The answer is kept per hash, so a poll costs a bcrypt only after the line
/// changed.
fn given_account(user: &str, password: &str, hash: Option<String>) -> String {
    static LAST: Mutex<Option<(String, bool)>> = Mutex::new(None);
    let rejected = |why: &str| format!("registry rejects registry-admin's credentials: {why}");
    let Some(hash) = hash else {
        return rejected(&format!("htpasswd has no line for {user:?}"));
    };
    let cached = lock(&LAST)
        .as_ref()
        .filter(|(h, _)| *h == hash)
        .map(|(_, ok)| *ok);
    let ok = cached.unwrap_or_else(|| {
        let ok = is_bcrypt(&hash) && bcrypt::verify(password, &hash).unwrap_or(false);
        *lock(&LAST) = Some((hash, ok));
        ok
    });
    if ok {
        "ok".into()
    } else {
        rejected(&format!(
            "REGISTRY_PASSWORD does not match the htpasswd line of {user:?}"
        ))
    }
}

fn dir_writable(dir: &Path) -> String {
    match tempfile::tempfile_in(dir) {
        Ok(_) => "ok".into(),
        Err(e) => format!("directory not writable: {}", e.kind()),
    }
}
