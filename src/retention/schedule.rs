//! `RETENTION_SCHEDULE`: `daily@HH:MM` (UTC) — at that time, make a plan, apply it (with the
//! default cap) and start a garbage-collection job (a real one, not a dry run). Off when unset.
//! Each run is audited like the API's (`retention.plan`, `retention.apply`, `tag.delete`), with
//! the actor `retention-schedule`; a run that fails is logged and the next day tries again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::apply::DEFAULT_MAX_DELETE;
use super::{Retention, Services};
use crate::audit::entry::{Entry, Outcome, Source};
use crate::gc;

/// The actor scheduled runs are audited as.
pub const ACTOR: &str = "retention-schedule";

pub use crate::schedule::Schedule;

fn entry(action: &str, outcome: Outcome, detail: String) -> Entry {
    let mut e = Entry::new(action, ACTOR, outcome, Source::Api);
    e.detail = Some(crate::audit::entry::clean(&detail, 1000));
    e
}

/// One scheduled run: plan, apply, then a garbage-collection job.
pub async fn run_once(retention: &Arc<Retention>, services: &Services, gc: &gc::GcService) {
    let audit = &services.audit;
    let plan = match retention.make_plan(services, None).await {
        Ok(p) => p,
        Err(e) => {
            log::error!("retention schedule: making a plan: {e}");
            let _ = audit
                .record(entry("retention.plan", Outcome::Failure, e.to_string()))
                .await;
            return;
        }
    };
    let _ = audit
        .record(entry(
            "retention.plan",
            Outcome::Success,
            format!(
                "plan {}: {} repositories, {} kept, {} to delete",
                plan.id, plan.summary.repositories, plan.summary.kept, plan.summary.delete
            ),
        ))
        .await;
    match retention
        .apply(services, &plan, DEFAULT_MAX_DELETE, ACTOR)
        .await
    {
        Ok(r) => {
            let _ = audit
                .record(entry(
                    "retention.apply",
                    Outcome::Success,
                    format!(
                        "plan {}: {} deleted, {} skipped",
                        plan.id,
                        r.deleted.len(),
                        r.skipped.len()
                    ),
                ))
                .await;
        }
        Err(e) => {
            log::error!("retention schedule: applying plan {}: {e}", plan.id);
            let _ = audit
                .record(entry(
                    "retention.apply",
                    Outcome::Failure,
                    format!("plan {}: {e}", plan.id),
                ))
                .await;
            return;
        }
    }
    // The deleted tags' manifests stay until an untagged cleanup removes them (a tag delete
    // never deletes by digest), and only then are their blobs garbage: ask for that, and for
    // pruning what is left empty, where the registry allows it; otherwise a plain sweep.
    let full = gc::StartRequest {
        dry_run: false,
        untagged: gc.config().auth_mode == crate::config::AuthMode::Token,
        prune_empty: true,
    };
    let started = match gc.start(full, ACTOR).await {
        Err(gc::GcError::Unavailable(why)) => {
            log::info!("retention schedule: a plain garbage collection instead ({why})");
            let plain = gc::StartRequest {
                dry_run: false,
                untagged: false,
                prune_empty: false,
            };
            gc.start(plain, ACTOR).await
        }
        other => other,
    };
    match started {
        Ok(job) => {
            let _ = audit
                .record(entry(
                    "gc.start",
                    Outcome::Success,
                    format!("job {} after retention plan {}", job.id, plan.id),
                ))
                .await;
        }
        Err(e) => log::warn!("retention schedule: garbage collection not started: {e}"),
    }
}

/// Runs forever on the current (actix) runtime: sleeps until the next time, runs, repeats.
pub async fn run(
    schedule: Schedule,
    retention: Arc<Retention>,
    services: Services,
    gc: Arc<gc::GcService>,
) {
    loop {
        let now = Utc::now();
        let next = schedule.next_after(now);
        let wait = (next - now).to_std().unwrap_or(Duration::from_secs(60));
        log::info!("retention schedule: next run at {next}");
        tokio::time::sleep(wait).await;
        run_once(&retention, &services, &gc).await;
    }
}
