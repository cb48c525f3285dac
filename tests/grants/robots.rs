//! Robot accounts against the real registry:2 in token mode: a robot pushes and pulls with
//! skopeo and podman inside its grants and nowhere else, its owner's rights bound it at every
//! token, expiry and rotation hold at `/token`, and its secret appears once — in the create or
//! rotate answer — and never in a later body, the log or the audit.

use crate::common;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use common::auth::metrics_text;
use common::token_stack::{SERVICE, TokenStack, claims};
use common::{ADMIN_PASSWORD, OptionalJson, Stack, json, json_or_no_content, wait_until};

const PW: &str = "user-password-1";

/// A request as `user` (password `PW`, or the admin's), with a JSON body when one is given.
fn call(
    stack: &TokenStack,
    user: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let password = if user == "admin" { ADMIN_PASSWORD } else { PW };
    let resp = stack
        .app
        .as_user(method, path, user, password)
        .optional_json(body)
        .send()
        .expect("request");
    json_or_no_content(resp)
}

/// `POST /robots` as `user`; the robot and its secret.
fn create_robot(stack: &TokenStack, user: &str, body: Value) -> (Value, String) {
    let (status, robot) = call(stack, user, Method::POST, "/robots", Some(body));
    assert_eq!(status, 201, "{robot}");
    let secret = robot["secret"].as_str().expect("secret").to_string();
    (robot, secret)
}

fn team_grants(actions: &[&str]) -> Value {
    json!([{"repository": "team/**", "actions": actions}])
}

fn set_user_grants(stack: &TokenStack, user: &str, grants: Value) {
    let (status, body) = call(
        stack,
        "admin",
        Method::PUT,
        &format!("/users/{user}/grants"),
        Some(json!({ "grants": grants })),
    );
    assert_eq!(status, 200, "{body}");
}

/// `GET /token` for `scope` as the robot; the status and, on 200, the granted access.
fn robot_token(stack: &TokenStack, robot: &str, secret: &str, scope: &str) -> (u16, Value) {
    let r = stack.token(
        &format!(
            "service={SERVICE}&scope={}",
            scope
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace(',', "%2C")
        ),
        Some((robot, secret)),
    );
    let status = r.status().as_u16();
    if status != 200 {
        return (status, Value::Null);
    }
    let body: Value = r.json().expect("token JSON");
    (
        status,
        claims(body["token"].as_str().expect("token"))["access"].clone(),
    )
}

