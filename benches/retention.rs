//! Retention plan benchmark: 2,000 repositories × 50 tags, with a 1,000,000-entry audit log.
//!
//! Measures the evaluation core directly, in process, with no registry: (1) building the
//! push/pull index from the audit files, as at start-up; (2) evaluating every repository (the
//! index copy-out, protect, rules, digest and signature following, last-tag rule) for one plan.
//! The registry lookups a real plan also makes (one tag list per repository, one HEAD per tag)
//! are not included: they are the registry's time, made 4 repositories × 8 lookups at a time.
//!
//! Run with `cargo bench --bench retention`.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::time::Instant;

use chrono::{Duration, Utc};
use registry_admin::audit::entry::{Entry, Outcome, Source, format_time};
use registry_admin::audit::files::AuditFiles;
use registry_admin::retention::Facts;
use registry_admin::retention::evaluate::{RepoState, TagState, evaluate};
use registry_admin::retention::policy::{Policies, compile};
use serde_json::json;

const REPOS: usize = 2_000;
const TAGS: usize = 50;
const ENTRIES: usize = 1_000_000;
const TARGET_SECS: f64 = 5.0;

fn digest(repo: usize, tag: usize) -> String {
    // Every fifth tag shares the digest of the one before: re-tags.
    let t = tag - tag % 5 / 4;
    format!("sha256:{:064x}", repo * 1000 + t)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.log");
    let now = Utc::now();
    {
        let mut out = BufWriter::new(std::fs::File::create(&path).expect("audit.log"));
        let mut written = 0;
        let mut line = |e: &Entry| {
            serde_json::to_writer(&mut out, e).expect("write");
            out.write_all(b"\n").expect("write");
        };
        // One push per tag, then pulls and API entries until ENTRIES.
        for r in 0..REPOS {
            for t in 0..TAGS {
                let mut e = Entry::new("image.push", "ci", Outcome::Success, Source::Registry);
                e.time = format_time(now - Duration::hours((r * TAGS + t) as i64 % 2000));
                e.image = Some(format!("team{}/app", r % 40) + &format!("-{r}"));
                e.tag = Some(format!("ci-{t}"));
                e.digest = Some(digest(r, t));
                line(&e);
                written += 1;
            }
        }
        let mut i = 0usize;
        while written < ENTRIES {
            let (r, t) = (i % REPOS, (i / REPOS) % TAGS);
            let mut e = if i.is_multiple_of(3) {
                let mut e = Entry::new("token.issue", "ci", Outcome::Success, Source::Api);
                e.detail = Some("requested repository:team/app:pull".into());
                e
            } else {
                let mut e = Entry::new("image.pull", "ci", Outcome::Success, Source::Registry);
                e.image = Some(format!("team{}/app", r % 40) + &format!("-{r}"));
                e.digest = Some(digest(r, t));
                e
            };
            e.time = format_time(now - Duration::minutes((i % 100_000) as i64));
            line(&e);
            written += 1;
            i += 1;
        }
        out.flush().expect("flush");
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let started = Instant::now();
    let facts = Facts::from_audit(&AuditFiles::new(&path));
    let index_time = started.elapsed();

    let policies: Policies = serde_json::from_value(json!({"policies": [{
        "repositories": "**", "protect": ["v[0-9]+(\\.[0-9]+)*", "latest"],
        "rules": [{"include": "ci-.*", "newest_pushed": 10}, {"pulled_within": "30d"}]}]}))
    .expect("policies");
    let compiled = compile(&policies).expect("valid");
    let repos: Vec<(String, RepoState)> = (0..REPOS)
        .map(|r| {
            let name = format!("team{}/app", r % 40) + &format!("-{r}");
            let tags = (0..TAGS)
                .map(|t| TagState {
                    tag: format!("ci-{t}"),
                    digest: digest(r, t),
                })
                .collect();
            (
                name,
                RepoState {
                    tags,
                    children: HashMap::new(),
                },
            )
        })
        .collect();
    let started = Instant::now();
    let (mut kept, mut deleted) = (0, 0);
    for (name, state) in &repos {
        let d = evaluate(
            &compiled.for_repository(name),
            state,
            &facts.repository(name),
            now.timestamp_millis(),
        )
        .expect("a policy matches");
        kept += d.keep.len();
        deleted += d.delete.len();
    }
    let eval_time = started.elapsed();
    let total = (index_time + eval_time).as_secs_f64();

    println!(
        "registry-admin retention benchmark ({REPOS} repositories x {TAGS} tags, {ENTRIES} audit entries, {} MB; evaluation core, no registry): {kept} kept, {deleted} to delete",
        size / 1_000_000
    );
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| retention: push/pull index from {ENTRIES} audit entries (start-up) | {:.2} s | | | |",
        index_time.as_secs_f64()
    );
    println!(
        "| retention: evaluate {REPOS} x {TAGS} tags for a plan | {:.0} ms | | | |",
        eval_time.as_secs_f64() * 1000.0
    );
    println!("| retention: index + plan evaluation | {total:.2} s | | | <= {TARGET_SECS} s |");
}
