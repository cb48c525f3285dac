//! Cluster mode's audit chain with real processes: PostgreSQL (tests/common/postgres.rs), one
//! or two registry-admin replicas on one database, and the host-side commands `verify-audit`,
//! `export-audit` and `import-files`. No registry is needed: the calls used here never reach
//! it (REGISTRY_URL points at a closed port). Without PostgreSQL a test prints a SKIPPED banner
//! and returns, except under `CI=true`, where it fails.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::thread;

use common::auth::api_token;
use common::cluster::{ClusterStack, TOKEN_SECRET, create_user, replica_env, verify};
use common::postgres::{Postgres, psql};
use common::{App, AppEnv, json, output_text as text};
use reqwest::Method;
use serde_json::{Value, json};

const NO_REGISTRY: &str = "http://127.0.0.1:1";
/// The password of every account these tests create.
const PW: &str = "audit-secret-1";

/// A replica named `name` on `database_url`, its own files under `dir`.
fn replica(dir: &Path, name: &str, database_url: &str) -> (App, AppEnv) {
    let env = replica_env(
        dir,
        name,
        database_url,
        NO_REGISTRY,
        &dir.join("registry-config.yml"),
    );
    (env.start(), env)
}

/// A files-mode service in token mode (no database), everything under `dir`.
fn files_env(dir: &Path) -> AppEnv {
    std::fs::create_dir_all(dir.join("auth")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    AppEnv::new(dir, NO_REGISTRY).set("AUTH_MODE", "token").set(
        "REGISTRY_TOKEN_KEY",
        &dir.join("auth/token.key").display().to_string(),
    )
}

fn page(app: &App, query: &str) -> Value {
    let sent = app
        .as_admin(Method::GET, &format!("/audit{query}"))
        .send()
        .unwrap_or_else(|e| panic!("/audit{query}: {e}; the replica said:\n{}", app.stderr()));
    let (status, body) = json(sent);
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn entries(page: &Value) -> Vec<Value> {
    page["entries"].as_array().expect("entries").clone()
}

fn cli(env: &AppEnv, args: &[&str]) -> Output {
    ClusterStack::run_cli(env, args)
}

/// `verify-audit` in files mode on the file at `path`.
fn verify_file(dir: &Path, path: &Path) -> Output {
    cli(
        &AppEnv::new(dir, NO_REGISTRY).set("AUDIT_LOG_PATH", &path.display().to_string()),
        &["verify-audit"],
    )
}

fn lines_of(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn the_audit_table_refuses_update_delete_and_truncate_even_to_its_owner() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("trigger");
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = replica(dir.path(), "a", &url);
    create_user(&a, "tina", PW, "user");
    let before = psql(
        &url,
        "SELECT string_agg(line, E'\\n' ORDER BY seq) FROM audit_log",
    )
    .unwrap();
    assert!(before.contains("\"user\":\"tina\""), "{before}");

    // DATABASE_URL's role here is the superuser that owns the table: the trigger still holds.
    for sql in [
        "UPDATE audit_log SET line = replace(line, 'tina', 'anit')",
        "DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)",
        "TRUNCATE audit_log",
    ] {
        let refused = psql(&url, sql).expect_err(sql);
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }
    let after = psql(
        &url,
        "SELECT string_agg(line, E'\\n' ORDER BY seq) FROM audit_log",
    )
    .unwrap();
    assert_eq!(after, before);
    assert_eq!(verify(&a)["ok"], true);
}

#[test]
fn two_replicas_writing_at_once_keep_one_chain_that_both_page_alike() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("two_writers");
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = replica(dir.path(), "a", &url);
    let (b, _) = replica(dir.path(), "b", &url);
    let per_replica = 15;
    thread::scope(|s| {
        for (i, app) in [&a, &b].into_iter().enumerate() {
            s.spawn(move || {
                for n in 0..per_replica {
                    create_user(app, &format!("r{i}-{n}"), PW, "user");
                }
            });
        }
    });

    let (on_a, on_b) = (verify(&a), verify(&b));
    assert_eq!(on_a["ok"], true, "{on_a}");
    assert_eq!(on_a["first_bad_line"], Value::Null);
    assert_eq!(on_a, on_b, "one chain, seen alike from both replicas");
    let (all_a, all_b) = (page(&a, "?limit=1000"), page(&b, "?limit=1000"));
    assert_eq!(all_a, all_b);
    assert_eq!(all_a["next_cursor"], Value::Null);
    let all = entries(&all_a);
    assert_eq!(all.len() as u64, on_a["entries"].as_u64().unwrap());
    // Newest first, each entry chained to the one before it, whichever replica wrote it.
    for pair in all.windows(2) {
        assert_eq!(pair[0]["prev"], pair[1]["hash"], "{pair:?}");
    }

    // Paging with next_cursor, across replicas: the pages put together are the whole answer.
    let whole: Vec<Value> = entries(&page(&a, "?action=user.create&limit=1000"));
    assert_eq!(whole.len(), 2 * per_replica);
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for turn in 0..20 {
        let query = match &cursor {
            None => "?action=user.create&limit=7".to_string(),
            Some(c) => format!("?action=user.create&limit=7&cursor={c}"),
        };
        // Every other page from the other replica: a cursor is the cluster's, not a replica's.
        let p = page(if turn % 2 == 0 { &a } else { &b }, &query);
        let got = entries(&p);
        assert!(got.len() <= 7);
        paged.extend(got);
        match p["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, whole);
    let users: BTreeSet<&str> = paged.iter().filter_map(|e| e["user"].as_str()).collect();
    assert_eq!(users.len(), 2 * per_replica);

    // A cursor stays tied to its filters, and a forged one is refused.
    let first = page(&a, "?action=user.create&limit=7");
    let c = first["next_cursor"].as_str().expect("a cursor");
    let (status, body) = a.admin_json(Method::GET, &format!("/audit?limit=7&cursor={c}"));
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A cursor made up to stand far past the end of the table (with the right filters'
    // fingerprint) is refused at once, not walked down from there.
    let decoded = data_encoding::BASE64URL_NOPAD
        .decode(c.as_bytes())
        .expect("a cursor is base64url");
    let text = String::from_utf8(decoded).expect("utf-8");
    let mut parts: Vec<&str> = text.splitn(3, '.').collect();
    parts[1] = "9223372036854775807";
    let forged = data_encoding::BASE64URL_NOPAD.encode(parts.join(".").as_bytes());
    let (status, body) = a.admin_json(
        Method::GET,
        &format!("/audit?action=user.create&limit=7&cursor={forged}"),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = a.admin_json(Method::GET, "/audit?cursor=not-a-cursor");
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

#[test]
fn export_audit_writes_the_chain_as_lines_that_verify_and_never_overwrites() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("export");
    let dir = tempfile::tempdir().unwrap();
    let (a, env) = replica(dir.path(), "a", &url);
    for n in 0..5 {
        create_user(&a, &format!("x{n}"), PW, "user");
    }
    let shown = entries(&page(&a, "?limit=1000"));

    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("chain.log");
    let out = cli(&env, &["export-audit", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut lines = lines_of(&file);
    lines.reverse();
    assert_eq!(
        lines, shown,
        "the file holds what /audit shows, oldest first"
    );
    let checked = verify_file(out_dir.path(), &file);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    assert!(
        text(&checked).contains(&format!("intact ({} entries", shown.len())),
        "{}",
        text(&checked)
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions())
            & 0o777,
        0o600
    );
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["chain.log".to_string()]);

    // The export is audited, on the same chain.
    let newest = &entries(&page(&a, "?limit=1"))[0];
    assert_eq!(
        (&newest["action"], &newest["source"]),
        (&json!("audit.export"), &json!("cli")),
        "{newest}"
    );
    assert_eq!(verify(&a)["ok"], true);

    // An existing file is refused and left as it was.
    let before = std::fs::read(&file).unwrap();
    let again = cli(&env, &["export-audit", &file.display().to_string()]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("never overwrites"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn export_audit_in_files_mode_joins_the_rotated_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Rotated every few entries.
    let env = files_env(dir.path()).set("AUDIT_MAX_BYTES", "4096");
    let app = env.start();
    for n in 0..30 {
        create_user(&app, &format!("f{n}"), PW, "user");
    }
    let shown = entries(&page(&app, "?limit=1000"));
    let logs = dir.path().join("logs");
    assert!(logs.join("audit.log.2").exists(), "rotated at least twice");

    let file = dir.path().join("exported.log");
    let out = cli(&env, &["export-audit", &file.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut lines = lines_of(&file);
    lines.reverse();
    assert_eq!(lines, shown);
    let checked = verify_file(dir.path(), &file);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    let newest = &entries(&page(&app, "?limit=1"))[0];
    assert_eq!(newest["action"], "audit.export", "{newest}");
}

/// A files-mode installation: `carol` with a grant, made through the service itself.
fn files_installation(dir: &Path) -> AppEnv {
    let env = files_env(dir);
    let mut app = env.start();
    create_user(&app, "carol", PW, "user");
    let (status, body) = json(
        app.as_admin(Method::PUT, "/users/carol/grants")
            .json(&json!({"grants": [{"repository": "carol/**", "actions": ["pull", "push"]}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    create_user(&app, "dave", PW, "user");
    app.kill();
    env
}

fn count(url: &str, table: &str) -> String {
    psql(url, &format!("SELECT count(*) FROM {table}")).unwrap()
}

#[test]
fn import_files_fills_an_empty_database_and_refuses_a_second_time() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("import");
    let dir = tempfile::tempdir().unwrap();
    let install = dir.path().join("files");
    let files = files_installation(&install);
    let log = install.join("logs/audit.log");
    let file_lines = lines_of(&log);
    let importing = files
        .clone()
        .set("DATABASE_URL", &url)
        .set("TOKEN_SECRET", TOKEN_SECRET);

    // A broken chain is refused before anything is written.
    let broken_dir = dir.path().join("broken");
    std::fs::create_dir_all(&broken_dir).unwrap();
    let broken = broken_dir.join("audit.log");
    let original = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&broken, original.replacen("carol", "carla", 1)).unwrap();
    let refused = cli(
        &importing
            .clone()
            .set("AUDIT_LOG_PATH", &broken.display().to_string()),
        &["import-files"],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("broken"), "{}", text(&refused));

    let out = cli(&importing, &["import-files"]);
    assert!(out.status.success(), "{}", text(&out));
    let said: Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(said["audit_entries"], file_lines.len());
    assert_eq!(said["chain_ok"], true);
    assert!(
        said["documents"]
            .as_array()
            .unwrap()
            .contains(&json!("grants.json")),
        "{said}"
    );

    let (mut a, _) = replica(dir.path(), "a", &url);
    api_token(&a, "carol", "audit-secret-1");
    let checked = verify(&a);
    assert_eq!(checked["ok"], true, "{checked}");
    // The files' entries, the same bytes and hashes, then the import's own entry.
    let all = entries(&page(&a, "?limit=1000"));
    let mut oldest_first = all.clone();
    oldest_first.reverse();
    assert_eq!(oldest_first[..file_lines.len()], file_lines[..]);
    let import_entry = &oldest_first[file_lines.len()];
    assert_eq!(
        (&import_entry["action"], &import_entry["source"]),
        (&json!("cluster.import"), &json!("cli"))
    );
    let (status, grants) = a.admin_json(Method::GET, "/users/carol/grants");
    assert_eq!(status, 200, "{grants}");
    assert_eq!(grants["grants"][0]["repository"], "carol/**", "{grants}");

    // A second import: refused, exit 1, nothing changed.
    let rows = (count(&url, "documents"), count(&url, "audit_log"));
    let again = cli(&importing, &["import-files"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));
    assert_eq!((count(&url, "documents"), count(&url, "audit_log")), rows);
    assert_eq!(verify(&a), checked);

    // New entries continue the imported chain.
    create_user(&a, "erin", PW, "user");
    let now = verify(&a);
    assert_eq!(now["ok"], true, "{now}");
    assert_eq!(
        now["entries"].as_u64().unwrap(),
        checked["entries"].as_u64().unwrap() + 1
    );
    a.kill();
}

#[test]
fn import_files_needs_a_database_and_an_installation() {
    let dir = tempfile::tempdir().unwrap();
    let env = files_env(dir.path());
    let out = cli(&env, &["import-files"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("DATABASE_URL"), "{}", text(&out));

    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("nothing");
    let out = cli(
        &env.set("DATABASE_URL", &url)
            .set("TOKEN_SECRET", TOKEN_SECRET),
        &["import-files"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    // Refused before the database was even touched.
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'audit_log'"
        )
        .unwrap(),
        "0"
    );
}

#[test]
fn a_cluster_backup_is_one_snapshot_that_restores_into_files_and_imports_again() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("backup");
    let dir = tempfile::tempdir().unwrap();
    let (a, env) = replica(dir.path(), "a", &url);
    create_user(&a, "gina", PW, "user");
    let (status, body) = json(
        a.as_admin(Method::PUT, "/users/gina/grants")
            .json(&json!({"grants": [{"repository": "gina/**", "actions": ["pull"]}]}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    let shown = entries(&page(&a, "?limit=1000"));

    let bk = dir.path().join("bk");
    let out = cli(&env, &["backup", &bk.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let mut names: Vec<String> = std::fs::read_dir(&bk)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audit.log",
            "backup.json",
            "grants.json",
            "htpasswd",
            "token.crt",
            "token.key",
            "users.json"
        ]
    );
    let mut lines = lines_of(&bk.join("audit.log"));
    lines.reverse();
    assert_eq!(lines, shown, "the chain as it stood");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bk.join("backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["audit_entries"], shown.len());

    // Restore writes files: refused in cluster mode, nothing changed.
    let refused = cli(&env, &["restore", &bk.display().to_string()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("import-files"),
        "{}",
        text(&refused)
    );

    // Into files mode, then into a new database.
    let home = dir.path().join("home");
    let files = files_env(&home);
    let restored = cli(&files, &["restore", &bk.display().to_string()]);
    assert!(restored.status.success(), "{}", text(&restored));
    let url2 = pg.database("restored");
    let imported = cli(
        &files
            .clone()
            .set("DATABASE_URL", &url2)
            .set("TOKEN_SECRET", TOKEN_SECRET),
        &["import-files"],
    );
    assert!(imported.status.success(), "{}", text(&imported));
    let (b, _) = replica(&home, "b", &url2);
    api_token(&b, "gina", "audit-secret-1");
    let checked = verify(&b);
    assert_eq!(checked["ok"], true, "{checked}");
    // The same chain, continued by the restore's and the import's entries, then gina's login.
    let again = entries(&page(&b, "?limit=1000"));
    assert_eq!(again[again.len() - shown.len()..], shown[..]);
    let newest: Vec<&str> = again[..again.len() - shown.len()]
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(newest, ["auth.token", "cluster.import", "backup.restore"]);
}

/// `reset-password USER` with `password` as the first line of stdin, in `env`.
fn reset_password(env: &AppEnv, user: &str, password: &str) -> Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry-admin"));
    cmd.env_clear()
        .args(["reset-password", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run registry-admin");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().expect("reset-password")
}

#[test]
fn reset_password_in_cluster_mode_changes_the_database_and_audits_in_its_chain() {
    let Some(pg) = Postgres::start() else { return };
    let url = pg.database("reset");
    let dir = tempfile::tempdir().unwrap();
    let (a, env) = replica(dir.path(), "a", &url);
    create_user(&a, "hank", PW, "user");
    let out = reset_password(&env, "hank", "hank-new-secret-2");
    assert!(out.status.success(), "{}", text(&out));
    api_token(&a, "hank", "hank-new-secret-2");
    let (status, _) = json(
        a.request(Method::POST, "/auth/token")
            .basic_auth("hank", Some("audit-secret-1"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401, "the old password no longer works");
    let changed: Vec<Value> = entries(&page(&a, "?action=user.password"));
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        (&changed[0]["user"], &changed[0]["source"]),
        (&json!("hank"), &json!("cli"))
    );
    assert_eq!(verify(&a)["ok"], true);
    // Nothing went to the files AUDIT_LOG_PATH names.
    let log = env
        .vars
        .iter()
        .find(|(k, _)| k == "AUDIT_LOG_PATH")
        .map(|(_, v)| std::path::PathBuf::from(v))
        .unwrap();
    assert!(!log.exists(), "{}", log.display());
}