/// Replaces robots.json (temp file and rename, as registry-admin writes it) after `f` edits it.
fn edit_robots_file(stack: &TokenStack, f: impl FnOnce(&mut Value)) {
    let path = stack.path("auth/robots.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut doc);
    let tmp = stack.path("auth/.robots.json.test");
    std::fs::write(&tmp, serde_json::to_vec(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

#[test]
fn a_robot_pushes_and_pulls_inside_its_grants_only_and_its_secret_is_shown_once() {
    let stack = TokenStack::start_with_users(&[("alice", "user")], PW);
    set_user_grants(&stack, "alice", team_grants(&["push"]));
    // A user creates its own robot, narrower than itself.
    let (robot, secret) = create_robot(
        &stack,
        "alice",
        json!({"name": "ci", "description": "pipeline", "grants": [
            {"repository": "team/app", "actions": ["push"]}
        ]}),
    );
    assert_eq!(robot["name"], "robot.alice.ci");
    assert_eq!(robot["owner"], "alice");
    assert_eq!(robot["created_by"], "alice");
    assert_eq!(robot["last_used_at"], Value::Null);
    assert_eq!(
        robot["registry"],
        json!(stack.host()),
        "where to docker login"
    );
    assert!(robot["expires_at"].is_string(), "a default expiry: {robot}");
    assert!(
        secret.starts_with("ra_") && (43..=67).contains(&secret.len()),
        "{secret}"
    );
    let creds = format!("robot.alice.ci:{secret}");

    // skopeo: inside its grants the registry accepts the push and the pull ...
    stack
        .skopeo_push(&creds, "team/app", "v1")
        .expect("robot push inside its grants");
    stack
        .skopeo_pull(Some(&creds), "team/app:v1")
        .expect("robot pull inside its grants");
    // ... outside them (though its owner may push there) the registry refuses.
    assert!(stack.skopeo_push(&creds, "team/other", "v1").is_err());
    assert!(stack.skopeo_push(&creds, "elsewhere", "v1").is_err());
    assert!(
        stack.skopeo_delete(&creds, "team/app:v1").is_err(),
        "no delete grant"
    );

    // podman: logs in with the robot and pulls what it pushed.
    let host = stack.host();
    let login = stack.podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "robot.alice.ci",
        "-p",
        &secret,
        &host,
    ]);
    assert!(
        login.status.success(),
        "podman login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    let pull = stack.podman(&["pull", "--tls-verify=false", &format!("{host}/team/app:v1")]);
    assert!(
        pull.status.success(),
        "podman pull: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let wrong = stack.podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "robot.alice.ci",
        "-p",
        "ra_wrong",
        &host,
    ]);
    assert!(!wrong.status.success(), "a wrong secret does not log in");

    // At the API the robot reads what its grants let it pull, and nothing else.
    let robot_call = |method: Method, path: &str| {
        let resp = stack
            .app
            .request(method, path)
            .basic_auth("robot.alice.ci", Some(&secret))
            .send()
            .unwrap();
        json(resp)
    };
    let (status, images) = robot_call(Method::GET, "/images");
    assert_eq!(
        (status, images["repositories"].clone()),
        (200, json!(["team/app"]))
    );
    assert_eq!(
        robot_call(Method::GET, "/images/team/app/tags").1["tags"],
        json!(["v1"])
    );
    assert_eq!(robot_call(Method::GET, "/images/team/app/tags/v1").0, 200);
    for (method, path) in [
        (Method::GET, "/users"),
        (Method::GET, "/robots"),
        (Method::GET, "/robots/robot.alice.ci"),
        (Method::GET, "/users/alice/grants"),
        (Method::GET, "/grants"),
        (Method::POST, "/auth/token"),
        (Method::DELETE, "/images/team/app/tags/v1"),
    ] {
        let (status, body) = robot_call(method.clone(), path);
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}: {body}"
        );
    }

    // Token requests are audited with the robot as actor; its use is recorded.
    let entries = stack.audit_entries();
    assert!(
        entries.iter().any(|e| e["action"] == "token.issue"
            && e["actor"] == "robot.alice.ci"
            && e["outcome"] == "success"),
        "token.issue by the robot"
    );
    let create = entries
        .iter()
        .find(|e| e["action"] == "robot.create")
        .expect("robot.create");
    assert_eq!(
        (create["actor"].as_str(), create["user"].as_str()),
        (Some("alice"), Some("robot.alice.ci"))
    );
    let (_, seen) = call(&stack, "alice", Method::GET, "/robots/robot.alice.ci", None);
    assert!(seen["last_used_at"].is_string(), "{seen}");

    // The secret was in the create answer and nowhere since: not in any later body, the
    // stored file (a hash only), the log or the audit.
    let (_, listed) = call(&stack, "admin", Method::GET, "/robots", None);
    assert_eq!(listed["robots"][0]["name"], "robot.alice.ci");
    for body in [&listed, &seen] {
        assert!(!body.to_string().contains(&secret));
        assert!(body.get("secret").is_none() && body["robots"][0].get("secret").is_none());
    }
    let stored = std::fs::read_to_string(stack.path("auth/robots.json")).unwrap();
    assert!(
        !stored.contains(&secret[3..20]),
        "robots.json holds a hash only"
    );
    assert!(
        !stack.app.stderr().contains(&secret[3..20]),
        "the log never holds the secret"
    );
    let audit = std::fs::read_to_string(stack.path("logs/audit.log")).unwrap();
    assert!(
        !audit.contains(&secret[3..20]),
        "the audit never holds the secret"
    );
}

