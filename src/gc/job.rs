//! GC jobs and `gc.json`, the file that keeps the last [`KEPT_JOBS`] of them beside htpasswd.
//! Written whole through [`JsonFile`] under its own lock file (`gc.json.lock`), so a job's
//! writes never wait behind account changes, and a crash leaves the previous file or the new
//! one. A job that was running when the process stopped is found at the next start by its
//! state and marked failed ([`JobStore::mark_interrupted`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::durable::{DurableError, FileLock, JsonFile};

pub const FILE_NAME: &str = "gc.json";
/// Finished jobs beyond this many are dropped, oldest first.
pub const KEPT_JOBS: usize = 50;
/// Lines of the command's output a job keeps.
pub const LOG_LINES: usize = 200;
pub const INTERRUPTED: &str = "interrupted: registry-admin stopped while the job ran";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Queued,
    /// Token mode: no new write tokens; waiting for the ones already out to expire.
    Freezing,
    /// Deleting untagged manifests, then running `garbage-collect`.
    Collecting,
    Succeeded,
    Failed,
}

impl State {
    pub fn finished(self) -> bool {
        matches!(self, State::Succeeded | State::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Freezing => "freezing",
            State::Collecting => "collecting",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
        }
    }
}

/// One garbage-collection job. Counts are what was deleted, or for a dry run what would be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub state: State,
    pub dry_run: bool,
    pub untagged: bool,
    /// Whether empty repositories are pruned (`"prune_empty": true`).
    #[serde(default)]
    pub prune_empty: bool,
    pub requested_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub manifests_deleted: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    /// Empty repositories whose storage was removed (a dry run: would be).
    #[serde(default)]
    pub repositories_pruned: u64,
    pub error: Option<String>,
    /// Cluster mode: the replica (`REPLICA_ID`) running the job. Absent in files mode, so
    /// gc.json keeps its format there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// The last lines (at most 200) of `garbage-collect`'s stdout and stderr, in arrival order.
    pub log: Vec<String>,
}

impl Job {
    pub fn new(id: String, dry_run: bool, untagged: bool, requested_by: &str, now: &str) -> Job {
        Job {
            id,
            state: State::Queued,
            dry_run,
            untagged,
            prune_empty: false,
            requested_by: requested_by.to_string(),
            created_at: now.to_string(),
            started_at: None,
            finished_at: None,
            manifests_deleted: 0,
            blobs_deleted: 0,
            bytes_freed: 0,
            repositories_pruned: 0,
            error: None,
            runner: None,
            log: Vec::new(),
        }
    }
}

/// `gc.json`: jobs newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobFile {
    #[serde(default)]
    pub jobs: Vec<Job>,
}

impl JobFile {
    /// Puts `job` in place of the one with its id, or first when it is new; then drops the
    /// oldest finished jobs past [`KEPT_JOBS`]. Unfinished jobs are never dropped: one of them
    /// is what tells the next start that a job was interrupted.
    pub fn upsert(&mut self, job: &Job) {
        match self.jobs.iter_mut().find(|j| j.id == job.id) {
            Some(slot) => *slot = job.clone(),
            None => self.jobs.insert(0, job.clone()),
        }
        let mut kept = 0;
        self.jobs.retain(|j| {
            kept += 1;
            kept <= KEPT_JOBS || !j.state.finished()
        });
    }

    pub fn unfinished(&self) -> Option<&Job> {
        self.jobs.iter().find(|j| !j.state.finished())
    }
}

pub struct JobStore {
    file: JsonFile<JobFile>,
    lock: FileLock,
}

impl JobStore {
    pub fn new(path: impl Into<PathBuf>) -> JobStore {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        JobStore {
            file: JsonFile::new(path),
            lock: FileLock::new(lock_path),
        }
    }

