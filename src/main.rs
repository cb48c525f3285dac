mod cli;

use std::process::ExitCode;

use clap::Parser;

use registry_admin::config::Config;
use registry_admin::startup::{self, StartupError};

fn main() -> ExitCode {
    // Before anything else: --help, --version and usage errors print and exit here, having
    // read no setting and touched no file.
    let args = cli::Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    cli::run(args.command.unwrap_or(cli::Command::Serve), run_service)
}

/// `registry-admin` / `registry-admin serve`: the service as `startup::build` assembles it.
fn run_service() -> ExitCode {
    let started = Config::from_env()
        .map_err(StartupError::from)
        .and_then(startup::build)
        .and_then(startup::serve);
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry-admin: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
