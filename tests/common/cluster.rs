//! The cluster, all real processes on loopback: PostgreSQL, moto's S3 with one bucket, two
//! registries on that bucket sharing one `http.secret` (no blob-descriptor cache), two
//! registry-admin replicas on one database and one token key, and nginx in front of each pair
//! (deploy/nginx-cluster.conf). Each replica gets a directory of its own for the files-mode
//! settings, so anything that still lived in files would not be shared by accident.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use reqwest::blocking::Response;
use serde_json::Value;

use super::images::{ACCEPT_ALL, one_image};
use super::moto::Moto;
use super::nginx::ClusterNginx;
use super::postgres::Postgres;
use super::registry_config::{Auth, RegistryConfig};
use super::skopeo::skopeo_ok;
use super::token_stack::{SERVICE, token_auth};
use super::{App, AppEnv, PortTaken, Registry, client, on_free_port, registry_bin};

/// API bearer tokens must verify on every replica: one secret for all.
pub const TOKEN_SECRET: &str = "cluster-test-token-secret-0123456789abcdef";
/// An upload started on one registry continues on the other only with one `http.secret`.
pub const HTTP_SECRET: &str = "cluster-test-http-secret-0123456789abcdef";
pub const REPLICAS: [&str; 2] = ["a", "b"];

pub struct ClusterStack {
    // Dropped in this order: the balancer first, the database last.
    pub nginx: ClusterNginx,
    pub replicas: Vec<App>,
    pub registries: Vec<Registry>,
    pub envs: Vec<AppEnv>,
    pub database_url: String,
    pub moto: Moto,
    pub pg: Postgres,
    pub dir: tempfile::TempDir,
}

/// `http://127.0.0.1:PORT` → the socket address.
pub fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// A registry on moto's bucket with the shared `http.secret`, in `dir`, on a free port, with
/// `auth`, sending its events to registry-admin at `notify`.
pub fn s3_registry(moto: &Moto, dir: &Path, auth: &Auth, notify: Option<&str>) -> Registry {
    std::fs::create_dir_all(dir).unwrap();
    on_free_port(|port| {
        let spec = RegistryConfig::new(port, moto.registry_storage())
            .http_secret(HTTP_SECRET)
            .auth(auth.clone())
            .notify(notify);
        Registry::launch(dir, spec)
    })
}

/// A replica's environment: cluster mode on `database_url`, the shared key and secret, its
/// own directory for everything files mode would use, registry calls and garbage collection
/// through `registry_url` and `registry_config`.
pub fn replica_env(
    dir: &Path,
    name: &str,
    database_url: &str,
    registry_url: &str,
    registry_config: &Path,
) -> AppEnv {
    let own = dir.join(format!("replica-{name}"));
    std::fs::create_dir_all(own.join("auth")).unwrap();
    std::fs::create_dir_all(own.join("logs")).unwrap();
    AppEnv::new(&own, registry_url)
        .set("AUTH_MODE", "token")
        .set("DATABASE_URL", database_url)
        .set("TOKEN_SECRET", TOKEN_SECRET)
        .set("REPLICA_ID", &format!("replica-{name}"))
        .set(
            "REGISTRY_TOKEN_KEY",
            &dir.join("auth/token.key").display().to_string(),
        )
        .set("REGISTRY_CONFIG", &registry_config.display().to_string())
        .set("REGISTRY_BIN", &registry_bin().display().to_string())
        .set("GC_UNTAGGED_GRACE", "0")
        // The least allowed: a freeze after a push lasts this plus registry:2's 60 s leeway.
        .set("REGISTRY_TOKEN_TTL", "60")
}

