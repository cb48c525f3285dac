//! The OpenAPI 3 document, generated from the handlers' annotations so it cannot drift, and a
//! docs page served from the binary itself (no CDN: these machines are often offline).

use actix_web::{HttpResponse, web};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBodyDoc;

#[derive(OpenApi)]
#[openapi(
    info(title = "registry-admin", description = "The admin side of a private registry:2: users in its htpasswd, images, audit."),
    paths(
        crate::health::doc_health,
        crate::health::live,
        crate::health::ready,
        crate::auth::issue_token,
        crate::users::routes::list,
        crate::users::routes::create,
        crate::users::routes::get,
        crate::users::routes::delete,
        crate::users::routes::set_password,
        crate::users::routes::disable,
        crate::users::routes::enable,
        crate::users::routes::set_role,
        crate::registry::routes::catalog,
        crate::registry::routes::doc_list_tags,
        crate::registry::routes::doc_image_details,
        crate::registry::routes::delete,
        crate::registry::routes::doc_list_tags_legacy,
        crate::registry::routes::doc_image_details_legacy,
        crate::registry::routes::doc_delete_legacy,
        crate::grants::routes::overview,
        crate::grants::routes::user_grants,
        crate::grants::routes::set_user_grants,
        crate::grants::routes::set_everyone,
        crate::grants::routes::set_public,
        crate::grants::routes::access,
        crate::token::routes::issue,
        crate::audit::routes::list,
        crate::audit::routes::verify_chain,
        crate::audit::events::receive,
        crate::ops::metrics,
        crate::gc::routes::start,
        crate::gc::routes::list,
        crate::gc::routes::get,
        crate::robots::routes::create,
        crate::robots::routes::list,
        crate::robots::routes::get,
        crate::robots::routes::set_grants,
        crate::robots::routes::rotate,
        crate::robots::routes::delete,
        crate::retention::routes::get_policies,
        crate::retention::routes::put_policies,
        crate::retention::routes::make_plan,
        crate::retention::routes::get_plan,
        crate::retention::routes::apply_plan,
        openapi_json,
        docs,
    ),
    components(schemas(ErrorBodyDoc)),
    modifiers(&Conventions)
)]
pub struct ApiDoc;

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
