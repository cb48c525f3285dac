//! The operator's command line, run as the real binary: help and usage, `reset-password` while
//! the service and a real registry:2 run, `verify-audit`, and `backup`/`restore`.

use crate::common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::token_stack::{SERVICE, TokenStack};
use common::volume::SmallVolume;
use common::{AppEnv, OptionalJson, Stack, file_mode as mode, json, json_or_no_content};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

const LIMIT: Duration = Duration::from_secs(60);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with exactly `env`, in `cwd`, feeding `stdin` and then closing it; killed
/// if it has not finished within a minute.
fn run_in(cwd: &Path, env: &[(String, String)], args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry-admin"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start registry-admin");
    let mut input = child.stdin.take().expect("stdin");
    let feed = stdin.to_vec();
    let writer = thread::spawn(move || {
        // The command may exit without reading (e.g. --help): a broken pipe is fine.
        let _ = input.write_all(&feed);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("registry-admin {args:?} did not finish within {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout"),
        stderr: err.join().expect("stderr"),
    }
}

/// The settings the host-side commands read, for files under `dir` (as the harness lays out).
fn env_for(dir: &Path) -> Vec<(String, String)> {
    AppEnv::new(dir, "http://127.0.0.1:1")
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.join("auth/token.key").display().to_string(),
        )
        .vars
}

fn cli(dir: &Path, args: &[&str], stdin: &str) -> Run {
    run_in(dir, &env_for(dir), args, stdin.as_bytes())
}

