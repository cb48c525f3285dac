//! Starting a job: the checks before it may run, the queued job recorded (one at a time per
//! `gc.json`, or per cluster), then the job handed to `execute` on this worker.

use std::sync::Arc;

use chrono::Utc;
use rand::RngCore;

use super::GcError;
use super::execute::execute;
use super::job::Job;
use super::plan::plan;
use super::request::StartRequest;
use super::service::GcService;
use crate::audit::entry::format_time;
use crate::blocking::run_blocking;
use crate::config::AuthMode;
use crate::names::RepoName;
use crate::registry::client::from_upstream;

/// Repository registry-admin starts (and cancels) an upload in to learn whether registry:2 is
/// read-only. Any name does: registry:2 refuses uploads in read-only mode before looking.
pub const PROBE_REPOSITORY: &str = "registry-admin/gc-probe";

impl GcService {
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
