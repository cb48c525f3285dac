//! The grants API and the image endpoints following grants, against the real binary and a real
//! registry:2 in htpasswd mode.

use crate::common;

use common::images::one_image;
use common::{ADMIN_PASSWORD, OptionalJson, Stack, json};
use reqwest::Method;
use serde_json::{Value, json};

const ALICE: (&str, &str) = ("alice", "alice-pass-1");
const BOB: (&str, &str) = ("bob", "bob-pass-12");

fn start_with_users() -> Stack {
    let stack = Stack::start();
    for (name, password) in [ALICE, BOB] {
        assert_eq!(stack.app.create_user(name, password, "user").status(), 201);
    }
    stack
}

fn as_admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    json(
        stack
            .app
            .as_admin(method, path)
            .optional_json(body)
            .send()
            .unwrap(),
    )
}

fn as_user(
    stack: &Stack,
    (user, password): (&str, &str),
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = stack.app.as_user(method, path, user, password);
    json(req.optional_json(body).send().unwrap())
}

fn grants_file(stack: &Stack) -> Value {
    let text = std::fs::read_to_string(stack.dir.path().join("auth/grants.json"))
        .expect("grants.json exists");
    serde_json::from_str(&text).expect("grants.json is JSON")
}

fn error_code(body: &Value) -> Option<&str> {
    body["error"].as_str()
}

