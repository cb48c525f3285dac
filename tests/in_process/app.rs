//! The application in-process (`actix_web::test::init_service`), without a registry or a
//! child process: extractors, middleware and error bodies, as a client sees them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use actix_web::HttpMessage;
use actix_web::http::{Method, StatusCode, header};
use actix_web::test::{self, TestRequest};
use chrono::Utc;
use serde_json::Value;

use common::in_process::{TestApp, basic};
use registry_admin::api::AuditAction;
use registry_admin::app;
use registry_admin::audit::entry::ACTIONS;

/// A store holding `admin` and the user-role `ursula`, an audit log, and a registry URL that
/// refuses connections.
fn test_app() -> TestApp {
    TestApp::new().with_users(4).build()
}

/// Status, headers and JSON body of one request.
async fn call(t: &TestApp, req: TestRequest) -> (StatusCode, header::HeaderMap, Value) {
    let service = test::init_service(app(t.state.clone())).await;
    let resp = test::call_service(&service, req.to_request()).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = test::read_body(resp).await;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[actix_web::test]
async fn no_credentials_is_a_401_with_a_basic_challenge_and_a_request_id() {
    let t = test_app();
    let (status, headers, body) = call(&t, TestRequest::get().uri("/users")).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).unwrap(),
        "Basic realm=\"registry-admin\""
    );
    assert!(headers.contains_key("x-request-id"));
    assert!(is_json(&headers));
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("authentication required")
    );
}

#[actix_web::test]
async fn a_wrong_password_says_the_credentials_were_rejected_and_is_audited() {
    let t = test_app();
    let req = TestRequest::get()
        .uri("/users")
        .insert_header(basic("admin", "not-the-password"))
        .insert_header(("x-request-id", "probe-1"));
    let (status, headers, body) = call(&t, req).await;
    assert_eq!(status, 401);
    assert_eq!(headers.get("x-request-id").unwrap(), "probe-1");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["message"], "the credentials were rejected");
    t.audit.close();
    let log = std::fs::read_to_string(&t.state.config.audit_log_path).unwrap();
    let entry: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&entry["action"], &entry["actor"], &entry["request_id"]),
        (
            &Value::from("auth.failure"),
            &Value::from("admin"),
            &Value::from("probe-1")
        )
    );
    assert!(!log.contains("not-the-password"));
}

#[actix_web::test]
async fn a_user_on_an_admin_endpoint_is_told_which_role_it_needs() {
    let t = test_app();
    let req = TestRequest::get()
        .uri("/users")
        .insert_header(basic("ursula", "ursula-password"));
    let (status, _, body) = call(&t, req).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["message"].as_str().unwrap().contains("admin role"),
        "{body}"
    );
}

