//! `POST /events`: registry:2's notifications, recorded as audit entries
//! ([`crate::audit::events`]). The token is checked before a byte of the body is read, wrong
//! tokens are throttled and audited like failed logins, and the body must arrive whole within
//! `BODY_DEADLINE`.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::web::BytesMut;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::burst::{BurstTracker, Verdict, Who, summary_detail};
use crate::audit::entry::{Entry, Outcome, Source};
use crate::audit::events::{Envelope, MAX_EVENT_ID, SeenEvents, entry_for};
use crate::audit::writer::AuditLog;
use crate::auth::Authenticator;
use crate::bootstrap::own_registry_account;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Notifications carry every layer of a manifest as a reference, so they may be larger than
/// API bodies; refusing one would stall the registry's queue, which retries forever.
pub const MAX_EVENTS_BODY: usize = 4 << 20;
/// How long the whole body may take to arrive. registry:2 sends one small event per POST with a
/// timeout of its own of a few seconds; a body still trickling in after this is someone holding a
/// connection open.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

fn token_ok(req: &HttpRequest, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Comparing digests keeps the comparison constant-time whatever the lengths.
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.ct_eq(&b))
}

/// A refused token as an `auth.failure` entry, like a failed login (no username was tried).
/// Refusals are not throttled, so their entries follow the burst rule of anonymous callers
/// (per address: ten a minute one by one, then one a minute counting those left out).
async fn audit_refusal(req: &HttpRequest, audit: &AuditLog, ip: IpAddr) {
    const ACTION: &str = "auth.failure";
    const DETAIL: &str = "wrong EVENTS_TOKEN on /events";
    let who = Who::Anonymous {
        address: ip.to_string(),
    };
    let detail = match req
        .app_data::<web::Data<BurstTracker>>()
        .map(|b| b.admit(who.clone(), ACTION, std::time::Instant::now(), Utc::now()))
    {
        Some(Verdict::Skip) => return,
        Some(Verdict::Write(Some(left_out))) => {
            summary_detail(Some(DETAIL), ACTION, &who, left_out)
        }
        Some(Verdict::Write(None)) | None => DETAIL.to_string(),
    };
    let mut e = Entry::new(ACTION, "", Outcome::Denied, Source::Api);
    e.status = Some(StatusCode::UNAUTHORIZED.as_u16());
    e.request_id = crate::request_id::of(req);
    e.remote_addr = Some(ip.to_string());
    e.detail = Some(detail);
    if let Err(err) = audit.record(e).await {
        log::error!("could not write the audit entry for a refused /events token: {err}");
    }
}

/// Lets the request on only with the right token. The right token is always let on, whatever
/// failed before from that address: it cannot be guessed, and throttling it would let anyone
/// sharing the registry's address (a NAT, a proxy, the local stack) hold up its notifications.
async fn check_token(
    req: &HttpRequest,
    auth: &Authenticator,
    expected: Option<&str>,
    audit: &AuditLog,
) -> Result<(), ApiError> {
    // As with a login, a request without credentials is not written down, so an anonymous
    // flood costs no disk.
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return Err(ApiError::Unauthorized);
    }
    if token_ok(req, expected) {
        return Ok(());
    }
    audit_refusal(req, audit, auth.addresses.client_ip(req)).await;
    Err(ApiError::CredentialsRejected)
}

/// The whole body, at most `MAX_EVENTS_BODY` bytes, arrived within `BODY_DEADLINE`.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_EVENTS_BODY as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_EVENTS_BODY));
    }
    let read = async {
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::InvalidRequest(format!("could not read the notification body: {e}"))
            })?;
            if body.len() + chunk.len() > MAX_EVENTS_BODY {
                return Err(ApiError::PayloadTooLarge(MAX_EVENTS_BODY));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(BODY_DEADLINE, read)
        .await
        .map_err(|_| {
            ApiError::InvalidRequest(format!(
                "the notification body did not arrive within {} seconds",
                BODY_DEADLINE.as_secs()
            ))
        })?
}

/// registry:2's notification endpoint; takes `Authorization: Bearer $EVENTS_TOKEN` only.
#[utoipa::path(post, path = "/events", tag = "registry", request_body(content = Object, content_type = "application/vnd.docker.distribution.events.v1+json"),
    responses((status = 200, description = "recorded", body = Object)), security(("events_token" = [])))]
pub async fn receive(
    req: HttpRequest,
    auth: web::Data<Authenticator>,
    config: web::Data<Config>,
    audit: web::Data<AuditLog>,
    seen_events: web::Data<SeenEvents>,
    metrics: web::Data<Metrics>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_token(&req, &auth, config.events_token.as_deref(), &audit).await?;
    let body = read_body(&req, payload).await?;
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid notification body: {e}")))?;
    // As for state-changing API calls: when entries cannot be written, or the volume is as good
    // as full, 503 before anything is recorded, so the registry keeps the event and retries.
    audit.reserve().await?;
    let own = own_registry_account(&config);
    let (mut recorded, mut dropped) = (0, 0);
    for event in &envelope.events {
        let Some(entry) = entry_for(event, own) else {
            dropped += 1;
            continue;
        };
        // Dropped rather than refused: a refusal makes registry:2 retry the POST forever,
        // holding up every event behind it.
        let id = event.id.as_str();
        if id.len() > MAX_EVENT_ID || (!id.is_empty() && !seen_events.claim_anywhere(id).await?) {
            dropped += 1;
            continue;
        }
        // Retention's push/pull index learns the event as it is written.
        if let Some(facts) = req.app_data::<web::Data<crate::retention::Facts>>() {
            facts.observe(&entry);
        }
        if let Err(e) = audit.record(entry).await {
            if !id.is_empty() {
                seen_events.release_anywhere(id).await;
            }
            // 503: registry:2 keeps the event in its queue and sends it again; ids already
            // recorded from this envelope are then recognised as repeats.
            log::error!("could not record a registry event: {e}");
            return Err(e.into());
        }
        if !id.is_empty() {
            seen_events.confirm_anywhere(id).await;
        }
        recorded += 1;
    }
    metrics.events(recorded, dropped);
    Ok(HttpResponse::Ok().json(json!({"recorded": recorded, "dropped": dropped})))
}
