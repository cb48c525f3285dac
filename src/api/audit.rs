//! `GET /audit`, `GET /audit/verify` (admins) and `POST /events` (the registry's
//! notifications): the audit slice's HTTP side. The chain itself is `writer`, `source` and
//! their stores; nothing below this file knows about requests.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::events;
use crate::audit::query::{self, Cursor, Filters};
use crate::audit::writer::AuditLog;
use crate::audit::{entry, source, verify};
use crate::auth::Admin;
use crate::blocking::run_blocking;
use crate::error::ApiError;
use crate::names;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list))
        .route("/audit/verify", web::get().to(verify_chain))
        // The handler reads its body itself, bounded in size and time, after the token check.
        // Not `Audited`: it writes the registry's events itself, and refuses them (503, so the
        // registry retries) when it cannot.
        .route(
            "/events",
            web::post()
                .to(events::receive)
                .wrap(from_fn(crate::write_guard::middleware)),
        );
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(list, verify_chain, events::receive))]
pub struct AuditApi;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Matches `actor` or `user`.
    user: Option<String>,
    /// Exact repository.
    image: Option<String>,
    /// e.g. `user.create`, `image.push`.
    action: Option<String>,
    /// `success`, `denied` or `failure`.
    outcome: Option<String>,
    /// RFC 3339.
    since: Option<String>,
    /// RFC 3339.
    until: Option<String>,
    /// 1-1000, default 100.
    limit: Option<usize>,
    /// `next_cursor` of the previous page, with the same filters.
    cursor: Option<String>,
}

/// One page of entries, newest first; each entry also carries its `hash`.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct AuditPage {
    entries: Vec<entry::Entry>,
    next_cursor: Option<String>,
}

fn time_param(name: &str, v: Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::InvalidRequest(format!(
                    "{name} must be an RFC 3339 time, e.g. 2026-11-23T10:00:00Z"
                ))
            })
    })
    .transpose()
}

fn filters_from(p: &AuditParams) -> Result<Filters, ApiError> {
    if let Some(u) = &p.user
        && (u.is_empty() || u.chars().count() > 64 || u.chars().any(char::is_control))
    {
        return Err(ApiError::InvalidRequest(
            "user must be 1-64 characters without control characters".into(),
        ));
    }
    if let Some(i) = &p.image {
        names::repository(i)?;
    }
    if let Some(a) = &p.action
        && !entry::ACTIONS.contains(&a.as_str())
    {
        // Echo the value only when it is short and plain: it is the caller's text.
        let shown = if a.len() <= 64 && a.bytes().all(|c| c.is_ascii_graphic()) {
            format!("{a:?}")
        } else {
            "given".to_string()
        };
        return Err(ApiError::InvalidRequest(format!(
            "unknown action {shown}; known actions: {}",
            entry::ACTIONS.join(", ")
        )));
    }
    if let Some(o) = &p.outcome
        && !matches!(o.as_str(), "success" | "denied" | "failure")
    {
        return Err(ApiError::InvalidRequest(
            "outcome must be success, denied or failure".into(),
        ));
    }
    let since = time_param("since", p.since.clone())?;
    let until = time_param("until", p.until.clone())?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(ApiError::InvalidRequest("since is after until".into()));
    }
    Ok(Filters {
        user: p.user.clone(),
        image: p.image.clone(),
        action: p.action.clone(),
        outcome: p.outcome.clone(),
        since,
        until,
    })
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "a page of entries", body = AuditPage)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn list(
    _admin: Admin,
    audit: web::Data<AuditLog>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let filters = filters_from(&params)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be from 1 to {MAX_LIMIT}"
        )));
    }
    let cursor = params
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c, &filters))
        .transpose()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let source = audit.source().clone();
    let page = run_blocking(move || source.query(&filters, limit, cursor.as_ref()))
        .await?
        .map_err(|e| match e {
            query::QueryError::Cursor(c) => ApiError::InvalidRequest(c.to_string()),
            query::QueryError::Io(e) => ApiError::Internal(format!("reading the audit log: {e}")),
            query::QueryError::Database(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(json!({"entries": page.entries, "next_cursor": page.next_cursor})))
}

/// Checks the hash chain of every audit file (in cluster mode, of the `audit_log` table).
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses((status = 200, description = "the report", body = verify::Report)),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn verify_chain(
    _admin: Admin,
    audit: web::Data<AuditLog>,
) -> Result<HttpResponse, ApiError> {
    let source = audit.source().clone();
    let report = run_blocking(move || source.verify())
        .await?
        .map_err(|e| match e {
            source::ReadError::Database(e) => e.into(),
            other => ApiError::Internal(format!("reading the audit log: {other}")),
        })?;
    Ok(HttpResponse::Ok().json(report))
}