#[actix_web::test]
async fn actix_errors_have_the_same_json_shape() {
    let t = test_app();
    let admin = basic("admin", "admin-password");
    let cases = [
        (TestRequest::get().uri("/no/such/route"), 404, "not_found"),
        (
            TestRequest::default()
                .method(Method::PATCH)
                .uri("/users")
                .insert_header(admin.clone()),
            405,
            "method_not_allowed",
        ),
        (
            TestRequest::post()
                .uri("/users")
                .insert_header(admin.clone())
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload("{not json"),
            400,
            "invalid_request",
        ),
        (
            TestRequest::post()
                .uri("/users")
                .insert_header(admin.clone())
                .insert_header((header::CONTENT_TYPE, "application/json"))
                .set_payload(vec![b' '; 70 * 1024]),
            413,
            "payload_too_large",
        ),
    ];
    for (req, status, code) in cases {
        let (got, headers, body) = call(&t, req).await;
        assert_eq!(got.as_u16(), status, "{body}");
        assert!(is_json(&headers), "{status}");
        assert_eq!(body["error"], code);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[actix_web::test]
async fn an_unreachable_registry_is_a_502_naming_the_problem() {
    let t = test_app();
    let req = TestRequest::get()
        .uri("/images")
        .insert_header(basic("admin", "admin-password"));
    let (status, _, body) = call(&t, req).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"], "upstream_unavailable");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("http://127.0.0.1:1") && message.contains("REGISTRY_URL"),
        "{message}"
    );
}

#[actix_web::test]
async fn the_gc_routes_find_their_jobs_service_and_a_refused_job_leaves_nothing() {
    let t = test_app();
    // Each call builds the app anew from one state, as each worker does.
    let (status, _, body) = call(
        &t,
        TestRequest::post()
            .uri("/gc")
            .insert_header(basic("admin", "admin-password")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("gc_unavailable"))
    );
    for _ in 0..2 {
        let (status, _, body) = call(
            &t,
            TestRequest::get()
                .uri("/gc")
                .insert_header(basic("admin", "admin-password")),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, serde_json::json!({"jobs": []}));
    }
}

#[actix_web::test]
async fn in_token_mode_a_fresh_start_counts_write_tokens_an_earlier_process_may_have_issued() {
    let t = TestApp::new()
        .with_users(4)
        .token_mode()
        .with_env("REGISTRY_TOKEN_TTL", "300")
        .build();
    let now = Utc::now();
    // A garbage collection starting now waits for a token issued just before the start.
    let until = t
        .state
        .freeze
        .freeze(now)
        .expect("write tokens assumed outstanding");
    assert!(
        until >= now + chrono::Duration::seconds(300 + 60 - 5),
        "{until} vs {now}"
    );
    t.state.freeze.thaw();
}

/// Route facts are declared once, where each route is registered: every operation the served
/// `/openapi.json` lists is a route the app answers (not the 404 of an unknown path, not a
/// 405), and the audit action a route declares is the one its entries have always carried.
/// Run in token mode, where `/token` is a route too.
#[actix_web::test]
async fn every_documented_operation_is_served_and_declares_its_audit_action() {
    let t = TestApp::new().with_users(4).token_mode().build();
    // Every audited route and its action; every other documented operation declares none.
    let audited: BTreeMap<&str, &str> = BTreeMap::from([
        ("POST /users", "user.create"),
        ("DELETE /users/{user}", "user.delete"),
        ("PUT /users/{user}/password", "user.password"),
        ("POST /users/{user}/disable", "user.disable"),
        ("POST /users/{user}/enable", "user.enable"),
        ("PUT /users/{user}/role", "user.role"),
        ("DELETE /images/{name}/tags/{tag}", "tag.delete"),
        ("DELETE /images/{name}/-/tags/{tag}", "tag.delete"),
        ("PUT /users/{user}/grants", "grants.update"),
        ("PUT /grants/everyone", "grants.update"),
        ("PUT /grants/public", "grants.update"),
        ("POST /auth/token", "auth.token"),
        ("GET /token", "token.issue"),
        ("POST /gc", "gc.start"),
        ("POST /robots", "robot.create"),
        ("PUT /robots/{robot}/grants", "robot.grants"),
        ("POST /robots/{robot}/rotate", "robot.rotate"),
        ("DELETE /robots/{robot}", "robot.delete"),
        ("PUT /retention", "retention.update"),
        ("POST /retention/plans", "retention.plan"),
        ("POST /retention/plans/{id}/apply", "retention.apply"),
    ]);
    let service = test::init_service(app(t.state.clone())).await;
    let resp = test::call_service(
        &service,
        TestRequest::get().uri("/openapi.json").to_request(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let doc: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
    let mut seen = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("delete", Method::DELETE),
        ] {
            if item.get(name).is_none() {
                continue;
            }
            let operation = format!("{method} {path}");
            let uri = path
                .replace("{user}", "nobody")
                .replace("{name}", "team/app")
                .replace("{tag}", "v1")
                .replace("{robot}", "robot$nobody+ci")
                .replace("{id}", "1");
            // No credentials: each route answers from its own extractors (401 mostly).
            let req = TestRequest::default().method(method.clone()).uri(&uri);
            let resp = test::call_service(&service, req.to_request()).await;
            let status = resp.status();
            let declared = resp
                .request()
                .extensions()
                .get::<AuditAction>()
                .map(|a| a.0);
            let body: Value =
                serde_json::from_slice(&test::read_body(resp).await).unwrap_or(Value::Null);
            assert_ne!(status, 405, "{operation}: {body}");
            assert!(
                !(status == 404 && body["message"] == "no such endpoint"),
                "{operation} is documented but not served"
            );
            assert_eq!(
                declared,
                audited.get(operation.as_str()).copied(),
                "{operation}: its audit action"
            );
            if method != Method::GET && path != "/events" {
                assert!(declared.is_some(), "{operation} changes state unaudited");
            }
            if let Some(action) = declared {
                assert!(ACTIONS.contains(&action), "{action} is not a known action");
            }
            seen.insert(operation);
        }
    }
    let missing: Vec<_> = audited.keys().filter(|op| !seen.contains(**op)).collect();
    assert!(
        missing.is_empty(),
        "audited but not documented: {missing:?}"
    );
}

/// The reservation a changing route declares: with the audit log closed, a change is refused
/// with 503 `audit_unavailable` before its handler runs, and nothing changes; reads go on, and
/// a failed login (audited, but not a change) is still refused as such.
#[actix_web::test]
async fn a_change_whose_entry_cannot_be_written_is_refused_before_it_happens() {
    let t = test_app();
    let service = test::init_service(app(t.state.clone())).await;
    t.audit.close();
    let (name, value) = basic("admin", "admin-password");
    let req = TestRequest::post()
        .uri("/users")
        .insert_header((name.clone(), value.clone()))
        .set_json(serde_json::json!({"username": "newcomer", "password": "newcomer-pass-1"}));
    let resp = test::call_service(&service, req.to_request()).await;
    assert_eq!(resp.status(), 503);
    let body: Value = serde_json::from_slice(&test::read_body(resp).await).unwrap();
    assert_eq!(body["error"], "audit_unavailable", "{body}");

    let req = TestRequest::get()
        .uri("/users/newcomer")
        .insert_header((name, value));
    let resp = test::call_service(&service, req.to_request()).await;
    assert_eq!(resp.status(), 404, "the refused change did not happen");

    let (name, value) = basic("admin", "wrong-password-1");
    let req = TestRequest::post()
        .uri("/auth/token")
        .insert_header((name, value));
    let resp = test::call_service(&service, req.to_request()).await;
    assert_eq!(resp.status(), 401);
}
