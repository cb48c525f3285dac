//! Token mode end to end: registry:2 sends real clients (podman, skopeo) to registry-admin's
//! `GET /token`, and what they may do at the registry follows roles, grants and public
//! patterns. Grants are given by writing grants.json, which registry-admin re-reads on change.

use crate::common;

use std::time::Duration;

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use reqwest::Method;
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

use common::skopeo::skopeo;
use common::token_stack::{SERVICE, TokenStack, claims, jwt_part, libtrust_kid};
use common::{ADMIN_PASSWORD, AppEnv, Stack, admin, client, json, wait_until};

const PW: &str = "user-password-1";

fn creds(user: &str) -> String {
    format!("{user}:{PW}")
}

fn audit(stack: &TokenStack) -> Vec<Value> {
    stack.audit_entries()
}

fn token_entries(stack: &TokenStack) -> Vec<Value> {
    audit(stack)
        .into_iter()
        .filter(|e| e["action"] == "token.issue")
        .collect()
}

#[test]
fn podman_logs_in_and_pushes_and_pulls_only_what_the_grants_allow() {
    let stack = TokenStack::start_with_users(&[("alice", "user")], PW);
    let host = stack.host();
    let login = stack.podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        PW,
        &host,
    ]);
    assert!(
        login.status.success(),
        "podman login: {}",
        String::from_utf8_lossy(&login.stderr)
    );
    let wrong = stack.podman(&[
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        "not-the-password",
        &host,
    ]);
    assert!(!wrong.status.success(), "a wrong password does not log in");

    // An image to push, put into podman's own storage from an OCI layout.
    let (_keep, layout, _) = common::images::one_image(2);
    stack.podman_store(&layout.dir, "img", "localhost/seed:v1");
    let push = |dest: &str| {
        stack.podman(&[
            "push",
            "--tls-verify=false",
            "localhost/seed:v1",
            &format!("docker://{host}/{dest}"),
        ])
    };
    let out = push("team/app:v1");
    assert!(
        !out.status.success(),
        "no grant: push refused by the registry"
    );

    stack.write_grants(json!({"users": {"alice": [
        {"repository": "team/*", "actions": ["pull", "push"]}
    ]}}));
    let out = push("team/app:v1");
    assert!(
        out.status.success(),
        "push grant: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = stack.podman(&["pull", "--tls-verify=false", &format!("{host}/team/app:v1")]);
    assert!(
        out.status.success(),
        "pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `team/*` stays within one component.
    assert!(!push("team/a/b:v1").status.success());
    // What the registry holds is what was pushed, seen by the admin through the API.
    let (status, tags) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/team/app/tags")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert_eq!(tags["tags"], json!(["v1"]));
}

#[test]
fn a_user_without_grants_can_neither_pull_nor_push_and_a_pull_grant_pulls_only() {
    let stack = TokenStack::start_with_users(&[("bob", "user")], PW);
    stack
        .skopeo_push(&admin(), "team/app", "v1")
        .expect("admin pushes");
    let err = stack
        .skopeo_pull(Some(&creds("bob")), "team/app:v1")
        .unwrap_err();
    assert!(
        err.contains("denied")
            || err.contains("unauthorized")
            || err.contains("authentication required"),
        "{err}"
    );
    assert!(stack.skopeo_push(&creds("bob"), "team/app", "v2").is_err());

    stack.write_grants(json!({"users": {"bob": [
        {"repository": "team/app", "actions": ["pull"]}
    ]}}));
    stack
        .skopeo_pull(Some(&creds("bob")), "team/app:v1")
        .expect("pull grant pulls");
    assert!(
        stack.skopeo_push(&creds("bob"), "team/app", "v2").is_err(),
        "pull grant does not push"
    );
    let (_, tags) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/team/app/tags")
            .send()
            .unwrap(),
    );
    assert_eq!(tags["tags"], json!(["v1"]), "nothing was pushed by bob");
}

