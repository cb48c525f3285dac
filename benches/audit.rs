//! Audit benchmark on a generated 1,000,000-entry log, each figure next to its reference from
//! the same run:
//! - newest 50 entries through `GET /audit?limit=50`;
//! - `GET /audit?user=…` for an account with 50 entries spread through the file, against
//!   `grep -c` for that name on the same file;
//! - append throughput of the writer with group commit, many concurrent writers.
//!
//! Run with `cargo bench --bench audit` (about 350 MB of temporary disk).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufWriter, Write};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use common::bench::{append_rate, ms, p50};
use common::{ADMIN_PASSWORD, AppEnv, client};
use registry_admin::audit::AuditLog;
use registry_admin::audit::entry::{Entry, GENESIS, Outcome, Source, format_time, seal};

const ENTRIES: usize = 1_000_000;
const NEEDLE_ENTRIES: usize = 50;
const APPENDS: usize = 50_000;
const WRITERS: usize = 256;

fn generate(path: &std::path::Path) {
    let actions = [
        "user.create",
        "user.password",
        "image.push",
        "image.pull",
        "tag.delete",
        "auth.failure",
    ];
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut prev = GENESIS.to_string();
    let start = Utc::now() - Span::days(30);
    let every = ENTRIES / NEEDLE_ENTRIES;
    for i in 0..ENTRIES {
        let actor = if i % every == every / 2 {
            "needle-user".to_string()
        } else {
            format!("user{:04}", (i * 7919) % 1000)
        };
        let action = actions[i % actions.len()];
        let source = if action.starts_with("image.") {
            Source::Registry
        } else {
            Source::Api
        };
        let mut e = Entry::new(action, &actor, Outcome::Success, source);
        e.time = format_time(start + Span::milliseconds(i as i64 * 2500));
        if source == Source::Registry {
            e.image = Some(format!("team/app{}", i % 50));
            e.tag = Some("v1".into());
            e.digest = Some(format!("sha256:{:064x}", i));
            e.remote_addr = Some("10.1.2.3".into());
        } else {
            e.user = Some(format!("user{:04}", (i * 31) % 1000));
            e.status = Some(201);
            e.request_id = Some(format!("{i:032x}"));
            e.remote_addr = Some("127.0.0.1".into());
        }
        let (line, hash) = seal(&mut e, &prev);
        out.write_all(&line).unwrap();
        out.write_all(b"\n").unwrap();
        prev = hash;
    }
    out.flush().unwrap();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/audit.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let t = Instant::now();
    generate(&log);
    let size = std::fs::metadata(&log).unwrap().len();
    eprintln!(
        "generated {ENTRIES} entries, {} MB, in {:.1} s",
        size / 1_000_000,
        t.elapsed().as_secs_f64()
    );

    let app = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("AUDIT_MAX_BYTES", "4000000000")
        .set("RUST_LOG", "warn")
        .start();
    let c = client();
    let get = |q: &str| {
        let t = Instant::now();
        let r = c
            .get(format!("{}/audit{q}", app.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().unwrap();
        (t.elapsed(), v["entries"].as_array().unwrap().len())
    };
    get("?limit=1"); // warm the page cache and the credentials cache
    let newest: Vec<Duration> = (0..20)
        .map(|_| {
            let (d, n) = get("?limit=50");
            assert_eq!(n, 50);
            d
        })
        .collect();

    let grep = |needle: &str| {
        let t = Instant::now();
        let out = Command::new("grep")
            .arg("-c")
            .arg(needle)
            .arg(&log)
            .output()
            .unwrap();
        let count: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        (t.elapsed(), count)
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (d, n) = get("?user=needle-user&limit=100");
        assert_eq!(n, NEEDLE_ENTRIES);
        ours.push(d);
        let (d, n) = grep("needle-user");
        assert_eq!(n, NEEDLE_ENTRIES);
        theirs.push(d);
    }
    drop(app);

    // Append throughput: WRITERS tasks each waiting for their entry to be on disk.
    let append_dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(append_dir.path().join("audit.log"), u64::MAX).unwrap());
    let append_rate = append_rate(&[audit], APPENDS, WRITERS);
    // One fsync per entry, for the reference.
    let single = tempfile::NamedTempFile::new().unwrap();
    let t = Instant::now();
    for _ in 0..200 {
        single.as_file().write_all(b"{\"x\":1}\n").unwrap();
        single.as_file().sync_data().unwrap();
    }
    let fsync_rate = 200.0 / t.elapsed().as_secs_f64();

    let (newest, ours, theirs) = (p50(newest), p50(ours), p50(theirs));
    println!(
        "registry-admin audit benchmark ({ENTRIES} entries, {} MB)",
        size / 1_000_000
    );
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| newest 50, GET /audit?limit=50 (p50 of 20) | {:.2} ms | | | <= 20 ms |",
        ms(newest)
    );
    println!(
        "| ?user= with {NEEDLE_ENTRIES} entries spread through the file (p50 of 5) | {:.0} ms | grep -c {:.0} ms | {:.2} | <= 1.5 |",
        ms(ours),
        ms(theirs),
        ms(ours) / ms(theirs)
    );
    println!(
        "| appends with group commit, {WRITERS} concurrent writers, each waiting for its fsync | {append_rate:.0} entries/s | one fsync per entry: {fsync_rate:.0}/s | {:.1}x | >= 5000/s |",
        append_rate / fsync_rate
    );
}
