//! What the benchmarks (benches/*.rs) share: figures in ms, medians, and a keep-alive read
//! rate. Never used by a test: a test asserts no timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{App, AppEnv};

/// How long a read-rate run lasts, and how many clients it runs at once.
pub const READ_SECONDS: u64 = 5;
pub const READ_CONCURRENCY: usize = 8;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The service alone in token mode (no registry: none is needed to issue tokens), with
/// BCRYPT_COST 10 as in production; the directory lives as long as the app must.
pub fn token_server() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = AppEnv::new(dir.path(), "http://127.0.0.1:9")
        .set("AUTH_MODE", "token")
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.path().join("auth/token.key").display().to_string(),
        )
        .set("BCRYPT_COST", "10")
        .set("RUST_LOG", "warn")
        .start();
    (dir, app)
}

/// How a read-rate client authenticates.
#[derive(Clone)]
pub enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

impl Credentials {
    pub fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credentials::Basic { user, password } => req.basic_auth(user, Some(password)),
            Credentials::Bearer(token) => req.bearer_auth(token),
        }
    }
}

/// Answers/s of `GET target` with `creds`, from `READ_CONCURRENCY` keep-alive clients for
/// `READ_SECONDS`, after one untimed request; every answer must be 200.
pub async fn read_rate(target: &str, creds: Credentials) -> f64 {
    let warm = creds
        .apply(reqwest::Client::new().get(target))
        .send()
        .await
        .expect("warm-up");
    assert_eq!(warm.status(), 200, "{target}");
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(READ_SECONDS);
    let started = Instant::now();
    let workers: Vec<_> = (0..READ_CONCURRENCY)
        .map(|_| {
            let (target, creds) = (target.to_string(), creds.clone());
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let c = reqwest::Client::new();
                while Instant::now() < deadline {
                    let r = creds.apply(c.get(&target)).send().await.expect("request");
                    assert_eq!(r.status(), 200);
                    r.bytes().await.expect("body");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Audit entries per second appended through `logs` at once: `writers` tasks on each, each
/// appending `appends / writers` entries and waiting for every one to be stored.
pub fn append_rate(
    logs: &[Arc<registry_admin::audit::AuditLog>],
    appends: usize,
    writers: usize,
) -> f64 {
    use registry_admin::audit::entry::{Entry, Outcome, Source};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (r, log) in logs.iter().enumerate() {
            for w in 0..writers {
                let log = Arc::clone(log);
                tasks.push(tokio::spawn(async move {
                    for i in 0..appends / writers {
                        let mut e = Entry::new(
                            "user.password",
                            &format!("r{r}w{w}"),
                            Outcome::Success,
                            Source::Api,
                        );
                        e.user = Some(format!("u{i}"));
                        log.record(e).await.unwrap();
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    ((appends / writers) * writers * logs.len()) as f64 / t.elapsed().as_secs_f64()
}
