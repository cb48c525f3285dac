//! Garbage collection in token mode, against the real registry:2 with skopeo: a real job
//! freezes writes — `/token` grants no push, a push is refused, API tag deletes are 409
//! `maintenance`, pulls go on — until every write token out has expired; untagged cleanup then
//! reclaims a re-pushed tag's old manifest and its blobs while every child of a tagged OCI
//! index and Docker manifest list stays; pushes work again after the job. A job killed with
//! the process while freezing is failed at the restart, and nothing stays frozen.
//!
//! Registry tokens live 60 s here (the least `REGISTRY_TOKEN_TTL` allows), so a freeze after a
//! push lasts about two minutes: that token's life plus registry:2's 60 s leeway.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::auth::metric;
use common::gc::{
    PullLoop, multi_arch, named, pulled, run_gc, start_gc, wait_for_job, wait_for_state, with_gc,
};
use common::images::{Layout, raw_manifest};
use common::token_stack::{SERVICE, TokenStack, claims};
use common::{ADMIN_PASSWORD, AppEnv, admin, client};
use reqwest::Method;
use serde_json::{Value, json};

fn gc_env(env: AppEnv) -> AppEnv {
    with_gc(env)
        .set("GC_UNTAGGED_GRACE", "0")
        .set("REGISTRY_TOKEN_TTL", "60")
}

/// The actions an admin's registry token for `repository:NAME:pull,push` carries.
fn push_token_actions(stack: &TokenStack, name: &str) -> Value {
    let token = stack.registry_token(
        &format!("repository:{name}:pull,push"),
        Some(("admin", ADMIN_PASSWORD)),
    );
    claims(&token)["access"][0]["actions"].clone()
}

fn layout_blob(l: &Layout, digest: &str) -> Vec<u8> {
    std::fs::read(l.dir.join("blobs/sha256").join(&digest["sha256:".len()..])).expect("layout blob")
}

