//! Issue 23's authentication findings, in-process where no registry is needed: other people's
//! failures must not lock out valid tokens, passwords past 72 bytes fail at login, costs
//! converge on BCRYPT_COST, writes from other sites are refused, and exposed key files are
//! named at start.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::test::{self, TestRequest};
use chrono::Utc;
use serde_json::Value;

use common::AppEnv;
use common::in_process::{TestApp, basic, bearer};
use registry_admin::app;
use registry_admin::names::Role;
use registry_admin::users::htpasswd::bcrypt_hash;

const EVENTS_TOKEN: &str = "events-token-0123456789abcdef0123456789";
/// Every request of these tests comes from here unless it says otherwise.
const PEER: &str = "203.0.113.7:40000";

/// `admin` and the user-role `ursula` (passwords `NAME-password`, hashed at `cost`), BCRYPT_COST
/// 4, an EVENTS_TOKEN, a registry that refuses connections; token mode when `token_mode`.
fn test_app(cost: u32, token_mode: bool) -> TestApp {
    let app = TestApp::new()
        .with_users(cost)
        .with_env("EVENTS_TOKEN", EVENTS_TOKEN);
    if token_mode {
        app.token_mode().build()
    } else {
        app.build()
    }
}

impl TestApp {
    /// The audit entries written so far (closes the log: call once, at the end).
    fn audit_entries(&self) -> Vec<Value> {
        self.audit.close();
        std::fs::read_to_string(&self.state.config.audit_log_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn htpasswd_line(&self, user: &str) -> String {
        std::fs::read_to_string(&self.state.config.htpasswd_path)
            .unwrap()
            .lines()
            .find(|l| l.starts_with(&format!("{user}:")))
            .unwrap()
            .to_string()
    }
}

fn from_peer(req: TestRequest) -> TestRequest {
    req.peer_addr(PEER.parse().unwrap())
}

/// Status and JSON body (`Null` when there is none).
async fn read<B: MessageBody>(resp: ServiceResponse<B>) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = test::read_body(resp).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

macro_rules! service {
    ($t:expr) => {
        test::init_service(app($t.state.clone())).await
    };
}

/// One request from `PEER` through an initialised service: its status and JSON body.
macro_rules! send_from_peer {
    ($service:expr, $req:expr $(,)?) => {
        read(test::call_service($service, from_peer($req).to_request()).await).await
    };
}

// ---------- point 1: other people's failures ----------

#[actix_web::test]
async fn garbage_bearer_tokens_from_an_address_never_lock_out_a_valid_token_from_it() {
    let t = test_app(4, false);
    let s = service!(t);
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::post()
            .uri("/auth/token")
            .insert_header(basic("admin", "admin-password")),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    // More than the pair limit (10) and the address limit (50), garbage and malformed alike.
    for i in 0..60 {
        let auth = if i % 2 == 0 {
            bearer(&format!("ra1.garbage.{i}"))
        } else {
            (header::AUTHORIZATION, format!("Digest nonsense{i}"))
        };
        let (status, body) =
            send_from_peer!(&s, TestRequest::get().uri("/users").insert_header(auth));
        assert_eq!(status, 401, "attempt {i}: {body}");
        assert_eq!(body["error"], "unauthorized");
    }
    // Password guessing from the same address, past the address limit too.
    for i in 0..55 {
        let (status, _) = send_from_peer!(
            &s,
            TestRequest::get()
                .uri("/users")
                .insert_header(basic(&format!("guess{i}"), "wrong-password")),
        );
        assert!(status == 401 || status == 429, "{status}");
    }
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/users")
            .insert_header(bearer(&token)),
    );
    assert_eq!(status, 200, "the web UI's token still works: {body}");
    // Password guessing itself stays throttled.
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/users")
            .insert_header(basic("admin", "admin-password")),
    );
    assert_eq!(
        status, 429,
        "the address is past 50 failed passwords: {body}"
    );

