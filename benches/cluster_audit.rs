//! Cluster mode's audit chain: appends per second from two replicas at once, each an
//! `AuditLog` on its own database handle (its own pool and writer thread, as two processes
//! would have) appending to the one chain, against the files backend on this machine in the
//! same run. The chain is verified afterwards. PostgreSQL is the test harness's
//! (tests/common/postgres.rs: fsync off, as the figures it is compared with were measured).
//!
//! Run with `cargo bench --bench cluster_audit`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use common::bench::append_rate;
use common::postgres::Postgres;
use registry_admin::audit::AuditLog;
use registry_admin::store::Database;

/// Appends per replica.
const APPENDS: usize = 20_000;
/// Concurrent writers per replica, each waiting for its entry to be stored.
const WRITERS: usize = 128;

fn main() {
    let Some(pg) = Postgres::start() else {
        eprintln!("no PostgreSQL: the cluster audit benchmark did not run");
        return;
    };
    let url = pg.database("bench_audit");
    let replicas: Vec<Arc<AuditLog>> = ["bench-a", "bench-b"]
        .iter()
        .map(|id| {
            let db = Database::open(&url, id, 8).expect("the database");
            Arc::new(AuditLog::open_database(db).expect("the audit log"))
        })
        .collect();
    let cluster_rate = append_rate(&replicas, APPENDS, WRITERS);
    let report = replicas[0].source().verify().expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.entries as usize,
        2 * (APPENDS / WRITERS) * WRITERS,
        "{report:?}"
    );
    for r in &replicas {
        r.close();
    }

    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(AuditLog::open(dir.path().join("audit.log"), u64::MAX).unwrap());
    let files_rate = append_rate(&[Arc::clone(&files), files], APPENDS, WRITERS);

    println!(
        "registry-admin cluster audit benchmark (2 x {APPENDS} appends, {WRITERS} writers per replica)"
    );
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| audit appends to one chain in PostgreSQL from two replicas at once | {cluster_rate:.0} entries/s | files backend, same writers: {files_rate:.0}/s | {:.2}x | >= 2000/s |",
        cluster_rate / files_rate
    );
}
