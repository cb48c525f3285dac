//! registry-admin: the admin side of a private registry:2.

pub mod api;
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
pub mod http;
pub mod metrics;
pub mod names;
pub mod net;
pub mod paths;
pub mod registry;
pub mod request_id;
pub mod retention;
pub mod robots;
pub mod schedule;
pub mod startup;
pub mod store;
pub mod sync;
pub mod token;
pub mod ui;
pub mod users;
pub mod validate;
pub mod write_guard;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};

use crate::audit::AuditLog;
use crate::audit::burst::BurstTracker;
use crate::audit::events::SeenEvents;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::GrantsStore;
use crate::metrics::Metrics;
use crate::net::ClientAddresses;
use crate::registry::client::RegistryClient;
use crate::registry::delete::TagDeletes;
use crate::robots::RobotsStore;
use crate::token::TokenIssuer;
use crate::users::store::UserStore;

pub use error::MAX_BODY_BYTES;

/// The services, built once at start by [`startup::build`]. Each is registered as its own
/// `web::Data`, and a handler names the ones it uses (`web::Data<UserStore>`, …).
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
    /// Garbage collection: starts jobs, and keeps `gc.json` and the one job this process runs.
    pub gc: Arc<gc::GcService>,
    /// Refused API requests per (actor, action), so repeated refusals are summarised.
    pub refusals: Arc<BurstTracker>,
    /// Token mode: signs `GET /token` answers and registry-admin's own registry tokens.
    pub token_issuer: Option<Arc<TokenIssuer>>,
    /// Retention policies, the push/pull index built from the audit, and recent plans.
    pub retention: Arc<retention::Retention>,
}

impl AppState {
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> std::net::IpAddr {
        self.addresses.client_ip(req)
    }
}

/// Every route of the service: the API, then the UI's files.
pub fn routes(cfg: &mut web::ServiceConfig) {
    api::routes(cfg);
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
            .configure(api::token::routes);
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
        .app_data(web::Data::from(Arc::clone(&state.gc)))
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
        // Innermost first: JSON errors, then the audit entry, then the request id and log line.
        // (Cross-site and non-JSON writes are refused per route, by `Audited`: see write_guard.)
        .wrap(ErrorHandlers::new().default_handler(error::json_error_responses))
        .wrap(from_fn(api::audit_middleware::middleware))
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
        actix_web::rt::spawn(retention::schedule::run(
            schedule,
            Arc::clone(&state.retention),
            services,
            Arc::clone(&state.gc),
        ));
    }
    let state = web::Data::new(state);
    let server = HttpServer::new(move || app(state.clone()))
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
    Ok(server)
}
