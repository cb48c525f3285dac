//! Prometheus metrics, named `registry_admin_*`, in the text exposition format; served at
//! `GET /metrics` by `ops`.

use crate::sync::lock;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// A GC job takes seconds to an hour: the freeze wait alone can be a token lifetime.
const GC_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

#[derive(Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_bounds(&BUCKETS)
    }
}

impl Histogram {
    fn with_bounds(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, secs: f64) {
        for (i, le) in self.bounds.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in self.bounds.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    request_seconds: Mutex<BTreeMap<String, Histogram>>,
    upstream: Mutex<BTreeMap<String, u64>>,
    upstream_seconds: Mutex<Histogram>,
    bcrypt_hash: AtomicU64,
    bcrypt_verify: AtomicU64,
    events_recorded: AtomicU64,
    events_dropped: AtomicU64,
    gc_runs: Mutex<BTreeMap<&'static str, u64>>,
    gc_seconds: Mutex<Option<Histogram>>,
    gc_bytes_freed: AtomicU64,
}

/// Methods kept as their own label value; anything else a client sends becomes `other`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// HTTP lets a client invent any method token; labelled as sent, each one would be a new
/// series held forever.
fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

impl Metrics {
    /// One answered request; `route` is the route template (or `unmatched`), never the raw
    /// path, and `method` is one of [`METHODS`] or `other`, so what a client sends cannot blow
    /// up the number of series.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        *lock(&self.requests)
            .entry((method_label(method).to_string(), route.to_string(), status))
            .or_default() += 1;
        lock(&self.request_seconds)
            .entry(route.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// One upstream request; `outcome` is `ok` or the kind of error.
    pub fn upstream(&self, outcome: &str, took: Duration) {
        *lock(&self.upstream).entry(outcome.to_string()).or_default() += 1;
        lock(&self.upstream_seconds).observe(took.as_secs_f64());
    }

    pub fn bcrypt_hash(&self) {
        self.bcrypt_hash.fetch_add(1, Ordering::Relaxed);
    }

    pub fn bcrypt_verify(&self) {
        self.bcrypt_verify.fetch_add(1, Ordering::Relaxed);
    }

    pub fn events(&self, recorded: u64, dropped: u64) {
        self.events_recorded.fetch_add(recorded, Ordering::Relaxed);
        self.events_dropped.fetch_add(dropped, Ordering::Relaxed);
    }

    /// One finished GC job: `outcome` is `succeeded` or `failed`; `bytes_freed` what a real
    /// run freed (0 for a dry run).
    pub fn gc_run(&self, outcome: &str, took: Duration, bytes_freed: u64) {
        let outcome = if outcome == "succeeded" {
            "succeeded"
        } else {
            "failed"
        };
        *lock(&self.gc_runs).entry(outcome).or_default() += 1;
        lock(&self.gc_seconds)
            .get_or_insert_with(|| Histogram::with_bounds(&GC_BUCKETS))
            .observe(took.as_secs_f64());
        self.gc_bytes_freed
            .fetch_add(bytes_freed, Ordering::Relaxed);
    }

    pub fn render(&self, audit_entries: u64) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "http_requests_total",
            "counter",
            "Requests answered, by route template and status.",
        );
        for ((m, r, s), n) in lock(&self.requests).iter() {
            let labels = format!(
                "method=\"{}\",route=\"{}\",status=\"{s}\"",
                escape(m),
                escape(r)
            );
            sample(&mut out, "http_requests_total", &labels, *n);
        }
        family(
            &mut out,
            "http_request_duration_seconds",
            "histogram",
            "Time to answer, by route template.",
        );
        for (r, h) in lock(&self.request_seconds).iter() {
            h.render(
                &mut out,
                "registry_admin_http_request_duration_seconds",
                &format!("route=\"{}\"", escape(r)),
            );
        }
        family(
            &mut out,
            "upstream_requests_total",
            "counter",
            "Requests to registry:2, by outcome (ok or the error kind).",
        );
        for (o, n) in lock(&self.upstream).iter() {
            sample(
                &mut out,
                "upstream_requests_total",
                &format!("outcome=\"{}\"", escape(o)),
                *n,
            );
        }
        family(
            &mut out,
            "upstream_request_duration_seconds",
            "histogram",
            "Time of requests to registry:2.",
        );
        lock(&self.upstream_seconds).render(
            &mut out,
            "registry_admin_upstream_request_duration_seconds",
            "",
        );
        family(
            &mut out,
            "bcrypt_operations_total",
            "counter",
            "bcrypt hashes and verifications run.",
        );
        sample(
            &mut out,
            "bcrypt_operations_total",
            "op=\"hash\"",
            self.bcrypt_hash.load(Ordering::Relaxed),
        );
        sample(
            &mut out,
            "bcrypt_operations_total",
            "op=\"verify\"",
            self.bcrypt_verify.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "audit_entries_written_total",
            "counter",
            "Audit entries written since start.",
        );
        sample(&mut out, "audit_entries_written_total", "", audit_entries);
        family(
            &mut out,
            "registry_events_total",
            "counter",
            "Registry notifications received, by result.",
        );
        sample(
            &mut out,
            "registry_events_total",
            "result=\"recorded\"",
            self.events_recorded.load(Ordering::Relaxed),
        );
        sample(
            &mut out,
            "registry_events_total",
            "result=\"dropped\"",
            self.events_dropped.load(Ordering::Relaxed),
        );
        family(
            &mut out,
            "gc_runs_total",
            "counter",
            "Garbage-collection jobs finished, by outcome.",
        );
        let runs = lock(&self.gc_runs).clone();
        for outcome in ["succeeded", "failed"] {
            let n = runs.get(outcome).copied().unwrap_or(0);
            sample(
                &mut out,
                "gc_runs_total",
                &format!("outcome=\"{outcome}\""),
                n,
            );
        }
        family(
            &mut out,
            "gc_duration_seconds",
            "histogram",
            "Wall time of garbage-collection jobs, freeze wait included.",
        );
        lock(&self.gc_seconds)
            .get_or_insert_with(|| Histogram::with_bounds(&GC_BUCKETS))
            .render(&mut out, "registry_admin_gc_duration_seconds", "");
        family(
            &mut out,
            "gc_bytes_freed_total",
            "counter",
            "Bytes of blobs deleted by garbage-collection jobs (dry runs count nothing).",
        );
        sample(
            &mut out,
            "gc_bytes_freed_total",
            "",
            self.gc_bytes_freed.load(Ordering::Relaxed),
        );
        out
    }
}

