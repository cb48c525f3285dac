//! The application in-process (`actix_web::test`), without a registry or a child process,
//! assembled by `registry_admin::startup::build` exactly as `main` assembles it:
//! `TestApp::new().with_users(4).with_env("EVENTS_TOKEN", …).build()`.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::web;
use chrono::Utc;
use registry_admin::AppState;
use registry_admin::audit::AuditLog;
use registry_admin::config::Config;
use registry_admin::names::Role;
use registry_admin::startup;
use registry_admin::users::htpasswd::bcrypt_hash;
use registry_admin::users::store::UserStore;

use super::auth::basic_value;

/// An `Authorization: Basic …` header for a `TestRequest`.
pub fn basic(user: &str, password: &str) -> (header::HeaderName, String) {
    (header::AUTHORIZATION, basic_value(user, password))
}

/// An `Authorization: Bearer TOKEN` header for a `TestRequest`.
pub fn bearer(token: &str) -> (header::HeaderName, String) {
    (header::AUTHORIZATION, format!("Bearer {token}"))
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
    pub audit: Arc<AuditLog>,
}

/// What the app is built from; [`TestAppBuilder::build`] makes it.
pub struct TestAppBuilder {
    dir: tempfile::TempDir,
    vars: HashMap<&'static str, String>,
    users_cost: Option<u32>,
}

impl TestApp {
    /// An app in a fresh directory: htpasswd, audit log (1 MiB) and token key there,
    /// BCRYPT_COST 4, a registry URL that refuses connections, listening on a port it never
    /// serves, and toward the registry as `registry-admin` (credentials never used).
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> TestAppBuilder {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let vars = HashMap::from([
            ("BIND_ADDR", "127.0.0.1:0".to_string()),
            ("REGISTRY_URL", "http://127.0.0.1:1".to_string()),
            ("HTPASSWD_PATH", path("htpasswd")),
            ("AUDIT_LOG_PATH", path("audit.log")),
            ("AUDIT_MAX_BYTES", (1u64 << 20).to_string()),
            ("REGISTRY_TOKEN_KEY", path("token.key")),
            ("REGISTRY_USERNAME", "registry-admin".to_string()),
            ("REGISTRY_PASSWORD", "unused".to_string()),
            ("BCRYPT_COST", "4".to_string()),
            // Without `with_users`, start-up makes this admin rather than print a password.
            ("ADMIN_PASSWORD", "admin-password".to_string()),
        ]);
        TestAppBuilder {
            dir,
            vars,
            users_cost: None,
        }
    }
}

impl TestAppBuilder {
    /// One setting, as the environment would give it.
    pub fn with_env(mut self, key: &'static str, value: &str) -> Self {
        self.vars.insert(key, value.to_string());
        self
    }

    /// `admin` and the user-role `ursula` exist before start (passwords `NAME-password`,
    /// hashed at `cost`).
    pub fn with_users(mut self, cost: u32) -> Self {
        self.users_cost = Some(cost);
        self
    }

    /// Token mode, with a key generated in the app's directory.
    pub fn token_mode(self) -> Self {
        self.with_env("AUTH_MODE", "token")
    }

    pub fn build(self) -> TestApp {
        let TestAppBuilder {
            dir,
            vars,
            users_cost,
        } = self;
        let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        if let Some(cost) = users_cost {
            let store = UserStore::new(&config.htpasswd_path);
            for (name, role) in [("admin", Role::Admin), ("ursula", Role::User)] {
                let hash = bcrypt_hash(&format!("{name}-password"), cost).unwrap();
                store
                    .modify(|a| a.create(name, &hash, role, None, Utc::now()))
                    .unwrap();
            }
        }
        let assembly = startup::build(config).unwrap();
        let audit = Arc::clone(&assembly.state.audit);
        TestApp {
            dir,
            state: web::Data::new(assembly.state),
            audit,
        }
    }
}
