//! One check in front of every state-changing request (POST, PUT, PATCH, DELETE), before any
//! credentials are looked at. Each changing route's `Audited` wrapper applies it once the route's
//! audit action is known (so a refusal is audited under that action); `/events` applies it as
//! its own route middleware:
//!
//! - An `Origin` header that is present and names another site is 403 `forbidden`. Browsers
//!   send `Origin` on every cross-site request that can change state, so a page elsewhere
//!   cannot drive the API with credentials the browser holds (HTTP Basic it remembers).
//!   Clients that are not browsers (curl, CI, registry:2's notifications) send none and pass.
//! - A request that carries a body must say `Content-Type: application/json` (400
//!   `invalid_request`, as the JSON extractor already answers): an HTML form cannot send that
//!   type cross-site without a preflight, and no endpoint guesses at other formats. Bodiless
//!   calls (`POST /gc`, `POST /users/{user}/disable`) need no type. `/events` is left out: it
//!   takes registry:2's `application/vnd.docker.distribution.events.v1+json`.
//!
//! "Own origin" is the one the request was addressed to: the `Origin`'s host and port must be
//! the `Host` header's. Behind a reverse proxy, pass `Host` through (`proxy_set_header Host
//! $http_host`, as the README's nginx example does).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};

use crate::error::ApiError;

/// Paths whose body is not JSON: registry:2 notifications.
const NOT_JSON: [&str; 1] = ["/events"];

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// `scheme://host[:port]` → `host[:port]`, lower-cased; `None` for `null` or anything else.
fn origin_authority(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '@']) {
        return None;
    }
    Some(rest.to_ascii_lowercase())
}

/// Why the request is refused, if it is.
pub(crate) fn refusal(req: &ServiceRequest) -> Option<ApiError> {
    if !changes_state(req.method()) {
        return None;
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let own = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        let theirs = origin.to_str().ok().and_then(origin_authority);
        if own.is_none() || theirs != own {
            return Some(ApiError::ForbiddenBecause(
                "the Origin header names another site: state-changing requests are accepted \
                 only from this service's own pages or from clients that send no Origin"
                    .into(),
            ));
        }
    }
    if has_body(req) && !NOT_JSON.contains(&req.path()) && !is_json(req) {
        return Some(ApiError::InvalidRequest(
            "Content-Type must be application/json for a request with a body".into(),
        ));
    }
    None
}

/// A declared non-zero length, or a chunked body (length unknown until read).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

fn is_json(req: &ServiceRequest) -> bool {
    req.mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.essence_str() == "application/json")
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if let Some(err) = refusal(&req) {
        return Ok(req.error_response(err).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_reduced_to_its_host_and_port() {
        assert_eq!(
            origin_authority("http://Admin.example:5001").as_deref(),
            Some("admin.example:5001")
        );
        assert_eq!(
            origin_authority("https://[::1]:8443").as_deref(),
            Some("[::1]:8443")
        );
        for bad in [
            "null",
            "file://",
            "http://",
            "ftp://x",
            "http://a/b",
            "http://u@h",
        ] {
            assert_eq!(origin_authority(bad), None, "{bad}");
        }
    }
}
