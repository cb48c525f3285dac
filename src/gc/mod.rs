//! Garbage collection that is safe while pulls go on (README "Reclaiming disk";
//! docs/registry-facts.md, "Garbage collection").
//!
//! A job is refused before it starts when it could not be safe: no usable `REGISTRY_CONFIG`,
//! a blob-descriptor cache (the running registry would serve deleted blobs as empty ones), or,
//! in htpasswd mode, a job that deletes while registry:2 still accepts uploads (a push racing
//! the sweep leaves an image with missing blobs). In token mode the job freezes writes instead:
//! `/token` grants no push or delete, and the job waits until every write token already out has
//! expired. Then: untagged cleanup if asked (token mode, filesystem storage), and
//! `garbage-collect` without `--delete-untagged`.
//!
//! One job at a time per `gc.json`; the running job's live state (its log grows as the command
//! prints) is kept in memory and shown in place of the file's copy.
//!
//! Cluster mode (`DATABASE_URL`, [`cluster`]): gc.json is a database row, so the one job is one
//! for the whole cluster; the freeze is shared by every replica; a job whose replica died is
//! failed by another; a blob-descriptor cache is accepted only when it is a Redis shared by the
//! registries, which the job purges ([`redis`]) before it thaws.

pub mod cluster;
pub mod error;
pub use error::GcError;
pub mod freeze;
pub mod job;
pub mod prune;
pub mod reach;
pub mod redis;
pub mod registry_config;
pub mod routes;
pub mod run;
pub mod untagged;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use rand::RngCore;

pub use routes::routes;

use self::freeze::{FreezeGuard, max_wait};
use self::job::{FILE_NAME, Job, JobFile, JobStore, State};
use self::registry_config::{CacheRule, RegistrySettings};
use self::run::{Run, blob_sizes, child_env};
use crate::audit::entry::{Entry, Outcome, Source, format_time};
use crate::audit::writer::AuditLog;
use crate::blocking::run_blocking;
use crate::config::{AuthMode, Config};
use crate::durable::DurableError;
use crate::freeze::WriteFreeze;
use crate::metrics::Metrics;
use crate::names::{self, Digest, RepoName};
use crate::registry::client::{DeleteOutcome, RegistryClient, from_upstream};
use crate::sync::lock;
use crate::users::store::UserStore;

/// Longest `garbage-collect` may run; writes stay frozen meanwhile, so a hung one must end.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Repository registry-admin starts (and cancels) an upload in to learn whether registry:2 is
/// read-only. Any name does: registry:2 refuses uploads in read-only mode before looking.
pub const PROBE_REPOSITORY: &str = "registry-admin/gc-probe";

/// What `POST /gc` asks for. A missing `dry_run` is a dry run: deleting is never the default.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    #[serde(default = "yes")]
    pub dry_run: bool,
    #[serde(default)]
    pub untagged: bool,
    /// Remove the storage of repositories with no tags and no manifests (filesystem only).
    #[serde(default)]
    pub prune_empty: bool,
}

fn yes() -> bool {
    true
}

impl Default for StartRequest {
    fn default() -> Self {
        StartRequest {
            dry_run: true,
            untagged: false,
            prune_empty: false,
        }
    }
}

/// The jobs of one `gc.json`: the file, and the job this process runs now. One per process,
/// made with the app's other services and shared by every worker (`web::Data<Jobs>`).
pub struct Jobs {
    store: JobStore,
    live: Mutex<Option<Job>>,
}

