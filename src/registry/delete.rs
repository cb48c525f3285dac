//! Deleting exactly one tag. Deleting a manifest by digest removes every tag pointing at it
//! when the DELETE arrives — including a sibling pushed a moment earlier (a CI promotion), which
//! no listing beforehand can see. So a tag is never deleted by digest:
//! - registry 3 deletes one tag natively (`DELETE /v2/<name>/manifests/<tag>` → 202, siblings
//!   stay): that one request;
//! - registry 2.8 refuses that (400 `DIGEST_INVALID`): the tag is moved onto a unique throwaway
//!   manifest, which is deleted by digest (regclient's `regctl tag delete` technique); the old
//!   manifest stays, untagged, for an untagged garbage collection.
//!
//! Which of the two the registry does is learnt from its answer to the first tag delete and
//! remembered (docs/registry-versions.md). The memory is only a shortcut: a registry that
//! answers otherwise later is followed.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use super::client::{DeleteOutcome, OCI_MANIFEST, RegistryClient, UpstreamError, from_upstream};
use crate::error::{ErrorCode, StatusCode};
use crate::names::{Digest, Reference, RepoName, Tag};

/// How many sibling tags are resolved at once.
const LOOKUP_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The registry deleted the tag itself (registry 3).
    Tag,
    /// The tag was moved to a throwaway manifest, which was deleted (registry 2.8).
    Throwaway,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Tag => "tag",
            Method::Throwaway => "throwaway",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub name: String,
    pub tag: String,
    pub digest: String,
    /// Tags that pointed at the same digest and still do, once the tag is gone.
    pub other_tags: Vec<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub method: Method,
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("tag {0} not found")]
    NotFound(String),
    #[error("the registry refuses deletes ({0}); enable storage.delete in its configuration")]
    Disabled(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl ErrorCode for DeleteError {
    fn status(&self) -> StatusCode {
        match self {
            DeleteError::NotFound(_) => StatusCode::NOT_FOUND,
            DeleteError::Disabled(_) => StatusCode::BAD_GATEWAY,
            DeleteError::Upstream(u) => u.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            DeleteError::NotFound(_) => "not_found",
            DeleteError::Disabled(_) => "upstream_error",
            DeleteError::Upstream(u) => u.code(),
        }
    }
    fn message(&self) -> String {
        match self {
            DeleteError::Upstream(u) => u.message(),
            other => other.to_string(),
        }
    }
}

/// What tag deletes share: one lock per repository, so two deletes in one repository never
/// interleave their steps, and what the registry answered to a native tag delete.
#[derive(Default)]
pub struct TagDeletes {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    native: NativeSupport,
}

impl TagDeletes {
    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = lock(&self.locks);
        // Drop locks nobody holds, so the map does not grow with every repository ever seen.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(name.to_string()).or_default().clone()
    }
}

/// Whether the registry deletes tags natively: 0 until it has answered, then yes or no.
#[derive(Default)]
struct NativeSupport(AtomicU8);

impl NativeSupport {
    const YES: u8 = 1;
    const NO: u8 = 2;

    fn get(&self) -> Option<bool> {
        match self.0.load(Ordering::Relaxed) {
            Self::YES => Some(true),
            Self::NO => Some(false),
            _ => None,
        }
    }

    fn set(&self, native: bool) {
        let v = if native { Self::YES } else { Self::NO };
        self.0.store(v, Ordering::Relaxed);
    }
}

pub async fn delete_tag(
    client: &RegistryClient,
    deletes: &TagDeletes,
    name: &RepoName,
    tag: &Tag,
) -> Result<Deleted, DeleteError> {
    let lock = deletes.lock_for(name);
    let _guard = lock.lock().await;
    let not_found = || DeleteError::NotFound(format!("{name}:{tag}"));

    let (digest, _) = client
        .resolve(name, &tag.into())
        .await?
        .ok_or_else(not_found)?;
    let method = match deletes.native.get() {
        Some(false) => None,
        Some(true) | None => match client.delete_manifest(name, &tag.into()).await? {
            DeleteOutcome::Deleted => {
                deletes.native.set(true);
                Some(Method::Tag)
            }
            DeleteOutcome::NotFound => return Err(not_found()),
            DeleteOutcome::Refused { status: 405, code } => {
                return Err(DeleteError::Disabled(code));
            }
            // 2.8: 400 DIGEST_INVALID, it takes only digests.
            DeleteOutcome::Refused { .. } => {
                deletes.native.set(false);
                None
            }
        },
    };
    let method = match method {
        Some(m) => m,
        None => {
            delete_via_throwaway(client, name, tag).await?;
            Method::Throwaway
        }
    };
    let other_tags = tags_at(client, name, &digest).await?;
    Ok(Deleted {
        name: name.to_string(),
        tag: tag.to_string(),
        digest,
        other_tags,
        method,
    })
}

/// The tags of `name` that point at `digest` now, sorted: listed after the delete, so a sibling
/// pushed while it ran is there too.
async fn tags_at(
    client: &RegistryClient,
    name: &RepoName,
    digest: &str,
) -> Result<Vec<String>, UpstreamError> {
    // A repository whose last tag went lists no tags (2.8: 404 or `null`).
    let tags = client.tags(name).await?.unwrap_or_default();
    let resolved: Vec<(String, Option<(String, String)>)> = stream::iter(tags)
        .map(|t| async move {
            // A tag the registry lists but our grammar refuses cannot be asked about (it
            // would go into a URL): left out, as a tag deleted meanwhile is, and logged.
            let Ok(tag) = Tag::parse(t.as_str()) else {
                log::warn!("leaving out the tag {t:?} of {name}: not a valid tag");
                return Ok((t, None));
            };
            let r = client.resolve(name, &Reference::Tag(tag)).await?;
            Ok::<_, UpstreamError>((t, r))
        })
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .try_collect()
        .await?;
    let mut siblings: Vec<String> = resolved
        .into_iter()
        .filter(|(_, r)| r.as_ref().is_some_and(|(d, _)| d == digest))
        .map(|(t, _)| t)
        .collect();
    siblings.sort();
    Ok(siblings)
}

/// Points `tag` at a manifest nobody else uses, then deletes that manifest by digest: only
/// `tag` goes with it. Leaves two small blobs for garbage collection.
async fn delete_via_throwaway(
    client: &RegistryClient,
    name: &RepoName,
    tag: &Tag,
) -> Result<(), DeleteError> {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let layer = b"{}".to_vec();
    let layer_size = layer.len();
    let layer_digest = client.upload_blob(name, layer).await?;
    let config = serde_json::to_vec(&json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {"Labels": {
            "delete-tag": tag.as_str(),
            "delete-date": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "delete-nonce": hex::encode(nonce),
        }},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
    let config_size = config.len();
    let config_digest = client.upload_blob(name, config).await?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    }))
    .map_err(|e| UpstreamError::Invalid(e.to_string()))?;
    let throwaway = client
        .put_manifest(name, tag, OCI_MANIFEST, manifest)
        .await?;
    let throwaway = Reference::Digest(from_upstream(Digest::parse(throwaway))?);
    match client.delete_manifest(name, &throwaway).await? {
        DeleteOutcome::Deleted => Ok(()),
        DeleteOutcome::NotFound => Err(UpstreamError::Invalid(
            "the throwaway manifest vanished before it could be deleted".into(),
        )
        .into()),
        DeleteOutcome::Refused { code, .. } => Err(DeleteError::Disabled(code)),
    }
}
