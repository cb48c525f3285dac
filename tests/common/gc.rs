//! Garbage-collection helpers: registry-admin given the harness registry's config file and
//! binary, the registry switched to read-only (or a blob-descriptor cache) and restarted, the
//! storage's file list, and waiting for a job to finish.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::RequestBuilder;
use serde_json::Value;

use super::images::{ACCEPT_ALL, Desc, Layout, pull_all};
use super::{App, AppEnv, Registry, client, json, registry_bin, wait_until};

/// `env` with REGISTRY_CONFIG pointing at the config file the harness registry will use (it
/// is written beside the htpasswd's directory) and REGISTRY_BIN at the real binary.
pub fn with_gc(env: AppEnv) -> AppEnv {
    let htpasswd = env
        .vars
        .iter()
        .find(|(k, _)| k == "HTPASSWD_PATH")
        .map(|(_, v)| PathBuf::from(v))
        .expect("HTPASSWD_PATH");
    let dir = htpasswd.parent().and_then(Path::parent).expect("test dir");
    env.set(
        "REGISTRY_CONFIG",
        &dir.join("registry-config.yml").display().to_string(),
    )
    .set("REGISTRY_BIN", &registry_bin().display().to_string())
}

impl Registry {
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.join("registry-data")
    }

    /// Adds `yaml` under `storage:` of the config and restarts the registry with it.
    pub fn restart_with_storage(&mut self, yaml: &str) {
        self.spec.storage_extra.push_str(yaml);
        self.spec.write(&self.config);
        self.restart();
    }

    pub fn make_read_only(&mut self) {
        self.restart_with_storage("  maintenance:\n    readonly:\n      enabled: true\n");
    }

    /// Every file under the storage root, relative to it.
    pub fn files(&self) -> BTreeSet<String> {
        fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.insert(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.storage(), &self.storage(), &mut out);
        out
    }

    /// The blob files (`…/blobs/sha256/xx/<hex>/data`) as digests.
    pub fn blobs(&self) -> BTreeSet<String> {
        blob_digests(&self.files())
    }
}

/// `POST /gc` with `body`; (status, JSON).
pub fn start_gc(app: &App, body: Value) -> (u16, Value) {
    json(
        app.as_admin(Method::POST, "/gc")
            .json(&body)
            .send()
            .expect("POST /gc"),
    )
}

/// Polls `GET /gc/{id}` until `reached` holds for its state; returns the job.
fn poll_job(
    app: &App,
    id: &str,
    what: &str,
    limit: Duration,
    reached: impl Fn(&str) -> bool,
) -> Value {
    let mut last = Value::Null;
    wait_until(what, limit, || {
        let (status, job) = app.admin_json(Method::GET, &format!("/gc/{id}"));
        assert_eq!(status, 200, "{job}");
        let done = reached(job["state"].as_str().unwrap_or_default());
        last = job;
        done
    });
    last
}

fn finished(state: &str) -> bool {
    matches!(state, "succeeded" | "failed")
}

/// Polls `GET /gc/{id}` until the job is finished; returns it.
pub fn wait_for_job(app: &App, id: &str, limit: Duration) -> Value {
    poll_job(app, id, "the GC job to finish", limit, finished)
}

/// Waits (bounded) until `app` knows GC job `id`, started on another replica: like any change,
/// it is promised there within a second, not at once. Prints how long it took.
pub fn wait_for_job_known(app: &App, id: &str) {
    let start = Instant::now();
    wait_until(
        "the job to be known on the other replica",
        Duration::from_secs(10),
        || app.admin_json(Method::GET, &format!("/gc/{id}")).0 == 200,
    );
    eprintln!("job {id} known on {} after {:?}", app.url, start.elapsed());
}

