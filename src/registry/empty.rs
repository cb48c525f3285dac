//! Which repositories have no tags. registry:2 never forgets a repository (docs/registry-facts.md,
//! "Repositories are never forgotten"), so a catalog of names alone lists repositories whose
//! every tag is gone as if they held images.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::client::{RegistryClient, UpstreamError};
use crate::names::RepoName;

/// Tag listings in flight at once.
const CONCURRENCY: usize = 16;

/// Of `names`, those with no tags (sorted as given). A repository the registry no longer knows
/// counts as empty: it is in the catalog and holds nothing.
pub async fn empty_repositories(
    client: &RegistryClient,
    names: &[RepoName],
) -> Result<Vec<RepoName>, UpstreamError> {
    let found: Vec<Option<RepoName>> = stream::iter(names)
        .map(|name| async move {
            let tags = client.tags(name).await?;
            Ok::<_, UpstreamError>(tags.is_none_or(|t| t.is_empty()).then(|| name.clone()))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}
