//! Retention against the real registry:2 and the real binary. The registry sends no
//! notifications here: the push and pull history is exactly the events each test posts to
//! `/events` with timestamps it chooses, so ages are known. Images are one pushed base image
//! stored again under other tags with an annotation that makes each digest distinct (cheap:
//! blob mounts and a manifest PUT).
//!
//! Covered: a plan deletes nothing; protect wins over every rule; re-tagging resets a tag's
//! age; a pull by digest keeps every tag of that digest; index children and signature tags
//! follow their subject; apply after a new push keeps the re-pushed tag; `max_delete` and the
//! last-tag rule hold; invalid policies change nothing; empty repositories are listed and
//! pruned by a GC job.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::gc::{multi_arch, run_gc, with_gc};
use common::images::{Layout, copy_by_mount, pull_all, raw_manifest};
use common::registry_lookup::{digest_of, host};
use common::{ADMIN_PASSWORD, AppEnv, EVENTS_TOKEN, Registry, Stack, admin, client, json};
use reqwest::Method;
use serde_json::{Value, json};

const DAY: i64 = 24 * 3600;

/// registry-admin and a registry that sends it no events.
fn quiet_stack() -> Stack {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = AppEnv::new(dir.path(), "http://127.0.0.1:1");
    let (app, registry) = common::on_free_port(|port| {
        let app = env.for_registry_port(port).start();
        let registry =
            Registry::try_start_on(dir.path(), &dir.path().join("auth/htpasswd"), port, None)?;
        Ok((app, registry))
    });
    Stack { dir, app, registry }
}

/// Pushes one base image to `seed/base:v1` and returns its raw manifest.
fn seed_base(stack: &Stack) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layout::new(dir.path());
    let img = l.image("amd64", None, 1);
    l.tag("img", &img);
    l.push(&host(stack), &admin(), "img", "seed/base", "v1", false);
    let raw = raw_manifest(&host(stack), &admin(), "seed/base:v1").expect("seed manifest");
    (dir, raw)
}

/// Stores the base image as `name:tag` with a distinct digest per `variant`; returns it.
fn put_variant(stack: &Stack, base: &[u8], name: &str, tag: &str, variant: &str) -> String {
    let mut m: Value = serde_json::from_slice(base).unwrap();
    m["annotations"] = json!({"test.variant": variant});
    let raw = serde_json::to_vec(&m).unwrap();
    copy_by_mount(
        &stack.registry.url,
        ADMIN_PASSWORD,
        "seed/base",
        &raw,
        name,
        tag,
    );
    digest_of(stack, name, tag)
}

/// A pruning GC job, dry or not, that succeeds and counts one emptied repository.
fn prune_the_one_empty_repository(stack: &Stack, dry_run: bool) {
    let job = run_gc(
        &stack.app,
        json!({"dry_run": dry_run, "prune_empty": true}),
        Duration::from_secs(120),
    );
    assert_eq!(
        (job["state"].as_str(), job["repositories_pruned"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{job}"
    );
}

static EVENT_ID: AtomicU64 = AtomicU64::new(0);

fn ago(seconds: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(seconds)
}

/// Posts one registry event as registry:2 would, at time `at`.
fn post_event(
    stack: &Stack,
    action: &str,
    name: &str,
    tag: Option<&str>,
    digest: &str,
    at: DateTime<Utc>,
) {
    let id = format!(
        "ev-{}-{}",
        std::process::id(),
        EVENT_ID.fetch_add(1, Ordering::SeqCst)
    );
    let mut target = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "repository": name});
    if let Some(t) = tag {
        target["tag"] = json!(t);
    }
    let body = json!({"events": [{"id": id, "timestamp": at.to_rfc3339(), "action": action,
        "target": target, "request": {"addr": "127.0.0.1:5000", "useragent": "test"},
        "actor": {"name": "ci"}}]});
    let (status, resp) = json(
        stack
            .app
            .request(Method::POST, "/events")
            .bearer_auth(EVENTS_TOKEN)
            .json(&body)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, resp["recorded"].as_u64()),
        (200, Some(1)),
        "{resp}"
    );
}

