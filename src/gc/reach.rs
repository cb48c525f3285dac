//! Which manifests of a repository something still needs: every manifest a tag resolves to,
//! and, through indexes and manifest lists, every child they name (recursively: an index may
//! name an index). `garbage-collect --delete-untagged` gets exactly this wrong for children
//! (docs/registry-facts.md, "Garbage collection"), which is why a job works it out itself and
//! deletes only the rest.
//!
//! Resolution asks with all four manifest types (the client sends them) and takes the digest
//! the registry names in `Docker-Content-Digest`, never one computed here, so a manifest the
//! registry stores in a form we do not hash the same way is still recognised as reachable.
//! When in doubt the answer is "reachable": an error aborts the job before anything is deleted.

use std::collections::BTreeSet;
use std::future::Future;

use serde::Deserialize;
use thiserror::Error;

use crate::names::{Digest, Reference, RepoName, Tag};
use crate::registry::client::{Manifest, RegistryClient, UpstreamError, from_upstream};
use crate::registry::details::is_index;

/// Indexes nested deeper than this are refused rather than followed (real ones nest once).
pub const MAX_DEPTH: usize = 8;
/// Index manifests read for one repository; past this the job stops rather than guess.
pub const MAX_INDEXES_PER_REPOSITORY: usize = 10_000;

#[derive(Debug, Error)]
pub enum ReachError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Limit(String),
    #[error("manifest {digest} of {name} cannot be read as an index: {reason}")]
    BadIndex {
        name: String,
        digest: String,
        reason: String,
    },
}

/// The reads reachability needs, so it can be tested without a registry.
pub trait ManifestSource {
    /// Tags of `name`; `None` when the repository is unknown.
    fn tags(&self, name: &str) -> impl Future<Output = Result<Option<Vec<String>>, UpstreamError>>;
    /// (digest, media type) of a tag or digest; `None` when unknown.
    fn resolve(
        &self,
        name: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>, UpstreamError>>;
    /// The manifest a digest names, as stored; `None` when unknown.
    fn manifest(
        &self,
        name: &str,
        digest: &str,
    ) -> impl Future<Output = Result<Option<Manifest>, UpstreamError>>;
}

/// The names, tags and digests here come from the registry's own answers; they are parsed
/// before they go back into a URL.
impl ManifestSource for RegistryClient {
    async fn tags(&self, name: &str) -> Result<Option<Vec<String>>, UpstreamError> {
        RegistryClient::tags(self, &from_upstream(RepoName::parse(name))?).await
    }

    async fn resolve(
        &self,
        name: &str,
        reference: &str,
    ) -> Result<Option<(String, String)>, UpstreamError> {
        let name = from_upstream(RepoName::parse(name))?;
        // A digest or a tag, whichever grammar it meets.
        let reference = match Digest::parse(reference) {
            Ok(digest) => Reference::Digest(digest),
            Err(_) => Reference::Tag(from_upstream(Tag::parse(reference))?),
        };
        RegistryClient::resolve(self, &name, &reference).await
    }

    async fn manifest(&self, name: &str, digest: &str) -> Result<Option<Manifest>, UpstreamError> {
        let name = from_upstream(RepoName::parse(name))?;
        let digest = from_upstream(Digest::parse(digest))?;
        RegistryClient::manifest(self, &name, &digest.into()).await
    }
}

#[derive(Deserialize)]
struct ChildDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<ChildDescriptor>,
}

/// Walks from roots to everything they name, within one repository.
struct Walk<'a, S> {
    src: &'a S,
    name: &'a str,
    seen: BTreeSet<String>,
    indexes_read: usize,
}