#[test]
fn a_delete_grant_lets_skopeo_delete_a_manifest_and_without_it_the_delete_is_denied() {
    let stack = TokenStack::start_with_users(&[("carol", "user")], PW);
    stack.skopeo_push(&admin(), "team/app", "v1").unwrap();
    stack.write_grants(json!({"users": {"carol": [
        {"repository": "team/**", "actions": ["pull", "push"]}
    ]}}));
    assert!(stack.skopeo_delete(&creds("carol"), "team/app:v1").is_err());
    stack
        .skopeo_pull(Some(&creds("carol")), "team/app:v1")
        .expect("still there");

    stack.write_grants(json!({"users": {"carol": [
        {"repository": "team/**", "actions": ["delete", "pull", "push"]}
    ]}}));
    stack
        .skopeo_delete(&creds("carol"), "team/app:v1")
        .expect("delete grant deletes");
    assert!(stack.skopeo_pull(Some(&admin()), "team/app:v1").is_err());
}

#[test]
fn single_star_matches_one_component_double_star_any_depth_and_everyone_grants_reach_all_users() {
    let stack = TokenStack::start_with_users(&[("dave", "user"), ("erin", "user")], PW);
    stack.write_grants(json!({"users": {"dave": [
        {"repository": "team/*", "actions": ["pull", "push"]}
    ]}}));
    stack.skopeo_push(&creds("dave"), "team/a", "v1").unwrap();
    assert!(stack.skopeo_push(&creds("dave"), "team/a/b", "v1").is_err());

    stack.write_grants(json!({"users": {"dave": [
        {"repository": "team/**", "actions": ["pull", "push"]}
    ]}}));
    stack
        .skopeo_push(&creds("dave"), "team/a/b", "v1")
        .expect("team/** reaches team/a/b");

    assert!(
        stack
            .skopeo_pull(Some(&creds("erin")), "team/a:v1")
            .is_err()
    );
    stack.write_grants(json!({
        "users": {"dave": [{"repository": "team/**", "actions": ["pull", "push"]}]},
        "everyone": [{"repository": "team/*", "actions": ["pull"]}]
    }));
    stack
        .skopeo_pull(Some(&creds("erin")), "team/a:v1")
        .expect("everyone grant pulls");
    assert!(stack.skopeo_push(&creds("erin"), "team/a", "v2").is_err());
    assert!(
        stack
            .skopeo_pull(Some(&creds("erin")), "team/a/b:v1")
            .is_err(),
        "everyone's team/* is one component too"
    );
    // Anonymous callers are not "everyone".
    assert!(stack.skopeo_pull(None, "team/a:v1").is_err());
}

#[test]
fn public_patterns_let_anonymous_clients_pull_but_never_push_or_read_the_catalog() {
    let stack = TokenStack::start();
    stack.skopeo_push(&admin(), "pub/tool", "v1").unwrap();
    stack.skopeo_push(&admin(), "private/x", "v1").unwrap();
    assert!(
        stack.skopeo_pull(None, "pub/tool:v1").is_err(),
        "private by default"
    );

    stack.write_grants(json!({"public": ["pub/**"]}));
    stack
        .skopeo_pull(None, "pub/tool:v1")
        .expect("anonymous pull of a public repository");
    let out = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        &format!("docker://{}/pub/tool:v1", stack.host()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stack.skopeo_pull(None, "private/x:v1").is_err());

    // Anonymous push: skopeo with no credentials gets a token without push.
    let (_keep, layout, _) = common::images::one_image(1);
    let out = skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-no-creds",
        &format!("oci:{}:img", layout.dir.display()),
        &format!("docker://{}/pub/tool:evil", stack.host()),
    ]);
    assert!(!out.status.success(), "anonymous push refused");

    // The catalog, asked for as registry:2 asks: no access for anonymous callers.
    let (status, body) = json(stack.token("service=registry&scope=registry:catalog:*", None));
    assert_eq!(status, 200);
    assert_eq!(claims(body["token"].as_str().unwrap())["access"], json!([]));
    let r = client()
        .get(format!("{}/v2/_catalog", stack.registry.url))
        .bearer_auth(body["token"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "registry refuses the catalog");
}

