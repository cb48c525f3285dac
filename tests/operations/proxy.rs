//! The reverse-proxy example (docs/proxy/nginx.conf, shown in README.md "Exposing it"), run by a
//! real nginx in front of a real registry:2 and the real binary: TLS with a CA made by the
//! test, what is published and what is not, client addresses that cannot be forged through
//! it, and skopeo pushing and pulling through it with TLS verified.

use crate::common;

use std::io::Cursor;
use std::net::SocketAddr;
use std::time::Duration;

use common::images::{ACCEPT_ALL, one_image, sha256};
use common::proxy::Nginx;
use common::skopeo::skopeo_ok;
use common::{ADMIN_PASSWORD, EVENTS_TOKEN, Stack, client, json, wait_until};
use rand::RngCore;
use reqwest::Method;
use reqwest::blocking::{Body, Client};
use serde_json::Value;

/// nginx in front of this stack's registry and registry-admin.
fn proxied(stack: &Stack) -> Nginx {
    let admin: SocketAddr = stack
        .app
        .url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("registry-admin listens on http://IP:PORT");
    Nginx::start(([127, 0, 0, 1], stack.registry.port).into(), admin)
}

/// Audit entries straight from registry-admin (not through nginx).
fn audit(stack: &Stack, query: &str) -> Vec<Value> {
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::GET, &format!("/audit{query}"))
            .send()
            .expect("GET /audit"),
    );
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().expect("entries").clone()
}

/// `skopeo copy --quiet --all ARGS`; its stderr when it fails.
fn copy(args: &[&str]) -> Result<(), String> {
    skopeo_ok(&[&["copy", "--quiet", "--all"], args].concat())
}

#[test]
fn the_api_answers_through_the_proxy_over_https_trusted_through_the_test_ca() {
    let stack = Stack::start();
    let nginx = proxied(&stack);
    let c = nginx.client();

    let r = c
        .get(format!("{}/health/ready", nginx.admin_url))
        .send()
        .expect("GET /health/ready through nginx");
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());

    let (status, users) = json(
        c.get(format!("{}/users", nginx.admin_url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .expect("GET /users through nginx"),
    );
    assert_eq!(status, 200, "{users}");
    assert!(
        users
            .as_array()
            .expect("array")
            .iter()
            .any(|u| u["username"] == "admin"),
        "{users}"
    );

    // The TLS is real: a client that does not know the test CA refuses the server.
    let untrusting = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("{}/health/ready", nginx.admin_url))
        .send()
        .expect_err("a certificate from an unknown CA was accepted");
    assert!(err.is_connect(), "{err:?}");
}

#[test]
fn events_and_metrics_are_not_published_while_token_is_passed_through() {
    let stack = Stack::start();
    let nginx = proxied(&stack);
    let c = nginx.client();
    let post_events = |c: &Client, base: &str| {
        c.post(format!("{base}/events"))
            .bearer_auth(EVENTS_TOKEN)
            .header(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )
            .body(r#"{"events":[]}"#)
            .send()
            .expect("POST /events")
    };
    let get_metrics = |c: &Client, url: String| {
        c.get(url)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .expect("GET /metrics")
    };

    // Straight to registry-admin, as registry:2 and a scraper on the internal network see it…
    assert_eq!(post_events(&client(), &stack.app.url).status(), 200);
    assert_eq!(
        get_metrics(&client(), format!("{}/metrics", stack.app.url)).status(),
        200
    );
    // …and from outside, with the very same credentials, absent like any unknown path.
    let (status, body) = json(post_events(&c, &nginx.admin_url));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    let (status, body) = json(get_metrics(&c, format!("{}/metrics", nginx.admin_url)));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    // Spellings that nginx and actix both read as those paths stay closed too.
    for path in [
        "/metrics/",
        "//metrics",
        "/%6Detrics",
        "/metrics?format=text",
        "/events/",
        "/%65vents",
    ] {
        let r = get_metrics(&c, format!("{}{path}", nginx.admin_url));
        assert_eq!(r.status(), 404, "GET {path} through nginx");
        assert!(
            !r.text().unwrap_or_default().contains("# TYPE"),
            "{path} served metrics"
        );
    }

    // GET /token is registry:2's token realm in token mode: nginx hands it over untouched, so
    // through the proxy it answers exactly as registry-admin does.
    let direct = client()
        .get(format!("{}/token?service=registry", stack.app.url))
        .send()
        .expect("GET /token");
    let outside = c
        .get(format!("{}/token?service=registry", nginx.admin_url))
        .send()
        .expect("GET /token through nginx");
    assert_eq!(outside.status(), direct.status());
    assert_eq!(
        outside.text().expect("body"),
        direct.text().expect("body"),
        "/token through nginx differs from registry-admin's own answer"
    );
    // nginx writes the access-log line after the answer is sent: wait for it, boundedly.
    let logged = || nginx.access_log().contains("GET /token?service=registry ");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !logged() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        logged(),
        "GET /token did not go through nginx:\n{}",
        nginx.access_log()
    );
}

