mod cli;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use registry_admin::audit::AuditLog;
use registry_admin::bootstrap::{self, AdminOutcome};
use registry_admin::config::Config;
use registry_admin::users::store::UserStore;
use registry_admin::{AppState, serve};

fn main() -> ExitCode {
    // Before anything else: --help, --version and usage errors print and exit here, having
    // read no setting and touched no file.
    let args = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    cli::run(args.command.unwrap_or(cli::Command::Serve), run_service)
}

/// `registry-admin` / `registry-admin serve`.
fn run_service() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("registry-admin: invalid setting {e}");
            return ExitCode::from(2);
        }
    };
    match start(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry-admin: {e}");
            ExitCode::FAILURE
        }
    }
}
fn start(config: Config) -> Result<(), String> {
    if let Some(dir) = config
        .audit_log_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let store = Arc::new(UserStore::new(&config.htpasswd_path));
    store.clean_leftovers().map_err(|e| e.to_string())?;
    let registry_credentials =
        bootstrap::registry_credentials(&config, &store).map_err(|e| e.to_string())?;
    match bootstrap::ensure_admin(&config, &store).map_err(|e| e.to_string())? {
        AdminOutcome::Present => {}
        AdminOutcome::Ensured {
            username,
            generated: Some(password),
        } => {
            // Printed once, on stderr only, never through the logger: the operator's one chance.
            eprintln!(
                "registry-admin: created admin account {username:?} with password: {password}"
            );
        }
        AdminOutcome::Ensured { username, .. } => {
            log::warn!("no enabled admin existed; {username:?} is now an enabled admin");
        }
    }
    let listener = TcpListener::bind(config.bind_addr)
        .map_err(|e| format!("BIND_ADDR {}: {e}", config.bind_addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if config.events_token.is_none() {
        log::warn!("EVENTS_TOKEN is unset: registry notifications to /events are refused");
    }
    let audit = Arc::new(
        AuditLog::open(&config.audit_log_path, config.audit_max_bytes)
            .map_err(|e| e.to_string())?,
    );
    registry_admin::gc::recover(&store, &audit);
    let state = AppState::new(config, store, registry_credentials, Arc::clone(&audit))?;
    let served = actix_web::rt::System::new().block_on(async move {
        let server = serve(state, listener).map_err(|e| e.to_string())?;
        eprintln!("registry-admin: listening on http://{addr}");
        server.await.map_err(|e| e.to_string())
    });
    // The server has drained its requests (SIGTERM or SIGINT); write what is queued.
    audit.close();
    served
}