#[test]
fn disabling_a_user_fails_its_next_token_request_and_a_role_change_shows_in_the_next_token() {
    let stack = TokenStack::start_with_users(&[("frank", "user")], PW);
    let ask = "service=registry&scope=repository:team/app:pull,push";
    let (status, body) = json(stack.token(ask, Some(("frank", PW))));
    assert_eq!(status, 200);
    assert_eq!(claims(body["token"].as_str().unwrap())["access"], json!([]));

    let r = stack
        .app
        .as_admin(Method::PUT, "/users/frank/role")
        .json(&json!({"role": "admin"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, body) = json(stack.token(ask, Some(("frank", PW))));
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );
    stack
        .skopeo_push(&creds("frank"), "team/app", "v1")
        .expect("an admin pushes anywhere");

    let r = stack
        .app
        .as_admin(Method::POST, "/users/frank/disable")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = stack.token(ask, Some(("frank", PW)));
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"registry-admin\""
    );
    assert!(
        stack
            .skopeo_pull(Some(&creds("frank")), "team/app:v1")
            .is_err()
    );
}

#[test]
fn the_api_reaches_the_registry_with_self_signed_tokens_and_no_service_line_is_left_in_htpasswd() {
    // A first run in htpasswd mode provisions the service line; token mode retires it.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut first = AppEnv::new(dir.path(), "http://127.0.0.1:9").start();
        let htpasswd = std::fs::read_to_string(dir.path().join("auth/htpasswd")).unwrap();
        assert!(htpasswd.lines().any(|l| l.starts_with("registry-admin:")));
        first.kill();
    }
    let stack = TokenStack::start_in(dir, |env| {
        env.set("REGISTRY_USERNAME", "someone")
            .set("REGISTRY_PASSWORD", "ignored-here")
    });
    let htpasswd = std::fs::read_to_string(stack.path("auth/htpasswd")).unwrap();
    assert!(
        !htpasswd.lines().any(|l| l.starts_with("registry-admin:")),
        "{htpasswd}"
    );
    let log = stack.app.stderr();
    assert!(
        log.contains("REGISTRY_USERNAME and REGISTRY_PASSWORD are ignored"),
        "{log}"
    );

    for tag in ["v1", "v2"] {
        stack.skopeo_push(&admin(), "team/app", tag).unwrap();
    }
    let (status, body) = json(stack.app.as_admin(Method::GET, "/images").send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["repositories"], json!(["team/app"]));
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/team/app/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::DELETE, "/images/team/app/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let (_, tags) = json(
        stack
            .app
            .as_admin(Method::GET, "/images/team/app/tags")
            .send()
            .unwrap(),
    );
    assert_eq!(tags["tags"], json!(["v2"]));
    let (status, ready) = json(stack.app.get("/health/ready").send().unwrap());
    assert_eq!(status, 200, "{ready}");

    // The registry's events of registry-admin's own requests are dropped; the admin's push is
    // recorded under the admin's name.
    wait_until("the push events", Duration::from_secs(20), || {
        audit(&stack)
            .iter()
            .any(|e| e["action"] == "image.push" && e["tag"] == "v2")
    });
    let entries = audit(&stack);
    assert!(
        entries
            .iter()
            .filter(|e| e["source"] == "registry")
            .all(|e| e["actor"] != "registry-admin"),
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "image.push" && e["actor"] == "admin")
    );
    // The reserved subject gets no token, even with a line added by hand.
    let r = stack.app.create_user("registry-admin", PW, "user");
    if r.status() == 201 {
        assert_eq!(
            stack
                .token("service=registry", Some(("registry-admin", PW)))
                .status(),
            401
        );
    } else {
        assert_eq!(r.status(), 409);
    }
}