impl<S: ManifestSource> Walk<'_, S> {
    /// Adds `digest` and, if it is an index, what it names. `media_type` as far as known
    /// (empty: ask the registry).
    async fn visit(&mut self, digest: String, media_type: String) -> Result<(), ReachError> {
        // An explicit stack rather than recursion: async recursion needs boxing, and the depth
        // is checked either way.
        let mut stack = vec![(digest, media_type, 0usize)];
        while let Some((digest, mut media_type, depth)) = stack.pop() {
            if !self.seen.insert(digest.clone()) {
                continue;
            }
            if media_type.is_empty() {
                match self.src.resolve(self.name, &digest).await? {
                    Some((_, t)) => media_type = t,
                    // Named by an index but not stored: nothing here to keep or delete.
                    None => continue,
                }
            }
            if !is_index(&media_type) {
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(ReachError::Limit(format!(
                    "{}@{digest}: indexes nested deeper than {MAX_DEPTH}",
                    self.name
                )));
            }
            self.indexes_read += 1;
            if self.indexes_read > MAX_INDEXES_PER_REPOSITORY {
                return Err(ReachError::Limit(format!(
                    "{}: more than {MAX_INDEXES_PER_REPOSITORY} index manifests",
                    self.name
                )));
            }
            let Some(manifest) = self.src.manifest(self.name, &digest).await? else {
                continue;
            };
            let index: Index =
                serde_json::from_slice(&manifest.bytes).map_err(|e| ReachError::BadIndex {
                    name: self.name.to_string(),
                    digest: digest.clone(),
                    reason: e.to_string(),
                })?;
            for child in index.manifests {
                stack.push((child.digest, child.media_type, depth + 1));
            }
        }
        Ok(())
    }
}

/// Every manifest digest of `name` that one of its tags reaches.
pub async fn reachable<S: ManifestSource>(
    src: &S,
    name: &str,
) -> Result<BTreeSet<String>, ReachError> {
    let mut walk = Walk {
        src,
        name,
        seen: BTreeSet::new(),
        indexes_read: 0,
    };
    for tag in src.tags(name).await?.unwrap_or_default() {
        // A listed tag that no longer resolves points at nothing stored, so it protects
        // nothing either.
        if let Some((digest, media_type)) = src.resolve(name, &tag).await? {
            walk.visit(digest, media_type).await?;
        }
    }
    Ok(walk.seen)
}

