//! The steps a job may take before `garbage-collect`, with the freeze held: deleting untagged
//! manifests (one `image.delete` entry each) and pruning empty repositories.

use std::time::{Duration, SystemTime};

use super::job::Job;
use super::plan::Plan;
use super::service::GcService;
use super::{prune, untagged};
use crate::audit::entry::{Entry, Outcome, Source};
use crate::blocking::run_blocking;
use crate::names::{self, Digest, RepoName};
use crate::registry::client::{DeleteOutcome, from_upstream};

/// Removes (a dry run: counts) the storage of repositories with no tags and no manifests;
/// returns how many. Runs after the untagged cleanup, so repositories it emptied go too.
pub(super) async fn prune_empty(gc: &GcService, plan: &Plan, job: &Job) -> Result<u64, String> {
    let Some(root) = plan.settings.root.clone() else {
        return Err("prune_empty needs the filesystem storage driver".into());
    };
    let repos = gc
        .registry
        .catalog()
        .await
        .map_err(|e| format!("listing repositories: {e}"))?;
    let mut pruned = 0u64;
    for name in repos {
        if names::repository(&name).is_err() {
            continue;
        }
        let (root, repo, dry_run) = (root.clone(), name.clone(), job.dry_run);
        let removed = run_blocking(move || {
            if !prune::is_empty(&root, &repo)? {
                return Ok(false);
            }
            if !dry_run {
                prune::remove(&root, &repo)?;
            }
            Ok::<_, std::io::Error>(true)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("pruning the empty repository {name}: {e}"))?;
        if removed {
            pruned += 1;
            gc.jobs.push_line(&format!(
                "empty repository {name}: {}",
                if job.dry_run {
                    "would be pruned"
                } else {
                    "pruned"
                }
            ));
        }
    }
    Ok(pruned)
}

/// Deletes (a dry run: counts) the untagged manifests of every repository; returns how many.
pub(super) async fn delete_untagged(gc: &GcService, plan: &Plan, job: &Job) -> Result<u64, String> {
    let Some(root) = plan.settings.root.clone() else {
        return Err("untagged cleanup needs the filesystem storage driver".into());
    };
    let grace = Duration::from_secs(gc.config.gc_untagged_grace);
    let repos = gc
        .registry
        .catalog()
        .await
        .map_err(|e| format!("listing repositories: {e}"))?;
    let mut deleted = 0u64;
    for name in repos {
        let Ok(repo) = RepoName::parse(name.as_str()) else {
            log::warn!("gc: skipping catalog entry {name:?}: not a repository name");
            continue;
        };
        let stored = {
            let (root, repo) = (root.clone(), name.clone());
            run_blocking(move || untagged::revisions(&root, &repo, SystemTime::now(), grace))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("reading the manifests of {name}: {e}"))?
        };
        let doomed = untagged::to_delete(gc.registry.as_ref(), &name, &stored)
            .await
            .map_err(|e| format!("working out what {name}'s tags reach: {e}"))?;
        for digest in doomed {
            if job.dry_run {
                deleted += 1;
                continue;
            }
            let outcome = match from_upstream(Digest::parse(digest.as_str())) {
                Ok(d) => gc.registry.delete_manifest(&repo, &d.into()).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(DeleteOutcome::Deleted) => {
                    deleted += 1;
                    let mut e = Entry::new(
                        "image.delete",
                        &job.requested_by,
                        Outcome::Success,
                        Source::Api,
                    );
                    e.image = Some(name.clone());
                    e.digest = Some(digest.clone());
                    e.detail = Some("untagged".into());
                    if let Err(err) = gc.audit.record(e).await {
                        log::error!("gc: audit of {name}@{digest}: {err}");
                    }
                }
                // Gone already: nothing left to do for it.
                Ok(DeleteOutcome::NotFound) => {}
                Ok(DeleteOutcome::Refused { status, code }) => {
                    return Err(format!(
                        "registry:2 refused to delete {name}@{digest} ({status} {code})"
                    ));
                }
                Err(e) => return Err(format!("deleting {name}@{digest}: {e}")),
            }
        }
    }
    Ok(deleted)
}