#[test]
fn the_token_verifies_against_token_crt_with_an_independently_computed_kid() {
    let stack = TokenStack::start_with_users(&[("gina", "user")], PW);
    stack.write_grants(json!({"users": {"gina": [
        {"repository": "team/app", "actions": ["pull"]}
    ]}}));
    let (status, body) = json(stack.token(
        "service=registry&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&account=gina&client_id=podman&offline_token=true",
        Some(("gina", PW)),
    ));
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["access_token"], token);
    assert_eq!(body["expires_in"], 300);
    assert!(chrono::DateTime::parse_from_rfc3339(body["issued_at"].as_str().unwrap()).is_ok());

    let cert = Certificate::from_pem(std::fs::read(stack.path("auth/token.crt")).unwrap()).unwrap();
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let kid = libtrust_kid(&spki);
    // x5c: token.crt's certificate exactly (standard base64 DER), which registry 3 verifies
    // against its bundle; registry 2.8 also takes the libtrust kid.
    let x5c = base64::engine::general_purpose::STANDARD.encode(cert.to_der().unwrap());
    let header: Value = serde_json::from_slice(&jwt_part(token, 0)).unwrap();
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "ES256", "kid": kid, "x5c": [x5c]})
    );
    let verifying = VerifyingKey::from_public_key_der(&spki).unwrap();
    let signature = Signature::from_slice(&jwt_part(token, 2)).unwrap();
    let (input, _) = token.rsplit_once('.').unwrap();
    assert!(verifying.verify(input.as_bytes(), &signature).is_ok());
    let c = claims(token);
    assert_eq!(c["sub"], "gina");
    assert_eq!(c["aud"], SERVICE);
    assert_eq!(c["iss"], "registry-admin");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert_eq!(
        c["access"],
        json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
    );
    assert!(stack.app.stderr().contains(&format!("(kid {kid})")));
}

#[test]
fn every_token_answer_is_a_token_issue_entry_and_wrong_credentials_are_auth_failures() {
    let stack = TokenStack::start_with_users(&[("hank", "user")], PW);
    stack.write_grants(json!({"users": {"hank": [
        {"repository": "team/app", "actions": ["pull"]}
    ]}, "public": ["pub/*"]}));
    let ok = stack.token(
        "service=registry&scope=repository:team/app:pull",
        Some(("hank", PW)),
    );
    assert_eq!(ok.status(), 200);
    let partial = stack.token(
        "service=registry&scope=repository:team/app:pull,push",
        Some(("hank", PW)),
    );
    assert_eq!(partial.status(), 200);
    let anonymous = stack.token("service=registry&scope=repository:pub/x:pull", None);
    assert_eq!(anonymous.status(), 200);
    let login = stack.token("service=registry", Some(("hank", PW)));
    assert_eq!(login.status(), 200);
    let wrong = stack.token("service=registry", Some(("hank", "wrong-password")));
    assert_eq!(wrong.status(), 401);

    let entries = token_entries(&stack);
    let summary: Vec<(String, String, Option<String>, String)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
                e["image"].as_str().map(str::to_string),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        summary,
        vec![
            (
                s("hank"),
                s("success"),
                Some(s("team/app")),
                s("requested repository:team/app:pull; granted repository:team/app:pull")
            ),
            (
                s("hank"),
                s("denied"),
                Some(s("team/app")),
                s("requested repository:team/app:pull,push; granted repository:team/app:pull")
            ),
            (
                s(""),
                s("success"),
                Some(s("pub/x")),
                s("requested repository:pub/x:pull; granted repository:pub/x:pull")
            ),
            (
                s("hank"),
                s("success"),
                None,
                s("requested nothing; granted nothing")
            ),
        ]
    );
    let failures: Vec<Value> = audit(&stack)
        .into_iter()
        .filter(|e| e["action"] == "auth.failure")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["actor"], "hank");
    assert_eq!(failures[0]["status"], 401);
}