#[test]
fn a_real_job_freezes_writes_reclaims_a_re_pushed_tag_s_old_manifest_and_keeps_index_children() {
    let stack = TokenStack::start_with(gc_env);
    let host = stack.host();
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layout::new(dir.path());
    let old = l.image("amd64", None, 2);
    l.tag("old", &old);
    let new = l.image("amd64", None, 1);
    l.tag("new", &new);
    let (_, [a, b]) = multi_arch(&mut l, "idx");
    let keep = l.image("amd64", None, 1);
    l.tag("keep", &keep);
    // The CI habit: `latest` pushed again, leaving the old manifest untagged.
    l.push(&host, &admin(), "old", "app/web", "latest", false);
    l.push(&host, &admin(), "new", "app/web", "latest", false);
    l.push(&host, &admin(), "idx", "app/multi", "v1", false);
    l.push(&host, &admin(), "idx", "app/list", "v1", true);
    l.push(&host, &admin(), "keep", "app/keep", "v1", false);
    let list_children: Vec<String> = named(&raw_manifest(&host, &admin(), "app/list:v1").unwrap());
    assert_eq!(list_children.len(), 2);
    assert_eq!(stack.manifest_status("app/web", &old.digest), 200);
    let old_blobs: BTreeSet<String> = named(&layout_blob(&l, &old.digest))
        .into_iter()
        .chain([old.digest.clone()])
        .collect();
    let kept = [
        "app/web:latest",
        "app/multi:v1",
        "app/list:v1",
        "app/keep:v1",
    ]
    .map(String::from);
    let before = pulled(&host, &admin(), &kept);

    // A dry run counts the untagged manifest, deletes nothing and freezes nothing.
    let files = stack.registry.files();
    let dry = run_gc(
        &stack.app,
        json!({"untagged": true}),
        Duration::from_secs(60),
    );
    assert_eq!(
        (dry["state"].as_str(), dry["manifests_deleted"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{dry}"
    );
    assert_eq!(stack.registry.files(), files, "a dry run deletes nothing");
    assert_eq!(stack.manifest_status("app/web", &old.digest), 200);

    // Pulls with fresh pull tokens, 20 a second at most, through the whole job (the loop's
    // 5,000 pulls outlast the longest freeze).
    let realm = format!(
        "{}/token?service={SERVICE}&scope=repository:app/keep:pull",
        stack.app.url
    );
    let pause = Duration::from_millis(50);
    let puller = PullLoop::start(&stack.registry.url, "app/keep", "v1", pause, move |r| {
        let token: Option<Value> = client()
            .get(&realm)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .and_then(|t| t.json())
            .ok();
        let token = token.and_then(|t| t["token"].as_str().map(str::to_string));
        r.bearer_auth(token.unwrap_or_default())
    });

    // The real job: the pushes above hold write tokens for another minute and more.
    let (status, job) = start_gc(&stack.app, json!({"dry_run": false, "untagged": true}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    wait_for_state(&stack.app, &id, "freezing", Duration::from_secs(10));

    assert_eq!(
        push_token_actions(&stack, "app/web"),
        json!(["pull"]),
        "/token grants no push while frozen"
    );
    let refused = stack
        .skopeo_push(&admin(), "app/web", "during")
        .expect_err("a push during the freeze must fail");
    assert!(
        refused.contains("denied") || refused.contains("unauthorized"),
        "{refused}"
    );
    let (status, body) = stack
        .app
        .admin_json(Method::DELETE, "/images/app/keep/tags/v1");
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("maintenance")),
        "{body}"
    );
    let (status, access) = stack
        .app
        .admin_json(Method::GET, "/users/admin/access?repository=app/web");
    assert_eq!(
        (status, &access["actions"], &access["frozen"]),
        (200, &json!(["pull"]), &json!(true)),
        "{access}"
    );
    stack
        .skopeo_pull(Some(&admin()), "app/keep:v1")
        .expect("pulls go on during the freeze");
    let (_, now) = stack.app.admin_json(Method::GET, &format!("/gc/{id}"));
    assert_eq!(
        now["state"], "freezing",
        "the checks above ran while frozen: {now}"
    );
    assert_eq!(
        stack.manifest_status("app/web", &old.digest),
        200,
        "nothing is deleted before the write tokens have expired"
    );

    let blobs_before = stack.registry.blobs();
    let done = wait_for_job(&stack.app, &id, Duration::from_secs(300));
    let (pulls, failures) = puller.stop();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(pulls > 10, "{pulls} pulls");
    assert_eq!(
        failures, 0,
        "{failures} of {pulls} pulls failed during the job"
    );
    assert_eq!(done["manifests_deleted"], 1, "{done}");
    assert_eq!(
        done["blobs_deleted"].as_u64(),
        Some(old_blobs.len() as u64),
        "{done}"
    );
    assert!(done["bytes_freed"].as_u64().unwrap() > 0, "{done}");
    let removed: BTreeSet<String> = blobs_before
        .difference(&stack.registry.blobs())
        .cloned()
        .collect();
    assert_eq!(
        removed, old_blobs,
        "exactly the old manifest and its blobs went"
    );

    assert_eq!(stack.manifest_status("app/web", &old.digest), 404);
    for (name, child) in [
        ("app/multi", &a.digest),
        ("app/multi", &b.digest),
        ("app/list", &list_children[0]),
        ("app/list", &list_children[1]),
    ] {
        assert_eq!(
            stack.manifest_status(name, child),
            200,
            "{name}@{child}, a child of a tagged index, stays"
        );
    }
    assert_eq!(
        pulled(&host, &admin(), &kept),
        before,
        "every tagged image pulls byte-identical"
    );

    let entries = stack.audit_entries();
    let deletes: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "image.delete" && e["source"] == "api")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        (
            &deletes[0]["image"],
            &deletes[0]["digest"],
            &deletes[0]["detail"],
            &deletes[0]["actor"]
        ),
        (
            &json!("app/web"),
            &json!(old.digest),
            &json!("untagged"),
            &json!("admin")
        )
    );
    assert!(
        entries.iter().any(|e| e["action"] == "gc.finish"
            && e["outcome"] == "success"
            && e["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("job {id} succeeded"))),
        "gc.finish of the real job"
    );

    // Metrics: both jobs ran; only the real one freed bytes.
    assert_eq!(
        metric(
            &stack.app,
            "registry_admin_gc_runs_total{outcome=\"succeeded\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(&stack.app, "registry_admin_gc_bytes_freed_total"),
        done["bytes_freed"].as_f64().unwrap()
    );

    // The freeze is over.
    assert_eq!(
        push_token_actions(&stack, "app/web"),
        json!(["pull", "push"])
    );
    stack
        .skopeo_push(&admin(), "app/web", "after")
        .expect("a push after the job");
    let (status, body) = stack
        .app
        .admin_json(Method::DELETE, "/images/app/keep/tags/v1");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_job_killed_while_freezing_is_failed_at_restart_and_pushes_work_again() {
    let mut stack = TokenStack::start_with(gc_env);
    stack
        .skopeo_push(&admin(), "app/one", "v1")
        .expect("push before the job");
    let (status, job) = start_gc(&stack.app, json!({"dry_run": false}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    wait_for_state(&stack.app, &id, "freezing", Duration::from_secs(10));
    assert!(
        stack.skopeo_push(&admin(), "app/one", "v2").is_err(),
        "frozen before the kill"
    );

    stack.app.kill();
    stack.restart_app(gc_env);
    let (status, j) = stack.app.admin_json(Method::GET, &format!("/gc/{id}"));
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["state"], "failed", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{j}"
    );
    assert_eq!(
        push_token_actions(&stack, "app/one"),
        json!(["pull", "push"]),
        "no freeze survives the restart"
    );
    stack
        .skopeo_push(&admin(), "app/one", "v2")
        .expect("a push after the restart");
    stack
        .skopeo_pull(Some(&admin()), "app/one:v2")
        .expect("and it pulls");
    let finished = stack.audit_entries().into_iter().any(|e| {
        e["action"] == "gc.finish"
            && e["outcome"] == "failure"
            && e["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("job {id} failed"))
    });
    assert!(finished, "gc.finish of the interrupted job");
}

/// README "Keeping the registry small", in token mode: a retention plan applied deletes a tag
/// (never by digest, so its manifest stays, untagged), an API delete empties a repository, and
/// one job with `untagged` and `prune_empty` then removes both manifests and their blobs from
/// storage and the emptied repository from the catalog, while what was kept still pulls.
#[test]
fn retention_then_an_untagged_pruning_job_reclaims_the_deleted_tags_and_empty_repositories() {
    let stack = TokenStack::start_with(gc_env);
    let host = stack.host();
    let dir = tempfile::tempdir().unwrap();
    let mut l = Layout::new(dir.path());
    let keep = l.image("amd64", None, 1);
    l.tag("keep", &keep);
    let old = l.image("amd64", None, 2);
    l.tag("old", &old);
    let gone = l.image("amd64", None, 1);
    l.tag("gone", &gone);
    l.push(&host, &admin(), "keep", "ci/app", "keep-1", false);
    l.push(&host, &admin(), "old", "ci/app", "old-1", false);
    l.push(&host, &admin(), "gone", "gone/app", "v1", false);
    // Retention dates tags by the registry's push notifications: wait until both are in.
    common::wait_until("push events", Duration::from_secs(30), || {
        stack
            .audit_entries()
            .iter()
            .filter(|e| e["action"] == "image.push" && e["image"] == "ci/app")
            .count()
            >= 2
    });
    let reclaimed: BTreeSet<String> = [&old, &gone]
        .iter()
        .flat_map(|d| {
            named(&layout_blob(&l, &d.digest))
                .into_iter()
                .chain([d.digest.clone()])
        })
        .collect();

    let (status, body) = json_call(
        &stack,
        Method::PUT,
        "/retention",
        json!({"policies": [{"repositories": "ci/**", "protect": ["keep-.*"],
            "rules": [{"include": "release-.*"}]}]}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, plan) = json_call(&stack, Method::POST, "/retention/plans", json!({}));
    assert_eq!(status, 201, "{plan}");
    let (status, applied) = json_call(
        &stack,
        Method::POST,
        &format!("/retention/plans/{}/apply", plan["id"].as_str().unwrap()),
        json!({}),
    );
    assert_eq!(status, 200, "{applied}");
    assert_eq!(
        applied["deleted"],
        json!([{"name": "ci/app", "tag": "old-1", "digest": old.digest}]),
        "{applied}"
    );
    let (status, body) = stack
        .app
        .admin_json(Method::DELETE, "/images/gone/app/tags/v1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stack.manifest_status("ci/app", &old.digest),
        200,
        "a tag delete leaves the manifest, untagged"
    );
    let (_, images) = stack.app.admin_json(Method::GET, "/images");
    assert_eq!(images["empty"], json!(["gone/app"]), "{images}");

    let blobs_before = stack.registry.blobs();
    let done = run_gc(
        &stack.app,
        json!({"dry_run": false, "untagged": true, "prune_empty": true}),
        Duration::from_secs(300),
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        (&done["manifests_deleted"], &done["repositories_pruned"]),
        (&json!(2), &json!(1)),
        "{done}"
    );
    let removed: BTreeSet<String> = blobs_before
        .difference(&stack.registry.blobs())
        .cloned()
        .collect();
    // On 2.8 the throw-away manifests of the tag deletes (and their config blobs) go too.
    assert!(
        reclaimed.is_subset(&removed),
        "the deleted images' manifests and blobs went: {:?} left",
        reclaimed.difference(&removed).collect::<Vec<_>>()
    );
    let kept: BTreeSet<String> = named(&layout_blob(&l, &keep.digest))
        .into_iter()
        .chain([keep.digest.clone()])
        .collect();
    assert!(
        kept.is_subset(&stack.registry.blobs()),
        "every blob of the kept image stays"
    );
    let (_, images) = stack.app.admin_json(Method::GET, "/images");
    assert_eq!(
        images,
        json!({"repositories": ["ci/app"], "empty": []}),
        "the emptied repository left the catalog"
    );
    stack
        .skopeo_pull(Some(&admin()), "ci/app:keep-1")
        .expect("the protected tag still pulls");
}

/// An admin request with a JSON body; (status, JSON).
fn json_call(stack: &TokenStack, method: Method, path: &str, body: Value) -> (u16, Value) {
    common::json(
        stack
            .app
            .as_admin(method, path)
            .json(&body)
            .send()
            .unwrap_or_else(|e| panic!("{path}: {e}")),
    )
}
