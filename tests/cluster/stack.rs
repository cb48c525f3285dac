//! Cluster mode with real processes (README "Running several replicas"): PostgreSQL, moto's S3,
//! two registries on one bucket, two registry-admin replicas on one database, nginx in front
//! (tests/common/cluster.rs). Without PostgreSQL, nginx or moto_server a test prints a
//! SKIPPED banner and returns, except under `CI=true`, where it fails.
//!
//! Waits are bounded and generous (the machine is shared); how long a change took to reach the
//! other replica is printed, never asserted.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::auth::{api_token, bearer_status};
use common::cluster::{
    ClusterStack, addr_of, create_user, pull_direct, replica_env, s3_registry, verify,
};
use common::gc::{PullLoop, named, start_real_gc_seen_on, wait_for_job, wait_for_state};
use common::images::{ACCEPT_ALL, sha256};
use common::moto::Moto;
use common::nginx::ClusterNginx;
use common::postgres::{Postgres, psql};
use common::registry_config::Auth;
use common::token_stack::TokenStack;
use common::{ADMIN_PASSWORD, App, AppEnv, admin, client, json, on_free_port, wait_until};
use reqwest::Method;
use serde_json::{Value, json};

fn put_grants(app: &App, user: &str, grants: Value) {
    let (status, body) = json(
        app.as_admin(Method::PUT, &format!("/users/{user}/grants"))
            .json(&json!({ "grants": grants }))
            .send()
            .expect("PUT grants"),
    );
    assert_eq!(status, 200, "{body}");
}

