//! Image details for the four manifest kinds: OCI manifest, OCI index, Docker schema2 manifest
//! and Docker manifest list. Children of an index are fetched concurrently.

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::client::{
    DOCKER_LIST, DOCKER_MANIFEST, Manifest, OCI_INDEX, OCI_MANIFEST, RegistryClient, UpstreamError,
};

/// How many children of one index are fetched at once.
const CHILD_CONCURRENCY: usize = 8;

#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub digest: String,
    /// The manifest, its config and its layers.
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageDetails {
    pub name: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    pub platforms: Vec<Platform>,
    pub size: u64,
    pub pull: String,
    pub pull_by_digest: String,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    platform: Option<PlatformSpec>,
}

#[derive(Deserialize, Default, Clone)]
struct PlatformSpec {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct ImageManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct IndexManifest {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(flatten)]
    platform: PlatformSpec,
    #[serde(default)]
    created: Option<String>,
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

fn is_image(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

fn invalid(what: &str, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Invalid(format!("{what}: {e}"))
}

/// The digests of the manifests an index or list refers to.
pub fn child_digests(manifest: &Manifest) -> Result<Vec<String>, UpstreamError> {
    let index: IndexManifest =
        serde_json::from_slice(&manifest.bytes).map_err(|e| invalid("index", e))?;
    Ok(index.manifests.into_iter().map(|d| d.digest).collect())
}

/// Details of one single-platform manifest; `hint` is the platform an index gave for it.
async fn platform(
    client: &RegistryClient,
    name: &str,
    manifest: &Manifest,
    hint: Option<PlatformSpec>,
) -> Result<Platform, UpstreamError> {
    let image: ImageManifest =
        serde_json::from_slice(&manifest.bytes).map_err(|e| invalid("manifest", e))?;
    // A config that is not an image config (an artifact's) still leaves the manifest usable.
    let config: ImageConfig =
        serde_json::from_slice(&client.blob(name, &image.config.digest).await?).unwrap_or_default();
    let hint = hint.unwrap_or_default();
    let pick = |a: String, b: String| if a.is_empty() { b } else { a };
    let layers: Vec<Layer> = image
        .layers
        .into_iter()
        .map(|l| Layer {
            digest: l.digest,
            size: l.size,
            media_type: l.media_type,
        })
        .collect();
    let size = manifest.bytes.len() as u64
        + image.config.size
        + layers.iter().map(|l| l.size).sum::<u64>();
    Ok(Platform {
        os: pick(hint.os, config.platform.os),
        architecture: pick(hint.architecture, config.platform.architecture),
        variant: hint
            .variant
            .or(config.platform.variant)
            .filter(|v| !v.is_empty()),
        digest: manifest.digest.clone(),
        size,
        created: config.created,
        layers,
    })
}

/// Details of `name:tag`, or `None` when the tag does not exist.
pub async fn image_details(
    client: &RegistryClient,
    public_host: &str,
    name: &str,
    tag: &str,
) -> Result<Option<ImageDetails>, UpstreamError> {
    let Some(top) = client.manifest(name, tag).await? else {
        return Ok(None);
    };
    let (platforms, size) = if is_index(&top.media_type) {
        let index: IndexManifest =
            serde_json::from_slice(&top.bytes).map_err(|e| invalid("index", e))?;
        let platforms: Vec<Platform> = stream::iter(index.manifests)
            .map(|d| async move {
                let child = client
                    .manifest(name, &d.digest)
                    .await?
                    .ok_or_else(|| invalid("index", format!("child {} is missing", d.digest)))?;
                platform(client, name, &child, d.platform).await
            })
            .buffered(CHILD_CONCURRENCY)
            .try_collect()
            .await?;
        let size = top.bytes.len() as u64 + platforms.iter().map(|p| p.size).sum::<u64>();
        (platforms, size)
    } else if is_image(&top.media_type) {
        let p = platform(client, name, &top, None).await?;
        let size = p.size;
        (vec![p], size)
    } else {
        return Err(invalid(
            "manifest",
            format!("unsupported media type {}", top.media_type),
        ));
    };
    Ok(Some(ImageDetails {
        name: name.to_string(),
        tag: tag.to_string(),
        pull: format!("docker pull {public_host}/{name}:{tag}"),
        pull_by_digest: format!("docker pull {public_host}/{name}@{}", top.digest),
        digest: top.digest,
        media_type: top.media_type,
        platforms,
        size,
    }))
}