#[test]
fn a_token_flood_writes_each_kind_of_answer_once_a_minute_and_every_other_answer_at_once() {
    let stack = TokenStack::start_with_users(&[("jill", "user")], PW);
    stack.write_grants(json!({"users": {"jill": [
        {"repository": "team/*", "actions": ["pull"]}
    ]}, "public": ["pub/*"]}));
    for _ in 0..40 {
        let r = stack.token("service=registry&scope=repository:pub/x:pull", None);
        assert_eq!(r.status(), 200, "every anonymous caller is still answered");
    }
    for _ in 0..15 {
        let r = stack.token(
            "service=registry&scope=repository:team/app:pull",
            Some(("jill", PW)),
        );
        assert_eq!(r.status(), 200);
    }
    for i in 0..5 {
        let r = stack.token(
            &format!("service=registry&scope=repository:team/app{i}:pull"),
            Some(("jill", PW)),
        );
        assert_eq!(r.status(), 200);
    }
    let entries = token_entries(&stack);
    let by = |actor: &str| entries.iter().filter(|e| e["actor"] == actor).count();
    assert_eq!(
        by(""),
        1,
        "identical anonymous answers within a minute are counted, not written"
    );
    assert_eq!(
        by("jill"),
        6,
        "one entry for the 15 identical requests, one for each different one: {entries:#?}"
    );
}

#[test]
fn token_requests_are_checked_before_anything_is_signed() {
    let stack = TokenStack::start_with_users(&[("ivan", "user")], PW);
    let (status, body) = json(stack.token("service=other", Some(("ivan", PW))));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = json(stack.token("scope=repository:a:pull", None));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = json(stack.token("service=registry&scope=repository:Team/App:pull", None));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    // Several scopes in one parameter, unknown types and actions left out, not refused.
    let (status, body) = json(stack.token(
        "service=registry&scope=repository%3Aa%3Apull%20repository%3Ab%3Afly%20thing%3Ax%3Ay",
        Some(("admin", ADMIN_PASSWORD)),
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["token"].as_str().unwrap())["access"],
        json!([{"type": "repository", "name": "a", "actions": ["pull"]}])
    );
    // A bearer token is no credential here, not even a valid API token.
    let api = common::auth::api_token(&stack.app, "ivan", PW);
    let r = client()
        .get(format!("{}/token?service=registry", stack.app.url))
        .bearer_auth(api)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    // Wrong passwords: 401, never anonymous, and throttled after 10.
    for i in 0..10 {
        let (status, body) =
            json(stack.token("service=registry", Some(("ivan", "wrong-password"))));
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let r = stack.token("service=registry", Some(("ivan", PW)));
    assert_eq!(r.status(), 429, "throttled even with the right password");
    assert!(r.headers().contains_key("retry-after"));
}

#[test]
fn there_is_no_token_endpoint_in_htpasswd_mode() {
    let stack = Stack::start();
    let (status, body) = json(stack.app.get("/token?service=registry").send().unwrap());
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    assert!(
        !std::fs::read_to_string(stack.audit_path())
            .unwrap_or_default()
            .contains("token.issue")
    );
}

#[test]
fn an_unusable_token_key_stops_start_up_with_exit_code_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("token.key");
    std::fs::write(&key, "not a key").unwrap();
    // Private, so what stops start-up is the content (a readable key is refused on its own).
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&key, private).unwrap();
    let (code, stderr) = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("AUTH_MODE", "token")
        .set("REGISTRY_TOKEN_KEY", &key.display().to_string())
        .run_to_exit();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("REGISTRY_TOKEN_KEY"), "{stderr}");
    assert!(
        !dir.path().join("auth/htpasswd").exists(),
        "nothing was set up"
    );
}
