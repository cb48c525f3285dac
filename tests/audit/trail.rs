//! The audit trail, end to end: API actions, registry events from real pushes and pulls,
//! queries checked against an independent reading of the file, the chain, tampering.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::thread;
use std::time::Duration;

use common::images::one_image;
use common::{
    ADMIN_PASSWORD, AppEnv, EVENTS_TOKEN, Stack, audit_entries as entries, client, json, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

fn audit(stack: &Stack, query: &str) -> (u16, Value) {
    json(
        stack
            .app
            .as_admin(Method::GET, &format!("/audit{query}"))
            .send()
            .unwrap(),
    )
}

/// Every entry in the file, oldest first, read without registry-admin.
fn file_entries(stack: &Stack) -> Vec<Value> {
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(stack.audit_path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("audit.log.")
            })
            .collect();
    files.sort_by_key(|p| {
        p.extension()
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    });
    files.push(stack.audit_path());
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

fn verify(stack: &Stack) -> Value {
    let (status, body) = audit(stack, "/verify");
    assert_eq!(status, 200, "{body}");
    body
}

fn with_id(req: reqwest::blocking::RequestBuilder, id: &str) -> u16 {
    req.header("X-Request-Id", id)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// (request id, request, expected status, action, outcome, account acted on)
type Step<'a> = (
    &'a str,
    reqwest::blocking::RequestBuilder,
    u16,
    &'a str,
    &'a str,
    Option<&'a str>,
);
type Predicate = Box<dyn Fn(&Value) -> bool>;

#[test]
fn every_api_action_leaves_exactly_one_entry() {
    let stack = Stack::start();
    let app = &stack.app;
    let steps: Vec<Step> = vec![
        (
            "r-create",
            app.as_admin(Method::POST, "/users")
                .json(&json!({"username": "alice", "password": "alice-pass-1", "role": "user"})),
            201,
            "user.create",
            "success",
            Some("alice"),
        ),
        (
            "r-dup",
            app.as_admin(Method::POST, "/users")
                .json(&json!({"username": "alice", "password": "alice-pass-1"})),
            409,
            "user.create",
            "failure",
            Some("alice"),
        ),
        (
            "r-pass",
            app.as_admin(Method::PUT, "/users/alice/password")
                .json(&json!({"password": "alice-pass-2"})),
            204,
            "user.password",
            "success",
            Some("alice"),
        ),
        (
            "r-role",
            app.as_admin(Method::PUT, "/users/alice/role")
                .json(&json!({"role": "admin"})),
            200,
            "user.role",
            "success",
            Some("alice"),
        ),
        (
            "r-demote",
            app.as_admin(Method::PUT, "/users/alice/role")
                .json(&json!({"role": "user"})),
            200,
            "user.role",
            "success",
            Some("alice"),
        ),
        (
            "r-forbidden",
            app.request(Method::POST, "/users/admin/disable")
                .basic_auth("alice", Some("alice-pass-2")),
            403,
            "user.disable",
            "denied",
            Some("admin"),
        ),
        (
            "r-disable",
            app.as_admin(Method::POST, "/users/alice/disable"),
            200,
            "user.disable",
            "success",
            Some("alice"),
        ),
        (
            "r-enable",
            app.as_admin(Method::POST, "/users/alice/enable"),
            200,
            "user.enable",
            "success",
            Some("alice"),
        ),
        (
            "r-last",
            app.as_admin(Method::DELETE, "/users/admin"),
            409,
            "user.delete",
            "failure",
            Some("admin"),
        ),
        (
            "r-delete",
            app.as_admin(Method::DELETE, "/users/alice"),
            204,
            "user.delete",
            "success",
            Some("alice"),
        ),
        (
            "r-authfail",
            app.request(Method::GET, "/users")
                .basic_auth("mallory", Some("guess-pass-1")),
            401,
            "auth.failure",
            "denied",
            None,
        ),
        (
            "r-tag",
            app.as_admin(Method::DELETE, "/images/none/tags/v1"),
            404,
            "tag.delete",
            "failure",
            None,
        ),
    ];
    let mut checks = Vec::new();
    for (id, req, want, action, outcome, user) in steps {
        assert_eq!(with_id(req, id), want, "{id}");
        checks.push((id, want, action, outcome, user));
    }
    // A read is not an action.
    assert_eq!(with_id(app.as_admin(Method::GET, "/users"), "r-read"), 200);

    let all = file_entries(&stack);
    let mut by_id: HashMap<String, Vec<&Value>> = HashMap::new();
    for e in &all {
        if let Some(id) = e["request_id"].as_str() {
            by_id.entry(id.to_string()).or_default().push(e);
        }
    }
    for (id, status, action, outcome, user) in &checks {
        let found = by_id.get(*id).unwrap_or_else(|| panic!("{id}: no entry"));
        assert_eq!(found.len(), 1, "{id}: {found:?}");
        let e = found[0];
        assert_eq!(e["action"], *action, "{id}");
        assert_eq!(e["outcome"], *outcome, "{id}");
        assert_eq!(e["status"], *status, "{id}");
        assert_eq!(e["source"], "api");
        assert_eq!(e["remote_addr"], "127.0.0.1");
        if let Some(u) = user {
            assert_eq!(e["user"], *u, "{id}");
        }
    }
    assert_eq!(by_id["r-create"][0]["actor"], "admin");
    assert_eq!(by_id["r-forbidden"][0]["actor"], "alice");
    assert_eq!(by_id["r-authfail"][0]["actor"], "mallory");
    assert_eq!(by_id["r-role"][0]["detail"], "role admin");
    assert_eq!(by_id["r-dup"][0]["detail"], "user_exists");
    assert!(!by_id.contains_key("r-read"));
    assert_eq!(verify(&stack)["ok"], true);
}

#[test]
fn pushes_and_pulls_at_the_registry_are_recorded_with_their_user() {
    let stack = Stack::start();
    assert_eq!(
        stack
            .app
            .create_user("pusher", "pusher-pass-1", "user")
            .status(),
        201
    );
    assert_eq!(
        stack
            .app
            .create_user("puller", "puller-pass-1", "user")
            .status(),
        201
    );
    let (_dir, layout, img) = one_image(2);
    let reg = format!("127.0.0.1:{}", stack.registry.port);
    layout.push(&reg, "pusher:pusher-pass-1", "img", "team/app", "v1", false);

    let find = |action: &str| {
        let mut got = Vec::new();
        wait_until(
            &format!("{action} in the audit log"),
            Duration::from_secs(15),
            || {
                got = entries(&stack.app, &format!("?action={action}&image=team/app"));
                !got.is_empty()
            },
        );
        got
    };
    let pushes = find("image.push");
    assert_eq!(
        pushes.len(),
        1,
        "one manifest push, blobs dropped: {pushes:?}"
    );
    let p = &pushes[0];
    assert_eq!(
        (
            p["actor"].as_str(),
            p["source"].as_str(),
            p["outcome"].as_str()
        ),
        (Some("pusher"), Some("registry"), Some("success"))
    );
    assert_eq!(
        (p["tag"].as_str(), p["digest"].as_str()),
        (Some("v1"), Some(img.digest.as_str()))
    );
    assert_eq!(p["remote_addr"], "127.0.0.1");

    // registry-admin's own manifest reads (image details) must not show up as pulls.
    let (status, _) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/team/app/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    let out = tempfile::tempdir().unwrap();
    common::images::pull_all(&reg, "puller:puller-pass-1", "team/app:v1", out.path()).unwrap();
    let pulls = find("image.pull");
    assert!(pulls.iter().all(|e| e["actor"] == "puller"), "{pulls:?}");
    assert!(pulls.iter().all(|e| {
        !e["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("registry-admin/")
    }));

    // A delete through the API: one tag.delete from the API, no registry echo of our requests.
    let (status, _) = json(
        stack
            .app
            .as_admin(Method::DELETE, "/images/team/app/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    layout.push(
        &reg,
        "pusher:pusher-pass-1",
        "img",
        "team/app",
        "marker",
        false,
    );
    wait_until("the marker push", Duration::from_secs(15), || {
        entries(&stack.app, "?action=image.push&image=team/app").len() == 2
    });
    let deletes = entries(&stack.app, "?action=tag.delete");
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["digest"], img.digest);
    assert!(
        entries(&stack.app, "?action=image.delete").is_empty(),
        "our own delete was echoed"
    );
    assert_eq!(verify(&stack)["ok"], true);
}

#[test]
fn events_need_the_token_and_repeats_are_recorded_once() {
    let stack = Stack::start();
    let event = json!({"events": [{
        "id": "evt-1", "timestamp": "2026-11-23T00:33:09.120313848Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:41e7", "repository": "ev/app", "tag": "v1"},
        "request": {"id": "x", "addr": "203.0.113.9:4444", "useragent": "docker/27"},
        "actor": {"name": "someone"}
    }]});
    let post = |token: Option<&str>, body: String| {
        let mut r = client()
            .post(format!("{}/events", stack.app.url))
            .header(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )
            .body(body);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.send().unwrap().status().as_u16()
    };
    assert_eq!(post(None, event.to_string()), 401);
    assert_eq!(post(Some("wrong-token"), event.to_string()), 401);
    assert_eq!(post(Some(EVENTS_TOKEN), "{not json".into()), 400);
    assert_eq!(post(Some(EVENTS_TOKEN), event.to_string()), 200);
    assert_eq!(post(Some(EVENTS_TOKEN), event.to_string()), 200);
    let got = entries(&stack.app, "?image=ev/app");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["time"], "2026-11-23T00:33:09.120Z");
    assert_eq!(got[0]["remote_addr"], "203.0.113.9");
    // The admin API's own credentials are no events token.
    let r = stack
        .app
        .as_admin(Method::POST, "/events")
        .body(event.to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Populates the log with a mix of actors, targets, outcomes and times.
fn populate(stack: &Stack) {
    let app = &stack.app;
    for u in ["alice", "bob", "carol"] {
        assert_eq!(app.create_user(u, "some-pass-11", "user").status(), 201);
    }
    for round in 0..4 {
        for u in ["alice", "bob", "carol"] {
            let r = app
                .request(Method::PUT, &format!("/users/{u}/password"))
                .basic_auth(u, Some("some-pass-11"))
                .json(&json!({"password": "some-pass-11", "current_password": "some-pass-11"}))
                .send()
                .unwrap();
            assert_eq!(r.status(), 204);
        }
        assert_eq!(
            app.request(Method::GET, "/users")
                .basic_auth("alice", Some("some-pass-11"))
                .send()
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            app.request(Method::POST, "/users/bob/disable")
                .basic_auth("alice", Some("some-pass-11"))
                .send()
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            app.request(Method::GET, "/users")
                .basic_auth("alice", Some("wrong-pass-1"))
                .send()
                .unwrap()
                .status(),
            401
        );
        assert_eq!(
            app.as_admin(Method::POST, "/users/carol/disable")
                .send()
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            app.as_admin(Method::POST, "/users/carol/enable")
                .send()
                .unwrap()
                .status(),
            200
        );
        for (i, image) in ["team/app", "team/other"].iter().enumerate() {
            let ev = json!({"events": [{
                "id": format!("ev-{round}-{i}"), "timestamp": format!("2026-11-2{}T10:00:00Z", round + 1), "action": if i == 0 { "push" } else { "pull" },
                "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa", "repository": image, "tag": "v1"},
                "request": {"addr": "10.0.0.1:1"}, "actor": {"name": if round % 2 == 0 { "alice" } else { "bob" }}
            }]});
            let r = client()
                .post(format!("{}/events", app.url))
                .header("authorization", format!("Bearer {EVENTS_TOKEN}"))
                .body(ev.to_string())
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    }
}

#[test]
fn filters_return_exactly_the_matching_entries_newest_first() {
    let stack = Stack::start();
    populate(&stack);
    let all = file_entries(&stack);
    assert!(all.len() > 30, "{}", all.len());
    let expect = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        all.iter()
            .rev()
            .filter(|e| pred(e))
            .map(|e| e["hash"].as_str().unwrap().to_string())
            .collect()
    };
    let got = |q: &str| -> Vec<String> {
        entries(&stack.app, q)
            .iter()
            .map(|e| e["hash"].as_str().unwrap().to_string())
            .collect()
    };
    let s = |e: &Value, k: &str| e[k].as_str().unwrap_or("").to_string();
    let cases: Vec<(&str, Predicate)> = vec![
        ("?limit=1000", Box::new(|_| true)),
        (
            "?user=alice&limit=1000",
            Box::new(move |e| s(e, "actor") == "alice" || s(e, "user") == "alice"),
        ),
        (
            "?user=bob&limit=1000",
            Box::new(move |e| s(e, "actor") == "bob" || s(e, "user") == "bob"),
        ),
        (
            "?image=team/app&limit=1000",
            Box::new(move |e| s(e, "image") == "team/app"),
        ),
        (
            "?action=user.password&limit=1000",
            Box::new(move |e| s(e, "action") == "user.password"),
        ),
        (
            "?outcome=denied&limit=1000",
            Box::new(move |e| s(e, "outcome") == "denied"),
        ),
        (
            "?user=alice&outcome=denied&limit=1000",
            Box::new(move |e| {
                (s(e, "actor") == "alice" || s(e, "user") == "alice") && s(e, "outcome") == "denied"
            }),
        ),
        (
            "?action=auth.failure&limit=1000",
            Box::new(move |e| s(e, "action") == "auth.failure"),
        ),
        (
            "?since=2026-11-22T00:00:00Z&until=2026-11-23T23:59:59Z&limit=1000",
            Box::new(move |e| {
                let t = s(e, "time");
                t.as_str() >= "2026-11-22T00:00:00.000Z" && t.as_str() <= "2026-11-23T23:59:59.000Z"
            }),
        ),
        ("?user=nobody", Box::new(|_| false)),
    ];
    for (q, pred) in cases {
        let want = expect(pred.as_ref());
        assert_eq!(got(q), want, "{q}");
    }
    // The default limit is 100.
    assert_eq!(got("").len(), all.len().min(100));
    // Entries come with their chain fields.
    let e = &entries(&stack.app, "?limit=1")[0];
    assert!(e["prev"].as_str().unwrap().len() == 64 && e["hash"].as_str().unwrap().len() == 64);
}

#[test]
fn cursor_paging_returns_the_union_without_duplicates() {
    let stack = Stack::start();
    populate(&stack);
    for filter in ["user=alice", "outcome=success", "image=team/other"] {
        let whole: Vec<Value> = entries(&stack.app, &format!("?{filter}&limit=1000"));
        let mut paged: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let q = match &cursor {
                Some(c) => format!("?{filter}&limit=3&cursor={c}"),
                None => format!("?{filter}&limit=3"),
            };
            let (status, body) = audit(&stack, &q);
            assert_eq!(status, 200, "{body}");
            paged.extend(body["entries"].as_array().unwrap().iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(paged, whole, "{filter}");
        let hashes: BTreeSet<&str> = paged.iter().map(|e| e["hash"].as_str().unwrap()).collect();
        assert_eq!(hashes.len(), paged.len());
        // A cursor is tied to its filters.
        if let Some(c) = audit(&stack, &format!("?{filter}&limit=1")).1["next_cursor"].as_str() {
            let (status, body) = audit(&stack, &format!("?user=carol&cursor={c}"));
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_request"))
            );
        }
    }
}

#[test]
fn bad_filters_are_400() {
    let stack = Stack::start();
    for q in [
        "?limit=0",
        "?limit=1001",
        "?limit=abc",
        "?since=yesterday",
        "?until=2026-13-01T00:00:00Z",
        "?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
        "?outcome=maybe",
        "?image=A/b",
        "?image=..%2Fx",
        "?action=DROP%20TABLE",
        "?user=",
        "?cursor=garbage!",
        "?color=red",
    ] {
        let (status, body) = audit(&stack, q);
        assert_eq!(status, 400, "{q}: {body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|c| c.starts_with("invalid_")),
            "{q}: {body}"
        );
    }
    // A well-formed but unknown action is a 400 that lists the known ones.
    let (status, body) = audit(&stack, "?action=user.created");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("user.created") && message.contains("user.create, user.delete"),
        "{message}"
    );
    let r = stack
        .app
        .request(Method::GET, "/audit")
        .basic_auth("nobody", Some("nobody-pass"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn fifty_concurrent_actions_make_fifty_whole_lines_and_a_valid_chain() {
    let stack = Stack::start();
    // One request first, so the admin's password is checked once and remembered: 50 logins
    // arriving together before any success is cached would each take one of the 10 password
    // checks a (client address, user) pair may have in flight, and be refused with 429 by
    // design. What is measured here is the audit writer under concurrency, not that limit.
    let warm = stack.app.as_admin(Method::GET, "/users").send().unwrap();
    assert_eq!(warm.status(), 200);
    let before = file_entries(&stack).len();
    let url = stack.app.url.clone();
    let workers: Vec<_> = (0..50)
        .map(|i| {
            let url = url.clone();
            thread::spawn(move || {
                client()
                    .post(format!("{url}/users"))
                    .basic_auth("admin", Some(ADMIN_PASSWORD))
                    .json(&json!({"username": format!("c{i}"), "password": "conc-pass-11"}))
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    assert!(workers.into_iter().all(|w| w.join().unwrap() == 201));
    let text = std::fs::read_to_string(stack.audit_path()).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() - before, 50);
    let created: BTreeSet<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("a whole JSON line"))
        .filter(|e| e["action"] == "user.create")
        .map(|e| e["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(created, (0..50).map(|i| format!("c{i}")).collect());
    let v = verify(&stack);
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(lines.len() as u64)),
        "{v}"
    );
}

fn restart(stack: &mut Stack) {
    stack.app.kill();
    stack.app = AppEnv::new(stack.dir.path(), &stack.registry.url).start();
}

#[test]
fn an_edited_byte_or_a_removed_line_is_caught() {
    let mut stack = Stack::start();
    for i in 0..6 {
        assert_eq!(
            stack
                .app
                .create_user(&format!("t{i}"), "tamper-pass-1", "user")
                .status(),
            201
        );
    }
    assert_eq!(verify(&stack)["ok"], true);
    stack.app.kill();
    let path = stack.audit_path();
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // One byte changed in line 3 (an admin hiding who did something).
    let mut edited = lines.clone();
    let third = lines[2].replacen("\"actor\":\"admin\"", "\"actor\":\"admim\"", 1);
    assert_ne!(third, lines[2]);
    edited[2] = &third;
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    restart(&mut stack);
    let v = verify(&stack);
    assert_eq!(v["ok"], false);
    assert_eq!(
        v["first_bad_line"],
        json!({"file": "audit.log", "line": 3}),
        "{v}"
    );

    // Line 4 removed: line 5 (now the 4th) no longer links to its predecessor.
    stack.app.kill();
    let mut removed = lines.clone();
    removed.remove(3);
    std::fs::write(&path, removed.join("\n") + "\n").unwrap();
    restart(&mut stack);
    let v = verify(&stack);
    assert_eq!(
        v["first_bad_line"],
        json!({"file": "audit.log", "line": 4}),
        "{v}"
    );
}

#[test]
fn a_torn_last_line_is_reported_not_fatal_and_the_chain_goes_on() {
    let mut stack = Stack::start();
    assert_eq!(
        stack
            .app
            .create_user("before", "torn-pass-11", "user")
            .status(),
        201
    );
    stack.app.kill();
    let path = stack.audit_path();
    let lines_before = std::fs::read_to_string(&path).unwrap().lines().count();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"time\":\"2026-11-23T10:00:00.000Z\",\"action\":\"user.cre")
        .unwrap();
    drop(f);
    restart(&mut stack);
    assert_eq!(
        stack
            .app
            .create_user("after", "torn-pass-11", "user")
            .status(),
        201
    );
    let v = verify(&stack);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        v["torn_lines"],
        json!([{"file": "audit.log", "line": lines_before + 1}])
    );
    let got = entries(&stack.app, "?action=audit.torn_line");
    assert_eq!(got.len(), 1);
    assert_eq!(entries(&stack.app, "?user=after").len(), 1);
}

#[test]
fn rotation_keeps_numbered_files_that_queries_and_verify_span() {
    let stack = Stack::start_with(|env| env.set("AUDIT_MAX_BYTES", "4096"));
    for i in 0..40 {
        assert_eq!(
            stack
                .app
                .create_user(&format!("rot{i}"), "rotate-pass-1", "user")
                .status(),
            201
        );
    }
    let dir = stack.audit_path().parent().unwrap().to_path_buf();
    let rotated = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("audit.log.")
        })
        .count();
    assert!(rotated >= 2, "{rotated} rotated files");
    let all = file_entries(&stack);
    let v = verify(&stack);
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(all.len() as u64)),
        "{v}"
    );
    let got = entries(&stack.app, "?action=user.create&limit=1000");
    assert_eq!(got.len(), 40);
    assert_eq!(got[0]["user"], "rot39");
    assert_eq!(got[39]["user"], "rot0");
}

