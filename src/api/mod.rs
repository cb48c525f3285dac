//! The HTTP API: each slice's routes, the extractors only they use, and their part of the
//! OpenAPI document, over the domain modules below (users, grants, robots, registry, audit, gc,
//! retention, token). Handlers parse, ask one service, and answer; every route that changes
//! state declares its audit action where it is registered ([`audited`]).

pub mod access;
pub mod audit;
pub mod audit_middleware;
pub mod audited;
pub mod auth;
pub mod events;
pub mod gc;
pub mod grants;
pub mod health;
pub mod images;
pub mod openapi;
pub mod ops;
pub mod retention;
pub mod robots;
pub mod token;
pub mod users;

pub use access::Access;
pub use audited::{AuditAction, Audited};

/// Every API route (`GET /token` is added by `crate::app` in token mode only).
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    health::routes(cfg);
    auth::routes(cfg);
    users::routes(cfg);
    images::routes(cfg);
    grants::routes(cfg);
    robots::routes(cfg);
    audit::routes(cfg);
    ops::routes(cfg);
    gc::routes(cfg);
    retention::routes(cfg);
    openapi::routes(cfg);
}
