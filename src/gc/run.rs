//! The `garbage-collect` child process: `REGISTRY_BIN garbage-collect [--dry-run]
//! REGISTRY_CONFIG`, never `--delete-untagged` (it deletes the children of tagged multi-arch
//! images: docs/registry-facts.md, "Garbage collection").
//!
//! - Environment: ours less registry-admin's own settings. registry:2 reads every `REGISTRY_*`
//!   variable as a config override, so `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY` given to us
//!   must reach it, while `REGISTRY_URL`, `REGISTRY_PASSWORD` and the rest must not (they are
//!   logged as unrecognised at best; at worst a future key matches one).
//! - Output: both streams read line by line as they come, each line cut at [`MAX_LINE_BYTES`],
//!   only the last [`LOG_LINES`] kept; the counts are taken from the whole stream as it passes.
//! - Time: killed after the caller's timeout (and when the job's task is dropped).
//! - Bytes freed: the sizes of all blob files are read before the command runs, since it
//!   deletes each blob right after naming it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use super::job::LOG_LINES;

/// A longer line is cut here: the log is for people, and one line must not cost memory
/// without bound.
pub const MAX_LINE_BYTES: usize = 4096;
/// Blob files whose size is read before a run; a larger store is counted up to here.
pub const MAX_SCANNED_BLOBS: usize = 5_000_000;

/// Every setting registry-admin reads (README "Settings"); these never reach registry:2.
/// `own_settings_are_every_variable_config_reads` keeps the list whole.
pub const OWN_SETTINGS: [&str; 30] = [
    "BIND_ADDR",
    "REGISTRY_URL",
    "HTPASSWD_PATH",
    "AUDIT_LOG_PATH",
    "AUDIT_MAX_BYTES",
    "AUDIT_MIN_FREE_BYTES",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "EVENTS_TOKEN",
    "BCRYPT_COST",
    "TOKEN_TTL",
    "TOKEN_SECRET",
    "TRUSTED_PROXIES",
    "PUBLIC_REGISTRY_HOST",
    "AUTH_MODE",
    "REGISTRY_TOKEN_KEY",
    "REGISTRY_TOKEN_SERVICE",
    "REGISTRY_TOKEN_ISSUER",
    "REGISTRY_TOKEN_TTL",
    "REGISTRY_CONFIG",
    "REGISTRY_BIN",
    "GC_UNTAGGED_GRACE",
    "RETENTION_SCHEDULE",
    "DATABASE_URL",
    "REPLICA_ID",
    "DATABASE_POOL_SIZE",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// The environment `garbage-collect` gets: `env` less [`OWN_SETTINGS`].
pub fn child_env(env: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    env.into_iter()
        .filter(|(k, _)| !OWN_SETTINGS.iter().any(|own| k == own))
        .collect()
}

/// The blob store's files: `<root>/docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`.
pub fn blobs_dir(root: &Path) -> PathBuf {
    root.join("docker/registry/v2/blobs/sha256")
}

/// Size of every blob under `root`, by its hex digest. A missing store is empty. Blocking.
pub fn blob_sizes(root: &Path) -> io::Result<HashMap<String, u64>> {
    let mut sizes = HashMap::new();
    let top = match std::fs::read_dir(blobs_dir(root)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(sizes),
        Err(e) => return Err(e),
    };
    for prefix in top {
        let prefix = prefix?;
        if !prefix.file_type()?.is_dir() {
            continue;
        }
        for blob in std::fs::read_dir(prefix.path())? {
            let blob = blob?;
            if sizes.len() >= MAX_SCANNED_BLOBS {
                log::warn!(
                    "gc: more than {MAX_SCANNED_BLOBS} blobs; bytes_freed counts only those"
                );
                return Ok(sizes);
            }
            if let Ok(meta) = std::fs::metadata(blob.path().join("data")) {
                sizes.insert(blob.file_name().to_string_lossy().into_owned(), meta.len());
            }
        }
    }
    Ok(sizes)
}

#[derive(Debug, Error)]
pub enum RunError {
    #[error("cannot run {bin}: {source}")]
    Spawn { bin: String, source: io::Error },
    #[error("garbage-collect did not finish within {0:?} and was killed")]
    Timeout(Duration),
    #[error("garbage-collect failed ({status}): {last}")]
    Failed { status: String, last: String },
    #[error("reading garbage-collect's output: {0}")]
    Io(#[from] io::Error),
    #[error(
        "garbage-collect was stopped: this replica no longer holds the cluster's write freeze (the database cannot be read, or the job was taken for dead)"
    )]
    FreezeLost,
}

