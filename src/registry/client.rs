//! The upstream registry:2 client: pooled connections, timeouts, credentials from an
//! [`UpstreamAuth`] provider, a recognisable User-Agent, and typed errors instead of panics or
//! hangs. Every body is read against a cap (`limits`) as it arrives. The media types, the
//! credential providers and the error type live beside it (`media`, `upstream_auth`,
//! `upstream_error`) and are re-exported here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LINK, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::names::{Digest, InvalidReference, Reference, RepoName, Tag};

pub use super::limits::*;
pub use super::media::*;
pub use super::upstream_auth::{BasicAuth, UpstreamAuth, UpstreamScope};
use super::upstream_error::RegistryErrors;
pub use super::upstream_error::UpstreamError;

pub const USER_AGENT: &str = concat!("registry-admin/", env!("CARGO_PKG_VERSION"));

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
    auth: Arc<dyn UpstreamAuth>,
}

impl RegistryClient {
    /// A client sending Basic credentials (htpasswd mode).
    pub fn new(
        base_url: &str,
        username: String,
        password: String,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<RegistryClient, String> {
        let auth = Arc::new(BasicAuth::new(username, password));
        Self::with_auth(base_url, auth, timeout, metrics)
    }

    /// A client whose credentials come from `auth`.
    pub fn with_auth(
        base_url: &str,
        auth: Arc<dyn UpstreamAuth>,
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
            auth,
        })
    }

    /// The account registry-admin uses upstream.
    pub fn account(&self) -> &str {
        self.auth.account()
    }

    /// `path` is built only from validated names, tags and digests.
    fn url(&self, path: &str) -> Result<Url, UpstreamError> {
        self.base
            .join(path)
            .map_err(|e| UpstreamError::Invalid(format!("bad URL {path:?}: {e}")))
    }

    fn request(&self, method: Method, url: Url, scope: UpstreamScope<'_>) -> RequestBuilder {
        self.auth.authorize(self.http.request(method, url), &scope)
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
        let text =
            String::from_utf8_lossy(&read_prefix(resp, MAX_ERROR_BODY_BYTES).await).into_owned();
        let message = serde_json::from_str::<RegistryErrors>(&text)
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .unwrap_or_else(|| text.chars().take(200).collect());
        UpstreamError::Status { status, message }
    }

    async fn error_code(resp: Response) -> String {
        serde_json::from_slice::<RegistryErrors>(&read_prefix(resp, MAX_ERROR_BODY_BYTES).await)
            .ok()
            .and_then(|e| e.errors.into_iter().next())
            .map(|e| e.code)
            .unwrap_or_default()
    }

    /// `GET /v2/`: whether the registry is up and accepts our credentials.
    pub async fn ping(&self) -> Result<(), UpstreamError> {
        let resp = self
            .send(self.request(Method::GET, self.url("/v2/")?, UpstreamScope::Base))
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Self::unexpected(resp).await)
        }
    }

    /// Every repository, following the registry's pages. registry:2's `Link` is a path on the
    /// registry itself; a `Link` anywhere else is refused rather than followed, since it would
    /// get our credentials. Pages must advance (`last` grows), or a registry could loop us.
    pub async fn catalog(&self) -> Result<Vec<String>, UpstreamError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Option<Vec<String>>,
        }
        let mut repos = Vec::new();
        let mut bytes_held: u64 = 0;
        let mut url = self.url(&format!("/v2/_catalog?n={CATALOG_PAGE}"))?;
        let mut last: Option<String> = None;
        for _ in 0..MAX_CATALOG_PAGES {
            let resp = self
                .send(self.request(Method::GET, url.clone(), UpstreamScope::Catalog))
                .await?;
            if !resp.status().is_success() {
                return Err(Self::unexpected(resp).await);
            }
            let next = next_link(resp.headers());
            let bytes = read_capped(resp, MAX_CATALOG_PAGE_BYTES, "a catalog page").await?;
            let page: Page =
                serde_json::from_slice(&bytes).map_err(|e| invalid("catalog page", e))?;
            let got = page.repositories.unwrap_or_default();
            if got.len() > MAX_CATALOG_PAGE_REPOSITORIES {
                return Err(invalid(
                    "catalog",
                    format!(
                        "a page lists {} repositories, more than the cap of {MAX_CATALOG_PAGE_REPOSITORIES} repositories per page",
                        got.len()
                    ),
                ));
            }
            if repos.len() + got.len() > MAX_CATALOG_REPOSITORIES {
                return Err(invalid(
                    "catalog",
                    format!("more than the cap of {MAX_CATALOG_REPOSITORIES} repositories"),
                ));
            }
            bytes_held += got.iter().map(|r| r.len() as u64).sum::<u64>();
            if bytes_held > MAX_CATALOG_BYTES {
                return Err(invalid(
                    "catalog",
                    format!(
                        "more than the cap of {} of repository names",
                        human_bytes(MAX_CATALOG_BYTES)
                    ),
                ));
            }
            let empty = got.is_empty();
            repos.extend(got);
            let Some(target) = next.filter(|_| !empty) else {
                repos.sort();
                repos.dedup();
                return Ok(repos);
            };
            url = self.catalog_link(&target)?;
            let next_last = url
                .query_pairs()
                .find(|(k, _)| k == "last")
                .map(|(_, v)| v.into_owned());
            match next_last {
                Some(l) if last.as_ref().is_none_or(|prev| l > *prev) => last = Some(l),
                _ => {
                    return Err(invalid(
                        "catalog",
                        format!(
                            "the next-page Link does not advance past {:?} (a loop); not followed",
                            last.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Err(invalid(
            "catalog",
            format!("more than the cap of {MAX_CATALOG_PAGES} pages"),
        ))
    }

    /// The next catalog page, only if it is on the registry we were configured with.
    fn catalog_link(&self, target: &str) -> Result<Url, UpstreamError> {
        let refuse = || {
            let shown: String = target.chars().take(200).collect();
            invalid(
                "catalog",
                format!(
                    "the next-page Link {shown:?} is not a /v2/_catalog path on REGISTRY_URL; not followed"
                ),
            )
        };
        // registry:2 sends an absolute path; a path relative to the current page is not
        // something it produces, so it is not guessed at.
        if !target.starts_with('/') && Url::parse(target).is_err() {
            return Err(refuse());
        }
        // `join` keeps an absolute target as it is, so the checks below see where the request
        // would really go (a `//host` or `/\host` target resolves to another host too).
        let url = self.base.join(target).map_err(|_| refuse())?;
        let same_origin = url.origin() == self.base.origin()
            && url.username().is_empty()
            && url.password().is_none();
        if !same_origin || url.path() != "/v2/_catalog" {
            return Err(refuse());
        }
        Ok(url)
    }

    /// Tags of `name`, unsorted as the registry gives them; `None` for an unknown repository.
    pub async fn tags(&self, name: &RepoName) -> Result<Option<Vec<String>>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/tags/list"))?;
        let resp = self
            .send(self.request(Method::GET, url, UpstreamScope::pull(name)))
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
        let bytes =
            read_capped(resp, MAX_TAG_LIST_BYTES, &format!("the tag list of {name}")).await?;
        let list: TagList = serde_json::from_slice(&bytes).map_err(|e| invalid("tag list", e))?;
        Ok(Some(list.tags.unwrap_or_default()))
    }

    /// The manifest `reference` (tag or digest) names, as stored; `None` when there is none.
    pub async fn manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<Option<Manifest>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(
                self.request(Method::GET, url, UpstreamScope::pull(name))
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
        let what = format!("manifest {name}:{reference}");
        let bytes = read_capped(resp, MAX_MANIFEST_BYTES, &what).await?;
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
        name: &RepoName,
        reference: &Reference,
    ) -> Result<Option<(String, String)>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(
                self.request(Method::HEAD, url, UpstreamScope::pull(name))
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

    /// A blob of at most `max_bytes`; larger ones are refused, not read.
    pub async fn blob(
        &self,
        name: &RepoName,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Vec<u8>, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/blobs/{digest}"))?;
        let resp = self
            .send(self.request(Method::GET, url, UpstreamScope::pull(name)))
            .await?;
        if !resp.status().is_success() {
            return Err(Self::unexpected(resp).await);
        }
        read_capped(resp, max_bytes, &format!("blob {name}@{digest}")).await
    }

    pub async fn delete_manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<DeleteOutcome, UpstreamError> {
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(self.request(Method::DELETE, url, UpstreamScope::delete(name)))
            .await?;
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

    /// Whether registry:2 accepts an upload start in `name` (`POST /v2/<name>/blobs/uploads/`):
    /// `false` on 405, its answer in read-only mode. An accepted session is cancelled at once,
    /// so the probe leaves no upload behind (and no repository: the catalog lists only
    /// repositories with layers).
    pub async fn uploads_accepted(&self, name: &RepoName) -> Result<bool, UpstreamError> {
        let start = self.url(&format!("/v2/{name}/blobs/uploads/"))?;
        let resp = self
            .send(self.request(Method::POST, start, UpstreamScope::push(name)))
            .await?;
        match resp.status() {
            StatusCode::METHOD_NOT_ALLOWED => Ok(false),
            StatusCode::ACCEPTED => {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| self.base.join(l).ok())
                    .filter(|u| u.origin() == self.base.origin());
                if let Some(url) = location {
                    let _ = self
                        .send(self.request(Method::DELETE, url, UpstreamScope::push(name)))
                        .await;
                }
                Ok(true)
            }
            _ => Err(Self::unexpected(resp).await),
        }
    }

    /// Uploads `bytes` as a blob of `name` (monolithic: POST for a session, PUT with the digest).
    pub async fn upload_blob(
        &self,
        name: &RepoName,
        bytes: Vec<u8>,
    ) -> Result<String, UpstreamError> {
        let digest = sha256_digest(&bytes);
        let start = self.url(&format!("/v2/{name}/blobs/uploads/"))?;
        let resp = self
            .send(self.request(Method::POST, start, UpstreamScope::push(name)))
            .await?;
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
                self.request(Method::PUT, put, UpstreamScope::push(name))
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
        name: &RepoName,
        reference: &Tag,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, UpstreamError> {
        let digest = sha256_digest(&bytes);
        let url = self.url(&format!("/v2/{name}/manifests/{reference}"))?;
        let resp = self
            .send(
                self.request(Method::PUT, url, UpstreamScope::push(name))
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

/// A name, tag or digest the registry sent, checked like any other before it goes back into a
/// URL: one that fails the grammar makes the registry's answer invalid.
pub fn from_upstream<T>(parsed: Result<T, InvalidReference>) -> Result<T, UpstreamError> {
    parsed.map_err(|e| UpstreamError::Invalid(e.to_string()))
}

fn invalid(what: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Invalid(format!("{what}: {e}"))
}

/// The whole body, refused as soon as it would pass `cap`: on a `Content-Length` over the cap
/// before reading anything, otherwise as chunks arrive (the header may be absent or wrong).
async fn read_capped(mut resp: Response, cap: u64, what: &str) -> Result<Vec<u8>, UpstreamError> {
    let too_large = || {
        UpstreamError::Invalid(format!(
            "{what} is larger than the cap of {}",
            human_bytes(cap)
        ))
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    // A lying header must not make us reserve the cap up front for nothing.
    let initial = declared.unwrap_or(0).min(cap).min(MIB);
    let mut buf = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        if (buf.len() as u64).saturating_add(chunk.len() as u64) > cap {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Up to `cap` bytes of the body, for error messages; a failed read gives what arrived.
async fn read_prefix(mut resp: Response, cap: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = usize::try_from(cap)
            .unwrap_or(usize::MAX)
            .saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() as u64 >= cap {
            break;
        }
    }
    buf
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

    fn client(base: &str) -> RegistryClient {
        RegistryClient::new(
            base,
            "svc".into(),
            "pw".into(),
            Duration::from_secs(1),
            Arc::new(Metrics::default()),
        )
        .expect("client")
    }

    #[test]
    fn catalog_links_are_followed_only_on_the_configured_registry() {
        let c = client("http://127.0.0.1:5000");
        for ok in [
            "/v2/_catalog?last=a&n=1000",
            "http://127.0.0.1:5000/v2/_catalog?last=a",
            "HTTP://127.0.0.1:5000/v2/_catalog?last=a",
        ] {
            let url = c.catalog_link(ok).expect(ok);
            assert_eq!(url.host_str(), Some("127.0.0.1"), "{ok}");
        }
        for bad in [
            "http://evil.example/v2/_catalog?last=a",
            "http://127.0.0.1:5001/v2/_catalog?last=a",
            "https://127.0.0.1:5000/v2/_catalog?last=a",
            "http://localhost:5000/v2/_catalog?last=a",
            "//evil.example/v2/_catalog?last=a",
            "/\\evil.example/v2/_catalog?last=a",
            "http://user:pw@127.0.0.1:5000/v2/_catalog?last=a",
            "/v2/app/tags/list",
            "/v2/_catalog/../app/tags/list",
            "/v2/_catalogue?last=a",
            "v2/_catalog?last=a",
        ] {
            let err = c.catalog_link(bad).expect_err(bad).to_string();
            assert!(err.contains("not followed"), "{bad}: {err}");
        }
    }

    #[test]
    fn scopes_are_spelled_as_registry_token_challenges_ask() {
        assert_eq!(UpstreamScope::Base.token_scope(), None);
        assert_eq!(
            UpstreamScope::Catalog.token_scope().as_deref(),
            Some("registry:catalog:*")
        );
        let app = RepoName::parse("team/app").unwrap();
        assert_eq!(
            UpstreamScope::pull(&app).token_scope().as_deref(),
            Some("repository:team/app:pull")
        );
        assert_eq!(
            UpstreamScope::push(&app).token_scope().as_deref(),
            Some("repository:team/app:pull,push")
        );
        assert_eq!(
            UpstreamScope::delete(&app).token_scope().as_deref(),
            Some("repository:team/app:delete")
        );
    }

    #[test]
    fn caps_are_named_in_mebibytes() {
        assert_eq!(human_bytes(MAX_MANIFEST_BYTES), "4 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }

    #[test]
    fn basic_credentials_never_show_in_debug_output() {
        let shown = format!("{:?}", BasicAuth::new("svc".into(), "hunter2".into()));
        assert!(
            shown.contains("svc") && !shown.contains("hunter2"),
            "{shown}"
        );
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
