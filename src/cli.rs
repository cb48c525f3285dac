//! The operator's command line. With no arguments, or `serve`, the binary runs the service;
//! the other commands work on the files on the host, under the same locks as the service, so
//! they are safe while it runs (except `restore`, meant for a stopped stack).
//!
//! Each command reads only the settings it needs: `--help` and `--version` read none, and a
//! setting a command does not use cannot stop it (a broken `REGISTRY_TOKEN_KEY` must not stand
//! in the way of `restore`, which is how it gets fixed).

mod audit_of;
mod backup;
mod export;
mod import;
mod reset;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use thiserror::Error;

use registry_admin::audit::entry::clean;
use registry_admin::audit::source::ReadError;
use registry_admin::audit::writer::AuditError;
use registry_admin::config::{Config, ConfigError};
use registry_admin::store::DatabaseError;
use registry_admin::users::store::StoreError;

#[derive(Debug, Parser)]
#[command(
    name = "registry-admin",
    version,
    about = "Admin API, web UI and host-side tools for a private registry:2",
    long_about = "Admin API, web UI and host-side tools for a private registry:2.\n\n\
        With no command it runs the service. Settings come from the environment \
        (HTPASSWD_PATH, AUDIT_LOG_PATH, BCRYPT_COST, ...); the host-side commands read the \
        same ones as the service, so run them with the service's environment."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default)
    Serve,
    /// Set an account's password (the way back in when admin passwords are lost)
    ///
    /// The new password is the first line of stdin, or, when stdin is a terminal, a generated
    /// one printed once. The account is also enabled, created if missing, and with --admin made
    /// an admin. Safe while the service runs: registry:2 accepts the new password at once.
    ResetPassword {
        /// The account.
        user: String,
        /// Make the account an admin as well.
        #[arg(long)]
        admin: bool,
    },
    /// Check the audit log's hash chain
    ///
    /// The check of GET /audit/verify: prints its JSON report; exit 0 when intact, 1 when not.
    /// With DATABASE_URL set (cluster mode) it checks the chain in the database, else the files
    /// of AUDIT_LOG_PATH.
    VerifyAudit,
    /// Write the whole audit chain to FILE as audit.log lines
    ///
    /// In cluster mode (DATABASE_URL set) the chain is read from the database; in files mode
    /// audit.log's rotated files and audit.log are concatenated, oldest first. FILE must not
    /// exist (it is never overwritten); it is written beside itself and renamed into place once
    /// complete, and `AUDIT_LOG_PATH=FILE registry-admin verify-audit` checks it.
    ExportAudit {
        /// Where the lines go; must not exist.
        file: PathBuf,
    },
    /// Load a files-mode installation into the empty database of DATABASE_URL
    ///
    /// Reads HTPASSWD_PATH and the documents beside it (users.json, grants.json, robots.json,
    /// retention.json, gc.json) and the audit files of AUDIT_LOG_PATH, checks the files' audit
    /// chain, and writes everything in one transaction into a database that has no document and
    /// no audit entry yet (anything else is refused, exit 1, nothing changed). Run it before the
    /// replicas first start.
    ImportFiles,
    /// Copy the accounts, grants, robots, retention policies, token key and audit log into DIR
    ///
    /// Copies htpasswd, users.json, grants.json, robots.json, retention.json, the token key and
    /// certificate and the audit files (those that exist) into DIR (empty or new) with a manifest
    /// (backup.json), under the service's locks, so the copy is consistent while the service
    /// runs. Registry blobs are not included. In cluster mode (DATABASE_URL set) the accounts,
    /// documents and audit chain come from one snapshot of the database, in the same format.
    Backup {
        /// Where the copy goes; must be empty or not exist.
        dir: PathBuf,
    },
    /// Put a backup made by `backup` back
    ///
    /// Checks the manifest's checksums and the backup's audit chain first and changes nothing
    /// when anything does not verify. Stop registry-admin and registry:2 first; start both
    /// afterwards.
    Restore {
        /// A directory written by `backup`.
        dir: PathBuf,
    },
}

#[derive(Debug, Error)]
pub enum CliError {
    #[error("invalid setting {0}")]
    Setting(#[from] ConfigError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Audit(#[from] AuditError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("{0}")]
    Database(#[from] DatabaseError),
    #[error("reading the audit log: {0}")]
    ReadAudit(#[from] ReadError),
}

impl CliError {
    /// A bad setting is a usage problem, as it is for the service; anything else is a failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Setting(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The settings named in `names`, read from the environment; every other one keeps its
/// default, so only what the command uses can be refused.
pub(crate) fn settings(names: &[&str]) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| names.contains(&k).then(|| std::env::var(k).ok()).flatten())
}

/// Who ran the command, for the audit trail: the person behind sudo, else the login name.
pub(crate) fn os_actor() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| clean(&v, 64))
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "cli".into())
}

/// Runs `command`; `serve` is the service's start-up, which main owns.
pub fn run(command: Command, serve: impl FnOnce() -> ExitCode) -> ExitCode {
    let result = match command {
        Command::Serve => return serve(),
        Command::ResetPassword { user, admin } => {
            let stdin = std::io::stdin();
            let from_terminal = stdin.is_terminal();
            reset::run(&user, admin, from_terminal)
        }
        Command::VerifyAudit => verify_audit(),
        Command::ExportAudit { file } => export::run(&file),
        Command::ImportFiles => import::run(),
        Command::Backup { dir } => backup::backup(&dir),
        Command::Restore { dir } => backup::restore(&dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("registry-admin: {e}");
            e.exit_code()
        }
    }
}

fn verify_audit() -> Result<ExitCode, CliError> {
    let config = settings(audit_of::SETTINGS)?;
    let report = audit_of::open(&config)?.verify()?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{json}");
    match &report.first_bad_line {
        None => {
            eprintln!(
                "registry-admin: the audit chain is intact ({} entries{})",
                report.entries,
                match report.torn_lines.len() {
                    0 => String::new(),
                    n => format!(", {n} line(s) cut short by a crash"),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(bad) => {
            eprintln!(
                "registry-admin: the audit chain is broken: line {} of {} does not follow from the entry before it",
                bad.line, bad.file
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
