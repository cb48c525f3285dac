//! The files on disk under hand edits, symlinks and crashes, and readiness against a registry
//! that hangs: the real binary, and the real registry:2 where registry behaviour is claimed.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{AppEnv, Registry, Stack, json};
use reqwest::Method;
use serde_json::Value;

/// A client that gives up long before anything in the app would: an answer at all proves
/// `/health/ready` did not wait for the registry's 10 s timeout.
fn impatient() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

fn ready(url: &str) -> (u16, Value) {
    json(
        impatient()
            .get(format!("{url}/health/ready"))
            .send()
            .expect("/health/ready answers within 5 s"),
    )
}

fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn a_garbage_line_in_htpasswd_is_503_htpasswd_invalid_naming_the_line_until_it_is_fixed() {
    let stack = Stack::start();
    let good = stack.htpasswd();
    let line = good.lines().count() + 1;
    std::fs::write(
        stack.htpasswd_path(),
        format!("{good}this-line-has-no-colon\n"),
    )
    .unwrap();

    let (status, body) = json(stack.app.as_admin(Method::GET, "/users").send().unwrap());
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("htpasswd_invalid")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&format!("line {line}:")), "{message}");
    assert!(!message.contains("this-line"), "no file content: {message}");
    // Even credentials that could never pass get 503, not a 401 from an empty account list.
    let (status, _) = json(
        stack
            .app
            .get("/users")
            .basic_auth("nobody", Some("whatever"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 503);

    let (status, body) = ready(&stack.app.url);
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["checks"]["htpasswd"],
        format!("line {line}: invalid entry (no ':' separator)")
    );

    std::fs::write(stack.htpasswd_path(), &good).unwrap();
    let (status, body) = json(stack.app.as_admin(Method::GET, "/users").send().unwrap());
    assert_eq!(status, 200, "{body}");
    let (status, body) = ready(&stack.app.url);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_deleted_htpasswd_serves_no_stale_accounts_and_is_not_recreated_by_a_write() {
    let stack = Stack::start();
    let good = stack.htpasswd();
    assert_eq!(
        stack.app.create_user("kai", "kai-pass-11", "user").status(),
        201
    );
    let good_with_kai = stack.htpasswd();
    assert!(good_with_kai.len() > good.len());
    std::fs::remove_file(stack.htpasswd_path()).unwrap();

    let (status, body) = json(stack.app.as_admin(Method::GET, "/users").send().unwrap());
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("htpasswd_invalid")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    let (status, body) = ready(&stack.app.url);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["htpasswd"]
            .as_str()
            .unwrap()
            .starts_with("the file is missing"),
        "{body}"
    );
    // A write does not quietly start a new file holding only the new user.
    let resp = stack.app.create_user("lea", "lea-pass-11", "user");
    assert_eq!(resp.status(), 503);
    assert!(!stack.htpasswd_path().exists());

    std::fs::write(stack.htpasswd_path(), &good_with_kai).unwrap();
    let names = common::usernames(&stack.app);
    assert!(names.contains(&"kai".to_string()), "{names:?}");
}

