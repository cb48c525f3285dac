//! Hostile cases around the audit trail: forged registry notifications, slow and unauthenticated
//! `/events` bodies, forged query cursors, the file mode of the audit files, and a client
//! repeating a refused request. Real binary throughout; registry:2 where its behaviour matters.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::images::{ACCEPT_ALL, one_image};
use common::{
    App, AppEnv, EVENTS_TOKEN, Stack, audit_entries as entries, client, file_mode as mode, json,
    post_events_as, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

/// What registry-admin itself sends as User-Agent; anyone else can send it too.
const OUR_USER_AGENT: &str = concat!("registry-admin/", env!("CARGO_PKG_VERSION"));
const CLAIMED: &str = "remote_addr as claimed by the client";

/// registry-admin alone, with a registry address where nothing listens: enough for everything
/// that does not need registry:2.
fn app_alone(customise: impl FnOnce(AppEnv) -> AppEnv) -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let app = customise(AppEnv::new(dir.path(), "http://127.0.0.1:9")).start();
    (dir, app)
}

/// One manifest push event as registry:2 sends it.
fn push_event(id: &str, repository: &str, actor: &str, useragent: &str) -> Value {
    json!({"events": [{
        "id": id, "timestamp": "2026-11-23T00:33:09.120313848Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:41e7",
                   "repository": repository, "tag": "v1"},
        "request": {"id": "req-1", "addr": "127.0.0.1:59094", "useragent": useragent},
        "actor": {"name": actor}
    }]})
}

fn host_port(app: &App) -> String {
    app.url.trim_start_matches("http://").to_string()
}

/// Reads one HTTP response from `s` (status and body), giving up after `limit`.
fn read_response(s: &mut TcpStream, limit: Duration) -> Option<(u16, String)> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    while started.elapsed() < limit && buf.len() < 1 << 20 {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

#[test]
fn a_pull_sent_with_our_user_agent_is_recorded_and_only_our_own_account_is_dropped() {
    let stack = Stack::start();
    assert_eq!(
        stack
            .app
            .create_user("pusher", "pusher-pass-1", "user")
            .status(),
        201
    );
    let (_dir, layout, img) = one_image(1);
    let reg = format!("127.0.0.1:{}", stack.registry.port);
    layout.push(&reg, "pusher:pusher-pass-1", "img", "team/app", "v1", false);

    // Straight at registry:2, as any client with an account can: our User-Agent, and once a
    // made-up X-Forwarded-For.
    let pull = |reference: &str, forwarded_for: Option<&str>| {
        let mut r = client()
            .get(format!(
                "{}/v2/team/app/manifests/{reference}",
                stack.registry.url
            ))
            .basic_auth("pusher", Some("pusher-pass-1"))
            .header("accept", ACCEPT_ALL)
            .header("user-agent", OUR_USER_AGENT);
        if let Some(xff) = forwarded_for {
            r = r.header("x-forwarded-for", xff);
        }
        assert_eq!(r.send().unwrap().status(), 200);
    };
    pull("v1", Some("203.0.113.77"));
    pull(&img.digest, None);
    // registry-admin's own reads of the manifest, as the registry account it uses.
    let (status, _) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/team/app/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    // Events arrive in order: once this marker is in, the ones before it have been handled.
    pull("v1", Some("198.51.100.1"));

    let mut pulls = Vec::new();
    wait_until(
        "the marker pull in the audit log",
        Duration::from_secs(20),
        || {
            pulls = entries(&stack.app, "?action=image.pull&image=team/app");
            pulls.iter().any(|e| e["remote_addr"] == "198.51.100.1")
        },
    );
    // registry-admin's own reads came back as events of its own account and were dropped.
    assert!(pulls.iter().all(|e| e["actor"] == "pusher"), "{pulls:#?}");
    let by_tag = pulls
        .iter()
        .find(|e| e["remote_addr"] == "203.0.113.77")
        .expect("the pull that claimed an address");
    let detail = by_tag["detail"].as_str().unwrap_or("");
    assert!(detail.starts_with(CLAIMED), "{detail}");
    assert!(detail.contains(OUR_USER_AGENT), "{detail}");
    let by_digest: Vec<&Value> = pulls
        .iter()
        .filter(|e| e["digest"] == img.digest.as_str() && e["tag"].is_null())
        .collect();
    assert_eq!(by_digest.len(), 1, "{pulls:#?}");
    let by_digest = by_digest[0];
    assert_eq!(by_digest["remote_addr"], "127.0.0.1");
    assert_eq!(
        by_digest["detail"], OUR_USER_AGENT,
        "a connection address is no claim"
    );
}

#[test]
fn events_of_the_configured_registry_username_are_dropped_and_others_are_kept() {
    let (_dir, app) = app_alone(|env| {
        env.set("REGISTRY_USERNAME", "svc-registry")
            .set("REGISTRY_PASSWORD", "svc-registry-secret-1")
    });
    let (status, body) = post_events_as(
        &app.url,
        EVENTS_TOKEN,
        &push_event("own-1", "own/app", "svc-registry", "Go-http-client/1.1"),
    );
    assert_eq!((status, &body["recorded"]), (200, &json!(0)), "{body}");
    let (status, body) = post_events_as(
        &app.url,
        EVENTS_TOKEN,
        &push_event("other-1", "other/app", "registry-admin", OUR_USER_AGENT),
    );
    assert_eq!((status, &body["recorded"]), (200, &json!(1)), "{body}");
    assert!(entries(&app, "?image=own/app").is_empty());
    let kept = entries(&app, "?image=other/app");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["actor"], "registry-admin");
}

