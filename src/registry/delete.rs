//! Deleting exactly one tag. registry:2 (2.8) cannot delete by tag, and deleting by digest
//! removes every tag sharing that digest. So: try by tag first (newer registries allow it);
//! where refused, resolve the digest with all four media types and look for siblings; with none,
//! delete by digest; otherwise move the tag onto a unique throwaway manifest and delete that
//! (regclient's `regctl tag delete` technique), so the siblings keep their digest.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;

use super::client::{DeleteOutcome, OCI_MANIFEST, RegistryClient, UpstreamError};
use super::details::{child_digests, is_index};

/// How many sibling tags are resolved at once.
const LOOKUP_CONCURRENCY: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The registry deleted the tag itself.
    Tag,
    /// No other tag shared the digest, so the manifest was deleted.
    Digest,
    /// The tag was moved to a throwaway manifest, which was deleted.
    Throwaway,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Tag => "tag",
            Method::Digest => "digest",
            Method::Throwaway => "throwaway",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub name: String,
    pub tag: String,
    pub digest: String,
    /// Tags that pointed at the same digest and still do.
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

/// One lock per repository, so two deletes in one repository never interleave their steps.
#[derive(Default)]
pub struct RepoLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RepoLocks {
    fn get(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = lock(&self.locks);
        // Drop locks nobody holds, so the map does not grow with every repository ever seen.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(name.to_string()).or_default().clone()
    }
}

pub async fn delete_tag(
    client: &RegistryClient,
    locks: &RepoLocks,
    name: &str,
    tag: &str,
) -> Result<Deleted, DeleteError> {
    let lock = locks.get(name);
    let _guard = lock.lock().await;
    let not_found = || DeleteError::NotFound(format!("{name}:{tag}"));

    let (digest, _) = client.resolve(name, tag).await?.ok_or_else(not_found)?;
    let tags = client.tags(name).await?.ok_or_else(not_found)?;
    let others: Vec<String> = tags.into_iter().filter(|t| t != tag).collect();

    // Which other tags share the digest, and whether an index under another tag needs this
    // manifest as a child (deleting it by digest would break that multi-arch image).
    let resolved: Vec<(String, Option<(String, String)>)> = stream::iter(others)
        .map(|t| async move {
            let r = client.resolve(name, &t).await?;
            Ok::<_, UpstreamError>((t, r))
        })
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .try_collect()
        .await?;
    let mut siblings: Vec<String> = Vec::new();
    let mut index_tags: Vec<String> = Vec::new();
    for (t, r) in resolved {
        match r {
            Some((d, _)) if d == digest => siblings.push(t),
            Some((_, media_type)) if is_index(&media_type) => index_tags.push(t),
            _ => {}
        }
    }
    siblings.sort();
    let referenced = is_child_of_any(client, name, &index_tags, &digest).await?;

    let method = match client.delete_manifest(name, tag).await? {
        DeleteOutcome::Deleted => Method::Tag,
        DeleteOutcome::NotFound => return Err(not_found()),
        DeleteOutcome::Refused { status: 405, code } => return Err(DeleteError::Disabled(code)),
        DeleteOutcome::Refused { .. } if siblings.is_empty() && !referenced => {
            match client.delete_manifest(name, &digest).await? {
                DeleteOutcome::Deleted => Method::Digest,
                DeleteOutcome::NotFound => return Err(not_found()),
                DeleteOutcome::Refused { code, .. } => return Err(DeleteError::Disabled(code)),
            }
        }
        DeleteOutcome::Refused { .. } => {
            delete_via_throwaway(client, name, tag).await?;
            Method::Throwaway
        }
    };
    Ok(Deleted {
        name: name.to_string(),
        tag: tag.to_string(),
        digest,
        other_tags: siblings,
        method,
    })
}

async fn is_child_of_any(
    client: &RegistryClient,
    name: &str,
    index_tags: &[String],
    digest: &str,
) -> Result<bool, UpstreamError> {
    let found: Vec<bool> = stream::iter(index_tags)
        .map(|t| async move {
            Ok::<_, UpstreamError>(match client.manifest(name, t).await? {
                Some(m) => child_digests(&m)?.iter().any(|c| c == digest),
                None => false,
            })
        })
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().any(|f| f))
}

/// Points `tag` at a manifest nobody else uses, then deletes that manifest by digest: only
/// `tag` goes with it. Leaves two small blobs for garbage collection.
async fn delete_via_throwaway(
    client: &RegistryClient,
    name: &str,
    tag: &str,
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
            "delete-tag": tag,
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
    match client.delete_manifest(name, &throwaway).await? {
        DeleteOutcome::Deleted => Ok(()),
        DeleteOutcome::NotFound => Err(UpstreamError::Invalid(
            "the throwaway manifest vanished before it could be deleted".into(),
        )
        .into()),
        DeleteOutcome::Refused { code, .. } => Err(DeleteError::Disabled(code)),
    }
}
