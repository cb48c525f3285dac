//! What can go wrong talking to the registry, each answered as it declares: what the registry
//! did wrong is a bad gateway, its silence a gateway timeout.

use serde::Deserialize;
use thiserror::Error;

use crate::error::ErrorCode;

#[derive(Debug, Error)]
pub enum UpstreamError {
    /// Names the address tried, so an operator sees at once whether REGISTRY_URL is wrong.
    #[error("registry unreachable at {0} (REGISTRY_URL)")]
    Unavailable(String),
    #[error("registry did not answer within the timeout")]
    Timeout,
    #[error(
        "registry rejected registry-admin's credentials (check REGISTRY_USERNAME/REGISTRY_PASSWORD or the service account in htpasswd)"
    )]
    Unauthorized,
    #[error("registry answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("registry sent an unusable response: {0}")]
    Invalid(String),
}

/// What the registry did wrong is a bad gateway; its silence a gateway timeout.
impl ErrorCode for UpstreamError {
    fn status(&self) -> crate::error::StatusCode {
        use crate::error::StatusCode;
        match self {
            UpstreamError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            UpstreamError::Unavailable(_) => "upstream_unavailable",
            UpstreamError::Timeout => "upstream_timeout",
            _ => "upstream_error",
        }
    }
}

impl From<reqwest::Error> for UpstreamError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            UpstreamError::Timeout
        } else if e.is_connect() || e.is_request() {
            let at = e
                .url()
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|| "the registry".into());
            UpstreamError::Unavailable(format!("{at}: {}", root_cause(&e)))
        } else {
            UpstreamError::Invalid(root_cause(&e))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[derive(Deserialize)]
pub(crate) struct RegistryErrors {
    pub(crate) errors: Vec<RegistryErrorItem>,
}

#[derive(Deserialize)]
pub(crate) struct RegistryErrorItem {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
}
