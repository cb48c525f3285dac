//! registry-admin: the admin side of a private registry:2.

pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod durable;
pub mod error;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod paths;
pub mod registry;
pub mod request_id;
pub mod sync;
pub mod users;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};

use crate::audit::AuditLog;
use crate::audit::events::SeenEvents;
use crate::auth::limit::FailureLimiter;
use crate::auth::token::TokenSigner;
use crate::auth::verify::Verifier;
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
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
    pub audit: Arc<AuditLog>,
    pub seen_events: SeenEvents,
    pub limiter: FailureLimiter,
    pub tokens: TokenSigner,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<UserStore>,
        registry_credentials: (String, String),
        audit: Arc<AuditLog>,
    ) -> Result<AppState, String> {
        let metrics = Arc::new(Metrics::default());
        let verifier = Verifier::new(Arc::clone(&store), config.bcrypt_cost, Arc::clone(&metrics))
            .map_err(|e| format!("bcrypt: {e}"))?;
        let tokens = TokenSigner::new(
            config.token_secret.as_deref().map(str::as_bytes),
            config.token_ttl,
        );
        let (user, password) = registry_credentials;
        let registry = RegistryClient::new(
            &config.registry_url,
            user,
            password,
            UPSTREAM_TIMEOUT,
            Arc::clone(&metrics),
        )?;
        Ok(AppState {
            config,
            store,
            verifier,
            registry,
            repo_locks: RepoLocks::default(),
            audit,
            seen_events: SeenEvents::default(),
            limiter: FailureLimiter::default(),
            tokens,
            metrics,
        })
    }

    /// The address a request came from: the peer, or, when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` that is not one of our proxies.
    pub fn client_ip(&self, req: &actix_web::HttpRequest) -> IpAddr {
        let peer = req
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let trusted = |ip: &IpAddr| self.config.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return peer;
        }
        // Walk from the right: each trusted proxy appended the address it saw, so the first
        // address that is not one of ours is the client. Anything left of it is the client's
        // own claim; an unparsable entry ends the walk.
        let mut nearest_trusted = None;
        let entries = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for entry in entries.iter().rev() {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) if !trusted(&ip) => return ip,
                Ok(ip) => nearest_trusted = Some(ip),
                Err(_) => break,
            }
        }
        nearest_trusted.unwrap_or(peer)
    }
}

/// Every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    auth::routes(cfg);
    users::routes(cfg);
    registry::routes(cfg);
    audit::routes(cfg);
    metrics::routes(cfg);
    openapi::routes(cfg);
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
            // Innermost first: JSON errors, then the audit entry, then the request id and log line.
            .wrap(ErrorHandlers::new().default_handler(error::json_error_responses))
            .wrap(from_fn(audit::api::middleware))
            .wrap(from_fn(request_id::middleware))
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