fn ok(run: &Run) {
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

fn api_token_status(stack: &Stack, user: &str, password: &str) -> u16 {
    stack
        .app
        .request(Method::POST, "/auth/token")
        .basic_auth(user, Some(password))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn audit_entries(stack: &Stack, query: &str) -> Vec<Value> {
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::GET, &format!("/audit?{query}"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

fn chain_ok(stack: &Stack) -> Value {
    let (status, body) = json(
        stack
            .app
            .as_admin(Method::GET, "/audit/verify")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn audit_lines(path: &Path) -> Vec<Value> {
    String::from_utf8(read(path))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn help_and_version_print_and_exit_zero_touching_nothing() {
    // A port we hold: a binary that tried to serve would fail to bind it and exit non-zero.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = held.local_addr().unwrap().to_string();
    // A bad setting too: help and version must not even read the settings.
    let env = vec![
        ("BIND_ADDR".to_string(), bind),
        ("BCRYPT_COST".to_string(), "nope".to_string()),
    ];
    for (args, expect) in [
        (vec!["--help"], "Usage: registry-admin"),
        (vec!["-h"], "Usage: registry-admin"),
        (vec!["--version"], "registry-admin 0.1.0"),
        (vec!["-V"], "registry-admin 0.1.0"),
        (
            vec!["help", "reset-password"],
            "reset-password [OPTIONS] <USER>",
        ),
        (
            vec!["reset-password", "--help"],
            "reset-password [OPTIONS] <USER>",
        ),
    ] {
        let cwd = tempfile::tempdir().unwrap();
        let run = run_in(cwd.path(), &env, &args, b"");
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        assert!(run.stdout.contains(expect), "{args:?}: {}", run.stdout);
        assert!(
            !run.stderr.contains("password:"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            names_in(cwd.path()),
            Vec::<String>::new(),
            "{args:?} created files"
        );
    }
    let help = run_in(Path::new("/"), &env, &["--help"], b"").stdout;
    for command in [
        "serve",
        "reset-password",
        "verify-audit",
        "backup",
        "restore",
    ] {
        assert!(
            help.contains(command),
            "{command} missing from --help:\n{help}"
        );
    }
}

#[test]
fn an_unknown_argument_or_command_prints_usage_and_exits_2() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let env = vec![(
        "BIND_ADDR".to_string(),
        held.local_addr().unwrap().to_string(),
    )];
    for args in [
        vec!["--frobnicate"],
        vec!["frobnicate"],
        vec!["reset-password"],
        vec!["serve", "extra"],
        vec!["backup"],
    ] {
        let cwd = tempfile::tempdir().unwrap();
        let run = run_in(cwd.path(), &env, &args, b"");
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("Usage: registry-admin"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            names_in(cwd.path()),
            Vec::<String>::new(),
            "{args:?} created files"
        );
    }
}

#[test]
fn serve_runs_the_service_start_up_as_no_command_does() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = held.local_addr().unwrap().to_string();
    for args in [vec![], vec!["serve"]] {
        let dir = tempfile::tempdir().unwrap();
        let env = AppEnv::new(dir.path(), "http://127.0.0.1:1")
            .set("BIND_ADDR", &bind)
            .vars;
        // It gets as far as binding, which the held port refuses.
        let run = run_in(dir.path(), &env, &args, b"");
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("BIND_ADDR"), "{args:?}: {}", run.stderr);
        assert!(dir.path().join("auth/htpasswd").exists(), "{args:?}");
        let env = AppEnv::new(dir.path(), "http://127.0.0.1:1")
            .set("TOKEN_TTL", "0")
            .vars;
        let run = run_in(dir.path(), &env, &args, b"");
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("TOKEN_TTL"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_bad_setting_stops_only_the_commands_that_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = AppEnv::new(dir.path(), "http://127.0.0.1:1")
        .set("BCRYPT_COST", "3")
        .vars;
    let run = run_in(
        dir.path(),
        &env,
        &["reset-password", "alice"],
        b"alice-pass-1\n",
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("BCRYPT_COST"), "{}", run.stderr);
    assert!(!dir.path().join("auth/htpasswd").exists());
    // verify-audit reads only AUDIT_LOG_PATH.
    let run = run_in(dir.path(), &env, &["verify-audit"], b"");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
}

#[test]
fn reset_password_from_stdin_takes_effect_at_once_while_the_service_runs() {
    let stack = Stack::start();
    assert_eq!(
        stack
            .app
            .create_user("alice", "old-password-1", "user")
            .status(),
        201
    );
    assert_eq!(stack.registry.status_for("alice", "old-password-1"), 200);
    assert_eq!(api_token_status(&stack, "alice", "old-password-1"), 200);

    // A CRLF line ending, as a Windows-made file would give: not part of the password.
    let run = cli(
        stack.dir.path(),
        &["reset-password", "alice"],
        "new-password-1\r\n",
    );
    ok(&run);
    assert_eq!(run.stdout, "", "a password given on stdin is not echoed");
    assert!(run.stderr.contains("alice"), "{}", run.stderr);

    assert_eq!(stack.registry.status_for("alice", "new-password-1"), 200);
    assert_eq!(stack.registry.status_for("alice", "old-password-1"), 401);
    assert_eq!(api_token_status(&stack, "alice", "new-password-1"), 200);
    assert_eq!(api_token_status(&stack, "alice", "old-password-1"), 401);

    let entries = audit_entries(&stack, "action=user.password&user=alice");
    let cli_entry = entries
        .iter()
        .find(|e| e["source"] == "cli")
        .unwrap_or_else(|| panic!("no source cli entry in {entries:?}"));
    assert_eq!(cli_entry["user"], "alice");
    assert_eq!(cli_entry["outcome"], "success");
    assert!(!cli_entry["actor"].as_str().unwrap().is_empty());
    let text = String::from_utf8(read(stack.audit_path())).unwrap();
    assert!(
        !text.contains("new-password-1") && !text.contains("$2"),
        "secret in the audit log"
    );

    // The service's next entries must chain from the CLI's, not from what it last wrote.
    assert_eq!(
        stack
            .app
            .create_user("bob", "bob-password-1", "user")
            .status(),
        201
    );
    assert_eq!(api_token_status(&stack, "alice", "wrong-password"), 401);
    let report = chain_ok(&stack);
    assert_eq!(report["ok"], true, "{report}");
    let lines = audit_lines(&stack.audit_path());
    let at = lines
        .iter()
        .position(|e| e["source"] == "cli")
        .expect("cli line");
    assert!(at + 1 < lines.len(), "no service entry after the cli's");
    assert_eq!(lines[at + 1]["prev"], lines[at]["hash"]);
    ok(&cli(stack.dir.path(), &["verify-audit"], ""));
}

#[test]
fn reset_password_with_admin_promotes_and_enables_the_account() {
    let stack = Stack::start();
    let app = &stack.app;
    assert_eq!(
        app.create_user("bob", "bob-password-1", "user").status(),
        201
    );
    assert_eq!(
        app.as_admin(Method::POST, "/users/bob/disable")
            .send()
            .unwrap()
            .status(),
        200
    );
    let run = cli(
        stack.dir.path(),
        &["reset-password", "bob", "--admin"],
        "bob-password-2\n",
    );
    ok(&run);
    assert!(
        run.stderr.contains("enabled") && run.stderr.contains("admin"),
        "{}",
        run.stderr
    );

    assert_eq!(stack.registry.status_for("bob", "bob-password-2"), 200);
    let (status, body) = json(
        app.request(Method::GET, "/users/bob")
            .basic_auth("bob", Some("bob-password-2"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["role"], &body["disabled"]),
        (&"admin".into(), &false.into())
    );
    // Only an admin may list accounts: bob is one now.
    let status = app
        .request(Method::GET, "/users")
        .basic_auth("bob", Some("bob-password-2"))
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let cli_actions: Vec<String> = audit_entries(&stack, "user=bob")
        .iter()
        .filter(|e| e["source"] == "cli")
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cli_actions,
        ["user.role", "user.enable", "user.password"],
        "newest first"
    );
    assert_eq!(chain_ok(&stack)["ok"], true);

    // The service account is not a person's to reset.
    let before = read(stack.htpasswd_path());
    let run = cli(
        stack.dir.path(),
        &["reset-password", "registry-admin"],
        "svc-password-1\n",
    );
    assert_ne!(run.code, Some(0));
    assert!(run.stderr.contains("registry-admin"), "{}", run.stderr);
    assert_eq!(read(stack.htpasswd_path()), before);
}

#[test]
fn reset_password_creates_a_missing_account() {
    let dir = tempfile::tempdir().unwrap();
    let run = cli(
        dir.path(),
        &["reset-password", "rescue", "--admin"],
        "rescue-pass-1\n",
    );
    ok(&run);
    assert!(run.stderr.contains("created"), "{}", run.stderr);
    let users: Value = serde_json::from_slice(&read(dir.path().join("auth/users.json"))).unwrap();
    assert_eq!(users["users"]["rescue"]["role"], "admin");
    let htpasswd = String::from_utf8(read(dir.path().join("auth/htpasswd"))).unwrap();
    let hash = htpasswd.strip_prefix("rescue:").unwrap().trim_end();
    assert!(bcrypt::verify("rescue-pass-1", hash).unwrap());
    let entry = &audit_lines(&dir.path().join("logs/audit.log"))[0];
    assert_eq!(
        (&entry["action"], &entry["source"], &entry["user"]),
        (&"user.create".into(), &"cli".into(), &"rescue".into())
    );
}

#[test]
fn a_password_breaking_the_rules_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before anything exists: nothing is created.
    let run = cli(dir.path(), &["reset-password", "alice"], "short\n");
    assert_ne!(run.code, Some(0));
    assert_eq!(names_in(dir.path()), Vec::<String>::new());

    ok(&cli(
        dir.path(),
        &["reset-password", "alice"],
        "alice-pass-1\n",
    ));
    let files = ["auth/htpasswd", "auth/users.json", "logs/audit.log"].map(|f| dir.path().join(f));
    let before = files.clone().map(read);
    let too_long = format!("{}\n", "p".repeat(73));
    for (stdin, says) in [
        ("short\n", "at least 8"),
        (too_long.as_str(), "72"),
        ("", "stdin is empty"),
        ("\n", "at least 8"),
        ("tab\tand\rcr-pass\n", "line breaks"),
    ] {
        let run = cli(dir.path(), &["reset-password", "alice"], stdin);
        assert_eq!(run.code, Some(1), "{stdin:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{stdin:?}: {}", run.stderr);
        assert_eq!(files.clone().map(read), before, "{stdin:?} changed a file");
    }
}

#[test]
fn reset_password_refuses_robot_names_as_post_users_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-1\n"));
    let files = ["auth/htpasswd", "auth/users.json", "logs/audit.log"].map(|f| d.join(f));
    let before = files.clone().map(read);
    // A robot is no account with a password: a line for it in htpasswd would be a password
    // registry:2 accepts in htpasswd mode, outside the robot's grants and expiry.
    let run = cli(d, &["reset-password", "robot.alice.ci"], "robot-pass-1\n");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("reserved for robot accounts"),
        "{}",
        run.stderr
    );
    assert_eq!(files.clone().map(read), before, "a file changed");
}

/// `env_for(dir)` with `AUDIT_LOG_PATH` set to `audit`.
fn env_with_audit_at(dir: &Path, audit: &Path) -> Vec<(String, String)> {
    let mut env = env_for(dir);
    env.retain(|(k, _)| k != "AUDIT_LOG_PATH");
    env.push(("AUDIT_LOG_PATH".into(), audit.display().to_string()));
    env
}

#[test]
fn reset_password_changes_nothing_when_its_audit_entry_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-1\n"));
    let files = ["auth/htpasswd", "auth/users.json"].map(|f| d.join(f));
    let before = files.clone().map(read);
    // The log's directory is a regular file: no entry can be written there, whoever runs
    // the command (a permission would not stop root, as CI runs).
    std::fs::write(d.join("not-a-dir"), b"").unwrap();
    let env = env_with_audit_at(d, &d.join("not-a-dir/audit.log"));
    for (args, stdin) in [
        (&["reset-password", "alice"][..], "alice-pass-2\n"),
        (
            &["reset-password", "alice", "--admin"][..],
            "alice-pass-2\n",
        ),
        (&["reset-password", "newcomer"][..], "newcomer-pass-1\n"),
    ] {
        let run = run_in(d, &env, args, stdin.as_bytes());
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing was changed")
                && run.stderr.contains("audit log cannot take"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("pass-"), "{}", run.stderr);
        assert_eq!(files.clone().map(read), before, "{args:?} changed a file");
    }
    let htpasswd = String::from_utf8(read(d.join("auth/htpasswd"))).unwrap();
    let hash = htpasswd.strip_prefix("alice:").unwrap().trim_end();
    assert!(bcrypt::verify("alice-pass-1", hash).unwrap());

    // With a log it can write to, the same command goes through.
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-2\n"));
    assert_eq!(
        audit_lines(&d.join("logs/audit.log")).last().unwrap()["action"],
        "user.password"
    );
}

#[test]
fn a_terminal_on_stdin_gets_a_generated_password_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_registry-admin");
    // script(1) gives the command a terminal for stdin, as an operator at a shell has.
    let mut env = env_for(dir.path());
    env.push(("PATH".into(), "/usr/bin:/bin".into()));
    let out = Command::new("/usr/bin/script")
        .args(["-qec", &format!("{bin} reset-password ops"), "/dev/null"])
        .current_dir(dir.path())
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("shown once"))
        .unwrap_or_else(|| panic!("no password shown: {text}"));
    let password = lines[at + 1].trim();
    assert!(password.len() >= 20, "{password:?}");
    let htpasswd = String::from_utf8(read(dir.path().join("auth/htpasswd"))).unwrap();
    let hash = htpasswd.strip_prefix("ops:").unwrap().trim_end();
    assert!(bcrypt::verify(password, hash).unwrap());
    assert!(
        !String::from_utf8(read(dir.path().join("logs/audit.log")))
            .unwrap()
            .contains(password)
    );
}

#[test]
fn verify_audit_exits_0_when_intact_and_1_after_a_line_is_edited() {
    let dir = tempfile::tempdir().unwrap();
    ok(&cli(
        dir.path(),
        &["reset-password", "alice"],
        "alice-pass-1\n",
    ));
    ok(&cli(
        dir.path(),
        &["reset-password", "alice"],
        "alice-pass-2\n",
    ));
    let run = cli(dir.path(), &["verify-audit"], "");
    ok(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (&report["ok"], &report["entries"]),
        (&true.into(), &2.into()),
        "{report}"
    );

    let path = dir.path().join("logs/audit.log");
    let text = String::from_utf8(read(&path)).unwrap();
    std::fs::write(&path, text.replacen("\"alice\"", "\"alicf\"", 1)).unwrap();
    let run = cli(dir.path(), &["verify-audit"], "");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["first_bad_line"],
        serde_json::json!({"file": "audit.log", "line": 1})
    );
    assert!(run.stderr.contains("broken"), "{}", run.stderr);
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn backup_and_restore_bring_back_accounts_grants_and_the_audit_chain() {
    let mut stack = Stack::start();
    let d = stack.dir.path().to_path_buf();
    assert_eq!(
        stack
            .app
            .create_user("alice", "alice-pass-1", "user")
            .status(),
        201
    );
    assert_eq!(
        stack
            .app
            .create_user("carol", "carol-pass-1", "admin")
            .status(),
        201
    );
    let grants = br#"{"users":{"alice":[{"repository":"team/*","actions":["pull"]}]},"everyone":[],"public":[]}"#;
    std::fs::write(d.join("auth/grants.json"), grants).unwrap();
    let key = p256_key();
    std::fs::write(d.join("auth/token.key"), &key).unwrap();

    let bk = d.join("backup");
    let run = cli(&d, &["backup", bk.to_str().unwrap()], "");
    ok(&run);
    let manifest: Value = serde_json::from_slice(&read(bk.join("backup.json"))).unwrap();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in [
        "htpasswd",
        "users.json",
        "grants.json",
        "token.key",
        "audit.log",
    ] {
        assert!(listed.contains(&name), "{name} not in {listed:?}");
        assert_eq!(mode(&bk.join(name)), 0o600, "{name}");
        let rec = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap();
        assert_eq!(rec["sha256"], sha256_hex(&read(bk.join(name))));
    }
    assert_eq!(read(bk.join("htpasswd")), read(stack.htpasswd_path()));
    assert_eq!(read(bk.join("grants.json")), grants);
    let backed_up = ["htpasswd", "users.json"].map(|n| read(bk.join(n)));
    // Not into a directory that has something in it.
    assert_ne!(cli(&d, &["backup", bk.to_str().unwrap()], "").code, Some(0));

    // Life goes on after the backup ...
    let app = &stack.app;
    let put = app
        .as_admin(Method::PUT, "/users/alice/password")
        .json(&serde_json::json!({"password": "alice-pass-2"}))
        .send()
        .unwrap();
    let status = put.status();
    assert_eq!(status, 204, "{}", put.text().unwrap_or_default());
    assert_eq!(
        app.as_admin(Method::DELETE, "/users/carol")
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(app.create_user("dave", "dave-pass-1", "user").status(), 201);
    std::fs::write(d.join("auth/grants.json"), b"{}").unwrap();
    assert_eq!(stack.registry.status_for("alice", "alice-pass-2"), 200);

    // ... until the restore, with the service stopped.
    assert_eq!(stack.app.terminate(Duration::from_secs(20)), Some(0));
    let run = cli(&d, &["restore", bk.to_str().unwrap()], "");
    ok(&run);
    assert_eq!(read(d.join("auth/users.json")), backed_up[1]);
    assert_eq!(read(d.join("auth/grants.json")), grants);
    assert_eq!(read(d.join("auth/token.key")), key);
    assert_eq!(mode(&d.join("auth/token.key")), 0o600);
    let aside: Vec<String> = names_in(&d.join("logs"))
        .into_iter()
        .filter(|n| n.starts_with("pre-restore-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the replaced audit log is kept: {:?}",
        names_in(&d.join("logs"))
    );
    // registry:2, still running, sees the restored passwords at once.
    assert_eq!(stack.registry.status_for("alice", "alice-pass-1"), 200);
    assert_eq!(stack.registry.status_for("alice", "alice-pass-2"), 401);
    assert_eq!(stack.registry.status_for("carol", "carol-pass-1"), 200);
    assert_eq!(stack.registry.status_for("dave", "dave-pass-1"), 401);
    let last = audit_lines(&stack.audit_path()).pop().unwrap();
    assert_eq!(
        (&last["action"], &last["source"]),
        (&"backup.restore".into(), &"cli".into())
    );
    assert_eq!(
        backed_up[0],
        read(bk.join("htpasswd")),
        "the backup itself is untouched"
    );

    // The service starts on the restored files, and the restored chain goes on.
    stack.app = AppEnv::new(&d, &stack.registry.url).start();
    let (status, body) = json(stack.app.as_admin(Method::GET, "/users").send().unwrap());
    assert_eq!(status, 200, "{body}");
    let roles: Vec<(String, String)> = body
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] != "service")
        .map(|u| {
            (
                u["username"].as_str().unwrap().into(),
                u["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = [("admin", "admin"), ("alice", "user"), ("carol", "admin")]
        .map(|(u, r)| (u.to_string(), r.to_string()));
    assert_eq!(roles, expect);
    assert_eq!(api_token_status(&stack, "carol", "carol-pass-1"), 200);
    assert_eq!(
        stack
            .app
            .create_user("erin", "erin-pass-1", "user")
            .status(),
        201
    );
    let report = chain_ok(&stack);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        audit_entries(&stack, "action=backup.restore")[0]["source"],
        "cli"
    );
}

/// A P-256 key in PEM, as `openssl ecparam -genkey` writes it.
fn p256_key() -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["ecparam", "-genkey", "-name", "prime256v1", "-noout"])
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Rewrites one file's size and checksum in a backup's manifest, as a forger would.
fn relist(bk: &Path, name: &str, bytes: &[u8]) {
    let path = bk.join("backup.json");
    let mut m: Value = serde_json::from_slice(&read(&path)).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["name"] == name {
            f["sha256"] = sha256_hex(bytes).into();
            f["size"] = bytes.len().into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn refused_restore(d: &Path, bk: &Path, says: &str) {
    let before = live_state(d);
    let run = cli(d, &["restore", bk.to_str().unwrap()], "");
    assert_eq!(run.code, Some(1), "{says}: {}", run.stderr);
    assert!(
        run.stderr.contains("refusing") && run.stderr.contains(says),
        "{says}: {}",
        run.stderr
    );
    assert_eq!(live_state(d), before, "{says}: a live file changed");
}

#[test]
fn a_backup_holding_a_link_an_oversized_file_or_an_unusable_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-1\n"));
    let bk = d.join("bk");
    ok(&cli(d, &["backup", bk.to_str().unwrap()], ""));
    let users = read(bk.join("users.json"));

    // The same bytes, reached through a link: a restore would copy whatever it points to.
    let elsewhere = d.join("elsewhere.json");
    std::fs::write(&elsewhere, &users).unwrap();
    std::fs::remove_file(bk.join("users.json")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, bk.join("users.json")).unwrap();
    refused_restore(d, &bk, "symbolic link");
    std::fs::remove_file(bk.join("users.json")).unwrap();

    // A sparse file of 64 GiB in the place of a small one: refused by its size, unread (hashing
    // it would take minutes, past the harness's limit of one).
    let huge = File::create(bk.join("users.json")).unwrap();
    huge.set_len(64 << 30).unwrap();
    drop(huge);
    refused_restore(d, &bk, "68719476736 bytes, the manifest says");
    std::fs::write(bk.join("users.json"), &users).unwrap();

    // A signing key the service would refuse at start, listed with its right checksum.
    std::fs::write(bk.join("token.key"), b"not a key").unwrap();
    let path = bk.join("backup.json");
    let mut m: Value = serde_json::from_slice(&read(&path)).unwrap();
    m["files"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "token.key", "kind": "token_key", "size": 9, "sha256": sha256_hex(b"not a key")
    }));
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    refused_restore(d, &bk, "token.key is not a key the service accepts");
    // A good key with a certificate that is not its own.
    let key = p256_key();
    std::fs::write(bk.join("token.key"), &key).unwrap();
    relist(&bk, "token.key", &key);
    let other = p256_key();
    let cert_of = |key: &[u8]| {
        let key_path = d.join("other.key");
        std::fs::write(&key_path, key).unwrap();
        let out = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-subj",
                "/CN=other",
                "-days",
                "1",
                "-key",
            ])
            .arg(&key_path)
            .output()
            .expect("openssl req");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let cert = cert_of(&other);
    std::fs::write(bk.join("token.crt"), &cert).unwrap();
    let mut m: Value = serde_json::from_slice(&read(&path)).unwrap();
    m["files"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "token.crt", "kind": "token_cert", "size": cert.len(), "sha256": sha256_hex(&cert)
    }));
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    refused_restore(d, &bk, "token.crt holds no certificate for token.key");

    // Its own certificate: restored, the key private.
    let cert = cert_of(&key);
    std::fs::write(bk.join("token.crt"), &cert).unwrap();
    relist(&bk, "token.crt", &cert);
    ok(&cli(d, &["restore", bk.to_str().unwrap()], ""));
    assert_eq!(read(d.join("auth/token.key")), key);
    assert_eq!(mode(&d.join("auth/token.key")), 0o600);
    assert_eq!(read(d.join("auth/token.crt")), cert);
}

