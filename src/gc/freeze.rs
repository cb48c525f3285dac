//! A job's hold on the [`WriteFreeze`]: taken before anything is marked, released when the job
//! ends however it ends (the guard thaws on drop, so an error, a panic or a dropped task cannot
//! leave pushes refused).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::blocking::run_blocking;
use crate::freeze::{REGISTRY_LEEWAY_SECS, WriteFreeze};

/// After the freeze starts, a token the token server was signing at that very moment may be
/// noted a moment later; looking again after this pause sees it.
const SETTLE: Duration = Duration::from_millis(250);
/// How often to look again while API writes that began before the freeze are under way.
const POLL: Duration = Duration::from_millis(50);

pub struct FreezeGuard {
    freeze: Arc<WriteFreeze>,
    /// Cluster mode: the job whose freeze of the maintenance row this guard ends on drop.
    cluster_job: Option<String>,
    /// Set by `release`, which has thawed already: the drop that follows does nothing.
    released: bool,
}

impl FreezeGuard {
    pub fn take(freeze: Arc<WriteFreeze>) -> FreezeGuard {
        freeze.freeze(Utc::now());
        FreezeGuard {
            freeze,
            cluster_job: None,
            released: false,
        }
    }

    /// Cluster mode: the maintenance row is frozen by `job` too (`gc::cluster::freeze` has
    /// committed); dropping the guard ends that freeze as well.
    pub fn holds_cluster(&mut self, job: &str) {
        self.cluster_job = Some(job.to_string());
    }

    /// [`Self::wait_for_writes`], also until `floor` (cluster mode: the other replicas' write
    /// tokens and API writes, see `gc::cluster`).
    pub async fn wait_for_writes_and(&self, max: Duration, floor: DateTime<Utc>) -> Duration {
        let started = tokio::time::Instant::now();
        let left = remaining(floor, Utc::now()).min(max);
        let local = self.wait_for_writes(max).await;
        let elapsed = started.elapsed();
        if elapsed < left {
            tokio::time::sleep(left - elapsed).await;
        }
        local.max(started.elapsed())
    }

    /// Waits until no write token issued before the freeze can still be used (their latest
    /// `exp` plus registry:2's leeway) and no API write begun before it is still under way.
    /// Never longer than `max` (a token lives at most `REGISTRY_TOKEN_TTL`, so a longer wait
    /// could only come from a clock jump or a write that hangs past its timeouts). Returns how
    /// long it waited.
    pub async fn wait_for_writes(&self, max: Duration) -> Duration {
        let started = tokio::time::Instant::now();
        tokio::time::sleep(SETTLE).await;
        loop {
            // `freeze` again is idempotent and answers what is outstanding now, including a
            // token noted after the first call.
            let until = self.freeze.freeze(Utc::now());
            let in_flight = self.freeze.writes_in_flight();
            if until.is_none() && in_flight == 0 {
                break;
            }
            let left = max.saturating_sub(started.elapsed());
            if left.is_zero() {
                log::warn!(
                    "gc: write tokens valid until {until:?}, {in_flight} API writes under way; \
                     waited the maximum {max:?}"
                );
                break;
            }
            let pause = match until {
                Some(until) if in_flight == 0 => remaining(until, Utc::now()),
                Some(until) => remaining(until, Utc::now()).min(POLL),
                None => POLL,
            };
            tokio::time::sleep(pause.min(left)).await;
        }
        started.elapsed()
    }
}

impl FreezeGuard {
    /// Ends the freeze now and, in cluster mode, waits until the maintenance row is thawed
    /// too, so that whatever the job writes next (its finished state) reaches the other
    /// replicas after the thaw, never before it. Dropping the guard thaws as well, but the
    /// row's update then runs on a thread of its own, unordered with what follows.
    pub async fn release(mut self) {
        self.released = true;
        self.freeze.thaw();
        let (Some(job), Some(db)) = (self.cluster_job.take(), self.freeze.database().cloned())
        else {
            return;
        };
        let id = job.clone();
        // Should it fail, every replica's watch ends a freeze whose job has finished
        // (gc::cluster), as after a failed thaw on drop.
        match run_blocking(move || super::cluster::thaw(&db, &id)).await {
            // This replica has just committed the thaw: it need not wait for its next read of
            // the row (up to 200 ms) to sign push tokens again.
            Ok(Ok(())) => self.freeze.observe(None),
            Ok(Err(e)) => log::error!("gc: job {job}: ending the cluster's freeze: {e}"),
            Err(e) => log::error!("gc: job {job}: ending the cluster's freeze: {e}"),
        }
    }
}

