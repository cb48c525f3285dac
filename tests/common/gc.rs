//! Garbage-collection helpers: registry-admin given the harness registry's config file and
//! binary, the registry switched to read-only (or a blob-descriptor cache) and restarted, the
//! storage's file list, and waiting for a job to finish.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::{App, AppEnv, REGISTRY_BIN, Registry, json, wait_until};

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
    .set("REGISTRY_BIN", REGISTRY_BIN)
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
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = text.replacen("storage:\n", &format!("storage:\n{yaml}"), 1);
        std::fs::write(&self.config, text).unwrap();
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
        self.files()
            .into_iter()
            .filter_map(|f| {
                let rest = f.strip_prefix("docker/registry/v2/blobs/sha256/")?;
                let hex = rest.split('/').nth(1)?;
                Some(format!("sha256:{hex}"))
            })
            .collect()
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

/// Polls `GET /gc/{id}` until the job is finished; returns it.
pub fn wait_for_job(app: &App, id: &str, limit: Duration) -> Value {
    let mut last = Value::Null;
    wait_until("the GC job to finish", limit, || {
        let (status, job) = json(
            app.as_admin(Method::GET, &format!("/gc/{id}"))
                .send()
                .expect("GET /gc/{id}"),
        );
        assert_eq!(status, 200, "{job}");
        let done = matches!(job["state"].as_str(), Some("succeeded" | "failed"));
        last = job;
        done
    });
    last
}
