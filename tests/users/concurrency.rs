//! Concurrent changes and crashes mid-write: the htpasswd must always be whole.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, Stack, client, usernames};
use registry_admin::users::htpasswd::Htpasswd;
use reqwest::Method;

#[test]
fn a_hundred_concurrent_adds_mixed_with_deletes_leave_exactly_the_expected_set() {
    let stack = Stack::start();
    for i in 0..30 {
        assert_eq!(
            stack
                .app
                .create_user(&format!("old{i}"), "old-pass-11", "user")
                .status(),
            201
        );
    }
    let url = Arc::new(stack.app.url.clone());
    let mut jobs: Vec<(Method, String)> = (0..100)
        .map(|i| (Method::POST, format!("new{i}")))
        .chain((0..30).map(|i| (Method::DELETE, format!("old{i}"))))
        .collect();
    // Interleave the deletes among the adds.
    jobs.sort_by_key(|(_, name)| {
        name.trim_start_matches(char::is_alphabetic)
            .parse::<u32>()
            .unwrap_or(0)
    });
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let jobs = Arc::clone(&jobs);
            let url = Arc::clone(&url);
            thread::spawn(move || {
                let c = client();
                let mut failures = Vec::new();
                loop {
                    let Some((method, name)) = jobs.lock().unwrap().pop() else {
                        break;
                    };
                    let resp = if method == Method::POST {
                        c.post(format!("{url}/users"))
                            .basic_auth("admin", Some(ADMIN_PASSWORD))
                            .json(&serde_json::json!({"username": name, "password": "new-pass-11"}))
                            .send()
                    } else {
                        c.delete(format!("{url}/users/{name}"))
                            .basic_auth("admin", Some(ADMIN_PASSWORD))
                            .send()
                    };
                    let status = resp.map(|r| r.status().as_u16()).unwrap_or(0);
                    let want = if method == Method::POST { 201 } else { 204 };
                    if status != want {
                        failures.push(format!("{method} {name}: {status}"));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(failures.is_empty(), "{failures:?}");

    let mut expected: BTreeSet<String> = (0..100).map(|i| format!("new{i}")).collect();
    expected.insert("admin".into());
    expected.insert("registry-admin".into());
    let listed: BTreeSet<String> = usernames(&stack.app).into_iter().collect();
    assert_eq!(listed, expected);
    let on_disk: BTreeSet<String> = Htpasswd::parse(&stack.htpasswd())
        .unwrap()
        .entries()
        .into_keys()
        .collect();
    assert_eq!(on_disk, expected);
    assert_eq!(
        stack.htpasswd().lines().count(),
        expected.len(),
        "one line per user"
    );
    for name in ["new0", "new57", "new99"] {
        assert_eq!(
            stack.registry.status_for(name, "new-pass-11"),
            200,
            "{name}"
        );
    }
    assert_eq!(stack.registry.status_for("old3", "old-pass-11"), 401);
}

#[test]
fn sigkill_during_a_write_storm_never_leaves_a_broken_or_shrunken_file() {
    let mut stack = Stack::start();
    let keepers: Vec<String> = (0..20).map(|i| format!("keep{i}")).collect();
    for k in &keepers {
        assert_eq!(
            stack.app.create_user(k, "keep-pass-11", "user").status(),
            201
        );
    }

    for round in 0..3u64 {
        if round > 0 {
            stack.app = common::AppEnv::new(stack.dir.path(), &stack.registry.url).start();
        }
        let url = stack.app.url.clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        let succeeded = Arc::new(AtomicU32::new(0));
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let url = url.clone();
                let succeeded = Arc::clone(&succeeded);
                thread::spawn(move || {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap();
                    let mut done = 0u32;
                    for i in 0..10_000 {
                        if Instant::now() > deadline {
                            break;
                        }
                        let name = format!("storm{round}w{w}n{}", i % 5);
                        let r = if i % 10 < 5 {
                            c.post(format!("{url}/users"))
                                .basic_auth("admin", Some(ADMIN_PASSWORD))
                                .json(&serde_json::json!({"username": name, "password": "storm-pass-1"}))
                                .send()
                        } else {
                            c.delete(format!("{url}/users/{name}"))
                                .basic_auth("admin", Some(ADMIN_PASSWORD))
                                .send()
                        };
                        match r {
                            Ok(r) if r.status().is_success() => {
                                done += 1;
                                succeeded.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(_) => break, // the server is gone
                        }
                    }
                    done
                })
            })
            .collect();
        // Killed once the storm is under way, however loaded the machine (a fixed pause made
        // too few writes at load 10), and a little later in each round.
        common::wait_until("the storm's first writes", Duration::from_secs(20), || {
            succeeded.load(Ordering::Relaxed) > 10
        });
        thread::sleep(Duration::from_millis(100 * round));
        stack.app.kill();
        let writes: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(
            writes > 10,
            "round {round}: the storm made only {writes} writes before the kill"
        );

        let text = stack.htpasswd();
        assert!(!text.is_empty(), "round {round}: empty htpasswd");
        let parsed = Htpasswd::parse(&text)
            .unwrap_or_else(|e| panic!("round {round}: htpasswd does not parse: {e}\n{text}"));
        let entries = parsed.entries();
        for k in keepers
            .iter()
            .chain(["admin".to_string(), "registry-admin".to_string()].iter())
        {
            assert!(entries.contains_key(k), "round {round}: lost {k}");
        }
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(stack.users_json_path()).unwrap(),
        )
        .unwrap_or_else(|e| panic!("round {round}: users.json does not parse: {e}"));
        assert_eq!(
            stack.registry.status_for("keep7", "keep-pass-11"),
            200,
            "round {round}"
        );
    }
}
