//! registry-admin: the admin side of a private registry:2.

pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod health;
pub mod registry;
pub mod users;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{ErrorHandlers, Logger};
use actix_web::{App, HttpServer, web};

use crate::auth::verify::Verifier;
use crate::config::Config;
use crate::error::ApiError;
use crate::registry::client::RegistryClient;
use crate::registry::delete::RepoLocks;
use crate::users::store::UserStore;

/// Longest wait for one upstream request before answering 504.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
pub struct AppState {
    pub config: Config,
    pub store: Arc<UserStore>,
    pub verifier: Verifier,
    /// Client for registry:2, pooled and with timeouts so a hung registry cannot hang us.
    pub registry: RegistryClient,
    pub repo_locks: RepoLocks,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<UserStore>,
        registry_credentials: (String, String),
    ) -> Result<AppState, String> {
        let verifier = Verifier::new(Arc::clone(&store), config.bcrypt_cost)
            .map_err(|e| format!("bcrypt: {e}"))?;
        let (user, password) = registry_credentials;
        let registry = RegistryClient::new(&config.registry_url, user, password, UPSTREAM_TIMEOUT)?;
        Ok(AppState {
            config,
            store,
            verifier,
            registry,
            repo_locks: RepoLocks::default(),
        })
    }
}

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    users::routes(cfg);
    registry::routes(cfg);
}

/// Starts serving on `listener`; the caller awaits the returned server.
pub fn serve(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_BODY_BYTES)
                    .error_handler(error::json_payload_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
            .wrap(ErrorHandlers::new().default_handler(error::json_error_responses))
            .wrap(Logger::new(r#"%a "%r" %s %b %Dms"#))
            .configure(routes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::NotFound("no such endpoint".into()))
            }))
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    Ok(server)
}
