//! Running a job once it is recorded: freeze writes (token mode, a real run), the cleanup
//! steps, `garbage-collect`, the shared cache purge, then the finished state, the metrics and
//! the `gc.finish` entry. Every path out leaves the job finished and writes thawed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::cleanup::{delete_untagged, prune_empty};
use super::cluster;
use super::finish::finish_entry;
use super::freeze::{FreezeGuard, max_wait};
use super::job::{Job, State};
use super::jobs::Jobs;
use super::plan::Plan;
use super::redis;
use super::run::{Run, blob_sizes};
use super::service::{GcService, RUN_TIMEOUT};
use crate::audit::entry::format_time;
use crate::blocking::run_blocking;
use crate::config::AuthMode;

/// Runs a job to its end; every path out of here leaves it finished and writes thawed.
pub(super) async fn execute(gc: GcService, plan: Plan, mut job: Job) {
    let started = Instant::now();
    job.started_at = Some(format_time(Utc::now()));
    // Cluster mode: the other replicas show the job as its row says; keep the row current.
    let progress = gc
        .freeze
        .database()
        .is_some()
        .then(|| actix_web::rt::spawn(write_progress(Arc::clone(&gc.jobs))));
    let result = collect(&gc, &plan, &mut job).await;
    if let Some(p) = progress {
        p.abort();
    }
    // `collect` has ended the freeze (in cluster mode the maintenance row's too) by now,
    // whatever happened: a replica that sees the job finished sees writes thawed as well.
    match result {
        Ok(()) => job.state = State::Succeeded,
        Err(e) => {
            log::error!("gc: job {} failed: {e}", job.id);
            job.state = State::Failed;
            job.error = Some(e);
        }
    }
    job.finished_at = Some(format_time(Utc::now()));
    save(&gc, &job).await;
    gc.jobs.release();
    let bytes = if job.dry_run || job.state != State::Succeeded {
        0
    } else {
        job.bytes_freed
    };
    gc.metrics
        .gc_run(job.state.as_str(), started.elapsed(), bytes);
    if let Err(e) = gc.audit.record(finish_entry(&job)).await {
        log::error!("gc: audit of job {}: {e}", job.id);
    }
}

/// Shows `job` as it is now, here and in `gc.json`.
pub(super) async fn save(gc: &GcService, job: &Job) {
    gc.jobs.update(job);
    let jobs = Arc::clone(&gc.jobs);
    let job = job.clone();
    // Never over a finished state: in cluster mode another replica may have failed this job
    // ("interrupted") when it took this replica for dead; that verdict stands.
    match run_blocking(move || jobs.store.save_progress(&job)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("gc: saving the job: {e}"),
        Err(e) => log::error!("gc: saving the job: {e}"),
    }
}

/// Writes the running job (its log included) every `cluster::PROGRESS_EVERY`, until aborted.
async fn write_progress(jobs: Arc<Jobs>) {
    loop {
        tokio::time::sleep(cluster::PROGRESS_EVERY).await;
        let Some(job) = jobs.live() else {
            return;
        };
        let store = Arc::clone(&jobs);
        match run_blocking(move || store.store.save_progress(&job)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("gc: writing the job's progress: {e}"),
            Err(e) => log::warn!("gc: writing the job's progress: {e}"),
        }
    }
}

/// Holding this process's freeze (`guard`), takes the cluster's too (the maintenance row);
/// waits until no write already granted (here or, in cluster mode, on any replica) can reach
/// the registry.
async fn freeze_writes(
    gc: &GcService,
    job: &Job,
    mut guard: FreezeGuard,
) -> Result<FreezeGuard, String> {
    match wait_for_writes(gc, job, &mut guard).await {
        Ok(waited) => {
            log::info!(
                "gc: job {}: writes frozen; waited {waited:?} for write tokens",
                job.id
            );
            Ok(guard)
        }
        Err(e) => {
            // Thawed before the failed job is saved, as at the end of a run.
            guard.release().await;
            Err(e)
        }
    }
}

