//! Garbage collection, the write freeze, registry event ids and failed logins across replicas
//! (README "Running several replicas"), with real processes: PostgreSQL, moto's S3, two
//! registries on one bucket, two registry-admin replicas on one database, nginx in front
//! (tests/common/cluster.rs). Without a component a test prints a SKIPPED banner and returns,
//! except under `CI=true`, where it fails.
//!
//! Waits are bounded and generous (the machine is shared); how long something took is
//! printed, never asserted. A freeze after a push lasts the push token's life (60 s here) plus
//! registry:2's 60 s leeway, so the GC tests take a few minutes.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{ClusterStack, TOKEN_SECRET, pull_direct};
use common::gc::{named, start_gc, start_real_gc_seen_on, wait_for_job, wait_for_state};
use common::images::sha256;
use common::postgres::Postgres;
use common::{ADMIN_PASSWORD, App, AppEnv, admin, json, post_events, registry_bin, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

/// `repository:NAME:pull,push` asked of `app` by the admin: the actions granted.
fn granted(app: &App, repository: &str) -> Vec<String> {
    ClusterStack::granted(&app.url, repository, "admin", ADMIN_PASSWORD)
}

fn pull_token(app: &App, repository: &str) -> String {
    let r = ClusterStack::token(
        &app.url,
        &format!("repository:{repository}:pull"),
        "admin",
        ADMIN_PASSWORD,
    );
    assert_eq!(r.status(), 200);
    r.json::<Value>().unwrap()["token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// The entries of `app`'s `GET /audit?action=ACTION`.
fn audit(app: &App, action: &str) -> Vec<Value> {
    let (status, body) = app.admin_json(Method::GET, &format!("/audit?action={action}"));
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().cloned().unwrap_or_default()
}

/// A job started on B: A answers 409 `gc_running` to a second one and shows B's job (runner
/// included), A's `/token` grants pull but no push during the freeze and API tag deletes on A
/// are 409 `maintenance`; the job reclaims the deleted image's blobs from S3, the kept image
/// still pulls, and A grants push again afterwards.
#[test]
fn gc_from_b_freezes_a_answers_gc_running_there_and_reclaims_s3() {
    let Some(c) = ClusterStack::start() else {
        return;
    };
    c.push(&admin(), "gc/keep", "v1", 1).expect("push keep");
    c.push(&admin(), "gc/drop", "v1", 3).expect("push drop");
    let raw = pull_direct(
        &c.registries[0].url,
        &pull_token(c.a(), "gc/drop"),
        "gc/drop",
        "v1",
    )
    .expect("gc/drop pulls");
    let dropped = named(&raw);
    c.delete(&admin(), &format!("gc/drop@{}", sha256(&raw)))
        .expect("delete the manifest");
    let blob_key = |d: &str| format!("/blobs/sha256/{}/{}/data", &d[7..9], &d[7..]);
    let before = c.moto.keys();
    for d in &dropped {
        assert!(
            before.iter().any(|k| k.ends_with(&blob_key(d))),
            "{d} in S3"
        );
    }
    assert!(granted(c.a(), "gc/keep").contains(&"push".to_string()));

    let (job, id) = start_real_gc_seen_on(c.b(), c.a());
    assert_eq!(job["runner"], "replica-b", "{job}");
    // The pushes' tokens are still out: the job freezes for their life plus the leeway.
    let seen_on_a = wait_for_state(c.a(), &id, "freezing", Duration::from_secs(60));
    assert_eq!(seen_on_a["runner"], "replica-b", "{seen_on_a}");

    let (status, body) = start_gc(c.a(), json!({"dry_run": true}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_running")),
        "{body}"
    );
    let (status, list) = c.a().admin_json(Method::GET, "/gc");
    assert_eq!(status, 200);
    assert_eq!(list["jobs"][0]["id"], id.as_str(), "{list}");
    assert_eq!(
        granted(c.a(), "gc/keep"),
        vec!["pull".to_string()],
        "A grants pull and no push during B's freeze"
    );
    assert_eq!(granted(c.b(), "gc/keep"), vec!["pull".to_string()]);
    let (status, body) = json(
        c.a()
            .as_admin(Method::DELETE, "/images/gc/keep/-/tags/v1")
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("maintenance")),
        "{body}"
    );
    c.pull(&admin(), "gc/keep:v1")
        .expect("pulls go on during the freeze");

    let started = Instant::now();
    let done = wait_for_job(c.a(), &id, Duration::from_secs(400));
    eprintln!(
        "job finished {:?} after the freeze was seen",
        started.elapsed()
    );
    assert_eq!(done["state"], "succeeded", "{done}");
    let after = c.moto.keys();
    for d in &dropped {
        assert!(
            !after.iter().any(|k| k.ends_with(&blob_key(d))),
            "{d} still in S3"
        );
    }
    c.pull(&admin(), "gc/keep:v1")
        .expect("the kept image pulls after the job");
    // Each replica reads the maintenance row every 200 ms: the balancer may send the push's
    // token request to either, so both must have seen the thaw.
    wait_until(
        "A and B to grant push again",
        Duration::from_secs(30),
        || {
            [c.a(), c.b()]
                .into_iter()
                .all(|r| granted(r, "gc/keep").contains(&"push".to_string()))
        },
    );
    c.push(&admin(), "gc/keep", "v2", 1)
        .expect("pushes work after the job");
}

/// kill -9 of the replica running a job while it freezes: the other replica marks the job
/// failed ("interrupted", with its `gc.finish` entry) and ends the freeze within 30 s (bounded
/// at 90 s here; the time is printed); push is granted again and a new job may start.
#[test]
fn killing_the_gc_runner_fails_its_job_on_the_other_replica_and_thaws() {
    let Some(mut c) = ClusterStack::start() else {
        return;
    };
    c.push(&admin(), "thaw/app", "v1", 1).expect("push");
    let (_, id) = start_real_gc_seen_on(c.b(), c.a());
    wait_for_state(c.a(), &id, "freezing", Duration::from_secs(60));
    assert_eq!(granted(c.a(), "thaw/app"), vec!["pull".to_string()]);

    c.kill_replica(1);
    let killed = Instant::now();
    let job = wait_for_job(c.a(), &id, Duration::from_secs(90));
    eprintln!(
        "GC runner killed → job {} on A after {:?}",
        job["state"],
        killed.elapsed()
    );
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("interrupted"),
        "{job}"
    );
    let finish = audit(c.a(), "gc.finish");
    assert!(
        finish.iter().any(|e| e["detail"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("job {id} failed"))),
        "{finish:?}"
    );
    let mut pushes = Vec::new();
    wait_until("A to grant push again", Duration::from_secs(30), || {
        pushes = granted(c.a(), "thaw/app");
        pushes.contains(&"push".to_string())
    });
    eprintln!("push granted on A {:?} after the kill", killed.elapsed());
    let (status, body) = start_gc(c.a(), json!({"dry_run": true}));
    assert_eq!(status, 202, "another job may start: {body}");
}

/// One registry notification, as registry:2 sends it.
fn push_event(id: &str) -> Value {
    json!({"events": [{
        "id": id,
        "timestamp": "2026-12-01T10:00:00.000Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "ab".repeat(32)),
            "repository": "events/app",
            "tag": "v1"
        },
        "request": {"id": "r1", "addr": "127.0.0.1:5000"},
        "actor": {"name": "pusher"}
    }]})
}

/// `POST /auth/token` (a login) on `app`: its status.
fn login_status(app: &App, user: &str, password: &str) -> u16 {
    app.request(Method::POST, "/auth/token")
        .basic_auth(user, Some(password))
        .send()
        .expect("POST /auth/token")
        .status()
        .as_u16()
}

/// A retry of a registry event delivered to the other replica is recognised as a repeat; and
/// failed logins spread over both replicas hit the limit (429) at the same total as on one:
/// the eleventh attempt is refused on either, the right password included.
#[test]
fn event_ids_and_failed_logins_count_across_replicas() {
    let Some(c) = ClusterStack::start() else {
        return;
    };
    let event = push_event("5f0c2a1e-9b7d-4c3e-8a21-clusterdedupe");
    let (status, body) = post_events(&c.a().url, &event);
    assert_eq!(
        (status, body["recorded"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (status, body) = post_events(&c.b().url, &event);
    assert_eq!(
        (status, body["recorded"].as_u64(), body["dropped"].as_u64()),
        (200, Some(0), Some(1)),
        "the retry on B is a repeat: {body}"
    );
    // One audit chain for the cluster: each replica shows the one entry.
    for app in [c.a(), c.b()] {
        let recorded = audit(app, "image.push")
            .iter()
            .filter(|e| e["image"] == "events/app")
            .count();
        assert_eq!(recorded, 1, "one entry for the event, on {}", app.url);
    }
    let (_, body) = post_events(&c.b().url, &push_event("another-id"));
    assert_eq!(body["recorded"].as_u64(), Some(1), "{body}");

    let r = c.a().create_user("carol", "carol-secret-1", "user");
    assert_eq!(r.status(), 201);
    // In force on B within a second (the accounts are refreshed from the database).
    wait_until("carol to log in on B", Duration::from_secs(10), || {
        login_status(c.b(), "carol", "carol-secret-1") == 200
    });
    // The pair's limit is ten failures (src/auth/limit.rs PAIR_FAILURES).
    for i in 0..10 {
        let app = if i % 2 == 0 { c.a() } else { c.b() };
        assert_eq!(login_status(app, "carol", "wrong-guess"), 401, "guess {i}");
    }
    assert_eq!(login_status(c.a(), "carol", "wrong-guess"), 429);
    assert_eq!(
        login_status(c.b(), "carol", "carol-secret-1"),
        429,
        "B refuses the pair too, whatever the password"
    );
    // Another account from the same address is not locked out.
    assert_eq!(login_status(c.b(), "admin", ADMIN_PASSWORD), 200);
}

/// One replica in cluster mode on PostgreSQL (no registry needed: the job is refused or
/// accepted before it runs anything), given REGISTRY_CONFIG `yaml`.
fn replica_with_registry_config(pg: &Postgres, dir: &Path, yaml: &str) -> App {
    std::fs::create_dir_all(dir.join("auth")).unwrap();
    let config = dir.join("registry-config.yml");
    std::fs::write(&config, yaml).unwrap();
    AppEnv::new(dir, "http://127.0.0.1:1")
        .set("AUTH_MODE", "token")
        .set("DATABASE_URL", &pg.database("cache_rule"))
        .set("TOKEN_SECRET", TOKEN_SECRET)
        .set("REPLICA_ID", "replica-cache")
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.join("auth/token.key").display().to_string(),
        )
        .set("REGISTRY_CONFIG", &config.display().to_string())
        .set("REGISTRY_BIN", &registry_bin().display().to_string())
        .set("REGISTRY_TOKEN_TTL", "60")
        .start()
}

const S3: &str = "version: 0.1\nstorage:\n  s3:\n    bucket: b\n    region: us-east-1\n";

/// In cluster mode a registry with its own in-memory blob-descriptor cache cannot be made
/// consistent after a collection: the job is refused, saying why; a shared Redis cache is
/// accepted (the job purges it; tested against a real Redis when `redis-server` is installed).
#[test]
fn an_inmemory_blob_cache_is_refused_in_cluster_mode_and_redis_is_accepted() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = replica_with_registry_config(
        &pg,
        &dir.path().join("inmemory"),
        &format!("{S3}  cache:\n    blobdescriptor: inmemory\n"),
    );
    let (status, body) = start_gc(&app, json!({"dry_run": true}));
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_unavailable")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("inmemory") && message.contains("cluster mode"),
        "{message}"
    );
    let (_, jobs) = app.admin_json(Method::GET, "/gc");
    assert_eq!(jobs["jobs"], json!([]), "nothing was recorded");

    let app = replica_with_registry_config(
        &pg,
        &dir.path().join("redis"),
        &format!("{S3}  cache:\n    blobdescriptor: redis\nredis:\n  addr: 127.0.0.1:1\n"),
    );
    let (status, job) = start_gc(&app, json!({"dry_run": true}));
    assert_eq!(
        status, 202,
        "a redis cache is accepted in cluster mode: {job}"
    );
    assert_eq!(job["runner"], "replica-cache", "{job}");
}

/// Debian's redis-server on a free port, or `None` (after a loud banner) when not installed.
struct RedisServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        if !Path::new("/usr/bin/redis-server").exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is missing (scripts/install-deps.sh redis-server); CI must run the purge test"
            );
            eprintln!(
                "\n  ************************************************************************\n  \
                 WARNING: the purge of a real Redis is SKIPPED — redis-server is missing.\n  \
                 Install Debian's redis-server to run it.\n  \
                 ************************************************************************\n"
            );
            return None;
        }
        Some(common::on_free_port(|port| {
            let dir = tempfile::tempdir().unwrap();
            let child = std::process::Command::new("/usr/bin/redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start redis-server");
            let mut server = RedisServer {
                child,
                port,
                _dir: dir,
            };
            let up = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(50));
                server.command("PING").starts_with("+PONG")
            });
            if up {
                Ok(server)
            } else {
                let _ = server.child.kill();
                Err(common::PortTaken(port))
            }
        }))
    }

    /// One inline command; the first line of the answer ("" when there is none).
    fn command(&self, line: &str) -> String {
        use std::io::{BufRead, BufReader, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if s.write_all(format!("{line}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        let mut answer = String::new();
        let _ = BufReader::new(s).read_line(&mut answer);
        answer.trim_end().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry config on an empty filesystem storage with a Redis blob-descriptor cache at
/// `addr`: `garbage-collect` runs on it without a registry process.
fn redis_cached_config(dir: &Path, addr: &str) -> String {
    let root = dir.join("storage");
    std::fs::create_dir_all(&root).unwrap();
    format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         cache:\n    blobdescriptor: redis\nredis:\n  addr: {addr}\n",
        root.display()
    )
}

/// A job that deletes purges the registries' shared Redis cache before it thaws: with the
/// cache unreachable the job fails and says to flush it by hand; with Debian's redis-server
/// (when installed) the job succeeds and the cache is empty afterwards. In cluster mode a job
/// freezes for at least 122 s (README "GC in a cluster").
#[test]
fn a_job_that_deletes_purges_the_shared_redis_cache_before_it_thaws() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let unreachable_dir = dir.path().join("unreachable");
    std::fs::create_dir_all(&unreachable_dir).unwrap();
    let unreachable = replica_with_registry_config(
        &pg,
        &unreachable_dir,
        &redis_cached_config(&unreachable_dir, "127.0.0.1:1"),
    );
    let (status, failing) = start_gc(&unreachable, json!({"dry_run": false}));
    assert_eq!(status, 202, "{failing}");

    let redis = RedisServer::start();
    let purged = redis.as_ref().map(|r| {
        assert_eq!(r.command("SET blobs::sha256:abc stale"), "+OK");
        let d = dir.path().join("redis");
        std::fs::create_dir_all(&d).unwrap();
        let app = replica_with_registry_config(
            &pg,
            &d,
            &redis_cached_config(&d, &format!("127.0.0.1:{}", r.port)),
        );
        let (status, job) = start_gc(&app, json!({"dry_run": false}));
        assert_eq!(status, 202, "{job}");
        (app, job["id"].as_str().unwrap().to_string())
    });

    let job = wait_for_job(
        &unreachable,
        failing["id"].as_str().unwrap(),
        Duration::from_secs(400),
    );
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("purging the registries' Redis blob-descriptor cache at 127.0.0.1:1")
            && error.contains("FLUSHDB"),
        "{error}"
    );
    if let (Some(r), Some((app, id))) = (redis.as_ref(), purged) {
        let job = wait_for_job(&app, &id, Duration::from_secs(400));
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(r.command("DBSIZE"), ":0", "the cache was flushed");
    }
}