impl Jobs {
    /// The jobs kept beside `store`'s htpasswd.
    pub fn beside(store: &UserStore) -> Jobs {
        Jobs {
            store: JobStore::at(store.place(), FILE_NAME),
            live: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Every job, newest first, the running one as it is right now. Blocking.
    pub fn list(&self) -> Result<Vec<Job>, DurableError> {
        let mut file: JobFile = self.store.read()?;
        if let Some(live) = lock(&self.live).as_ref() {
            for j in file.jobs.iter_mut().filter(|j| j.id == live.id) {
                *j = live.clone();
            }
        }
        Ok(file.jobs)
    }

    /// Takes the one slot of this process for `job`; released on drop unless kept.
    fn claim(self: &Arc<Self>, job: &Job) -> Result<Claim, GcError> {
        let mut live = lock(&self.live);
        if let Some(running) = live.as_ref() {
            return Err(GcError::Running(format!(
                "job {} is {}",
                running.id,
                running.state.as_str()
            )));
        }
        *live = Some(job.clone());
        Ok(Claim {
            jobs: Arc::clone(self),
            keep: false,
        })
    }

    /// The id of the job this process runs now.
    pub fn running_id(&self) -> Option<String> {
        lock(&self.live).as_ref().map(|j| j.id.clone())
    }

    fn update(&self, job: &Job) {
        *lock(&self.live) = Some(job.clone());
    }

    fn push_line(&self, line: &str) {
        if let Some(j) = lock(&self.live).as_mut() {
            if j.log.len() == job::LOG_LINES {
                j.log.remove(0);
            }
            j.log.push(line.to_string());
        }
    }
}

struct Claim {
    jobs: Arc<Jobs>,
    keep: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.keep {
            lock(&self.jobs.live).take();
        }
    }
}

/// At start-up: jobs a stopped process left unfinished are failed ("interrupted"), each with
/// the `gc.finish` entry it never wrote. Nothing else remembers a freeze, so that ends it.
pub fn recover(store: &UserStore, audit: &AuditLog) {
    let jobs = JobStore::at(store.place(), FILE_NAME);
    let marked = match jobs.mark_interrupted(&format_time(Utc::now())) {
        Ok(m) => m,
        Err(e) => {
            log::error!(
                "gc: cannot check {} for interrupted jobs: {e}",
                jobs.path().display()
            );
            return;
        }
    };
    if marked.is_empty() {
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(e) => {
            log::error!("gc: cannot audit interrupted jobs: {e}");
            return;
        }
    };
    for j in marked {
        log::warn!("gc: job {} was interrupted by a stop; marked failed", j.id);
        if let Err(e) = runtime.block_on(audit.record(finish_entry(&j))) {
            log::error!("gc: audit of interrupted job {}: {e}", j.id);
        }
    }
}

fn finish_entry(j: &Job) -> Entry {
    let outcome = if j.state == State::Succeeded {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    let mut e = Entry::new("gc.finish", &j.requested_by, outcome, Source::Api);
    let mut detail = format!(
        "job {} {}: dry_run={} untagged={} manifests_deleted={} blobs_deleted={} bytes_freed={}",
        j.id,
        j.state.as_str(),
        j.dry_run,
        j.untagged,
        j.manifests_deleted,
        j.blobs_deleted,
        j.bytes_freed
    );
    if j.prune_empty {
        detail.push_str(&format!(" repositories_pruned={}", j.repositories_pruned));
    }
    if let Some(err) = &j.error {
        detail.push_str("; ");
        detail.push_str(err);
    }
    e.detail = Some(crate::audit::entry::clean(&detail, 1000));
    e
}

/// The services a job uses.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub registry: Arc<RegistryClient>,
    pub audit: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
    pub freeze: Arc<WriteFreeze>,
    pub jobs: Arc<Jobs>,
}

/// Our environment, for the config overrides and the child.
fn environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

fn utf8_env(env: &[(OsString, OsString)]) -> Vec<(String, String)> {
    env.iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
        .collect()
}

/// `bin` as `Command` would find it: a path with a slash as it is, a bare name on `PATH`.
fn find_bin(bin: &Path, path_var: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if bin.as_os_str().to_string_lossy().contains('/') {
        return runnable(bin).then(|| bin.to_path_buf());
    }
    std::env::split_paths(path_var?)
        .map(|d| d.join(bin))
        .find(|p| runnable(p))
}

/// What a job needs to know before it may start.
struct Plan {
    config_path: PathBuf,
    bin: PathBuf,
    settings: RegistrySettings,
    env: Vec<(OsString, OsString)>,
}

async fn plan(config: &Config, req: StartRequest, clustered: bool) -> Result<Plan, GcError> {
    let config_path = config.registry_config.clone().ok_or_else(|| {
        GcError::Unavailable(
            "REGISTRY_CONFIG is not set: garbage collection runs `garbage-collect` on registry:2's \
             config file, so registry-admin must be given its path"
                .into(),
        )
    })?;
    let env = environment();
    let utf8 = utf8_env(&env);
    let settings = {
        let path = config_path.clone();
        let rule = if clustered {
            CacheRule::RedisPurged
        } else {
            CacheRule::NoCache
        };
        run_blocking(move || registry_config::load(&path, &utf8, rule)).await?
    }
    .map_err(GcError::Unavailable)?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str());
    let bin = find_bin(&config.registry_bin, path_var).ok_or_else(|| {
        GcError::Unavailable(format!(
            "REGISTRY_BIN {} cannot be run (not found, or not executable)",
            config.registry_bin.display()
        ))
    })?;
    if req.untagged {
        if config.auth_mode != AuthMode::Token {
            return Err(GcError::Unavailable(
                "untagged cleanup needs AUTH_MODE=token: only there can writes be frozen while \
                 manifests are deleted (a read-only registry refuses the deletes)"
                    .into(),
            ));
        }
        if settings.root.is_none() {
            return Err(GcError::Unavailable(format!(
                "untagged cleanup needs the filesystem storage driver (it reads the stored \
                 manifests from disk); this registry uses {:?}",
                settings.driver
            )));
        }
        if !settings.delete_enabled {
            return Err(GcError::Unavailable(
                "untagged cleanup needs storage.delete.enabled: true in the registry config".into(),
            ));
        }
    }
    if req.prune_empty && settings.root.is_none() {
        return Err(GcError::Unavailable(format!(
            "prune_empty needs the filesystem storage driver (it removes repository directories \
             from disk); this registry uses {:?}",
            settings.driver
        )));
    }
    Ok(Plan {
        config_path,
        bin,
        settings,
        env: child_env(env),
    })
}

