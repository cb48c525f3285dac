//! A PostgreSQL server for the cluster tests: Debian's PostgreSQL 15 initialised into a temp
//! dir and started on a free loopback port (about a second), or the server an existing
//! `DATABASE_URL` names — then each test gets its own, uniquely named database in it and the
//! server is never stopped. Every wait is bounded; `Drop` kills what was started here.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root, initdb and pg_ctl run as
//! the `postgres` user (`runuser`), in a directory that user owns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::skip::component_missing;
use super::{PortTaken, on_free_port, output_text as text, wait_until};

pub const PSQL: &str = "/usr/bin/psql";

/// `PG_BIN`, else the newest Debian PostgreSQL's server binaries (15 on bookworm).
fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| d.join("initdb").exists());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

pub struct Postgres {
    /// `None` when the server is an existing `DATABASE_URL`'s (never started or stopped here).
    local: Option<LocalServer>,
    /// `postgres://user@host:port` without a database, to which `/name` is appended.
    base_url: String,
}

struct LocalServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

/// Databases created by this test process, to keep names unique on a shared server.
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// The server of `DATABASE_URL` when set, else a fresh local one. `None` (after a banner)
    /// when PostgreSQL is not installed and we are not under CI.
    pub fn start() -> Option<Postgres> {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            let base_url = strip_database(&url);
            return Some(Postgres {
                local: None,
                base_url,
            });
        }
        let Some(bin) = pg_bin().filter(|_| Path::new(PSQL).exists()) else {
            component_missing(
                "PostgreSQL",
                "install it with scripts/install-deps.sh postgresql, or set DATABASE_URL",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).unwrap();
        give_to_postgres(dir.path());
        give_to_postgres(&sock);
        let out = as_postgres(Command::new(bin.join("initdb")).args([
            "-D",
            &data.display().to_string(),
            "--no-sync",
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
        ]));
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        let mut local = LocalServer {
            bin,
            dir,
            port: 0,
            running: false,
        };
        let port = on_free_port(|port| {
            local.port = port;
            local.pg_ctl_start()?;
            Ok(port)
        });
        Some(Postgres {
            local: Some(local),
            base_url: format!("postgres://postgres@127.0.0.1:{port}"),
        })
    }

    /// Creates a database named `name` (made unique per test process on a shared server) and
    /// returns its URL.
    pub fn database(&self, name: &str) -> String {
        let unique = format!(
            "{name}_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {unique}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {unique}: {e}"));
        format!("{}/{unique}", self.base_url)
    }

    /// Runs `sql` in database `db` of this server with psql (see [`psql`]).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        psql(&format!("{}/{db}", self.base_url), sql)
    }

    /// Whether this harness started the server (and so may stop it).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// Stops the local server at once (`-m immediate`, as a crash would); a no-op on an
    /// existing `DATABASE_URL`'s server, which is never stopped — check [`Self::is_local`].
    pub fn stop(&mut self) {
        if let Some(l) = &mut self.local {
            l.stop();
        }
    }

    /// Starts the local server again on the same port and data.
    pub fn start_again(&mut self) {
        if let Some(l) = &mut self.local
            && let Err(PortTaken(p)) = l.pg_ctl_start()
        {
            panic!("port {p} was taken by another process while PostgreSQL was stopped");
        }
    }
}

impl LocalServer {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn pg_ctl_start(&mut self) -> Result<(), PortTaken> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            port = self.port,
            sock = self.dir.path().join("sock").display(),
        );
        let log_start = std::fs::metadata(self.log()).map(|m| m.len()).unwrap_or(0) as usize;
        let out = as_postgres(Command::new(self.bin.join("pg_ctl")).args([
            "-D",
            &self.data().display().to_string(),
            "-l",
            &self.log().display().to_string(),
            "-w",
            "-t",
            "30",
            "-o",
            &options,
            "start",
        ]));
        if !out.status.success() {
            let log = std::fs::read(self.log()).unwrap_or_default();
            let log = String::from_utf8_lossy(log.get(log_start..).unwrap_or_default());
            if log.contains("Address already in use") {
                return Err(PortTaken(self.port));
            }
            panic!("pg_ctl start failed: {}\n{log}", text(&out));
        }
        self.running = true;
        // pg_ctl -w waited for the socket; the TCP side is what the replicas use.
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        wait_until(
            "PostgreSQL to answer on TCP",
            Duration::from_secs(20),
            || {
                Command::new(PSQL)
                    .args(["-X", "-At", "-c", "select 1", &url])
                    .stdin(Stdio::null())
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        Ok(())
    }

    fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = as_postgres(Command::new(self.bin.join("pg_ctl")).args([
            "-D",
            &self.data().display().to_string(),
            "-m",
            "immediate",
            "-w",
            "-t",
            "30",
            "stop",
        ]));
        self.running = false;
        if !out.status.success() {
            eprintln!("pg_ctl stop: {}", text(&out));
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `sql` on the database at `url` with psql; its output (unaligned, tuples only, trimmed),
/// or psql's error text.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let out = Command::new(PSQL)
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(format!("{url}{sep}connect_timeout=5"))
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(text(&out))
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `cmd` as the `postgres` user when we are root (PostgreSQL refuses root), else as is.
fn as_postgres(cmd: &mut Command) -> Output {
    let cmd = if running_as_root() {
        let mut wrapped = Command::new("runuser");
        wrapped
            .args(["-u", "postgres", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        wrapped
    } else {
        std::mem::replace(cmd, Command::new("true"))
    };
    let mut cmd = cmd;
    // pg_ctl's server inherits these; closed pipes would otherwise keep `output()` waiting.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run a PostgreSQL command")
}

fn give_to_postgres(path: &Path) {
    if running_as_root() {
        let ok = Command::new("chown")
            .arg("postgres:postgres")
            .arg(path)
            .status()
            .expect("chown");
        assert!(ok.success(), "chown postgres {}", path.display());
    }
}

fn strip_database(url: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[scheme_end..].find('/') {
        Some(i) => url[..scheme_end + i].to_string(),
        None => url.split('?').next().unwrap_or(url).to_string(),
    }
}
