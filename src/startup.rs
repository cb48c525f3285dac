//! Start-up: every service built from the config, in one place. `main` calls [`build`] and then
//! [`serve`]; the in-process test app (`tests/common/in_process.rs`) calls [`build`] too, so the
//! tests run the application exactly as it is assembled in production.
//!
//! The order is the one operators see in the start-up messages and exit codes: settings (2),
//! the database (1), the accounts and the admin, the listening socket, the audit log, then the
//! services.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditLog;
use crate::audit::burst::BurstTracker;
use crate::audit::events::SeenEvents;
use crate::auth::Authenticator;
use crate::auth::limit::FailureLimiter;
use crate::auth::token::TokenSigner;
use crate::auth::verify::Verifier;
use crate::bootstrap::{self, AdminOutcome, SERVICE_ACCOUNT, ServiceName};
use crate::config::{AuthMode, Config, ConfigError};
use crate::freeze::WriteFreeze;
use crate::grants::GrantsStore;
use crate::metrics::Metrics;
use crate::net::ClientAddresses;
use crate::registry::client::{BasicAuth, RegistryClient, UpstreamAuth};
use crate::registry::delete::TagDeletes;
use crate::robots::RobotsStore;
use crate::store::rows::spawn_refresh;
use crate::store::{Database, DatabaseError, token_key};
use crate::token::{CertificateStatus, KeyError, KeySetup, SelfSignedAuth, TokenIssuer};
use crate::users::store::UserStore;
use crate::{AppState, directory, gc, retention};

/// Longest wait for one upstream request before answering 504.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the service did not start. A setting that cannot be used exits with 2 (the operator
/// must change it); anything else found wrong while starting exits with 1.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid setting {0}")]
    Setting(#[from] ConfigError),
    /// The key is a setting like any other.
    #[error("invalid setting REGISTRY_TOKEN_KEY: {0}")]
    TokenKey(#[from] KeyError),
    #[error(
        "invalid setting REGISTRY_TOKEN_KEY: this replica's key (kid {ours}) is not the cluster's (kid {theirs}); give every replica the same key file"
    )]
    NotTheClusterKey { ours: String, theirs: String },
    #[error("DATABASE_URL: {0}")]
    Database(#[from] DatabaseError),
    #[error("{}: {source}", dir.display())]
    AuditDirectory {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("BIND_ADDR {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// Accounts, the admin, the audit log or a service could not be set up; says which.
    #[error("{0}")]
    Failed(String),
}

impl StartupError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Setting(_)
            | StartupError::TokenKey(_)
            | StartupError::NotTheClusterKey { .. } => 2,
            _ => 1,
        }
    }

    fn failed(e: impl ToString) -> StartupError {
        StartupError::Failed(e.to_string())
    }
}

/// The application, built and listening; [`serve`] runs it.
pub struct Assembly {
    pub state: AppState,
    pub listener: TcpListener,
}

/// Builds every service from `config`, in the order its checks are reported.
pub fn build(config: Config) -> Result<Assembly, StartupError> {
    let token_key = match config.auth_mode {
        AuthMode::Htpasswd => None,
        AuthMode::Token => Some(crate::token::load_or_generate(
            &config.registry_token.key_path,
        )?),
    };
    let database = open_database(&config, token_key.as_ref())?;
    if let Some(dir) = config
        .audit_log_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StartupError::AuditDirectory {
            dir: dir.to_path_buf(),
            source,
        })?;
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
                Duration::from_secs(t.ttl),
            )))
        }
        None => {
            let (username, password) =
                bootstrap::registry_credentials(&config, &store).map_err(StartupError::failed)?;
            Upstream::Basic { username, password }
        }
    };
    ensure_admin(&config, &store)?;
    let listener = TcpListener::bind(config.bind_addr).map_err(|source| StartupError::Bind {
        addr: config.bind_addr,
        source,
    })?;
    if config.events_token.is_none() {
        log::warn!("EVENTS_TOKEN is unset: registry notifications to /events are refused");
    }
    // Cluster mode: one chain in the database for every replica; AUDIT_LOG_PATH is not used.
    let audit = match store.place().database() {
        Some(db) => AuditLog::open_database(Arc::clone(db)),
        None => AuditLog::open(&config.audit_log_path, config.audit_max_bytes),
    };
    let audit = Arc::new(audit.map_err(StartupError::failed)?);
    if store.place().database().is_none() {
        // Files mode: nothing else runs jobs on these files once this process starts.
        gc::recover(&store, &audit);
    }
    let state = services(config, store, upstream, audit)?;
    Ok(Assembly { state, listener })
}

