//! Garbage-collection benchmark against a real registry on loopback (2.8, or 3 with
//! `TEST_REGISTRY=v3`), in both auth modes:
//! - htpasswd mode (registry read-only during the job, so there is no freeze wait): a registry
//!   of REPOS repositories × TAGS tags of tiny unique images, a tenth of them deleted; the job's
//!   wall time (from its own started_at/finished_at) vs `garbage-collect` run directly on a
//!   copy of the same storage, each alone; then pull (GET manifest + blobs) p50/p99 while a
//!   dry-run job marks the registry vs idle.
//! - token mode (REGISTRY_TOKEN_TTL=60, seeded with registry tokens from `GET /token`): the
//!   freeze wait reported apart — polled from `GET /gc/{id}`, vs the last write token's life
//!   plus registry:2's leeway — and the collect time after it vs `garbage-collect` directly.
//!
//! Run with `cargo bench --bench gc`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use common::bench::ms;
use common::gc::{start_gc, wait_for_job, with_gc};
use common::images::{ACCEPT_ALL, OCI_MANIFEST, sha256};
use common::token_stack::TokenStack;
use common::{ADMIN_PASSWORD, App, Registry, Stack, client, json, registry_bin, wait_until};
use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

/// The registry of issue 18's target: 1,000 repositories × 10 tags, a tenth of them garbage.
/// `BENCH_GC_REPOS` / `BENCH_GC_TAGS` scale it down on a slow machine.
const REPOS: usize = 1000;
const TAGS: usize = 10;
const IDLE_SAMPLES: usize = 200;
/// Token mode seeds fewer repositories: its figure is the freeze wait, not the sweep.
const TOKEN_REPOS: usize = 20;
/// The least REGISTRY_TOKEN_TTL allows.
const TOKEN_TTL_SECS: i64 = 60;
/// registry:2 accepts a token this long past its `exp`, so the freeze waits it out too.
const LEEWAY_SECS: i64 = 60;
const JOB_LIMIT: Duration = Duration::from_secs(600);

/// How requests to the registry authenticate.
enum Auth {
    Basic,
    Bearer(String),
}

