//! The GC service: built once at start with everything a job uses, shared by every worker
//! (`web::Data<GcService>`) and by the retention schedule. `POST /gc` and the schedule call
//! [`GcService::start`]; `GET /gc` and `GET /gc/{id}` read [`GcService::jobs`].

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::RngCore;

use super::GcError;
use super::execute::execute;
use super::job::Job;
use super::jobs::Jobs;
use super::plan::plan;
use super::request::StartRequest;
use crate::audit::entry::format_time;
use crate::audit::writer::AuditLog;
use crate::blocking::run_blocking;
use crate::config::{AuthMode, Config};
use crate::freeze::WriteFreeze;
use crate::metrics::Metrics;
use crate::names::RepoName;
use crate::registry::client::{RegistryClient, from_upstream};
use crate::store::Place;

/// Longest `garbage-collect` may run; writes stay frozen meanwhile, so a hung one must end.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Repository registry-admin starts (and cancels) an upload in to learn whether registry:2 is
/// read-only. Any name does: registry:2 refuses uploads in read-only mode before looking.
pub const PROBE_REPOSITORY: &str = "registry-admin/gc-probe";

/// Everything a job uses. Cheap to clone (shared parts): a running job owns a clone.
#[derive(Clone)]
pub struct GcService {
    pub(super) config: Arc<Config>,
    pub(super) registry: Arc<RegistryClient>,
    pub(super) audit: Arc<AuditLog>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) freeze: Arc<WriteFreeze>,
    pub(super) jobs: Arc<Jobs>,
}

impl GcService {
    /// The service whose jobs are kept at `place` (`gc.json` beside htpasswd, or its row).
    pub fn new(
        place: &Place,
        config: Arc<Config>,
        registry: Arc<RegistryClient>,
        audit: Arc<AuditLog>,
        metrics: Arc<Metrics>,
        freeze: Arc<WriteFreeze>,
    ) -> GcService {
        GcService {
            config,
            registry,
            audit,
            metrics,
            freeze,
            jobs: Arc::new(Jobs::at(place)),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The jobs (cluster mode: what the watch of abandoned jobs looks at).
    pub fn jobs_store(&self) -> &Arc<Jobs> {
        &self.jobs
    }

    /// Every job, newest first, the running one as it is right now.
    pub async fn jobs(&self) -> Result<Vec<Job>, GcError> {
        let jobs = Arc::clone(&self.jobs);
        run_blocking(move || jobs.list())
            .await?
            .map_err(GcError::Jobs)
    }

    /// One job, by id.
    pub async fn job(&self, id: &str) -> Result<Job, GcError> {
        self.jobs()
            .await?
            .into_iter()
            .find(|j| j.id == id)
            .ok_or_else(|| GcError::NoSuchJob(id.chars().take(64).collect()))
    }

    /// Checks, records the job as queued, and starts it on this worker. Returns the queued job.
    pub async fn start(&self, req: StartRequest, requested_by: &str) -> Result<Job, GcError> {
        let cluster = self.freeze.database().cloned();
        let plan = plan(&self.config, req, cluster.is_some()).await?;
        let mut job = Job::new(
            new_id(),
            req.dry_run,
            req.untagged,
            requested_by,
            &format_time(Utc::now()),
        );
        job.prune_empty = req.prune_empty;
        job.runner = cluster.as_ref().map(|db| db.replica_id().to_string());
        let claim = self.jobs.claim(&job)?;
        if self.config.auth_mode == AuthMode::Htpasswd && !req.dry_run {
            // registry:2 cannot be frozen in this mode: only its read-only mode keeps pushes out.
            let probe = from_upstream(RepoName::parse(PROBE_REPOSITORY))?;
            if self.registry.uploads_accepted(&probe).await? {
                return Err(GcError::RegistryWritable(
                    "registry:2 accepts uploads (an upload start was not refused with 405): in htpasswd \
                     mode a job that deletes needs it read-only — set storage.maintenance.readonly.enabled: \
                     true and restart it — or ask for a dry run"
                        .into(),
                ));
            }
        }
        let store_job = job.clone();
        let jobs = Arc::clone(&self.jobs);
        if let Some(other) = run_blocking(move || jobs.store.insert_if_idle(&store_job)).await?? {
            return Err(GcError::Running(format!(
                "job {} is {} (in {})",
                other.id,
                other.state.as_str(),
                self.jobs.path().display()
            )));
        }
        claim.keep();
        // Spawned last, with no await after: the audit middleware queues this request's
        // `gc.start` before this worker runs anything else, so `gc.finish` always comes after it.
        actix_web::rt::spawn(execute(self.clone(), plan, job.clone()));
        Ok(job)
    }
}

fn new_id() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}
