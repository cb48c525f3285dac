//! The application in-process (`actix_web::test`), without a registry or a child process.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web;
use chrono::Utc;
use registry_admin::AppState;
use registry_admin::audit::AuditLog;
use registry_admin::config::Config;
use registry_admin::users::htpasswd::bcrypt_hash;
use registry_admin::users::model::Role;
use registry_admin::users::store::UserStore;

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: web::Data<AppState>,
    pub audit: Arc<AuditLog>,
}

/// An app in a fresh directory: htpasswd and audit log (1 MiB) there, BCRYPT_COST 4, a registry
/// URL that refuses connections, then `settings`. With `users_cost`, `admin` and the user-role
/// `ursula` exist (passwords `NAME-password`, hashed at that cost). The state is made by `make`
/// from the config, store and audit log.
pub fn test_app_with(
    settings: &[(&'static str, &str)],
    users_cost: Option<u32>,
    make: impl FnOnce(Config, Arc<UserStore>, Arc<AuditLog>) -> Result<AppState, String>,
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("BIND_ADDR", "127.0.0.1:0".to_string()),
        ("REGISTRY_URL", "http://127.0.0.1:1".to_string()),
        (
            "HTPASSWD_PATH",
            dir.path().join("htpasswd").display().to_string(),
        ),
        (
            "AUDIT_LOG_PATH",
            dir.path().join("audit.log").display().to_string(),
        ),
        ("BCRYPT_COST", "4".to_string()),
    ]);
    for (key, value) in settings {
        vars.insert(key, value.to_string());
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let store = Arc::new(UserStore::new(&config.htpasswd_path));
    if let Some(cost) = users_cost {
        for (name, role) in [("admin", Role::Admin), ("ursula", Role::User)] {
            let hash = bcrypt_hash(&format!("{name}-password"), cost).unwrap();
            store
                .modify(|a| a.create(name, &hash, role, None, Utc::now()))
                .unwrap();
        }
    }
    let audit = Arc::new(AuditLog::open(&config.audit_log_path, 1 << 20).unwrap());
    let state = make(config, store, Arc::clone(&audit)).unwrap();
    TestApp {
        dir,
        state: web::Data::new(state),
        audit,
    }
}

/// The state of an app in basic-auth mode whose registry credentials are never used.
pub fn basic_mode(
    config: Config,
    store: Arc<UserStore>,
    audit: Arc<AuditLog>,
) -> Result<AppState, String> {
    AppState::new(
        config,
        store,
        ("registry-admin".into(), "unused".into()),
        audit,
    )
}
