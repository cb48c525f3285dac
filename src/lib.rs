//! registry-admin: the admin side of a private registry:2.

pub mod audit;
pub mod auth;
pub mod blocking;
pub mod bootstrap;
pub mod cached_json;
pub mod config;
pub mod directory;
pub mod durable;
pub mod error;
pub mod freeze;
pub mod gc;
pub mod grants;
pub mod health;
pub mod http;
pub mod metrics;
pub mod names;
pub mod net;
pub mod openapi;
pub mod ops;
pub mod paths;
pub mod registry;
pub mod request_id;
pub mod retention;
pub mod robots;
pub mod schedule;
pub mod store;
pub mod sync;
pub mod token;
pub mod ui;
pub mod users;
pub mod write_guard;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};

use crate::audit::AuditLog;
use crate::audit::burst::BurstTracker;
use crate::audit::events::SeenEvents;
use crate::auth::Authenticator;
use crate::auth::limit::FailureLimiter;
use crate::auth::token::TokenSigner;
use crate::auth::verify::Verifier;
use crate::config::Config;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::GrantsStore;
use crate::metrics::Metrics;
use crate::net::ClientAddresses;
use crate::registry::client::{BasicAuth, RegistryClient, UpstreamAuth};
use crate::registry::delete::TagDeletes;
use crate::robots::RobotsStore;
use crate::token::{SelfSignedAuth, TokenIssuer};
use crate::users::store::UserStore;

/// Longest wait for one upstream request before answering 504.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The services, built once at start. Each is registered as its own `web::Data`, and a handler
/// names the ones it uses (`web::Data<UserStore>`, `web::Data<RegistryClient>`, …).
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<UserStore>,
    /// Credentials, throttle and API tokens: what the `Account`/`Admin` extractors use.
    pub auth: Arc<Authenticator>,
    /// Client for registry:2, pooled and with timeouts so a hung registry cannot hang us.
    pub registry: Arc<RegistryClient>,
    pub tag_deletes: Arc<TagDeletes>,
    pub audit: Arc<AuditLog>,
    pub seen_events: Arc<SeenEvents>,
    pub metrics: Arc<Metrics>,
    pub addresses: Arc<ClientAddresses>,
    pub grants: Arc<GrantsStore>,
    /// Accounts, grants and robots as one unit of work (the three stores above).
    pub directory: Arc<directory::Directory>,
    /// `robots.json`, beside grants.json and written under the same lock.
    pub robots: Arc<RobotsStore>,
    pub freeze: Arc<WriteFreeze>,
    /// Garbage-collection jobs: `gc.json` and the one job this process runs.
    pub gc_jobs: Arc<gc::Jobs>,
    /// Refused API requests per (actor, action), so repeated refusals are summarised.
    pub refusals: Arc<BurstTracker>,
    /// Token mode: signs `GET /token` answers and registry-admin's own registry tokens.
    pub token_issuer: Option<Arc<TokenIssuer>>,
    /// Retention policies, the push/pull index built from the audit, and recent plans.
    pub retention: Arc<retention::Retention>,
}

/// How registry-admin proves itself to registry:2.
pub enum Upstream {
    /// htpasswd mode: Basic credentials of an htpasswd account.
    Basic { username: String, password: String },
    /// Token mode: tokens it signs for itself with the registry token key.
    SelfSigned(Arc<TokenIssuer>),
}

impl AppState {
    /// htpasswd mode, toward the registry as `registry_credentials`.
    pub fn new(
        config: Config,
        store: Arc<UserStore>,
        registry_credentials: (String, String),
        audit: Arc<AuditLog>,
    ) -> Result<AppState, String> {
        let (username, password) = registry_credentials;
        Self::with_upstream(config, store, Upstream::Basic { username, password }, audit)
    }