fn new_id() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// `POST /gc`: checks, records the job as queued, and starts it on this worker. Returns the
/// queued job.
pub async fn start(ctx: Context, req: StartRequest, requested_by: &str) -> Result<Job, GcError> {
    let cluster = ctx.freeze.database().cloned();
    let plan = plan(&ctx.config, req, cluster.is_some()).await?;
    let mut job = Job::new(
        new_id(),
        req.dry_run,
        req.untagged,
        requested_by,
        &format_time(Utc::now()),
    );
    job.prune_empty = req.prune_empty;
    job.runner = cluster.as_ref().map(|db| db.replica_id().to_string());
    let mut claim = ctx.jobs.claim(&job)?;
    if ctx.config.auth_mode == AuthMode::Htpasswd && !req.dry_run {
        // registry:2 cannot be frozen in this mode: only its read-only mode keeps pushes out.
        let probe = from_upstream(RepoName::parse(PROBE_REPOSITORY))?;
        if ctx.registry.uploads_accepted(&probe).await? {
            return Err(GcError::RegistryWritable(
                "registry:2 accepts uploads (an upload start was not refused with 405): in htpasswd \
                 mode a job that deletes needs it read-only — set storage.maintenance.readonly.enabled: \
                 true and restart it — or ask for a dry run"
                    .into(),
            ));
        }
    }
    let store_job = job.clone();
    let jobs = Arc::clone(&ctx.jobs);
    if let Some(other) = run_blocking(move || jobs.store.insert_if_idle(&store_job)).await?? {
        return Err(GcError::Running(format!(
            "job {} is {} (in {})",
            other.id,
            other.state.as_str(),
            ctx.jobs.path().display()
        )));
    }
    claim.keep = true;
    drop(claim);
    // Spawned last, with no await after: the audit middleware queues this request's
    // `gc.start` before this worker runs anything else, so `gc.finish` always comes after it.
    actix_web::rt::spawn(execute(ctx, plan, job.clone()));
    Ok(job)
}

