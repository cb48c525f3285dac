//! Cluster-mode benchmark, one run, figures next to their references (issue 20's targets):
//! - `GET /token` (pull, warm verification cache) per second: one cluster-mode replica on
//!   PostgreSQL against one files-mode process, same machine, same load (target ≥ 0.8×);
//! - scaling: two replicas each pinned to its own core (`taskset`) against one replica pinned
//!   to one core, load on both at once (target ≥ 1.8×; the load generator runs on the same two
//!   cores, which caps what this machine can show);
//! - disable on replica A → `/token` refused on replica B, p50 and max of 10 (target ≤ 1 s).
//!
//! Run with `cargo bench --bench cluster`; needs Debian's PostgreSQL (or `DATABASE_URL`).
//! Talks only to 127.0.0.1.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::bench::{Credentials, ms, p50, read_rate, token_server};
use common::postgres::Postgres;
use common::{ADMIN_PASSWORD, App, AppEnv, client};

const SECRET: &str = "cluster-bench-token-secret-0123456789abcdef";
const TOKEN_PATH: &str = "/token?service=registry&scope=repository:bench/app:pull";

fn replica(dir: &std::path::Path, name: &str, database_url: &str) -> App {
    let own = dir.join(name);
    std::fs::create_dir_all(&own).expect("replica dir");
    AppEnv::new(&own, "http://127.0.0.1:9")
        .set("AUTH_MODE", "token")
        .set("DATABASE_URL", database_url)
        .set("TOKEN_SECRET", SECRET)
        .set("REPLICA_ID", name)
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.join("token.key").display().to_string(),
        )
        .set("BCRYPT_COST", "10")
        .set("RUST_LOG", "warn")
        .start()
}

/// Pins every thread of `app` to `cpu`.
fn pin(app: &App, cpu: usize) {
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &app.pid().to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "taskset failed (util-linux)");
}

fn admin() -> Credentials {
    Credentials::basic("admin", ADMIN_PASSWORD)
}

fn token_status(app: &App, user: &str, password: &str) -> u16 {
    client()
        .get(format!("{}{TOKEN_PATH}", app.url))
        .basic_auth(user, Some(password))
        .send()
        .expect("token request")
        .status()
        .as_u16()
}

fn main() {
    let pg = Postgres::start().expect("PostgreSQL is needed for this benchmark");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    // Tokens per second: files mode against cluster mode, one process each, unpinned.
    let (_files_dir, files) = token_server();
    let files_rate = rt.block_on(read_rate(&format!("{}{TOKEN_PATH}", files.url), admin()));
    drop(files);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = pg.database("bench_tokens");
    let a = replica(dir.path(), "a", &url);
    let cluster_rate = rt.block_on(read_rate(&format!("{}{TOKEN_PATH}", a.url), admin()));
    println!("registry-admin cluster benchmark ({cpus} cores, PostgreSQL on the same machine)");
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| GET /token (pull, warm cache), cluster mode, one replica | {cluster_rate:.0} tokens/s | files mode {files_rate:.0} tokens/s | {:.2} | >= 0.8 |",
        cluster_rate / files_rate
    );

    // Scaling: one replica on one core, then two replicas on a core each, loaded together.
    let b = replica(dir.path(), "b", &url);
    if cpus >= 2 {
        pin(&a, 0);
        pin(&b, 1);
        let one = rt.block_on(read_rate(&format!("{}{TOKEN_PATH}", a.url), admin()));
        let (url_a, url_b) = (
            format!("{}{TOKEN_PATH}", a.url),
            format!("{}{TOKEN_PATH}", b.url),
        );
        let (ra, rb) = rt.block_on(async {
            tokio::join!(read_rate(&url_a, admin()), read_rate(&url_b, admin()))
        });
        println!(
            "| GET /token, two replicas pinned to a core each, loaded together (load generator on the same cores) | {:.0} tokens/s ({ra:.0} + {rb:.0}) | one replica on one core {one:.0} tokens/s | {:.2} | >= 1.8 |",
            ra + rb,
            (ra + rb) / one
        );
    } else {
        println!("| scaling | skipped: one CPU | | | >= 1.8 |");
    }

    // Disable on A → refused on B.
    let created = a.create_user("leaver", "leaver-secret-1", "user");
    assert!(created.status().is_success(), "create leaver");
    let mut times = Vec::new();
    for _ in 0..10 {
        let (s, _) = a.admin_json(reqwest::Method::POST, "/users/leaver/enable");
        assert_eq!(s, 200);
        let limit = Instant::now() + Duration::from_secs(5);
        while token_status(&b, "leaver", "leaver-secret-1") != 200 {
            assert!(Instant::now() < limit, "B never saw the account enabled");
            std::thread::sleep(Duration::from_millis(5));
        }
        let (s, _) = a.admin_json(reqwest::Method::POST, "/users/leaver/disable");
        assert_eq!(s, 200);
        let disabled = Instant::now();
        let limit = disabled + Duration::from_secs(5);
        while token_status(&b, "leaver", "leaver-secret-1") != 401 {
            assert!(Instant::now() < limit, "B still issues tokens after 5 s");
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(disabled.elapsed());
    }
    let max = times.iter().max().copied().unwrap_or_default();
    println!(
        "| disable on replica A -> /token refused on replica B (p50 of 10) | {:.0} ms | max {:.0} ms | | <= 1000 ms |",
        ms(p50(times)),
        ms(max)
    );
}
