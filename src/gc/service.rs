//! The GC service: built once at start with everything a job uses, shared by every worker
//! (`web::Data<GcService>`) and by the retention schedule. `POST /gc` and the schedule call
//! [`GcService::start`] (in `start.rs`); `GET /gc` and `GET /gc/{id}` read [`GcService::jobs`].

use std::sync::Arc;
use std::time::Duration;

use super::GcError;
use super::job::Job;
use super::jobs::Jobs;
use crate::audit::writer::AuditLog;
use crate::blocking::run_blocking;
use crate::config::Config;
use crate::freeze::WriteFreeze;
use crate::metrics::Metrics;
use crate::registry::client::RegistryClient;
use crate::store::Place;

/// Longest `garbage-collect` may run; writes stay frozen meanwhile, so a hung one must end.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

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
}