#[test]
fn twenty_concurrent_deliveries_of_one_event_are_recorded_once() {
    let (_dir, app) = app_alone(|env| env);
    let app = Arc::new(app);
    let event = push_event("same-event", "dup/app", "alice", "docker/27");
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let (app, event, barrier) = (Arc::clone(&app), event.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                post_events_as(&app.url, EVENTS_TOKEN, &event)
            })
        })
        .collect();
    let mut recorded = 0;
    for t in threads {
        let (status, body) = t.join().unwrap();
        assert_eq!(status, 200, "{body}");
        recorded += body["recorded"].as_u64().unwrap();
    }
    assert_eq!(recorded, 1);
    assert_eq!(entries(&app, "?image=dup/app").len(), 1);
}

#[test]
fn an_event_id_longer_than_128_bytes_is_dropped() {
    let (_dir, app) = app_alone(|env| env);
    let (status, body) = post_events_as(
        &app.url,
        EVENTS_TOKEN,
        &push_event(&"x".repeat(129), "long/app", "alice", "docker/27"),
    );
    assert_eq!(status, 200);
    assert_eq!(body, json!({"recorded": 0, "dropped": 1}));
    assert!(entries(&app, "?image=long/app").is_empty());
    let (_, body) = post_events_as(
        &app.url,
        EVENTS_TOKEN,
        &push_event(&"y".repeat(128), "long/app", "alice", "docker/27"),
    );
    assert_eq!(body["recorded"], 1);
}

#[test]
fn a_wrong_events_token_is_refused_before_the_body_is_sent() {
    let (_dir, app) = app_alone(|env| env);
    let mut s = TcpStream::connect(host_port(&app)).unwrap();
    write!(
        s,
        "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token\r\n\
         Content-Type: application/vnd.docker.distribution.events.v1+json\r\n\
         Content-Length: 1000000\r\n\r\n{{\"events\":["
    )
    .unwrap();
    let (status, body) =
        read_response(&mut s, Duration::from_secs(15)).expect("an answer without the body");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
}

#[test]
fn a_notification_body_that_trickles_in_is_dropped_after_ten_seconds() {
    let (_dir, app) = app_alone(|env| env);
    // A valid event padded with spaces, sent in pieces over about 20 s: complete in the end,
    // but not within the 10 s a body may take.
    let event = push_event("slow-1", "slow/app", "alice", "docker/27").to_string();
    let pieces = 40;
    let padding = 100;
    let length = event.len() + pieces * padding;
    let mut s = TcpStream::connect(host_port(&app)).unwrap();
    write!(
        s,
        "POST /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {EVENTS_TOKEN}\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    let drip = thread::spawn(move || {
        for _ in 0..pieces {
            if writer.write_all(&[b' '; 100]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(500));
        }
        let _ = writer.write_all(event.as_bytes());
    });
    let answer = read_response(&mut s, Duration::from_secs(40));
    drop(s);
    drip.join().unwrap();
    let (status, body) = answer.expect("an answer");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"invalid_request\""), "{body}");
    assert!(entries(&app, "?image=slow/app").is_empty());
}

