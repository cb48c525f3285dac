//! The OpenAPI 3 document, generated from the handlers' annotations so it cannot drift, and a
//! docs page served from the binary itself (no CDN: these machines are often offline).

use actix_web::{HttpResponse, web};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBodyDoc;

/// The document: the docs endpoints' own paths here, then each slice's, each declared beside
/// the routes it describes (`UsersApi` in `api/users.rs`, …) and merged in by `Slices`.
#[derive(OpenApi)]
#[openapi(
    info(title = "registry-admin", description = "The admin side of a private registry:2: users in its htpasswd, images, audit."),
    paths(openapi_json, docs),
    components(schemas(ErrorBodyDoc)),
    modifiers(&Slices, &Conventions)
)]
pub struct ApiDoc;

/// Each slice's part of the document. `#[openapi(nest(...))]` would put each part under a path
/// prefix, but the slices share prefixes (`/users/{user}/grants` is the grants slice's), so
/// each part names its paths in full and is merged as it is.
struct Slices;

impl Modify for Slices {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        // A schema name two parts both defined would keep the first part's schema only, so
        // no two schemas share a name (a grant explanation's source is `ReasonSource`).
        let parts = [
            crate::api::health::HealthApi::openapi,
            super::auth::AuthApi::openapi,
            crate::api::users::UsersApi::openapi,
            crate::api::images::RegistryApi::openapi,
            crate::api::audit::AuditApi::openapi,
            crate::api::grants::GrantsApi::openapi,
            crate::api::token::TokenApi::openapi,
            crate::api::ops::OpsApi::openapi,
            crate::api::gc::GcApi::openapi,
            crate::api::robots::RobotsApi::openapi,
            crate::api::retention::RetentionApi::openapi,
        ];
        for part in parts {
            api.merge(part());
        }
    }
}

/// What every operation shares: the security schemes, and the JSON error responses that any
/// endpoint can give, so each handler lists only its own successes.
struct Conventions;

const COMMON_ERRORS: [(&str, &str); 9] = [
    ("400", "invalid input"),
    ("401", "missing or invalid credentials"),
    ("403", "not allowed for this account"),
    ("404", "not found"),
    ("405", "method not allowed"),
    (
        "409",
        "conflict (exists, last admin, protected account, maintenance)",
    ),
    ("413", "body over 64 KiB"),
    ("429", "too many failed authentications; see Retry-After"),
    ("500", "internal error"),
];
const UPSTREAM_ERRORS: [(&str, &str); 2] = [
    ("502", "registry unreachable or failing"),
    ("504", "registry timed out"),
];

fn add_errors(op: &mut Operation, upstream: bool) {
    let extra: &[(&str, &str)] = if upstream { &UPSTREAM_ERRORS } else { &[] };
    for (code, what) in COMMON_ERRORS.iter().chain(extra) {
        op.responses
            .responses
            .entry(code.to_string())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(*what)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
}

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "events_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in api.paths.paths.iter_mut() {
            let upstream = path.starts_with("/images")
                || path.starts_with("/health")
                || path.starts_with("/gc")
                || path.starts_with("/retention/plans");
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_errors(op, upstream);
            }
        }
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs));
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "docs", responses((status = 200, description = "OpenAPI 3 document", body = Object)))]
pub(crate) async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The API reference: this document rendered by the web UI's vendored Swagger UI.
#[utoipa::path(get, path = "/docs", tag = "docs", responses((status = 200, description = "HTML page", body = String, content_type = "text/html")))]
pub(crate) async fn docs() -> HttpResponse {
    crate::ui::api_page()
}
