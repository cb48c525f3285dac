//! Images against a real registry:2, with images pushed by skopeo from layouts built here.

use crate::common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::images::{
    CREATED, DOCKER_LIST, DOCKER_MANIFEST, Layout, OCI_INDEX, OCI_MANIFEST, copy_by_mount,
    one_image, pull_all, raw_manifest, sha256,
};
use common::registry_lookup::{host, registry_digest, registry_tags};
use common::{ADMIN_PASSWORD, Stack, admin, json};
use reqwest::Method;
use serde_json::{Value, json};

const PUBLIC_HOST: &str = "registry.example.com:5000";

fn start() -> Stack {
    Stack::start_with(|env| env.set("PUBLIC_REGISTRY_HOST", PUBLIC_HOST))
}

fn details(stack: &Stack, name: &str, tag: &str) -> (u16, Value) {
    json(
        stack
            .app
            .as_admin(Method::GET, &format!("/images/{name}/tags/{tag}"))
            .send()
            .unwrap(),
    )
}

/// Size of a single-platform manifest as the contract defines it, computed from the raw bytes.
fn image_size(raw: &[u8]) -> u64 {
    let m: Value = serde_json::from_slice(raw).unwrap();
    raw.len() as u64
        + m["config"]["size"].as_u64().unwrap()
        + m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum::<u64>()
}

#[test]
fn details_are_right_for_all_four_manifest_kinds() {
    let stack = start();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(dir.path());
    let single = layout.image("amd64", None, 2);
    let amd = layout.image("amd64", None, 1);
    let arm = layout.image("arm64", Some("v8"), 3);
    let index = layout.index(&[(amd, "amd64", None), (arm, "arm64", Some("v8"))]);
    layout.tag("single", &single);
    layout.tag("multi", &index);
    let reg = host(&stack);
    layout.push(&reg, &admin(), "single", "kinds/oci", "v1", false);
    layout.push(&reg, &admin(), "multi", "kinds/ociindex", "v1", false);
    layout.push(&reg, &admin(), "single", "kinds/docker", "v1", true);
    layout.push(&reg, &admin(), "multi", "kinds/dockerlist", "v1", true);

    for (name, media_type, multi) in [
        ("kinds/oci", OCI_MANIFEST, false),
        ("kinds/ociindex", OCI_INDEX, true),
        ("kinds/docker", DOCKER_MANIFEST, false),
        ("kinds/dockerlist", DOCKER_LIST, true),
    ] {
        let raw = raw_manifest(&reg, &admin(), &format!("{name}:v1")).unwrap();
        let (status, d) = details(&stack, name, "v1");
        assert_eq!(status, 200, "{name}: {d}");
        assert_eq!(
            d["digest"],
            json!(sha256(&raw)),
            "{name}: digest is sha256 of the raw manifest"
        );
        assert_eq!(d["media_type"], media_type, "{name}");
        assert_eq!(d["name"], name);
        assert_eq!(d["tag"], "v1");
        assert_eq!(d["pull"], format!("docker pull {PUBLIC_HOST}/{name}:v1"));
        assert_eq!(
            d["pull_by_digest"],
            format!("docker pull {PUBLIC_HOST}/{name}@{}", sha256(&raw))
        );
        let platforms = d["platforms"].as_array().unwrap();
        if !multi {
            assert_eq!(platforms.len(), 1, "{name}");
            let p = &platforms[0];
            assert_eq!(
                (p["os"].as_str(), p["architecture"].as_str()),
                (Some("linux"), Some("amd64"))
            );
            assert!(p.get("variant").is_none(), "{name}: no variant for amd64");
            assert_eq!(p["digest"], d["digest"]);
            assert_eq!(p["created"], CREATED);
            assert_eq!(p["layers"].as_array().unwrap().len(), 2);
            assert_eq!(p["size"].as_u64(), Some(image_size(&raw)), "{name}");
            assert_eq!(
                d["size"], p["size"],
                "{name}: single-arch size is its platform's"
            );
            let raw_layers: Value =
                serde_json::from_slice::<Value>(&raw).unwrap()["layers"].clone();
            for (ours, theirs) in p["layers"]
                .as_array()
                .unwrap()
                .iter()
                .zip(raw_layers.as_array().unwrap())
            {
                assert_eq!(ours["digest"], theirs["digest"]);
                assert_eq!(ours["size"], theirs["size"]);
                assert_eq!(ours["media_type"], theirs["mediaType"]);
            }
        } else {
            let index: Value = serde_json::from_slice(&raw).unwrap();
            let children = index["manifests"].as_array().unwrap();
            assert_eq!(platforms.len(), 2, "{name}");
            let mut total = raw.len() as u64;
            for (p, child) in platforms.iter().zip(children) {
                let child_digest = child["digest"].as_str().unwrap();
                let child_raw =
                    raw_manifest(&reg, &admin(), &format!("{name}@{child_digest}")).unwrap();
                assert_eq!(p["digest"], child_digest);
                assert_eq!(p["size"].as_u64(), Some(image_size(&child_raw)), "{name}");
                assert_eq!(p["created"], CREATED);
                total += image_size(&child_raw);
            }
            assert_eq!(
                (
                    platforms[0]["architecture"].as_str(),
                    platforms[0].get("variant")
                ),
                (Some("amd64"), None)
            );
            assert_eq!(
                (
                    platforms[1]["architecture"].as_str(),
                    platforms[1]["variant"].as_str()
                ),
                (Some("arm64"), Some("v8"))
            );
            assert_eq!(platforms[1]["layers"].as_array().unwrap().len(), 3);
            assert_eq!(
                d["size"].as_u64(),
                Some(total),
                "{name}: index + all platforms"
            );
        }
    }

    let (status, body) = details(&stack, "kinds/oci", "nope");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = details(&stack, "kinds/none", "v1");
    assert_eq!(status, 404);
}