#[test]
fn a_hand_broken_users_json_is_reported_by_readiness_by_position_only() {
    let stack = Stack::start();
    let good = std::fs::read(stack.users_json_path()).unwrap();
    std::fs::write(
        stack.users_json_path(),
        "{\n  \"users\": \"$2y$04$pasted\"\n",
    )
    .unwrap();
    let (status, body) = ready(&stack.app.url);
    assert_eq!(status, 503, "{body}");
    let reason = body["checks"]["htpasswd"].as_str().unwrap();
    assert!(reason.starts_with("users.json: invalid JSON"), "{body}");
    assert!(reason.contains("line 2"), "{body}");
    assert!(!reason.contains("pasted"), "{body}");
    std::fs::write(stack.users_json_path(), good).unwrap();
    let (status, body) = ready(&stack.app.url);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_symlinked_htpasswd_is_written_through_and_stays_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(dir.path().join("auth")).unwrap();
    let link = dir.path().join("auth/htpasswd");
    let target = real.join("htpasswd");
    // Dangling at first start: the bootstrap creates the target, not a file in its place.
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let meta_link = dir.path().join("auth/users.json");
    std::os::unix::fs::symlink("../real/users.json", &meta_link).unwrap();

    // The registry's port is picked before registry-admin starts; both start again on a new
    // one if another process takes it first.
    let (app, registry) = common::on_free_port(|port| {
        let app = AppEnv::new(dir.path(), &format!("http://127.0.0.1:{port}")).start();
        let registry = Registry::try_start_on(dir.path(), &target, port, None)?;
        Ok((app, registry))
    });
    assert_eq!(app.create_user("sym", "sym-pass-11", "user").status(), 201);

    assert!(is_link(&link), "HTPASSWD_PATH is still a symlink");
    assert!(is_link(&meta_link), "users.json is still a symlink");
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("sym:$2y$")
    );
    assert!(
        std::fs::read_to_string(real.join("users.json"))
            .unwrap()
            .contains("\"sym\"")
    );
    assert_eq!(registry.status_for("sym", "sym-pass-11"), 200);
    let leftovers: Vec<_> = std::fs::read_dir(&real)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn temp_files_left_by_a_crash_beside_htpasswd_are_gone_after_start() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth");
    std::fs::create_dir_all(&auth).unwrap();
    // Names as earlier versions (`.tmp-` and six characters) and this one make them.
    let leftovers = [
        ".tmp-Xk3pQ9",
        ".tmp-htpasswd.a1B2c3",
        ".tmp-users.json.Zz9Yy8",
    ];
    for name in leftovers {
        std::fs::write(auth.join(name), "admin:$2y$04$half-written").unwrap();
    }
    std::fs::write(auth.join(".tmp-notes"), "someone else's").unwrap();

    let app = AppEnv::new(dir.path(), "http://127.0.0.1:9").start();
    for name in leftovers {
        assert!(!auth.join(name).exists(), "{name} removed");
    }
    assert!(auth.join(".tmp-notes").exists(), "not ours, kept");
    assert!(auth.join("htpasswd").exists());
    assert!(
        app.stderr().contains("left behind by an interrupted write"),
        "{}",
        app.stderr()
    );
}

#[test]
fn readiness_answers_when_the_registry_accepts_connections_but_never_replies() {
    let dir = tempfile::tempdir().unwrap();
    // Never accepted: the kernel completes the handshake and the request sits unanswered.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    let app = AppEnv::new(dir.path(), &url).start();

    let (status, body) = ready(&app.url);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "fail");
    assert_eq!(body["checks"]["registry"], "registry timed out", "{body}");
    assert_eq!(body["checks"]["htpasswd"], "ok", "{body}");
    drop(hung);
}

/// One request a fake registry saw: its path and whether it carried credentials.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A stand-in for registry:2 that answers every request 401, as registry:2 answers one without
/// credentials, and records what it was sent.
fn fake_registry() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut with_auth = false;
            for _ in 0..100 {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                with_auth |= header.to_ascii_lowercase().starts_with("authorization:");
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            record.lock().unwrap().push((path, with_auth));
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"fake\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, seen)
}

#[test]
fn readiness_probes_the_registry_without_credentials_so_it_costs_no_bcrypt() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = fake_registry();
    let app = AppEnv::new(dir.path(), &url).start();
    for _ in 0..3 {
        let (status, body) = ready(&app.url);
        assert_eq!(status, 200, "a 401 means reachable: {body}");
    }
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().filter(|(path, _)| path == "/v2/").count() >= 3,
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|(_, with_auth)| !with_auth),
        "no request carried credentials: {seen:?}"
    );
}

#[test]
fn readiness_reports_a_service_account_removed_from_htpasswd() {
    let stack = Stack::start();
    let text: String = stack
        .htpasswd()
        .lines()
        .filter(|l| !l.starts_with("registry-admin:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(stack.htpasswd_path(), text).unwrap();
    let (status, body) = ready(&stack.app.url);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["registry"]
            .as_str()
            .unwrap()
            .contains("rejects"),
        "{body}"
    );
}
