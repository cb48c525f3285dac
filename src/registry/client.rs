//! The upstream registry:2 client: pooled connections, timeouts, our service credentials and a
//! recognisable User-Agent, and typed errors instead of panics or hangs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LINK, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Without all four, registry:2 hides OCI content (404), rewrites schema2 to schema1 with a
/// digest that cannot be deleted, or answers a manifest list with its amd64 child.
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

pub const USER_AGENT: &str = concat!("registry-admin/", env!("CARGO_PKG_VERSION"));

/// Catalog page size; registry:2 refuses more than 1000 by default.
const CATALOG_PAGE: usize = 1000;
/// Stops a registry that keeps sending `Link` headers from keeping us busy forever.
const MAX_CATALOG_PAGES: usize = 10_000;

#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error("registry unreachable: {0}")]
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

impl From<reqwest::Error> for UpstreamError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            UpstreamError::Timeout
        } else if e.is_connect() || e.is_request() {
            UpstreamError::Unavailable(root_cause(&e))
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
struct RegistryErrors {
    errors: Vec<RegistryErrorItem>,
}

#[derive(Deserialize)]
struct RegistryErrorItem {
    code: String,
    #[serde(default)]
    message: String,
}

/// A manifest as stored: its bytes, media type and digest (sha256 of exactly these bytes).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Debug, PartialEq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// The registry refused this kind of delete (2.8.2 answers 400 to a delete by tag).
    Refused {
        status: u16,
        code: String,
    },
}

#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    base: Url,
    username: String,
    password: String,
}