#[test]
fn a_robot_is_bounded_by_its_owner_now_and_gone_with_it() {
    let stack = TokenStack::start_with_users(&[("alice", "user")], PW);
    set_user_grants(&stack, "alice", team_grants(&["push"]));
    let (_, secret) = create_robot(
        &stack,
        "alice",
        json!({"name": "ci", "grants": team_grants(&["push"])}),
    );
    let robot = "robot.alice.ci";
    let scope = "repository:team/app:pull,push";
    assert_eq!(
        robot_token(&stack, robot, &secret, scope).1[0]["actions"],
        json!(["pull", "push"])
    );

    // Its owner narrowed to pull: at its next token, so is the robot, and the registry agrees.
    set_user_grants(&stack, "alice", team_grants(&["pull"]));
    assert_eq!(
        robot_token(&stack, robot, &secret, scope).1[0]["actions"],
        json!(["pull"])
    );
    assert!(
        stack
            .skopeo_push(&format!("{robot}:{secret}"), "team/app", "v2")
            .is_err()
    );

    // Owner disabled: refused; enabled again: back within the owner's rights.
    assert_eq!(
        call(&stack, "admin", Method::POST, "/users/alice/disable", None).0,
        200
    );
    assert_eq!(robot_token(&stack, robot, &secret, scope).0, 401);
    assert_eq!(
        call(&stack, "admin", Method::POST, "/users/alice/enable", None).0,
        200
    );
    assert_eq!(robot_token(&stack, robot, &secret, scope).0, 200);

    // Owner deleted: its robots go in the same write, and the secret is refused.
    assert_eq!(
        call(&stack, "admin", Method::DELETE, "/users/alice", None).0,
        204
    );
    assert_eq!(robot_token(&stack, robot, &secret, scope).0, 401);
    let (status, body) = call(&stack, "admin", Method::GET, "/robots/robot.alice.ci", None);
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let stored: Value =
        serde_json::from_slice(&std::fs::read(stack.path("auth/robots.json")).unwrap()).unwrap();
    assert_eq!(stored["robots"], json!({}));
    // Re-created with the same name, the user does not get the old robot back.
    assert_eq!(stack.app.create_user("alice", PW, "user").status(), 201);
    assert_eq!(robot_token(&stack, robot, &secret, scope).0, 401);
}

#[test]
fn expiry_and_rotation_hold_at_the_token_endpoint() {
    let stack = TokenStack::start_with_users(&[("alice", "user")], PW);
    set_user_grants(&stack, "alice", team_grants(&["push"]));
    let scope = "repository:team/app:pull";

    // Rotation with an overlap: the old and new secrets both work, then only the new.
    let (_, old) = create_robot(
        &stack,
        "alice",
        json!({"name": "deploy", "grants": team_grants(&["pull"])}),
    );
    let robot = "robot.alice.deploy";
    let (status, rotated) = call(
        &stack,
        "alice",
        Method::POST,
        "/robots/robot.alice.deploy/rotate",
        Some(json!({"overlap_seconds": 2})),
    );
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(robot_token(&stack, robot, &new, scope).0, 200);
    // Each refusal counts against the throttle; the new secret's success between two polls
    // resets it, as a success does.
    wait_until("the old secret to expire", Duration::from_secs(30), || {
        let old_refused = robot_token(&stack, robot, &old, scope).0 == 401;
        assert_eq!(robot_token(&stack, robot, &new, scope).0, 200);
        std::thread::sleep(Duration::from_millis(200));
        old_refused
    });
    assert_eq!(robot_token(&stack, robot, &new, scope).0, 200);
    // The overlap is real: a long one keeps the old secret for sure.
    let (_, again) = call(
        &stack,
        "alice",
        Method::POST,
        "/robots/robot.alice.deploy/rotate",
        Some(json!({"overlap_seconds": 3600})),
    );
    let newest = again["secret"].as_str().unwrap().to_string();
    assert_eq!(robot_token(&stack, robot, &new, scope).0, 200);
    assert_eq!(robot_token(&stack, robot, &newest, scope).0, 200);
    // Without an overlap the previous secret stops at once.
    let (_, last) = call(
        &stack,
        "alice",
        Method::POST,
        "/robots/robot.alice.deploy/rotate",
        Some(json!({})),
    );
    let last = last["secret"].as_str().unwrap().to_string();
    assert_eq!(robot_token(&stack, robot, &newest, scope).0, 401);
    assert_eq!(
        robot_token(&stack, robot, &new, scope).0,
        401,
        "only one previous secret"
    );
    assert_eq!(robot_token(&stack, robot, &last, scope).0, 200);
    let rotations = stack
        .audit_entries()
        .into_iter()
        .filter(|e| e["action"] == "robot.rotate")
        .count();
    assert_eq!(rotations, 3);

    // Expired (its expiry moved into the past on disk): 401, and the first refusal only is
    // audited as robot.expired.
    edit_robots_file(&stack, |doc| {
        doc["robots"][robot]["expires_at"] = json!("2020-01-01T00:00:00Z");
    });
    assert_eq!(robot_token(&stack, robot, &last, scope).0, 401);
    assert_eq!(robot_token(&stack, robot, &last, scope).0, 401);
    let expired: Vec<Value> = stack
        .audit_entries()
        .into_iter()
        .filter(|e| e["action"] == "robot.expired")
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(
        (expired[0]["actor"].as_str(), expired[0]["outcome"].as_str()),
        (Some(robot), Some("denied"))
    );
    // A stranger guessing at it does not make it report.
    assert_eq!(robot_token(&stack, robot, "ra_guess", scope).0, 401);
    // Deleted: refused at once.
    assert_eq!(
        call(
            &stack,
            "alice",
            Method::DELETE,
            "/robots/robot.alice.deploy",
            None
        )
        .0,
        204
    );
    assert_eq!(robot_token(&stack, robot, &last, scope).0, 401);
    let deleted = stack
        .audit_entries()
        .into_iter()
        .find(|e| e["action"] == "robot.delete")
        .expect("robot.delete");
    assert_eq!(deleted["user"], robot);
}