#[test]
fn a_forwarded_for_sent_by_the_client_does_not_reach_registry_admin_as_its_address() {
    let stack = Stack::start_with(|env| env.set("TRUSTED_PROXIES", "127.0.0.1"));
    let nginx = proxied(&stack);

    let r = nginx
        .client()
        .get(format!("{}/users", nginx.admin_url))
        .basic_auth("mallory-outside", Some("wrong-password-1"))
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .expect("GET /users through nginx");
    assert_eq!(r.status(), 401);
    // The control: registry-admin believes the header from a trusted address, so only nginx
    // replacing it keeps the forged address out.
    let r = client()
        .get(format!("{}/users", stack.app.url))
        .basic_auth("mallory-inside", Some("wrong-password-1"))
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .expect("GET /users");
    assert_eq!(r.status(), 401);

    let failure = |actor: &str| {
        audit(&stack, "?action=auth.failure")
            .into_iter()
            .find(|e| e["actor"] == actor)
    };
    wait_until(
        "both failures in the audit log",
        Duration::from_secs(10),
        || failure("mallory-outside").is_some() && failure("mallory-inside").is_some(),
    );
    // 127.0.0.1 is the address nginx saw the test connect from.
    let outside = failure("mallory-outside").unwrap();
    assert_eq!(outside["remote_addr"], "127.0.0.1", "{outside}");
    let inside = failure("mallory-inside").unwrap();
    assert_eq!(inside["remote_addr"], "6.6.6.6", "{inside}");
}

