//! What registry:2 itself accepts after each users API call: the change must hold the moment
//! the API answers, with no restart and no delay.

use crate::common;

use common::{Stack, json};
use reqwest::Method;
use serde_json::json;

#[test]
fn a_created_user_logs_in_to_the_registry_at_once() {
    let stack = Stack::start();
    assert_eq!(stack.registry.status_for("alice", "alice-pass-1"), 401);
    let (status, body) = json(stack.app.create_user("alice", "alice-pass-1", "user"));
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body,
        json!({"username": "alice", "role": "user", "disabled": false, "created_at": body["created_at"]})
    );
    assert!(
        body["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(stack.registry.status_for("alice", "alice-pass-1"), 200);
    assert_eq!(stack.registry.status_for("alice", "wrong-pass-1"), 401);
}

#[test]
fn delete_disable_enable_and_password_change_take_effect_at_the_registry() {
    let stack = Stack::start();
    let app = &stack.app;
    let reg = &stack.registry;
    assert_eq!(app.create_user("bob", "bob-pass-1", "user").status(), 201);
    assert_eq!(
        app.create_user("carol", "carol-pass-1", "user").status(),
        201
    );
    assert_eq!(reg.status_for("bob", "bob-pass-1"), 200);

    let (status, body) = json(
        app.as_admin(Method::POST, "/users/bob/disable")
            .send()
            .unwrap(),
    );
    assert_eq!((status, &body["disabled"]), (200, &json!(true)), "{body}");
    assert_eq!(
        reg.status_for("bob", "bob-pass-1"),
        401,
        "disabled user still accepted"
    );
    assert_eq!(
        reg.status_for("carol", "carol-pass-1"),
        200,
        "a sibling was disturbed"
    );
    assert!(!stack.htpasswd().contains("bob:"));

    let (status, body) = json(
        app.as_admin(Method::POST, "/users/bob/enable")
            .send()
            .unwrap(),
    );
    assert_eq!((status, &body["disabled"]), (200, &json!(false)), "{body}");
    assert_eq!(
        reg.status_for("bob", "bob-pass-1"),
        200,
        "enable must restore the old password"
    );

    let resp = app
        .as_admin(Method::PUT, "/users/bob/password")
        .json(&json!({"password": "bob-pass-2"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(reg.status_for("bob", "bob-pass-1"), 401);
    assert_eq!(reg.status_for("bob", "bob-pass-2"), 200);

    assert_eq!(
        app.as_admin(Method::DELETE, "/users/bob")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        reg.status_for("bob", "bob-pass-2"),
        401,
        "deleted user still accepted"
    );
    assert_eq!(reg.status_for("carol", "carol-pass-1"), 200);
    let (status, _) = json(app.as_admin(Method::GET, "/users/bob").send().unwrap());
    assert_eq!(status, 404);
}

#[test]
fn a_password_changed_while_disabled_is_the_one_restored() {
    let stack = Stack::start();
    let app = &stack.app;
    assert_eq!(app.create_user("dan", "dan-pass-1", "user").status(), 201);
    assert_eq!(
        app.as_admin(Method::POST, "/users/dan/disable")
            .send()
            .unwrap()
            .status(),
        200
    );
    let resp = app
        .as_admin(Method::PUT, "/users/dan/password")
        .json(&json!({"password": "dan-pass-2"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        stack.registry.status_for("dan", "dan-pass-2"),
        401,
        "still disabled"
    );
    assert_eq!(
        app.as_admin(Method::POST, "/users/dan/enable")
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(stack.registry.status_for("dan", "dan-pass-2"), 200);
    assert_eq!(stack.registry.status_for("dan", "dan-pass-1"), 401);
}

#[test]
fn the_service_account_is_accepted_by_the_registry_and_protected() {
    let stack = Stack::start();
    let (status, body) = json(stack.app.get("/health/ready").send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["registry"], "ok");

    let (_, users) = json(stack.app.as_admin(Method::GET, "/users").send().unwrap());
    let service = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "registry-admin")
        .expect("service account listed");
    assert_eq!(service["role"], "service");
    assert!(
        stack.htpasswd().contains("registry-admin:$2y$04$"),
        "service account at cost 4"
    );

    for (method, path, body) in [
        (Method::DELETE, "/users/registry-admin", None),
        (Method::POST, "/users/registry-admin/disable", None),
        (Method::POST, "/users/registry-admin/enable", None),
        (
            Method::PUT,
            "/users/registry-admin/role",
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PUT,
            "/users/registry-admin/password",
            Some(json!({"password": "take-over-1"})),
        ),
        (
            Method::POST,
            "/users",
            Some(json!({"username": "registry-admin", "password": "take-over-1"})),
        ),
    ] {
        let mut req = stack.app.as_admin(method.clone(), path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (status, body) = json(req.send().unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("protected_account")),
            "{method} {path}"
        );
    }
}

#[test]
fn readiness_reports_a_registry_that_rejects_our_credentials() {
    let stack = Stack::start_with(|env| {
        env.set("REGISTRY_USERNAME", "nobody")
            .set("REGISTRY_PASSWORD", "not-a-real-password")
    });
    let (status, body) = json(stack.app.get("/health/ready").send().unwrap());
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "fail");
    assert!(
        body["checks"]["registry"]
            .as_str()
            .unwrap()
            .contains("rejects"),
        "{body}"
    );
    assert_eq!(body["checks"]["htpasswd"], "ok");
    assert!(
        !stack.htpasswd().contains("registry-admin:"),
        "no service account when one is given"
    );
    // The images API says so too, as a 502 naming the problem.
    let (status, body) = json(stack.app.as_admin(Method::GET, "/images").send().unwrap());
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_error")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("credentials"),
        "{body}"
    );
}