/// Serves the assembled application until SIGTERM or SIGINT, then writes what the audit log
/// still has queued.
pub fn serve(assembly: Assembly) -> Result<(), StartupError> {
    let Assembly { state, listener } = assembly;
    let addr = listener.local_addr().map_err(StartupError::failed)?;
    let audit = Arc::clone(&state.audit);
    let served = actix_web::rt::System::new().block_on(async move {
        let server = crate::serve(state, listener).map_err(StartupError::failed)?;
        eprintln!("registry-admin: listening on http://{addr}");
        server.await.map_err(StartupError::failed)
    });
    // The server has drained its requests; write what is queued.
    audit.close();
    served
}

/// Cluster mode: the database, and the key every replica must share, before anything else.
fn open_database(
    config: &Config,
    token_key: Option<&KeySetup>,
) -> Result<Option<Arc<Database>>, StartupError> {
    let Some(cluster) = &config.cluster else {
        return Ok(None);
    };
    let db = Database::open(
        &cluster.database_url,
        &cluster.replica_id,
        cluster.pool_size,
    )?;
    if let Some(setup) = token_key
        && let Some(theirs) = token_key::claim(&db, setup.key.kid())?
    {
        return Err(StartupError::NotTheClusterKey {
            ours: setup.key.kid().to_string(),
            theirs,
        });
    }
    Ok(Some(db))
}

