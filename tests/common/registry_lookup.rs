//! What the registry of a basic-mode `Stack` holds, asked directly as `admin` (not through the
//! service under test).

use reqwest::blocking::Response;
use serde_json::Value;

use super::images::ACCEPT_ALL;
use super::{ADMIN_PASSWORD, Stack, client};

/// The tags of `name` as the registry itself lists them, sorted; none when it lists none.
pub fn registry_tags(stack: &Stack, name: &str) -> Vec<String> {
    let body: Value = client()
        .get(format!("{}/v2/{name}/tags/list", stack.registry.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut tags: Vec<String> = body["tags"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    tags.sort();
    tags
}

/// The registry's `host:port`, as image references name it.
pub fn host(stack: &Stack) -> String {
    format!("127.0.0.1:{}", stack.registry.port)
}

/// What the registry itself says `name:reference` resolves to, asking with all four types;
/// `None` unless it answers 200.
pub fn registry_digest(stack: &Stack, name: &str, reference: &str) -> Option<String> {
    let resp = head_manifest(stack, name, reference);
    (resp.status() == 200).then(|| content_digest(&resp))
}

/// The same, asserting the registry holds it.
pub fn digest_of(stack: &Stack, name: &str, reference: &str) -> String {
    let resp = head_manifest(stack, name, reference);
    assert_eq!(resp.status(), 200, "{name}:{reference}");
    content_digest(&resp)
}

fn head_manifest(stack: &Stack, name: &str, reference: &str) -> Response {
    client()
        .head(format!(
            "{}/v2/{name}/manifests/{reference}",
            stack.registry.url
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("accept", ACCEPT_ALL)
        .send()
        .unwrap()
}

fn content_digest(resp: &Response) -> String {
    resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string()
}