/// What the command reported.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    /// Blobs named "eligible for deletion" (deleted, unless a dry run).
    pub blobs: u64,
    /// Manifests named "eligible for deletion"; without `--delete-untagged` it names none.
    pub manifests: u64,
    /// The sizes of those blobs, as read before the run.
    pub bytes: u64,
    /// registry:2's own "N blobs marked" figure.
    pub marked: Option<u64>,
    /// The registry has never stored a repository: nothing to do, not an error.
    pub empty_registry: bool,
}

/// Takes the counts from `garbage-collect`'s lines as they pass.
#[derive(Default)]
pub struct OutputParser {
    counts: Counts,
    eligible: BTreeSet<String>,
    summary: Option<(u64, u64, u64)>,
}

impl OutputParser {
    pub fn line(&mut self, line: &str, sizes: &HashMap<String, u64>) {
        let line = line.trim();
        if let Some(digest) = line.strip_prefix("blob eligible for deletion: ") {
            let digest = digest.trim();
            if self.eligible.insert(digest.to_string()) {
                let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
                self.counts.bytes = self
                    .counts
                    .bytes
                    .saturating_add(sizes.get(hex).copied().unwrap_or(0));
            }
        } else if line.starts_with("manifest eligible for deletion: ") {
            self.counts.manifests += 1;
        } else if let Some(s) = summary(line) {
            self.summary = Some(s);
        } else if line.contains("Path not found")
            && line.contains("/docker/registry/v2/repositories")
        {
            self.counts.empty_registry = true;
        }
    }

    pub fn finish(mut self) -> Counts {
        self.counts.blobs = self.eligible.len() as u64;
        if let Some((marked, blobs, manifests)) = self.summary {
            self.counts.marked = Some(marked);
            // The summary is registry:2's own count; the lines may have been cut short.
            self.counts.blobs = self.counts.blobs.max(blobs);
            self.counts.manifests = self.counts.manifests.max(manifests);
        }
        self.counts
    }
}

/// `N blobs marked, M blobs and K manifests eligible for deletion`.
fn summary(line: &str) -> Option<(u64, u64, u64)> {
    let (marked, rest) = line.split_once(" blobs marked, ")?;
    let (blobs, rest) = rest.split_once(" blobs and ")?;
    let manifests = rest.strip_suffix(" manifests eligible for deletion")?;
    Some((
        marked.trim().parse().ok()?,
        blobs.trim().parse().ok()?,
        manifests.trim().parse().ok()?,
    ))
}

/// The last [`LOG_LINES`] lines.
#[derive(Debug, Default, Clone)]
pub struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    pub fn push(&mut self, line: String) {
        if self.lines.len() == LOG_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    pub fn last(&self) -> Option<&str> {
        self.lines.back().map(String::as_str)
    }
}

/// One line of at most [`MAX_LINE_BYTES`] (the rest of a longer one is skipped), without its
/// line ending; `None` at the end of the stream.
async fn bounded_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut any = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(any.then(|| finish_line(line)));
        }
        any = true;
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let room = MAX_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let newline = done > chunk.len();
        r.consume(done);
        if newline {
            return Ok(Some(finish_line(line)));
        }
    }
}

fn finish_line(mut line: Vec<u8>) -> String {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Sends each line of `r` to `tx` until the stream ends.
async fn forward<R: AsyncRead + Unpin>(r: R, tx: mpsc::Sender<String>) -> io::Result<()> {
    let mut r = BufReader::new(r);
    while let Some(line) = bounded_line(&mut r).await? {
        if tx.send(line).await.is_err() {
            break;
        }
    }
    Ok(())
}

pub struct Run<'a> {
    pub bin: &'a Path,
    pub config: &'a Path,
    pub dry_run: bool,
    pub env: Vec<(OsString, OsString)>,
    pub timeout: Duration,
    /// Blob sizes by hex digest, from [`blob_sizes`].
    pub sizes: &'a HashMap<String, u64>,
    /// Asked twice a second while the command runs; once it says no, the command is killed
    /// (cluster mode: this replica's job no longer holds the cluster's freeze).
    pub keep_going: Option<&'a (dyn Fn() -> bool + Sync)>,
}

