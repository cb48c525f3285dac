//! Image details of non-image artifacts (OCI 1.1 `artifactType`, and the oras style with a
//! custom config media type) pushed to a real registry:2 through its API.

use crate::common;

use common::images::{OCI_MANIFEST, sha256};
use common::{ADMIN_PASSWORD, Stack, client, json};
use reqwest::Method;
use serde_json::{Value, json};

/// Uploads `bytes` as a blob of `name` in one request, as the distribution API allows.
fn put_blob(stack: &Stack, name: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let start = client()
        .post(format!("{}/v2/{name}/blobs/uploads/", stack.registry.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(start.status(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("{}{location}", stack.registry.url)
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let put = client()
        .put(format!("{url}{sep}digest={digest}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(put.status(), 201, "{}", put.text().unwrap_or_default());
    digest
}

fn put_manifest(stack: &Stack, name: &str, tag: &str, manifest: &Value) {
    let resp = client()
        .put(format!("{}/v2/{name}/manifests/{tag}", stack.registry.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", OCI_MANIFEST)
        .body(serde_json::to_vec(manifest).unwrap())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().unwrap_or_default());
}

#[test]
fn an_artifact_shows_its_type_and_no_docker_pull_command() {
    let stack = Stack::start();
    let name = "art/sbom";
    let config = b"{}";
    let config_digest = put_blob(&stack, name, config);
    let payload = br#"{"spdxVersion":"SPDX-2.3"}"#;
    let payload_digest = put_blob(&stack, name, payload);
    let layer = json!({"mediaType": "application/spdx+json", "digest": payload_digest, "size": payload.len()});
    // OCI 1.1 style: an empty config and an explicit artifactType.
    put_manifest(
        &stack,
        name,
        "oci11",
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
            "layers": [layer],
        }),
    );
    // oras style: the config's own media type says what the artifact is.
    put_manifest(
        &stack,
        name,
        "oras",
        &json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.unknown.config.v1+json", "digest": config_digest, "size": 2},
            "layers": [layer],
        }),
    );
    for (tag, kind) in [
        ("oci11", "application/vnd.example.sbom.v1+json"),
        ("oras", "application/vnd.unknown.config.v1+json"),
    ] {
        let (status, body) = json(
            stack
                .app
                .as_admin(Method::GET, &format!("/images/{name}/tags/{tag}"))
                .send()
                .unwrap(),
        );
        assert_eq!(status, 200, "{tag}: {body}");
        assert_eq!(body["artifact_type"], kind, "{body}");
        assert!(
            body["pull"].is_null() && body["pull_by_digest"].is_null(),
            "{body}"
        );
        let platform = &body["platforms"][0];
        assert_eq!(platform["artifact_type"], kind);
        assert!(
            platform.get("os").is_none() && platform.get("architecture").is_none(),
            "no empty os/architecture: {platform}"
        );
        assert_eq!(platform["layers"][0]["media_type"], "application/spdx+json");
        let manifest_len = body["size"].as_u64().unwrap() - 2 - payload.len() as u64;
        assert!(
            manifest_len > 100,
            "size counts manifest + config + layer: {body}"
        );
    }
}