async fn save(ctx: &Context, job: &Job) {
    ctx.jobs.update(job);
    let jobs = Arc::clone(&ctx.jobs);
    let job = job.clone();
    // Never over a finished state: in cluster mode another replica may have failed this job
    // ("interrupted") when it took this replica for dead; that verdict stands.
    match run_blocking(move || jobs.store.save_progress(&job)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("gc: saving the job: {e}"),
        Err(e) => log::error!("gc: saving the job: {e}"),
    }
}

/// Runs a job to its end; every path out of here leaves it finished and writes thawed.
async fn execute(ctx: Context, plan: Plan, mut job: Job) {
    let started = Instant::now();
    job.started_at = Some(format_time(Utc::now()));
    // Cluster mode: the other replicas show the job as its row says; keep the row current.
    let progress = ctx
        .freeze
        .database()
        .is_some()
        .then(|| actix_web::rt::spawn(write_progress(Arc::clone(&ctx.jobs))));
    let result = collect(&ctx, &plan, &mut job).await;
    if let Some(p) = progress {
        p.abort();
    }
    // The freeze guard lived inside `collect` and has thawed by now, whatever happened.
    match result {
        Ok(()) => job.state = State::Succeeded,
        Err(e) => {
            log::error!("gc: job {} failed: {e}", job.id);
            job.state = State::Failed;
            job.error = Some(e);
        }
    }
    job.finished_at = Some(format_time(Utc::now()));
    save(&ctx, &job).await;
    lock(&ctx.jobs.live).take();
    let bytes = if job.dry_run || job.state != State::Succeeded {
        0
    } else {
        job.bytes_freed
    };
    ctx.metrics
        .gc_run(job.state.as_str(), started.elapsed(), bytes);
    if let Err(e) = ctx.audit.record(finish_entry(&job)).await {
        log::error!("gc: audit of job {}: {e}", job.id);
    }
}

