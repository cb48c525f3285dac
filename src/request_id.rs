//! `X-Request-Id`: a well-formed client value is kept, otherwise one is generated. It is echoed
//! on every response and appears in the request's log line and audit entries.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use rand::RngCore;

use crate::metrics::Metrics;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The authenticated account's name, left in the request's extensions for the log line.
#[derive(Debug, Clone)]
pub struct AccountName(pub String);

fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn generate() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Outermost middleware: assigns the id, echoes it, and writes the one log line per request.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.path().to_string();
    let peer = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    if let Some(metrics) = res.request().app_data::<actix_web::web::Data<Metrics>>() {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        metrics.request(
            method.as_str(),
            &route,
            res.status().as_u16(),
            started.elapsed(),
        );
    }
    let account = res
        .request()
        .extensions()
        .get::<AccountName>()
        .map(|a| a.0.clone())
        .unwrap_or_else(|| "-".into());
    log::info!(
        "{peer} {method} {path} {} {:.1}ms request_id={id} account={account}",
        res.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(res)
}

pub fn of(req: &actix_web::HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|r| r.0.clone())
}