    /// `gc.json` (and its lock) where `place` keeps things.
    pub fn at(place: &crate::store::Place, name: &str) -> JobStore {
        JobStore {
            file: JsonFile::at(place, name),
            lock: FileLock::at(place, &format!("{name}.lock")),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn read(&self) -> Result<JobFile, DurableError> {
        self.file.read()
    }

    /// Writes `job` (new or changed). Blocking.
    pub fn save(&self, job: &Job) -> Result<(), DurableError> {
        self.file.modify(
            &self.lock,
            |f: &mut JobFile| {
                f.upsert(job);
                Ok::<(), DurableError>(())
            },
            |_| Ok(()),
        )
    }

    /// Adds `job` unless the file holds an unfinished one (another process's, or ours from a
    /// request racing this one); returns that one instead. Blocking.
    pub fn insert_if_idle(&self, job: &Job) -> Result<Option<Job>, DurableError> {
        self.file.modify(
            &self.lock,
            |f: &mut JobFile| {
                if let Some(running) = f.unfinished() {
                    return Ok::<_, DurableError>(Some(running.clone()));
                }
                f.upsert(job);
                Ok(None)
            },
            |_| Ok(()),
        )
    }

    /// The unfinished job as committed (in cluster mode: read under the lock, not from this
    /// replica's cache). Blocking.
    pub fn unfinished_locked(&self) -> Result<Option<Job>, DurableError> {
        let held = self.lock.acquire()?;
        let file = self.file.read_locked(&held)?;
        Ok(file.unfinished().cloned())
    }

    /// Writes a running job's progress (its state, counts and log so far), unless the job has
    /// finished meanwhile: a late progress write must never undo the final one. Blocking.
    pub fn save_progress(&self, job: &Job) -> Result<(), DurableError> {
        self.file.modify(
            &self.lock,
            |f: &mut JobFile| {
                let running = f.jobs.iter().any(|j| j.id == job.id && !j.state.finished());
                if running {
                    f.upsert(job);
                }
                Ok::<(), DurableError>(())
            },
            |_| Ok(()),
        )
    }

    /// At start-up: every job not finished is failed ("interrupted"); returns them. Nothing
    /// else remembers a freeze, so marking them is all it takes for the freeze to be over.
    /// Blocking.
    pub fn mark_interrupted(&self, now: &str) -> Result<Vec<Job>, DurableError> {
        self.mark_interrupted_where(now, |_| true)
    }

    /// Fails ("interrupted") the unfinished jobs `dead` picks — decided under the lock, on the
    /// jobs as they are then; returns them. Blocking.
    pub fn mark_interrupted_where(
        &self,
        now: &str,
        dead: impl Fn(&Job) -> bool,
    ) -> Result<Vec<Job>, DurableError> {
        if !self.file.exists() {
            return Ok(Vec::new());
        }
        self.file.modify(
            &self.lock,
            |f: &mut JobFile| {
                let mut marked = Vec::new();
                for j in f.jobs.iter_mut().filter(|j| !j.state.finished() && dead(j)) {
                    j.state = State::Failed;
                    j.finished_at = Some(now.to_string());
                    j.error = Some(INTERRUPTED.to_string());
                    marked.push(j.clone());
                }
                Ok::<_, DurableError>(marked)
            },
            |_| Ok(()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, state: State) -> Job {
        let mut j = Job::new(id.into(), true, false, "admin", "2026-01-01T00:00:00.000Z");
        j.state = state;
        j
    }

    #[test]
    fn jobs_are_newest_first_and_only_the_last_fifty_finished_are_kept() {
        let mut f = JobFile::default();
        f.upsert(&job("running", State::Collecting));
        for i in 0..60 {
            f.upsert(&job(&format!("j{i}"), State::Succeeded));
        }
        assert_eq!(f.jobs[0].id, "j59");
        assert_eq!(f.jobs.len(), KEPT_JOBS + 1, "the unfinished job stays");
        assert!(f.jobs.iter().any(|j| j.id == "running"));
        assert!(!f.jobs.iter().any(|j| j.id == "j9"), "the oldest went");
        let mut changed = job("j59", State::Failed);
        changed.error = Some("x".into());
        f.upsert(&changed);
        assert_eq!(f.jobs[0], changed, "an update keeps its place");
    }

    #[test]
    fn a_second_job_is_refused_while_one_is_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::new(dir.path().join(FILE_NAME));
        assert_eq!(
            store.insert_if_idle(&job("a", State::Queued)).unwrap(),
            None
        );
        let refused = store.insert_if_idle(&job("b", State::Queued)).unwrap();
        assert_eq!(refused.map(|j| j.id), Some("a".to_string()));
        store.save(&job("a", State::Succeeded)).unwrap();
        assert_eq!(
            store.insert_if_idle(&job("b", State::Queued)).unwrap(),
            None
        );
        assert!(dir.path().join("gc.json.lock").exists());
    }

    #[test]
    fn progress_never_overwrites_a_finished_job_and_the_runner_is_omitted_when_unset() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::new(dir.path().join(FILE_NAME));
        let mut running = job("a", State::Collecting);
        store.save(&running).unwrap();
        running.log.push("marking".into());
        store.save_progress(&running).unwrap();
        assert_eq!(store.read().unwrap().jobs[0].log, ["marking"]);
        store.save(&job("a", State::Succeeded)).unwrap();
        store.save_progress(&running).unwrap();
        assert_eq!(store.read().unwrap().jobs[0].state, State::Succeeded);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("runner"), "{text}");
        running.runner = Some("replica-b".into());
        let json = serde_json::to_value(&running).unwrap();
        assert_eq!(json["runner"], "replica-b");
    }

    #[test]
    fn only_the_jobs_picked_are_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::new(dir.path().join(FILE_NAME));
        let mut alive = job("alive", State::Freezing);
        alive.runner = Some("a".into());
        store.save(&alive).unwrap();
        let marked = store
            .mark_interrupted_where("t", |j| j.runner.as_deref() == Some("b"))
            .unwrap();
        assert!(marked.is_empty());
        let marked = store
            .mark_interrupted_where("t", |j| j.runner.as_deref() == Some("a"))
            .unwrap();
        assert_eq!(marked.len(), 1);
        assert_eq!(store.read().unwrap().jobs[0].state, State::Failed);
    }

    #[test]
    fn a_restart_fails_the_jobs_that_were_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::new(dir.path().join(FILE_NAME));
        assert!(store.mark_interrupted("t").unwrap().is_empty());
        assert!(
            !store.path().exists(),
            "nothing is created when there were no jobs"
        );
        store.save(&job("old", State::Succeeded)).unwrap();
        store.save(&job("mid", State::Freezing)).unwrap();
        let marked = store.mark_interrupted("t1").unwrap();
        assert_eq!(marked.len(), 1);
        let f = store.read().unwrap();
        let mid = f.jobs.iter().find(|j| j.id == "mid").unwrap();
        assert_eq!(mid.state, State::Failed);
        assert_eq!(mid.error.as_deref(), Some(INTERRUPTED));
        assert_eq!(mid.finished_at.as_deref(), Some("t1"));
        assert_eq!(
            f.jobs.iter().find(|j| j.id == "old").unwrap().state,
            State::Succeeded
        );
    }
}
