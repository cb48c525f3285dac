//! The audit log is bounded and never fails open: entries of at most 4 KiB, identical token
//! requests and pulls written once with a count, and on a full audit volume every
//! state-changing request refused with 503 `audit_unavailable`, changing nothing, until room
//! returns.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::auth::metrics_text;
use common::token_stack::{SERVICE, TokenStack};
use common::volume::SmallVolume;
use common::{ADMIN_PASSWORD, Stack, json, post_events, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

const MAX_ENTRY_BYTES: usize = 4096;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn parsed(path: &Path) -> Vec<Value> {
    lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).expect("audit line"))
        .collect()
}

fn pull_event(id: &str) -> Value {
    json!({"events": [{
        "id": id, "timestamp": "2026-11-23T00:33:09.120313848Z", "action": "pull",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": "sha256:41e7", "repository": "loop/app", "tag": "v1"},
        "request": {"id": id, "addr": "127.0.0.1:4444", "useragent": "skopeo/1.9.3"},
        "actor": {"name": "puller"}
    }]})
}

/// How many times something happened, from the entries written for it.
fn occurrences(entries: &[&Value]) -> u64 {
    entries
        .iter()
        .map(|e| 1 + e["repeats"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn token_requests_and_pulls_repeated_within_a_minute_are_written_once_with_a_count() {
    let mut stack = TokenStack::start();
    let admin = Some(("admin", ADMIN_PASSWORD));
    let query = format!("service={SERVICE}&scope=repository:loop/app:pull");
    for _ in 0..30 {
        assert_eq!(stack.token(&query, admin).status(), 200);
    }
    for i in 0..20 {
        let (status, body) = post_events(&stack.app.url, &pull_event(&format!("pull-{i}")));
        assert_eq!(status, 200, "{body}");
    }
    let log = stack.path("logs/audit.log");
    let issued = |all: &[Value]| -> Vec<Value> {
        all.iter()
            .filter(|e| {
                e["action"] == "token.issue"
                    && e["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("requested repository:loop/app:pull;"))
            })
            .cloned()
            .collect()
    };
    let pulls = |all: &[Value]| -> Vec<Value> {
        all.iter()
            .filter(|e| e["action"] == "image.pull" && e["image"] == "loop/app")
            .cloned()
            .collect()
    };
    let now = parsed(&log);
    assert_eq!(issued(&now).len(), 1, "{:#?}", issued(&now));
    assert_eq!(pulls(&now).len(), 1, "{:#?}", pulls(&now));

    // Another address or actor is another kind of entry, written at once.
    let alice_pull = {
        let mut e = pull_event("pull-alice");
        e["events"][0]["actor"]["name"] = json!("alice");
        e
    };
    assert_eq!(post_events(&stack.app.url, &alice_pull).0, 200);
    assert_eq!(pulls(&parsed(&log)).len(), 2);

    // Stopping writes the repeats still counted: nothing is lost.
    stack.app.terminate(Duration::from_secs(20));
    let all = parsed(&log);
    let issued = issued(&all);
    assert_eq!(issued.len(), 2, "{issued:#?}");
    assert_eq!(occurrences(&issued.iter().collect::<Vec<_>>()), 30);
    assert_eq!(issued[1]["repeats"], 28, "{issued:#?}");
    let all_pulls = pulls(&all);
    let puller: Vec<&Value> = all_pulls
        .iter()
        .filter(|e| e["actor"] == "puller")
        .collect();
    assert_eq!(occurrences(&puller), 20, "{puller:#?}");

    stack.restart_app(|env| env);
    let (status, report) = stack.app.admin_json(Method::GET, "/audit/verify");
    assert_eq!((status, &report["ok"]), (200, &json!(true)), "{report}");
}

#[test]
fn no_entry_is_larger_than_4_kib_and_a_cut_list_says_how_many_were_left_out() {
    let stack = TokenStack::start();
    // 64 scopes of 200-character repository names: 29 KB of detail before the bound.
    let scopes: Vec<String> = (0..64)
        .map(|i| format!("scope=repository:big/{i:02}{}:pull", "a".repeat(194)))
        .collect();
    let query = format!("service={SERVICE}&{}", scopes.join("&"));
    let resp = stack.token(&query, Some(("admin", ADMIN_PASSWORD)));
    assert_eq!(resp.status(), 200);
    let log = stack.path("logs/audit.log");
    let all = lines(&log);
    assert!(
        all.iter().all(|l| l.len() <= MAX_ENTRY_BYTES),
        "longest line: {} bytes",
        all.iter().map(String::len).max().unwrap_or(0)
    );
    let entry: Value = all
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["action"] == "token.issue")
        .expect("the token.issue entry");
    let detail = entry["detail"].as_str().unwrap();
    let (requested, granted) = detail.split_once("; granted ").expect(detail);
    for list in [requested, granted] {
        let more = list
            .rsplit_once("… and ")
            .and_then(|(_, n)| n.strip_suffix(" more"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no count of left-out scopes in {list:?}"));
        let kept = list.matches("repository:big/").count();
        assert_eq!(kept + more, 64, "{list}");
    }
}

#[test]
fn on_a_full_audit_volume_changes_are_refused_with_503_and_it_recovers_by_itself() {
    let mount_dir = tempfile::tempdir().unwrap();
    let logs = mount_dir.path().join("logs");
    let Some(volume) = SmallVolume::mount(&logs, "2m") else {
        return;
    };
    let log = logs.join("audit.log");
    let stack = Stack::start_with(|env| {
        env.set("AUDIT_LOG_PATH", log.to_str().unwrap())
            .set("AUDIT_MIN_FREE_BYTES", "1048576")
    });
    let app = &stack.app;
    assert_eq!(
        app.create_user("victim", "victim-pass-1", "user").status(),
        201
    );
    let (status, ready) = json(app.get("/health/ready").send().unwrap());
    assert_eq!(
        (status, &ready["checks"]["audit"]),
        (200, &json!("ok")),
        "{ready}"
    );
    assert!(ready.get("warnings").is_none(), "{ready}");

    let filler = volume.fill();
    // A reservation made just before may still stand for a few requests (its room is real);
    // readiness asks the writer afresh, and once it has seen the full volume every request does.
    wait_until(
        "readiness to see the full volume",
        Duration::from_secs(20),
        || {
            let (_, ready) = json(app.get("/health/ready").send().unwrap());
            ready["checks"]["audit"] != "ok"
        },
    );
    let htpasswd = stack.htpasswd();
    let users_json = std::fs::read_to_string(stack.users_json_path()).unwrap();
    let entries_before = lines(&log).len();

    let refused = |method: Method, path: &str, body: Option<Value>| {
        let mut req = app.as_admin(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (status, body) = json(req.send().unwrap());
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"], "audit_unavailable", "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("nothing was changed"),
            "{body}"
        );
    };
    refused(Method::DELETE, "/users/victim", None);
    refused(
        Method::PUT,
        "/users/victim/role",
        Some(json!({"role": "admin"})),
    );
    refused(Method::POST, "/users/victim/disable", None);
    refused(
        Method::POST,
        "/users",
        Some(json!({"username": "newcomer", "password": "newcomer-pass-1"})),
    );
    refused(
        Method::PUT,
        "/grants/public",
        Some(json!({"repositories": ["pub/*"]})),
    );
    assert_eq!(stack.htpasswd(), htpasswd, "htpasswd changed");
    assert_eq!(
        std::fs::read_to_string(stack.users_json_path()).unwrap(),
        users_json,
        "users.json changed"
    );
    assert!(
        !stack.dir.path().join("auth/grants.json").exists() || {
            let g = std::fs::read_to_string(stack.dir.path().join("auth/grants.json")).unwrap();
            !g.contains("pub/*")
        }
    );
    // Reads go on; a failed login is still refused.
    let (status, user) = app.admin_json(Method::GET, "/users/victim");
    assert_eq!((status, &user["role"]), (200, &json!("user")), "{user}");
    let (status, _) = json(
        app.request(Method::POST, "/auth/token")
            .basic_auth("victim", Some("wrong-password-1"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401);
    // The registry's notification is refused so that it keeps and retries it.
    let push = json!({"events": [{
        "id": "push-during-outage", "timestamp": "2026-11-23T00:33:09.120Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": "sha256:41e7", "repository": "full/app", "tag": "v1"},
        "request": {"addr": "127.0.0.1:4444"}, "actor": {"name": "victim"}
    }]});
    let (status, body) = post_events(&app.url, &push);
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("audit_unavailable")),
        "{body}"
    );

    let (status, ready) = json(app.get("/health/ready").send().unwrap());
    assert_eq!((status, &ready["status"]), (503, &json!("fail")), "{ready}");
    let audit = ready["checks"]["audit"].as_str().unwrap();
    assert!(audit.starts_with("cannot write: No space left"), "{ready}");
    let warning = ready["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("AUDIT_MIN_FREE_BYTES"), "{ready}");
    let metrics = metrics_text(app);
    assert!(
        metrics.contains("registry_admin_audit_writable 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("registry_admin_audit_volume_low 1\n"),
        "{metrics}"
    );
    assert!(
        lines(&log).len() <= entries_before + 1,
        "entries written while full"
    );

    // Room returns: readiness sees it, and the same requests now work and are audited.
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        "the audit check to recover",
        Duration::from_secs(20),
        || {
            let (_, ready) = json(app.get("/health/ready").send().unwrap());
            ready["checks"]["audit"] == "ok"
        },
    );
    let resp = app
        .as_admin(Method::DELETE, "/users/victim")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(!stack.htpasswd().contains("victim:"));
    assert_eq!(post_events(&app.url, &push).0, 200);
    let all = parsed(&log);
    assert!(
        all.iter()
            .any(|e| e["action"] == "user.delete" && e["user"] == "victim" && e["status"] == 204),
        "{all:#?}"
    );
    assert_eq!(
        all.iter()
            .filter(|e| e["action"] == "image.push" && e["image"] == "full/app")
            .count(),
        1
    );
    let (status, report) = app.admin_json(Method::GET, "/audit/verify");
    assert_eq!((status, &report["ok"]), (200, &json!(true)), "{report}");
    drop(stack);
    drop(volume);
}