/// The waiting part of [`freeze_writes`]: how long it waited.
async fn wait_for_writes(
    gc: &GcService,
    job: &Job,
    guard: &mut FreezeGuard,
) -> Result<Duration, String> {
    let max = max_wait(gc.config.registry_token.ttl);
    let waited = match gc.freeze.database().cloned() {
        None => guard.wait_for_writes(max).await,
        Some(db) => {
            // Before the freeze is written: if it commits and anything after fails, the guard
            // still ends it.
            guard.holds_cluster(&job.id);
            let id = job.id.clone();
            let floor = run_blocking(move || {
                cluster::freeze(&db, &id)?;
                // Counted from when the freeze committed (the update may have waited for
                // write tokens being issued), not from when it was asked for.
                cluster::others_done_by(&db, Utc::now())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("freezing writes across the cluster: {e}"))?;
            let max = max.max(cluster::OTHER_REPLICAS_WRITES + Duration::from_secs(5));
            let waited = guard.wait_for_writes_and(max, floor).await;
            // A replica cut off from the database for long is taken for dead by the others,
            // which then fail its job and end its freeze: nothing may be swept then.
            let (db, id) = (gc.freeze.database().cloned(), job.id.clone());
            let still = run_blocking(move || db.map(|db| cluster::frozen_by(&db)))
                .await
                .map_err(|e| e.to_string())?
                .transpose()
                .map_err(|e| format!("checking the cluster's freeze: {e}"))?;
            if still.flatten().as_deref() != Some(id.as_str()) {
                return Err(
                    "the cluster's freeze was ended by another replica (this replica \
                            was taken for dead); nothing was collected"
                        .into(),
                );
            }
            waited
        }
    };
    Ok(waited)
}

async fn collect(gc: &GcService, plan: &Plan, job: &mut Job) -> Result<(), String> {
    let freeze = if gc.config.auth_mode == AuthMode::Token && !job.dry_run {
        // Frozen before the job says so: whoever reads "freezing" gets no write token here.
        let guard = FreezeGuard::take(Arc::clone(&gc.freeze));
        job.state = State::Freezing;
        save(gc, job).await;
        Some(freeze_writes(gc, job, guard).await?)
    } else {
        None
    };
    let swept = sweep(gc, plan, job).await;
    // Before the freeze ends: whatever was deleted, a shared cache must not serve it.
    let result = purge_cache(gc, plan, job, swept).await;
    // Ended here, before `execute` saves the finished state (see `FreezeGuard::release`).
    if let Some(freeze) = freeze {
        freeze.release().await;
    }
    result
}

/// Purges a shared blob-descriptor cache after a real run; a failed purge fails a job that
/// had succeeded (and is only logged when the sweep had failed already).
async fn purge_cache(
    gc: &GcService,
    plan: &Plan,
    job: &mut Job,
    swept: Result<(), String>,
) -> Result<(), String> {
    let (Some(cache), false) = (plan.settings.redis.clone(), job.dry_run) else {
        return swept;
    };
    let purged = run_blocking(move || redis::purge(&cache))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
    match (swept, purged) {
        (swept, Ok(())) => {
            const PURGED: &str = "purged the registries' Redis blob-descriptor cache";
            gc.jobs.push_line(PURGED);
            job.log.push(PURGED.into());
            swept
        }
        (Ok(()), Err(e)) => Err(e),
        (Err(swept), Err(e)) => {
            log::error!("gc: job {}: {e}", job.id);
            Err(swept)
        }
    }
}

/// Untagged cleanup, pruning and `garbage-collect`, with the freeze (if any) held.
async fn sweep(gc: &GcService, plan: &Plan, job: &mut Job) -> Result<(), String> {
    job.state = State::Collecting;
    save(gc, job).await;
    if job.untagged {
        job.manifests_deleted = delete_untagged(gc, plan, job).await?;
        save(gc, job).await;
    }
    if job.prune_empty {
        job.repositories_pruned = prune_empty(gc, plan, job).await?;
        save(gc, job).await;
    }
    let sizes = match plan.settings.root.clone() {
        Some(root) => run_blocking(move || blob_sizes(&root))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the blob store's sizes: {e}"))?,
        None => HashMap::new(),
    };
    let jobs = Arc::clone(&gc.jobs);
    // Cluster mode, a real run: deleting stops as soon as this replica's hold on the freeze is
    // in doubt, before the other replicas may end it.
    let keep_going = (gc.freeze.database().is_some() && !job.dry_run).then(|| {
        let (freeze, id) = (Arc::clone(&gc.freeze), job.id.clone());
        move || freeze.still_holds(&id)
    });
    let outcome = Run {
        bin: &plan.bin,
        config: &plan.config_path,
        dry_run: job.dry_run,
        env: plan.env.clone(),
        timeout: RUN_TIMEOUT,
        sizes: &sizes,
        keep_going: keep_going.as_ref().map(|f| f as &(dyn Fn() -> bool + Sync)),
    }
    .run(|line| jobs.push_line(line))
    .await;
    let (counts, tail) = match outcome {
        Ok(v) => v,
        Err(e) => {
            if let Some(j) = gc.jobs.live() {
                job.log = j.log;
            }
            return Err(e.to_string());
        }
    };
    job.log = tail.lines();
    job.blobs_deleted = counts.blobs;
    job.manifests_deleted += counts.manifests;
    job.bytes_freed = counts.bytes;
    if plan.settings.root.is_none() && counts.blobs > 0 {
        log::info!(
            "gc: job {}: storage driver {:?} is not filesystem; bytes_freed is not counted",
            job.id,
            plan.settings.driver
        );
    }
    Ok(())
}
