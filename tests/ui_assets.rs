//! The web UI's embedded files as a browser receives them, in-process: content types, the
//! Content-Security-Policy that keeps scripts to our own files, the `/` redirect, and 404s.

mod common;

use actix_web::http::{StatusCode, header};
use actix_web::test::{self, TestRequest};

use common::in_process::{self, basic_mode};
use registry_admin::app;

struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

async fn get(path: &str) -> Answer {
    let t = in_process::test_app_with(&[], None, basic_mode);
    let service = test::init_service(app(t.state.clone())).await;
    let resp = test::call_service(&service, TestRequest::get().uri(path).to_request()).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = test::read_body(resp).await.to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn header_of(a: &Answer, name: header::HeaderName) -> &str {
    a.headers
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn script_src(csp: &str) -> &str {
    csp.split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("a script-src directive")
}

#[actix_web::test]
async fn the_ui_page_is_html_with_a_policy_that_allows_only_our_own_scripts() {
    let a = get("/ui/").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(header_of(&a, header::CONTENT_TYPE).starts_with("text/html"));
    let csp = header_of(&a, header::CONTENT_SECURITY_POLICY);
    assert_eq!(script_src(csp), "script-src 'self'");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert!(csp.contains("default-src 'self'"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(header_of(&a, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    let page = String::from_utf8(a.body).unwrap();
    assert!(page.contains("/ui/app.js"));
    assert!(
        !page.contains("<script>") && !page.contains("http://") && !page.contains("https://"),
        "no inline script and nothing from outside"
    );
}

#[actix_web::test]
async fn the_root_and_bare_ui_paths_redirect_to_the_ui() {
    for path in ["/", "/ui"] {
        let a = get(path).await;
        assert!(a.status.is_redirection(), "{path}: {}", a.status);
        assert_eq!(header_of(&a, header::LOCATION), "/ui/");
    }
}

#[actix_web::test]
async fn each_asset_is_served_with_its_content_type_and_the_policy() {
    for (path, kind) in [
        ("/ui/index.html", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/robots.js", "text/javascript"),
        ("/ui/retention.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/api.html", "text/html"),
        ("/ui/api.js", "text/javascript"),
        ("/ui/favicon.svg", "image/svg+xml"),
        ("/ui/vendor/swagger-ui-bundle.js", "text/javascript"),
        ("/ui/vendor/swagger-ui.css", "text/css"),
        ("/ui/vendor/LICENSE", "text/plain"),
    ] {
        let a = get(path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(
            header_of(&a, header::CONTENT_TYPE).starts_with(kind),
            "{path}: {}",
            header_of(&a, header::CONTENT_TYPE)
        );
        assert!(!a.body.is_empty(), "{path} is empty");
        assert!(
            script_src(header_of(&a, header::CONTENT_SECURITY_POLICY)) == "script-src 'self'",
            "{path}"
        );
    }
}

#[actix_web::test]
async fn the_docs_page_is_the_vendored_api_reference() {
    let a = get("/docs").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(header_of(&a, header::CONTENT_TYPE).starts_with("text/html"));
    let page = String::from_utf8(a.body).unwrap();
    assert!(page.contains("/ui/vendor/swagger-ui-bundle.js"));
    assert!(page.contains("/openapi.json"));
}

#[actix_web::test]
async fn an_unknown_asset_is_a_json_404() {
    for path in [
        "/ui/nope.js",
        "/ui/../Cargo.toml",
        "/ui/vendor/",
        "/ui/app.js/x",
    ] {
        let a = get(path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert!(header_of(&a, header::CONTENT_TYPE).starts_with("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
    }
}
