//! The one writer of registry config files for the tests and benches: either auth mode, either
//! registry version (2.8 and 3 read the same keys used here), filesystem, S3 or in-memory
//! storage, and optionally the shared `http.secret`, notifications to registry-admin and extra
//! `storage:` keys (a cache, read-only maintenance).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::EVENTS_TOKEN;

/// How the registry authenticates clients.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Basic auth against an htpasswd file, which must exist before the registry starts
    /// (otherwise the registry provisions a `docker` user of its own).
    Htpasswd { realm: String, path: PathBuf },
    /// Bearer tokens from `realm`, signed by the key whose certificate is `bundle`.
    Token {
        realm: String,
        service: String,
        issuer: String,
        bundle: PathBuf,
    },
}

impl Auth {
    pub fn htpasswd(realm: &str, path: &Path) -> Auth {
        Auth::Htpasswd {
            realm: realm.into(),
            path: path.into(),
        }
    }

    pub fn token(realm: &str, service: &str, issuer: &str, bundle: &Path) -> Auth {
        Auth::Token {
            realm: realm.into(),
            service: service.into(),
            issuer: issuer.into(),
            bundle: bundle.into(),
        }
    }
}

/// Where the registry keeps blobs and manifests. Deletes are always enabled.
#[derive(Clone, Debug)]
pub enum Storage {
    Filesystem(PathBuf),
    /// An S3 bucket at `endpoint` (moto in the tests). A custom endpoint makes the driver use
    /// path-style URLs; `forcepathstyle` says so for registry 3 as well. Redirects are off so
    /// that blob GETs go through the registry (and the load balancer), not to S3.
    S3 {
        endpoint: String,
        bucket: String,
        region: String,
        access_key: String,
        secret_key: String,
    },
    InMemory,
}

/// One registry config; [`RegistryConfig::yaml`] is the file's text.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    pub port: u16,
    pub storage: Storage,
    /// Added under `storage:` (each line indented by two spaces).
    pub storage_extra: String,
    pub auth: Option<Auth>,
    /// `http.secret`: registries sharing storage must share it.
    pub http_secret: Option<String>,
    /// registry-admin's base URL, to which the registry sends every event with `EVENTS_TOKEN`.
    pub notify: Option<String>,
}

impl RegistryConfig {
    pub fn new(port: u16, storage: Storage) -> RegistryConfig {
        RegistryConfig {
            port,
            storage,
            storage_extra: String::new(),
            auth: None,
            http_secret: None,
            notify: None,
        }
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn http_secret(mut self, secret: &str) -> Self {
        self.http_secret = Some(secret.into());
        self
    }

    pub fn notify(mut self, app: Option<&str>) -> Self {
        self.notify = app.map(str::to_string);
        self
    }

    pub fn yaml(&self) -> String {
        let mut y = String::from(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n",
        );
        match &self.storage {
            Storage::Filesystem(root) => {
                let _ = writeln!(y, "  filesystem:\n    rootdirectory: {}", root.display());
            }
            Storage::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
            } => {
                let _ = write!(
                    y,
                    "  s3:\n    accesskey: {access_key}\n    secretkey: {secret_key}\n\
                     \x20   region: {region}\n    regionendpoint: {endpoint}\n    forcepathstyle: true\n\
                     \x20   bucket: {bucket}\n    secure: false\n    v4auth: true\n"
                );
            }
            Storage::InMemory => y.push_str("  inmemory: {}\n"),
        }
        y.push_str(&self.storage_extra);
        y.push_str("  delete:\n    enabled: true\n");
        if matches!(self.storage, Storage::S3 { .. }) {
            y.push_str("  redirect:\n    disable: true\n");
        }
        let _ = writeln!(y, "http:\n  addr: 127.0.0.1:{}", self.port);
        if let Some(secret) = &self.http_secret {
            let _ = writeln!(y, "  secret: {secret}");
        }
        match &self.auth {
            None => {}
            Some(Auth::Htpasswd { realm, path }) => {
                let _ = writeln!(
                    y,
                    "auth:\n  htpasswd:\n    realm: {realm}\n    path: {}",
                    path.display()
                );
            }
            Some(Auth::Token {
                realm,
                service,
                issuer,
                bundle,
            }) => {
                let _ = writeln!(
                    y,
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n\
                     \x20   issuer: {issuer}\n    rootcertbundle: {}",
                    bundle.display()
                );
            }
        }
        if let Some(app) = &self.notify {
            y.push_str(&notifications(app));
        }
        y
    }

    /// Writes the file at `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.yaml()).unwrap();
    }
}

/// The `notifications:` section sending every event to registry-admin at `app`.
pub fn notifications(app: &str) -> String {
    format!(
        "notifications:\n  events:\n    includereferences: true\n  endpoints:\n\
         \x20   - name: registry-admin\n      url: {app}/events\n\
         \x20     headers:\n        Authorization: [\"Bearer {EVENTS_TOKEN}\"]\n\
         \x20     timeout: 2s\n      threshold: 3\n      backoff: 1s\n"
    )
}