fn pushed(stack: &Stack, name: &str, tag: &str, digest: &str, at: DateTime<Utc>) {
    post_event(stack, "push", name, Some(tag), digest, at);
}

fn admin_with(stack: &Stack, method: Method, path: &str, body: Value) -> (u16, Value) {
    json(stack.app.as_admin(method, path).json(&body).send().unwrap())
}

fn put_policies(stack: &Stack, policies: Value) {
    let (status, body) = admin_with(
        stack,
        Method::PUT,
        "/retention",
        json!({"policies": policies}),
    );
    assert_eq!(status, 200, "{body}");
}

fn make_plan(stack: &Stack) -> Value {
    let (status, plan) = admin_with(stack, Method::POST, "/retention/plans", json!({}));
    assert_eq!(status, 201, "{plan}");
    plan
}

fn apply(stack: &Stack, plan: &Value, body: Value) -> Value {
    let id = plan["id"].as_str().unwrap();
    let (status, report) = admin_with(
        stack,
        Method::POST,
        &format!("/retention/plans/{id}/apply"),
        body,
    );
    assert_eq!(status, 200, "{report}");
    report
}

fn tags(stack: &Stack, name: &str) -> Vec<String> {
    let (status, body) = stack
        .app
        .admin_json(Method::GET, &format!("/images/{name}/tags"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body["tags"].clone()).unwrap()
}

/// The plan's entry for repository `name`.
fn repo<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in plan {plan}"))
}

fn listed(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["tag"].as_str().unwrap().to_string())
        .collect()
}

fn reason(items: &Value, tag: &str) -> String {
    items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tag"] == tag)
        .and_then(|i| i["reason"].as_str())
        .unwrap_or_else(|| panic!("{tag} not in {items}"))
        .to_string()
}

