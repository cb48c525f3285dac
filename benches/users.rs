//! User-management benchmark, one run, figures next to their references:
//! - user-add throughput at BCRYPT_COST=10 vs the machine's limit (cores / one cost-10 hash);
//! - /health/live latency while that storm runs (bcrypt must stay off the async workers);
//! - authenticated GET /users requests/s with the verification cache.
//!
//! Run with `cargo bench --bench users`. Talks only to 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::bench::{Credentials, READ_CONCURRENCY, READ_SECONDS, ms, read_rate};
use common::{ADMIN_PASSWORD, App, AppEnv};
const USERS_TO_ADD: usize = 120;
const ADD_CONCURRENCY: usize = 8;

/// registry-admin at the contract's default bcrypt cost; no registry is needed here.
fn start_server() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("BCRYPT_COST", "10")
        .set("RUST_LOG", "warn")
        .start();
    (dir, app)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// Median time of one cost-10 bcrypt hash, on this machine, now.
fn one_hash_time() -> Duration {
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            bcrypt::hash("a-benchmark-password", 10).expect("bcrypt");
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

async fn add_storm(url: &str) -> (Duration, Vec<Duration>) {
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let url = url.to_string();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = c.get(format!("{url}/health/live")).send().await;
                assert!(r.is_ok_and(|r| r.status() == 200), "health/live failed");
                lat.push(t.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            lat
        })
    };
    let started = Instant::now();
    let adders: Vec<_> = (0..ADD_CONCURRENCY)
        .map(|_| {
            let url = url.to_string();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let c = reqwest::Client::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= USERS_TO_ADD {
                        break;
                    }
                    let r = c
                        .post(format!("{url}/users"))
                        .basic_auth("admin", Some(ADMIN_PASSWORD))
                        .json(&serde_json::json!({"username": format!("bench{i}"), "password": "bench-user-pass"}))
                        .send()
                        .await
                        .expect("POST /users");
                    assert_eq!(r.status(), 201, "POST /users");
                }
            })
        })
        .collect();
    for a in adders {
        a.await.expect("adder");
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut lat = probe.await.expect("probe");
    lat.sort();
    (elapsed, lat)
}

async fn token(url: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{url}/auth/token"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .expect("POST /auth/token");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("token body");
    v["token"].as_str().expect("token").to_string()
}

/// Median time of failed logins: `known` users with a wrong password, or unknown usernames.
/// One attempt per username, so no throttling is involved.
async fn failed_login_time(url: &str, names: &[String]) -> Duration {
    let c = reqwest::Client::new();
    let mut times = Vec::new();
    for n in names {
        let t = Instant::now();
        let r = c
            .get(format!("{url}/users"))
            .basic_auth(n, Some("definitely-wrong"))
            .send()
            .await
            .expect("GET /users");
        assert_eq!(r.status(), 401);
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful: run only
    // when asked to bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hash = one_hash_time();
    let limit = cores as f64 / hash.as_secs_f64();

    let (_dir, server) = start_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (elapsed, lat) = rt.block_on(add_storm(&server.url));
    let adds_per_s = USERS_TO_ADD as f64 / elapsed.as_secs_f64();
    let reads_per_s = rt.block_on(read_rate(
        &format!("{}/users", server.url),
        Credentials::basic("admin", ADMIN_PASSWORD),
    ));
    let bearer = rt.block_on(token(&server.url));
    let bearer_per_s = rt.block_on(read_rate(
        &format!("{}/users", server.url),
        Credentials::Bearer(bearer),
    ));
    let known: Vec<String> = (0..10).map(|i| format!("bench{i}")).collect();
    let unknown: Vec<String> = (0..10).map(|i| format!("nobody{i}")).collect();
    let known_fail = rt.block_on(failed_login_time(&server.url, &known));
    let unknown_fail = rt.block_on(failed_login_time(&server.url, &unknown));

    println!("registry-admin users benchmark ({cores} cores)");
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| user adds/s at cost 10 ({USERS_TO_ADD} users, {ADD_CONCURRENCY} clients) | {adds_per_s:.1} | limit {limit:.1}/s ({cores} cores / {:.1} ms per hash) | {:.2} | >= 0.80 |",
        ms(hash),
        adds_per_s / limit
    );
    println!(
        "| /health/live during the storm ({} probes) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms | one cost-10 hash {:.1} ms | p99/hash {:.3} | p99 < 20 ms |",
        lat.len(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 1.0)),
        ms(hash),
        ms(percentile(&lat, 0.99)) / ms(hash)
    );
    println!(
        "| GET /users with Basic, warm cache ({READ_CONCURRENCY} clients, {READ_SECONDS} s, client in the same machine) | {reads_per_s:.0} req/s | uncached: one hash per request = {:.1} req/s | {:.0}x | >= 5000 req/s |",
        limit,
        reads_per_s / limit
    );
    println!(
        "| GET /users with a Bearer token ({READ_CONCURRENCY} clients, {READ_SECONDS} s) | {bearer_per_s:.0} req/s | Basic with a warm cache {reads_per_s:.0} req/s | {:.2} | |",
        bearer_per_s / reads_per_s
    );
    println!(
        "| failed login, unknown username (p50 of 10) | {:.1} ms | known username, wrong password {:.1} ms | {:.2} | ~1.0 (no timing oracle) |",
        ms(unknown_fail),
        ms(known_fail),
        ms(unknown_fail) / ms(known_fail)
    );
}
