//! Applying a plan. Nothing is deleted on the plan's word alone: each repository is looked at
//! again and evaluated under the policies in force now, and a planned tag goes only when it is
//! *still* a candidate and still points to the planned digest (a tag re-pushed since the plan is
//! younger now, so it stays). Deletes go through the single-tag-safe delete, one `tag.delete`
//! audit entry each, at most `max_delete` per call; the evaluation never lets a repository's
//! last tag go.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::evaluate::evaluate;
use super::plan::Plan;
use super::{Retention, RetentionError, Services, live};
use crate::audit::entry::{Entry, Outcome, Source, clean};
use crate::names::{RepoName, Tag};
use crate::registry::delete::{DeleteError, delete_tag};

/// `max_delete` when the caller gives none.
pub const DEFAULT_MAX_DELETE: usize = 1000;
/// The largest `max_delete` accepted.
pub const MAX_MAX_DELETE: usize = 100_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedTag {
    pub name: String,
    pub tag: String,
    pub digest: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedTag {
    pub name: String,
    pub tag: String,
    pub reason: String,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ApplyReport {
    pub deleted: Vec<DeletedTag>,
    pub skipped: Vec<SkippedTag>,
}

impl ApplyReport {
    fn skip(&mut self, name: &str, tag: &str, reason: impl Into<String>) {
        self.skipped.push(SkippedTag {
            name: name.to_string(),
            tag: tag.to_string(),
            reason: reason.into(),
        });
    }
}

/// The `tag.delete` entry of one tag the plan deleted.
fn delete_entry(actor: &str, plan: &Plan, d: &crate::registry::delete::Deleted) -> Entry {
    let mut e = Entry::new("tag.delete", actor, Outcome::Success, Source::Api);
    e.image = Some(d.name.clone());
    e.tag = Some(d.tag.clone());
    e.digest = Some(d.digest.clone());
    e.status = Some(200);
    e.detail = Some(clean(
        &format!(
            "retention plan {}; method {}; other_tags [{}]",
            plan.id,
            d.method.as_str(),
            d.other_tags.join(",")
        ),
        1000,
    ));
    e
}

impl Retention {
    /// Applies `plan` as `actor`. 409 `maintenance` when a garbage collection holds writes
    /// back at the start; one that starts midway stops the run, and the rest is skipped.
    pub async fn apply(
        self: &Arc<Self>,
        services: &Services,
        plan: &Plan,
        max_delete: usize,
        actor: &str,
    ) -> Result<ApplyReport, RetentionError> {
        if services.freeze.is_frozen() {
            return Err(RetentionError::Maintenance);
        }
        let (_, compiled) = self.policies().await?;
        let mut report = ApplyReport::default();
        let mut budget = max_delete;
        for repo in &plan.repositories {
            if repo.delete.is_empty() {
                continue;
            }
            if budget == 0 {
                for item in &repo.delete {
                    report.skip(&repo.name, &item.tag, "max_delete reached");
                }
                continue;
            }
            let name = repo.name.as_str();
            let policies = compiled.for_repository(name);
            let live = match live::repository(&services.registry, name).await? {
                Some(state) => evaluate(
                    &policies,
                    &state,
                    &self.facts.repository(name),
                    Utc::now().timestamp_millis(),
                ),
                None => None,
            };
            let Some(live) = live else {
                let why = if policies.is_empty() {
                    "no policy matches the repository any more"
                } else {
                    "the repository no longer exists"
                };
                for item in &repo.delete {
                    report.skip(name, &item.tag, why);
                }
                continue;
            };
            let still: HashMap<&str, &str> = live
                .delete
                .iter()
                .map(|i| (i.tag.as_str(), i.digest.as_str()))
                .collect();
            let kept: HashMap<&str, &str> = live
                .keep
                .iter()
                .map(|i| (i.tag.as_str(), i.reason.as_str()))
                .collect();
            for item in &repo.delete {
                let tag = item.tag.as_str();
                match still.get(tag) {
                    None => {
                        let why = match kept.get(tag) {
                            Some(reason) => format!("kept now: {reason}"),
                            None => "the tag no longer exists".into(),
                        };
                        report.skip(name, tag, why);
                        continue;
                    }
                    Some(d) if *d != item.digest => {
                        report.skip(name, tag, format!("the tag now points to {d}"));
                        continue;
                    }
                    Some(_) => {}
                }
                if budget == 0 {
                    report.skip(name, tag, "max_delete reached");
                    continue;
                }
                let Some(_writing) = services.freeze.begin_write() else {
                    report.skip(name, tag, "a garbage collection froze registry writes");
                    continue;
                };
                // Both were just read back from the registry (`live`), so they parse; one that
                // does not is skipped and said so, like any other tag left alone.
                let (Ok(repo_name), Ok(tag_name)) = (RepoName::parse(name), Tag::parse(tag)) else {
                    report.skip(name, tag, "not a valid repository name and tag");
                    continue;
                };
                match delete_tag(&services.registry, &services.locks, &repo_name, &tag_name).await {
                    Ok(deleted) => {
                        budget -= 1;
                        services
                            .audit
                            .record(delete_entry(actor, plan, &deleted))
                            .await
                            .map_err(|e| RetentionError::Audit(e.to_string()))?;
                        report.deleted.push(DeletedTag {
                            name: deleted.name,
                            tag: deleted.tag,
                            digest: deleted.digest,
                        });
                    }
                    Err(DeleteError::NotFound(_)) => {
                        report.skip(name, tag, "the tag no longer exists")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(report)
    }
}