fn audit_actions(stack: &Stack, action: &str) -> Vec<Value> {
    let (status, body) = stack
        .app
        .admin_json(Method::GET, &format!("/audit?action={action}"));
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

#[test]
fn a_plan_changes_nothing_protect_wins_retagging_resets_age_and_a_kept_digest_keeps_all_its_tags() {
    let stack = quiet_stack();
    let (_d, base) = seed_base(&stack);
    let app = "team/app";
    let release = put_variant(&stack, &base, app, "v1.0", "release");
    let old = put_variant(&stack, &base, app, "old", "old");
    let fresh = put_variant(&stack, &base, app, "fresh", "fresh");
    let stale = put_variant(&stack, &base, app, "stale", "stale");
    // `retag` points at the same digest as `old`, first pushed long ago, re-tagged today.
    copy_by_mount(
        &stack.registry.url,
        ADMIN_PASSWORD,
        "seed/base",
        &raw_manifest(&host(&stack), &admin(), &format!("{app}@{old}")).unwrap(),
        app,
        "retag",
    );
    let pulled = put_variant(&stack, &base, app, "pulled-a", "pulled");
    copy_by_mount(
        &stack.registry.url,
        ADMIN_PASSWORD,
        "seed/base",
        &raw_manifest(&host(&stack), &admin(), &format!("{app}@{pulled}")).unwrap(),
        app,
        "pulled-b",
    );
    let other = put_variant(&stack, &base, "other/x", "old", "other");

    pushed(&stack, app, "v1.0", &release, ago(400 * DAY));
    pushed(&stack, app, "old", &old, ago(90 * DAY));
    pushed(&stack, app, "fresh", &fresh, ago(DAY));
    pushed(&stack, app, "stale", &stale, ago(90 * DAY));
    pushed(&stack, app, "retag", &old, ago(90 * DAY));
    pushed(&stack, app, "retag", &old, ago(DAY));
    pushed(&stack, app, "pulled-a", &pulled, ago(90 * DAY));
    pushed(&stack, app, "pulled-b", &pulled, ago(90 * DAY));
    post_event(&stack, "pull", app, None, &pulled, ago(2 * DAY));
    pushed(&stack, "other/x", "old", &other, ago(900 * DAY));

    put_policies(
        &stack,
        json!([{"repositories": "team/**", "protect": ["v[0-9.]+"],
            "rules": [{"pushed_within": "7d"}, {"pulled_within": "7d"}]}]),
    );
    let before = tags(&stack, app);
    let plan = make_plan(&stack);
    let r = repo(&plan, app);
    assert_eq!(listed(&r["delete"]), ["stale"], "{plan}");
    assert_eq!(
        listed(&r["keep"]),
        ["fresh", "old", "pulled-a", "pulled-b", "retag", "v1.0"]
    );
    assert!(reason(&r["keep"], "v1.0").contains("protected"), "{r}");
    assert!(reason(&r["keep"], "retag").contains("rule 1"), "{r}");
    assert!(reason(&r["keep"], "pulled-b").contains("rule 2"), "{r}");
    // Evaluated per digest: `old` is past every rule, but its digest is kept by `retag`.
    assert!(
        reason(&r["keep"], "old").contains("same digest as retag"),
        "{r}"
    );
    assert_eq!(
        plan["summary"],
        json!({"repositories": 1, "kept": 6, "delete": 1})
    );
    assert!(
        plan["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "other/x"),
        "no policy, untouched"
    );

    // Making a plan (twice), reading it: nothing changes in the registry.
    let again = make_plan(&stack);
    let (status, read) = stack.app.admin_json(
        Method::GET,
        &format!("/retention/plans/{}", plan["id"].as_str().unwrap()),
    );
    assert_eq!((status, &read["id"]), (200, &plan["id"]));
    assert_eq!(tags(&stack, app), before);
    assert_eq!(repo(&again, app)["delete"], r["delete"]);
    assert!(audit_actions(&stack, "tag.delete").is_empty());

    let report = apply(&stack, &plan, json!({}));
    assert_eq!(
        report["deleted"],
        json!([{"name": app, "tag": "stale", "digest": stale}])
    );
    assert_eq!(report["skipped"], json!([]));
    assert_eq!(
        tags(&stack, app),
        ["fresh", "old", "pulled-a", "pulled-b", "retag", "v1.0"]
    );
    assert_eq!(
        digest_of(&stack, app, "retag"),
        old,
        "the shared digest stays"
    );
    assert_eq!(tags(&stack, "other/x"), ["old"]);

    let deletes = audit_actions(&stack, "tag.delete");
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        (deletes[0]["image"].as_str(), deletes[0]["tag"].as_str()),
        (Some(app), Some("stale"))
    );
    let detail = deletes[0]["detail"].as_str().unwrap();
    assert!(detail.contains(plan["id"].as_str().unwrap()), "{detail}");
    assert_eq!(audit_actions(&stack, "retention.plan").len(), 2);
    let applied = audit_actions(&stack, "retention.apply");
    assert_eq!(applied.len(), 1);
    assert!(
        applied[0]["detail"].as_str().unwrap().contains("1 deleted"),
        "{}",
        applied[0]
    );
}

#[test]
fn index_children_and_signature_tags_follow_their_subject() {
    let stack = quiet_stack();
    let (_d, base) = seed_base(&stack);
    let name = "team/multi";
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layout::new(dir.path());
    let (index, children) = multi_arch(&mut l, "idx");
    l.push(&host(&stack), &admin(), "idx", name, "v2", false);
    assert_eq!(digest_of(&stack, name, "v2"), index.digest);
    // A tag on one child of the index, old; signatures of the index and of an old image.
    let child_raw = raw_manifest(
        &host(&stack),
        &admin(),
        &format!("{name}@{}", children[0].digest),
    )
    .unwrap();
    let c = client();
    let r = c
        .put(format!(
            "{}/v2/{name}/manifests/v2-amd64",
            stack.registry.url
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(child_raw)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let gone = put_variant(&stack, &base, name, "gone", "gone");
    let sig_kept = format!("sha256-{}.sig", index.digest.trim_start_matches("sha256:"));
    let sig_gone = format!("sha256-{}.att", gone.trim_start_matches("sha256:"));
    let sig_kept_digest = put_variant(&stack, &base, name, &sig_kept, "sig1");
    let sig_gone_digest = put_variant(&stack, &base, name, &sig_gone, "sig2");

    pushed(&stack, name, "v2", &index.digest, ago(DAY));
    pushed(
        &stack,
        name,
        "v2-amd64",
        &children[0].digest,
        ago(300 * DAY),
    );
    pushed(&stack, name, "gone", &gone, ago(300 * DAY));
    pushed(&stack, name, &sig_kept, &sig_kept_digest, ago(300 * DAY));
    pushed(&stack, name, &sig_gone, &sig_gone_digest, ago(300 * DAY));

    put_policies(
        &stack,
        json!([{"repositories": "team/*", "rules": [{"newest_pushed": 1}]}]),
    );
    let plan = make_plan(&stack);
    let r = repo(&plan, name);
    let mut expected = vec!["gone".to_string(), sig_gone.clone()];
    expected.sort();
    assert_eq!(listed(&r["delete"]), expected, "{plan}");
    assert!(
        reason(&r["keep"], "v2-amd64").contains("child of the index v2"),
        "{r}"
    );
    assert!(
        reason(&r["keep"], &sig_kept).contains("signature of"),
        "{r}"
    );
    assert!(
        reason(&r["delete"], &sig_gone).contains("signature of"),
        "{r}"
    );

    let report = apply(&stack, &plan, json!({}));
    assert_eq!(report["deleted"].as_array().unwrap().len(), 2, "{report}");
    let mut left = vec!["v2".to_string(), "v2-amd64".to_string(), sig_kept.clone()];
    left.sort();
    assert_eq!(tags(&stack, name), left);
    let into = tempfile::tempdir().unwrap();
    pull_all(&host(&stack), &admin(), &format!("{name}:v2"), into.path())
        .expect("the index and both children still pull");
}

#[test]
fn apply_re_checks_live_so_a_re_pushed_tag_stays_and_max_delete_and_the_last_tag_hold() {
    let stack = quiet_stack();
    let (_d, base) = seed_base(&stack);
    let name = "ci/builds";
    let mut digests = Vec::new();
    for (i, t) in ["a", "b", "c", "d"].iter().enumerate() {
        let d = put_variant(&stack, &base, name, t, t);
        pushed(&stack, name, t, &d, ago((100 - i as i64) * DAY));
        digests.push(d);
    }
    // A rule that keeps nothing: every tag is a candidate but the newest, the last one left.
    put_policies(
        &stack,
        json!([{"repositories": "ci/**", "rules": [{"include": "release-.*"}]}]),
    );
    let plan = make_plan(&stack);
    let r = repo(&plan, name);
    assert_eq!(listed(&r["delete"]), ["a", "b", "c"], "{plan}");
    assert_eq!(listed(&r["keep"]), ["d"]);
    assert!(reason(&r["keep"], "d").contains("last tag"), "{r}");

    // `a` is pushed again after the plan (same digest): it is young now, so it stays.
    pushed(&stack, name, "a", &digests[0], ago(0));
    // And `c` now holds another image: not the planned digest.
    let c2 = put_variant(&stack, &base, name, "c", "c2");
    pushed(&stack, name, "c", &c2, ago(50 * DAY));
    let report = apply(&stack, &plan, json!({"max_delete": 1}));
    assert_eq!(
        report["deleted"],
        json!([{"name": name, "tag": "b", "digest": digests[1]}]),
        "{report}"
    );
    let skipped = &report["skipped"];
    assert!(reason(skipped, "a").starts_with("kept now"), "{report}");
    assert!(reason(skipped, "c").contains("now points to"), "{report}");
    assert_eq!(tags(&stack, name), ["a", "c", "d"]);

    // A new plan: only `c` is a candidate; max_delete 1 deletes it, and never the last tag.
    put_policies(
        &stack,
        json!([{"repositories": "ci/**", "rules": [{"pushed_within": "1d"}]}]),
    );
    let plan = make_plan(&stack);
    assert_eq!(listed(&repo(&plan, name)["delete"]), ["c", "d"], "{plan}");
    let report = apply(&stack, &plan, json!({"max_delete": 1}));
    assert_eq!(report["deleted"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(reason(&report["skipped"], "d"), "max_delete reached");
    assert_eq!(tags(&stack, name), ["a", "d"]);

    // Bad caps are refused before anything happens.
    let id = plan["id"].as_str().unwrap();
    for bad in [
        json!({"max_delete": 0}),
        json!({"max_delete": -1}),
        json!({"max": 1}),
    ] {
        let (status, body) = admin_with(
            &stack,
            Method::POST,
            &format!("/retention/plans/{id}/apply"),
            bad,
        );
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{body}"
        );
    }
    assert_eq!(tags(&stack, name), ["a", "d"]);
}

#[test]
fn invalid_policies_are_refused_and_change_nothing() {
    let stack = quiet_stack();
    let good = json!({"policies": [{"repositories": "team/**", "protect": ["latest"],
        "rules": [{"include": "ci-.*", "newest_pushed": 5, "pushed_within": "30d"}]}]});
    let (status, body) = admin_with(&stack, Method::PUT, "/retention", good.clone());
    assert_eq!((status, &body), (200, &good));
    let file = stack.dir.path().join("auth/retention.json");
    let on_disk = std::fs::read(&file).expect("retention.json beside grants.json");
    for bad in [
        json!({"policies": [{"repositories": "team/**", "rules": [{"newest_push": 5}]}]}),
        json!({"policies": [{"repositories": "team/**", "rules": [{"include": "ci-(["}]}]}),
        json!({"policies": [{"repositories": "team/**", "rules": [{"pushed_within": "30"}]}]}),
        json!({"policies": [{"repositories": "Team", "rules": []}]}),
        json!({"policies": [{"repositories": "**", "rules": [{"newest_pulled": 0}]}]}),
        json!({"policies": [{"repositories": "**", "protect": "latest"}]}),
        json!({"policies": [{"repositories": "**"}], "extra": true}),
    ] {
        let (status, body) = admin_with(&stack, Method::PUT, "/retention", bad.clone());
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_policy")),
            "{bad}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::PUT, "/retention")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_policy"))
    );
    assert_eq!(std::fs::read(&file).unwrap(), on_disk, "nothing changed");
    assert_eq!(stack.app.admin_json(Method::GET, "/retention"), (200, good));

    let (status, body) = stack
        .app
        .admin_json(Method::GET, "/retention/plans/0123abcd");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = stack
        .app
        .admin_json(Method::POST, "/retention/plans/0123abcd/apply");
    assert_eq!(status, 404);
    let (status, body) = admin_with(
        &stack,
        Method::POST,
        "/retention/plans",
        json!({"repositories": "UP"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Users may not see or change policies.
    stack.app.create_user("alice", "alice-password-1", "user");
    let r = stack
        .app
        .request(Method::GET, "/retention")
        .basic_auth("alice", Some("alice-password-1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn a_bad_retention_schedule_stops_start_up_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["weekly", "daily@25:00", "daily@3:00"] {
        let (code, stderr) = AppEnv::new(dir.path(), "http://127.0.0.1:9")
            .set("RETENTION_SCHEDULE", bad)
            .run_to_exit();
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("RETENTION_SCHEDULE"), "{stderr}");
    }
}

#[test]
fn empty_repositories_are_listed_and_a_gc_job_prunes_them() {
    let mut stack = Stack::start_with(with_gc);
    let (_d, base) = seed_base(&stack);
    put_variant(&stack, &base, "keep/app", "v1", "keep");
    let gone = put_variant(&stack, &base, "gone/app", "v1", "gone");
    let (status, body) = stack
        .app
        .admin_json(Method::DELETE, "/images/gone/app/tags/v1");
    assert_eq!(status, 200, "{body}");
    // A tag delete never deletes by digest (a sibling could be tagged meanwhile), so the
    // manifest stays, untagged, until an untagged GC; here it goes by digest at the registry,
    // as `skopeo delete` would, leaving a repository with no tag and no manifest.
    let status = common::client()
        .delete(format!(
            "{}/v2/gone/app/manifests/{gone}",
            stack.registry.url
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .expect("DELETE manifest")
        .status();
    assert_eq!(status, 202);

    let (status, body) = stack.app.admin_json(Method::GET, "/images");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["repositories"],
        json!(["gone/app", "keep/app", "seed/base"])
    );
    assert_eq!(body["empty"], json!(["gone/app"]));
    let (_, body) = stack.app.admin_json(Method::GET, "/images?hide_empty=true");
    assert_eq!(
        body,
        json!({"repositories": ["keep/app", "seed/base"], "empty": ["gone/app"]})
    );
    let (status, _) = stack
        .app
        .admin_json(Method::GET, "/images?hide_empty=maybe");
    assert_eq!(status, 400);

    // A dry run counts and removes nothing.
    prune_the_one_empty_repository(&stack, true);
    let (_, body) = stack.app.admin_json(Method::GET, "/images");
    assert_eq!(body["empty"], json!(["gone/app"]));

    stack.registry.make_read_only();
    prune_the_one_empty_repository(&stack, false);
    let (_, body) = stack.app.admin_json(Method::GET, "/images");
    assert_eq!(
        body,
        json!({"repositories": ["keep/app", "seed/base"], "empty": []})
    );
    let into = tempfile::tempdir().unwrap();
    pull_all(&host(&stack), &admin(), "keep/app:v1", into.path()).expect("kept image pulls");
    let finish = audit_actions(&stack, "gc.finish");
    assert!(
        finish[0]["detail"]
            .as_str()
            .unwrap()
            .contains("repositories_pruned=1"),
        "{}",
        finish[0]
    );
}

/// In-process (no registry needed): while a garbage collection freezes writes, making and
/// applying plans are 409 `maintenance`.
#[actix_web::test]
async fn plans_are_refused_with_maintenance_while_writes_are_frozen() {
    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
    use registry_admin::app;

    let t = common::in_process::TestApp::new().with_users(4).build();
    let state = t.state.clone();
    let service = init_service(app(state.clone())).await;
    let auth = ("authorization", "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQ=");
    let post = |path: &str| {
        TestRequest::post()
            .uri(path)
            .insert_header(auth)
            .insert_header(("content-type", "application/json"))
            .set_payload("{}")
            .to_request()
    };
    // No policies: a plan of nothing, made without asking the registry.
    let resp = call_service(&service, post("/retention/plans")).await;
    assert_eq!(resp.status(), 201);
    let plan: Value = read_body_json(resp).await;
    assert_eq!(
        plan["summary"],
        json!({"repositories": 0, "kept": 0, "delete": 0})
    );
    let id = plan["id"].as_str().unwrap().to_string();

    state.freeze.freeze(Utc::now());
    for path in [
        "/retention/plans".to_string(),
        format!("/retention/plans/{id}/apply"),
    ] {
        let resp = call_service(&service, post(&path)).await;
        assert_eq!(resp.status(), 409, "{path}");
        let body: Value = read_body_json(resp).await;
        assert_eq!(body["error"], "maintenance", "{path}");
    }
    state.freeze.thaw();
    let resp = call_service(&service, post(&format!("/retention/plans/{id}/apply"))).await;
    assert_eq!(resp.status(), 200);
    let report: Value = read_body_json(resp).await;
    assert_eq!(report, json!({"deleted": [], "skipped": []}));
}

#[test]
fn prune_empty_needs_filesystem_storage() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("registry-config.yml");
    common::registry_config::RegistryConfig::new(1, common::registry_config::Storage::InMemory)
        .write(&config);
    let app = AppEnv::new(dir.path(), "http://127.0.0.1:1")
        .set("REGISTRY_CONFIG", &config.display().to_string())
        .set(
            "REGISTRY_BIN",
            &common::registry_bin().display().to_string(),
        )
        .start();
    let (status, body) = json(
        app.as_admin(Method::POST, "/gc")
            .json(&json!({"prune_empty": true}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("filesystem"),
        "{body}"
    );
    let (status, body) = app.admin_json(Method::GET, "/gc");
    assert_eq!(
        (status, &body["jobs"]),
        (200, &json!([])),
        "no job was started"
    );
}
