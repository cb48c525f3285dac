//! Garbage-collection benchmark, one run against a real registry:2 on loopback (htpasswd mode,
//! registry read-only during the job, so there is no freeze wait):
//! - a registry of REPOS repositories × TAGS tags of tiny unique images, half of them deleted;
//! - the job's wall time (from its own started_at/finished_at) vs `garbage-collect` run directly
//!   on a copy of the same storage;
//! - pull (GET manifest + blobs) p50/p99 while the job runs vs idle.
//!
//! Run with `cargo bench --bench gc`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::gc::{start_gc, wait_for_job, with_gc};
use common::images::{ACCEPT_ALL, OCI_MANIFEST, sha256};
use common::{ADMIN_PASSWORD, REGISTRY_BIN, Stack, client};
use reqwest::blocking::Client;
use serde_json::{Value, json};

const REPOS: usize = 100;
const TAGS: usize = 5;
const IDLE_SAMPLES: usize = 200;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn upload(c: &Client, url: &str, name: &str, bytes: Vec<u8>) -> String {
    let digest = sha256(&bytes);
    let r = c
        .post(format!("{url}/v2/{name}/blobs/uploads/"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
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
    let r = c
        .put(format!("{loc}{sep}digest={digest}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

/// A tiny image with its own layer and config; returns its manifest digest.
fn push_image(c: &Client, url: &str, name: &str, tag: &str) -> String {
    let layer: Vec<u8> = (0..1024).map(|_| rand::random::<u8>()).collect();
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}, "nonce": format!("{name}:{tag}")}))
    .unwrap();
    let (ll, cl) = (layer.len(), config.len());
    let ld = upload(c, url, name, layer);
    let cd = upload(c, url, name, config);
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cl},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ll}]}))
    .unwrap();
    let digest = sha256(&m);
    let r = c
        .put(format!("{url}/v2/{name}/manifests/{tag}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("content-type", OCI_MANIFEST)
        .body(m)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    digest
}

fn pull_once(c: &Client, url: &str) -> Duration {
    let t = Instant::now();
    let m = c
        .get(format!("{url}/v2/b/r000/manifests/t0"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("accept", ACCEPT_ALL)
        .send()
        .unwrap();
    assert_eq!(m.status(), 200);
    let v: Value = m.json().unwrap();
    for d in std::iter::once(&v["config"]).chain(v["layers"].as_array().unwrap()) {
        let b = c
            .get(format!(
                "{url}/v2/b/r000/blobs/{}",
                d["digest"].as_str().unwrap()
            ))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .unwrap();
        assert_eq!(b.status(), 200);
        assert!(!b.bytes().unwrap().is_empty());
    }
    t.elapsed()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut stack = Stack::start_with(|env| with_gc(env).set("RUST_LOG", "warn"));
    let url = stack.registry.url.clone();
    let c = client();
    let seeding = Instant::now();
    for r in 0..REPOS {
        for t in 0..TAGS {
            let name = format!("b/r{r:03}");
            let digest = push_image(&c, &url, &name, &format!("t{t}"));
            // Half deleted: odd tags of every repository (never r000:t0, the one pulled).
            if t % 2 == 1 || (t == 4 && r % 2 == 0) {
                let d = c
                    .delete(format!("{url}/v2/{name}/manifests/{digest}"))
                    .basic_auth("admin", Some(ADMIN_PASSWORD))
                    .send()
                    .unwrap();
                assert_eq!(d.status(), 202);
            }
        }
    }
    let seeded = seeding.elapsed();
    stack.registry.make_read_only();
    let blobs_before = stack.registry.blobs().len();

    // The same data, for garbage-collect run directly.
    let copy = tempfile::tempdir().unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(stack.registry.storage())
        .arg(copy.path().join("data"))
        .status()
        .unwrap()
        .success();
    assert!(ok);

    let mut idle: Vec<Duration> = (0..IDLE_SAMPLES).map(|_| pull_once(&c, &url)).collect();

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
    let (status, job) = start_gc(&stack.app, json!({"dry_run": false}));
    assert_eq!(status, 202, "{job}");
    let job = wait_for_job(
        &stack.app,
        job["id"].as_str().unwrap(),
        Duration::from_secs(600),
    );
    stop.store(true, Ordering::Relaxed);
    let mut during = during.join().unwrap();
    assert_eq!(job["state"], "succeeded", "{job}");
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(job[k].as_str().unwrap()).unwrap();
    let job_wall = (time("finished_at") - time("started_at")).to_std().unwrap();

    let direct = Instant::now();
    let out = Command::new(REGISTRY_BIN)
        .args(["garbage-collect"])
        .arg(stack.registry.config_path())
        .env_clear()
        .env(
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            copy.path().join("data"),
        )
        .output()
        .unwrap();
    let direct = direct.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    println!(
        "registry-admin GC benchmark ({REPOS} repositories × {TAGS} tags, {} blobs, seeded in {:.1} s)",
        blobs_before,
        seeded.as_secs_f64()
    );
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| GC job wall time (freeze wait 0: htpasswd mode, read-only registry), {} blobs deleted | {:.0} ms | garbage-collect directly on a copy {:.0} ms | {:.2} | |",
        job["blobs_deleted"],
        ms(job_wall),
        ms(direct),
        ms(job_wall) / ms(direct)
    );
    let (dp50, dp99) = (pct(&mut during, 0.5), pct(&mut during, 0.99));
    let (ip50, ip99) = (pct(&mut idle, 0.5), pct(&mut idle, 0.99));
    println!(
        "| pull p50 during the job ({} pulls) | {:.2} ms | idle {:.2} ms | {:.2} | |",
        during.len(),
        ms(dp50),
        ms(ip50),
        ms(dp50) / ms(ip50)
    );
    println!(
        "| pull p99 during the job | {:.2} ms | idle {:.2} ms | {:.2} | |",
        ms(dp99),
        ms(ip99),
        ms(dp99) / ms(ip99)
    );
}