#[test]
fn a_symlinked_htpasswd_stays_a_link_and_a_fresh_host_gets_its_directories() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // HTPASSWD_PATH is a link into a volume shared with registry:2.
    std::fs::create_dir_all(d.join("auth")).unwrap();
    std::fs::create_dir_all(d.join("shared")).unwrap();
    std::os::unix::fs::symlink("../shared/htpasswd", d.join("auth/htpasswd")).unwrap();
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-1\n"));
    let bk = d.join("bk");
    ok(&cli(d, &["backup", bk.to_str().unwrap()], ""));
    ok(&cli(d, &["reset-password", "bob"], "bob-pass-1\n"));
    ok(&cli(d, &["restore", bk.to_str().unwrap()], ""));
    let link = std::fs::symlink_metadata(d.join("auth/htpasswd")).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "the link was replaced by a file"
    );
    let restored = String::from_utf8(read(d.join("shared/htpasswd"))).unwrap();
    assert!(
        restored.contains("alice:") && !restored.contains("bob:"),
        "{restored}"
    );
    assert_eq!(read(bk.join("htpasswd")), restored.as_bytes());

    // A fresh host: no auth/ and no logs/ at all.
    let fresh = tempfile::tempdir().unwrap();
    let f = fresh.path();
    ok(&cli(f, &["restore", bk.to_str().unwrap()], ""));
    assert_eq!(read(f.join("auth/htpasswd")), read(bk.join("htpasswd")));
    assert_eq!(read(f.join("auth/users.json")), read(bk.join("users.json")));
    let run = cli(f, &["verify-audit"], "");
    ok(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
}

