//! The `gc.finish` audit entry a job writes when it ends (or that is written for it when it
//! was interrupted).

use super::job::{Job, State};
use crate::audit::entry::{Entry, Outcome, Source, clean};

pub fn finish_entry(j: &Job) -> Entry {
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
    e.detail = Some(clean(&detail, 1000));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

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