/// Waits (bounded) until `app`'s `/token` accepts `user`'s password: a change made on another
/// replica is promised there within a second, not at once. Prints how long it took.
fn wait_for_account(app: &App, user: &str, password: &str) {
    let start = Instant::now();
    let mut last = 0;
    while start.elapsed() < Duration::from_secs(10) {
        last = ClusterStack::token(&app.url, "repository:any/thing:pull", user, password)
            .status()
            .as_u16();
        if last == 200 {
            eprintln!("{user} usable on {} after {:?}", app.url, start.elapsed());
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{}'s /token still answers {last} for {user} after 10 s",
        app.url
    );
}

/// The harness alone, no cluster mode needed: PostgreSQL answers; two registries on one moto
/// bucket with one `http.secret` serve what was pushed through either, an upload started on
/// one finishes on the other; nginx (deploy/nginx-cluster.conf) forwards `/v2/` to the
/// registries and the rest to the replicas, and skips a replica that died.
#[test]
fn components_postgres_shared_s3_registries_and_nginx() {
    if !ClusterNginx::installed() {
        return;
    }
    let Some(pg) = Postgres::start() else { return };
    assert_eq!(pg.psql("postgres", "select 1").as_deref(), Ok("1"));
    let url = pg.database("components");
    psql(
        &url,
        "create table t (x int); insert into t values (41), (1)",
    )
    .expect("psql");
    assert_eq!(psql(&url, "select sum(x) from t").as_deref(), Ok("42"));

    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let out = std::process::Command::new("htpasswd")
        .args(["-Bbn", "pusher", "pusher-secret-1"])
        .output()
        .expect("htpasswd (apache2-utils) must be installed");
    assert!(out.status.success());
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let auth = Auth::htpasswd("cluster-test", &htpasswd);
    let registries: Vec<_> = ["ra", "rb"]
        .iter()
        .map(|n| s3_registry(&moto, &dir.path().join(n), &auth, None))
        .collect();
    let apps: Vec<App> = ["aa", "ab"]
        .iter()
        .map(|n| AppEnv::new(&dir.path().join(n), "http://127.0.0.1:1").start())
        .collect();
    let nginx = on_free_port(|port| {
        ClusterNginx::try_start(
            port,
            [addr_of(&apps[0].url), addr_of(&apps[1].url)],
            [addr_of(&registries[0].url), addr_of(&registries[1].url)],
        )
    });

    // Pushed through nginx: skopeo's upload requests are spread over both registries.
    let (_keep, layout, img) = common::images::one_image(2);
    let out = common::skopeo::skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "pusher:pusher-secret-1",
        &format!("oci:{}:img", layout.dir.display()),
        &format!("docker://{}/comp/app:v1", nginx.host()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = moto.keys();
    assert!(
        keys.iter()
            .any(|k| k.ends_with("/_manifests/tags/v1/current/link")),
        "the tag is in the bucket: {keys:?}"
    );
    for r in &registries {
        let m = client()
            .get(format!("{}/v2/comp/app/manifests/v1", r.url))
            .basic_auth("pusher", Some("pusher-secret-1"))
            .header("accept", ACCEPT_ALL)
            .send()
            .unwrap();
        assert_eq!(m.status(), 200, "{}", r.url);
        let raw = m.bytes().unwrap();
        assert_eq!(sha256(&raw), img.digest, "same manifest from {}", r.url);
        for d in named(&raw) {
            let b = client()
                .get(format!("{}/v2/comp/app/blobs/{d}", r.url))
                .basic_auth("pusher", Some("pusher-secret-1"))
                .send()
                .unwrap();
            assert_eq!(b.status(), 200);
            assert_eq!(sha256(&b.bytes().unwrap()), d, "blob from {}", r.url);
        }
    }

    // An upload started on A and finished on B: one http.secret signs both's upload state.
    let blob = b"an upload that changes registry half way".to_vec();
    let digest = sha256(&blob);
    let started = client()
        .post(format!("{}/v2/comp/blob/blobs/uploads/", registries[0].url))
        .basic_auth("pusher", Some("pusher-secret-1"))
        .send()
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_string();
    let path = location
        .find("/v2/")
        .map(|i| location[i..].to_string())
        .expect("upload location");
    let sep = if path.contains('?') { '&' } else { '?' };
    let finished = client()
        .put(format!("{}{path}{sep}digest={digest}", registries[1].url))
        .basic_auth("pusher", Some("pusher-secret-1"))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .unwrap();
    assert_eq!(finished.status(), 201, "{:?}", finished.text());
    let back = client()
        .get(format!("{}/v2/comp/blob/blobs/{digest}", registries[0].url))
        .basic_auth("pusher", Some("pusher-secret-1"))
        .send()
        .unwrap();
    assert_eq!(back.bytes().unwrap().to_vec(), blob);

    // nginx: the API goes to the replicas; with one killed, every call still succeeds.
    let live = |n: &ClusterNginx| {
        client()
            .get(format!("{}/health/live", n.url))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    let v2 = client().get(format!("{}/v2/", nginx.url)).send().unwrap();
    assert_eq!(v2.status(), 401, "/v2/ goes to a registry");
    assert!(v2.headers().contains_key("docker-distribution-api-version"));
    assert_eq!(live(&nginx), 200, "the API goes to a replica");
    let mut apps = apps;
    apps[0].kill();
    let statuses: Vec<u16> = (0..10).map(|_| live(&nginx)).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// A user created on replica A (granted on B) pushes through nginx, and pulls the same bytes
/// from each registry with a token from each replica.
#[test]
fn a_user_created_on_a_pushes_through_nginx_and_pulls_anywhere() {
    let Some(c) = ClusterStack::start() else {
        return;
    };
    create_user(c.a(), "dev", "dev-secret-123", "user");
    put_grants(
        c.b(),
        "dev",
        json!([{"repository": "team/**", "actions": ["pull", "push"]}]),
    );
    for replica in &c.replicas {
        wait_for_account(replica, "dev", "dev-secret-123");
    }
    c.push("dev:dev-secret-123", "team/app", "v1", 2)
        .expect("push through nginx");
    let mut manifests = BTreeSet::new();
    for replica in &c.replicas {
        let r = ClusterStack::token(
            &replica.url,
            "repository:team/app:pull",
            "dev",
            "dev-secret-123",
        );
        assert_eq!(r.status(), 200, "token from {}", replica.url);
        let body: Value = r.json().unwrap();
        let token = body["token"].as_str().unwrap().to_string();
        for registry in &c.registries {
            let raw = pull_direct(&registry.url, &token, "team/app", "v1").unwrap_or_else(|e| {
                panic!(
                    "pull from {} with {}'s token: {e}",
                    registry.url, replica.url
                )
            });
            manifests.insert(raw);
        }
    }
    assert_eq!(manifests.len(), 1, "the same manifest everywhere");
    c.pull("dev:dev-secret-123", "team/app:v1")
        .expect("pull through nginx");
    // Outside its grants the push is refused, whichever replica signs.
    assert!(c.push("dev:dev-secret-123", "other/app", "v1", 1).is_err());
}

/// Disabling on A refuses on B — `/token` and an API bearer token B issued before.
#[test]
fn disable_on_a_refuses_on_b() {
    let Some(c) = ClusterStack::start() else {
        return;
    };
    create_user(c.a(), "leaver", "leaver-secret-1", "user");
    let status_b = || {
        ClusterStack::token(
            &c.b().url,
            "repository:any/thing:pull",
            "leaver",
            "leaver-secret-1",
        )
        .status()
        .as_u16()
    };
    wait_for_account(c.b(), "leaver", "leaver-secret-1");
    assert_eq!(status_b(), 200);
    let bearer = api_token(c.b(), "leaver", "leaver-secret-1");
    // A user may read their own grants.
    let own = "/users/leaver/grants";
    assert_eq!(bearer_status(c.b(), &bearer, Method::GET, own), 200);

    let (status, body) = c.a().admin_json(Method::POST, "/users/leaver/disable");
    assert_eq!(status, 200, "{body}");
    let disabled_at = Instant::now();
    // Bounded well past the promised second: a loaded machine must not fail the test; the
    // time it took is printed.
    let mut last = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        last = status_b();
        if last == 401 {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "disable on A → /token refused on B after {:?}",
        disabled_at.elapsed()
    );
    assert_eq!(last, 401, "B still issues tokens to a disabled account");
    wait_until(
        "B to refuse the bearer token",
        Duration::from_secs(5),
        || bearer_status(c.b(), &bearer, Method::GET, own) == 401,
    );
    // And B says the account is disabled.
    let (status, user) = c.b().admin_json(Method::GET, "/users/leaver");
    assert_eq!(status, 200);
    assert_eq!(user["disabled"], true);
}

/// User creates and grant changes on both replicas at once leave one chain that both report
/// intact; `export-audit` writes it as audit.log lines that `verify-audit` accepts (and a line
/// changed in the file is caught, so the check is real).
#[test]
fn concurrent_writes_on_both_replicas_leave_one_chain() {
    let Some(c) = ClusterStack::start() else {
        return;
    };
    let before = verify(c.a())["entries"].as_u64().unwrap();
    let per_replica = 12;
    thread::scope(|s| {
        for (i, replica) in c.replicas.iter().enumerate() {
            s.spawn(move || {
                for n in 0..per_replica {
                    let name = format!("w{i}-{n}");
                    create_user(replica, &name, "writer-secret-1", "user");
                    put_grants(
                        replica,
                        &name,
                        json!([{"repository": format!("w{i}/{n}/*"), "actions": ["pull"]}]),
                    );
                }
            });
        }
    });
    let (a, b) = (verify(c.a()), verify(c.b()));
    assert_eq!(a["ok"], true, "{a}");
    assert_eq!(a, b, "both replicas see one chain");
    let entries = a["entries"].as_u64().unwrap();
    assert!(
        entries >= before + 4 * per_replica as u64,
        "{entries} entries after {before}"
    );
    // Every write is in it, from either replica.
    let (status, page) = c
        .b()
        .admin_json(Method::GET, "/audit?action=user.create&limit=1000");
    assert_eq!(status, 200, "{page}");
    let created: BTreeSet<String> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user"].as_str().map(str::to_string))
        .collect();
    for i in 0..2 {
        for n in 0..per_replica {
            assert!(
                created.contains(&format!("w{i}-{n}")),
                "w{i}-{n} in {created:?}"
            );
        }
    }

    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("exported.log");
    let exported =
        ClusterStack::run_cli(&c.envs[0], &["export-audit", &file.display().to_string()]);
    assert!(
        exported.status.success(),
        "export-audit: {}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("the exported file");
    assert_eq!(text.lines().count() as u64, entries, "one line per entry");
    let files_env = |path: &std::path::Path| {
        AppEnv::new(out_dir.path(), "http://127.0.0.1:1")
            .set("AUDIT_LOG_PATH", &path.display().to_string())
    };
    let verified = ClusterStack::run_cli(&files_env(&file), &["verify-audit"]);
    assert_eq!(
        verified.status.code(),
        Some(0),
        "verify-audit: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let tampered = out_dir.path().join("tampered.log");
    std::fs::write(&tampered, text.replacen("w0-0", "w0-X", 1)).unwrap();
    let refused = ClusterStack::run_cli(&files_env(&tampered), &["verify-audit"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a changed line must not verify"
    );
}

/// A job started on B: A refuses a second (409 `gc_running`) and grants no push while it
/// freezes; the job reclaims the deleted image's blobs from S3; the kept image still pulls and
/// pushes work again afterwards.
#[test]
fn gc_from_b_freezes_a_and_shrinks_s3() {
    let Some(c) = ClusterStack::start() else {
        return;
    };
    c.push(&admin(), "gc/keep", "v1", 1).expect("push keep");
    c.push(&admin(), "gc/drop", "v1", 3).expect("push drop");
    let token = ClusterStack::token(
        &c.a().url,
        "repository:gc/drop:pull",
        "admin",
        ADMIN_PASSWORD,
    );
    let token = token.json::<Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = pull_direct(&c.registries[0].url, &token, "gc/drop", "v1").expect("drop pulls");
    let dropped: Vec<String> = named(&raw);
    c.delete(&admin(), &format!("gc/drop@{}", sha256(&raw)))
        .expect("delete the manifest");
    let blob_key = |d: &str| format!("/blobs/sha256/{}/{}/data", &d[7..9], &d[7..]);
    let keys_before = c.moto.keys();
    for d in &dropped {
        assert!(
            keys_before.iter().any(|k| k.ends_with(&blob_key(d))),
            "{d} in S3"
        );
    }

    let (_, id) = start_real_gc_seen_on(c.b(), c.a());
    // The delete's token is still out: the job freezes for its lifetime plus the leeway.
    wait_for_state(c.a(), &id, "freezing", Duration::from_secs(30));
    let (status, body) = json(
        c.a()
            .as_admin(Method::POST, "/gc")
            .json(&json!({}))
            .send()
            .unwrap(),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("gc_running")),
        "{body}"
    );
    let during = ClusterStack::granted(&c.a().url, "gc/keep", "admin", ADMIN_PASSWORD);
    assert_eq!(
        during,
        vec!["pull".to_string()],
        "A grants no push during B's freeze"
    );

    let done = wait_for_job(c.a(), &id, Duration::from_secs(300));
    assert_eq!(done["state"], "succeeded", "{done}");
    let keys_after = c.moto.keys();
    for d in &dropped {
        assert!(
            !keys_after.iter().any(|k| k.ends_with(&blob_key(d))),
            "{d} still in S3 after the job: {done}"
        );
    }
    assert!(
        keys_after.len() < keys_before.len(),
        "S3 objects: {} before, {} after",
        keys_before.len(),
        keys_after.len()
    );
    c.pull(&admin(), "gc/keep:v1")
        .expect("the kept image pulls");
    // The job's end and its thaw are two writes; A reads the freeze every 200 ms, so it may see
    // the finished job a moment before the thaw.
    let thawed = Instant::now();
    wait_until("A to grant push again", Duration::from_secs(5), || {
        ClusterStack::granted(&c.a().url, "gc/keep", "admin", ADMIN_PASSWORD)
            .contains(&"push".to_string())
    });
    eprintln!(
        "A granted push {:?} after it saw the job finished",
        thawed.elapsed()
    );
}

/// The replica running a job dies mid-freeze: the other marks the job failed ("interrupted")
/// and ends the freeze within 30 s (bounded at 90 s here; the time is printed).
#[test]
fn killing_the_gc_runner_thaws_the_cluster() {
    let Some(mut c) = ClusterStack::start() else {
        return;
    };
    // A write token out keeps the job freezing for two minutes.
    c.push(&admin(), "thaw/app", "v1", 1).expect("push");
    let (_, id) = start_real_gc_seen_on(c.b(), c.a());
    wait_for_state(c.a(), &id, "freezing", Duration::from_secs(30));
    assert_eq!(
        ClusterStack::granted(&c.a().url, "thaw/app", "admin", ADMIN_PASSWORD),
        vec!["pull".to_string()],
        "A grants no push during B's freeze"
    );
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
        job.to_string().contains("interrupted"),
        "the job says it was interrupted: {job}"
    );
    // The freeze's end, like any change, may take up to a second to reach every replica.
    let failed_at = Instant::now();
    let mut granted = Vec::new();
    while failed_at.elapsed() < Duration::from_secs(10) {
        granted = ClusterStack::granted(&c.a().url, "thaw/app", "admin", ADMIN_PASSWORD);
        if granted.contains(&"push".to_string()) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "A grants {granted:?} {:?} after it reported the job failed",
        failed_at.elapsed()
    );
    assert!(granted.contains(&"push".to_string()), "thawed: {granted:?}");
    // Another job may start now.
    let (status, body) = json(
        c.a()
            .as_admin(Method::POST, "/gc")
            .json(&json!({"dry_run": true}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 202, "{body}");
}

/// kill -9 of a replica while a loop pulls through nginx (a fresh token from nginx's `/token`
/// for every request): not one pull fails.
#[test]
fn killing_a_replica_fails_no_pull_through_nginx() {
    let Some(mut c) = ClusterStack::start() else {
        return;
    };
    c.push(&admin(), "loop/app", "v1", 2).expect("push");
    let lb = c.nginx.url.clone();
    let tokens = Arc::new(AtomicU64::new(0));
    let counted = tokens.clone();
    let pulls = PullLoop::start(
        &lb.clone(),
        "loop/app",
        "v1",
        Duration::from_millis(20),
        move |req| {
            let t = ClusterStack::token(&lb, "repository:loop/app:pull", "admin", ADMIN_PASSWORD);
            counted.fetch_add(1, Ordering::Relaxed);
            match t.json::<Value>() {
                Ok(body) => req.bearer_auth(body["token"].as_str().unwrap_or("")),
                Err(_) => req,
            }
        },
    );
    wait_until(
        "some pulls before the kill",
        Duration::from_secs(60),
        || tokens.load(Ordering::Relaxed) >= 20,
    );
    let dead = addr_of(&c.a().url).to_string();
    let log_at_kill = c.nginx.access_log().lines().count();
    c.kill_replica(0);
    let at_kill = tokens.load(Ordering::Relaxed);
    // The registries' event POSTs share the replicas' round robin with the loop's token
    // requests and may take every turn of the dead replica: ask for tokens here too, until
    // nginx's log shows one that met the dead replica and went on to the other
    // (`upstream=DEAD, LIVE`). nginx tries a failed server again every `fail_timeout`.
    let mut answers = Vec::new();
    let met_dead = || {
        c.nginx
            .access_log()
            .lines()
            .skip(log_at_kill)
            .any(|l| l.starts_with("GET /token ") && l.contains(&format!("upstream={dead}, ")))
    };
    wait_until(
        "a token request to meet the killed replica",
        Duration::from_secs(60),
        || {
            let status = ClusterStack::token(
                &c.nginx.url,
                "repository:loop/app:pull",
                "admin",
                ADMIN_PASSWORD,
            )
            .status()
            .as_u16();
            answers.push(status);
            thread::sleep(Duration::from_millis(50));
            status != 200 || met_dead()
        },
    );
    wait_until("pulls after the kill", Duration::from_secs(60), || {
        tokens.load(Ordering::Relaxed) >= at_kill + 40
    });
    let (n, failed) = pulls.stop();
    eprintln!(
        "{n} pulls, {failed} failed; replica A killed after {at_kill} token requests; \
         {} more token requests through nginx until one met it",
        answers.len()
    );
    assert!(
        answers.iter().all(|s| *s == 200),
        "token requests through nginx after the kill: {answers:?}\n{}",
        c.nginx.access_log()
    );
    assert_eq!(failed, 0, "{failed} of {n} pulls failed");
}

/// The database stopped: calls that need it answer 503 `database_unavailable` (never 500, no
/// hang), `/health/ready` says why, and both replicas recover without a restart.
#[test]
fn database_down_is_503_and_recovers_without_restart() {
    let Some(mut c) = ClusterStack::start() else {
        return;
    };
    if !c.pg.is_local() {
        eprintln!("SKIPPED: DATABASE_URL names a server this test must not stop");
        return;
    }
    assert_eq!(c.a().admin_json(Method::GET, "/users").0, 200);
    c.pg.stop();
    for replica in &c.replicas {
        let start = Instant::now();
        let mut last = (0, Value::Null);
        while start.elapsed() < Duration::from_secs(30) {
            let asked = Instant::now();
            last = replica.admin_json(Method::GET, "/users");
            eprintln!(
                "{}: GET /users {} after {:?}",
                replica.url,
                last.0,
                asked.elapsed()
            );
            if last.0 == 503 {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(last.0, 503, "{}", last.1);
        assert_eq!(last.1["error"], "database_unavailable", "{}", last.1);
        let (status, ready) = json(replica.get("/health/ready").send().unwrap());
        assert_eq!(status, 503, "{ready}");
        assert_ne!(ready["checks"]["database"], "ok", "{ready}");
    }
    c.pg.start_again();
    for replica in &c.replicas {
        let start = Instant::now();
        let mut last = (0, Value::Null);
        while start.elapsed() < Duration::from_secs(30) && last.0 != 200 {
            last = replica.admin_json(Method::GET, "/users");
            thread::sleep(Duration::from_millis(100));
        }
        if last.0 != 200 {
            // What the replicas' connections are doing, to tell a hang from a refusal.
            let activity = psql(
                &c.database_url,
                "select state, wait_event_type, wait_event, left(query, 80) from pg_stat_activity \
                 where datname = current_database() and pid <> pg_backend_pid()",
            );
            panic!(
                "{} has not recovered 30 s after the database returned: {}\n\
                 its connections: {activity:?}\n{}",
                replica.url,
                last.1,
                replica.stderr()
            );
        }
        eprintln!("{} recovered after {:?}", replica.url, start.elapsed());
        let (status, ready) = json(replica.get("/health/ready").send().unwrap());
        assert_eq!(ready["checks"]["database"], "ok", "{status} {ready}");
    }
}

/// A files-mode installation moves into an empty database: its users log in on a replica
/// with their passwords and grants, and the imported chain verifies. A second import into
/// the now non-empty database is refused and changes nothing.
#[test]
fn import_files_moves_a_files_mode_installation_in() {
    let Some(pg) = Postgres::start() else { return };
    let mut files = TokenStack::start();
    let (status, _) = json(files.app.create_user("carol", "carol-secret-1", "user"));
    assert_eq!(status, 201);
    put_grants(
        &files.app,
        "carol",
        json!([{"repository": "carol/**", "actions": ["pull", "push"]}]),
    );
    let file_entries = verify(&files.app)["entries"].as_u64().unwrap();
    files.app.kill();

    let database_url = pg.database("imported");
    let files_env = AppEnv::new(files.dir.path(), "http://127.0.0.1:1")
        .set("AUTH_MODE", "token")
        .set(
            "REGISTRY_TOKEN_KEY",
            &files.path("auth/token.key").display().to_string(),
        )
        .set("DATABASE_URL", &database_url)
        .set("TOKEN_SECRET", common::cluster::TOKEN_SECRET);
    let out = ClusterStack::run_cli(&files_env, &["import-files"]);
    assert!(
        out.status.success(),
        "import-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let env = replica_env(
        files.dir.path(),
        "a",
        &database_url,
        &files.registry.url,
        &files.dir.path().join("registry-config.yml"),
    );
    let replica = env.start();
    api_token(&replica, "carol", "carol-secret-1");
    let granted = ClusterStack::granted(&replica.url, "carol/app", "carol", "carol-secret-1");
    assert_eq!(granted, vec!["pull".to_string(), "push".to_string()]);
    let checked = verify(&replica);
    assert_eq!(checked["ok"], true, "{checked}");
    assert!(
        checked["entries"].as_u64().unwrap() >= file_entries,
        "{checked} after {file_entries} in files"
    );

    let again = ClusterStack::run_cli(&files_env, &["import-files"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a non-empty database is refused"
    );
    let now = verify(&replica);
    assert_eq!(now, checked, "the refused import changed nothing");
    api_token(&replica, "carol", "carol-secret-1");
}

/// Cluster mode needs token mode and a shared API token secret: without either the service
/// refuses to start (exit 2) naming the setting; a pool size outside 1–100 likewise.
#[test]
fn database_url_requires_token_mode_and_a_token_secret() {
    let dir = tempfile::tempdir().unwrap();
    let base = AppEnv::new(dir.path(), "http://127.0.0.1:1")
        .set("DATABASE_URL", "postgres://postgres@127.0.0.1:1/never")
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.path().join("token.key").display().to_string(),
        );
    let cases = [
        (
            base.clone()
                .set("TOKEN_SECRET", common::cluster::TOKEN_SECRET),
            "AUTH_MODE",
        ),
        (base.clone().set("AUTH_MODE", "token"), "TOKEN_SECRET"),
        (
            base.clone()
                .set("AUTH_MODE", "token")
                .set("TOKEN_SECRET", common::cluster::TOKEN_SECRET)
                .set("DATABASE_POOL_SIZE", "0"),
            "DATABASE_POOL_SIZE",
        ),
    ];
    for (env, setting) in cases {
        let (code, stderr) = env.run_to_exit();
        assert_eq!(code, Some(2), "without {setting}: {stderr}");
        assert!(stderr.contains(setting), "{setting} named: {stderr}");
        assert!(
            !stderr.contains(common::cluster::TOKEN_SECRET),
            "no secret in the message"
        );
    }
}

/// Every replica must sign with the cluster's key: a replica started with another key is
/// refused with exit code 2 naming REGISTRY_TOKEN_KEY, and the first key stays the cluster's.
/// A retention plan made through one replica is read and applied through the other.
#[test]
fn a_replica_with_another_key_is_refused_and_plans_are_shared() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let url = pg.database("keys");
    let dir = tempfile::tempdir().unwrap();
    let env = |name: &str, key: &str| {
        let own = dir.path().join(name);
        std::fs::create_dir_all(&own).unwrap();
        AppEnv::new(&own, "http://127.0.0.1:9")
            .set("AUTH_MODE", "token")
            .set("DATABASE_URL", &url)
            .set("TOKEN_SECRET", common::cluster::TOKEN_SECRET)
            .set("REPLICA_ID", name)
            .set(
                "REGISTRY_TOKEN_KEY",
                &dir.path().join(key).display().to_string(),
            )
    };
    let a = env("a", "one.key").start();
    let (code, stderr) = env("b", "other.key").run_to_exit();
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("REGISTRY_TOKEN_KEY"), "{stderr}");
    let b = env("b", "one.key").start();

    // A plan lives in the database: made on A, shown and applied on B (no policy: empty plan).
    let (status, plan) = a.admin_json(Method::POST, "/retention/plans");
    assert_eq!(status, 201, "{plan}");
    let id = plan["id"].as_str().expect("plan id").to_string();
    let (status, seen) = b.admin_json(Method::GET, &format!("/retention/plans/{id}"));
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["id"], plan["id"]);
    assert_eq!(seen["created_at"], plan["created_at"]);
    let (status, unknown) = b.admin_json(Method::GET, "/retention/plans/0123456789abcdef01234567");
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("not_found"))
    );
}