#[test]
fn robot_requests_that_break_the_rules_are_refused_and_change_nothing() {
    let stack = TokenStack::start_with_users(&[("alice", "user"), ("bob", "user")], PW);
    set_user_grants(&stack, "alice", team_grants(&["pull"]));
    let cases = [
        (
            "alice",
            json!({"name": "ci", "grants": team_grants(&["push"])}),
            403,
            "grants_exceed_owner",
        ),
        (
            "alice",
            json!({"name": "ci", "grants": [{"repository": "other/*", "actions": ["pull"]}]}),
            403,
            "grants_exceed_owner",
        ),
        (
            "alice",
            json!({"name": "ci", "grants": [], "colour": "red"}),
            400,
            "invalid_robot",
        ),
        (
            "alice",
            json!({"name": "CI", "grants": []}),
            400,
            "invalid_robot",
        ),
        (
            "alice",
            json!({"name": "a$b", "grants": []}),
            400,
            "invalid_robot",
        ),
        (
            "alice",
            json!({"name": "ci", "grants": [], "expires_in_days": null}),
            400,
            "invalid_robot",
        ),
        (
            "alice",
            json!({"name": "ci", "grants": [], "expires_in_days": 0}),
            400,
            "invalid_robot",
        ),
        (
            "alice",
            json!({"name": "ci", "grants": [{"repository": "Bad", "actions": ["pull"]}]}),
            400,
            "invalid_grant",
        ),
        (
            "alice",
            json!({"name": "ci", "owner": "bob", "grants": []}),
            403,
            "forbidden",
        ),
        (
            "admin",
            json!({"name": "ci", "owner": "nobody", "grants": []}),
            404,
            "not_found",
        ),
    ];
    for (user, body, status, code) in cases {
        let (got, answer) = call(&stack, user, Method::POST, "/robots", Some(body.clone()));
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{user} {body}: {answer}"
        );
    }
    assert!(
        !stack.path("auth/robots.json").exists(),
        "nothing was written"
    );

    // What is allowed: a covered robot, and an admin's robot that never expires for bob.
    create_robot(
        &stack,
        "alice",
        json!({"name": "ci", "grants": team_grants(&["pull"]), "expires_in_days": 7}),
    );
    let (forever, _) = create_robot(
        &stack,
        "admin",
        json!({"name": "ops", "owner": "bob", "grants": [], "expires_in_days": null}),
    );
    assert_eq!(forever["expires_at"], Value::Null);
    let (status, dup) = call(
        &stack,
        "alice",
        Method::POST,
        "/robots",
        Some(json!({"name": "ci", "grants": []})),
    );
    assert_eq!((status, dup["error"].as_str()), (409, Some("robot_exists")));
    // Names starting with robot. are not for people.
    let r = stack.app.create_user("robot.alice.x", PW, "user");
    assert_eq!(
        (
            r.status().as_u16(),
            json(r).1["error"].as_str().map(String::from)
        ),
        (400, Some("invalid_username".into()))
    );

    // Users see their own robots only; expiring_within filters; the gauge counts.
    let names = |v: &Value| -> Vec<String> {
        v["robots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&call(&stack, "admin", Method::GET, "/robots", None).1),
        ["robot.alice.ci", "robot.bob.ops"]
    );
    assert_eq!(
        names(&call(&stack, "alice", Method::GET, "/robots", None).1),
        ["robot.alice.ci"]
    );
    assert_eq!(
        names(
            &call(
                &stack,
                "admin",
                Method::GET,
                "/robots?expiring_within=14",
                None
            )
            .1
        ),
        ["robot.alice.ci"]
    );
    assert_eq!(
        names(&call(&stack, "admin", Method::GET, "/robots?owner=bob", None).1),
        ["robot.bob.ops"]
    );
    assert_eq!(
        call(&stack, "alice", Method::GET, "/robots?owner=bob", None).0,
        403
    );
    assert_eq!(
        call(
            &stack,
            "admin",
            Method::GET,
            "/robots?expiring_within=-1",
            None
        )
        .0,
        400
    );
    assert_eq!(
        call(&stack, "bob", Method::GET, "/robots/robot.alice.ci", None).0,
        404
    );
    assert_eq!(
        call(
            &stack,
            "bob",
            Method::DELETE,
            "/robots/robot.alice.ci",
            None
        )
        .0,
        404
    );
    let (status, body) = call(&stack, "alice", Method::GET, "/robots/not-a-robot", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_robot"))
    );
    let metrics = metrics_text(&stack.app);
    assert!(
        metrics.contains("\nregistry_admin_robots_expiring 1\n"),
        "{metrics}"
    );

    // Grants: within the owner's rights only, audited as robot.grants.
    let path = "/robots/robot.alice.ci/grants";
    let (status, body) = call(
        &stack,
        "alice",
        Method::PUT,
        path,
        Some(json!({"grants": team_grants(&["push"])})),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("grants_exceed_owner"))
    );
    let (status, body) = call(
        &stack,
        "alice",
        Method::PUT,
        path,
        Some(json!({"grants": [{"repository": "team/app", "actions": ["pull"]}]})),
    );
    assert_eq!(
        (status, body["grants"].clone()),
        (
            200,
            json!([{"repository": "team/app", "actions": ["pull"]}])
        )
    );
    let entry = stack
        .audit_entries()
        .into_iter()
        .find(|e| e["action"] == "robot.grants")
        .expect("robot.grants");
    assert_eq!(
        (entry["user"].as_str(), entry["actor"].as_str()),
        (Some("robot.alice.ci"), Some("alice"))
    );
    let (status, body) = call(
        &stack,
        "alice",
        Method::POST,
        "/robots/robot.alice.ci/rotate",
        Some(json!({"overlap_seconds": 86401})),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_robot"))
    );
}

