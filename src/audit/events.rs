//! Registry notifications as audit entries: `image.push`, `image.pull` and `image.delete`.
//! Blob events and the events registry-admin's own registry account caused are dropped, and a
//! repeated event id (delivery is at-least-once) is recorded once, also when the repeats arrive
//! at the same time ([`SeenEvents`]). `POST /events` (`crate::api::events`) receives them.

use crate::sync::lock;
use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::entry::{Entry, Outcome, Source, clean, format_time};
use crate::blocking::run_blocking;
use crate::error::ApiError;
use crate::store::{Database, DatabaseError};

/// registry:2's ids are UUIDs; anything longer is not one of its events, and remembering it
/// would let one request pin megabytes in the de-duplication set.
pub const MAX_EVENT_ID: usize = 128;
/// How many event ids are remembered for de-duplication.
const REMEMBERED_IDS: usize = 100_000;
/// Written into `detail` when `remote_addr` came from a request header rather than from the
/// connection registry:2 saw.
pub const CLAIMED_ADDR: &str =
    "remote_addr as claimed by the client (X-Forwarded-For or X-Real-Ip)";

const MANIFEST_TYPES: [&str; 6] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// Cluster mode: how long an event id is remembered in `seen_events`. registry:2 retries an
/// event until it is accepted, from a queue that lives only as long as the registry process;
/// a day covers any retry of a registry that is still up.
pub const SHARED_IDS_KEPT: Duration = Duration::from_secs(24 * 3600);
/// How often old ids are removed from `seen_events`.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Event ids already recorded, oldest forgotten first. In cluster mode the ids are the
/// database's `seen_events`, so a retry delivered to another replica is recognised too.
#[derive(Default)]
pub struct SeenEvents {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
    database: Option<Arc<Database>>,
}

impl SeenEvents {
    /// Cluster mode: ids in the database (and pruned there by [`spawn_prune`]).
    pub fn shared(database: Arc<Database>) -> SeenEvents {
        SeenEvents {
            inner: Mutex::default(),
            database: Some(database),
        }
    }

    /// [`Self::claim`], across replicas in cluster mode: one `INSERT … ON CONFLICT DO
    /// NOTHING`, so of several deliveries of one event, wherever they arrive, one gets `true`.
    pub async fn claim_anywhere(&self, id: &str) -> Result<bool, ApiError> {
        let Some(db) = self.database.clone() else {
            return Ok(self.claim(id));
        };
        // Cluster mode: only a look here; the id is recorded once its entry is stored
        // (`confirm_anywhere`). An id claimed first and then not released (the database
        // failing between the two) would make the registry's retry look like a repeat and lose
        // the event; the other way round, the worst case is an event recorded twice.
        let id = id.to_string();
        Ok(!run_blocking(move || seen_shared(&db, &id)).await??)
    }

    /// Cluster mode: notes `id` as recorded, after its entry was stored. Files mode: done by
    /// the claim already.
    pub async fn confirm_anywhere(&self, id: &str) {
        let Some(db) = self.database.clone() else {
            return;
        };
        let id = id.to_string();
        let noted = run_blocking(move || claim_shared(&db, &id)).await;
        if !matches!(noted, Ok(Ok(_))) {
            log::warn!("could not note a registry event id: a retry of it may be recorded twice");
        }
    }

    /// [`Self::release`]; in cluster mode nothing was claimed.
    pub async fn release_anywhere(&self, id: &str) {
        if self.database.is_none() {
            self.release(id);
        }
    }

