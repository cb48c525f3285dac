//! Image details for the four manifest kinds: OCI manifest, OCI index, Docker schema2 manifest
//! and Docker manifest list. Children of an index are fetched concurrently.
//!
//! What one request may cost is bounded whatever the registry sends: each manifest and config
//! is read against its cap (in the client), an index is followed for at most
//! [`MAX_INDEX_CHILDREN`] children, all reads together stay within [`MAX_DETAILS_BYTES`], and
//! sizes are added with checked arithmetic, so a hostile size is refused rather than wrapped.

use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::names::{Digest, RepoName, Tag};

use super::client::{
    DOCKER_LIST, DOCKER_MANIFEST, MAX_CONFIG_BYTES, Manifest, OCI_INDEX, OCI_MANIFEST,
    RegistryClient, UpstreamError, from_upstream, human_bytes,
};

/// How many children of one index are fetched at once.
const CHILD_CONCURRENCY: usize = 8;
/// Children of an index or manifest list that are followed; real multi-arch images have a
/// handful, so more is refused instead of costing two upstream requests per child.
pub const MAX_INDEX_CHILDREN: usize = 256;
/// Manifests and configs read for one details answer, together. Each may be 4 MiB, but 256
/// children of 8 MiB each would still be 2 GiB read, parsed and kept as layers; real ones are
/// a few KiB, so 256 children of 128 KiB each still fit.
pub const MAX_DETAILS_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Serialize, PartialEq, ToSchema)]
pub struct Platform {
    /// Absent for an artifact (a manifest whose config is not an image config).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Set for an artifact, e.g. `application/vnd.example.sbom.v1+json`: what it is instead of
    /// a platform.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
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
    /// `docker pull …`; null for an artifact, which docker cannot pull.
    pub pull: Option<String>,
    pub pull_by_digest: Option<String>,
    /// Set when the tag names an artifact rather than a runnable image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

/// Config media types of runnable images; any other config makes the manifest an artifact.
const IMAGE_CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    /// The OCI spec makes it an int64: a value above `i64::MAX` fails to parse, a negative one
    /// is refused by [`Descriptor::size`].
    size: i64,
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
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
}

impl ImageManifest {
    /// What the manifest is when it is not a runnable image (OCI 1.1: `artifactType`, else the
    /// config's media type, as oras pushes them).
    fn artifact_type(&self) -> Option<String> {
        let config_type = self.config.media_type.as_str();
        let is_image = IMAGE_CONFIG_TYPES.contains(&config_type);
        match &self.artifact_type {
            Some(t) if !t.is_empty() => Some(t.clone()),
            _ if is_image || config_type.is_empty() => None,
            _ => Some(config_type.to_string()),
        }
    }
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

impl Descriptor {
    fn size(&self) -> Result<u64, UpstreamError> {
        u64::try_from(self.size).map_err(|_| {
            invalid(
                "manifest",
                format!(
                    "descriptor {} has a negative size {}",
                    self.digest, self.size
                ),
            )
        })
    }
}

/// The sum, or an error when it would not fit in a u64: a wrapped sum would report a tiny
/// size for an image the registry claims is enormous.
fn total(sizes: impl IntoIterator<Item = u64>) -> Result<u64, UpstreamError> {
    sizes
        .into_iter()
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| {
            invalid(
                "manifest",
                "sizes add up to more than the u64 cap of 2^64-1 bytes",
            )
        })
}

/// The bytes read so far for one details answer, against [`MAX_DETAILS_BYTES`].
#[derive(Default)]
struct Budget(AtomicU64);