#[test]
fn a_forwarded_for_sent_by_the_client_does_not_reach_the_registry_events() {
    let stack = Stack::start();
    let nginx = proxied(&stack);
    let (_layout_dir, layout, _img) = one_image(1);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let registry_host = format!("127.0.0.1:{}", stack.registry.port);
    layout.push(&registry_host, &creds, "img", "fwd/outside", "v1", false);
    layout.push(&registry_host, &creds, "img", "fwd/inside", "v1", false);

    let pull = |c: &Client, base: &str, repo: &str| {
        let r = c
            .get(format!("{base}/v2/{repo}/manifests/v1"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("accept", ACCEPT_ALL)
            .header("x-forwarded-for", "6.6.6.6")
            .send()
            .expect("manifest GET");
        assert_eq!(r.status(), 200, "GET {repo}:v1 from {base}");
    };
    pull(&nginx.client(), &nginx.registry_url, "fwd/outside");
    // The control: registry:2 itself takes the first X-Forwarded-For entry as the client.
    pull(&client(), &stack.registry.url, "fwd/inside");

    let pulls = |repo: &str| audit(&stack, &format!("?action=image.pull&image={repo}"));
    wait_until("both pull events", Duration::from_secs(15), || {
        !pulls("fwd/outside").is_empty() && !pulls("fwd/inside").is_empty()
    });
    let outside = pulls("fwd/outside");
    assert!(
        outside.iter().all(|e| e["remote_addr"] == "127.0.0.1"),
        "{outside:?}"
    );
    let inside = pulls("fwd/inside");
    assert!(
        inside.iter().any(|e| e["remote_addr"] == "6.6.6.6"),
        "{inside:?}"
    );
}

#[test]
fn skopeo_pushes_and_pulls_through_the_registry_server_verifying_its_certificate() {
    let stack = Stack::start();
    let nginx = proxied(&stack);
    let (_layout_dir, layout, img) = one_image(2);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let ca_dir = nginx.tls.ca_dir.display().to_string();
    let from = format!("oci:{}:img", layout.dir.display());
    let remote = format!("docker://{}/proxied/app:v1", nginx.registry_host);

    // Without the CA skopeo refuses the server, so the runs below really verify it.
    let refused = copy(&["--dest-creds", &creds, &from, &remote])
        .expect_err("skopeo accepted a certificate from an unknown CA");
    assert!(refused.contains("certificate"), "{refused}");

    copy(&[
        "--dest-cert-dir",
        &ca_dir,
        "--dest-creds",
        &creds,
        &from,
        &remote,
    ])
    .expect("skopeo push through nginx");

    let pulled = tempfile::tempdir().expect("temp dir");
    let into = format!("oci:{}:pulled", pulled.path().display());
    copy(&[
        "--src-cert-dir",
        &ca_dir,
        "--src-creds",
        &creds,
        &remote,
        &into,
    ])
    .expect("skopeo pull through nginx");
    let index: Value = serde_json::from_slice(
        &std::fs::read(pulled.path().join("index.json")).expect("pulled index.json"),
    )
    .expect("index JSON");
    assert_eq!(index["manifests"][0]["digest"], img.digest, "{index}");

    // It went through nginx, and landed in the registry behind it. nginx writes each log line
    // after its answer, so give the last one a bounded moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !nginx
        .access_log()
        .contains("\"PUT /v2/proxied/app/manifests/v1 ")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = nginx.access_log();
    assert!(
        log.contains("\"PUT /v2/proxied/app/manifests/v1 "),
        "the push did not go through nginx:\n{log}"
    );
    let (status, tags) = json(
        client()
            .get(format!("{}/v2/proxied/app/tags/list", stack.registry.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .expect("tags list"),
    );
    assert_eq!(status, 200, "{tags}");
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
}

#[test]
fn a_chunked_upload_larger_than_nginx_default_limit_goes_through_and_comes_back_whole() {
    let stack = Stack::start();
    let nginx = proxied(&stack);
    let c = nginx.client();
    let uploads = format!("{}/v2/chunked/app/blobs/uploads/", nginx.registry_url);

    let r = c
        .post(&uploads)
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .expect("start upload");
    assert_eq!(r.status(), 202);
    let location = |r: &reqwest::blocking::Response| {
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location")
            .to_string()
    };
    // registry:2 builds this from Host and X-Forwarded-Proto: the client must be sent back to
    // the proxy, over https, on the port it used.
    let at = location(&r);
    assert!(at.starts_with(&uploads), "{at}");

    // 3 MiB, past nginx's default client_max_body_size of 1 MiB, with no Content-Length:
    // a reader body goes out chunked, as docker push sends layers.
    let mut data = vec![0u8; 3 << 20];
    rand::rng().fill_bytes(&mut data);
    let digest = sha256(&data);
    let r = c
        .patch(&at)
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/octet-stream")
        .body(Body::new(Cursor::new(data.clone())))
        .send()
        .expect("PATCH chunk");
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    let at = location(&r);
    assert!(at.starts_with(&uploads), "{at}");
    let sep = if at.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!("{at}{sep}digest={digest}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .expect("finish upload");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());

    let back = c
        .get(format!(
            "{}/v2/chunked/app/blobs/{digest}",
            nginx.registry_url
        ))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .expect("blob GET through nginx");
    assert_eq!(back.status(), 200);
    let bytes = back.bytes().expect("blob body");
    assert!(bytes[..] == data[..], "the blob came back different");
    let log = nginx.access_log();
    assert!(
        log.contains("\"PATCH /v2/chunked/app/blobs/uploads/"),
        "the upload did not go through nginx:\n{log}"
    );
}