#[test]
fn no_secret_reaches_the_audit_log_or_the_process_output() {
    let stack = Stack::start();
    let secrets = ["secret-pass-one", "secret-pass-two", "wrong-secret-3"];
    assert_eq!(
        stack.app.create_user("sam", secrets[0], "user").status(),
        201
    );
    let r = stack
        .app
        .as_admin(Method::PUT, "/users/sam/password")
        .json(&json!({"password": secrets[1]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = stack
        .app
        .get("/users")
        .basic_auth("sam", Some(secrets[2]))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let htpasswd = stack.htpasswd();
    let hashes: Vec<&str> = htpasswd
        .lines()
        .filter_map(|l| l.split_once(':').map(|(_, h)| h))
        .collect();
    let audit_text = std::fs::read_to_string(stack.audit_path()).unwrap();
    let stderr = stack.app.stderr();
    for s in secrets
        .iter()
        .chain([ADMIN_PASSWORD].iter())
        .chain(hashes.iter())
    {
        assert!(!audit_text.contains(s), "audit log holds {s:?}");
        assert!(!stderr.contains(s), "stderr holds {s:?}");
    }
}

/// The backticked names in README.md's row for the `action` field of the audit table.
fn readme_actions() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `action` | yes |"))
        .expect("the audit table's action row in README.md");
    row.split('`')
        .skip(3) // "| ", "action", " | yes | "
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn every_action_written_can_be_filtered_on_and_the_readme_lists_each_one() {
    let stack = Stack::start();
    let (status, body) = audit(&stack, "?action=no.such");
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_request")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    let known: BTreeSet<String> = message
        .split_once("known actions: ")
        .expect("the message lists the known actions")
        .1
        .split(", ")
        .map(str::to_string)
        .collect();
    assert_eq!(
        known,
        readme_actions(),
        "the service and README.md disagree"
    );
    // Written by robots (src/robots) and retention (src/retention), so a filter on them must
    // answer, not be refused as unknown.
    for action in [
        "robot.create",
        "robot.grants",
        "robot.rotate",
        "robot.delete",
        "robot.expired",
        "retention.update",
        "retention.plan",
        "retention.apply",
        "backup.restore",
        "audit.torn_line",
    ] {
        assert!(known.contains(action), "{action} missing from {message}");
        let (status, body) = audit(&stack, &format!("?action={action}"));
        assert_eq!(status, 200, "{action}: {body}");
    }
}