/// The live files a restore could change, with their bytes.
fn live_state(d: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut files: Vec<PathBuf> = [
        "auth/htpasswd",
        "auth/users.json",
        "auth/grants.json",
        "auth/robots.json",
        "auth/retention.json",
    ]
    .iter()
    .map(|f| d.join(f))
    .collect();
    files.extend(
        std::fs::read_dir(d.join("logs"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).ok();
            (p, bytes)
        })
        .collect()
}

#[test]
fn a_tampered_backup_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&cli(
        d,
        &["reset-password", "alice", "--admin"],
        "alice-pass-1\n",
    ));
    ok(&cli(d, &["reset-password", "bob"], "bob-pass-1\n"));
    let bk = d.join("bk");
    ok(&cli(d, &["backup", bk.to_str().unwrap()], ""));
    ok(&cli(d, &["reset-password", "carol"], "carol-pass-1\n"));
    let before = live_state(d);
    let manifest_path = bk.join("backup.json");
    let manifest = read(&manifest_path);
    let users = read(bk.join("users.json"));
    let audit = read(bk.join("audit.log"));

    let refused = |what: &str, says: &str| {
        let run = cli(d, &["restore", bk.to_str().unwrap()], "");
        assert_eq!(run.code, Some(1), "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains("refusing") && run.stderr.contains(says),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(live_state(d), before, "{what}: a live file changed");
    };

    // One byte of users.json: the checksum catches it.
    let mut edited = users.clone();
    let at = edited.iter().position(|&b| b == b'u').unwrap();
    edited[at] = b'U';
    std::fs::write(bk.join("users.json"), &edited).unwrap();
    refused("edited users.json", "users.json");
    std::fs::write(bk.join("users.json"), &users).unwrap();

    // An audit line edited and the manifest fixed to match: the chain catches it.
    let text = String::from_utf8(audit.clone()).unwrap();
    let forged = text.replacen("\"bob\"", "\"eve\"", 1);
    std::fs::write(bk.join("audit.log"), &forged).unwrap();
    let mut m: Value = serde_json::from_slice(&manifest).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["name"] == "audit.log" {
            f["sha256"] = sha256_hex(forged.as_bytes()).into();
            f["size"] = forged.len().into();
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    refused("forged audit line", "audit chain");
    std::fs::write(bk.join("audit.log"), &audit).unwrap();

    // A manifest pointing outside the backup's names.
    let mut m: Value = serde_json::from_slice(&manifest).unwrap();
    m["files"][0]["name"] = "../auth/htpasswd".into();
    std::fs::write(&manifest_path, serde_json::to_vec(&m).unwrap()).unwrap();
    refused("escaping name", "unexpected file");

    // A file gone from the backup.
    std::fs::write(&manifest_path, &manifest).unwrap();
    std::fs::remove_file(bk.join("users.json")).unwrap();
    refused("missing file", "missing");
    std::fs::write(bk.join("users.json"), &users).unwrap();

    // Put right again, the same backup restores.
    ok(&cli(d, &["restore", bk.to_str().unwrap()], ""));
    let htpasswd = String::from_utf8(read(d.join("auth/htpasswd"))).unwrap();
    assert!(
        htpasswd.contains("bob:") && !htpasswd.contains("carol:"),
        "{htpasswd}"
    );
    ok(&cli(d, &["verify-audit"], ""));
}

/// `GET /token` for a pull of `team/app` as `user`: the status, and whether pull was granted.
fn pull_token(stack: &TokenStack, user: &str, secret: &str) -> (u16, bool) {
    let r = stack.token(
        &format!("service={SERVICE}&scope=repository%3Ateam%2Fapp%3Apull"),
        Some((user, secret)),
    );
    let status = r.status().as_u16();
    if status != 200 {
        return (status, false);
    }
    let body: Value = r.json().unwrap();
    let token = body["token"].as_str().unwrap();
    let access = common::token_stack::claims(token)["access"].clone();
    (status, access.to_string().contains("\"pull\""))
}

/// A request as the admin, with `body` as JSON unless it is `Value::Null`.
fn admin_call(stack: &TokenStack, method: Method, path: &str, body: Value) -> (u16, Value) {
    let body = (!body.is_null()).then_some(body);
    let req = stack.app.as_admin(method, path).optional_json(body);
    json_or_no_content(req.send().unwrap())
}

#[test]
fn robots_and_retention_policies_are_backed_up_and_restored_and_broken_ones_refused() {
    let mut stack = TokenStack::start();
    let d = stack.dir.path().to_path_buf();
    assert_eq!(
        stack
            .app
            .create_user("alice", "alice-pass-1", "user")
            .status(),
        201
    );
    let (status, body) = admin_call(
        &stack,
        Method::PUT,
        "/users/alice/grants",
        serde_json::json!({"grants": [{"repository": "team/**", "actions": ["pull"]}]}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, robot) = admin_call(
        &stack,
        Method::POST,
        "/robots",
        serde_json::json!({"name": "ci", "owner": "alice",
            "grants": [{"repository": "team/app", "actions": ["pull"]}]}),
    );
    assert_eq!(status, 201, "{robot}");
    let secret = robot["secret"].as_str().unwrap().to_string();
    assert_eq!(pull_token(&stack, "robot.alice.ci", &secret), (200, true));
    let policies = serde_json::json!({"policies": [{"repositories": "team/**",
        "protect": ["latest"], "rules": [{"include": "ci-.*", "newest_pushed": 5}]}]});
    let (status, body) = admin_call(&stack, Method::PUT, "/retention", policies.clone());
    assert_eq!(status, 200, "{body}");

    let bk = d.join("backup");
    let run = cli(&d, &["backup", bk.to_str().unwrap()], "");
    ok(&run);
    let manifest: Value = serde_json::from_slice(&read(bk.join("backup.json"))).unwrap();
    for (name, kind) in [("robots.json", "robots"), ("retention.json", "retention")] {
        let rec = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {manifest}"));
        assert_eq!(rec["kind"], kind);
        assert_eq!(read(bk.join(name)), read(d.join("auth").join(name)));
        assert_eq!(mode(&bk.join(name)), 0o600, "{name}");
    }
    assert!(
        !String::from_utf8_lossy(&read(bk.join("robots.json"))).contains(&secret),
        "only the secret's hash is stored"
    );

    // The robot is deleted and the policies replaced after the backup ...
    let (status, body) = admin_call(
        &stack,
        Method::DELETE,
        "/robots/robot.alice.ci",
        Value::Null,
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = admin_call(
        &stack,
        Method::PUT,
        "/retention",
        serde_json::json!({"policies": []}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(pull_token(&stack, "robot.alice.ci", &secret).0, 401);

    // ... and a restore of a backup whose robots or policies are broken changes nothing.
    stack.app.kill();
    for (name, broken, says) in [
        (
            "robots.json",
            br#"{"robots":{"robot.alice.ci":{"name":"robot.alice.ci"}}}"#.as_slice(),
            "robots.json is not a valid robots file",
        ),
        (
            "robots.json",
            b"[1,2".as_slice(),
            "robots.json is not a valid robots file",
        ),
        (
            "retention.json",
            br#"{"policies":[{"repositories":"team/**","rules":[{"include":"ci-(["}]}]}"#
                .as_slice(),
            "retention.json is not a valid policies file",
        ),
        (
            "retention.json",
            br#"{"policies":[],"extra":true}"#.as_slice(),
            "retention.json is not a valid policies file",
        ),
    ] {
        let good = read(bk.join(name));
        let manifest = read(bk.join("backup.json"));
        std::fs::write(bk.join(name), broken).unwrap();
        relist(&bk, name, broken);
        refused_restore(&d, &bk, says);
        std::fs::write(bk.join(name), &good).unwrap();
        std::fs::write(bk.join("backup.json"), &manifest).unwrap();
    }
    // A link in the place of robots.json is refused like any other file.
    let good = read(bk.join("robots.json"));
    std::fs::write(d.join("elsewhere.json"), &good).unwrap();
    std::fs::remove_file(bk.join("robots.json")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere.json"), bk.join("robots.json")).unwrap();
    refused_restore(&d, &bk, "symbolic link");
    std::fs::remove_file(bk.join("robots.json")).unwrap();
    std::fs::write(bk.join("robots.json"), &good).unwrap();

    // The intact backup restores both, and the restarted service uses them.
    ok(&cli(&d, &["restore", bk.to_str().unwrap()], ""));
    for name in ["robots.json", "retention.json"] {
        assert_eq!(
            read(d.join("auth").join(name)),
            read(bk.join(name)),
            "{name}"
        );
    }
    stack.restart_app(|env| env);
    let (status, body) = admin_call(&stack, Method::GET, "/retention", Value::Null);
    assert_eq!((status, body), (200, policies));
    let (status, body) = admin_call(&stack, Method::GET, "/robots", Value::Null);
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["robots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["robot.alice.ci"]);
    assert_eq!(pull_token(&stack, "robot.alice.ci", &secret), (200, true));
}

#[test]
fn on_a_full_audit_volume_reset_password_and_restore_refuse_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = d.join("logs");
    let Some(volume) = SmallVolume::mount(&logs, "2m") else {
        return;
    };
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-1\n"));
    let bk = d.join("bk");
    ok(&cli(d, &["backup", bk.to_str().unwrap()], ""));
    ok(&cli(d, &["reset-password", "bob"], "bob-pass-1\n"));

    // Room for the backup's small audit file, but not for the margin every audited change
    // needs (256 KiB, as the service counts it): the restore's own entry could be the one
    // that does not fit.
    volume.fill_leaving(64 << 10);
    let before = live_state(d);
    let run = cli(d, &["reset-password", "alice"], "alice-pass-2\n");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(live_state(d), before, "reset-password changed a file");
    refused_restore(d, &bk, "less than the 262144 every audited change needs");

    // With room again both go through.
    std::fs::remove_file(logs.join("filler")).unwrap();
    ok(&cli(d, &["restore", bk.to_str().unwrap()], ""));
    let htpasswd = String::from_utf8(read(d.join("auth/htpasswd"))).unwrap();
    assert!(
        htpasswd.contains("alice:") && !htpasswd.contains("bob:"),
        "{htpasswd}"
    );
    ok(&cli(d, &["reset-password", "alice"], "alice-pass-2\n"));
    ok(&cli(d, &["verify-audit"], ""));
}