#[test]
fn deleting_a_tag_keeps_its_siblings_for_every_kind() {
    let stack = start();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(dir.path());
    let single = layout.image("amd64", None, 1);
    let amd = layout.image("amd64", None, 1);
    let arm = layout.image("arm64", Some("v8"), 1);
    let index = layout.index(&[(amd, "amd64", None), (arm, "arm64", Some("v8"))]);
    let other = layout.image("amd64", None, 1);
    layout.tag("single", &single);
    layout.tag("multi", &index);
    layout.tag("other", &other);
    let reg = host(&stack);

    for (name, from, docker) in [
        ("sib/oci", "single", false),
        ("sib/ociindex", "multi", false),
        ("sib/docker", "single", true),
        ("sib/dockerlist", "multi", true),
    ] {
        for tag in ["a", "b", "c"] {
            layout.push(&reg, &admin(), from, name, tag, docker);
        }
        layout.push(&reg, &admin(), "other", name, "z", docker);
        let digest = registry_digest(&stack, name, "a").unwrap();
        let z_digest = registry_digest(&stack, name, "z").unwrap();

        let (status, body) = json(
            stack
                .app
                .as_admin(Method::DELETE, &format!("/images/{name}/tags/b"))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(
            body,
            json!({"name": name, "tag": "b", "digest": digest, "other_tags": ["a", "c"]}),
            "{name}"
        );
        assert_eq!(registry_tags(&stack, name), ["a", "c", "z"], "{name}");
        assert_eq!(
            registry_digest(&stack, name, "b"),
            None,
            "{name}: b still resolves"
        );
        for t in ["a", "c"] {
            assert_eq!(
                registry_digest(&stack, name, t).as_deref(),
                Some(digest.as_str()),
                "{name}:{t} moved"
            );
        }
        assert_eq!(
            registry_digest(&stack, name, "z"),
            Some(z_digest.clone()),
            "{name}: unrelated tag moved"
        );
        let out = tempfile::tempdir().unwrap();
        pull_all(&reg, &admin(), &format!("{name}:a"), out.path())
            .unwrap_or_else(|e| panic!("{name}:a is broken after the delete: {e}"));

        // Without siblings only the tag goes too: the manifest stays, untagged, for an
        // untagged garbage collection (deleting by digest could take a sibling pushed meanwhile).
        let (status, body) = json(
            stack
                .app
                .as_admin(Method::DELETE, &format!("/images/{name}/tags/z"))
                .send()
                .unwrap(),
        );
        assert_eq!(
            (status, &body["other_tags"]),
            (200, &json!([])),
            "{name}: {body}"
        );
        assert_eq!(
            registry_digest(&stack, name, body["digest"].as_str().unwrap()),
            Some(z_digest.clone()),
            "{name}: the untagged manifest"
        );
        assert_eq!(registry_tags(&stack, name), ["a", "c"], "{name}");
    }
}

#[test]
fn a_tag_on_a_child_of_an_index_is_deleted_without_breaking_the_index() {
    let stack = start();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = Layout::new(dir.path());
    let amd = layout.image("amd64", None, 1);
    let arm = layout.image("arm64", Some("v8"), 1);
    let index = layout.index(&[(amd.clone(), "amd64", None), (arm, "arm64", Some("v8"))]);
    layout.tag("multi", &index);
    layout.tag("amd", &amd);
    let reg = host(&stack);
    layout.push(&reg, &admin(), "multi", "child/app", "multi", false);
    layout.push(&reg, &admin(), "amd", "child/app", "amd-only", false);

    let (status, body) = json(
        stack
            .app
            .as_admin(Method::DELETE, "/images/child/app/tags/amd-only")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["other_tags"], json!([]));
    assert_eq!(registry_tags(&stack, "child/app"), ["multi"]);
    assert_eq!(
        registry_digest(&stack, "child/app", &amd.digest),
        Some(amd.digest.clone()),
        "the child was deleted"
    );
    let out = tempfile::tempdir().unwrap();
    pull_all(&reg, &admin(), "child/app:multi", out.path())
        .expect("the index must still pull whole");
}

#[test]
fn tags_are_sorted_paged_and_never_null() {
    let stack = start();
    let (_dir, layout, _) = one_image(1);
    let reg = host(&stack);
    let tags = ["v9", "v10", "A1", "v1", "latest", "_x"];
    for t in tags {
        layout.push(&reg, &admin(), "img", "paged/app", t, false);
    }
    let mut sorted: Vec<&str> = tags.to_vec();
    sorted.sort();

    let get = |path: &str| json(stack.app.as_admin(Method::GET, path).send().unwrap());
    let (status, body) = get("/images/paged/app/tags");
    assert_eq!(status, 200);
    assert_eq!(body, json!({"name": "paged/app", "tags": sorted}));

    let mut seen = Vec::new();
    let mut path = "/images/paged/app/tags?n=4".to_string();
    for _ in 0..10 {
        let resp = stack.app.as_admin(Method::GET, &path).send().unwrap();
        let link = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        let (_, body) = json(resp);
        seen.extend(
            body["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string()),
        );
        match link {
            Some(l) => {
                path = l
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string()
            }
            None => break,
        }
    }
    assert_eq!(seen, sorted);

    // A repository whose tags were all deleted: registry:2 says null, we say [].
    let (status, _) = get("/images/paged/app/tags/v1");
    assert_eq!(status, 200);
    for t in tags {
        let resp = stack
            .app
            .as_admin(Method::DELETE, &format!("/images/paged/app/tags/{t}"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{t}");
    }
    assert_eq!(
        get("/images/paged/app/tags"),
        (200, json!({"name": "paged/app", "tags": []}))
    );
    let (status, body) = get("/images/never/pushed/tags");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = get("/images/paged/app/tags?n=0");
    assert_eq!(status, 400);
    let (status, _) = get("/images/paged/app/tags?n=abc");
    assert_eq!(status, 400);
}

#[test]
fn a_repository_named_tags_works() {
    let stack = start();
    let (_dir, layout, _) = one_image(1);
    layout.push(&host(&stack), &admin(), "img", "x/tags", "v1", false);
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/x/tags/tags")
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body),
        (200, json!({"name": "x/tags", "tags": ["v1"]}))
    );
    let (status, body) = details(&stack, "x/tags", "v1");
    assert_eq!((status, &body["name"]), (200, &json!("x/tags")), "{body}");
}

#[test]
fn a_tag_named_tags_is_listed_viewed_and_deleted_under_the_dash_path() {
    let stack = start();
    let (_dir, layout, _) = one_image(1);
    let reg = host(&stack);
    layout.push(&reg, &admin(), "img", "x", "tags", false);
    layout.push(&reg, &admin(), "img", "x", "v1", false);
    let get = |path: &str| json(stack.app.as_admin(Method::GET, path).send().unwrap());

    assert_eq!(
        get("/images/x/-/tags"),
        (200, json!({"name": "x", "tags": ["tags", "v1"]}))
    );
    let (status, body) = get("/images/x/-/tags/tags");
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["name"], &body["tag"]), (&json!("x"), &json!("tags")));
    assert_eq!(
        body["digest"].as_str(),
        registry_digest(&stack, "x", "tags").as_deref()
    );
    // The older form still reads `/images/x/tags/tags` as the repository `x/tags`.
    let (status, body) = get("/images/x/tags/tags");
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    let (status, body) = json(
        stack
            .app
            .as_admin(Method::DELETE, "/images/x/-/tags/tags")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["tag"], &body["other_tags"]),
        (&json!("tags"), &json!(["v1"]))
    );
    assert_eq!(registry_tags(&stack, "x"), vec!["v1"]);
    assert_eq!(registry_digest(&stack, "x", "tags"), None);
    assert_eq!(get("/images/x/-/tags/tags").1["error"], json!("not_found"));

    // Paging links use the unambiguous form.
    let resp = stack
        .app
        .as_admin(Method::GET, "/images/x/-/tags?n=0")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    layout.push(&reg, &admin(), "img", "x", "v2", false);
    let resp = stack
        .app
        .as_admin(Method::GET, "/images/x/-/tags?n=1")
        .send()
        .unwrap();
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, "</images/x/-/tags?n=1&last=v1>; rel=\"next\"");
}

