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

use std::time::{Duration, Instant};

use common::bench::{
    Credentials, READ_CONCURRENCY, READ_SECONDS, ms, p50, read_rate, token_server,
};
use common::images::one_image;
use common::token_stack::TokenStack;
use common::{ADMIN_PASSWORD, Stack};

const LAYERS: usize = 10;
const PULLS: usize = 5;
const USER_PASSWORD: &str = "bench-user-password";

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
        let admin = Credentials::basic("admin", ADMIN_PASSWORD);
        let tokens = rt.block_on(read_rate(
            &format!(
                "{}/token?service=registry&scope=repository:bench/app:pull,push",
                app.url
            ),
            admin.clone(),
        ));
        let users = rt.block_on(read_rate(&format!("{}/users", app.url), admin));
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
            let out = common::skopeo::skopeo(&[
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