    // The 60 token failures are audited within the burst rule: ten one by one, the rest left
    // out (and counted by the next entry written after a quiet minute).
    let entries = t.audit_entries();
    let token_failures = entries
        .iter()
        .filter(|e| e["action"] == "auth.failure" && e["actor"] == "")
        .count();
    assert_eq!(token_failures, 10, "{entries:#?}");
}

#[actix_web::test]
async fn wrong_events_tokens_never_hold_up_the_registrys_notifications() {
    let t = test_app(4, false);
    let s = service!(t);
    let events = |token: &str| {
        TestRequest::post()
            .uri("/events")
            .insert_header(bearer(token))
            .insert_header((
                header::CONTENT_TYPE,
                "application/vnd.docker.distribution.events.v1+json",
            ))
            .set_payload(r#"{"events":[]}"#)
    };
    for i in 0..30 {
        let (status, body) = send_from_peer!(&s, events(&format!("wrong-{i}")));
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, body) = send_from_peer!(&s, events(EVENTS_TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recorded"], 0);
    let entries = t.audit_entries();
    let refusals: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "auth.failure")
        .collect();
    assert_eq!(refusals.len(), 10, "burst-bounded: {refusals:#?}");
    assert_eq!(refusals[0]["detail"], "wrong EVENTS_TOKEN on /events");
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains(EVENTS_TOKEN)
    );
}

// ---------- point 12: passwords past 72 bytes ----------

#[actix_web::test]
async fn a_password_over_72_bytes_fails_at_login_although_its_first_72_bytes_are_right() {
    let long = "L".repeat(72);
    let t = test_app(4, true);
    {
        let hash = bcrypt_hash(&long, 4).unwrap();
        t.state
            .store
            .modify(|a| a.create("lana", &hash, Role::User, None, Utc::now()))
            .unwrap();
    }
    let s = service!(t);
    let too_long = format!("{long}-and-more");
    let (status, _) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/images/x/tags")
            .insert_header(basic("lana", &too_long)),
    );
    assert_eq!(status, 401, "API Basic");
    let (status, _) = send_from_peer!(
        &s,
        TestRequest::post()
            .uri("/auth/token")
            .insert_header(basic("lana", &too_long)),
    );
    assert_eq!(status, 401, "POST /auth/token");
    let (status, _) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/token?service=registry")
            .insert_header(basic("lana", &too_long)),
    );
    assert_eq!(status, 401, "GET /token");
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/token?service=registry")
            .insert_header(basic("lana", &long)),
    );
    assert_eq!(status, 200, "exactly 72 bytes is a password: {body}");
}

// ---------- point 5: costs ----------

#[actix_web::test]
async fn a_login_re_hashes_a_password_of_another_cost_at_bcrypt_cost_and_keeps_the_epoch() {
    // Stored at cost 5; BCRYPT_COST is 4.
    let t = test_app(5, false);
    assert!(t.htpasswd_line("ursula").starts_with("ursula:$2y$05$"));
    let epoch = t.state.store.current().unwrap().token_epoch("ursula");
    let s = service!(t);
    let login = || {
        TestRequest::get()
            .uri("/users/ursula/grants")
            .insert_header(basic("ursula", "ursula-password"))
    };
    let (status, body) = send_from_peer!(&s, login());
    assert_eq!(status, 200, "{body}");
    let line = t.htpasswd_line("ursula");
    assert!(line.starts_with("ursula:$2y$04$"), "{line}");
    assert!(
        t.htpasswd_line("admin").starts_with("admin:$2y$05$"),
        "only who logged in"
    );
    assert_eq!(
        t.state.store.current().unwrap().token_epoch("ursula"),
        epoch,
        "the same password: tokens are not ended by the epoch"
    );
    let mode = std::fs::metadata(&t.state.config.htpasswd_path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "written the usual way");
    // The new hash holds the same password, and the remembered check still answers.
    for _ in 0..2 {
        assert_eq!(send_from_peer!(&s, login()).0, 200);
    }
    let (status, _) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/users/ursula/grants")
            .insert_header(basic("ursula", "wrong-password")),
    );
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn failures_cost_as_much_as_the_costliest_hash_in_the_file() {
    let t = test_app(4, false);
    let verifier = &t.state.auth.verifier;
    assert_eq!(verifier.failure_cost(&t.state.store.current().unwrap()), 4);
    let hash = bcrypt_hash("dear-password", 7).unwrap();
    t.state
        .store
        .modify(|a| a.create("dear", &hash, Role::User, None, Utc::now()))
        .unwrap();
    assert_eq!(
        verifier.failure_cost(&t.state.store.current().unwrap()),
        7,
        "an unknown name is checked against a dummy as costly as dear's hash"
    );
    // A hand-made line at an absurd cost does not make every failure take minutes.
    let mut text = std::fs::read_to_string(&t.state.config.htpasswd_path).unwrap();
    text.push_str(
        &hash
            .replacen("$07$", "$25$", 1)
            .replace("$2y$", "absurd:$2y$"),
    );
    text.push('\n');
    std::fs::write(&t.state.config.htpasswd_path, text).unwrap();
    assert_eq!(
        verifier.failure_cost(&t.state.store.current().unwrap()),
        registry_admin::auth::verify::MAX_FAILURE_COST
    );
}