#[test]
fn the_catalog_lists_every_repository_across_upstream_pages() {
    let stack = start();
    let (_dir, layout, _) = one_image(1);
    let reg = host(&stack);
    layout.push(&reg, &admin(), "img", "seed", "v1", false);
    let raw = raw_manifest(&reg, &admin(), "seed:v1").unwrap();

    // 1,060 more repositories: over one upstream page of 1,000.
    let mut expected: BTreeSet<String> = BTreeSet::from(["seed".to_string()]);
    for i in 0..1060 {
        let name = format!("many/r{i:04}");
        copy_by_mount(
            &stack.registry.url,
            ADMIN_PASSWORD,
            "seed",
            &raw,
            &name,
            "v1",
        );
        expected.insert(name);
    }
    let (status, body) = json(stack.app.as_admin(Method::GET, "/images").send().unwrap());
    assert_eq!(status, 200);
    let listed: Vec<String> = body["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        listed,
        expected.into_iter().collect::<Vec<_>>(),
        "complete and sorted"
    );
}

#[test]
fn bad_names_are_refused_before_any_upstream_call() {
    let stack = start();
    let log_before = std::fs::read_to_string(&stack.registry.log)
        .unwrap_or_default()
        .len();
    let long_name = "a".repeat(256);
    let long_tag = "t".repeat(129);
    let cases: Vec<(Method, String, &str)> = vec![
        (Method::GET, "/images/..%2Fx/tags".into(), "invalid_name"),
        (
            Method::GET,
            "/images/team%2Fapp/tags".into(),
            "invalid_name",
        ),
        (
            Method::GET,
            "/images/team%2fapp/tags/v1".into(),
            "invalid_name",
        ),
        (Method::GET, "/images/A/b/tags".into(), "invalid_name"),
        (Method::GET, "/images/a//b/tags".into(), "invalid_name"),
        (
            Method::GET,
            format!("/images/{long_name}/tags"),
            "invalid_name",
        ),
        (Method::GET, "/images/app/tags/-tag".into(), "invalid_tag"),
        (
            Method::GET,
            format!("/images/app/tags/{long_tag}"),
            "invalid_tag",
        ),
        (
            Method::GET,
            "/images/app/tags/%2Ehidden".into(),
            "invalid_tag",
        ),
        (
            Method::DELETE,
            "/images/..%2F..%2Fv2/tags/x".into(),
            "invalid_name",
        ),
        (
            Method::DELETE,
            "/images/app/tags/v1%0A".into(),
            "invalid_tag",
        ),
        (
            Method::GET,
            "/images/app/tags?last=..%2Fx".into(),
            "invalid_tag",
        ),
    ];
    for (m, path, code) in cases {
        let (status, body) = json(stack.app.as_admin(m.clone(), &path).send().unwrap());
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{m} {path}: {body}"
        );
    }
    let log = std::fs::read_to_string(&stack.registry.log).unwrap_or_default();
    let new = &log[log_before..];
    assert!(
        !new.contains("registry-admin/"),
        "a refused request reached the registry:\n{new}"
    );
}

