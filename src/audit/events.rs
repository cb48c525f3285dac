//! `POST /events`: registry:2 notifications become `image.push`, `image.pull` and
//! `image.delete` entries. Blob events and the events our own requests caused are dropped, and
//! a repeated event id (delivery is at-least-once) is recorded once.

use crate::sync::lock;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::entry::{Entry, Outcome, Source, clean, format_time};
use crate::AppState;
use crate::error::ApiError;
use crate::registry::client::USER_AGENT;

/// Notifications carry every layer of a manifest as a reference, so they may be larger than
/// API bodies; refusing one would stall the registry's queue, which retries forever.
pub const MAX_EVENTS_BODY: usize = 4 << 20;
/// How many event ids are remembered for de-duplication.
const REMEMBERED_IDS: usize = 100_000;

const MANIFEST_TYPES: [&str; 6] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

#[derive(Default)]
pub struct SeenEvents {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl SeenEvents {
    fn contains(&self, id: &str) -> bool {
        lock(&self.inner).0.contains(id)
    }

    fn insert(&self, id: String) {
        let mut g = lock(&self.inner);
        if g.0.insert(id.clone()) {
            g.1.push_back(id);
            while g.1.len() > REMEMBERED_IDS {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    id: String,
    #[serde(default)]
    timestamp: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    request: Request,
    #[serde(default)]
    actor: Actor,
}

#[derive(Deserialize, Default)]
struct Target {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize, Default)]
struct Request {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    addr: Option<String>,
    #[serde(default)]
    useragent: Option<String>,
}

#[derive(Deserialize, Default)]
struct Actor {
    #[serde(default)]
    name: Option<String>,
}

/// The entry for one event, or `None` when it is not worth recording.
fn entry_for(e: &Event) -> Option<Entry> {
    let action = match e.action.as_str() {
        "push" => "image.push",
        "pull" => "image.pull",
        "delete" => "image.delete",
        _ => return None,
    };
    // Deletes carry no media type; for pushes and pulls, anything but a manifest is a blob.
    let is_manifest = match &e.target.media_type {
        Some(mt) => MANIFEST_TYPES.contains(&mt.as_str()),
        None => e.action == "delete",
    };
    if !is_manifest {
        return None;
    }
    if e.request
        .useragent
        .as_deref()
        .is_some_and(|ua| ua.starts_with(USER_AGENT))
    {
        return None;
    }
    let mut entry = Entry::new(
        action,
        &clean(e.actor.name.as_deref().unwrap_or(""), 64),
        Outcome::Success,
        Source::Registry,
    );
    if let Ok(t) = DateTime::parse_from_rfc3339(&e.timestamp) {
        entry.time = format_time(t.with_timezone(&Utc));
    }
    entry.image = e.target.repository.as_deref().map(|r| clean(r, 255));
    entry.tag = e.target.tag.as_deref().map(|t| clean(t, 128));
    entry.digest = e.target.digest.as_deref().map(|d| clean(d, 140));
    entry.request_id = e.request.id.as_deref().map(|r| clean(r, 128));
    entry.remote_addr = e.request.addr.as_deref().map(|a| {
        a.parse::<std::net::SocketAddr>()
            .map(|s| s.ip().to_string())
            .unwrap_or_else(|_| clean(a, 64))
    });
    entry.detail = e.request.useragent.as_deref().map(|ua| clean(ua, 128));
    Some(entry)
}

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

/// registry:2's notification endpoint; takes `Authorization: Bearer $EVENTS_TOKEN` only.
#[utoipa::path(post, path = "/events", tag = "registry", request_body(content = Object, content_type = "application/vnd.docker.distribution.events.v1+json"),
    responses((status = 200, description = "recorded", body = Object)), security(("events_token" = [])))]
pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if !token_ok(&req, state.config.events_token.as_deref()) {
        return Err(ApiError::Unauthorized);
    }
    let envelope: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid notification body: {e}")))?;
    let (mut recorded, mut dropped) = (0, 0);
    for event in &envelope.events {
        if !event.id.is_empty() && state.seen_events.contains(&event.id) {
            dropped += 1;
            continue;
        }
        match entry_for(event) {
            Some(entry) => {
                state
                    .audit
                    .record(entry)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                recorded += 1;
            }
            None => dropped += 1,
        }
        if !event.id.is_empty() {
            state.seen_events.insert(event.id.clone());
        }
    }
    state.metrics.events(recorded, dropped);
    Ok(HttpResponse::Ok().json(json!({"recorded": recorded, "dropped": dropped})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(v: serde_json::Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn manifest_events_map_and_blobs_and_our_own_are_dropped() {
        let push = event(json!({
            "id": "e1", "timestamp": "2026-11-23T00:33:09.120313848Z", "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:41e7", "repository": "team/app", "tag": "v1"},
            "request": {"id": "r1", "addr": "127.0.0.1:59094", "useragent": "skopeo/1.9.3"},
            "actor": {"name": "admin"}
        }));
        let e = entry_for(&push).unwrap();
        assert_eq!(
            (e.action.as_str(), e.actor.as_str()),
            ("image.push", "admin")
        );
        assert_eq!(e.time, "2026-11-23T00:33:09.120Z");
        assert_eq!(e.remote_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            (e.image.as_deref(), e.tag.as_deref()),
            (Some("team/app"), Some("v1"))
        );

        let blob =
            event(json!({"action": "push", "target": {"mediaType": "application/octet-stream"}}));
        assert!(entry_for(&blob).is_none());
        let ours = event(
            json!({"action": "pull", "target": {"mediaType": "application/vnd.oci.image.index.v1+json"},
            "request": {"useragent": USER_AGENT}}),
        );
        assert!(entry_for(&ours).is_none());
        let tag_delete =
            event(json!({"action": "delete", "target": {"repository": "team/app", "tag": "v1"}}));
        assert_eq!(entry_for(&tag_delete).unwrap().action, "image.delete");
        assert!(entry_for(&event(json!({"action": "mount"}))).is_none());
    }
}
