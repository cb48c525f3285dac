//! The web UI's embedded files as a browser receives them, in-process: content types, the
//! Content-Security-Policy that keeps scripts to our own files, the `/` redirect, and 404s; every
//! file under ui/ is served (build.rs embeds the folder), and the ES modules resolve: every
//! script and `import` reached from the pages is served as JavaScript, and every JavaScript file
//! is reached.

use crate::common;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use actix_web::http::{StatusCode, header};
use actix_web::test::{self, TestRequest};
use regex::Regex;

use common::in_process::TestApp;
use registry_admin::app;

struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Vec<u8>,
}

async fn get(path: &str) -> Answer {
    let t = TestApp::new().build();
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
    assert!(page.contains(r#"<script type="module" src="/ui/js/main.js">"#));
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
        ("/ui/js/main.js", "text/javascript"),
        ("/ui/js/api.js", "text/javascript"),
        ("/ui/js/robots.js", "text/javascript"),
        ("/ui/js/retention.js", "text/javascript"),
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
        // Embedded files change only with the binary: always revalidated.
        assert_eq!(header_of(&a, header::CACHE_CONTROL), "no-cache", "{path}");
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
        "/ui/js/main.js/x",
        "/ui/js/",
        "/ui/main.js",
    ] {
        let a = get(path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert!(header_of(&a, header::CONTENT_TYPE).starts_with("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
    }
}

/// Every file under ui/ as its path below ui/ (`/`-separated), hidden files left out as build.rs
/// leaves them out.
fn files_under_ui() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                let parts: Vec<&str> = relative.iter().map(|c| c.to_str().unwrap()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

#[actix_web::test]
async fn every_file_under_ui_is_served_as_it_is_on_disk_with_its_type() {
    let files = files_under_ui();
    assert!(files.len() > 10, "walked ui/: {files:?}");
    for file in files {
        let a = get(&format!("/ui/{file}")).await;
        assert_eq!(a.status, StatusCode::OK, "/ui/{file} is not served");
        let on_disk = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("ui").join(&file));
        assert!(
            a.body == on_disk.unwrap(),
            "/ui/{file}: not the file on disk"
        );
        let kind = match file.rsplit_once('.').map(|(_, ext)| ext) {
            Some("js") => "text/javascript",
            Some("html") => "text/html",
            Some("css") => "text/css",
            Some("svg") => "image/svg+xml",
            Some(other) => panic!("/ui/{file}: no expected type for .{other} in this test"),
            None => "text/plain",
        };
        let served = header_of(&a, header::CONTENT_TYPE);
        assert!(served.starts_with(kind), "/ui/{file}: {served}");
    }
}

/// The scripts a page loads, as (src, is it a module).
fn scripts_of(page: &str) -> Vec<(String, bool)> {
    let tag = Regex::new(r"<script\b([^>]*)>").unwrap();
    let src = Regex::new(r#"\bsrc="([^"]+)""#).unwrap();
    tag.captures_iter(page)
        .map(|c| {
            let attrs = &c[1];
            let src = src.captures(attrs).unwrap_or_else(|| {
                panic!("a <script> without src (inline scripts break the CSP): {attrs}")
            });
            (src[1].to_string(), attrs.contains(r#"type="module""#))
        })
        .collect()
}

/// The module specifiers of a module: static `import … from`, `export … from`, bare
/// `import "…"` and dynamic `import("…")`.
fn imports_of(module: &str) -> Vec<String> {
    let forms = [
        r#"(?m)^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']"#,
        r#"(?m)^\s*import\s*["']([^"']+)["']"#,
        r#"\bimport\(\s*["']([^"']+)["']\s*\)"#,
    ];
    let mut found = Vec::new();
    for form in forms {
        let re = Regex::new(form).unwrap();
        found.extend(re.captures_iter(module).map(|c| c[1].to_string()));
    }
    found
}

/// `specifier` as the browser resolves it against the URL path `base`.
fn resolve(base: &str, specifier: &str) -> String {
    assert!(
        specifier.starts_with('/') || specifier.starts_with("./") || specifier.starts_with("../"),
        "{base}: {specifier:?} is neither absolute nor relative: a browser cannot load it"
    );
    let mut parts: Vec<&str> = if specifier.starts_with('/') {
        Vec::new()
    } else {
        let dir = &base[..base.rfind('/').unwrap()];
        dir.split('/').filter(|p| !p.is_empty()).collect()
    };
    for part in specifier.split('/').filter(|p| !p.is_empty()) {
        match part {
            "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[test]
fn the_import_scanner_finds_every_form_and_resolves_like_a_browser() {
    let module = r#"
import { a, b } from "./api.js";
import {
  c,
  d,
} from './dom.js';
import * as e from "../lib/e.js";
import "./side-effect.js";
export { f } from "/ui/js/f.js";
const g = await import("./lazy.js");
// "import" in a string or comment is no import: "nothing from here"
"#;
    assert_eq!(
        imports_of(module),
        [
            "./api.js",
            "./dom.js",
            "../lib/e.js",
            "/ui/js/f.js",
            "./side-effect.js",
            "./lazy.js"
        ]
    );
    assert_eq!(resolve("/ui/js/main.js", "./api.js"), "/ui/js/api.js");
    assert_eq!(resolve("/ui/js/main.js", "../app.css"), "/ui/app.css");
    assert_eq!(
        resolve("/ui/js/main.js", "/ui/vendor/x.js"),
        "/ui/vendor/x.js"
    );
    assert_eq!(resolve("/ui/", "./js/main.js"), "/ui/js/main.js");
}

/// Walks the scripts from the pages (index.html, api.html) and, for modules, their imports,
/// through what the server answers: each must be served as JavaScript (a browser refuses a
/// module of another type), no module imports a page's entry script, and every JavaScript file
/// under ui/ must be reached, so a file left out, a wrong path or a dead module fails here, not
/// in a browser.
#[actix_web::test]
async fn every_script_and_import_from_the_pages_is_served_and_every_script_is_reached() {
    let mut queue = VecDeque::new();
    for page in ["/ui/", "/ui/api.html"] {
        let a = get(page).await;
        assert_eq!(a.status, StatusCode::OK, "{page}");
        for (src, module) in scripts_of(&String::from_utf8(a.body).unwrap()) {
            queue.push_back((page.to_string(), resolve(page, &src), module));
        }
    }
    // The pages' own scripts (the shell, main.js): imports point down to the pages and helpers,
    // never back up to a shell.
    let entries: BTreeSet<String> = queue.iter().map(|(_, path, _)| path.clone()).collect();
    let mut reached = BTreeSet::new();
    let mut modules = 0;
    while let Some((from, path, module)) = queue.pop_front() {
        if !reached.insert(path.clone()) {
            continue;
        }
        let a = get(&path).await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{from} loads {path}, which is not served"
        );
        let served = header_of(&a, header::CONTENT_TYPE);
        assert!(served.starts_with("text/javascript"), "{path}: {served}");
        if module {
            modules += 1;
            let text = String::from_utf8(a.body).unwrap();
            for specifier in imports_of(&text) {
                let target = resolve(&path, &specifier);
                assert!(
                    !entries.contains(&target),
                    "{path} imports the entry {target}"
                );
                queue.push_back((path.clone(), target, true));
            }
        }
    }
    assert!(modules > 5, "the app is split into modules: {reached:?}");
    let scripts: BTreeSet<String> = files_under_ui()
        .into_iter()
        .filter(|f| f.ends_with(".js"))
        .map(|f| format!("/ui/{f}"))
        .collect();
    let unreached: Vec<&String> = scripts.difference(&reached).collect();
    assert!(
        unreached.is_empty(),
        "served but loaded by no page: {unreached:?}"
    );
}