impl Auth {
    fn on(&self, req: RequestBuilder) -> RequestBuilder {
        match self {
            Auth::Basic => req.basic_auth("admin", Some(ADMIN_PASSWORD)),
            Auth::Bearer(token) => req.bearer_auth(token),
        }
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn row(figure: &str, value: String, reference: String, ratio: f64) -> String {
    format!("| {figure} | {value} | {reference} | {ratio:.2} | |")
}

fn job_time(job: &Value, key: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(job[key].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn upload(c: &Client, url: &str, auth: &Auth, name: &str, bytes: Vec<u8>) -> String {
    let digest = sha256(&bytes);
    let r = auth
        .on(c.post(format!("{url}/v2/{name}/blobs/uploads/")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let loc = if loc.starts_with('/') {
        format!("{url}{loc}")
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = auth
        .on(c.put(format!("{loc}{sep}digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

/// A tiny image with its own layer and config; returns its manifest digest.
fn push_image(c: &Client, url: &str, auth: &Auth, name: &str, tag: &str) -> String {
    let layer: Vec<u8> = (0..1024).map(|_| rand::random::<u8>()).collect();
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}, "nonce": format!("{name}:{tag}")}))
    .unwrap();
    let (ll, cl) = (layer.len(), config.len());
    let ld = upload(c, url, auth, name, layer);
    let cd = upload(c, url, auth, name, config);
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cl},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ll}]}))
    .unwrap();
    let digest = sha256(&m);
    let r = auth
        .on(c.put(format!("{url}/v2/{name}/manifests/{tag}")))
        .header("content-type", OCI_MANIFEST)
        .body(m)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `repos` repositories × `tags` tags, a tenth of them deleted (never r000:t0, the one
/// pulled). `auth` is asked once per repository.
fn seed(
    c: &Client,
    url: &str,
    repos: usize,
    tags: usize,
    mut auth: impl FnMut(&str) -> Auth,
) -> Duration {
    let start = Instant::now();
    for r in 0..repos {
        let name = format!("b/r{r:03}");
        let auth = auth(&name);
        for t in 0..tags {
            let digest = push_image(c, url, &auth, &name, &format!("t{t}"));
            if (r * tags + t) % 10 == 9 {
                let d = auth
                    .on(c.delete(format!("{url}/v2/{name}/manifests/{digest}")))
                    .send()
                    .unwrap();
                assert_eq!(d.status(), 202);
            }
        }
    }
    start.elapsed()
}

/// A copy of the registry's storage, for `garbage-collect` run directly.
fn copy_storage(registry: &Registry) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(registry.storage())
        .arg(copy.path().join("data"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    copy
}

/// Wall time of `garbage-collect` run directly, with the registry's config, on `copy`.
fn direct_gc(registry: &Registry, copy: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new(registry_bin())
        .args(["garbage-collect"])
        .arg(registry.config_path())
        .env_clear()
        .env(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            copy.join("data"),
        )
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Polls `GET /gc/{id}` every 50 ms (bounded) until the job is past `freezing`; returns when
/// the freeze ended: midway between the last poll that saw it frozen and the first that did not.
fn freeze_end(app: &App, id: &str) -> DateTime<Utc> {
    let mut frozen_at = Utc::now();
    let mut end = None;
    wait_until("the GC job to leave freezing", JOB_LIMIT, || {
        let (status, job) = json(
            app.as_admin(Method::GET, &format!("/gc/{id}"))
                .send()
                .expect("GET /gc/{id}"),
        );
        assert_eq!(status, 200, "{job}");
        let now = Utc::now();
        if matches!(job["state"].as_str(), Some("queued" | "freezing")) {
            frozen_at = now;
            return false;
        }
        end = Some(frozen_at + (now - frozen_at) / 2);
        true
    });
    end.unwrap()
}

fn pull_once(c: &Client, url: &str) -> Duration {
    let t = Instant::now();
    let m = Auth::Basic
        .on(c.get(format!("{url}/v2/b/r000/manifests/t0")))
        .header("accept", ACCEPT_ALL)
        .send()
        .unwrap();
    assert_eq!(m.status(), 200);
    let v: Value = m.json().unwrap();
    for d in std::iter::once(&v["config"]).chain(v["layers"].as_array().unwrap()) {
        let digest = d["digest"].as_str().unwrap();
        let b = Auth::Basic
            .on(c.get(format!("{url}/v2/b/r000/blobs/{digest}")))
            .send()
            .unwrap();
        assert_eq!(b.status(), 200);
        assert!(!b.bytes().unwrap().is_empty());
    }
    t.elapsed()
}

/// htpasswd mode: the description line and the table rows.
fn htpasswd_mode() -> (String, Vec<String>) {
    let mut stack = Stack::start_with(|env| with_gc(env).set("RUST_LOG", "warn"));
    let url = stack.registry.url.clone();
    let c = client();
    let (repos, tags) = (
        setting("BENCH_GC_REPOS", REPOS),
        setting("BENCH_GC_TAGS", TAGS),
    );
    let seeded = seed(&c, &url, repos, tags, |_| Auth::Basic);
    stack.registry.make_read_only();
    let blobs_before = stack.registry.blobs().len();
    let copy = copy_storage(&stack.registry);

    let mut idle: Vec<Duration> = (0..IDLE_SAMPLES).map(|_| pull_once(&c, &url)).collect();

    // The job against `garbage-collect` alone, both with the machine to themselves: pulls
    // running beside the job would take CPU from it that the direct run does not lose.
    let (status, job) = start_gc(&stack.app, json!({"dry_run": false}));
    assert_eq!(status, 202, "{job}");
    let job = wait_for_job(&stack.app, job["id"].as_str().unwrap(), JOB_LIMIT);
    assert_eq!(job["state"], "succeeded", "{job}");
    let job_wall = (job_time(&job, "finished_at") - job_time(&job, "started_at"))
        .to_std()
        .unwrap();
    let direct = direct_gc(&stack.registry, copy.path());

    // Pulls while a job marks the whole registry (a dry run: the real one has already
    // deleted the garbage).
    let stop = Arc::new(AtomicBool::new(false));
    let during = {
        let (stop, url) = (stop.clone(), url.clone());
        thread::spawn(move || {
            let c = client();
            let mut v = Vec::new();
            while !stop.load(Ordering::Relaxed) && v.len() < 100_000 {
                v.push(pull_once(&c, &url));
            }
            v
        })
    };
    let (status, dry) = start_gc(&stack.app, json!({"dry_run": true}));
    assert_eq!(status, 202, "{dry}");
    let dry = wait_for_job(&stack.app, dry["id"].as_str().unwrap(), JOB_LIMIT);
    stop.store(true, Ordering::Relaxed);
    let mut during = during.join().unwrap();
    assert_eq!(dry["state"], "succeeded", "{dry}");

    let (dp50, dp99) = (pct(&mut during, 0.5), pct(&mut during, 0.99));
    let (ip50, ip99) = (pct(&mut idle, 0.5), pct(&mut idle, 0.99));
    let rows = vec![
        row(
            &format!(
                "GC job wall time (freeze wait 0: htpasswd mode, read-only registry), {} blobs deleted",
                job["blobs_deleted"]
            ),
            format!("{:.0} ms", ms(job_wall)),
            format!("garbage-collect directly on a copy {:.0} ms", ms(direct)),
            ms(job_wall) / ms(direct),
        ),
        row(
            &format!("pull p50 during a dry-run job ({} pulls)", during.len()),
            format!("{:.2} ms", ms(dp50)),
            format!("idle {:.2} ms", ms(ip50)),
            ms(dp50) / ms(ip50),
        ),
        row(
            "pull p99 during a dry-run job",
            format!("{:.2} ms", ms(dp99)),
            format!("idle {:.2} ms", ms(ip99)),
            ms(dp99) / ms(ip99),
        ),
    ];
    let description = format!(
        "registry-admin GC benchmark, {} ({repos} repositories × {tags} tags, a tenth deleted, {blobs_before} blobs, seeded in {:.1} s)",
        common::upstream().label(),
        seeded.as_secs_f64()
    );
    (description, rows)
}

/// Token mode: the description line and the table rows.
fn token_mode() -> (String, Vec<String>) {
    let stack = TokenStack::start_with(|env| {
        with_gc(env)
            .set("REGISTRY_TOKEN_TTL", &TOKEN_TTL_SECS.to_string())
            .set("RUST_LOG", "warn")
    });
    let mut last_write_token = Utc::now();
    let tags = setting("BENCH_GC_TAGS", TAGS);
    let seeded = seed(&client(), &stack.registry.url, TOKEN_REPOS, tags, |name| {
        let token = stack.registry_token(
            &format!("repository:{name}:pull,push,delete"),
            Some(("admin", ADMIN_PASSWORD)),
        );
        last_write_token = Utc::now();
        Auth::Bearer(token)
    });
    let blobs_before = stack.registry.blobs().len();
    let copy = copy_storage(&stack.registry);

    let (status, job) = start_gc(&stack.app, json!({"dry_run": false}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let thawed = freeze_end(&stack.app, id);
    let job = wait_for_job(&stack.app, id, JOB_LIMIT);
    assert_eq!(job["state"], "succeeded", "{job}");
    let started = job_time(&job, "started_at");
    let freeze = (thawed - started).to_std().unwrap_or_default();
    let collect = (job_time(&job, "finished_at") - thawed)
        .to_std()
        .unwrap_or_default();
    let expected = (last_write_token + TimeDelta::seconds(TOKEN_TTL_SECS + LEEWAY_SECS) - started)
        .to_std()
        .unwrap_or_default();
    let direct = direct_gc(&stack.registry, copy.path());

    let rows = vec![
        row(
            &format!(
                "GC job freeze wait (token mode, REGISTRY_TOKEN_TTL={TOKEN_TTL_SECS}, job started {:.1} s after the last write token)",
                (started - last_write_token).as_seconds_f64()
            ),
            format!("{:.1} s", freeze.as_secs_f64()),
            format!(
                "that token's life + {LEEWAY_SECS} s leeway left: {:.1} s",
                expected.as_secs_f64()
            ),
            freeze.as_secs_f64() / expected.as_secs_f64(),
        ),
        row(
            &format!(
                "GC job collect time (token mode, job end − freeze end), {} blobs deleted",
                job["blobs_deleted"]
            ),
            format!("{:.0} ms", ms(collect)),
            format!("garbage-collect directly on a copy {:.0} ms", ms(direct)),
            ms(collect) / ms(direct),
        ),
    ];
    let description = format!(
        "token mode: {TOKEN_REPOS} repositories × {tags} tags, {blobs_before} blobs, seeded in {:.1} s",
        seeded.as_secs_f64()
    );
    (description, rows)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // One stack at a time: the htpasswd one is gone before the token one starts.
    let (htpasswd, mut rows) = htpasswd_mode();
    // BENCH_GC_TOKEN=0 leaves out token mode, whose freeze waits about two minutes.
    let token = if std::env::var("BENCH_GC_TOKEN").as_deref() == Ok("0") {
        "token mode: not run (BENCH_GC_TOKEN=0)".to_string()
    } else {
        let (token, token_rows) = token_mode();
        rows.extend(token_rows);
        token
    };
    println!("{htpasswd}; {token}");
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