// ---------- point 6: what is immediate, and what the registry token TTL bounds ----------

#[actix_web::test]
async fn the_grants_overview_says_how_long_issued_registry_tokens_may_outlive_a_change() {
    for (token_mode, bound) in [(true, 300 + 60), (false, 0)] {
        let t = test_app(4, token_mode);
        let s = service!(t);
        let (status, body) = send_from_peer!(
            &s,
            TestRequest::get()
                .uri("/grants")
                .insert_header(basic("admin", "admin-password")),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["registry_token_bound_seconds"], bound, "{body}");
    }
}

// ---------- point 10: cross-site and non-JSON writes ----------

#[actix_web::test]
async fn a_write_from_another_origin_is_refused_and_changes_nothing() {
    let t = test_app(4, false);
    let s = service!(t);
    let disable = |origin: &str| {
        TestRequest::post()
            .uri("/users/ursula/disable")
            .insert_header((header::HOST, "admin.example:5001"))
            .insert_header((header::ORIGIN, origin.to_string()))
            .insert_header(basic("admin", "admin-password"))
    };
    for origin in ["http://evil.example", "http://admin.example:5002", "null"] {
        let (status, body) = send_from_peer!(&s, disable(origin));
        assert_eq!(status, 403, "{origin}: {body}");
        assert_eq!(body["error"], "forbidden");
    }
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/users/ursula")
            .insert_header((header::ORIGIN, "http://evil.example"))
            .insert_header(basic("admin", "admin-password")),
    );
    assert_eq!(status, 200, "reads are not refused");
    assert_eq!(body["disabled"], false, "nothing changed");
    let (status, body) = send_from_peer!(&s, disable("http://Admin.example:5001"));
    assert_eq!(status, 200, "its own origin: {body}");
    assert_eq!(body["disabled"], true);
    // The refusals are on record, as anonymous (credentials were never looked at).
    let entries = t.audit_entries();
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "user.disable" && e["status"] == 403)
        .collect();
    assert_eq!(refused.len(), 3, "{entries:#?}");
    assert!(
        refused
            .iter()
            .all(|e| e["actor"] == "" && e["outcome"] == "denied" && e["detail"] == "forbidden"),
        "{refused:#?}"
    );
}

