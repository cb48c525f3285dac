//! The stack in token mode: registry-admin with `AUTH_MODE=token` and a registry whose
//! `auth.token.realm` is registry-admin's `GET /token`. registry-admin starts first so that
//! `token.crt` exists when the registry reads it (it panics otherwise). Plus the real clients:
//! skopeo and podman, each with throwaway auth files and storage in the test's directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::blocking::Response;
use serde_json::Value;

use super::images::{ACCEPT_ALL, one_image};
use super::registry_config::{Auth, RegistryConfig};
use super::skopeo::{skopeo, skopeo_ok};
use super::{ADMIN_PASSWORD, App, AppEnv, PortTaken, Registry, client, on_free_port};

pub const SERVICE: &str = "registry";
pub const ISSUER: &str = "registry-admin";

pub struct TokenStack {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub registry: Registry,
}

impl Registry {
    /// A registry on `port` trusting `bundle`, sending clients to `realm` for tokens and its
    /// events to `app`.
    pub fn try_start_token_realm(
        dir: &Path,
        port: u16,
        realm: &str,
        bundle: &Path,
        app: &str,
    ) -> Result<Registry, PortTaken> {
        assert!(
            bundle.exists(),
            "token.crt must exist before the registry starts"
        );
        let spec = RegistryConfig::new(port, Registry::filesystem(dir))
            .auth(token_auth(realm, bundle))
            .notify(Some(app));
        Registry::launch(dir, spec)
    }
}

/// The `auth:` section of a registry that sends clients to `realm` and trusts `bundle`.
pub fn token_auth(realm: &str, bundle: &Path) -> Auth {
    Auth::token(realm, SERVICE, ISSUER, bundle)
}

impl TokenStack {
    pub fn start() -> TokenStack {
        Self::start_with(|env| env)
    }

    /// [`TokenStack::start`], then `users` (name, role) created with `password`; panics
    /// unless each is 201.
    pub fn start_with_users(users: &[(&str, &str)], password: &str) -> TokenStack {
        let stack = TokenStack::start();
        for (name, role) in users {
            let r = stack.app.create_user(name, password, role);
            assert_eq!(r.status(), 201, "create {name}");
        }
        stack
    }