/// Audit entries with this action, oldest first.
fn audit_entries(stack: &Stack, action: &str) -> Vec<Value> {
    let (status, body) = as_admin(
        stack,
        Method::GET,
        &format!("/audit?action={action}&limit=100"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut entries = body["entries"].as_array().unwrap().clone();
    entries.reverse();
    entries
}

#[test]
fn user_grants_are_stored_normalised_replaced_and_refused_when_invalid() {
    let stack = start_with_users();
    let (status, body) = as_admin(&stack, Method::GET, "/grants", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"enforced_by_registry": false, "registry_token_bound_seconds": 0, "public": [], "everyone": [], "users": {}})
    );

    let (status, body) = as_admin(
        &stack,
        Method::PUT,
        "/users/alice/grants",
        Some(json!({"grants": [
            {"repository": "team/*", "actions": ["push"]},
            {"repository": "alice/**", "actions": ["delete", "pull", "delete"]}
        ]})),
    );
    assert_eq!(status, 200, "{body}");
    let stored = json!([
        {"repository": "team/*", "actions": ["pull", "push"]},
        {"repository": "alice/**", "actions": ["delete", "pull"]}
    ]);
    assert_eq!(body, json!({"user": "alice", "grants": stored}));
    assert_eq!(
        grants_file(&stack),
        json!({"users": {"alice": stored}, "everyone": [], "public": []})
    );

    // Readable by the admin and by alice herself, not by bob.
    for who in [None, Some(ALICE)] {
        let (status, body) = match who {
            None => as_admin(&stack, Method::GET, "/users/alice/grants", None),
            Some(u) => as_user(&stack, u, Method::GET, "/users/alice/grants", None),
        };
        assert_eq!(
            (status, body),
            (200, json!({"user": "alice", "grants": stored}))
        );
    }
    let (status, body) = as_user(&stack, BOB, Method::GET, "/users/alice/grants", None);
    assert_eq!((status, error_code(&body)), (403, Some("forbidden")));
    let (status, body) = as_user(&stack, BOB, Method::GET, "/users/bob/grants", None);
    assert_eq!((status, body), (200, json!({"user": "bob", "grants": []})));
    let (status, body) = as_admin(&stack, Method::GET, "/users/nobody/grants", None);
    assert_eq!((status, error_code(&body)), (404, Some("not_found")));

    // Every refusal leaves grants.json as it was.
    let before = std::fs::read(stack.dir.path().join("auth/grants.json")).unwrap();
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"repository": format!("r{i}"), "actions": ["pull"]}))
        .collect();
    let refusals: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/users/alice/grants",
            json!({"grants": [{"repository": "Team/*", "actions": ["pull"]}]}),
            400,
            "invalid_grant",
        ),
        (
            "/users/alice/grants",
            json!({"grants": [{"repository": "team/**/x", "actions": ["pull"]}]}),
            400,
            "invalid_grant",
        ),
        (
            "/users/alice/grants",
            json!({"grants": [{"repository": "team/*", "actions": ["pull", "admin"]}]}),
            400,
            "invalid_grant",
        ),
        (
            "/users/alice/grants",
            json!({"grants": many}),
            400,
            "invalid_grant",
        ),
        (
            "/users/alice/grants",
            json!({"grants": [], "extra": 1}),
            400,
            "invalid_request",
        ),
        (
            "/users/nobody/grants",
            json!({"grants": [{"repository": "x", "actions": ["pull"]}]}),
            404,
            "not_found",
        ),
        (
            "/users/registry-admin/grants",
            json!({"grants": [{"repository": "x", "actions": ["pull"]}]}),
            409,
            "protected_account",
        ),
        (
            "/users/-bad/grants",
            json!({"grants": []}),
            400,
            "invalid_username",
        ),
    ];
    for (path, body, want_status, want_code) in refusals {
        let (status, answer) = as_admin(&stack, Method::PUT, path, Some(body.clone()));
        assert_eq!(
            (status, error_code(&answer)),
            (want_status, Some(want_code)),
            "{path} {body}: {answer}"
        );
    }
    let (status, body) = as_user(
        &stack,
        ALICE,
        Method::PUT,
        "/users/alice/grants",
        Some(json!({"grants": [{"repository": "**", "actions": ["delete"]}]})),
    );
    assert_eq!((status, error_code(&body)), (403, Some("forbidden")));
    assert_eq!(
        std::fs::read(stack.dir.path().join("auth/grants.json")).unwrap(),
        before
    );

    // Replacing, not merging; an empty list removes the user's entry.
    let (status, body) = as_admin(
        &stack,
        Method::PUT,
        "/users/alice/grants",
        Some(json!({"grants": [{"repository": "only/this", "actions": ["pull"]}]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        grants_file(&stack)["users"],
        json!({"alice": [{"repository": "only/this", "actions": ["pull"]}]})
    );
    let (status, body) = as_admin(
        &stack,
        Method::PUT,
        "/users/bob/grants",
        Some(json!({"grants": []})),
    );
    assert_eq!((status, body), (200, json!({"user": "bob", "grants": []})));
    assert_eq!(grants_file(&stack)["users"].as_object().unwrap().len(), 1);

    let updates = audit_entries(&stack, "grants.update");
    let ok: Vec<&Value> = updates
        .iter()
        .filter(|e| e["outcome"] == "success")
        .collect();
    assert_eq!(ok.len(), 3, "{updates:#?}");
    assert_eq!(ok[0]["user"], "alice");
    assert_eq!(ok[0]["actor"], "admin");
    assert_eq!(ok[2]["user"], "bob");
    assert!(
        updates
            .iter()
            .any(|e| e["outcome"] == "failure" && e["detail"] == "invalid_grant"),
        "{updates:#?}"
    );
}

#[test]
fn everyone_and_public_lists_replace_and_show_in_get_grants() {
    let stack = start_with_users();
    let (status, body) = as_admin(
        &stack,
        Method::PUT,
        "/grants/everyone",
        Some(json!({"grants": [
            {"repository": "shared/**", "actions": ["pull"]},
            {"repository": "scratch/*", "actions": ["delete", "push"]}
        ]})),
    );
    assert_eq!(status, 200, "{body}");
    let everyone = json!([
        {"repository": "shared/**", "actions": ["pull"]},
        {"repository": "scratch/*", "actions": ["delete", "pull", "push"]}
    ]);
    assert_eq!(body, json!({"grants": everyone}));

    let (status, body) = as_admin(
        &stack,
        Method::PUT,
        "/grants/public",
        Some(json!({"repositories": ["library/*", "docs"]})),
    );
    assert_eq!(
        (status, body),
        (200, json!({"repositories": ["library/*", "docs"]}))
    );
    assert_eq!(
        grants_file(&stack),
        json!({"users": {}, "everyone": everyone, "public": ["library/*", "docs"]})
    );

    for (path, body) in [
        (
            "/grants/everyone",
            json!({"grants": [{"repository": "x", "actions": ["*"]}]}),
        ),
        (
            "/grants/everyone",
            json!({"grants": [{"repository": "", "actions": ["pull"]}]}),
        ),
        ("/grants/public", json!({"repositories": ["**/x"]})),
        ("/grants/public", json!({"repositories": ["UPPER"]})),
    ] {
        let (status, answer) = as_admin(&stack, Method::PUT, path, Some(body.clone()));
        assert_eq!(
            (status, error_code(&answer)),
            (400, Some("invalid_grant")),
            "{path} {body}: {answer}"
        );
    }
    let (status, body) = as_user(
        &stack,
        ALICE,
        Method::PUT,
        "/grants/public",
        Some(json!({"repositories": ["**"]})),
    );
    assert_eq!((status, error_code(&body)), (403, Some("forbidden")));
    let (status, body) = as_user(&stack, ALICE, Method::GET, "/grants", None);
    assert_eq!((status, error_code(&body)), (403, Some("forbidden")));

    let (status, body) = as_admin(&stack, Method::GET, "/grants", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "enforced_by_registry": false,
            "registry_token_bound_seconds": 0,
            "public": ["library/*", "docs"],
            "everyone": everyone,
            "users": {}
        })
    );

    let details: Vec<String> = audit_entries(&stack, "grants.update")
        .iter()
        .filter(|e| e["outcome"] == "success")
        .map(|e| {
            assert_eq!(e["user"], Value::Null, "{e}");
            e["detail"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert!(details[0].starts_with("everyone"), "{details:?}");
    assert!(details[1].starts_with("public"), "{details:?}");
}

#[test]
fn deleting_a_user_removes_its_grants_and_disabling_keeps_them() {
    let stack = start_with_users();
    for user in ["alice", "bob"] {
        let (status, body) = as_admin(
            &stack,
            Method::PUT,
            &format!("/users/{user}/grants"),
            Some(json!({"grants": [{"repository": "team/*", "actions": ["pull"]}]})),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = as_admin(&stack, Method::POST, "/users/bob/disable", None);
    assert_eq!(status, 200, "{body}");
    assert!(grants_file(&stack)["users"]["bob"].is_array());

    let resp = stack
        .app
        .as_admin(Method::DELETE, "/users/alice")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    let file = grants_file(&stack);
    assert_eq!(
        file["users"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["bob"],
        "{file}"
    );
    assert!(!stack.htpasswd().contains("alice:"));

    // A re-created account of the same name starts without the old grants.
    assert_eq!(
        stack
            .app
            .create_user("alice", "alice-pass-2", "user")
            .status(),
        201
    );
    let (status, body) = as_admin(&stack, Method::GET, "/users/alice/grants", None);
    assert_eq!(
        (status, body),
        (200, json!({"user": "alice", "grants": []}))
    );

    // A refused delete (the service account) touches neither file.
    let before = std::fs::read(stack.dir.path().join("auth/grants.json")).unwrap();
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::DELETE, "/users/registry-admin")
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, error_code(&body)),
        (409, Some("protected_account"))
    );
    assert_eq!(
        std::fs::read(stack.dir.path().join("auth/grants.json")).unwrap(),
        before
    );
}

/// Pushes `img` to each `name:tag` with skopeo, as the admin.
fn push(stack: &Stack, refs: &[(&str, &str)]) {
    let (_dir, layout, _) = one_image(1);
    let registry = format!("127.0.0.1:{}", stack.registry.port);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    for (name, tag) in refs {
        layout.push(&registry, &creds, "img", name, tag, false);
    }
}

fn registry_tags(stack: &Stack, name: &str) -> Vec<String> {
    let (status, body) = as_admin(stack, Method::GET, &format!("/images/{name}/tags"), None);
    assert_eq!(status, 200, "{body}");
    body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_user_sees_and_deletes_only_what_its_grants_allow() {
    let stack = start_with_users();
    push(
        &stack,
        &[
            ("team/app", "v1"),
            ("team/app", "v2"),
            ("other/secret", "v1"),
            ("shared/base", "v1"),
            ("library/pub", "v1"),
        ],
    );
    let (status, body) = as_admin(&stack, Method::GET, "/images", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["repositories"],
        json!(["library/pub", "other/secret", "shared/base", "team/app"])
    );

    // Without grants a user sees nothing.
    let (status, body) = as_user(&stack, ALICE, Method::GET, "/images", None);
    assert_eq!(
        (status, body),
        (200, json!({"repositories": [], "empty": []}))
    );

    let (status, _) = as_admin(
        &stack,
        Method::PUT,
        "/users/alice/grants",
        Some(json!({"grants": [{"repository": "team/*", "actions": ["pull"]}]})),
    );
    assert_eq!(status, 200);
    let (status, _) = as_admin(
        &stack,
        Method::PUT,
        "/grants/everyone",
        Some(json!({"grants": [{"repository": "shared/**", "actions": ["pull"]}]})),
    );
    assert_eq!(status, 200);
    let (status, _) = as_admin(
        &stack,
        Method::PUT,
        "/grants/public",
        Some(json!({"repositories": ["library/*"]})),
    );
    assert_eq!(status, 200);

    let (status, body) = as_user(&stack, ALICE, Method::GET, "/images", None);
    assert_eq!(
        (status, body),
        (
            200,
            json!({"repositories": ["library/pub", "shared/base", "team/app"], "empty": []})
        )
    );
    let (status, body) = as_user(&stack, BOB, Method::GET, "/images", None);
    assert_eq!(
        (status, body),
        (
            200,
            json!({"repositories": ["library/pub", "shared/base"], "empty": []})
        )
    );

    let (status, body) = as_user(&stack, ALICE, Method::GET, "/images/team/app/tags", None);
    assert_eq!(
        (status, body),
        (200, json!({"name": "team/app", "tags": ["v1", "v2"]}))
    );
    let (status, body) = as_user(&stack, ALICE, Method::GET, "/images/team/app/tags/v1", None);
    assert_eq!((status, body["tag"].as_str()), (200, Some("v1")));

    // A repository alice may not pull answers exactly like one that does not exist.
    let (missing_status, missing) = as_user(
        &stack,
        ALICE,
        Method::GET,
        "/images/team/nothere/tags",
        None,
    );
    assert_eq!(missing_status, 404);
    let (status, hidden) = as_user(
        &stack,
        ALICE,
        Method::GET,
        "/images/other/secret/tags",
        None,
    );
    assert_eq!(status, 404);
    let same = |body: &Value, from: &str, to: &str| {
        serde_json::from_str::<Value>(&body.to_string().replace(from, to)).unwrap()
    };
    assert_eq!(hidden, same(&missing, "team/nothere", "other/secret"));
    assert_eq!(
        hidden,
        json!({"error": "not_found", "message": "repository other/secret not found"})
    );
    let (_, missing_tag) = as_user(
        &stack,
        ALICE,
        Method::GET,
        "/images/team/nothere/tags/v1",
        None,
    );
    let (status, hidden_tag) = as_user(
        &stack,
        ALICE,
        Method::GET,
        "/images/other/secret/tags/v1",
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(
        hidden_tag,
        same(&missing_tag, "team/nothere", "other/secret")
    );
    let (status, hidden_delete) = as_user(
        &stack,
        ALICE,
        Method::DELETE,
        "/images/other/secret/tags/v1",
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(hidden_delete, hidden_tag);
    assert_eq!(registry_tags(&stack, "other/secret"), ["v1"]);

    // Pull without delete: 403 naming the missing grant, and the tag stays.
    let (status, body) = as_user(
        &stack,
        ALICE,
        Method::DELETE,
        "/images/team/app/tags/v1",
        None,
    );
    assert_eq!(
        (status, error_code(&body)),
        (403, Some("forbidden")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("\"delete\"") && message.contains("team/app"),
        "{message}"
    );
    assert_eq!(registry_tags(&stack, "team/app"), ["v1", "v2"]);

    // With a delete grant the tag goes and its sibling (same digest) stays.
    let (status, _) = as_admin(
        &stack,
        Method::PUT,
        "/users/alice/grants",
        Some(json!({"grants": [
            {"repository": "team/*", "actions": ["pull"]},
            {"repository": "team/app", "actions": ["delete"]}
        ]})),
    );
    assert_eq!(status, 200);
    let (status, body) = as_user(
        &stack,
        ALICE,
        Method::DELETE,
        "/images/team/app/tags/v1",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["other_tags"], json!(["v2"]));
    assert_eq!(registry_tags(&stack, "team/app"), ["v2"]);
    let deletes = audit_entries(&stack, "tag.delete");
    let last = deletes.last().expect("a tag.delete entry");
    assert_eq!(
        (&last["actor"], &last["outcome"], &last["image"]),
        (&json!("alice"), &json!("success"), &json!("team/app"))
    );

    // An admin needs no grant.
    let (status, body) = as_admin(&stack, Method::DELETE, "/images/other/secret/tags/v1", None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_access_endpoint_explains_each_source_of_an_action() {
    let stack = start_with_users();
    for (path, body) in [
        (
            "/users/alice/grants",
            json!({"grants": [{"repository": "team/*", "actions": ["push"]}]}),
        ),
        (
            "/grants/everyone",
            json!({"grants": [{"repository": "team/**", "actions": ["pull"]}]}),
        ),
        ("/grants/public", json!({"repositories": ["team/app"]})),
    ] {
        let (status, answer) = as_admin(&stack, Method::PUT, path, Some(body));
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let (status, body) = as_user(
        &stack,
        ALICE,
        Method::GET,
        "/users/alice/access?repository=team/app",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "user": "alice",
            "repository": "team/app",
            "actions": ["pull", "push"],
            "reasons": [
                {"source": "grant", "pattern": "team/*", "actions": ["pull", "push"]},
                {"source": "everyone", "pattern": "team/**", "actions": ["pull"]},
                {"source": "public", "pattern": "team/app", "actions": ["pull"]}
            ]
        })
    );
    let (status, body) = as_admin(
        &stack,
        Method::GET,
        "/users/admin/access?repository=any/thing",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "user": "admin",
            "repository": "any/thing",
            "actions": ["delete", "pull", "push"],
            "reasons": [{"source": "role", "actions": ["delete", "pull", "push"]}]
        })
    );
    let (status, body) = as_admin(
        &stack,
        Method::GET,
        "/users/bob/access?repository=elsewhere",
        None,
    );
    assert_eq!(
        (status, body),
        (
            200,
            json!({"user": "bob", "repository": "elsewhere", "actions": [], "reasons": []})
        )
    );

    for (who, path, want_status, want_code) in [
        (
            Some(BOB),
            "/users/alice/access?repository=team/app",
            403,
            "forbidden",
        ),
        (
            None,
            "/users/alice/access?repository=Team/App",
            400,
            "invalid_name",
        ),
        (
            None,
            "/users/alice/access?repository=team/*",
            400,
            "invalid_name",
        ),
        (None, "/users/alice/access", 400, "invalid_request"),
        (
            None,
            "/users/nobody/access?repository=team/app",
            404,
            "not_found",
        ),
    ] {
        let (status, body) = match who {
            Some(u) => as_user(&stack, u, Method::GET, path, None),
            None => as_admin(&stack, Method::GET, path, None),
        };
        assert_eq!(
            (status, error_code(&body)),
            (want_status, Some(want_code)),
            "{path}: {body}"
        );
    }
}

#[test]
fn a_broken_grants_file_is_never_read_as_no_grants_and_admins_keep_working() {
    let stack = start_with_users();
    let path = stack.dir.path().join("auth/grants.json");
    std::fs::write(&path, "{\"users\": {\"alice\": [").unwrap();
    let (status, body) = as_user(&stack, ALICE, Method::GET, "/images", None);
    assert_eq!(
        (status, error_code(&body)),
        (500, Some("internal")),
        "{body}"
    );
    let (status, body) = as_admin(
        &stack,
        Method::PUT,
        "/grants/public",
        Some(json!({"repositories": ["**"]})),
    );
    assert_eq!(
        (status, error_code(&body)),
        (500, Some("internal")),
        "{body}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"users\": {\"alice\": [",
        "not overwritten"
    );
    let (status, body) = as_admin(&stack, Method::GET, "/images", None);
    assert_eq!(status, 200, "{body}");
}
