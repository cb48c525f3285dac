//! Garbage collection against the real registry:2 and the real binary: refusals before a job
//! starts, a dry run that deletes nothing and names what the real run then deletes, a real run
//! (htpasswd mode, registry read-only) that removes exactly the blobs of deleted images while
//! every kept image — OCI image, schema2, OCI index, manifest list — pulls intact, and pulls that
//! never fail while the job runs.
//!
//! The token-mode side (the write freeze, untagged cleanup, a kill while freezing) is
//! `tests/gc/token_mode.rs`.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::gc::{PullLoop, blob_digests, multi_arch, named, start_gc, wait_for_job, with_gc};
use common::images::{Layout, raw_manifest};
use common::registry_lookup::{digest_of, host};
use common::{ADMIN_PASSWORD, Stack, admin, client, json};
use reqwest::Method;
use serde_json::json;

/// Pushes the four kinds of image plus one to delete; returns the tags kept and the blobs of
/// the one deleted (manifest, config, layers).
fn seed(stack: &Stack, layout_dir: &std::path::Path) -> (Vec<String>, BTreeSet<String>) {
    let mut l = Layout::new(layout_dir);
    let img = l.image("amd64", None, 2);
    l.tag("img", &img);
    let s2 = l.image("amd64", None, 1);
    l.tag("s2", &s2);
    multi_arch(&mut l, "idx");
    multi_arch(&mut l, "list");
    let gone = l.image("amd64", None, 2);
    l.tag("gone", &gone);
    let reg = host(stack);
    l.push(&reg, &admin(), "img", "gc/oci", "v1", false);
    l.push(&reg, &admin(), "s2", "gc/schema2", "v1", true);
    l.push(&reg, &admin(), "idx", "gc/index", "v1", false);
    l.push(&reg, &admin(), "list", "gc/list", "v1", true);
    l.push(&reg, &admin(), "gone", "gc/gone", "v1", false);
    let raw = raw_manifest(&reg, &admin(), "gc/gone:v1").expect("gone manifest");
    let digest = digest_of(stack, "gc/gone", "v1");
    let mut blobs: BTreeSet<String> = named(&raw).into_iter().collect();
    blobs.insert(digest.clone());
    let r = client()
        .delete(format!(
            "{}/v2/gc/gone/manifests/{digest}",
            stack.registry.url
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "delete gc/gone");
    let kept = ["gc/oci:v1", "gc/schema2:v1", "gc/index:v1", "gc/list:v1"]
        .map(String::from)
        .to_vec();
    (kept, blobs)
}

fn pulled(stack: &Stack, tags: &[String]) -> Vec<(String, BTreeSet<String>)> {
    common::gc::pulled(&host(stack), &admin(), tags)
}

#[test]
fn jobs_are_refused_without_a_registry_config_with_a_cache_or_against_a_writable_registry() {
    let stack = Stack::start();
    let (status, body) = start_gc(&stack.app, json!({}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_unavailable")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("REGISTRY_CONFIG"),
        "{body}"
    );
    drop(stack);

    let mut stack = Stack::start_with(with_gc);
    let (status, body) = start_gc(&stack.app, json!({"dry_run": false}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("registry_writable")),
        "{body}"
    );
    let (status, body) = start_gc(&stack.app, json!({"untagged": true}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_unavailable")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("AUTH_MODE=token"),
        "{body}"
    );
    let (status, body) = start_gc(&stack.app, json!({"dry-run": false}));
    assert_eq!(status, 400, "{body}");
    let (_, jobs) = json(stack.app.as_admin(Method::GET, "/gc").send().unwrap());
    assert_eq!(jobs, json!({"jobs": []}), "no job was recorded");

    stack
        .registry
        .restart_with_storage("  cache:\n    blobdescriptor: inmemory\n");
    let (status, body) = start_gc(&stack.app, json!({"dry_run": true}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("blobdescriptor"),
        "{body}"
    );
    let (status, _) = json(stack.app.as_admin(Method::GET, "/gc/nope").send().unwrap());
    assert_eq!(status, 404);
    let audit = std::fs::read_to_string(stack.audit_path()).unwrap();
    assert!(audit.contains("\"action\":\"gc.start\"") && audit.contains("gc_unavailable"));
}

#[test]
fn a_dry_run_deletes_nothing_and_the_real_run_removes_exactly_the_deleted_image_while_pulls_go_on()
{
    let mut stack = Stack::start_with(with_gc);
    let layout = tempfile::tempdir().unwrap();
    let (kept, gone_blobs) = seed(&stack, layout.path());
    let before_pull = pulled(&stack, &kept);
    stack.registry.make_read_only();

    let files_before = stack.registry.files();
    let (status, job) = start_gc(&stack.app, json!({}));
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        (job["state"].as_str(), job["dry_run"].as_bool()),
        (Some("queued"), Some(true))
    );
    let dry = wait_for_job(
        &stack.app,
        job["id"].as_str().unwrap(),
        Duration::from_secs(60),
    );
    assert_eq!(dry["state"], "succeeded", "{dry}");
    assert_eq!(
        stack.registry.files(),
        files_before,
        "a dry run deletes nothing"
    );
    assert_eq!(
        dry["blobs_deleted"].as_u64(),
        Some(gone_blobs.len() as u64),
        "{dry}"
    );
    assert!(dry["bytes_freed"].as_u64().unwrap() > 0, "{dry}");
    let dry_log: Vec<String> = serde_json::from_value(dry["log"].clone()).unwrap();
    for b in &gone_blobs {
        assert!(
            dry_log
                .iter()
                .any(|l| l == &format!("blob eligible for deletion: {b}")),
            "{b} missing from {dry_log:?}"
        );
    }

    // Pulls of a kept image, over and over, while the real job runs.
    let puller = PullLoop::start(&stack.registry.url, "gc/oci", "v1", Duration::ZERO, |r| {
        r.basic_auth("admin", Some(ADMIN_PASSWORD))
    });
    let (status, job) = start_gc(&stack.app, json!({"dry_run": false}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let (status, second) = start_gc(&stack.app, json!({"dry_run": false}));
    // The first job may already be done on a fast machine; then the second one is accepted.
    if status == 409 {
        assert_eq!(second["error"], "gc_running", "{second}");
    } else {
        assert_eq!(status, 202, "{second}");
        wait_for_job(
            &stack.app,
            second["id"].as_str().unwrap(),
            Duration::from_secs(60),
        );
    }
    let real = wait_for_job(&stack.app, &id, Duration::from_secs(60));
    let (pulls, failures) = puller.stop();
    assert_eq!(real["state"], "succeeded", "{real}");
    assert_eq!(
        real["blobs_deleted"], dry["blobs_deleted"],
        "the dry run named what goes"
    );
    assert_eq!(real["bytes_freed"], dry["bytes_freed"]);
    assert!(pulls > 0);
    assert_eq!(failures, 0, "a pull failed during the job");

    let blobs_after = stack.registry.blobs();
    let blobs_before = blob_digests(&files_before);
    let removed: BTreeSet<String> = blobs_before.difference(&blobs_after).cloned().collect();
    assert_eq!(
        removed, gone_blobs,
        "exactly the deleted image's blobs went"
    );
    assert_eq!(
        pulled(&stack, &kept),
        before_pull,
        "kept images pull byte-identical"
    );

    let (_, list) = json(stack.app.as_admin(Method::GET, "/gc").send().unwrap());
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.last(),
        Some(&dry["id"].as_str().unwrap()),
        "newest first: {ids:?}"
    );
    let audit = std::fs::read_to_string(stack.audit_path()).unwrap();
    assert!(
        audit.contains(&format!("job {id} succeeded")),
        "gc.finish for the real run"
    );
}

/// A REGISTRY_BIN that takes its time and never touches storage.
fn slow_bin(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("slow-registry");
    std::fs::write(&path, "#!/bin/sh\necho \"slow $*\"\nsleep 20\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn a_second_job_waits_its_turn_and_a_job_killed_with_the_process_is_failed_at_restart() {
    let bins = tempfile::tempdir().unwrap();
    let bin = slow_bin(bins.path());
    let env_for = |env: common::AppEnv| with_gc(env).set("REGISTRY_BIN", &bin);
    let mut stack = Stack::start_with(env_for);
    let (status, job) = start_gc(&stack.app, json!({"dry_run": true}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    common::wait_until(
        "the job to run its command",
        Duration::from_secs(20),
        || {
            let (_, j) = json(
                stack
                    .app
                    .as_admin(Method::GET, &format!("/gc/{id}"))
                    .send()
                    .unwrap(),
            );
            j["state"] == "collecting"
                && j["log"]
                    .to_string()
                    .contains("slow garbage-collect --dry-run")
        },
    );
    let (status, body) = start_gc(&stack.app, json!({}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_running")),
        "{body}"
    );

    stack.app.kill();
    let registry_url = stack.registry.url.clone();
    stack.app = env_for(common::AppEnv::new(stack.dir.path(), &registry_url)).start();
    let (status, j) = json(
        stack
            .app
            .as_admin(Method::GET, &format!("/gc/{id}"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains("interrupted"), "{j}");
    assert!(j["finished_at"].is_string(), "{j}");
    let audit = std::fs::read_to_string(stack.audit_path()).unwrap();
    assert!(
        audit.contains(&format!("job {id} failed")),
        "gc.finish written at restart"
    );
    // Nothing is left running: a new job is accepted.
    let (status, body) = start_gc(&stack.app, json!({}));
    assert_eq!(status, 202, "{body}");
}

#[test]
fn tags_reach_their_images_and_the_children_of_their_indexes_on_a_real_registry() {
    let stack = Stack::start();
    let layout = tempfile::tempdir().unwrap();
    let mut l = Layout::new(layout.path());
    let a = l.image("amd64", None, 1);
    let b = l.image("arm64", None, 1);
    let idx = l.index(&[(a.clone(), "amd64", None), (b.clone(), "arm64", None)]);
    l.tag("idx", &idx);
    let lone = l.image("amd64", None, 1);
    l.tag("lone", &lone);
    let reg = host(&stack);
    l.push(&reg, &admin(), "idx", "r/multi", "v1", false);
    l.push(&reg, &admin(), "lone", "r/multi", "lone", false);
    l.push(&reg, &admin(), "idx", "r/list", "v1", true);
    let registry = registry_admin::registry::client::RegistryClient::new(
        &stack.registry.url,
        "admin".into(),
        ADMIN_PASSWORD.into(),
        Duration::from_secs(10),
        Arc::new(registry_admin::metrics::Metrics::default()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reach = |name: &str| {
        rt.block_on(registry_admin::gc::reach::reachable(&registry, name))
            .unwrap()
    };
    let multi = reach("r/multi");
    let expected: BTreeSet<String> = [&idx.digest, &a.digest, &b.digest, &lone.digest]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(multi, expected);
    // The manifest list skopeo wrote (Docker types, new digests) reaches its own children.
    let list_digest = digest_of(&stack, "r/list", "v1");
    let raw = raw_manifest(&reg, &admin(), "r/list:v1").unwrap();
    let mut expected: BTreeSet<String> = named(&raw).into_iter().collect();
    expected.insert(list_digest);
    assert_eq!(reach("r/list"), expected);
    assert!(reach("r/unknown").is_empty());
}
