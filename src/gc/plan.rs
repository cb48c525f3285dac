//! What a job needs to know before it may start, and the refusals when it could not be safe:
//! no usable `REGISTRY_CONFIG`, a blob-descriptor cache that is not a purged shared Redis, no
//! runnable `REGISTRY_BIN`, or an untagged cleanup or pruning the setup cannot do safely.

use std::ffi::OsString;
use std::path::PathBuf;

use super::GcError;
use super::bin::{environment, find_bin, utf8_env};
use super::registry_config::{self, CacheRule, RegistrySettings};
use super::request::StartRequest;
use super::run::child_env;
use crate::blocking::run_blocking;
use crate::config::{AuthMode, Config};

pub(super) struct Plan {
    pub config_path: PathBuf,
    pub bin: PathBuf,
    pub settings: RegistrySettings,
    /// The child's environment.
    pub env: Vec<(OsString, OsString)>,
}

pub(super) async fn plan(
    config: &Config,
    req: StartRequest,
    clustered: bool,
) -> Result<Plan, GcError> {
    let config_path = config.registry_config.clone().ok_or_else(|| {
        GcError::Unavailable(
            "REGISTRY_CONFIG is not set: garbage collection runs `garbage-collect` on registry:2's \
             config file, so registry-admin must be given its path"
                .into(),
        )
    })?;
    let env = environment();
    let utf8 = utf8_env(&env);
    let settings = {
        let path = config_path.clone();
        let rule = if clustered {
            CacheRule::RedisPurged
        } else {
            CacheRule::NoCache
        };
        run_blocking(move || registry_config::load(&path, &utf8, rule)).await?
    }
    .map_err(GcError::Unavailable)?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_os_str());
    let bin = find_bin(&config.registry_bin, path_var).ok_or_else(|| {
        GcError::Unavailable(format!(
            "REGISTRY_BIN {} cannot be run (not found, or not executable)",
            config.registry_bin.display()
        ))
    })?;
    if req.untagged {
        if config.auth_mode != AuthMode::Token {
            return Err(GcError::Unavailable(
                "untagged cleanup needs AUTH_MODE=token: only there can writes be frozen while \
                 manifests are deleted (a read-only registry refuses the deletes)"
                    .into(),
            ));
        }
        if settings.root.is_none() {
            return Err(GcError::Unavailable(format!(
                "untagged cleanup needs the filesystem storage driver (it reads the stored \
                 manifests from disk); this registry uses {:?}",
                settings.driver
            )));
        }
        if !settings.delete_enabled {
            return Err(GcError::Unavailable(
                "untagged cleanup needs storage.delete.enabled: true in the registry config".into(),
            ));
        }
    }
    if req.prune_empty && settings.root.is_none() {
        return Err(GcError::Unavailable(format!(
            "prune_empty needs the filesystem storage driver (it removes repository directories \
             from disk); this registry uses {:?}",
            settings.driver
        )));
    }
    Ok(Plan {
        config_path,
        bin,
        settings,
        env: child_env(env),
    })
}