    pub fn start_with(customise: impl FnOnce(AppEnv) -> AppEnv) -> TokenStack {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, customise)
    }

    /// In `dir`, which may already hold files from an earlier run.
    pub fn start_in(
        dir: tempfile::TempDir,
        customise: impl FnOnce(AppEnv) -> AppEnv,
    ) -> TokenStack {
        let key = dir.path().join("auth/token.key");
        // registry-admin binds a port of its own choosing (no race) and starts first, so that
        // token.crt exists; it needs the registry's address, so that port is picked — and both
        // start again on another if the registry loses it.
        let env = customise(app_env(dir.path(), 1, 0));
        let (app, registry) = on_free_port(|registry_port| {
            let app = env.for_registry_port(registry_port).start();
            let registry = Registry::try_start_token_realm(
                dir.path(),
                registry_port,
                &format!("{}/token", app.url),
                &key.with_file_name("token.crt"),
                &app.url,
            )?;
            Ok((app, registry))
        });
        TokenStack { dir, app, registry }
    }

    /// Starts registry-admin again on the same address (the registry sends clients and
    /// events there) and the same files, with `customise` applied as at the first start. The
    /// old process must be gone (`app.kill()`).
    pub fn restart_app(&mut self, customise: impl FnOnce(AppEnv) -> AppEnv) {
        let app_port: u16 = self
            .app
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the app's port");
        // Same port: the registry sends clients and events there.
        self.app = customise(app_env(self.dir.path(), self.registry.port, app_port)).start();
    }

    /// A registry token for `scope` as `creds` (`None`: anonymous); its `access` claim is what
    /// was granted.
    pub fn registry_token(&self, scope: &str, creds: Option<(&str, &str)>) -> String {
        let r = self.token(&format!("service={SERVICE}&scope={scope}"), creds);
        assert_eq!(r.status(), 200, "GET /token for {scope}");
        let body: Value = r.json().expect("token JSON");
        body["token"].as_str().expect("token").to_string()
    }

    /// The status registry:2 answers to `HEAD /v2/{name}/manifests/{reference}` (all four
    /// manifest types accepted) with an admin's pull token.
    pub fn manifest_status(&self, name: &str, reference: &str) -> u16 {
        let token = self.registry_token(
            &format!("repository:{name}:pull"),
            Some(("admin", ADMIN_PASSWORD)),
        );
        client()
            .head(format!(
                "{}/v2/{name}/manifests/{reference}",
                self.registry.url
            ))
            .bearer_auth(token)
            .header("accept", ACCEPT_ALL)
            .send()
            .expect("HEAD manifest")
            .status()
            .as_u16()
    }

    /// `127.0.0.1:PORT`, as clients name the registry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.registry.port)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The audit entries, oldest first.
    pub fn audit_entries(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("logs/audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line"))
            .collect()
    }

    /// Replaces grants.json whole (temp file and rename, as registry-admin writes it).
    pub fn write_grants(&self, grants: Value) {
        let path = self.path("auth/grants.json");
        let tmp = self.path("auth/.grants.json.test");
        std::fs::write(&tmp, serde_json::to_vec(&grants).unwrap()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// `GET /token` with `query` (already encoded) and optional Basic credentials.
    pub fn token(&self, query: &str, creds: Option<(&str, &str)>) -> Response {
        let mut req = client().get(format!("{}/token?{query}", self.app.url));
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        req.send().expect("GET /token")
    }

    /// Pushes a fresh one-layer image as `name:tag` with skopeo and these credentials
    /// (`user:password`); the output when skopeo fails.
    pub fn skopeo_push(&self, creds: &str, name: &str, tag: &str) -> Result<(), String> {
        let (_keep, layout, _) = one_image(1);
        skopeo_ok(&[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            &format!("oci:{}:img", layout.dir.display()),
            &format!("docker://{}/{name}:{tag}", self.host()),
        ])
    }

    /// Pulls `reference` with skopeo into a fresh layout; `creds` `None` is anonymous.
    pub fn skopeo_pull(&self, creds: Option<&str>, reference: &str) -> Result<(), String> {
        let into = tempfile::tempdir().unwrap();
        let dest = format!("oci:{}:pulled", into.path().display());
        let src = format!("docker://{}/{reference}", self.host());
        let mut args = vec!["copy", "--quiet", "--src-tls-verify=false"];
        match creds {
            Some(c) => args.extend(["--src-creds", c]),
            None => args.push("--src-no-creds"),
        }
        args.extend([src.as_str(), dest.as_str()]);
        skopeo_ok(&args)
    }

    /// `skopeo delete` of `reference` (removes the manifest, as registry:2 deletes by digest).
    pub fn skopeo_delete(&self, creds: &str, reference: &str) -> Result<(), String> {
        skopeo_ok(&[
            "delete",
            "--tls-verify=false",
            "--creds",
            creds,
            &format!("docker://{}/{reference}", self.host()),
        ])
    }

    /// Copies layout tag `from` into podman's storage as `name` (podman itself names images
    /// pulled from a layout after its path).
    pub fn podman_store(&self, layout: &Path, from: &str, name: &str) {
        let base = self.path("podman");
        let storage = format!(
            "containers-storage:[vfs@{}+{}]{name}",
            base.join("root").display(),
            base.join("run").display()
        );
        let out = skopeo(&[
            "copy",
            "--quiet",
            &format!("oci:{}:{from}", layout.display()),
            &storage,
        ]);
        assert!(
            out.status.success(),
            "into podman's storage: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// podman with its own storage, run state and auth file under the test's directory.
    pub fn podman(&self, args: &[&str]) -> Output {
        let base = self.path("podman");
        let auth = base.join("auth.json");
        std::fs::create_dir_all(base.join("xdg")).unwrap();
        Command::new("podman")
            .arg("--root")
            .arg(base.join("root"))
            .arg("--runroot")
            .arg(base.join("run"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(args)
            .env("REGISTRY_AUTH_FILE", &auth)
            .env("XDG_RUNTIME_DIR", base.join("xdg"))
            .env("HOME", &base)
            .output()
            .expect("podman must be installed (the test command installs it)")
    }
}

/// registry-admin's environment in token mode: its address, the registry's, and its key.
fn app_env(dir: &Path, registry_port: u16, app_port: u16) -> AppEnv {
    let key = dir.join("auth/token.key");
    AppEnv::new(dir, &format!("http://127.0.0.1:{registry_port}"))
        .set("AUTH_MODE", "token")
        .set("BIND_ADDR", &format!("127.0.0.1:{app_port}"))
        .set("REGISTRY_TOKEN_KEY", &key.display().to_string())
}

/// The claims of a JWT, without checking it.
pub fn claims(token: &str) -> Value {
    serde_json::from_slice(&jwt_part(token, 1)).expect("JSON claims")
}

/// Part `i` of a JWT (0 header, 1 claims, 2 signature), base64url-decoded.
pub fn jwt_part(token: &str, i: usize) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).expect("three parts"))
        .expect("base64url")
}

/// The libtrust key id of a public key given as DER SubjectPublicKeyInfo, computed here
/// independently of the service: base32 of the first 30 bytes of its SHA-256, in groups of four
/// joined by `:`.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(spki_der);
    let b32 = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}