#[actix_web::test]
async fn a_body_that_is_not_declared_json_is_refused_before_anything_runs() {
    let t = test_app(4, false);
    let s = service!(t);
    let gc = |content_type: Option<&str>, body: &str| {
        let mut r = TestRequest::post()
            .uri("/gc")
            .insert_header(basic("admin", "admin-password"))
            .set_payload(body.to_string());
        if let Some(ct) = content_type {
            r = r.insert_header((header::CONTENT_TYPE, ct));
        }
        r
    };
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, body) = send_from_peer!(&s, gc(ct, r#"{"dry_run":false}"#));
        assert_eq!(status, 400, "{ct:?}: {body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{body}"
        );
    }
    // Past the guard with JSON or no body at all: this instance has no REGISTRY_CONFIG.
    for (ct, payload) in [(Some("application/json; charset=utf-8"), "{}"), (None, "")] {
        let (status, body) = send_from_peer!(&s, gc(ct, payload));
        assert_eq!(status, 409, "{ct:?}: {body}");
        assert_eq!(body["error"], "gc_unavailable");
    }
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::put()
            .uri("/users/ursula/role")
            .insert_header(basic("admin", "admin-password"))
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .set_payload(r#"{"role":"admin"}"#),
    );
    assert_eq!(
        (status.as_u16(), &body["error"]),
        (400, &Value::from("invalid_request"))
    );
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::get()
            .uri("/users/ursula")
            .insert_header(basic("admin", "admin-password")),
    );
    assert_eq!(
        (status.as_u16(), &body["role"]),
        (200, &Value::from("user"))
    );
    // The registry's notifications keep their own type.
    let (status, body) = send_from_peer!(
        &s,
        TestRequest::post()
            .uri("/events")
            .insert_header(bearer(EVENTS_TOKEN))
            .insert_header((
                header::CONTENT_TYPE,
                "application/vnd.docker.distribution.events.v1+json",
            ))
            .set_payload(r#"{"events":[]}"#),
    );
    assert_eq!(status, 200, "{body}");
}

// ---------- point 11: file permissions at start ----------

/// Runs the binary with `env` and waits at most `limit` for it to exit by itself: its exit code
/// (`None` when it had to be killed, i.e. it started instead of refusing) and its stderr.
fn exit_within(env: AppEnv, limit: Duration) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_registry-admin"));
    cmd.env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start registry-admin");
    let mut pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
        text
    });
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, reader.join().unwrap_or_default())
}

#[test]
fn a_token_key_others_can_read_stops_start_up_naming_the_file_and_chmod() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("auth/token.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    let output = std::process::Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("openssl");
    assert!(output.status.success());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, stderr) = exit_within(
        AppEnv::new(dir.path(), "http://127.0.0.1:9")
            .set("AUTH_MODE", "token")
            .set("REGISTRY_TOKEN_KEY", &key.display().to_string()),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", key.display())),
        "{stderr}"
    );
    assert!(!dir.path().join("auth/htpasswd").exists(), "nothing set up");
    assert!(
        !dir.path().join("auth/token.crt").exists(),
        "nothing set up"
    );

    // The README's command, as written there, makes a key the service starts with.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(
            "(umask 077; openssl ecparam -name prime256v1 -genkey -noout -out auth/token.key)"
        ),
        "the README shows the command tested here"
    );
    let private = dir.path().join("private/token.key");
    std::fs::create_dir_all(private.parent().unwrap()).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("(umask 077; openssl ecparam -name prime256v1 -genkey -noout -out \"$1\")")
        .arg("sh")
        .arg(&private)
        .status()
        .unwrap();
    assert!(status.success());
    let mode = std::fs::metadata(&private).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let state = tempfile::tempdir().unwrap();
    let mut app = AppEnv::new(state.path(), "http://127.0.0.1:9")
        .set("AUTH_MODE", "token")
        .set("REGISTRY_TOKEN_KEY", &private.display().to_string())
        .start();
    assert_eq!(app.get("/health/live").send().unwrap().status(), 200);
    app.terminate(Duration::from_secs(10));
}

#[test]
fn an_htpasswd_others_can_read_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("auth/htpasswd");
    std::fs::create_dir_all(htpasswd.parent().unwrap()).unwrap();
    let hash = bcrypt_hash("admin-password", 4).unwrap();
    std::fs::write(&htpasswd, format!("admin:{hash}\n")).unwrap();
    std::fs::set_permissions(&htpasswd, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut app = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("HTPASSWD_PATH", &htpasswd.display().to_string())
        .start();
    let stderr = app.stderr();
    app.terminate(Duration::from_secs(10));
    assert!(
        stderr.contains(&format!("chmod 600 {}", htpasswd.display())),
        "{stderr}"
    );
    assert!(!stderr.contains(&hash), "no hash in the log");
}