#[test]
fn robots_are_refused_in_htpasswd_mode() {
    let stack = Stack::start();
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::POST, "/robots")
            .json(&json!({"name": "ci", "grants": []}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("token_mode_required"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("AUTH_MODE=token")
    );
    let (status, body) = stack.app.admin_json(Method::GET, "/robots");
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("token_mode_required"))
    );
    assert!(!stack.dir.path().join("auth/robots.json").exists());
}

#[test]
fn an_account_has_at_most_100_robots_so_robots_json_stays_bounded() {
    // Without a cap one user could create robots until robots.json passed the size the service
    // reads (32 MiB), and from then on no robot anywhere could authenticate.
    let stack = TokenStack::start_with_users(&[("alice", "user")], PW);
    set_user_grants(&stack, "alice", team_grants(&["pull"]));
    let grants = json!([{"repository": "team/app", "actions": ["pull"]}]);
    for i in 0..100 {
        create_robot(
            &stack,
            "alice",
            json!({"name": format!("r{i}"), "grants": grants}),
        );
    }
    let file = stack.path("auth/robots.json");
    let before = std::fs::read(&file).unwrap();
    for (user, body) in [
        ("alice", json!({"name": "one-more", "grants": grants})),
        (
            "admin",
            json!({"name": "one-more", "owner": "alice", "grants": grants}),
        ),
    ] {
        let (status, body) = call(&stack, user, Method::POST, "/robots", Some(body));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_robot")),
            "{user}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("at most 100 robots"),
            "{body}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), before, "nothing changed");
    // Another account's robots are not counted against alice's, and a deletion makes room.
    create_robot(&stack, "admin", json!({"name": "own", "grants": grants}));
    let (status, _) = call(
        &stack,
        "alice",
        Method::DELETE,
        "/robots/robot.alice.r0",
        None,
    );
    assert_eq!(status, 204);
    create_robot(
        &stack,
        "alice",
        json!({"name": "one-more", "grants": grants}),
    );
}