/// The accounts and what changes with them: files beside htpasswd, or in cluster mode the
/// database (migrated, and refreshed in the background from here on).
fn open_accounts(
    config: &Config,
    database: Option<Arc<Database>>,
) -> Result<Arc<UserStore>, StartupError> {
    let (Some(cluster), Some(db)) = (&config.cluster, database) else {
        let store = Arc::new(UserStore::new(&config.htpasswd_path));
        store.clean_leftovers().map_err(StartupError::failed)?;
        if let Some(warning) = crate::config::htpasswd_exposure(&config.htpasswd_path) {
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
fn token_mode_accounts(config: &Config, store: &UserStore) -> Result<(), StartupError> {
    if config.registry_credentials.is_some() {
        log::warn!(
            "REGISTRY_USERNAME and REGISTRY_PASSWORD are ignored in token mode: registry-admin \
             signs its own registry tokens as {SERVICE_ACCOUNT:?}"
        );
    }
    match bootstrap::retire_service_account(config, store).map_err(StartupError::failed)? {
        ServiceName::Free => {}
        ServiceName::HeldByAccount => log::warn!(
            "an account named {SERVICE_ACCOUNT:?} exists; that name is registry-admin's own \
             registry subject in token mode, so GET /token never issues to it"
        ),
    }
    Ok(())
}

/// An enabled admin exists from here on.
fn ensure_admin(config: &Config, store: &UserStore) -> Result<(), StartupError> {
    match bootstrap::ensure_admin(config, store).map_err(StartupError::failed)? {
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
    Ok(())
}

/// How registry-admin proves itself to registry:2.
enum Upstream {
    /// htpasswd mode: Basic credentials of an htpasswd account.
    Basic { username: String, password: String },
    /// Token mode: tokens it signs for itself with the registry token key.
    SelfSigned(Arc<TokenIssuer>),
}

/// The services the handlers use, over the accounts and the audit log opened above.
fn services(
    config: Config,
    store: Arc<UserStore>,
    upstream: Upstream,
    audit: Arc<AuditLog>,
) -> Result<AppState, StartupError> {
    // Cluster mode: the freeze, event ids and failed logins are shared through the
    // database (each starts its own background reader).
    let database = store.place().database().cloned();
    let freeze = Arc::new(match &database {
        Some(db) => WriteFreeze::clustered(Arc::clone(db)),
        None => WriteFreeze::default(),
    });
    let metrics = Arc::new(Metrics::default());
    let grants = Arc::new(GrantsStore::at(store.place()));
    let robots = Arc::new(RobotsStore::at(store.place()));
    let addresses = Arc::new(ClientAddresses::new(config.trusted_proxies.clone()));
    let verifier = Verifier::new(Arc::clone(&store), config.bcrypt_cost, Arc::clone(&metrics))
        .map_err(|e| StartupError::Failed(format!("bcrypt: {e}")))?;
    let tokens = TokenSigner::new(
        config.token_secret.as_deref().map(str::as_bytes),
        config.token_ttl,
    );
    let auth = Arc::new(Authenticator {
        verifier,
        limiter: Arc::new(match &database {
            Some(db) => FailureLimiter::default().shared_with(Arc::clone(db)),
            None => FailureLimiter::default(),
        }),
        tokens,
        addresses: Arc::clone(&addresses),
    });
    let (upstream_auth, token_issuer): (Arc<dyn UpstreamAuth>, _) = match upstream {
        Upstream::Basic { username, password } => {
            (Arc::new(BasicAuth::new(username, password)), None)
        }
        Upstream::SelfSigned(issuer) => {
            // Push and delete tokens that an earlier process signed with this key may still
            // be valid, and nothing recorded them: a garbage collection must assume one
            // issued just before this start. (In cluster mode every replica records its
            // write tokens in the database before issuing them.)
            if database.is_none() {
                freeze.note_write_token(chrono::Utc::now() + issuer.ttl());
            }
            (
                Arc::new(SelfSignedAuth::new(
                    Arc::clone(&issuer),
                    Arc::clone(&freeze),
                )),
                Some(issuer),
            )
        }
    };
    let registry = RegistryClient::with_auth(
        &config.registry_url,
        upstream_auth,
        UPSTREAM_TIMEOUT,
        Arc::clone(&metrics),
    )
    .map_err(StartupError::Failed)?;
    let config = Arc::new(config);
    let registry = Arc::new(registry);
    // Garbage collection: its jobs, and in cluster mode the watch on the shared freeze.
    let gc = Arc::new(gc::GcService::new(
        store.place(),
        Arc::clone(&config),
        Arc::clone(&registry),
        Arc::clone(&audit),
        Arc::clone(&metrics),
        Arc::clone(&freeze),
    ));
    let seen_events = Arc::new(match &database {
        Some(db) => {
            crate::audit::events::spawn_prune(Arc::clone(db));
            gc::cluster::spawn_watch(
                Arc::clone(db),
                Arc::clone(&freeze),
                Arc::clone(gc.jobs_store()),
                Arc::clone(&audit),
            );
            SeenEvents::shared(Arc::clone(db))
        }
        None => SeenEvents::default(),
    });
    let retention = Arc::new(retention::Retention::new(
        retention::store::PolicyStore::at(store.place()),
        retention::Facts::from_source(audit.source()),
        match store.place().database() {
            Some(db) => retention::plan::PlanStore::Database(Arc::clone(db)),
            None => retention::plan::PlanStore::default(),
        },
    ));
    let directory = Arc::new(directory::Directory {
        users: Arc::clone(&store),
        grants: Arc::clone(&grants),
        robots: Arc::clone(&robots),
    });
    Ok(AppState {
        config,
        store,
        auth,
        registry,
        tag_deletes: Arc::new(TagDeletes::default()),
        audit,
        seen_events,
        metrics,
        addresses,
        directory,
        grants,
        robots,
        freeze,
        gc,
        refusals: Arc::new(BurstTracker::default()),
        token_issuer,
        retention,
    })
}
