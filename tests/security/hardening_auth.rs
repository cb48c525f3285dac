//! Authentication under attack: tokens that must stay dead, a throttle that holds under
//! concurrent bursts, and failures that cost the same whatever account they name.

use crate::common;

use std::process::Command;
use std::thread;

use common::auth::{api_token, bearer_status, metric};
use common::{Stack, json};
use reqwest::Method;
use serde_json::json;

const VERIFY: &str = "registry_admin_bcrypt_operations_total{op=\"verify\"}";

fn admin_call(stack: &Stack, method: Method, path: &str, body: Option<serde_json::Value>) -> u16 {
    let mut r = stack.app.as_admin(method, path);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().unwrap().status().as_u16()
}

#[test]
fn a_token_issued_before_a_role_change_stays_dead_after_changing_back() {
    let stack = Stack::start();
    let app = &stack.app;
    assert_eq!(
        app.create_user("rita", "rita-pass-11", "user").status(),
        201
    );
    let old = api_token(app, "rita", "rita-pass-11");
    assert_eq!(bearer_status(app, &old, Method::GET, "/images"), 200);
    for role in ["admin", "user"] {
        let s = admin_call(
            &stack,
            Method::PUT,
            "/users/rita/role",
            Some(json!({"role": role})),
        );
        assert_eq!(s, 200);
    }
    assert_eq!(
        bearer_status(app, &old, Method::GET, "/images"),
        401,
        "same role as when it was issued, but the epoch moved twice"
    );
    let fresh = api_token(app, "rita", "rita-pass-11");
    assert_eq!(bearer_status(app, &fresh, Method::GET, "/images"), 200);
}

#[test]
fn a_token_issued_before_a_disable_stays_dead_after_enable() {
    let stack = Stack::start();
    let app = &stack.app;
    assert_eq!(app.create_user("sid", "sid-pass-111", "user").status(), 201);
    let old = api_token(app, "sid", "sid-pass-111");
    assert_eq!(
        admin_call(&stack, Method::POST, "/users/sid/disable", None),
        200
    );
    assert_eq!(
        admin_call(&stack, Method::POST, "/users/sid/enable", None),
        200
    );
    assert_eq!(bearer_status(app, &old, Method::GET, "/images"), 401);
}

#[test]
fn a_token_stays_dead_after_its_account_is_deleted_and_recreated_with_the_same_hash() {
    let stack = Stack::start();
    let app = &stack.app;
    assert_eq!(app.create_user("ted", "ted-pass-111", "user").status(), 201);
    let old = api_token(app, "ted", "ted-pass-111");
    let htpasswd = stack.dir.path().join("auth/htpasswd");
    let line = std::fs::read_to_string(&htpasswd)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("ted:"))
        .unwrap()
        .to_string();
    assert_eq!(admin_call(&stack, Method::DELETE, "/users/ted", None), 204);
    // The very same line back by hand: same hash, same (default) role, so only the epoch
    // can tell the old token from a new one.
    let mut text = std::fs::read_to_string(&htpasswd).unwrap();
    text.push_str(&line);
    text.push('\n');
    std::fs::write(&htpasswd, text).unwrap();
    assert_eq!(
        app.get("/images")
            .basic_auth("ted", Some("ted-pass-111"))
            .send()
            .unwrap()
            .status(),
        200,
        "the account is back"
    );
    assert_eq!(bearer_status(app, &old, Method::GET, "/images"), 401);
}

#[test]
fn a_concurrent_burst_gets_ten_checks_and_the_right_password_in_it_gets_nowhere() {
    let stack = Stack::start_with(|env| env.set("TRUSTED_PROXIES", "127.0.0.1"));
    let app = &stack.app;
    assert_eq!(
        app.create_user("uma", "uma-right-pass", "user").status(),
        201
    );
    let before = metric(app, VERIFY);
    let url = format!("{}/users/uma", app.url);
    // 100 guesses at once from one address, the right password among them.
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let url = url.clone();
            thread::spawn(move || {
                let password = if i == 57 {
                    "uma-right-pass".to_string()
                } else {
                    format!("wrong-guess-{i}")
                };
                common::client()
                    .get(url)
                    .header("X-Forwarded-For", "198.51.100.40")
                    .basic_auth("uma", Some(password))
                    .send()
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count(0), 0, "every request answered");
    // GET /users/{user} is for admins, so the right password, if it was checked, is a 403.
    let evaluated = count(401) + count(403);
    // A success resets its pair (README, "Authentication"): when the right password happens to
    // be among the first ten checked (a 403 here), at most ten more guesses may follow it.
    let limit = if count(403) > 0 { 20 } else { 10 };
    assert!(evaluated <= limit, "{evaluated} checks ran: {statuses:?}");
    assert_eq!(count(429), 100 - evaluated, "{statuses:?}");
    let spent = metric(app, VERIFY) - before;
    assert!(
        spent <= limit as f64,
        "{spent} bcrypt verifications for a throttled burst"
    );
    let after = common::client()
        .get(&url)
        .header("X-Forwarded-For", "198.51.100.40")
        .basic_auth("uma", Some("uma-right-pass"))
        .send()
        .unwrap();
    assert_eq!(after.status(), 429);
    let (_, body) = json(after);
    assert_eq!(body["error"], "rate_limited");
}

#[test]
fn a_failure_for_a_cheap_hand_added_hash_still_costs_a_bcrypt_at_bcrypt_cost() {
    let stack = Stack::start_with(|env| env.set("BCRYPT_COST", "6"));
    let app = &stack.app;
    let htpasswd = stack.dir.path().join("auth/htpasswd");
    // Cheaper than BCRYPT_COST, as lines added with htpasswd's default cost (5) are.
    let ok = Command::new("htpasswd")
        .args(["-bB", "-C", "4"])
        .arg(&htpasswd)
        .args(["cheap", "cheap-pass-1"])
        .status()
        .expect("htpasswd (apache2-utils)");
    assert!(ok.success());
    assert_eq!(
        app.create_user("dear", "dear-pass-11", "user").status(),
        201
    );
    let verifications = |user: &str| {
        let before = metric(app, VERIFY);
        let s = app
            .get("/images")
            .basic_auth(user, Some("wrong-password"))
            .send()
            .unwrap()
            .status();
        assert_eq!(s, 401, "{user}");
        metric(app, VERIFY) - before
    };
    // Work is counted in bcrypt runs rather than timed: an unknown name and a name at
    // BCRYPT_COST each cost one run at that cost; the cheap line costs its own run and then
    // one at BCRYPT_COST, so it can never answer faster than an unknown name.
    assert_eq!(verifications("nobody-here"), 1.0);
    assert_eq!(verifications("dear"), 1.0);
    assert_eq!(verifications("cheap"), 2.0);
    assert_eq!(
        app.get("/images")
            .basic_auth("cheap", Some("cheap-pass-1"))
            .send()
            .unwrap()
            .status(),
        200,
        "the cheap line still works with its password"
    );
}
