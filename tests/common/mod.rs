//! Test harness: a real registry (Debian's `docker-registry` 2.8, or Distribution 3 with
//! `TEST_REGISTRY=v3`, see `upstream`) on a free loopback port with a config written here, and
//! the real registry-admin binary on port 0, sharing one htpasswd. Both are killed when their
//! handle is dropped. Every wait is bounded.
//!
//! A port picked free may be taken by another test's process before ours binds it, and a
//! registry that lost that race exits while the winner answers in its place. So a start counts
//! only once the log of the process started here says it listens on that port, and a lost bind
//! is retried on another port.
#![allow(dead_code)]

pub mod auth;
pub mod bench;
pub mod cluster;
pub mod gc;
pub mod images;
pub mod in_process;
pub mod intercept;
pub mod moto;
pub mod nginx;
pub mod postgres;
pub mod proxy;
pub mod registry_config;
pub mod registry_lookup;
pub mod skip;
pub mod skopeo;
pub mod token;
pub mod token_stack;
pub mod volume;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::Value;

pub const ADMIN_PASSWORD: &str = "admin-secret-1";
pub const EVENTS_TOKEN: &str = "test-events-token-0123456789abcdef";

/// `admin:PASSWORD`, as skopeo's and podman's `--creds` take the admin's credentials.
pub fn admin() -> String {
    format!("admin:{ADMIN_PASSWORD}")
}

pub fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Which Distribution the tests run against, from `TEST_REGISTRY`: `v2` (default: Debian's
/// 2.8) or `v3` (3.x, at `REGISTRY3_BIN` or `../shared/registry3/registry` from the repository).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    V2,
    V3,
}

impl Upstream {
    /// As figures and messages name it.
    pub fn label(self) -> &'static str {
        match self {
            Upstream::V2 => "registry 2.8",
            Upstream::V3 => "registry 3",
        }
    }
}

pub const REGISTRY2_BIN: &str = "/usr/bin/docker-registry";

pub fn upstream() -> Upstream {
    match std::env::var("TEST_REGISTRY").as_deref() {
        Ok("v3") => Upstream::V3,
        Ok("v2") | Ok("") | Err(_) => Upstream::V2,
        Ok(other) => panic!("TEST_REGISTRY must be v2 or v3, not {other:?}"),
    }
}