/// The arguments, in order: never `--delete-untagged`.
pub fn arguments(dry_run: bool, config: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["garbage-collect".into()];
    if dry_run {
        args.push("--dry-run".into());
    }
    args.push(config.as_os_str().to_owned());
    args
}

impl Run<'_> {
    /// Runs the command; `on_line` sees every (cut) line as it arrives, for the job's live
    /// log. An empty registry (exit 1, "Path not found …/repositories") is a success.
    pub async fn run(self, mut on_line: impl FnMut(&str)) -> Result<(Counts, Tail), RunError> {
        let mut child = Command::new(self.bin)
            .args(arguments(self.dry_run, self.config))
            .env_clear()
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RunError::Spawn {
                bin: self.bin.display().to_string(),
                source,
            })?;
        let (tx, mut rx) = mpsc::channel::<String>(256);
        let readers = [
            child
                .stdout
                .take()
                .map(|o| tokio::spawn(forward(o, tx.clone()))),
            child
                .stderr
                .take()
                .map(|e| tokio::spawn(forward(e, tx.clone()))),
        ];
        drop(tx);
        let mut parser = OutputParser::default();
        let mut tail = Tail::default();
        let collect = async {
            while let Some(line) = rx.recv().await {
                parser.line(&line, self.sizes);
                on_line(&line);
                tail.push(line);
            }
            child.wait().await
        };
        let keep_going = self.keep_going;
        let watch = async move {
            match keep_going {
                None => std::future::pending::<()>().await,
                Some(ok) => loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if !ok() {
                        return;
                    }
                },
            }
        };
        let finished = tokio::select! {
            r = tokio::time::timeout(self.timeout, collect) => Some(r),
            () = watch => None,
        };
        let Some(finished) = finished else {
            let _ = child.kill().await;
            for r in readers.into_iter().flatten() {
                r.abort();
            }
            return Err(RunError::FreezeLost);
        };
        let status = match finished {
            Ok(status) => status?,
            Err(_) => {
                let _ = child.kill().await;
                for r in readers.into_iter().flatten() {
                    r.abort();
                }
                return Err(RunError::Timeout(self.timeout));
            }
        };
        for r in readers.into_iter().flatten() {
            // A read error after the process ended loses at most the last lines.
            if let Ok(Err(e)) = r.await {
                log::warn!("gc: reading garbage-collect output: {e}");
            }
        }
        let counts = parser.finish();
        if status.success() || (counts.empty_registry && status.code() == Some(1)) {
            return Ok((counts, tail));
        }
        Err(RunError::Failed {
            status: status.to_string(),
            last: tail.last().unwrap_or("no output").to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;

    #[test]
    fn own_settings_are_every_variable_config_reads() {
        let asked = Mutex::new(BTreeSet::new());
        let _ = Config::from_lookup(|k| {
            asked.lock().unwrap().insert(k.to_string());
            None
        });
        for var in asked.into_inner().unwrap() {
            assert!(
                OWN_SETTINGS.contains(&var.as_str()),
                "{var} is missing from OWN_SETTINGS"
            );
        }
    }

    #[test]
    fn the_child_keeps_registry_overrides_and_loses_our_settings() {
        let env = [
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/data"),
            ("REGISTRY_URL", "http://x"),
            ("REGISTRY_PASSWORD", "secret"),
            ("ADMIN_PASSWORD", "secret"),
            ("PATH", "/usr/bin"),
            ("REGISTRY_CONFIG", "/etc/r.yml"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = child_env(env)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "PATH"]);
    }

    #[test]
    fn the_command_never_deletes_untagged_manifests() {
        let p = Path::new("/etc/registry.yml");
        assert_eq!(
            arguments(false, p),
            ["garbage-collect", "/etc/registry.yml"]
        );
        assert_eq!(
            arguments(true, p),
            ["garbage-collect", "--dry-run", "/etc/registry.yml"]
        );
    }

    // Lines as registry:2 2.8.2 prints them (docs/registry-facts.md, "Garbage collection").
    const OUTPUT: &str = "gc/a: marking manifest sha256:aaa\n\
        gc/a: marking blob sha256:bbb\n\
        \n\
        2 blobs marked, 2 blobs and 0 manifests eligible for deletion\n\
        blob eligible for deletion: sha256:c1\n\
        time=\"2026\" level=info msg=\"Deleting blob: /docker/registry/v2/blobs/sha256/c1/c1\" go.version=go1.19\n\
        blob eligible for deletion: sha256:c2\n";

    #[test]
    fn counts_and_bytes_come_from_the_eligible_lines_and_the_sizes_read_before() {
        let sizes: HashMap<String, u64> = [("c1".to_string(), 100), ("c2".to_string(), 23)].into();
        let mut p = OutputParser::default();
        for l in OUTPUT.lines() {
            p.line(l, &sizes);
        }
        let c = p.finish();
        assert_eq!(
            (c.blobs, c.manifests, c.bytes, c.marked),
            (2, 0, 123, Some(2))
        );
        assert!(!c.empty_registry);
        let mut p = OutputParser::default();
        p.line("failed to garbage collect: failed to mark: filesystem: Path not found: /docker/registry/v2/repositories", &sizes);
        assert!(p.finish().empty_registry);
    }

    #[test]
    fn the_tail_keeps_the_last_two_hundred_lines() {
        let mut t = Tail::default();
        for i in 0..500 {
            t.push(i.to_string());
        }
        let lines = t.lines();
        assert_eq!(lines.len(), LOG_LINES);
        assert_eq!(lines[0], "300");
        assert_eq!(t.last(), Some("499"));
    }

    #[test]
    fn blob_sizes_are_read_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        assert!(blob_sizes(dir.path()).unwrap().is_empty());
        let blob = blobs_dir(dir.path()).join("ab/abcd");
        std::fs::create_dir_all(&blob).unwrap();
        std::fs::write(blob.join("data"), b"12345").unwrap();
        assert_eq!(blob_sizes(dir.path()).unwrap().get("abcd"), Some(&5));
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-registry");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn run_script(body: &str, timeout: Duration) -> Result<(Counts, Tail), RunError> {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), body);
        let sizes = HashMap::new();
        let env = child_env([("PATH".into(), "/usr/bin:/bin".into())]);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(
                Run {
                    bin: &bin,
                    config: Path::new("/dev/null"),
                    dry_run: true,
                    env,
                    timeout,
                    sizes: &sizes,
                    keep_going: None,
                }
                .run(|_| {}),
            )
    }

    #[test]
    fn a_run_whose_hold_on_the_freeze_is_lost_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("finished");
        let bin = script(dir.path(), &format!("sleep 3; touch {}", marker.display()));
        let sizes = HashMap::new();
        let still = std::sync::atomic::AtomicBool::new(true);
        let asked = || still.swap(false, std::sync::atomic::Ordering::Relaxed);
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(
                Run {
                    bin: &bin,
                    config: Path::new("/dev/null"),
                    dry_run: false,
                    env: child_env([("PATH".into(), "/usr/bin:/bin".into())]),
                    timeout: Duration::from_secs(30),
                    sizes: &sizes,
                    keep_going: Some(&asked),
                }
                .run(|_| {}),
            );
        assert!(matches!(result, Err(RunError::FreezeLost)), "{result:?}");
        // Past the moment the command would have finished, had it not been killed.
        std::thread::sleep(Duration::from_secs(4));
        assert!(!marker.exists(), "the command did not go on after the kill");
    }

    #[test]
    fn long_output_is_kept_bounded_and_long_lines_are_cut() {
        let (counts, tail) = run_script(
            "i=0; while [ $i -lt 1000 ]; do echo \"line $i\"; i=$((i+1)); done; \
             head -c 100000 /dev/zero | tr '\\0' x; echo; echo \"$1 $2 $3\" >&2",
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(counts, Counts::default());
        let lines = tail.lines();
        assert_eq!(lines.len(), LOG_LINES);
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE_BYTES));
        assert!(lines.iter().any(|l| l.len() == MAX_LINE_BYTES));
        assert!(lines.contains(&"garbage-collect --dry-run /dev/null".to_string()));
    }

    #[test]
    fn a_failure_names_the_last_line_and_an_empty_registry_is_not_one() {
        let err = run_script("echo boom >&2; exit 3", Duration::from_secs(60)).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        let (counts, _) = run_script(
            "echo 'failed to garbage collect: failed to mark: filesystem: Path not found: /docker/registry/v2/repositories' >&2; exit 1",
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(counts.empty_registry);
        let err = run_script("sleep 30", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, RunError::Timeout(_)), "{err}");
        let err = run_script("", Duration::from_secs(5));
        assert!(err.is_ok());
    }
}
