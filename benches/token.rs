//! Token-mode benchmark, one run, figures next to their references:
//! - `GET /token` with Basic credentials and a warm verification cache, tokens/s, against
//!   `GET /users` with the same credentials (the same authentication path without signing);
//! - a 10-layer image pulled by skopeo as an account whose password has bcrypt cost 10:
//!   token mode (one bcrypt for the token, then JWT checks) against htpasswd mode (registry:2
//!   runs bcrypt on every request).
//!
//! Run with `cargo bench --bench token` (`TEST_REGISTRY=v3` for Distribution 3). Talks only to
//! 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::images::one_image;
use common::token_stack::TokenStack;
use common::{ADMIN_PASSWORD, App, AppEnv, Stack};

const READ_SECONDS: u64 = 5;
const READ_CONCURRENCY: usize = 8;
const LAYERS: usize = 10;
const PULLS: usize = 5;
const USER_PASSWORD: &str = "bench-user-password";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Requests/s of `path` with the admin's Basic credentials, over keep-alive connections.
async fn throughput(url: &str, path: &str) -> f64 {
    let target = format!("{url}{path}");
    let warm = reqwest::Client::new()
        .get(&target)
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("warm-up");
    assert_eq!(warm.status(), 200, "{target}");
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(READ_SECONDS);
    let started = Instant::now();
    let workers: Vec<_> = (0..READ_CONCURRENCY)
        .map(|_| {
            let target = target.clone();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let c = reqwest::Client::new();
                while Instant::now() < deadline {
                    let r = c
                        .get(&target)
                        .basic_auth("admin", Some(ADMIN_PASSWORD))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(r.status(), 200);
                    r.bytes().await.expect("body");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn token_server() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("AUTH_MODE", "token")
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.path().join("auth/token.key").display().to_string(),
        )
        .set("BCRYPT_COST", "10")
        .set("RUST_LOG", "warn")
        .start();
    (dir, app)
}

/// p50 of `PULLS` skopeo pulls of `name:v1` as `reader`, after one untimed pull.
fn pull_time(pull: impl Fn() -> Result<(), String>) -> Duration {
    pull().expect("first pull");
    p50((0..PULLS)
        .map(|_| {
            let t = Instant::now();
            pull().expect("pull");
            t.elapsed()
        })
        .collect())
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // 1. Token issue rate, against the same credentials' GET /users.
    let (tokens_per_s, users_per_s) = {
        let (_dir, app) = token_server();
        let tokens = rt.block_on(throughput(
            &app.url,
            "/token?service=registry&scope=repository:bench/app:pull,push",
        ));
        let users = rt.block_on(throughput(&app.url, "/users"));
        (tokens, users)
    };

    // 2. A 10-layer pull as a cost-10 account, token mode vs htpasswd mode.
    let (_keep, layout, _) = one_image(LAYERS);
    let reader_creds = format!("reader:{USER_PASSWORD}");
    let admin_creds = format!("admin:{ADMIN_PASSWORD}");
    let token_pull = {
        let stack =
            TokenStack::start_with(|env| env.set("BCRYPT_COST", "10").set("RUST_LOG", "warn"));
        assert_eq!(
            stack
                .app
                .create_user("reader", USER_PASSWORD, "user")
                .status(),
            201
        );
        stack.write_grants(serde_json::json!({"users": {"reader": [
            {"repository": "bench/**", "actions": ["pull"]}
        ]}}));
        layout.push(&stack.host(), &admin_creds, "img", "bench/app", "v1", false);
        pull_time(|| stack.skopeo_pull(Some(&reader_creds), "bench/app:v1"))
    };
    let htpasswd_pull = {
        let stack = Stack::start_with(|env| env.set("BCRYPT_COST", "10").set("RUST_LOG", "warn"));
        assert_eq!(
            stack
                .app
                .create_user("reader", USER_PASSWORD, "user")
                .status(),
            201
        );
        let host = format!("127.0.0.1:{}", stack.registry.port);
        layout.push(&host, &admin_creds, "img", "bench/app", "v1", false);
        pull_time(|| {
            let into = tempfile::tempdir().unwrap();
            let out = common::token_stack::skopeo(&[
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--src-creds",
                &reader_creds,
                &format!("docker://{host}/bench/app:v1"),
                &format!("oci:{}:pulled", into.path().display()),
            ]);
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        })
    };

    println!(
        "registry-admin token benchmark, {} ({cores} cores)",
        common::upstream().label()
    );
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| GET /token with Basic, warm cache ({READ_CONCURRENCY} clients, {READ_SECONDS} s) | {tokens_per_s:.0} tokens/s | GET /users same credentials {users_per_s:.0} req/s | {:.2} | >= 5000 tokens/s |",
        tokens_per_s / users_per_s
    );
    println!(
        "| skopeo pull, {LAYERS}-layer image, account at bcrypt cost 10 (p50 of {PULLS}), token mode | {:.0} ms | htpasswd mode {:.0} ms | {:.2} | <= 0.3 |",
        ms(token_pull),
        ms(htpasswd_pull),
        ms(token_pull) / ms(htpasswd_pull)
    );
}