/// The registry binary of `upstream()`; it serves and collects garbage
/// (`serve CONFIG`, `garbage-collect CONFIG`) the same way in both versions.
pub fn registry_bin() -> PathBuf {
    let bin = match upstream() {
        Upstream::V2 => PathBuf::from(REGISTRY2_BIN),
        Upstream::V3 => std::env::var_os("REGISTRY3_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/registry3/registry")
            }),
    };
    assert!(
        bin.exists(),
        "{} is missing: run the test command from README.md (it installs Debian's \
         docker-registry); for TEST_REGISTRY=v3 set REGISTRY3_BIN to a Distribution 3 binary",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `probe` until it returns true, failing the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut probe: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

pub struct Registry {
    child: Option<Child>,
    config: PathBuf,
    /// What `config` was written from; changed and written again by `restart_with_storage`.
    spec: RegistryConfig,
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
}

/// Another process bound the port picked for ours first; ours exited.
#[derive(Debug)]
pub struct PortTaken(pub u16);

/// How often a start is tried on a fresh port after losing it to another process.
const PORT_ATTEMPTS: usize = 5;

/// Runs `start` with fresh free ports until it does not lose its port to another process.
pub fn on_free_port<T>(mut start: impl FnMut(u16) -> Result<T, PortTaken>) -> T {
    for _ in 0..PORT_ATTEMPTS {
        match start(free_port()) {
            Ok(started) => return started,
            Err(PortTaken(port)) => eprintln!("port {port} was taken by another process; retrying"),
        }
    }
    panic!("lost the picked port to another process {PORT_ATTEMPTS} times in a row");
}

impl Registry {
    /// Starts the registry with htpasswd auth on `htpasswd`, which must already exist
    /// (otherwise the registry provisions a `docker` user of its own).
    pub fn start(dir: &Path, htpasswd: &Path) -> Registry {
        on_free_port(|port| Self::try_start_on(dir, htpasswd, port, None))
    }

    /// On `port`, picked by the caller (who must pass it to registry-admin first): wrap the
    /// two starts in `on_free_port`, so both start again if another process took the port.
    /// `notify`: registry-admin's base URL, to which the registry sends its events with
    /// `EVENTS_TOKEN`.
    pub fn try_start_on(
        dir: &Path,
        htpasswd: &Path,
        port: u16,
        notify: Option<&str>,
    ) -> Result<Registry, PortTaken> {
        assert!(
            htpasswd.exists(),
            "htpasswd must exist before the registry starts"
        );
        let spec = RegistryConfig::new(port, Self::filesystem(dir))
            .auth(Auth::htpasswd("test-registry", htpasswd))
            .notify(notify);
        Self::launch(dir, spec)
    }

    /// Storage in `dir`'s `registry-data`, created here.
    pub fn filesystem(dir: &Path) -> Storage {
        let data = dir.join("registry-data");
        std::fs::create_dir_all(&data).unwrap();
        Storage::Filesystem(data)
    }

    /// Writes the registry's config (`registry-config.yml` in `dir`) from `spec` and starts it
    /// on the port it names.
    pub fn launch(dir: &Path, spec: RegistryConfig) -> Result<Registry, PortTaken> {
        let config = dir.join("registry-config.yml");
        spec.write(&config);
        let port = spec.port;
        let mut registry = Registry {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir: dir.to_path_buf(),
            log: dir.join("registry.log"),
            config,
            spec,
        };
        registry.spawn()?;
        Ok(registry)
    }

    /// Starts the process and waits until it is the one answering on `port`: its own log
    /// says it listens there (the line both 2.8 and 3 write once bound) and `/v2/` answers.
    fn spawn(&mut self) -> Result<(), PortTaken> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // The log is appended to across restarts: only what this start writes counts.
        let log_start = log_file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        let child = Command::new(registry_bin())
            .arg("serve")
            .arg(&self.config)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("start the registry");
        self.child = Some(child);
        let listening = format!("listening on 127.0.0.1:{}", self.port);
        let c = client();
        let v2 = format!("{}/v2/", self.url);
        let limit = Duration::from_secs(20);
        let start = Instant::now();
        loop {
            let log = std::fs::read(&self.log).unwrap_or_default();
            let log = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.child = None;
                if log.contains("address already in use") {
                    return Err(PortTaken(self.port));
                }
                panic!("the registry exited ({status}):\n{log}");
            }
            if log.contains(&listening) && c.get(&v2).send().is_ok_and(|r| r.status() == 401) {
                return Ok(());
            }
            assert!(
                start.elapsed() < limit,
                "the registry did not answer on port {} within {limit:?}:\n{log}",
                self.port
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the registry (SIGKILL); `restart` brings it back on the same port and storage.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Same port: registry-admin and the clients know it. Fails the test if another process
    /// took it while the registry was stopped.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(PortTaken(p)) = self.spawn() {
            panic!("port {p} was taken by another process while the registry was stopped");
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the registry: it accepts connections but answers
    /// nothing, as a hung registry would.
    ///
    /// The registry must still be running: a signal to a process that has exited (and whose
    /// port another process may hold by now) would make the test judge someone else's registry.
    pub fn signal(&mut self, sig: &str) {
        let exited = self
            .child
            .as_mut()
            .expect("registry started")
            .try_wait()
            .ok()
            .flatten();
        if let Some(status) = exited {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("the registry exited ({status}) before SIG{sig}:\n{log}");
        }
        let pid = self.child.as_ref().expect("registry running").id();
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// The status registry:2 gives `GET /v2/` with these Basic credentials.
    pub fn status_for(&self, user: &str, password: &str) -> u16 {
        client()
            .get(format!("{}/v2/", self.url))
            .basic_auth(user, Some(password))
            .send()
            .expect("registry request")
            .status()
            .as_u16()
    }
}

use registry_config::{Auth, RegistryConfig, Storage};

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct App {
    child: Child,
    pub url: String,
    /// Everything the process wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

/// The environment registry-admin gets in tests; the caller may add or override variables.
#[derive(Clone)]
pub struct AppEnv {
    pub vars: Vec<(String, String)>,
}

impl AppEnv {
    pub fn new(dir: &Path, registry_url: &str) -> AppEnv {
        let vars = [
            ("BIND_ADDR", "127.0.0.1:0".to_string()),
            ("REGISTRY_URL", registry_url.to_string()),
            (
                "HTPASSWD_PATH",
                dir.join("auth/htpasswd").display().to_string(),
            ),
            (
                "AUDIT_LOG_PATH",
                dir.join("logs/audit.log").display().to_string(),
            ),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_string()),
            // Low cost keeps the suite fast; the benchmark measures cost 10.
            ("BCRYPT_COST", "4".to_string()),
            ("RUST_LOG", "info".to_string()),
            ("EVENTS_TOKEN", EVENTS_TOKEN.to_string()),
        ];
        AppEnv {
            vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    pub fn set(mut self, key: &str, value: &str) -> AppEnv {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    /// This environment with REGISTRY_URL at `127.0.0.1:port`, unless the caller pointed it
    /// elsewhere (anything but the placeholder `http://127.0.0.1:1`).
    pub fn for_registry_port(&self, port: u16) -> AppEnv {
        let mut env = self.clone();
        for (k, v) in &mut env.vars {
            if k == "REGISTRY_URL" && v == "http://127.0.0.1:1" {
                *v = format!("http://127.0.0.1:{port}");
            }
        }
        env
    }

    pub fn unset(mut self, key: &str) -> AppEnv {
        self.vars.retain(|(k, _)| k != key);
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry-admin"));
        cmd.env_clear().stdin(Stdio::null()).stdout(Stdio::null());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the binary expecting it to stop at once; returns its exit code and stderr.
    pub fn run_to_exit(&self) -> (Option<i32>, String) {
        let out = self
            .command()
            .stderr(Stdio::piped())
            .output()
            .expect("run registry-admin");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn start(&self) -> App {
        let mut child = self
            .command()
            .stderr(Stdio::piped())
            .spawn()
            .expect("start registry-admin");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("registry-admin: listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(url.to_string());
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "registry-admin did not start; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        App { child, url, stderr }
    }
}

impl App {
    /// The process id, e.g. to pin it to a CPU in a benchmark.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        client().get(format!("{}{path}", self.url))
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        client().request(method, format!("{}{path}", self.url))
    }

    pub fn as_admin(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// A request as `user` with `password`.
    pub fn as_user(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &str,
        password: &str,
    ) -> RequestBuilder {
        self.request(method, path).basic_auth(user, Some(password))
    }

    /// A bodiless request as the bootstrap admin; (status, JSON body).
    pub fn admin_json(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        json(
            self.as_admin(method, path)
                .send()
                .unwrap_or_else(|e| panic!("{path}: {e}")),
        )
    }

    /// `POST /users` as the bootstrap admin.
    pub fn create_user(&self, name: &str, password: &str, role: &str) -> Response {
        self.as_admin(reqwest::Method::POST, "/users")
            .json(&serde_json::json!({"username": name, "password": password, "role": role}))
            .send()
            .expect("POST /users")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, as `docker stop` sends; returns the exit code once the process is gone.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("registry-admin did not stop within {limit:?} of SIGTERM");
    }

    /// A memory figure of the process from `/proc/<pid>/status`, in KiB: `VmRSS` now, or
    /// `VmHWM`, the most it has held at any time.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from /proc status"))
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.kill();
    }
}

/// registry-admin and registry:2 sharing `dir/auth/htpasswd`. registry-admin starts first so
/// the htpasswd exists (with the admin and service accounts) before the registry reads it.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub registry: Registry,
}

impl Stack {
    pub fn start() -> Stack {
        Self::start_with(|env| env)
    }

    pub fn start_with(customise: impl FnOnce(AppEnv) -> AppEnv) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        // The registry's port must be known before registry-admin starts (REGISTRY_URL), and
        // the htpasswd must exist before the registry starts: pick the port, start the app,
        // then the registry on that port — both again on another port if it was lost.
        let env = customise(AppEnv::new(dir.path(), "http://127.0.0.1:1"));
        let (app, registry) = on_free_port(|port| {
            let app = env.for_registry_port(port).start();
            let registry = Registry::try_start_on(
                dir.path(),
                &dir.path().join("auth/htpasswd"),
                port,
                Some(&app.url),
            )?;
            Ok((app, registry))
        });
        Stack { dir, app, registry }
    }

    pub fn htpasswd_path(&self) -> PathBuf {
        self.dir.path().join("auth/htpasswd")
    }

    pub fn users_json_path(&self) -> PathBuf {
        self.dir.path().join("auth/users.json")
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.path().join("logs/audit.log")
    }

    pub fn htpasswd(&self) -> String {
        std::fs::read_to_string(self.htpasswd_path()).expect("read htpasswd")
    }
}

/// The JSON body of a response, failing the test when it is not JSON.
/// A request with a JSON body when one is given.
pub trait OptionalJson {
    fn optional_json(self, body: Option<Value>) -> Self;
}

impl OptionalJson for RequestBuilder {
    fn optional_json(self, body: Option<Value>) -> Self {
        match body {
            Some(b) => self.json(&b),
            None => self,
        }
    }
}

/// `(204, Value::Null)` for a 204 No Content (which has no body), otherwise [`json`].
pub fn json_or_no_content(resp: Response) -> (u16, Value) {
    if resp.status() == 204 {
        return (204, Value::Null);
    }
    json(resp)
}

pub fn json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().expect("body");
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    (status, value)
}

/// Names listed by `GET /users`.
pub fn usernames(app: &App) -> Vec<String> {
    let (status, body) = json(
        app.as_admin(reqwest::Method::GET, "/users")
            .send()
            .expect("GET /users"),
    );
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("array")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_string())
        .collect()
}

/// A finished process's stdout then stderr, as text.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The permission bits (`& 0o777`) of `path`.
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The entries of `GET /audit{query}` as the admin (`query` empty or starting with `?`);
/// panics unless 200.
pub fn audit_entries(app: &App, query: &str) -> Vec<Value> {
    let (status, body) = json(
        app.as_admin(reqwest::Method::GET, &format!("/audit{query}"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{query}: {body}");
    body["entries"].as_array().unwrap().clone()
}

/// `POST /events` to the service at `url` as registry:2 sends a notification, with
/// `EVENTS_TOKEN`.
pub fn post_events(url: &str, body: &Value) -> (u16, Value) {
    post_events_as(url, EVENTS_TOKEN, body)
}

/// [`post_events`] with bearer `token`.
pub fn post_events_as(url: &str, token: &str, body: &Value) -> (u16, Value) {
    json(
        client()
            .post(format!("{url}/events"))
            .header(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )
            .bearer_auth(token)
            .body(body.to_string())
            .send()
            .expect("POST /events"),
    )
}