impl RegistryClient {
    pub fn new(
        base_url: &str,
        username: String,
        password: String,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<RegistryClient, String> {
        let base = Url::parse(base_url).map_err(|e| format!("REGISTRY_URL: {e}"))?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(3))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // Redirects would carry our credentials elsewhere; registry:2 sends none for the
            // API calls we make.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(RegistryClient {
            http,
            metrics,
            base,
            username,
            password,
        })
    }

    /// `path` is built only from validated names, tags and digests.
    fn url(&self, path: &str) -> Result<Url, UpstreamError> {
        self.base
            .join(path)
            .map_err(|e| UpstreamError::Invalid(format!("bad URL {path:?}: {e}")))
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .basic_auth(&self.username, Some(&self.password))
    }

    async fn send(&self, req: RequestBuilder) -> Result<Response, UpstreamError> {
        let started = Instant::now();
        let result = match req.send().await {
            Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                Err(UpstreamError::Unauthorized)
            }
            Ok(resp) => Ok(resp),
            Err(e) => Err(UpstreamError::from(e)),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(UpstreamError::Unavailable(_)) => "unavailable",
            Err(UpstreamError::Timeout) => "timeout",
            Err(UpstreamError::Unauthorized) => "unauthorized",
            Err(_) => "error",
        };
        self.metrics.upstream(outcome, started.elapsed());
        result
    }

    /// Turns an unexpected answer into an error carrying the registry's own error code.
    async fn unexpected(resp: Response) -> UpstreamError {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<RegistryErrors>(&text)
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .unwrap_or_else(|| text.chars().take(200).collect());
        UpstreamError::Status { status, message }
    }

    async fn error_code(resp: Response) -> String {
        resp.json::<RegistryErrors>()
            .await
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| e.code)
            .unwrap_or_default()
    }

    /// `GET /v2/`: whether the registry is up and accepts our credentials.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let resp = self
            .send(self.request(Method::GET, self.url("/v2/")?))
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Self::unexpected(resp).await)
        }
    }

    /// Every repository, following the registry's pages. The `Link` it sends is a path on the
    /// registry itself, so it is resolved against our base URL.
    pub async fn catalog(&self) -> Result<Vec<String>, UpstreamError> {
        let mut repos = Vec::new();
        let mut url = self.url(&format!("/v2/_catalog?n={CATALOG_PAGE}"))?;
        for _ in 0..MAX_CATALOG_PAGES {
            let resp = self.send(self.request(Method::GET, url.clone())).await?;
            if !resp.status().is_success() {
                return Err(Self::unexpected(resp).await);
            }
            let next = next_link(resp.headers());
            #[derive(Deserialize)]
            struct Page {
                #[serde(default)]
                repositories: Option<Vec<String>>,
            }
            let page: Page = resp.json().await?;
            let got = page.repositories.unwrap_or_default();
            let empty = got.is_empty();
            repos.extend(got);
            match next {
                Some(path) if !empty => url = self.url(&path)?,
                _ => break,
            }
        }
        repos.sort();
        repos.dedup();
        Ok(repos)
    }

    /// Tags of `name`, unsorted as the registry gives them; `None` for an unknown repository.
    pub async fn tags(&self, name: &str) -> Result<Option<Vec<String>>, UpstreamError> {
        let resp = self
            .send(self.request(Method::GET, self.url(&format!("/v2/{name}/tags/list"))?))
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::unexpected(resp).await);
        }
        #[derive(Deserialize)]
        struct TagList {
            // registry:2 answers `null` for a repository whose tags were all deleted.
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let list: TagList = resp.json().await?;
        Ok(Some(list.tags.unwrap_or_default()))
    }

    /// The manifest `reference` (tag or digest) names, as stored; `None` when there is none.
    pub async fn manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(
                self.request(Method::GET, url)
                    .header(ACCEPT, ACCEPT_ALL_MANIFESTS),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::unexpected(resp).await);
        }
        let header_type = content_type(resp.headers());
        let bytes = resp.bytes().await?.to_vec();
        let media_type = media_type_of(&bytes).or(header_type).ok_or_else(|| {
            UpstreamError::Invalid(format!("manifest {name}:{reference} has no media type"))
        })?;
        Ok(Some(Manifest {
            digest: sha256_digest(&bytes),
            media_type,
            bytes,
        }))
    }

    /// The digest and media type `reference` resolves to, by HEAD; `None` when unknown.
    pub async fn resolve(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(
                self.request(Method::HEAD, url)
                    .header(ACCEPT, ACCEPT_ALL_MANIFESTS),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(UpstreamError::Status {
                status: resp.status().as_u16(),
                message: format!("HEAD manifest {name}:{reference}"),
            });
        }
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| UpstreamError::Invalid("no Docker-Content-Digest header".into()))?;
        let media_type = content_type(resp.headers()).unwrap_or_default();
        Ok(Some((digest, media_type)))
    }

    pub async fn blob(&self, name: &str, digest: &str) -> Result<Vec<u8>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/blobs/{digest}"))?;
        let resp = self.send(self.request(Method::GET, url)).await?;
        if !resp.status().is_success() {
            return Err(Self::unexpected(resp).await);
        }
        Ok(resp.bytes().await?.to_vec())
    }

    pub async fn delete_manifest(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<DeleteOutcome, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self.send(self.request(Method::DELETE, url)).await?;
        let status = resp.status();
        match status {
            s if s.is_success() => Ok(DeleteOutcome::Deleted),
            StatusCode::NOT_FOUND => Ok(DeleteOutcome::NotFound),
            StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED => {
                Ok(DeleteOutcome::Refused {
                    status: status.as_u16(),
                    code: Self::error_code(resp).await,
                })
            }
            _ => Err(Self::unexpected(resp).await),
        }
    }

    /// Uploads `bytes` as a blob of `name` (monolithic: POST for a session, PUT with the digest).
    pub async fn upload_blob(&self, name: &str, bytes: Vec<u8>) -> Result<String, UpstreamError> {
        let digest = sha256_digest(&bytes);
        let start = self.url(&format!("/v2/{name}/blobs/uploads/"))?;
        let resp = self.send(self.request(Method::POST, start)).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(Self::unexpected(resp).await);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| UpstreamError::Invalid("upload without Location".into()))?;
        let mut put = self
            .base
            .join(location)
            .map_err(|e| UpstreamError::Invalid(format!("bad upload Location: {e}")))?;
        if put.origin() != self.base.origin() {
            return Err(UpstreamError::Invalid(
                "upload Location points to another host".into(),
            ));
        }
        put.query_pairs_mut().append_pair("digest", &digest);
        let resp = self
            .send(
                self.request(Method::PUT, put)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(Self::unexpected(resp).await);
        }
        Ok(digest)
    }

    /// Stores a manifest under `reference`; returns its digest.
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, UpstreamError> {
        let digest = sha256_digest(&bytes);
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(
                self.request(Method::PUT, url)
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(Self::unexpected(resp).await);
        }
        Ok(digest)
    }
}

fn content_type(h: &HeaderMap) -> Option<String> {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
        .filter(|v| !v.is_empty())
}

fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

/// The target of `Link: <…>; rel="next"`.
fn next_link(h: &HeaderMap) -> Option<String> {
    let link = h.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_link_is_the_registry_relative_path() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static("</v2/_catalog?last=seed%2Fr000&n=2>; rel=\"next\""),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/_catalog?last=seed%2Fr000&n=2")
        );
        assert_eq!(next_link(&HeaderMap::new()), None);
    }

    #[test]
    fn media_type_comes_from_the_manifest_body() {
        assert_eq!(
            media_type_of(
                br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#
            )
            .as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(media_type_of(br#"{"schemaVersion":2}"#), None);
    }
}
