//! The web UI: static files compiled into the binary (no CDN, no Node at build or run time, so
//! it works offline), served under `/ui/`. The pages log in themselves with `POST /auth/token`,
//! so these routes need no credentials: nothing here is secret, the data comes from the API.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Scripts only from this origin and never inline, so a name or audit field that slipped into
/// the DOM as markup still could not run. Styles: the vendored Swagger UI sets `style`
/// attributes from script, which `style-src 'self'` allows (CSSOM), so no `unsafe-inline`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

// `static ASSETS: &[Asset]`: every file under ui/, written by build.rs (which walks the folder,
// so a new file cannot be left out, and fails the build on a file type it does not know).
include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_ui))
        .route("/ui", web::get().to(to_ui))
        .route("/ui/", web::get().to(index))
        .route("/ui/{file:.+}", web::get().to(file));
}

async fn to_ui() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

async fn index() -> HttpResponse {
    required_page("index.html")
}

async fn file(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("file").unwrap_or_default();
    asset(name)
        .map(serve)
        .ok_or_else(|| ApiError::NotFound("no such file in the web UI".into()))
}

/// The API reference page, also served at `/docs`.
pub fn api_page() -> HttpResponse {
    required_page("api.html")
}

/// A page build.rs guarantees is embedded (it fails the build without it); the 404 is only
/// there so this needs no panic.
fn required_page(path: &str) -> HttpResponse {
    asset(path)
        .map(serve)
        .unwrap_or_else(|| HttpResponse::NotFound().finish())
}

fn serve(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // Embedded files change only with the binary; revalidating is cheap and avoids a stale
        // script after an upgrade.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.body)
}