/// Cluster mode: a real run (the default is a dry run) started on `runner`, which must accept
/// it (202), once `other` knows it. Returns the job as `runner` answered and its id.
pub fn start_real_gc_seen_on(runner: &App, other: &App) -> (Value, String) {
    let (status, job) = start_gc(runner, serde_json::json!({"dry_run": false}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("job id").to_string();
    wait_for_job_known(other, &id);
    (job, id)
}

/// Starts a job with `body`, which must be accepted (202), and waits for it to finish.
pub fn run_gc(app: &App, body: Value, limit: Duration) -> Value {
    let (status, job) = start_gc(app, body);
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().expect("a job id");
    wait_for_job(app, id, limit)
}

/// Polls `GET /gc/{id}` until the job is in `state`; returns it. Fails at once if the job
/// finishes instead.
pub fn wait_for_state(app: &App, id: &str, state: &str, limit: Duration) -> Value {
    poll_job(
        app,
        id,
        &format!("the GC job to be {state}"),
        limit,
        |now| {
            assert!(
                now == state || !finished(now),
                "the job finished ({now}) before it was {state}"
            );
            now == state
        },
    )
}

/// Digests a manifest names (config, layers, or an index's children).
pub fn named(raw: &[u8]) -> Vec<String> {
    let m: Value = serde_json::from_slice(raw).expect("manifest JSON");
    let mut out = Vec::new();
    if let Some(c) = m["config"]["digest"].as_str() {
        out.push(c.to_string());
    }
    for key in ["layers", "manifests"] {
        for d in m[key].as_array().into_iter().flatten() {
            out.push(d["digest"].as_str().expect("digest").to_string());
        }
    }
    out
}

/// Every blob of each image in `references`, as `skopeo copy --all` from `registry` writes it
/// (so a missing child or blob fails the test).
pub fn pulled(
    registry: &str,
    creds: &str,
    references: &[String],
) -> Vec<(String, BTreeSet<String>)> {
    references
        .iter()
        .map(|r| {
            let dir = tempfile::tempdir().expect("temp dir");
            pull_all(registry, creds, r, dir.path()).unwrap_or_else(|e| panic!("{r}: {e}"));
            let blobs: BTreeSet<String> = std::fs::read_dir(dir.path().join("blobs/sha256"))
                .expect("pulled layout")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            (r.clone(), blobs)
        })
        .collect()
}

/// The digests of the blob files among `files` (a [`Registry::files`] listing).
pub fn blob_digests(files: &BTreeSet<String>) -> BTreeSet<String> {
    files
        .iter()
        .filter_map(|f| {
            let rest = f.strip_prefix("docker/registry/v2/blobs/sha256/")?;
            Some(format!("sha256:{}", rest.split('/').nth(1)?))
        })
        .collect()
}

/// A two-platform image (amd64, and arm64 v8) named `tag` in `l`: the index and its children.
pub fn multi_arch(l: &mut Layout, tag: &str) -> (Desc, [Desc; 2]) {
    let a = l.image("amd64", None, 1);
    let b = l.image("arm64", Some("v8"), 1);
    let index = l.index(&[(a.clone(), "amd64", None), (b.clone(), "arm64", Some("v8"))]);
    l.tag(tag, &index);
    (index, [a, b])
}

/// Pulls of one image (manifest, then every blob it names, each non-empty), over and over in
/// a thread until stopped, counting the ones that failed.
pub struct PullLoop {
    stop: Arc<AtomicBool>,
    pulls: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// At most this many pulls, however long the loop is left running.
const MAX_PULLS: usize = 5000;

impl PullLoop {
    /// Pulls `registry_url/v2/name` `reference`, with `pause` between pulls; `auth` adds the
    /// credentials to each request (called afresh each time, so it may fetch a token).
    pub fn start(
        registry_url: &str,
        name: &str,
        reference: &str,
        pause: Duration,
        auth: impl Fn(RequestBuilder) -> RequestBuilder + Send + 'static,
    ) -> PullLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let pulls = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let base = format!("{registry_url}/v2/{name}");
        let reference = reference.to_string();
        let thread = {
            let (stop, pulls, failures) = (stop.clone(), pulls.clone(), failures.clone());
            thread::spawn(move || {
                let c = client();
                let pull_once = || -> Option<()> {
                    let m = auth(c.get(format!("{base}/manifests/{reference}")))
                        .header("accept", ACCEPT_ALL)
                        .send()
                        .ok()?;
                    if m.status() != 200 {
                        return None;
                    }
                    let raw = m.bytes().ok()?;
                    for d in named(&raw) {
                        let b = auth(c.get(format!("{base}/blobs/{d}"))).send().ok()?;
                        if b.status() != 200 || b.bytes().ok()?.is_empty() {
                            return None;
                        }
                    }
                    Some(())
                };
                for _ in 0..MAX_PULLS {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    pulls.fetch_add(1, Ordering::Relaxed);
                    if pull_once().is_none() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    thread::sleep(pause);
                }
            })
        };
        PullLoop {
            stop,
            pulls,
            failures,
            thread: Some(thread),
        }
    }

    /// Stops the loop; (pulls, failed pulls).
    pub fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("pull loop");
        }
        (
            self.pulls.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }
}

impl Drop for PullLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
