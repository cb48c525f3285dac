mod cli;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use registry_admin::audit::AuditLog;
use registry_admin::bootstrap::{self, AdminOutcome, SERVICE_ACCOUNT, ServiceName};
use registry_admin::config::{AuthMode, Config};
use registry_admin::store::rows::spawn_refresh;
use registry_admin::store::{Database, token_key};
use registry_admin::token::{CertificateStatus, KeySetup, TokenIssuer, load_or_generate};
use registry_admin::users::store::UserStore;
use registry_admin::{AppState, Upstream, serve};

fn main() -> ExitCode {
    // Before anything else: --help, --version and usage errors print and exit here, having
    // read no setting and touched no file.
    let args = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    cli::run(args.command.unwrap_or(cli::Command::Serve), run_service)
}

/// `registry-admin` / `registry-admin serve`.
fn run_service() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("registry-admin: invalid setting {e}");
            return ExitCode::from(2);
        }
    };
    // The key is a setting like any other: one that cannot be used stops start-up with 2.
    let token_key = match config.auth_mode {
        AuthMode::Htpasswd => None,
        AuthMode::Token => match load_or_generate(&config.registry_token.key_path) {
            Ok(setup) => Some(setup),
            Err(e) => {
                eprintln!("registry-admin: invalid setting REGISTRY_TOKEN_KEY: {e}");
                return ExitCode::from(2);
            }
        },
    };
    // Cluster mode: the database, and the key every replica must share, before anything else.
    let database = match &config.cluster {
        None => None,
        Some(cluster) => {
            let db = match Database::open(
                &cluster.database_url,
                &cluster.replica_id,
                cluster.pool_size,
            ) {
                Ok(db) => db,
                Err(e) => {
                    eprintln!("registry-admin: DATABASE_URL: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(setup) = &token_key {
                match token_key::claim(&db, setup.key.kid()) {
                    Ok(None) => {}
                    Ok(Some(theirs)) => {
                        eprintln!(
                            "registry-admin: invalid setting REGISTRY_TOKEN_KEY: this replica's key (kid {}) is not the cluster's (kid {theirs}); give every replica the same key file",
                            setup.key.kid()
                        );
                        return ExitCode::from(2);
                    }
                    Err(e) => {
                        eprintln!("registry-admin: DATABASE_URL: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            Some(db)
        }
    };
    match start(config, token_key, database) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry-admin: {e}");
            ExitCode::FAILURE
        }
    }
}
/// Says what token mode runs with; the kid is what registry:2 will look the key up by.
fn report_token_key(setup: &KeySetup) {
    let (key, cert) = (setup.key_path.display(), setup.cert_path.display());
    let kid = setup.key.kid();
    if setup.key_generated {
        log::info!("token mode: generated a new signing key {key} (kid {kid})");
    } else {
        log::info!("token mode: signing key {key} (kid {kid})");
    }
    match setup.certificate {
        CertificateStatus::Written => log::info!(
            "token mode: wrote {cert}; give it to registry:2 as auth.token.rootcertbundle"
        ),
        CertificateStatus::Matches => {
            log::info!("token mode: {cert} is the certificate of this key")
        }
        CertificateStatus::DoesNotMatch => log::warn!(
            "token mode: {cert} holds no certificate of the key {key}: a registry:2 given it as \
             its rootcertbundle refuses every token; remove it to have it written again"
        ),
    }
}

/// Token mode: no htpasswd account toward the registry, and the settings for one unused.
fn token_mode_accounts(config: &Config, store: &UserStore) -> Result<(), String> {
    if config.registry_credentials.is_some() {
        log::warn!(
            "REGISTRY_USERNAME and REGISTRY_PASSWORD are ignored in token mode: registry-admin \
             signs its own registry tokens as {SERVICE_ACCOUNT:?}"
        );
    }
    match bootstrap::retire_service_account(config, store).map_err(|e| e.to_string())? {
        ServiceName::Free => {}
        ServiceName::HeldByAccount => log::warn!(
            "an account named {SERVICE_ACCOUNT:?} exists; that name is registry-admin's own \
             registry subject in token mode, so GET /token never issues to it"
        ),
    }
    Ok(())
}

/// The accounts and what changes with them: files beside htpasswd, or in cluster mode the
/// database (migrated, and refreshed in the background from here on).
fn open_accounts(
    config: &Config,
    database: Option<Arc<Database>>,
) -> Result<Arc<UserStore>, String> {
    let (Some(cluster), Some(db)) = (&config.cluster, database) else {
        let store = Arc::new(UserStore::new(&config.htpasswd_path));
        store.clean_leftovers().map_err(|e| e.to_string())?;
        if let Some(warning) = registry_admin::config::htpasswd_exposure(&config.htpasswd_path) {
            log::warn!("{warning}");
        }
        return Ok(store);
    };
    spawn_refresh(Arc::clone(&db));
    log::info!(
        "cluster mode: replica {:?}, state in PostgreSQL",
        cluster.replica_id
    );
    Ok(Arc::new(UserStore::in_database(db)))
}

fn start(
    config: Config,
    token_key: Option<KeySetup>,
    database: Option<Arc<Database>>,
) -> Result<(), String> {
    if let Some(dir) = config
        .audit_log_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let store = open_accounts(&config, database)?;
    let upstream = match token_key {
        Some(setup) => {
            report_token_key(&setup);
            token_mode_accounts(&config, &store)?;
            let t = &config.registry_token;
            Upstream::SelfSigned(Arc::new(TokenIssuer::new(
                setup.key,
                t.issuer.clone(),
                t.service.clone(),
                std::time::Duration::from_secs(t.ttl),
            )))
        }
        None => {
            let (username, password) =
                bootstrap::registry_credentials(&config, &store).map_err(|e| e.to_string())?;
            Upstream::Basic { username, password }
        }
    };
    match bootstrap::ensure_admin(&config, &store).map_err(|e| e.to_string())? {
        AdminOutcome::Present => {}
        AdminOutcome::Ensured {
            username,
            generated: Some(password),
        } => {
            // Printed once, on stderr only, never through the logger: the operator's one chance.
            eprintln!(
                "registry-admin: created admin account {username:?} with password: {password}"
            );
        }
        AdminOutcome::Ensured { username, .. } => {
            log::warn!("no enabled admin existed; {username:?} is now an enabled admin");
        }
    }
    let listener = TcpListener::bind(config.bind_addr)
        .map_err(|e| format!("BIND_ADDR {}: {e}", config.bind_addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if config.events_token.is_none() {
        log::warn!("EVENTS_TOKEN is unset: registry notifications to /events are refused");
    }
    // Cluster mode: one chain in the database for every replica; AUDIT_LOG_PATH is not used.
    let audit = match store.place().database() {
        Some(db) => AuditLog::open_database(Arc::clone(db)),
        None => AuditLog::open(&config.audit_log_path, config.audit_max_bytes),
    };
    let audit = Arc::new(audit.map_err(|e| e.to_string())?);
    if store.place().database().is_none() {
        // Files mode: nothing else runs jobs on these files once this process starts.
        registry_admin::gc::recover(&store, &audit);
    }
    let state = AppState::with_upstream(config, store, upstream, Arc::clone(&audit))?;
    let served = actix_web::rt::System::new().block_on(async move {
        let server = serve(state, listener).map_err(|e| e.to_string())?;
        eprintln!("registry-admin: listening on http://{addr}");
        server.await.map_err(|e| e.to_string())
    });
    // The server has drained its requests (SIGTERM or SIGINT); write what is queued.
    audit.close();
    served
}
