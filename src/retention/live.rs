//! A repository's tags and digests as the registry holds them right now: each tag resolved
//! (HEAD, all four manifest types), and each index among the digests read for its children.
//! Lookups run a few at a time so a large repository does not open hundreds of connections.

use std::collections::{HashMap, HashSet};

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::evaluate::{RepoState, TagState};
use crate::names::{Digest, RepoName, Tag};
use crate::registry::client::{RegistryClient, UpstreamError, from_upstream};
use crate::registry::details::{MAX_INDEX_CHILDREN, child_digests, is_index};

/// Lookups in flight at once for one repository.
const CONCURRENCY: usize = 8;

/// `None` when the repository does not exist (any more).
pub async fn repository(
    client: &RegistryClient,
    name: &str,
) -> Result<Option<RepoState>, UpstreamError> {
    let name = &from_upstream(RepoName::parse(name))?;
    let Some(tags) = client.tags(name).await? else {
        return Ok(None);
    };
    let resolved: Vec<(String, Option<(String, String)>)> = stream::iter(tags)
        .map(|t| async move {
            // A tag the registry lists but our grammar refuses cannot be asked about (it
            // would go into a URL): left out, as a tag deleted meanwhile is, and logged.
            let Ok(tag) = Tag::parse(t.as_str()) else {
                log::warn!("leaving out the tag {t:?} of {name}: not a valid tag");
                return Ok((t, None));
            };
            let r = client.resolve(name, &tag.into()).await?;
            Ok::<_, UpstreamError>((t, r))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut state = RepoState::default();
    let mut indexes = HashSet::new();
    for (tag, r) in resolved {
        // A tag deleted between the listing and the lookup is simply not there.
        let Some((digest, media_type)) = r else {
            continue;
        };
        if is_index(&media_type) {
            indexes.insert(digest.clone());
        }
        state.tags.push(TagState { tag, digest });
    }
    let children: Vec<(String, Vec<String>)> = stream::iter(indexes)
        .map(|d| async move {
            let digest = from_upstream(Digest::parse(d.as_str()))?;
            let children = match client.manifest(name, &digest.into()).await? {
                Some(m) => {
                    let mut c = child_digests(&m)?;
                    c.truncate(MAX_INDEX_CHILDREN);
                    c
                }
                None => Vec::new(),
            };
            Ok::<_, UpstreamError>((d, children))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    state.children = children.into_iter().collect::<HashMap<_, _>>();
    state.tags.sort_by(|a, b| a.tag.cmp(&b.tag));
    Ok(Some(state))
}