/// How the audit log stands, read when `/metrics` is asked.
pub struct AuditVolume {
    /// Free bytes on the audit volume; `None` when it could not be read.
    pub free_bytes: Option<u64>,
    /// `AUDIT_MIN_FREE_BYTES`.
    pub min_free_bytes: u64,
    /// Identical entries counted instead of written since start.
    pub coalesced: u64,
    /// Entries that could not be written since start.
    pub failures: u64,
    /// Whether entries can be written now (the last write or reservation worked).
    pub writable: bool,
}

/// The audit-volume families, appended to `Metrics::render`'s text.
pub fn render_audit_volume(v: &AuditVolume) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "audit_volume_free_bytes",
        "gauge",
        "Free bytes on the filesystem holding the audit log.",
    );
    if let Some(free) = v.free_bytes {
        sample(&mut out, "audit_volume_free_bytes", "", free);
    }
    family(
        &mut out,
        "audit_volume_low",
        "gauge",
        "1 while the audit volume has less free space than AUDIT_MIN_FREE_BYTES.",
    );
    let low = v.free_bytes.is_some_and(|f| f < v.min_free_bytes);
    sample(&mut out, "audit_volume_low", "", u64::from(low));
    family(
        &mut out,
        "audit_writable",
        "gauge",
        "1 while audit entries can be written; 0 means state-changing requests answer 503.",
    );
    sample(&mut out, "audit_writable", "", u64::from(v.writable));
    family(
        &mut out,
        "audit_entries_coalesced_total",
        "counter",
        "Identical token.issue and image.pull entries counted in a later entry's repeats instead of written.",
    );
    sample(&mut out, "audit_entries_coalesced_total", "", v.coalesced);
    family(
        &mut out,
        "audit_write_failures_total",
        "counter",
        "Audit entries that could not be written.",
    );
    sample(&mut out, "audit_write_failures_total", "", v.failures);
    out
}