/// The longest a job may wait: a token issued just before the freeze, for `ttl` seconds, plus
/// the leeway and a few seconds of clock slack.
pub fn max_wait(token_ttl_secs: u64) -> Duration {
    Duration::from_secs(token_ttl_secs + REGISTRY_LEEWAY_SECS as u64 + 5)
}

fn remaining(until: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    // Rounded up to whole milliseconds past `until`, so the next look finds nothing left.
    (until - now)
        .to_std()
        .map(|d| d + Duration::from_millis(1))
        .unwrap_or(Duration::from_millis(1))
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.freeze.thaw();
        if let (Some(job), Some(db)) = (self.cluster_job.take(), self.freeze.database()) {
            // A database call may block: not on this (possibly async) thread. Should it fail,
            // every replica's watch ends a freeze whose job has finished (gc::cluster).
            let db = Arc::clone(db);
            let spawned = std::thread::Builder::new()
                .name("gc-thaw".into())
                .spawn(move || {
                    if let Err(e) = super::cluster::thaw(&db, &job) {
                        log::error!("gc: job {job}: ending the cluster's freeze: {e}");
                    }
                });
            if let Err(e) = spawned {
                log::error!("gc: cannot start the thaw: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wait_lasts_until_the_last_write_token_plus_leeway_and_the_guard_thaws() {
        let freeze = Arc::new(WriteFreeze::default());
        // Valid (with the leeway) for about 700 ms more.
        freeze.note_write_token(Utc::now() - chrono::Duration::milliseconds(59_300));
        {
            let guard = FreezeGuard::take(Arc::clone(&freeze));
            assert!(freeze.is_frozen());
            let waited = guard.wait_for_writes(Duration::from_secs(60)).await;
            assert!(waited >= Duration::from_millis(600), "{waited:?}");
            assert!(
                freeze.freeze(Utc::now()).is_none(),
                "nothing outstanding after the wait"
            );
        }
        assert!(!freeze.is_frozen(), "dropping the guard thaws");
    }

    #[tokio::test]
    async fn the_wait_lasts_until_writes_begun_before_the_freeze_have_ended() {
        let freeze = Arc::new(WriteFreeze::default());
        let writer = Arc::clone(&freeze);
        let (begun, wait_begun) = std::sync::mpsc::channel();
        let write = std::thread::spawn(move || {
            let w = writer.begin_write().expect("not frozen yet");
            begun.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(700));
            drop(w);
        });
        wait_begun.recv().unwrap();
        let guard = FreezeGuard::take(Arc::clone(&freeze));
        let waited = guard.wait_for_writes(Duration::from_secs(60)).await;
        assert!(waited >= Duration::from_millis(600), "{waited:?}");
        assert_eq!(freeze.writes_in_flight(), 0);
        write.join().unwrap();
        drop(guard);
        assert!(!freeze.is_frozen());
    }

    #[tokio::test]
    async fn a_wait_is_cut_at_its_maximum() {
        let freeze = Arc::new(WriteFreeze::default());
        freeze.note_write_token(Utc::now() + chrono::Duration::seconds(100_000));
        let guard = FreezeGuard::take(Arc::clone(&freeze));
        let waited = guard.wait_for_writes(Duration::from_millis(400)).await;
        assert!(waited >= Duration::from_millis(400), "{waited:?}");
        assert!(waited < Duration::from_secs(30), "{waited:?}");
        drop(guard);
        assert!(!freeze.is_frozen());
    }

    #[tokio::test]
    async fn release_thaws_and_the_drop_after_it_changes_nothing() {
        let freeze = Arc::new(WriteFreeze::default());
        let guard = FreezeGuard::take(Arc::clone(&freeze));
        assert!(freeze.is_frozen());
        guard.release().await;
        assert!(!freeze.is_frozen(), "released: writes are allowed again");
        let again = FreezeGuard::take(Arc::clone(&freeze));
        assert!(
            freeze.is_frozen(),
            "a later freeze is not undone by the released guard"
        );
        drop(again);
        assert!(!freeze.is_frozen());
    }

    #[test]
    fn the_maximum_covers_a_whole_token_lifetime_and_the_leeway() {
        assert_eq!(max_wait(300), Duration::from_secs(365));
        let now = Utc::now();
        assert_eq!(
            remaining(now, now + chrono::Duration::seconds(5)),
            Duration::from_millis(1)
        );
    }
}
