//! Deleting one tag while another client tags the same manifest (a CI promotion such as
//! `skopeo copy …:staging …:prod`): the new sibling must survive, on registry 2.8 (throwaway
//! manifest) and 3 (native tag delete) alike. The sibling is pushed by a proxy in front of the
//! registry at the very moment registry-admin's DELETE reaches it.

use crate::common;

use common::images::{ACCEPT_ALL, one_image};
use common::intercept::Intercept;
use common::registry_lookup::registry_tags;
use common::{ADMIN_PASSWORD, Stack, Upstream, admin, client, json, upstream};
use reqwest::Method;
use serde_json::{Value, json};

/// registry-admin talking to the registry through `proxy`.
fn start(proxy: &Intercept) -> Stack {
    let url = proxy.url.clone();
    let stack = Stack::start_with(move |env| env.set("REGISTRY_URL", &url));
    proxy.forward_to(&stack.registry.url);
    stack
}

/// The manifest `name:reference` as the registry stores it: (bytes, media type, digest).
fn manifest(registry: &str, name: &str, reference: &str) -> Option<(Vec<u8>, String, String)> {
    let resp = client()
        .get(format!("{registry}/v2/{name}/manifests/{reference}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("accept", ACCEPT_ALL)
        .send()
        .unwrap();
    if resp.status() != 200 {
        return None;
    }
    let header = |h: &str| resp.headers()[h].to_str().unwrap().to_string();
    let (media_type, digest) = (header("content-type"), header("docker-content-digest"));
    Some((resp.bytes().unwrap().to_vec(), media_type, digest))
}

/// Tags `name:to` with exactly the manifest of `name:from`, as a promotion does.
fn promote(registry: &str, name: &str, from: &str, to: &str) {
    let (bytes, media_type, _) = manifest(registry, name, from).expect("the source tag");
    let status = client()
        .put(format!("{registry}/v2/{name}/manifests/{to}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", media_type)
        .body(bytes)
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 201, "PUT {name}:{to}");
}

fn delete(stack: &Stack, name: &str, tag: &str) -> (u16, Value) {
    json(
        stack
            .app
            .as_admin(Method::DELETE, &format!("/images/{name}/tags/{tag}"))
            .send()
            .unwrap(),
    )
}

#[test]
fn a_sibling_tagged_while_the_tag_is_deleted_survives() {
    let proxy = Intercept::start();
    let stack = start(&proxy);
    let registry = stack.registry.url.clone();
    let (_dir, layout, _) = one_image(1);
    let reg = format!("127.0.0.1:{}", stack.registry.port);
    layout.push(&reg, &admin(), "img", "ci/app", "staging", false);
    let (_, _, digest) = manifest(&registry, "ci/app", "staging").unwrap();

    // No sibling exists when registry-admin looks; one appears just before its DELETE lands.
    let at = registry.clone();
    proxy.before_next_delete(move || promote(&at, "ci/app", "staging", "prod"));
    let (status, body) = delete(&stack, "ci/app", "staging");
    assert!(proxy.hook_ran(), "registry-admin sent no DELETE");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"name": "ci/app", "tag": "staging", "digest": digest, "other_tags": ["prod"]})
    );
    assert_eq!(registry_tags(&stack, "ci/app"), ["prod"]);
    assert_eq!(
        manifest(&registry, "ci/app", "prod").map(|m| m.2),
        Some(digest.clone()),
        "the sibling lost its manifest"
    );
    assert!(manifest(&registry, "ci/app", "staging").is_none());

    // The last tag of a manifest: only the tag goes; the manifest stays, untagged, for an
    // untagged garbage collection.
    let (status, body) = delete(&stack, "ci/app", "prod");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["other_tags"], json!([]));
    assert_eq!(registry_tags(&stack, "ci/app"), Vec::<String>::new());
    assert_eq!(
        manifest(&registry, "ci/app", &digest).map(|m| m.2),
        Some(digest.clone())
    );
}

#[test]
fn each_registry_version_gets_its_own_way_of_deleting_a_tag() {
    let stack = Stack::start();
    let (_dir, layout, _) = one_image(1);
    let reg = format!("127.0.0.1:{}", stack.registry.port);
    for tag in ["a", "b"] {
        layout.push(&reg, &admin(), "img", "way/app", tag, false);
    }
    let before = stack.registry.files();
    let (status, body) = delete(&stack, "way/app", "a");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["other_tags"], json!(["b"]));
    let added: Vec<String> = stack
        .registry
        .files()
        .difference(&before)
        .cloned()
        .collect();
    let detail = std::fs::read_to_string(stack.audit_path()).unwrap();
    match upstream() {
        // Native: one request, nothing written to the registry's storage.
        Upstream::V3 => {
            assert!(added.is_empty(), "{added:?}");
            assert!(detail.contains("method tag;"), "{detail}");
        }
        // Throwaway: a config and a layer blob of its own, left for garbage collection.
        Upstream::V2 => {
            assert!(
                added
                    .iter()
                    .filter(|f| f.starts_with("docker/registry/v2/blobs/"))
                    .count()
                    >= 2,
                "{added:?}"
            );
            assert!(detail.contains("method throwaway;"), "{detail}");
        }
    }
}
