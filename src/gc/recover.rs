//! At start-up (files mode): jobs a stopped process left unfinished are failed
//! ("interrupted"), each with the `gc.finish` entry it never wrote. Nothing else remembers a
//! freeze, so that ends it.

use chrono::Utc;

use super::finish::finish_entry;
use super::job::{FILE_NAME, JobStore};
use crate::audit::entry::format_time;
use crate::audit::writer::AuditLog;
use crate::users::store::UserStore;

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
