//! moto's S3 server (`moto_server`, PyPI `moto[server]`) on a free loopback port with one
//! bucket, as the registries' shared storage in the cluster tests. Killed on Drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::registry_config::Storage;
use super::skip::component_missing;
use super::{PortTaken, client, on_free_port};

pub const BUCKET: &str = "registry";
/// moto accepts any static keys; the registries sign with these.
pub const ACCESS_KEY: &str = "cluster-test-access";
pub const SECRET_KEY: &str = "cluster-test-secret";
pub const REGION: &str = "us-east-1";

pub struct Moto {
    child: Child,
    pub url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// `MOTO_SERVER`, else `moto_server` on PATH or in pyenv's shims.
fn moto_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        let home = PathBuf::from(home);
        dirs.push(home.join(".pyenv/shims"));
        dirs.push(home.join(".local/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("moto_server"))
        .find(|p| p.exists())
}

impl Moto {
    /// `None` (after a banner) when moto_server is not installed and we are not under CI.
    pub fn start() -> Option<Moto> {
        let Some(bin) = moto_bin() else {
            component_missing(
                "moto_server",
                "install it with `pipx install 'moto[server]'` (`scripts/install-deps.sh moto-server` does)",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("moto.log");
        let (child, url) = on_free_port(|port| {
            let out = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("start moto_server");
            let url = format!("http://127.0.0.1:{port}");
            let listening = format!("Running on {url}");
            let start = Instant::now();
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if let Ok(Some(status)) = child.try_wait() {
                    if text.contains("Address already in use") {
                        return Err(PortTaken(port));
                    }
                    panic!("moto_server exited ({status}):\n{text}");
                }
                // Its own log naming the port: the answer below is not another process's.
                if text.contains(&listening) && client().get(&url).send().is_ok() {
                    return Ok((child, url));
                }
                if start.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    panic!("moto_server did not answer within 30 s:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let moto = Moto {
            child,
            url,
            log,
            _dir: dir,
        };
        let status = client()
            .put(format!("{}/{BUCKET}", moto.url))
            .send()
            .expect("create the bucket")
            .status();
        assert!(status.is_success(), "create bucket: {status}");
        Some(moto)
    }

    /// The object keys in the bucket (all pages, bounded).
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..100 {
            let mut req = client()
                .get(format!("{}/{BUCKET}", self.url))
                .query(&[("list-type", "2")]);
            if let Some(t) = &token {
                req = req.query(&[("continuation-token", t.as_str())]);
            }
            let body = req.send().expect("list objects").text().expect("body");
            keys.extend(elements(&body, "Key"));
            token = elements(&body, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return keys;
            }
        }
        panic!("more than 100 pages of objects in the bucket");
    }

    /// The storage of a registry config on this bucket.
    pub fn registry_storage(&self) -> Storage {
        Storage::S3 {
            endpoint: self.url.clone(),
            bucket: BUCKET.into(),
            region: REGION.into(),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
        }
    }
}

/// The texts of every `<name>…</name>` element in `xml` (S3's listing has no nesting that
/// matters here).
fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next().map(str::to_string))
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
