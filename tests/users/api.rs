//! The users API contract: roles, conflicts, and hostile input that must change nothing.

use crate::common;

use std::time::SystemTime;

use common::{ADMIN_PASSWORD, Stack, json, usernames};
use reqwest::Method;
use serde_json::json;

#[test]
fn nothing_but_health_answers_without_credentials() {
    let stack = Stack::start();
    for (method, path) in [
        (Method::GET, "/users"),
        (Method::POST, "/users"),
        (Method::GET, "/users/admin"),
        (Method::DELETE, "/users/admin"),
        (Method::PUT, "/users/admin/password"),
        (Method::POST, "/users/admin/disable"),
        (Method::POST, "/users/admin/enable"),
        (Method::PUT, "/users/admin/role"),
    ] {
        let resp = stack
            .app
            .request(method.clone(), path)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .unwrap();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let (status, body) = json(resp);
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}"
        );
        assert_eq!(challenge.as_deref(), Some("Basic realm=\"registry-admin\""));
    }
    for path in ["/health", "/health/live"] {
        assert_eq!(stack.app.get(path).send().unwrap().status(), 200, "{path}");
    }
}

#[test]
fn wrong_password_unknown_user_and_disabled_user_are_all_401() {
    let stack = Stack::start();
    assert_eq!(
        stack
            .app
            .create_user("frank", "frank-pass-1", "admin")
            .status(),
        201
    );
    let status = |u: &str, p: &str| {
        stack
            .app
            .get("/users")
            .basic_auth(u, Some(p))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("frank", "frank-pass-1"), 200);
    assert_eq!(status("frank", "wrong-pass-1"), 401);
    assert_eq!(status("nobody", "frank-pass-1"), 401);
    assert_eq!(
        stack
            .app
            .as_admin(Method::POST, "/users/frank/disable")
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        status("frank", "frank-pass-1"),
        401,
        "a disabled account must not use the cache"
    );
    assert_eq!(
        stack
            .app
            .as_admin(Method::POST, "/users/frank/enable")
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(status("frank", "frank-pass-1"), 200);
    let resp = stack
        .app
        .as_admin(Method::PUT, "/users/frank/password")
        .json(&json!({"password": "frank-pass-2"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        status("frank", "frank-pass-1"),
        401,
        "old password must die with the change"
    );
    assert_eq!(status("frank", "frank-pass-2"), 200);
}

#[test]
fn roles_limit_what_a_user_may_do() {
    let stack = Stack::start();
    let app = &stack.app;
    assert_eq!(app.create_user("gina", "gina-pass-1", "user").status(), 201);
    assert_eq!(app.create_user("hank", "hank-pass-1", "user").status(), 201);
    let as_gina = |m: Method, p: &str| app.request(m, p).basic_auth("gina", Some("gina-pass-1"));

    for (m, p) in [
        (Method::GET, "/users"),
        (Method::GET, "/users/gina"),
        (Method::DELETE, "/users/hank"),
        (Method::POST, "/users/hank/disable"),
    ] {
        let (status, body) = json(as_gina(m.clone(), p).send().unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{m} {p}"
        );
    }
    let (status, _) = json(
        as_gina(Method::PUT, "/users/hank/password")
            .json(&json!({"password": "hijacked-1"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 403, "a user may change only their own password");
    for (body, why) in [
        (
            json!({"password": "gina-pass-2"}),
            "without current_password",
        ),
        (
            json!({"password": "gina-pass-2", "current_password": "not-her-pass"}),
            "with a wrong current_password",
        ),
    ] {
        let (status, err) = json(
            as_gina(Method::PUT, "/users/gina/password")
                .json(&body)
                .send()
                .unwrap(),
        );
        assert_eq!(
            (status, err["error"].as_str()),
            (403, Some("forbidden")),
            "{why}"
        );
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("current_password"),
            "{err}"
        );
    }
    let resp = as_gina(Method::PUT, "/users/gina/password")
        .json(&json!({"password": "gina-pass-2", "current_password": "gina-pass-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);

    // Promotion gives gina the admin endpoints.
    let (status, body) = json(
        app.as_admin(Method::PUT, "/users/gina/role")
            .json(&json!({"role": "admin"}))
            .send()
            .unwrap(),
    );
    assert_eq!((status, &body["role"]), (200, &json!("admin")));
    let resp = app
        .get("/users")
        .basic_auth("gina", Some("gina-pass-2"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn conflicts_and_missing_users() {
    let stack = Stack::start();
    let app = &stack.app;
    let (status, body) = json(app.create_user("ivy", "ivy-pass-11", "user"));
    assert_eq!(status, 201, "{body}");
    let (status, body) = json(app.create_user("ivy", "ivy-pass-22", "admin"));
    assert_eq!((status, body["error"].as_str()), (409, Some("user_exists")));
    // Also when the existing one is disabled.
    assert_eq!(
        app.as_admin(Method::POST, "/users/ivy/disable")
            .send()
            .unwrap()
            .status(),
        200
    );
    let (status, _) = json(app.create_user("ivy", "ivy-pass-22", "admin"));
    assert_eq!(status, 409);

    for (m, p) in [
        (Method::GET, "/users/nobody"),
        (Method::DELETE, "/users/nobody"),
        (Method::POST, "/users/nobody/disable"),
        (Method::POST, "/users/nobody/enable"),
    ] {
        let (status, body) = json(app.as_admin(m.clone(), p).send().unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (404, Some("not_found")),
            "{m} {p}"
        );
    }
    let (status, _) = json(
        app.as_admin(Method::PUT, "/users/nobody/password")
            .json(&json!({"password": "whatever-1"}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 404);

    // The bootstrap admin is the last enabled admin.
    for (m, p, b) in [
        (Method::DELETE, "/users/admin", None),
        (Method::POST, "/users/admin/disable", None),
        (
            Method::PUT,
            "/users/admin/role",
            Some(json!({"role": "user"})),
        ),
    ] {
        let mut req = app.as_admin(m.clone(), p);
        if let Some(b) = b {
            req = req.json(&b);
        }
        let (status, body) = json(req.send().unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("last_admin")),
            "{m} {p}"
        );
    }
    // With a second admin, the first may go.
    assert_eq!(app.create_user("jo", "jo-pass-111", "admin").status(), 201);
    let resp = app
        .request(Method::DELETE, "/users/admin")
        .basic_auth("jo", Some("jo-pass-111"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    let _ = ADMIN_PASSWORD;
}

fn file_state(stack: &Stack) -> (Vec<u8>, Option<Vec<u8>>, SystemTime) {
    let ht = stack.htpasswd_path();
    (
        std::fs::read(&ht).unwrap(),
        std::fs::read(stack.users_json_path()).ok(),
        std::fs::metadata(&ht).unwrap().modified().unwrap(),
    )
}

#[test]
fn bad_input_is_a_4xx_json_error_and_changes_nothing() {
    let stack = Stack::start();
    assert_eq!(
        stack.app.create_user("kim", "kim-pass-11", "user").status(),
        201
    );
    let before = file_state(&stack);
    let users_before = usernames(&stack.app);

    let new_user = |u: serde_json::Value| json!({"username": u, "password": "good-pass-1"});
    let long = "x".repeat(65);
    let big = format!(
        "{{\"username\":\"big\",\"password\":\"{}\"}}",
        "p".repeat(2 * 1024 * 1024)
    );
    let json_cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "colon",
            new_user(json!("a:b")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "newline",
            new_user(json!("a\nb")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "nul",
            new_user(json!("a\u{0}b")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "space",
            new_user(json!("a b")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "unicode",
            new_user(json!("jürgen")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "65 chars",
            new_user(json!(long)).to_string(),
            400,
            "invalid_username",
        ),
        (
            "leading dash",
            new_user(json!("-rf")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "leading dot",
            new_user(json!(".hidden")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "empty",
            new_user(json!("")).to_string(),
            400,
            "invalid_username",
        ),
        (
            "not a string",
            new_user(json!(42)).to_string(),
            400,
            "invalid_request",
        ),
        (
            "malformed",
            "{\"username\": \"x\",".into(),
            400,
            "invalid_request",
        ),
        ("not an object", "[1,2]".into(), 400, "invalid_request"),
        (
            "missing password",
            json!({"username": "lee"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "missing username",
            json!({"password": "good-pass-1"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            json!({"username": "lee", "password": "good-pass-1", "admin": true}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "short password",
            json!({"username": "lee", "password": "short"}).to_string(),
            400,
            "invalid_password",
        ),
        (
            "73-byte password",
            json!({"username": "lee", "password": "p".repeat(73)}).to_string(),
            400,
            "invalid_password",
        ),
        (
            "password newline",
            json!({"username": "lee", "password": "good\npass-1"}).to_string(),
            400,
            "invalid_password",
        ),
        (
            "password nul",
            json!({"username": "lee", "password": "good\u{0}pass-1"}).to_string(),
            400,
            "invalid_password",
        ),
        (
            "role service",
            json!({"username": "lee", "password": "good-pass-1", "role": "service"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "role unknown",
            json!({"username": "lee", "password": "good-pass-1", "role": "root"}).to_string(),
            400,
            "invalid_request",
        ),
        ("2 MB body", big, 413, "payload_too_large"),
    ];
    for (name, body, want_status, want_code) in json_cases {
        let (status, resp) = json(
            stack
                .app
                .as_admin(Method::POST, "/users")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .unwrap(),
        );
        assert_eq!(
            (status, resp["error"].as_str()),
            (want_status, Some(want_code)),
            "{name}: {resp}"
        );
        assert!(
            resp["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }

    let path_cases = [
        (Method::GET, "/users/a%3Ab"),
        (Method::GET, "/users/..%2Fadmin"),
        (Method::DELETE, "/users/..%2Fkim"),
        (Method::DELETE, "/users/kim%0A"),
        (Method::DELETE, "/users/kim%00"),
        (Method::POST, "/users/-kim/disable"),
        (Method::POST, "/users/%20kim/enable"),
    ];
    for (m, p) in path_cases {
        let (status, resp) = json(stack.app.as_admin(m.clone(), p).send().unwrap());
        assert_eq!(
            (status, resp["error"].as_str()),
            (400, Some("invalid_username")),
            "{m} {p}: {resp}"
        );
    }

    let other_cases = [
        (
            Method::PUT,
            "/users/kim/password",
            "text/plain",
            "{\"password\":\"good-pass-1\"}",
            400,
        ),
        (
            Method::PUT,
            "/users/kim/password",
            "application/json",
            "{\"password\":\"x\"}",
            400,
        ),
        (
            Method::PUT,
            "/users/kim/password",
            "application/json",
            "{\"pass\":\"good-pass-1\"}",
            400,
        ),
        (
            Method::PUT,
            "/users/kim/role",
            "application/json",
            "{\"role\":\"service\"}",
            400,
        ),
        (
            Method::PUT,
            "/users/kim/role",
            "application/json",
            "{\"role\":null}",
            400,
        ),
        (Method::PATCH, "/users/kim", "application/json", "{}", 405),
        (Method::GET, "/no/such/route", "application/json", "", 404),
    ];
    for (m, p, ct, body, want) in other_cases {
        let (status, resp) = json(
            stack
                .app
                .as_admin(m.clone(), p)
                .header("content-type", ct)
                .body(body)
                .send()
                .unwrap(),
        );
        assert_eq!(status, want, "{m} {p} {body}: {resp}");
        assert!(resp["error"].is_string() && resp["message"].is_string());
    }

    assert_eq!(
        file_state(&stack),
        before,
        "a refused request changed a file"
    );
    assert_eq!(usernames(&stack.app), users_before);
}
