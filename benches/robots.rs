//! Robot secrets at `GET /token`, one run, figures next to their references:
//! - warm: tokens/s with a robot's secret (one SHA-256 per request) against the same with a
//!   user's bcrypt cost-10 password whose verification is cached;
//! - cold: the p50 latency of the first token of a robot that was never used (which also
//!   writes its `last_used_at`) against the first token of a user never seen (one bcrypt at
//!   cost 10).
//!
//! Run with `cargo bench --bench robots`. Talks only to 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::App;
use common::bench::{
    Credentials, READ_CONCURRENCY, READ_SECONDS, ms, p50, read_rate, token_server,
};
use serde_json::{Value, json};

const COLD_SAMPLES: usize = 10;
const USER_PASSWORD: &str = "bench-user-password";
const TOKEN_PATH: &str = "/token?service=registry&scope=repository:bench/app:pull,push";

/// The time of one `GET /token` as `user:password`.
fn one_token(app: &App, user: &str, password: &str) -> Duration {
    let t = Instant::now();
    let r = app
        .get(TOKEN_PATH)
        .basic_auth(user, Some(password))
        .send()
        .expect("GET /token");
    let took = t.elapsed();
    assert_eq!(r.status(), 200);
    took
}

fn admin_post(app: &App, path: &str, body: Value) -> Value {
    let r = app
        .as_admin(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .expect("POST");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().expect("JSON")
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (_dir, app) = token_server();
    let grants = json!({"grants": [{"repository": "bench/**", "actions": ["push"]}]});
    // Users at cost 10, each with a robot of the same grants: the first for the warm figures,
    // the others each used once for the cold ones.
    let mut secrets = Vec::new();
    for i in 0..=COLD_SAMPLES {
        let user = format!("ci{i}");
        admin_post(
            &app,
            "/users",
            json!({"username": user, "password": USER_PASSWORD}),
        );
        let r = app
            .as_admin(reqwest::Method::PUT, &format!("/users/{user}/grants"))
            .json(&grants)
            .send()
            .expect("PUT grants");
        assert_eq!(r.status(), 200);
        let robot = admin_post(
            &app,
            "/robots",
            json!({"name": "bench", "owner": user, "grants": grants["grants"]}),
        );
        secrets.push(robot["secret"].as_str().expect("secret").to_string());
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let robot_warm = rt.block_on(read_rate(
        &format!("{}{TOKEN_PATH}", app.url),
        Credentials::basic("robot.ci0.bench", &secrets[0]),
    ));
    let password_warm = rt.block_on(read_rate(
        &format!("{}{TOKEN_PATH}", app.url),
        Credentials::basic("ci0", USER_PASSWORD),
    ));
    let robot_cold = p50((1..=COLD_SAMPLES)
        .map(|i| one_token(&app, &format!("robot.ci{i}.bench"), &secrets[i]))
        .collect());
    let password_cold = p50((1..=COLD_SAMPLES)
        .map(|i| one_token(&app, &format!("ci{i}"), USER_PASSWORD))
        .collect());

    println!("registry-admin robots benchmark ({cores} cores)");
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| GET /token with a robot secret, warm ({READ_CONCURRENCY} clients, {READ_SECONDS} s) | {robot_warm:.0} tokens/s | cost-10 password, cached {password_warm:.0} tokens/s | {:.2} | >= 1 |",
        robot_warm / password_warm
    );
    println!(
        "| GET /token with a robot secret, first use (p50 of {COLD_SAMPLES}) | {:.1} ms | cost-10 password, first use {:.1} ms | {:.2} | <= 0.5 |",
        ms(robot_cold),
        ms(password_cold),
        ms(robot_cold) / ms(password_cold)
    );
}