/// The `# HELP` and `# TYPE` lines of a metric family; `name` without the common prefix.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP registry_admin_{name} {help}");
    let _ = writeln!(out, "# TYPE registry_admin_{name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "registry_admin_{name} {value}");
    } else {
        let _ = writeln!(out, "registry_admin_{name}{{{labels}}} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("GET", "/users/{user}", 200, Duration::from_millis(3));
        m.request("GET", "/users/{user}", 200, Duration::from_millis(30));
        m.upstream("ok", Duration::from_millis(2));
        m.bcrypt_verify();
        m.events(2, 1);
        let text = m.render(7);
        assert!(text.contains("registry_admin_http_requests_total{method=\"GET\",route=\"/users/{user}\",status=\"200\"} 2"));
        assert!(text.contains("registry_admin_http_request_duration_seconds_bucket{route=\"/users/{user}\",le=\"0.005\"} 1"));
        assert!(text.contains(
            "registry_admin_http_request_duration_seconds_count{route=\"/users/{user}\"} 2"
        ));
        assert!(
            text.contains("registry_admin_upstream_request_duration_seconds_bucket{le=\"+Inf\"} 1")
        );
        assert!(text.contains("registry_admin_audit_entries_written_total 7"));
        assert!(text.contains("registry_admin_registry_events_total{result=\"dropped\"} 1"));
        assert!(text.contains("registry_admin_bcrypt_operations_total{op=\"verify\"} 1"));
    }

    #[test]
    fn gc_runs_are_counted_by_outcome_with_their_time_and_bytes() {
        let m = Metrics::default();
        let text = m.render(0);
        assert!(text.contains("registry_admin_gc_runs_total{outcome=\"failed\"} 0"));
        assert!(text.contains("registry_admin_gc_bytes_freed_total 0"));
        m.gc_run("succeeded", Duration::from_secs(2), 1000);
        m.gc_run("failed", Duration::from_secs(4000), 0);
        m.gc_run("weird", Duration::from_secs(1), 5);
        let text = m.render(0);
        assert!(text.contains("registry_admin_gc_runs_total{outcome=\"succeeded\"} 1"));
        assert!(text.contains("registry_admin_gc_runs_total{outcome=\"failed\"} 2"));
        assert!(text.contains("registry_admin_gc_duration_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("registry_admin_gc_duration_seconds_bucket{le=\"+Inf\"} 3"));
        assert!(text.contains("registry_admin_gc_bytes_freed_total 1005"));
    }

    #[test]
    fn the_audit_volume_is_reported_with_its_low_flag() {
        let mut v = AuditVolume {
            free_bytes: Some(10),
            min_free_bytes: 100,
            coalesced: 4,
            failures: 2,
            writable: false,
        };
        let text = render_audit_volume(&v);
        assert!(text.contains("registry_admin_audit_volume_free_bytes 10\n"));
        assert!(text.contains("registry_admin_audit_volume_low 1\n"));
        assert!(text.contains("registry_admin_audit_writable 0\n"));
        assert!(text.contains("registry_admin_audit_entries_coalesced_total 4\n"));
        assert!(text.contains("registry_admin_audit_write_failures_total 2\n"));
        v.free_bytes = Some(100);
        v.writable = true;
        let text = render_audit_volume(&v);
        assert!(text.contains("registry_admin_audit_volume_low 0\n"));
        assert!(text.contains("registry_admin_audit_writable 1\n"));
    }

    #[test]
    fn invented_methods_share_one_series() {
        let m = Metrics::default();
        for i in 0..100 {
            m.request(&format!("JUNK{i}"), "unmatched", 404, Duration::ZERO);
        }
        m.request("get", "unmatched", 404, Duration::ZERO);
        m.request("PATCH", "unmatched", 404, Duration::ZERO);
        let text = m.render(0);
        assert!(text.contains(
            "registry_admin_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 101"
        ));
        assert!(text.contains("method=\"PATCH\""));
        assert!(!text.contains("JUNK"));
    }
}