impl Budget {
    fn spend(&self, n: usize) -> Result<(), UpstreamError> {
        let n = n as u64;
        let before = self.0.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > MAX_DETAILS_BYTES {
            return Err(invalid(
                "image details",
                format!(
                    "manifests and configs add up to more than the cap of {} per request",
                    human_bytes(MAX_DETAILS_BYTES)
                ),
            ));
        }
        Ok(())
    }
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
    budget: &Budget,
    name: &RepoName,
    manifest: &Manifest,
    hint: Option<PlatformSpec>,
) -> Result<Platform, UpstreamError> {
    let image: ImageManifest =
        serde_json::from_slice(&manifest.bytes).map_err(|e| invalid("manifest", e))?;
    let config_size = image.config.size()?;
    // Refused before any request when the manifest itself says it is too big; the read is
    // capped as well, for registries whose descriptor does not match the blob.
    if config_size > MAX_CONFIG_BYTES {
        return Err(invalid(
            "manifest",
            format!(
                "config {} of {config_size} bytes is larger than the cap of {}",
                image.config.digest,
                human_bytes(MAX_CONFIG_BYTES)
            ),
        ));
    }
    let artifact_type = image.artifact_type();
    // An artifact's config says nothing about a platform, so it is not fetched at all.
    let config: ImageConfig = if artifact_type.is_some() {
        ImageConfig::default()
    } else {
        let config_bytes = client
            .blob(
                name,
                &from_upstream(Digest::parse(image.config.digest.as_str()))?,
                MAX_CONFIG_BYTES,
            )
            .await?;
        budget.spend(config_bytes.len())?;
        serde_json::from_slice(&config_bytes).unwrap_or_default()
    };
    let hint = hint.unwrap_or_default();
    let pick =
        |a: String, b: String| Some(if a.is_empty() { b } else { a }).filter(|v| !v.is_empty());
    let layers: Vec<Layer> = image
        .layers
        .into_iter()
        .map(|l| {
            Ok(Layer {
                size: l.size()?,
                digest: l.digest,
                media_type: l.media_type,
            })
        })
        .collect::<Result<_, UpstreamError>>()?;
    let size = total(
        [manifest.bytes.len() as u64, config_size]
            .into_iter()
            .chain(layers.iter().map(|l| l.size)),
    )?;
    Ok(Platform {
        os: pick(hint.os, config.platform.os),
        architecture: pick(hint.architecture, config.platform.architecture),
        artifact_type,
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
    name: &RepoName,
    tag: &Tag,
) -> Result<Option<ImageDetails>, UpstreamError> {
    let Some(top) = client.manifest(name, &tag.into()).await? else {
        return Ok(None);
    };
    let budget = Budget::default();
    budget.spend(top.bytes.len())?;
    let (platforms, size) = if is_index(&top.media_type) {
        let index: IndexManifest =
            serde_json::from_slice(&top.bytes).map_err(|e| invalid("index", e))?;
        if index.manifests.len() > MAX_INDEX_CHILDREN {
            return Err(invalid(
                "index",
                format!(
                    "{name}:{tag} lists {} manifests, more than the cap of {MAX_INDEX_CHILDREN} children followed",
                    index.manifests.len()
                ),
            ));
        }
        let budget = &budget;
        let platforms: Vec<Platform> = stream::iter(index.manifests)
            .map(|d| async move {
                d.size()?;
                let digest = from_upstream(Digest::parse(d.digest.as_str()))?;
                let child = client
                    .manifest(name, &digest.into())
                    .await?
                    .ok_or_else(|| invalid("index", format!("child {} is missing", d.digest)))?;
                budget.spend(child.bytes.len())?;
                platform(client, budget, name, &child, d.platform).await
            })
            .buffered(CHILD_CONCURRENCY)
            .try_collect()
            .await?;
        let size =
            total(std::iter::once(top.bytes.len() as u64).chain(platforms.iter().map(|p| p.size)))?;
        (platforms, size)
    } else if is_image(&top.media_type) {
        let p = platform(client, &budget, name, &top, None).await?;
        let size = p.size;
        (vec![p], size)
    } else {
        return Err(invalid(
            "manifest",
            format!("unsupported media type {}", top.media_type),
        ));
    };
    // An artifact at the top (not inside an index of images) cannot be pulled by docker.
    let artifact_type = match platforms.as_slice() {
        [only] if !is_index(&top.media_type) => only.artifact_type.clone(),
        _ => None,
    };
    let runnable = artifact_type.is_none();
    Ok(Some(ImageDetails {
        name: name.to_string(),
        tag: tag.to_string(),
        pull: runnable.then(|| format!("docker pull {public_host}/{name}:{tag}")),
        pull_by_digest: runnable
            .then(|| format!("docker pull {public_host}/{name}@{}", top.digest)),
        artifact_type,
        digest: top.digest,
        media_type: top.media_type,
        platforms,
        size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_add_up_or_are_refused_never_wrapped() {
        assert_eq!(total([1, 2, 3]).ok(), Some(6));
        assert_eq!(total([u64::MAX, 0]).ok(), Some(u64::MAX));
        let err = total([u64::MAX, 1]).expect_err("overflow").to_string();
        assert!(err.contains("u64 cap"), "{err}");
    }

    #[test]
    fn descriptor_sizes_outside_int64_or_negative_are_invalid() {
        let parse = |size: &str| {
            serde_json::from_str::<Descriptor>(&format!(r#"{{"digest":"sha256:0","size":{size}}}"#))
        };
        assert_eq!(parse("42").expect("parse").size().ok(), Some(42));
        assert!(parse("-1").expect("parse").size().is_err());
        assert!(parse("9223372036854775808").is_err());
    }

    #[test]
    fn the_budget_refuses_what_passes_it_in_total() {
        let budget = Budget::default();
        assert!(budget.spend(16 * 1024 * 1024).is_ok());
        assert!(budget.spend(16 * 1024 * 1024).is_ok());
        let err = budget.spend(1).expect_err("over budget").to_string();
        assert!(err.contains("cap of 32 MiB per request"), "{err}");
    }
}