    pub fn with_upstream(
        config: Config,
        store: Arc<UserStore>,
        upstream: Upstream,
        audit: Arc<AuditLog>,
    ) -> Result<AppState, String> {
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
            .map_err(|e| format!("bcrypt: {e}"))?;
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
        )?;
        let gc_jobs = Arc::new(gc::Jobs::beside(&store));
        let seen_events = Arc::new(match &database {
            Some(db) => {
                audit::events::spawn_prune(Arc::clone(db));
                gc::cluster::spawn_watch(
                    Arc::clone(db),
                    Arc::clone(&freeze),
                    Arc::clone(&gc_jobs),
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
            config: Arc::new(config),
            store,
            auth,
            registry: Arc::new(registry),
            tag_deletes: Arc::new(TagDeletes::default()),
            audit,
            seen_events,
            metrics,
            addresses,
            directory,
            grants,
            robots,
            freeze,
            gc_jobs,
            refusals: Arc::new(BurstTracker::default()),
            token_issuer,
            retention,
        })
    }

    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> std::net::IpAddr {
        self.addresses.client_ip(req)
    }
}

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    auth::routes(cfg);
    users::routes(cfg);
    registry::routes(cfg);
    grants::routes(cfg);
    robots::routes(cfg);
    audit::routes::routes(cfg);
    ops::routes(cfg);
    gc::routes(cfg);
    retention::routes(cfg);
    openapi::routes(cfg);
    ui::routes(cfg);
}

/// The whole application: services, extractor settings, middleware and routes. Used by `serve`
/// and, in-process, by tests (`actix_web::test::init_service(app(state))`).
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut app = App::new();
    // Token mode only. In htpasswd mode `/token` is not a route at all, so it is an unknown
    // path (404) that the audit middleware does not mistake for a token request.
    if let Some(issuer) = &state.token_issuer {
        app = app
            .app_data(web::Data::from(Arc::clone(issuer)))
            .configure(token::routes);
    }
    app.app_data(web::Data::from(Arc::clone(&state.config)))
        .app_data(web::Data::from(Arc::clone(&state.store)))
        .app_data(web::Data::from(Arc::clone(&state.auth)))
        .app_data(web::Data::from(Arc::clone(&state.registry)))
        .app_data(web::Data::from(Arc::clone(&state.tag_deletes)))
        .app_data(web::Data::from(Arc::clone(&state.audit)))
        .app_data(web::Data::from(Arc::clone(&state.seen_events)))
        .app_data(web::Data::from(Arc::clone(&state.metrics)))
        .app_data(web::Data::from(Arc::clone(&state.addresses)))
        .app_data(web::Data::from(Arc::clone(&state.grants)))
        .app_data(web::Data::from(Arc::clone(&state.robots)))
        .app_data(web::Data::from(Arc::clone(&state.directory)))
        .app_data(web::Data::from(Arc::clone(&state.freeze)))
        .app_data(web::Data::from(Arc::clone(&state.gc_jobs)))
        .app_data(web::Data::from(Arc::clone(&state.refusals)))
        .app_data(web::Data::from(Arc::clone(&state.retention)))
        .app_data(web::Data::from(Arc::clone(&state.retention.facts)))
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY_BYTES)
                .error_handler(http::extract::json_payload_error),
        )
        .app_data(web::PathConfig::default().error_handler(http::extract::path_error))
        .app_data(web::QueryConfig::default().error_handler(http::extract::query_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        // Innermost first: cross-site and non-JSON writes refused, JSON errors, then the audit
        // entry, then the request id and log line.
        .wrap(from_fn(write_guard::middleware))
        .wrap(ErrorHandlers::new().default_handler(error::json_error_responses))
        .wrap(from_fn(audit::api::middleware))
        .wrap(from_fn(request_id::middleware))
        .configure(routes)
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such endpoint".into()))
        }))
}

/// Starts serving on `listener`; the caller awaits the returned server.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    if let Some(schedule) = state.config.retention_schedule {
        let services = retention::Services {
            registry: Arc::clone(&state.registry),
            locks: Arc::clone(&state.tag_deletes),
            freeze: Arc::clone(&state.freeze),
            audit: Arc::clone(&state.audit),
        };
        let gc_ctx = gc::Context {
            config: Arc::clone(&state.config),
            registry: Arc::clone(&state.registry),
            audit: Arc::clone(&state.audit),
            metrics: Arc::clone(&state.metrics),
            freeze: Arc::clone(&state.freeze),
            jobs: Arc::clone(&state.gc_jobs),
        };
        actix_web::rt::spawn(retention::schedule::run(
            schedule,
            Arc::clone(&state.retention),
            services,
            gc_ctx,
        ));
    }
    let state = web::Data::new(state);
    let server = HttpServer::new(move || app(state.clone()))
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
    Ok(server)
}