#[test]
fn roles_apply_to_images() {
    let stack = start();
    assert_eq!(
        stack
            .app
            .create_user("viewer", "viewer-pass-1", "user")
            .status(),
        201
    );
    let as_viewer = |m: Method, p: &str| {
        stack
            .app
            .request(m, p)
            .basic_auth("viewer", Some("viewer-pass-1"))
            .send()
            .unwrap()
    };
    assert_eq!(as_viewer(Method::GET, "/images").status(), 200);
    // Without any grant the repository does not exist for viewer, delete included.
    let (status, body) = json(as_viewer(Method::DELETE, "/images/app/tags/v1"));
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, _) = json(stack.app.get("/images").send().unwrap());
    assert_eq!(status, 401);
}

#[test]
fn a_stopped_or_hung_registry_is_a_502_or_504_within_15_s_and_recovery_follows() {
    let mut stack = start();
    let get = |stack: &Stack| {
        let t = Instant::now();
        let (status, body) = json(stack.app.as_admin(Method::GET, "/images").send().unwrap());
        (status, body, t.elapsed())
    };
    assert_eq!(get(&stack).0, 200);

    stack.registry.signal("STOP");
    let (status, body, took) = get(&stack);
    stack.registry.signal("CONT");
    assert_eq!(
        (status, body["error"].as_str()),
        (504, Some("upstream_timeout")),
        "{body}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(
        get(&stack).0,
        200,
        "recovers when the registry answers again"
    );

    stack.registry.stop();
    let (status, body, took) = get(&stack);
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_unavailable")),
        "{body}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let (status, _) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/app/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 502);
    let (status, ready) = json(stack.app.get("/health/ready").send().unwrap());
    assert_eq!(
        (status, &ready["checks"]["registry"]),
        (503, &json!("registry unreachable"))
    );

    stack.registry.restart();
    let (status, body, _) = get(&stack);
    assert_eq!(status, 200, "{body}");
}