    /// Marks `id` as recorded; false when it already was. One lock around the check and the
    /// insert, so of several concurrent deliveries of one event exactly one gets `true`.
    fn claim(&self, id: &str) -> bool {
        let mut g = lock(&self.inner);
        if !g.0.insert(id.to_string()) {
            return false;
        }
        g.1.push_back(id.to_string());
        while g.1.len() > REMEMBERED_IDS {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
        true
    }

    /// Gives a claim back after its entry could not be written, so the registry's retry of the
    /// event is recorded instead of being taken for a repeat.
    fn release(&self, id: &str) {
        let mut g = lock(&self.inner);
        if g.0.remove(id)
            && let Some(pos) = g.1.iter().rposition(|x| x == id)
        {
            g.1.remove(pos);
        }
    }
}

fn seen_shared(db: &Database, id: &str) -> Result<bool, DatabaseError> {
    Ok(db
        .connection()?
        .query_opt("SELECT 1 FROM seen_events WHERE id = $1", &[&id])?
        .is_some())
}

fn claim_shared(db: &Database, id: &str) -> Result<bool, DatabaseError> {
    let inserted = db.connection()?.execute(
        "INSERT INTO seen_events (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
        &[&id],
    )?;
    Ok(inserted == 1)
}

/// Removes ids older than [`SHARED_IDS_KEPT`]; returns how many. Blocking.
pub fn prune_shared(db: &Database) -> Result<u64, DatabaseError> {
    Ok(db.connection()?.execute(
        "DELETE FROM seen_events WHERE seen_at < now() - make_interval(secs => $1)",
        &[&SHARED_IDS_KEPT.as_secs_f64()],
    )?)
}

/// Cluster mode: prunes `seen_events` every minute until the process ends. Every replica does
/// it; a delete of rows another replica already removed costs nothing.
pub fn spawn_prune(db: Arc<Database>) {
    let spawned = std::thread::Builder::new()
        .name("seen-events-prune".into())
        .spawn(move || {
            loop {
                std::thread::sleep(PRUNE_EVERY);
                if let Err(e) = prune_shared(&db) {
                    log::warn!("cluster mode: pruning old event ids: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cluster mode: cannot start pruning event ids: {e}");
    }
}

#[derive(Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub events: Vec<Event>,
}

#[derive(Deserialize)]
pub struct Event {
    /// registry:2's event id (a UUID), by which repeats are recognised.
    #[serde(default)]
    pub id: String,
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

/// `remote_addr` from an event's `request.addr`, and whether it is only the client's claim.
///
/// registry:2 fills `request.addr` with the first `X-Forwarded-For` entry, else `X-Real-Ip`, each
/// used only when it parses as a bare IP, else with the connection's address, which Go always
/// writes as `ip:port` (distribution `context.RemoteAddr`). So an address with a port is the
/// connection registry:2 saw, and a bare one came from a header anyone can send.
fn remote_addr(raw: &str) -> (String, bool) {
    if let Ok(s) = raw.parse::<SocketAddr>() {
        return (s.ip().to_string(), false);
    }
    match raw.parse::<IpAddr>() {
        Ok(ip) => (ip.to_string(), true),
        Err(_) => (clean(raw, 64), true),
    }
}

/// The entry for one event, or `None` when it is not worth recording. `own` is the account
/// registry-admin uses toward registry:2 (`crate::api::events::own_registry_account`).
pub fn entry_for(e: &Event, own: &str) -> Option<Entry> {
    let action = match e.action.as_str() {
        "push" => "image.push",
        "pull" => "image.pull",
        "delete" => "image.delete",
        _ => return None,
    };
    // Deletes carry no media type (registry 3 sends `""`, and `""` for a tag delete's digest);
    // for pushes and pulls, anything but a manifest is a blob.
    let present = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let is_manifest = match &present(&e.target.media_type) {
        Some(mt) => MANIFEST_TYPES.contains(&mt.as_str()),
        None => e.action == "delete",
    };
    if !is_manifest || e.actor.name.as_deref() == Some(own) {
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
    entry.digest = present(&e.target.digest).map(|d| clean(&d, 140));
    entry.request_id = e.request.id.as_deref().map(|r| clean(r, 128));
    let addr = e.request.addr.as_deref().map(remote_addr);
    let claimed = addr.as_ref().is_some_and(|(_, claimed)| *claimed);
    entry.remote_addr = addr.map(|(a, _)| a);
    let agent = e.request.useragent.as_deref().map(|ua| clean(ua, 128));
    entry.detail = match (claimed, agent) {
        (true, Some(ua)) => Some(format!("{CLAIMED_ADDR}; user agent {ua}")),
        (true, None) => Some(CLAIMED_ADDR.to_string()),
        (false, agent) => agent,
    };
    Some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWN: &str = "registry-admin";

    fn event(v: serde_json::Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn manifest_events_map_and_blobs_and_our_own_account_are_dropped() {
        let push = event(json!({
            "id": "e1", "timestamp": "2026-11-23T00:33:09.120313848Z", "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:41e7", "repository": "team/app", "tag": "v1"},
            "request": {"id": "r1", "addr": "127.0.0.1:59094", "useragent": "skopeo/1.9.3"},
            "actor": {"name": "admin"}
        }));
        let e = entry_for(&push, OWN).unwrap();
        assert_eq!(
            (e.action.as_str(), e.actor.as_str()),
            ("image.push", "admin")
        );
        assert_eq!(e.time, "2026-11-23T00:33:09.120Z");
        assert_eq!(e.remote_addr.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.detail.as_deref(), Some("skopeo/1.9.3"));
        assert_eq!(
            (e.image.as_deref(), e.tag.as_deref()),
            (Some("team/app"), Some("v1"))
        );

        let blob =
            event(json!({"action": "push", "target": {"mediaType": "application/octet-stream"}}));
        assert!(entry_for(&blob, OWN).is_none());
        let index = json!({"mediaType": "application/vnd.oci.image.index.v1+json"});
        let ours = event(json!({"action": "pull", "target": index, "actor": {"name": OWN}}));
        assert!(entry_for(&ours, OWN).is_none());
        assert!(entry_for(&ours, "svc").is_some(), "own is what it is told");
        let tag_delete =
            event(json!({"action": "delete", "target": {"repository": "team/app", "tag": "v1"}}));
        assert_eq!(entry_for(&tag_delete, OWN).unwrap().action, "image.delete");
        assert!(entry_for(&event(json!({"action": "mount"})), OWN).is_none());
    }

    #[test]
    fn registry_3_delete_events_with_empty_media_type_and_digest_are_recorded() {
        // As registry 3.1.1 sends them (docs/registry-versions.md): empty strings, not absent.
        let tag_delete = event(json!({"action": "delete", "target": {
            "mediaType": "", "digest": "", "size": 0, "repository": "team/app", "tag": "v1"
        }, "actor": {"name": "alice"}}));
        let e = entry_for(&tag_delete, OWN).unwrap();
        assert_eq!((e.action.as_str(), e.digest), ("image.delete", None));
        assert_eq!(e.tag.as_deref(), Some("v1"));
        let by_digest = event(json!({"action": "delete", "target": {
            "mediaType": "", "digest": "sha256:41e7", "size": 0, "repository": "team/app"
        }, "actor": {"name": "alice"}}));
        let e = entry_for(&by_digest, OWN).unwrap();
        assert_eq!(e.digest.as_deref(), Some("sha256:41e7"));
    }

    #[test]
    fn our_user_agent_from_someone_else_is_recorded() {
        let forged = event(json!({
            "action": "pull", "target": {"mediaType": "application/vnd.oci.image.index.v1+json"},
            "request": {"useragent": crate::registry::client::USER_AGENT}, "actor": {"name": "mallory"}
        }));
        assert_eq!(entry_for(&forged, OWN).unwrap().actor, "mallory");
    }

    #[test]
    fn a_bare_address_is_marked_as_the_clients_claim() {
        assert_eq!(remote_addr("10.1.2.3:5000"), ("10.1.2.3".into(), false));
        assert_eq!(remote_addr("[::1]:5000"), ("::1".into(), false));
        assert_eq!(remote_addr("203.0.113.9"), ("203.0.113.9".into(), true));
        assert_eq!(remote_addr("2001:db8::1"), ("2001:db8::1".into(), true));
        assert_eq!(remote_addr("no\naddress"), ("noaddress".into(), true));
        let claimed = event(json!({
            "action": "delete", "target": {"repository": "a/b", "tag": "v1"},
            "request": {"addr": "203.0.113.9", "useragent": "docker/27"}
        }));
        let e = entry_for(&claimed, OWN).unwrap();
        assert_eq!(e.remote_addr.as_deref(), Some("203.0.113.9"));
        assert_eq!(
            e.detail.as_deref(),
            Some(format!("{CLAIMED_ADDR}; user agent docker/27").as_str())
        );
    }

    #[test]
    fn an_id_is_claimed_once_and_can_be_given_back() {
        let seen = SeenEvents::default();
        assert!(seen.claim("a"));
        assert!(!seen.claim("a"));
        seen.release("a");
        assert!(seen.claim("a"));
        assert_eq!(lock(&seen.inner).1.len(), 1);
    }
}
