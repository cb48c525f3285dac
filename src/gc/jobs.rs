//! The jobs of one `gc.json` as this process sees them: the file, and the one job this process
//! runs now, whose live state (its log grows as the command prints) is shown in place of the
//! file's copy.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::GcError;
use super::job::{FILE_NAME, Job, JobFile, JobStore, LOG_LINES};
use crate::durable::DurableError;
use crate::store::Place;
use crate::sync::lock;

/// One per process, built with the GC service and shared by every worker.
pub struct Jobs {
    pub(super) store: JobStore,
    live: Mutex<Option<Job>>,
}

impl Jobs {
    /// The jobs kept at `place` (beside htpasswd, or the database's row).
    pub fn at(place: &Place) -> Jobs {
        Jobs {
            store: JobStore::at(place, FILE_NAME),
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
    pub(super) fn claim(self: &Arc<Self>, job: &Job) -> Result<Claim, GcError> {
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

    /// The running job as it is right now.
    pub(super) fn live(&self) -> Option<Job> {
        lock(&self.live).clone()
    }

    pub(super) fn update(&self, job: &Job) {
        *lock(&self.live) = Some(job.clone());
    }

    /// The running job is over: this process may start another.
    pub(super) fn release(&self) {
        lock(&self.live).take();
    }

    pub(super) fn push_line(&self, line: &str) {
        if let Some(j) = lock(&self.live).as_mut() {
            if j.log.len() == LOG_LINES {
                j.log.remove(0);
            }
            j.log.push(line.to_string());
        }
    }
}

/// This process's slot, held from the checks until the job is recorded (then kept for the run).
pub(super) struct Claim {
    jobs: Arc<Jobs>,
    keep: bool,
}

impl Claim {
    /// The job is recorded and runs: the slot stays taken until the run releases it.
    pub(super) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.keep {
            self.jobs.release();
        }
    }
}
