//! Start-up: settings, the bootstrap admin and its recovery path.

use crate::common;

use std::process::Command;

use common::{AppEnv, Registry, json};
use reqwest::Method;

#[test]
fn bad_settings_stop_start_up_with_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("BIND_ADDR", "not-an-address"),
        ("REGISTRY_URL", "ftp://registry"),
        ("BCRYPT_COST", "40"),
        ("ADMIN_PASSWORD", "short"),
        ("TOKEN_TTL", "59"),
        ("TOKEN_TTL", "86401"),
        ("TOKEN_TTL", "9223372036854775807"),
        ("EVENTS_TOKEN", "only-twenty-chars-xx"),
        ("TOKEN_SECRET", "thirty-one-characters-long-xxxx"),
    ] {
        let (code, stderr) = AppEnv::new(dir.path(), "http://127.0.0.1:1")
            .set(var, value)
            .run_to_exit();
        assert_eq!(code, Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(
            !stderr.contains(value) || var != "ADMIN_PASSWORD",
            "the bad password was echoed"
        );
    }
    assert!(
        !dir.path().join("auth/htpasswd").exists(),
        "nothing written on a bad setting"
    );
}

#[test]
fn a_generated_admin_password_is_printed_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let env = AppEnv::new(dir.path(), "http://127.0.0.1:1").unset("ADMIN_PASSWORD");
    let app = env.start();
    let stderr = app.stderr();
    let password = stderr
        .lines()
        .find_map(|l| l.split("with password: ").nth(1))
        .unwrap_or_else(|| panic!("no generated password in: {stderr}"))
        .trim()
        .to_string();
    assert!(password.len() >= 16);
    let ok = app
        .get("/users")
        .basic_auth("admin", Some(&password))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    drop(app);

    let again = env.start();
    let resp = again
        .get("/users")
        .basic_auth("admin", Some(&password))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "the password survives a restart");
    assert!(
        !again.stderr().contains("password"),
        "printed a second time: {}",
        again.stderr()
    );
}

#[test]
fn admin_password_recovers_an_admin_removed_by_hand_and_the_registry_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = AppEnv::new(dir.path(), "http://127.0.0.1:1");
    drop(env.start());
    let htpasswd = dir.path().join("auth/htpasswd");
    let ok = Command::new("htpasswd")
        .arg("-D")
        .arg(&htpasswd)
        .arg("admin")
        .status()
        .unwrap();
    assert!(ok.success());

    let env = env.set("ADMIN_PASSWORD", "recovered-pass-1");
    let app = env.start();
    let registry = Registry::start(dir.path(), &htpasswd);
    assert_eq!(registry.status_for("admin", "recovered-pass-1"), 200);
    let (status, body) = json(
        app.request(Method::GET, "/users/admin")
            .basic_auth("admin", Some("recovered-pass-1"))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, &body["role"]),
        (200, &serde_json::json!("admin")),
        "{body}"
    );

    // With an enabled admin present, the settings change nothing.
    drop(app);
    let app = env.set("ADMIN_PASSWORD", "ignored-pass-1").start();
    assert_eq!(registry.status_for("admin", "recovered-pass-1"), 200);
    assert_eq!(registry.status_for("admin", "ignored-pass-1"), 401);
    drop(app);
}

#[test]
fn given_registry_credentials_retire_the_old_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let env = AppEnv::new(dir.path(), "http://127.0.0.1:1");
    drop(env.start());
    let htpasswd = dir.path().join("auth/htpasswd");
    assert!(
        std::fs::read_to_string(&htpasswd)
            .unwrap()
            .contains("registry-admin:")
    );
    let app = env
        .set("REGISTRY_USERNAME", "admin")
        .set("REGISTRY_PASSWORD", common::ADMIN_PASSWORD)
        .start();
    let text = std::fs::read_to_string(&htpasswd).unwrap();
    assert!(!text.contains("registry-admin:"), "{text}");
    assert!(text.contains("admin:"));
    let (status, _) = json(
        app.as_admin(Method::GET, "/users/registry-admin")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 404);
}
