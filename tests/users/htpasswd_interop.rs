//! Interop with Apache's `htpasswd` tool, both ways, checked at registry:2 and at our API.

use crate::common;

use std::process::Command;

use common::{Stack, json, usernames};
use reqwest::Method;

fn htpasswd_tool(args: &[&str]) -> bool {
    Command::new("htpasswd")
        .args(args)
        .output()
        .expect("htpasswd from apache2-utils must be installed (the test command installs it)")
        .status
        .success()
}

#[test]
fn users_added_by_the_tool_are_listed_as_users_and_usable() {
    let stack = Stack::start();
    let file = stack.htpasswd_path();
    let file = file.to_str().unwrap();
    assert!(htpasswd_tool(&["-bB", file, "tooluser", "tool-pass-1"]));

    let (status, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/users/tooluser")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "user");
    assert_eq!(body["disabled"], false);
    assert_eq!(body["created_at"], serde_json::Value::Null);

    // It can authenticate to the API (a user may not list users: 403, not 401) ...
    let resp = stack
        .app
        .get("/users")
        .basic_auth("tooluser", Some("tool-pass-1"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);
    // ... and change its own password through it, which registry:2 then enforces.
    let resp = stack
        .app
        .request(Method::PUT, "/users/tooluser/password")
        .basic_auth("tooluser", Some("tool-pass-1"))
        .json(&serde_json::json!({"password": "tool-pass-2", "current_password": "tool-pass-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(stack.registry.status_for("tooluser", "tool-pass-2"), 200);
    assert!(htpasswd_tool(&["-vb", file, "tooluser", "tool-pass-2"]));
}

#[test]
fn our_hashes_verify_with_the_tool_and_its_edits_keep_ours() {
    let stack = Stack::start();
    let file = stack.htpasswd_path();
    let file = file.to_str().unwrap();
    assert_eq!(
        stack
            .app
            .create_user("ours", "ours-pass-1", "admin")
            .status(),
        201
    );
    assert!(htpasswd_tool(&["-vb", file, "ours", "ours-pass-1"]));
    assert!(!htpasswd_tool(&["-vb", file, "ours", "wrong-pass-1"]));

    // The tool rewrites the file in place when it adds or removes users.
    assert!(htpasswd_tool(&["-bB", file, "theirs", "theirs-pass-1"]));
    assert!(htpasswd_tool(&["-bB", file, "gone", "gone-pass-1"]));
    assert!(htpasswd_tool(&["-D", file, "gone"]));
    assert_eq!(stack.registry.status_for("ours", "ours-pass-1"), 200);
    let (_, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/users/ours")
            .send()
            .unwrap(),
    );
    assert_eq!(
        body["role"], "admin",
        "metadata survives the tool's rewrite"
    );

    // A comment by hand, then our next write: both their lines and the comment stay.
    let mut text = stack.htpasswd();
    text.insert_str(0, "# managed partly by hand\n");
    std::fs::write(stack.htpasswd_path(), &text).unwrap();
    assert_eq!(
        stack
            .app
            .create_user("later", "later-pass-1", "user")
            .status(),
        201
    );
    let text = stack.htpasswd();
    assert!(text.starts_with("# managed partly by hand\n"), "{text}");
    assert!(text.ends_with('\n'));
    assert_eq!(stack.registry.status_for("theirs", "theirs-pass-1"), 200);
    assert_eq!(stack.registry.status_for("later", "later-pass-1"), 200);
    let names = usernames(&stack.app);
    assert!(
        names.contains(&"theirs".to_string()) && !names.contains(&"gone".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_user_removed_by_hand_loses_api_access_and_one_added_back_is_enabled() {
    let stack = Stack::start();
    let file = stack.htpasswd_path();
    let file = file.to_str().unwrap();
    assert_eq!(
        stack
            .app
            .create_user("erin", "erin-pass-1", "user")
            .status(),
        201
    );
    // A user may not list users: 403 proves the credentials passed, 401 that they did not.
    let erin_lists = || {
        stack
            .app
            .get("/users")
            .basic_auth("erin", Some("erin-pass-1"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(erin_lists(), 403, "cached from here on");
    assert!(htpasswd_tool(&["-D", file, "erin"]));
    assert_eq!(
        erin_lists(),
        401,
        "the cache must not outlive the htpasswd line"
    );
    assert!(htpasswd_tool(&["-bB", file, "erin", "erin-pass-1"]));
    assert_eq!(erin_lists(), 403);
}