/// `kept` and everything the indexes among them name: an untagged index that is kept (too
/// young to delete) must keep its children too.
pub async fn with_children<S: ManifestSource>(
    src: &S,
    name: &str,
    kept: impl IntoIterator<Item = String>,
) -> Result<BTreeSet<String>, ReachError> {
    let mut walk = Walk {
        src,
        name,
        seen: BTreeSet::new(),
        indexes_read: 0,
    };
    for digest in kept {
        walk.visit(digest, String::new()).await?;
    }
    Ok(walk.seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::client::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
    use std::cell::Cell;
    use std::collections::BTreeMap;

    /// A repository held in memory: tags to digests, digests to (media type, body).
    #[derive(Default)]
    struct Fake {
        tags: BTreeMap<String, String>,
        manifests: BTreeMap<String, (String, Vec<u8>)>,
        reads: Cell<usize>,
        fail_on: Option<String>,
    }

    impl Fake {
        fn image(&mut self, digest: &str, media_type: &str) {
            self.manifests
                .insert(digest.into(), (media_type.into(), b"{}".to_vec()));
        }

        fn index(&mut self, digest: &str, media_type: &str, children: &[(&str, &str)]) {
            let manifests: Vec<serde_json::Value> = children
                .iter()
                .map(|(d, t)| serde_json::json!({"mediaType": t, "digest": d, "size": 1}))
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({"manifests": manifests})).unwrap();
            self.manifests
                .insert(digest.into(), (media_type.into(), body));
        }

        fn tag(&mut self, tag: &str, digest: &str) {
            self.tags.insert(tag.into(), digest.into());
        }
    }

    impl ManifestSource for Fake {
        async fn tags(&self, _name: &str) -> Result<Option<Vec<String>>, UpstreamError> {
            Ok(Some(self.tags.keys().cloned().collect()))
        }

        async fn resolve(
            &self,
            _name: &str,
            reference: &str,
        ) -> Result<Option<(String, String)>, UpstreamError> {
            if self.fail_on.as_deref() == Some(reference) {
                return Err(UpstreamError::Timeout);
            }
            let digest = self
                .tags
                .get(reference)
                .cloned()
                .unwrap_or(reference.to_string());
            Ok(self
                .manifests
                .get(&digest)
                .map(|(t, _)| (digest.clone(), t.clone())))
        }

        async fn manifest(
            &self,
            _name: &str,
            digest: &str,
        ) -> Result<Option<Manifest>, UpstreamError> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.manifests.get(digest).map(|(t, b)| Manifest {
                media_type: t.clone(),
                digest: digest.to_string(),
                bytes: b.clone(),
            }))
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn run<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn tags_reach_their_images_and_every_child_of_their_indexes() {
        let mut r = Fake::default();
        r.image("sha256:img", OCI_MANIFEST);
        r.image("sha256:s2", DOCKER_MANIFEST);
        r.image("sha256:amd64", OCI_MANIFEST);
        r.image("sha256:arm64", OCI_MANIFEST);
        r.image("sha256:l-amd64", DOCKER_MANIFEST);
        r.image("sha256:untagged", OCI_MANIFEST);
        r.index(
            "sha256:idx",
            OCI_INDEX,
            &[
                ("sha256:amd64", OCI_MANIFEST),
                ("sha256:arm64", OCI_MANIFEST),
            ],
        );
        r.index(
            "sha256:list",
            DOCKER_LIST,
            &[("sha256:l-amd64", DOCKER_MANIFEST)],
        );
        r.tag("a", "sha256:img");
        r.tag("b", "sha256:img");
        r.tag("c", "sha256:s2");
        r.tag("multi", "sha256:idx");
        r.tag("list", "sha256:list");
        let got = run(reachable(&r, "app")).unwrap();
        assert_eq!(
            got,
            set(&[
                "sha256:img",
                "sha256:s2",
                "sha256:idx",
                "sha256:amd64",
                "sha256:arm64",
                "sha256:list",
                "sha256:l-amd64"
            ])
        );
        assert!(!got.contains("sha256:untagged"));
        assert_eq!(r.reads.get(), 2, "only indexes are read");
    }

    #[test]
    fn nested_indexes_and_children_without_a_media_type_are_followed() {
        let mut r = Fake::default();
        r.image("sha256:leaf", OCI_MANIFEST);
        r.index("sha256:inner", OCI_INDEX, &[("sha256:leaf", "")]);
        r.index("sha256:outer", OCI_INDEX, &[("sha256:inner", "")]);
        r.tag("t", "sha256:outer");
        let got = run(reachable(&r, "app")).unwrap();
        assert_eq!(got, set(&["sha256:outer", "sha256:inner", "sha256:leaf"]));
    }

    #[test]
    fn a_child_that_is_not_stored_is_listed_but_not_read() {
        let mut r = Fake::default();
        r.index("sha256:idx", OCI_INDEX, &[("sha256:gone", OCI_INDEX)]);
        r.tag("t", "sha256:idx");
        let got = run(reachable(&r, "app")).unwrap();
        assert_eq!(got, set(&["sha256:idx", "sha256:gone"]));
    }

    #[test]
    fn an_upstream_error_or_a_bad_index_stops_the_walk() {
        let mut r = Fake::default();
        r.image("sha256:img", OCI_MANIFEST);
        r.tag("t", "sha256:img");
        r.fail_on = Some("t".into());
        assert!(matches!(
            run(reachable(&r, "app")),
            Err(ReachError::Upstream(_))
        ));
        let mut r = Fake::default();
        r.manifests.insert(
            "sha256:bad".into(),
            (OCI_INDEX.into(), b"not json".to_vec()),
        );
        r.tag("t", "sha256:bad");
        assert!(matches!(
            run(reachable(&r, "app")),
            Err(ReachError::BadIndex { .. })
        ));
    }

    #[test]
    fn indexes_nested_too_deep_are_refused() {
        let mut r = Fake::default();
        r.image("sha256:i0", OCI_MANIFEST);
        for i in 1..=(MAX_DEPTH + 1) {
            let child = format!("sha256:i{}", i - 1);
            r.index(&format!("sha256:i{i}"), OCI_INDEX, &[(child.as_str(), "")]);
        }
        r.tag("t", &format!("sha256:i{}", MAX_DEPTH + 1));
        assert!(matches!(
            run(reachable(&r, "app")),
            Err(ReachError::Limit(_))
        ));
    }

    #[test]
    fn kept_untagged_indexes_keep_their_children() {
        let mut r = Fake::default();
        r.image("sha256:child", OCI_MANIFEST);
        r.image("sha256:plain", OCI_MANIFEST);
        r.index("sha256:young", OCI_INDEX, &[("sha256:child", OCI_MANIFEST)]);
        let got = run(with_children(
            &r,
            "app",
            ["sha256:young".to_string(), "sha256:plain".to_string()],
        ))
        .unwrap();
        assert_eq!(got, set(&["sha256:young", "sha256:child", "sha256:plain"]));
    }
}
