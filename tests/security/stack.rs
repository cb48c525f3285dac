//! Tokens, brute-force throttling, client addresses behind proxies, hostile input, and a crawl
//! for secrets in every response, log line and audit entry.

use crate::common;

use common::{ADMIN_PASSWORD, EVENTS_TOKEN, Stack, json};
use reqwest::Method;
use serde_json::{Value, json};

fn token(stack: &Stack, user: &str, password: &str) -> String {
    let (status, body) = json(
        stack
            .app
            .request(Method::POST, "/auth/token")
            .basic_auth(user, Some(password))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    body["token"].as_str().unwrap().to_string()
}

fn with_bearer(stack: &Stack, token: &str, method: Method, path: &str) -> u16 {
    stack
        .app
        .request(method, path)
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn bearer_tokens_carry_roles_and_die_with_the_account_state() {
    let stack = Stack::start();
    let app = &stack.app;
    let admin = token(&stack, "admin", ADMIN_PASSWORD);
    assert_eq!(with_bearer(&stack, &admin, Method::GET, "/users"), 200);
    assert_eq!(
        app.create_user("tina", "tina-pass-11", "user").status(),
        201
    );
    let tina = token(&stack, "tina", "tina-pass-11");
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/users"),
        403,
        "roles apply to tokens"
    );
    assert_eq!(with_bearer(&stack, &tina, Method::GET, "/images"), 200);
    assert_eq!(
        with_bearer(&stack, "ra1.garbage.token", Method::GET, "/images"),
        401
    );
    let resp = app
        .request(Method::POST, "/auth/token")
        .bearer_auth(&tina)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400, "a token cannot mint tokens");

    // Promotion and demotion both end the old token.
    let set_role = |role: &str| {
        let r = app
            .as_admin(Method::PUT, "/users/tina/role")
            .json(&json!({"role": role}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    set_role("admin");
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/images"),
        401,
        "role change"
    );
    let tina = token(&stack, "tina", "tina-pass-11");
    assert_eq!(with_bearer(&stack, &tina, Method::GET, "/users"), 200);
    set_role("user");
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/images"),
        401,
        "demotion"
    );

    let tina = token(&stack, "tina", "tina-pass-11");
    let r = app
        .as_admin(Method::PUT, "/users/tina/password")
        .json(&json!({"password": "tina-pass-22"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/images"),
        401,
        "password change"
    );

    let tina = token(&stack, "tina", "tina-pass-22");
    assert_eq!(
        app.as_admin(Method::POST, "/users/tina/disable")
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/images"),
        401,
        "disabled"
    );
    assert_eq!(
        app.as_admin(Method::POST, "/users/tina/enable")
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/images"),
        401,
        "a token issued before a disable never works again, not even after enable"
    );
    assert_eq!(
        app.as_admin(Method::DELETE, "/users/tina")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        with_bearer(&stack, &tina, Method::GET, "/images"),
        401,
        "deleted"
    );
}

#[test]
fn tokens_last_token_ttl_seconds() {
    let stack = Stack::start_with(|env| env.set("TOKEN_TTL", "60"));
    let before = chrono::Utc::now().timestamp();
    let resp = stack
        .app
        .request(Method::POST, "/auth/token")
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    let (_, body) = json(resp);
    let expires = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(
        (before + 59..=before + 62).contains(&expires),
        "{expires} vs {before}"
    );
}

fn login(stack: &Stack, from: &str, user: &str, password: &str) -> reqwest::blocking::Response {
    stack
        .app
        .get("/users/admin")
        .header("X-Forwarded-For", from)
        .basic_auth(user, Some(password))
        .send()
        .unwrap()
}

#[test]
fn failed_logins_are_throttled_per_address_and_username_only() {
    let stack = Stack::start_with(|env| env.set("TRUSTED_PROXIES", "127.0.0.1"));
    assert_eq!(
        stack
            .app
            .create_user("vic", "vic-pass-111", "admin")
            .status(),
        201
    );
    let attacker = "198.51.100.7";
    for i in 0..10 {
        assert_eq!(
            login(&stack, attacker, "vic", &format!("guess-{i:04}")).status(),
            401,
            "attempt {i}"
        );
    }
    let resp = login(&stack, attacker, "vic", "vic-pass-111");
    assert_eq!(
        resp.status(),
        429,
        "even the right password, from that address"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    let (_, body) = json(resp);
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(login(&stack, attacker, "vic", "vic-pass-111").status(), 429);

    // vic from elsewhere, and others from the attacker's address, are not locked out.
    assert_eq!(
        login(&stack, "203.0.113.20", "vic", "vic-pass-111").status(),
        200
    );
    assert_eq!(
        login(&stack, attacker, "admin", ADMIN_PASSWORD).status(),
        200
    );

    // The audit log has the failures with the forwarded address, and one throttled entry.
    let (_, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/audit?action=auth.failure&limit=1000")
            .send()
            .unwrap(),
    );
    let entries = body["entries"].as_array().unwrap();
    let vic: Vec<&Value> = entries.iter().filter(|e| e["actor"] == "vic").collect();
    assert_eq!(
        vic.len(),
        11,
        "10 failures and one throttled attempt: {vic:?}"
    );
    assert!(vic.iter().all(|e| e["remote_addr"] == attacker));
    assert_eq!(vic.iter().filter(|e| e["status"] == 429).count(), 1);

    // What the client claims left of the address our proxy saw does not count, and a
    // malformed claim does not hide the real address.
    let r = login(
        &stack,
        "not-an-ip, 6.6.6.6, 198.51.100.99",
        "walt",
        "walt-pass-11",
    );
    assert_eq!(r.status(), 401);
    let (_, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/audit?user=walt")
            .send()
            .unwrap(),
    );
    assert_eq!(body["entries"][0]["remote_addr"], "198.51.100.99");
}

#[test]
fn an_address_spraying_usernames_is_throttled_and_spoofed_forwarding_is_ignored() {
    // No trusted proxies: X-Forwarded-For is the client's word and is ignored.
    let stack = Stack::start();
    for i in 0..50 {
        let from = format!("192.0.2.{i}");
        assert_eq!(
            login(&stack, &from, &format!("spray{i}"), "spray-pass-1").status(),
            401,
            "{i}"
        );
    }
    let resp = login(&stack, "192.0.2.200", "spray-last", "spray-pass-1");
    assert_eq!(
        resp.status(),
        429,
        "the 51st: all of it came from 127.0.0.1"
    );
    let resp = login(&stack, "192.0.2.201", "admin", ADMIN_PASSWORD);
    assert_eq!(resp.status(), 429, "even the right password");
}

#[test]
fn hostile_paths_and_queries_are_400_and_touch_nothing() {
    let stack = Stack::start();
    let before = (
        stack.htpasswd(),
        std::fs::read(stack.users_json_path()).unwrap(),
    );
    for (m, p) in [
        (Method::DELETE, "/users/..%2Fadmin"),
        (Method::DELETE, "/users/%2E%2E%2Fusers.json"),
        (Method::POST, "/users/admin%0A/disable"),
        (Method::PUT, "/users/admin%00/role"),
        (Method::GET, "/users/%C3%A9"),
    ] {
        let (status, body) = json(
            stack
                .app
                .as_admin(m.clone(), p)
                .json(&json!({"role": "user"}))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 400, "{m} {p}: {body}");
    }
    let long = "x".repeat(10_000);
    for q in [
        format!("/audit?user={long}"),
        "/audit?limit=99999999999999999999999".to_string(),
        format!("/images/app/tags?last={long}"),
        "/images/app/tags?n=-1".to_string(),
    ] {
        let (status, _) = json(stack.app.as_admin(Method::GET, &q).send().unwrap());
        assert_eq!(status, 400, "{}", &q[..q.len().min(60)]);
    }
    assert_eq!(
        (
            stack.htpasswd(),
            std::fs::read(stack.users_json_path()).unwrap()
        ),
        before
    );
}

#[test]
fn no_secret_in_any_response_log_line_or_audit_entry() {
    let stack = Stack::start();
    let app = &stack.app;
    let user_pass = "crawl-pass-1234";
    assert_eq!(app.create_user("crawler", user_pass, "user").status(), 201);
    let admin_token = token(&stack, "admin", ADMIN_PASSWORD);
    let user_token = token(&stack, "crawler", user_pass);
    let r = app
        .as_admin(Method::PUT, "/users/crawler/password")
        .json(&json!({"password": "crawl-pass-5678"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .get("/users")
        .basic_auth("crawler", Some("wrong-crawl-pass"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    let mut bodies = String::new();
    for path in [
        "/health",
        "/health/live",
        "/health/ready",
        "/users",
        "/users/admin",
        "/users/crawler",
        "/users/registry-admin",
        "/images",
        "/audit?limit=1000",
        "/audit/verify",
    ] {
        for auth in [Some("basic"), Some("bearer"), None] {
            let mut req = app.get(path);
            req = match auth {
                Some("basic") => req.basic_auth("admin", Some(ADMIN_PASSWORD)),
                Some(_) => req.bearer_auth(&admin_token),
                None => req,
            };
            let resp = req.send().unwrap();
            for (k, v) in resp.headers() {
                bodies.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("")));
            }
            bodies.push_str(&resp.text().unwrap());
        }
    }
    let htpasswd = stack.htpasswd();
    let hashes: Vec<&str> = htpasswd
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, h)| h))
        .collect();
    let audit = std::fs::read_to_string(stack.audit_path()).unwrap();
    let stderr = app.stderr();
    let mut secrets = vec![
        ADMIN_PASSWORD,
        user_pass,
        "crawl-pass-5678",
        "wrong-crawl-pass",
        EVENTS_TOKEN,
    ];
    secrets.push(&admin_token);
    secrets.push(&user_token);
    secrets.extend(hashes.iter().copied());
    for s in secrets {
        let short: String = s.chars().take(12).collect();
        assert!(!bodies.contains(s), "a response holds {short}…");
        assert!(!audit.contains(s), "the audit log holds {short}…");
        assert!(!stderr.contains(s), "the log holds {short}…");
    }
    assert!(stderr.contains("request_id="), "the crawl was logged");
}