impl ClusterStack {
    /// `None` (after a banner) when a component is not installed and we are not under CI.
    pub fn start() -> Option<ClusterStack> {
        if !ClusterNginx::installed() {
            return None;
        }
        let pg = Postgres::start()?;
        let moto = Moto::start()?;
        let database_url = pg.database("cluster");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("auth")).unwrap();
        let registry_dirs: Vec<PathBuf> = REPLICAS
            .iter()
            .map(|n| dir.path().join(format!("registry-{n}")))
            .collect();
        // Both registries' configs differ only in their port: garbage collection may use either.
        let registry_config = registry_dirs[0].join("registry-config.yml");
        let crt = dir.path().join("auth/token.crt");
        // The balancer's port is in the registries' realm and the replicas' REGISTRY_URL before
        // nginx binds it: if another process takes it first, everything starts again.
        let (nginx, replicas, registries, envs) = on_free_port(|lb_port| {
            let lb = format!("http://127.0.0.1:{lb_port}");
            let envs: Vec<AppEnv> = REPLICAS
                .iter()
                .map(|n| replica_env(dir.path(), n, &database_url, &lb, &registry_config))
                .collect();
            // One after the other: the first writes the shared key and certificate.
            let replicas: Vec<App> = envs.iter().map(AppEnv::start).collect();
            let auth = token_auth(&format!("{lb}/token"), &crt);
            let registries: Vec<Registry> = registry_dirs
                .iter()
                .map(|d| s3_registry(&moto, d, &auth, Some(&lb)))
                .collect();
            let nginx = ClusterNginx::try_start(
                lb_port,
                [addr_of(&replicas[0].url), addr_of(&replicas[1].url)],
                [addr_of(&registries[0].url), addr_of(&registries[1].url)],
            )?;
            Ok::<_, PortTaken>((nginx, replicas, registries, envs))
        });
        Some(ClusterStack {
            nginx,
            replicas,
            registries,
            envs,
            database_url,
            moto,
            pg,
            dir,
        })
    }

    pub fn a(&self) -> &App {
        &self.replicas[0]
    }

    pub fn b(&self) -> &App {
        &self.replicas[1]
    }

    /// SIGKILL of replica `i`, as a crash or an OOM kill would.
    pub fn kill_replica(&mut self, i: usize) {
        self.replicas[i].kill();
    }

    /// `GET /token` on `app` for `scope` with Basic credentials.
    pub fn token(app_url: &str, scope: &str, user: &str, password: &str) -> Response {
        client()
            .get(format!("{app_url}/token"))
            .query(&[("service", SERVICE), ("scope", scope)])
            .basic_auth(user, Some(password))
            .send()
            .expect("GET /token")
    }

    /// The actions a registry token from `app_url` grants `user` on `repository` when it asks
    /// for pull and push.
    pub fn granted(app_url: &str, repository: &str, user: &str, password: &str) -> Vec<String> {
        let r = Self::token(
            app_url,
            &format!("repository:{repository}:pull,push"),
            user,
            password,
        );
        assert_eq!(r.status(), 200, "GET /token at {app_url}");
        let body: Value = r.json().expect("token JSON");
        let claims = super::token_stack::claims(body["token"].as_str().expect("token"));
        claims["access"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    }

    /// Pushes a fresh image of `layers` layers as `name:tag` through nginx with skopeo.
    pub fn push(&self, creds: &str, name: &str, tag: &str, layers: usize) -> Result<(), String> {
        let (_keep, layout, _) = one_image(layers);
        skopeo_ok(&[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &format!("oci:{}:img", layout.dir.display()),
            &format!("docker://{}/{name}:{tag}", self.nginx.host()),
        ])
    }

    /// Pulls `reference` through nginx with skopeo.
    pub fn pull(&self, creds: &str, reference: &str) -> Result<(), String> {
        let into = tempfile::tempdir().unwrap();
        skopeo_ok(&[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            &format!("docker://{}/{reference}", self.nginx.host()),
            &format!("oci:{}:pulled", into.path().display()),
        ])
    }

    /// `skopeo delete` of `reference` through nginx.
    pub fn delete(&self, creds: &str, reference: &str) -> Result<(), String> {
        skopeo_ok(&[
            "delete",
            "--tls-verify=false",
            "--creds",
            creds,
            &format!("docker://{}/{reference}", self.nginx.host()),
        ])
    }

    /// Runs the registry-admin binary with `args` and replica `i`'s environment (or `env`).
    pub fn run_cli(env: &AppEnv, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_registry-admin"));
        cmd.env_clear().args(args).stdin(Stdio::null());
        for (k, v) in &env.vars {
            cmd.env(k, v);
        }
        cmd.output().expect("run registry-admin")
    }
}

/// Pulls `name:tag` straight from `registry_url` with a registry `token`: the manifest and
/// every blob it names (each non-empty); the manifest's bytes, or what went wrong.
pub fn pull_direct(
    registry_url: &str,
    token: &str,
    name: &str,
    tag: &str,
) -> Result<Vec<u8>, String> {
    let c = client();
    let m = c
        .get(format!("{registry_url}/v2/{name}/manifests/{tag}"))
        .bearer_auth(token)
        .header("accept", ACCEPT_ALL)
        .send()
        .map_err(|e| e.to_string())?;
    if m.status() != 200 {
        return Err(format!("manifest: {}", m.status()));
    }
    let raw = m.bytes().map_err(|e| e.to_string())?.to_vec();
    for d in super::gc::named(&raw) {
        let b = c
            .get(format!("{registry_url}/v2/{name}/blobs/{d}"))
            .bearer_auth(token)
            .send()
            .map_err(|e| e.to_string())?;
        let status = b.status();
        let body = b.bytes().map_err(|e| e.to_string())?;
        if status != 200 || body.is_empty() {
            return Err(format!("blob {d}: {status}, {} bytes", body.len()));
        }
        if super::images::sha256(&body) != d {
            return Err(format!("blob {d}: content does not match its digest"));
        }
    }
    Ok(raw)
}

/// `POST /users` on `app`; panics unless 201.
pub fn create_user(app: &App, name: &str, password: &str, role: &str) {
    let r = app.create_user(name, password, role);
    assert_eq!(r.status(), 201, "POST /users {name}: {:?}", r.text());
}

/// `GET /audit/verify` on `app` as the admin.
pub fn verify(app: &App) -> Value {
    let (status, body) = app.admin_json(reqwest::Method::GET, "/audit/verify");
    assert_eq!(status, 200, "{body}");
    body
}
