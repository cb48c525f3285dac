//! Audit of API actions, in one place: a middleware that, once a handler (or an extractor) has
//! answered, writes the entry and waits for it to be on disk before the response goes out.
//! Handlers add what only they know (the account acted on, the digest) as an `AuditNote`.
//!
//! Which action a request is, and whether it changes state, its route declares where it is
//! registered (`Audited`, in `action.rs`). An action that cannot be audited must not happen.
//! The entry is written after the handler, when its outcome is known, so before a
//! state-changing request reaches its handler the route asks the writer to reserve room for
//! entries (`AuditLog::reserve`); when that fails (disk full, I/O error) the answer is 503
//! `audit_unavailable` and nothing is changed.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, web};

use std::time::Instant;

use crate::api::audited::AuditAction;
use crate::audit::burst::{BurstTracker, Verdict, Who, summary_detail};
use crate::audit::entry::{Entry, Outcome, Source, clean};
use crate::audit::writer::AuditLog;
use crate::auth::{Account, AuthAttempt};
use crate::error::AnsweredCode;
use crate::net::ClientAddresses;
use crate::request_id::RequestId;

/// Details a handler knows about the action, attached to the request.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub user: Option<String>,
    pub image: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub detail: Option<String>,
    /// When the status alone does not say it: `GET /token` answers 200 with less than asked.
    pub outcome: Option<Outcome>,
}

/// Adds to the request's note; safe to call several times.
pub fn note(req: &HttpRequest, f: impl FnOnce(&mut AuditNote)) {
    let mut ext = req.extensions_mut();
    if ext.get::<AuditNote>().is_none() {
        ext.insert(AuditNote::default());
    }
    if let Some(n) = ext.get_mut::<AuditNote>() {
        f(n);
    }
}

fn outcome_of(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Success
    } else if matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    ) {
        Outcome::Denied
    } else {
        Outcome::Failure
    }
}

pub async fn middleware<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let presented_credentials = req.headers().contains_key(header::AUTHORIZATION);
    let services = req
        .app_data::<web::Data<AuditLog>>()
        .cloned()
        .zip(req.app_data::<web::Data<ClientAddresses>>().cloned())
        .zip(req.app_data::<web::Data<BurstTracker>>().cloned());
    let res = next.call(req).await?;
    let action = res.request().extensions().get::<AuditAction>().map(|a| a.0);
    let Some(((audit, addresses), refusals)) = services else {
        return Ok(res);
    };
    let status = res.status();
    let auth_problem = matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
    );
    // The extractor leaves an AuthAttempt only for attempts worth writing down (credentials were
    // presented; a throttled pair at most once a minute). Requests without credentials write
    // nothing, so an anonymous flood cannot fill the disk.
    let attempted = res.request().extensions().get::<AuthAttempt>().is_some();
    let auth_failed = auth_problem && attempted && presented_credentials;
    if !auth_failed && (auth_problem || action.is_none()) {
        return Ok(res);
    }

    let mut entry = {
        let request = res.request();
        let ext = request.extensions();
        let base = |action: &str, actor: &str, outcome: Outcome| {
            let mut e = Entry::new(action, actor, outcome, Source::Api);
            e.status = Some(status.as_u16());
            e.request_id = ext.get::<RequestId>().map(|r| r.0.clone());
            e.remote_addr = Some(addresses.client_ip(request).to_string());
            e
        };
        if auth_failed {
            let attempted = ext
                .get::<AuthAttempt>()
                .map(|a| clean(&a.0, 64))
                .unwrap_or_default();
            base("auth.failure", &attempted, Outcome::Denied)
        } else {
            let actor = ext
                .get::<Account>()
                .map(|a| a.username.clone())
                .unwrap_or_default();
            let n = ext.get::<AuditNote>().cloned().unwrap_or_default();
            let outcome = match n.outcome {
                Some(o) if status.is_success() => o,
                _ => outcome_of(status),
            };
            let mut e = base(action.unwrap_or_default(), &actor, outcome);
            e.user = n
                .user
                .or_else(|| request.match_info().get("user").map(|u| clean(u, 64)));
            e.image = n.image;
            e.tag = n.tag;
            e.digest = n.digest;
            // A failure is best explained by its error code.
            e.detail = res
                .response()
                .extensions()
                .get::<AnsweredCode>()
                .map(|c| c.0.to_string())
                .or(n.detail);
            e
        }
    };
    // Failed logins are bounded by the limiter already; other refusals, and whatever anonymous
    // callers cause (they need no account: `/token` of a public repository; bearer tokens and
    // malformed headers, which are never throttled and name no account), are bounded here, so
    // no client can write to the disk as fast as it can send.
    let anonymous = entry.actor.is_empty();
    if anonymous || (!auth_failed && entry.outcome != Outcome::Success) {
        let who = if anonymous {
            Who::Anonymous {
                address: entry.remote_addr.clone().unwrap_or_default(),
            }
        } else {
            Who::Actor(entry.actor.clone())
        };
        match refusals.admit(
            who.clone(),
            &entry.action,
            Instant::now(),
            chrono::Utc::now(),
        ) {
            Verdict::Skip => return Ok(res),
            Verdict::Write(Some(left_out)) => {
                entry.detail = Some(summary_detail(
                    entry.detail.as_deref(),
                    &entry.action,
                    &who,
                    left_out,
                ));
            }
            Verdict::Write(None) => {}
        }
    }
    if let Err(err) = audit.record(entry).await {
        // The action has happened; refusing the response now would only mislead the client.
        // (Room was reserved before a state-changing handler ran, so this is a read's entry,
        // or an I/O error after the reservation.)
        log::error!(
            "could not write the audit entry for {}: {err}",
            res.request().path()
        );
    }
    Ok(res)
}
