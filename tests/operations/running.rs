//! Running it like production: request ids, metrics, the OpenAPI document and docs page,
//! graceful shutdown.

use crate::common;

use std::thread;
use std::time::Duration;

use common::{ADMIN_PASSWORD, AppEnv, Stack, client, json, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

#[test]
fn request_ids_are_kept_or_made_and_echoed_everywhere() {
    let stack = Stack::start();
    let id_of = |resp: &reqwest::blocking::Response| {
        resp.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let r = stack
        .app
        .as_admin(Method::GET, "/users")
        .header("X-Request-Id", "trace-42.a_b")
        .send()
        .unwrap();
    assert_eq!(id_of(&r).as_deref(), Some("trace-42.a_b"));
    for (req, want_status) in [
        (stack.app.get("/users"), 401),
        (stack.app.as_admin(Method::GET, "/nope"), 404),
        (
            stack
                .app
                .get("/health/live")
                .header("X-Request-Id", "bad id with spaces"),
            200,
        ),
        (
            stack
                .app
                .get("/health/live")
                .header("X-Request-Id", "x".repeat(129)),
            200,
        ),
        (
            stack
                .app
                .as_admin(Method::POST, "/users")
                .header("content-type", "application/json")
                .body("x".repeat(70_000)),
            413,
        ),
    ] {
        let r = req.send().unwrap();
        assert_eq!(r.status(), want_status);
        let id = id_of(&r).expect("X-Request-Id on every response");
        assert!(
            id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "generated: {id}"
        );
    }
    let r = stack
        .app
        .as_admin(Method::POST, "/users/nobody/disable")
        .header("X-Request-Id", "find-me-7")
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    // The access log line is written after the response is sent, and the harness reads the
    // app's stderr on a thread of its own: wait for the line rather than expect it at once.
    let find = || {
        stack
            .app
            .stderr()
            .lines()
            .find(|l| l.contains("request_id=find-me-7"))
            .map(str::to_string)
    };
    wait_until(
        "a log line with the request id find-me-7",
        Duration::from_secs(30),
        || find().is_some(),
    );
    let line = find().expect("a log line with the request id");
    assert!(
        line.contains("POST /users/nobody/disable 404") && line.contains("account=admin"),
        "{line}"
    );
    let (_, audit) = json(
        stack
            .app
            .as_admin(Method::GET, "/audit?action=user.disable")
            .send()
            .unwrap(),
    );
    assert_eq!(audit["entries"][0]["request_id"], "find-me-7");
}

#[test]
fn metrics_are_for_admins_and_count_by_route_template() {
    let stack = Stack::start();
    assert_eq!(
        stack.app.create_user("mo", "mo-pass-1111", "user").status(),
        201
    );
    assert_eq!(stack.app.get("/metrics").send().unwrap().status(), 401);
    let r = stack
        .app
        .get("/metrics")
        .basic_auth("mo", Some("mo-pass-1111"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    for _ in 0..3 {
        assert_eq!(
            stack
                .app
                .as_admin(Method::GET, "/users/mo")
                .send()
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        stack
            .app
            .as_admin(Method::GET, "/images")
            .send()
            .unwrap()
            .status(),
        200
    );
    let r = stack.app.as_admin(Method::GET, "/metrics").send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
    };
    assert_eq!(
        value(
            "registry_admin_http_requests_total{method=\"GET\",route=\"/users/{user}\",status=\"200\"}"
        ),
        3.0
    );
    assert!(
        !text.contains("/users/mo\""),
        "raw paths must not become labels"
    );
    assert_eq!(
        value(
            "registry_admin_http_requests_total{method=\"POST\",route=\"/users\",status=\"201\"}"
        ),
        1.0
    );
    assert!(value("registry_admin_upstream_requests_total{outcome=\"ok\"}") >= 1.0);
    assert!(value("registry_admin_upstream_request_duration_seconds_count") >= 1.0);
    assert!(value("registry_admin_bcrypt_operations_total{op=\"hash\"}") >= 1.0);
    assert!(value("registry_admin_bcrypt_operations_total{op=\"verify\"}") >= 1.0);
    assert!(value("registry_admin_audit_entries_written_total") >= 1.0);
    assert!(text.contains(
        "registry_admin_http_request_duration_seconds_bucket{route=\"/users/{user}\",le=\"+Inf\"} 3"
    ));
}

#[test]
fn the_openapi_document_covers_every_endpoint_and_docs_are_self_contained() {
    let stack = Stack::start();
    let (status, doc) = json(stack.app.get("/openapi.json").send().unwrap());
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "delete"] {
            if let Some(op) = item.get(m) {
                documented.push(format!("{} {path}", m.to_uppercase()));
                let responses = op["responses"].as_object().unwrap();
                if path != "/openapi.json" && path != "/docs" && !path.starts_with("/health") {
                    assert!(responses.contains_key("401"), "{m} {path} lacks 401");
                }
            }
        }
    }
    documented.sort();
    let mut expected: Vec<String> = [
        "GET /health",
        "GET /health/live",
        "GET /health/ready",
        "POST /auth/token",
        "GET /users",
        "POST /users",
        "GET /users/{user}",
        "DELETE /users/{user}",
        "PUT /users/{user}/password",
        "POST /users/{user}/disable",
        "POST /users/{user}/enable",
        "PUT /users/{user}/role",
        "GET /images",
        "GET /images/{name}/tags",
        "GET /images/{name}/tags/{tag}",
        "DELETE /images/{name}/tags/{tag}",
        "GET /images/{name}/-/tags",
        "GET /images/{name}/-/tags/{tag}",
        "DELETE /images/{name}/-/tags/{tag}",
        "GET /audit",
        "GET /audit/verify",
        "POST /events",
        "GET /metrics",
        "GET /grants",
        "GET /users/{user}/grants",
        "PUT /users/{user}/grants",
        "PUT /grants/everyone",
        "PUT /grants/public",
        "GET /users/{user}/access",
        "GET /token",
        "POST /gc",
        "GET /gc",
        "GET /gc/{id}",
        "POST /robots",
        "GET /robots",
        "GET /robots/{robot}",
        "DELETE /robots/{robot}",
        "PUT /robots/{robot}/grants",
        "POST /robots/{robot}/rotate",
        "GET /retention",
        "PUT /retention",
        "POST /retention/plans",
        "GET /retention/plans/{id}",
        "POST /retention/plans/{id}/apply",
        "GET /openapi.json",
        "GET /docs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.sort();
    assert_eq!(documented, expected);
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["basic"].is_object());

    let r = stack.app.get("/docs").send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().unwrap();
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"),
        "no outside assets"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_flushes_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    // A slow request: one bcrypt at cost 15 takes well over a second.
    let mut app = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("BCRYPT_COST", "15")
        .start();
    // Warm the credentials cache so the request's time is its own hash.
    assert_eq!(
        app.as_admin(Method::GET, "/users").send().unwrap().status(),
        200
    );
    let url = app.url.clone();
    let slow = thread::spawn(move || {
        client()
            .post(format!("{url}/users"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"username": "late", "password": "late-pass-11"}))
            .send()
            .map(|r| r.status().as_u16())
    });
    thread::sleep(Duration::from_millis(500));
    let code = app.terminate(Duration::from_secs(30));
    assert_eq!(
        slow.join()
            .unwrap()
            .expect("the in-flight request was answered"),
        201
    );
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    let audit = std::fs::read_to_string(dir.path().join("logs/audit.log")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["action"].as_str(), last["user"].as_str()),
        (Some("user.create"), Some("late"))
    );
}