/// Writes the running job (its log included) every `cluster::PROGRESS_EVERY`, until aborted.
async fn write_progress(jobs: Arc<Jobs>) {
    loop {
        tokio::time::sleep(cluster::PROGRESS_EVERY).await;
        let Some(job) = lock(&jobs.live).clone() else {
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

/// Takes the freeze: this process's, and in cluster mode the maintenance row; waits until no
/// write already granted (here or, in cluster mode, on any replica) can reach the registry.
async fn freeze_writes(ctx: &Context, job: &Job) -> Result<FreezeGuard, String> {
    let mut guard = FreezeGuard::take(Arc::clone(&ctx.freeze));
    let max = max_wait(ctx.config.registry_token.ttl);
    let waited = match ctx.freeze.database().cloned() {
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
            let (db, id) = (ctx.freeze.database().cloned(), job.id.clone());
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
    log::info!(
        "gc: job {}: writes frozen; waited {waited:?} for write tokens",
        job.id
    );
    Ok(guard)
}

async fn collect(ctx: &Context, plan: &Plan, job: &mut Job) -> Result<(), String> {
    let _freeze = if ctx.config.auth_mode == AuthMode::Token && !job.dry_run {
        job.state = State::Freezing;
        save(ctx, job).await;
        Some(freeze_writes(ctx, job).await?)
    } else {
        None
    };
    let result = sweep(ctx, plan, job).await;
    // Before the freeze ends: whatever was deleted, a shared cache must not serve it.
    if let (Some(cache), false) = (plan.settings.redis.clone(), job.dry_run) {
        let purged = run_blocking(move || redis::purge(&cache))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match (&result, purged) {
            (_, Ok(())) => {
                const PURGED: &str = "purged the registries' Redis blob-descriptor cache";
                jobs_log(ctx, PURGED);
                job.log.push(PURGED.into());
            }
            (Ok(()), Err(e)) => return Err(e),
            (Err(_), Err(e)) => log::error!("gc: job {}: {e}", job.id),
        }
    }
    result
}

/// Untagged cleanup, pruning and `garbage-collect`, with the freeze (if any) held.
async fn sweep(ctx: &Context, plan: &Plan, job: &mut Job) -> Result<(), String> {
    job.state = State::Collecting;
    save(ctx, job).await;
    if job.untagged {
        job.manifests_deleted = delete_untagged(ctx, plan, job).await?;
        save(ctx, job).await;
    }
    if job.prune_empty {
        job.repositories_pruned = prune_empty(ctx, plan, job).await?;
        save(ctx, job).await;
    }
    let sizes = match plan.settings.root.clone() {
        Some(root) => run_blocking(move || blob_sizes(&root))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the blob store's sizes: {e}"))?,
        None => HashMap::new(),
    };
    let jobs = Arc::clone(&ctx.jobs);
    // Cluster mode, a real run: deleting stops as soon as this replica's hold on the freeze is
    // in doubt, before the other replicas may end it.
    let keep_going = (ctx.freeze.database().is_some() && !job.dry_run).then(|| {
        let (freeze, id) = (Arc::clone(&ctx.freeze), job.id.clone());
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
            if let Some(j) = lock(&ctx.jobs.live).as_ref() {
                job.log = j.log.clone();
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

/// Removes (a dry run: counts) the storage of repositories with no tags and no manifests;
/// returns how many. Runs after the untagged cleanup, so repositories it emptied go too.
async fn prune_empty(ctx: &Context, plan: &Plan, job: &Job) -> Result<u64, String> {
    let Some(root) = plan.settings.root.clone() else {
        return Err("prune_empty needs the filesystem storage driver".into());
    };
    let repos = ctx
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
            jobs_log(
                ctx,
                &format!(
                    "empty repository {name}: {}",
                    if job.dry_run {
                        "would be pruned"
                    } else {
                        "pruned"
                    }
                ),
            );
        }
    }
    Ok(pruned)
}

fn jobs_log(ctx: &Context, line: &str) {
    ctx.jobs.push_line(line);
}

/// Deletes (a dry run: counts) the untagged manifests of every repository; returns how many.
async fn delete_untagged(ctx: &Context, plan: &Plan, job: &Job) -> Result<u64, String> {
    let Some(root) = plan.settings.root.clone() else {
        return Err("untagged cleanup needs the filesystem storage driver".into());
    };
    let grace = Duration::from_secs(ctx.config.gc_untagged_grace);
    let repos = ctx
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
        let doomed = untagged::to_delete(ctx.registry.as_ref(), &name, &stored)
            .await
            .map_err(|e| format!("working out what {name}'s tags reach: {e}"))?;
        for digest in doomed {
            if job.dry_run {
                deleted += 1;
                continue;
            }
            let outcome = match from_upstream(Digest::parse(digest.as_str())) {
                Ok(d) => ctx.registry.delete_manifest(&repo, &d.into()).await,
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
                    if let Err(err) = ctx.audit.record(e).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_dry_run_unless_it_says_otherwise() {
        let r: StartRequest = serde_json::from_str("{}").unwrap();
        assert!(r.dry_run && !r.untagged);
        let r: StartRequest = serde_json::from_str(r#"{"dry_run":false,"untagged":true}"#).unwrap();
        assert!(!r.dry_run && r.untagged);
        assert!(serde_json::from_str::<StartRequest>(r#"{"dry-run":false}"#).is_err());
    }

    #[test]
    fn the_binary_is_found_as_a_path_or_on_path() {
        assert!(find_bin(Path::new("/bin/sh"), None).is_some());
        assert!(find_bin(Path::new("sh"), Some("/nowhere:/bin".as_ref())).is_some());
        assert!(find_bin(Path::new("sh"), None).is_none());
        assert!(find_bin(Path::new("/nowhere/registry"), None).is_none());
    }

    #[test]
    fn a_finished_job_is_audited_with_its_counts() {
        let mut j = Job::new("abc".into(), false, true, "admin", "t");
        j.state = State::Failed;
        j.blobs_deleted = 3;
        j.error = Some("boom".into());
        let e = finish_entry(&j);
        assert_eq!(
            (e.action.as_str(), e.actor.as_str(), e.outcome),
            ("gc.finish", "admin", Outcome::Failure)
        );
        let d = e.detail.unwrap();
        assert!(
            d.contains("job abc failed") && d.contains("blobs_deleted=3") && d.contains("boom"),
            "{d}"
        );
    }
}
