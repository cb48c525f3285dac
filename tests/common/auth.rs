//! Helpers for API tokens, metrics and throttling that several test files repeat.

use base64::Engine;
use reqwest::Method;

use super::{App, json};

/// The `Authorization` value for HTTP Basic: `Basic base64(user:password)`.
pub fn basic_value(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// `POST /auth/token` with Basic credentials; panics unless it is 200.
pub fn api_token(app: &App, user: &str, password: &str) -> String {
    let (status, body) = json(
        app.request(Method::POST, "/auth/token")
            .basic_auth(user, Some(password))
            .send()
            .expect("POST /auth/token"),
    );
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("a token").to_string()
}

/// The status of `method path` with a bearer token.
pub fn bearer_status(app: &App, token: &str, method: Method, path: &str) -> u16 {
    app.request(method, path)
        .bearer_auth(token)
        .send()
        .expect("request")
        .status()
        .as_u16()
}

/// `/metrics` as the admin sees it.
pub fn metrics_text(app: &App) -> String {
    app.as_admin(Method::GET, "/metrics")
        .send()
        .expect("GET /metrics")
        .text()
        .expect("metrics text")
}

/// The value of one sample in `/metrics`, e.g. `registry_admin_bcrypt_operations_total{op="verify"}`.
pub fn metric(app: &App, sample: &str) -> f64 {
    metrics_text(app)
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in /metrics"))
}