#[test]
fn wrong_events_tokens_are_401_and_audited_within_the_burst_rule_and_never_lock_out_the_right_one()
{
    let (_dir, app) = app_alone(|env| env);
    let event = push_event("t-1", "t/app", "alice", "docker/27");
    // No credentials at all: refused, and not written down.
    let r = client()
        .post(format!("{}/events", app.url))
        .body(event.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(entries(&app, "?action=auth.failure").is_empty());

    // Far past the old throttle (10): every one is a 401, never a 429.
    for i in 0..30 {
        let (status, body) = post_events_as(&app.url, "not-the-token", &event);
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let failures = entries(&app, "?action=auth.failure");
    assert_eq!(failures.len(), 10, "ten a minute one by one: {failures:#?}");
    for f in &failures {
        assert_eq!((&f["actor"], &f["outcome"]), (&json!(""), &json!("denied")));
        assert!(f["detail"].as_str().unwrap().contains("/events"), "{f}");
        assert_eq!(f["remote_addr"], "127.0.0.1");
    }
    assert!(entries(&app, "?image=t/app").is_empty());
    // The registry's own notification, from the same address, goes through at once.
    let (status, body) = post_events_as(&app.url, EVENTS_TOKEN, &event);
    assert_eq!(status, 200, "{body}");
    assert_eq!(entries(&app, "?image=t/app").len(), 1);
}

#[test]
fn audit_files_are_readable_by_their_owner_only_also_after_rotation() {
    let (dir, app) = app_alone(|env| env.set("AUDIT_MAX_BYTES", "4096"));
    let logs = dir.path().join("logs");
    // The umask of this process lets others read what it creates, so the 0600 below is
    // registry-admin's doing.
    let probe = logs.join("probe");
    std::fs::write(&probe, b"").unwrap();
    assert_ne!(mode(&probe) & 0o044, 0, "umask too strict to test this");
    std::fs::remove_file(&probe).unwrap();

    assert_eq!(mode(&logs.join("audit.log")), 0o600, "after start");
    for i in 0..30 {
        assert_eq!(
            app.create_user(&format!("mode{i}"), "mode-pass-11", "user")
                .status(),
            201
        );
    }
    assert!(logs.join("audit.log.1").exists(), "no rotation happened");
    let mut audit_files = 0;
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let numbered = name
            .strip_prefix("audit.log.")
            .is_some_and(|n| n.parse::<u64>().is_ok());
        if name == "audit.log" || numbered {
            assert_eq!(mode(&path), 0o600, "{name}");
            audit_files += 1;
        }
    }
    assert!(audit_files >= 3, "{audit_files} audit files");
}

#[test]
fn forged_cursors_are_400_invalid_request_and_never_500() {
    let (_dir, app) = app_alone(|env| env);
    for i in 0..3 {
        assert_eq!(
            app.create_user(&format!("cur{i}"), "cursor-pass-1", "user")
                .status(),
            201
        );
    }
    let (status, page) = json(app.as_admin(Method::GET, "/audit?limit=1").send().unwrap());
    assert_eq!(status, 200);
    let real = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(&real).unwrap()).unwrap();
    let mut parts = decoded.splitn(3, '.');
    let (file, offset, fingerprint) = (
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap().to_string(),
    );
    let forge = |text: String| URL_SAFE_NO_PAD.encode(text);
    let forged = [
        "!!!not-base64!!!".to_string(),
        forge("{\"file\":1,\"offset\":0}".into()),
        URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00, 0x2e]),
        forge(format!("99999999999999999999999.0.{fingerprint}")),
        forge(format!("{file}.99999999999999999999999.{fingerprint}")),
        // Well-formed, with the right filters, but pointing where no page ever ended.
        forge(format!("{file}.{}.{fingerprint}", 1u64 << 50)),
        forge(format!("{}.0.{fingerprint}", file + 1000)),
        forge(format!("0.0.{fingerprint}")),
        forge(format!("{file}.{}.{fingerprint}", offset + 1)),
    ];
    for cursor in &forged {
        let (status, body) = json(
            app.as_admin(Method::GET, &format!("/audit?limit=1&cursor={cursor}"))
                .send()
                .unwrap(),
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{cursor}: {body}"
        );
    }
    let (status, body) = json(
        app.as_admin(Method::GET, &format!("/audit?limit=1&cursor={real}"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "the real cursor still works: {body}");
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);
}

#[test]
fn an_account_repeating_a_refused_request_cannot_grow_the_audit_log_without_bound() {
    let (dir, app) = app_alone(|env| env);
    assert_eq!(
        app.create_user("alice", "alice-pass-11", "user").status(),
        201
    );
    let size_before = std::fs::metadata(dir.path().join("logs/audit.log"))
        .unwrap()
        .len();
    for i in 0..200 {
        let r = app
            .request(Method::POST, "/users")
            .basic_auth("alice", Some("alice-pass-11"))
            .json(&json!({"username": format!("x{i}"), "password": "some-pass-11", "role": "user"}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let refused = entries(
        &app,
        "?user=alice&action=user.create&outcome=denied&limit=1000",
    );
    // Ten written one by one; past that one entry a minute, however long this loop took.
    assert!(
        (10..20).contains(&refused.len()),
        "{} entries for 200 refusals",
        refused.len()
    );
    assert!(
        refused
            .iter()
            .all(|e| e["outcome"] == "denied" && e["status"] == 403)
    );
    let grown = std::fs::metadata(dir.path().join("logs/audit.log"))
        .unwrap()
        .len()
        - size_before;
    assert!(grown < 20 * 1024, "the log grew by {grown} bytes");

    // Another refused action of the same account is counted on its own.
    let r = app
        .request(Method::POST, "/users/alice/disable")
        .basic_auth("alice", Some("alice-pass-11"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(entries(&app, "?action=user.disable").len(), 1);
    // Successes are always written.
    for i in 0..15 {
        assert_eq!(
            app.create_user(&format!("ok{i}"), "some-pass-11", "user")
                .status(),
            201
        );
    }
    let created = entries(&app, "?action=user.create&outcome=success&limit=1000");
    assert_eq!(created.len(), 16, "alice and the fifteen");
}
