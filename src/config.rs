//! Settings, read once from the environment at start-up.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::validate;

/// A setting that cannot be used; start-up stops and names the variable.
#[derive(Debug, Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn bad(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// How registry:2 decides who may do what (see README, "Modes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// registry:2 reads the shared htpasswd itself: every account may do anything there.
    Htpasswd,
    /// registry:2 trusts tokens from our `GET /token`, which carry only granted actions.
    Token,
}

/// Token mode's signing settings.
#[derive(Debug, Clone)]
pub struct RegistryTokenConfig {
    /// PEM EC P-256 private key; `token.crt` lives beside it.
    pub key_path: PathBuf,
    pub service: String,
    pub issuer: String,
    pub ttl: u64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind_addr: SocketAddr,
    pub registry_url: String,
    pub htpasswd_path: PathBuf,
    pub audit_log_path: PathBuf,
    /// Size at which `audit.log` is rotated to a numbered file.
    pub audit_max_bytes: u64,
    /// Free space on the audit volume under which `/health/ready` warns.
    pub audit_min_free_bytes: u64,
    pub admin_username: String,
    pub admin_password: Option<String>,
    /// Credentials toward registry:2 given by the operator; `None` means we provision our own.
    pub registry_credentials: Option<(String, String)>,
    pub events_token: Option<String>,
    pub bcrypt_cost: u32,
    pub token_ttl: u64,
    pub public_registry_host: String,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Key for API bearer tokens; `None`: a random one per process.
    pub token_secret: Option<String>,
    pub auth_mode: AuthMode,
    pub registry_token: RegistryTokenConfig,
    /// registry:2's config.yml, for garbage collection.
    pub registry_config: Option<PathBuf>,
    pub registry_bin: PathBuf,
    /// Seconds an untagged manifest must exist before a GC job may delete it.
    pub gc_untagged_grace: u64,
    /// `RETENTION_SCHEDULE`: when retention plans are made and applied; `None`: never.
    pub retention_schedule: Option<crate::schedule::Schedule>,
    /// `DATABASE_URL`: cluster mode, state in PostgreSQL; `None`: the files (the default).
    pub cluster: Option<ClusterConfig>,
}

/// Cluster mode's settings (`DATABASE_URL` and the settings that only matter with it).
#[derive(Clone)]
pub struct ClusterConfig {
    /// Never printed: it may carry a password.
    pub database_url: String,
    /// This replica's name in heartbeats, jobs and logs.
    pub replica_id: String,
    /// Connections per replica.
    pub pool_size: u32,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("database_url", &"<set>")
            .field("replica_id", &self.replica_id)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// A number of seconds within `range`, or the default.
fn seconds(
    var: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    v.parse::<u64>()
        .ok()
        .filter(|t| range.contains(t))
        .ok_or_else(|| {
            bad(
                var,
                format!(
                    "{v:?} is not a number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as `from_env`, with the environment given as a function so tests need not mutate it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());

        let bind = var("BIND_ADDR").unwrap_or_else(|| "0.0.0.0:5001".into());
        let bind_addr = bind.parse::<SocketAddr>().map_err(|e| {
            bad(
                "BIND_ADDR",
                format!("{bind:?} is not an address:port ({e})"),
            )
        })?;

        let registry_url = var("REGISTRY_URL").unwrap_or_else(|| "http://localhost:5000".into());
        let host_port = registry_host_port(&registry_url).ok_or_else(|| {
            bad(
                "REGISTRY_URL",
                format!("{registry_url:?} is not an http(s) URL with a host"),
            )
        })?;
        let registry_url = registry_url.trim_end_matches('/').to_string();

        let bcrypt_cost = match var("BCRYPT_COST") {
            None => 10,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|c| (4..=31).contains(c))
                .ok_or_else(|| bad("BCRYPT_COST", format!("{v:?} is not a number from 4 to 31")))?,
        };

        let token_ttl = seconds("TOKEN_TTL", var("TOKEN_TTL"), 900, 60..=86_400)?;
        let auth_mode = match var("AUTH_MODE").as_deref() {
            None | Some("htpasswd") => AuthMode::Htpasswd,
            Some("token") => AuthMode::Token,
            Some(other) => {
                return Err(bad(
                    "AUTH_MODE",
                    format!("{other:?} is neither \"htpasswd\" nor \"token\""),
                ));
            }
        };
        let registry_token = RegistryTokenConfig {
            key_path: var("REGISTRY_TOKEN_KEY")
                .unwrap_or_else(|| "./auth/token.key".into())
                .into(),
            service: var("REGISTRY_TOKEN_SERVICE").unwrap_or_else(|| "registry".into()),
            issuer: var("REGISTRY_TOKEN_ISSUER").unwrap_or_else(|| "registry-admin".into()),
            ttl: seconds(
                "REGISTRY_TOKEN_TTL",
                var("REGISTRY_TOKEN_TTL"),
                300,
                60..=3600,
            )?,
        };
        let gc_untagged_grace = seconds(
            "GC_UNTAGGED_GRACE",
            var("GC_UNTAGGED_GRACE"),
            86_400,
            0..=u32::MAX as u64,
        )?;

        let retention_schedule = var("RETENTION_SCHEDULE")
            .map(|v| crate::schedule::Schedule::parse(&v).map_err(|e| bad("RETENTION_SCHEDULE", e)))
            .transpose()?;

        let audit_max_bytes = match var("AUDIT_MAX_BYTES") {
            None => 100 * 1024 * 1024,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|b| *b >= 4096)
                .ok_or_else(|| {
                    bad(
                        "AUDIT_MAX_BYTES",
                        format!("{v:?} is not a number of bytes >= 4096"),
                    )
                })?,
        };

        let audit_min_free_bytes = match var("AUDIT_MIN_FREE_BYTES") {
            None => 256 * 1024 * 1024,
            Some(v) => v.parse::<u64>().map_err(|_| {
                bad(
                    "AUDIT_MIN_FREE_BYTES",
                    format!("{v:?} is not a number of bytes"),
                )
            })?,
        };

        let admin_username = var("ADMIN_USERNAME").unwrap_or_else(|| "admin".into());
        validate::username(&admin_username).map_err(|e| bad("ADMIN_USERNAME", e.to_string()))?;
        let admin_password = var("ADMIN_PASSWORD");
        if let Some(p) = &admin_password {
            validate::password(p).map_err(|e| bad("ADMIN_PASSWORD", e.to_string()))?;
        }

        let registry_credentials = match (var("REGISTRY_USERNAME"), var("REGISTRY_PASSWORD")) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u, p)),
            (Some(_), None) => {
                return Err(bad(
                    "REGISTRY_PASSWORD",
                    "must be set when REGISTRY_USERNAME is",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "REGISTRY_USERNAME",
                    "must be set when REGISTRY_PASSWORD is",
                ));
            }
        };

        let trusted_proxies = match var("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            bad(
                                "TRUSTED_PROXIES",
                                format!("{p:?} is not an IP address or CIDR"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let token_secret = var("TOKEN_SECRET");
        if token_secret
            .as_ref()
            .is_some_and(|s| s.chars().count() < 32)
        {
            return Err(bad("TOKEN_SECRET", "must be at least 32 characters"));
        }
        // A guessable notification secret would let anyone write image events into the log.
        let events_token = var("EVENTS_TOKEN");
        if events_token
            .as_ref()
            .is_some_and(|s| s.chars().count() < 32)
        {
            return Err(bad(
                "EVENTS_TOKEN",
                "must be at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }

        let cluster = match var("DATABASE_URL") {
            None => None,
            Some(url) => Some(cluster_settings(
                &var,
                url,
                auth_mode,
                &token_secret,
                bind_addr,
            )?),
        };

        Ok(Config {
            cluster,
            trusted_proxies,
            token_secret,
            bind_addr,
            public_registry_host: var("PUBLIC_REGISTRY_HOST").unwrap_or(host_port),
            registry_url,
            htpasswd_path: var("HTPASSWD_PATH")
                .unwrap_or_else(|| "./auth/htpasswd".into())
                .into(),
            audit_log_path: var("AUDIT_LOG_PATH")
                .unwrap_or_else(|| "./logs/audit.log".into())
                .into(),
            audit_max_bytes,
            audit_min_free_bytes,
            admin_username,
            admin_password,
            registry_credentials,
            events_token,
            bcrypt_cost,
            token_ttl,
            auth_mode,
            registry_token,
            registry_config: var("REGISTRY_CONFIG").map(PathBuf::from),
            registry_bin: var("REGISTRY_BIN")
                .unwrap_or_else(|| "docker-registry".into())
                .into(),
            gc_untagged_grace,
            retention_schedule,
        })
    }
}

/// `DATABASE_URL` and what it needs: token mode (the registry must ask us, not read a file) and a
/// `TOKEN_SECRET` every replica shares (an API token from one replica must work on the others).
fn cluster_settings(
    var: &impl Fn(&str) -> Option<String>,
    url: String,
    auth_mode: AuthMode,
    token_secret: &Option<String>,
    bind_addr: SocketAddr,
) -> Result<ClusterConfig, ConfigError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad(
            "DATABASE_URL",
            "must be a postgres:// or postgresql:// URL",
        ));
    }
    if url.parse::<postgres::Config>().is_err() {
        // Not the parser's message: it may quote the URL, password included.
        return Err(bad(
            "DATABASE_URL",
            "is not a valid PostgreSQL connection URL",
        ));
    }
    if auth_mode != AuthMode::Token {
        return Err(bad(
            "AUTH_MODE",
            "must be \"token\" when DATABASE_URL is set (cluster mode): the registries ask the replicas, they cannot share an htpasswd file",
        ));
    }
    if token_secret.is_none() {
        return Err(bad(
            "TOKEN_SECRET",
            "must be set when DATABASE_URL is set (cluster mode): every replica must accept the API tokens the others sign",
        ));
    }
    let replica_id = match var("REPLICA_ID") {
        Some(id) => {
            if id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            {
                return Err(bad(
                    "REPLICA_ID",
                    "must be 1-64 characters of letters, digits, '-', '_', '.' or ':'",
                ));
            }
            id
        }
        None => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "replica".into());
            format!("{host}:{}", bind_addr.port())
        }
    };
    let pool_size = match var("DATABASE_POOL_SIZE") {
        None => 8,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                bad(
                    "DATABASE_POOL_SIZE",
                    format!("{v:?} is not a number from 1 to 100"),
                )
            })?,
    };
    Ok(ClusterConfig {
        database_url: url,
        replica_id,
        pool_size,
    })
}

/// The permission bits of the file at `path` when its group or others may read or write it;
/// `None` for a private file, or one that is missing or no regular file (other checks say so).
pub fn open_to_others(path: &Path) -> Option<u32> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// A warning for an htpasswd others can read: its hashes can be attacked offline. Only a
/// warning, because registry:2 may run as another user that must read it.
pub fn htpasswd_exposure(path: &Path) -> Option<String> {
    open_to_others(path).map(|mode| {
        format!(
            "HTPASSWD_PATH {} is open to its group or others (mode {mode:04o}) and holds password \
             hashes; unless registry:2 runs as another user that needs to read it, run `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

/// `host:port` (or `host`) of an http(s) URL, or `None` when the URL is not one.
fn registry_host_port(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str().filter(|h| !h.is_empty())?;
    Some(match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_design() {
        let c = from(&[]).unwrap();
        assert_eq!(c.bind_addr.to_string(), "0.0.0.0:5001");
        assert_eq!(c.registry_url, "http://localhost:5000");
        assert_eq!(c.public_registry_host, "localhost:5000");
        assert_eq!(c.bcrypt_cost, 10);
        assert_eq!(c.token_ttl, 900);
        assert_eq!(c.admin_username, "admin");
        assert!(c.admin_password.is_none());
        assert!(c.registry_credentials.is_none());
        assert_eq!(c.auth_mode, AuthMode::Htpasswd);
        assert_eq!(c.registry_token.key_path, PathBuf::from("./auth/token.key"));
        assert_eq!(
            (
                c.registry_token.service.as_str(),
                c.registry_token.issuer.as_str()
            ),
            ("registry", "registry-admin")
        );
        assert_eq!(c.registry_token.ttl, 300);
        assert_eq!(c.registry_bin, PathBuf::from("docker-registry"));
        assert_eq!(c.gc_untagged_grace, 86_400);
        assert!(c.registry_config.is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (pairs, var) in [
            (vec![("BIND_ADDR", "nope")], "BIND_ADDR"),
            (vec![("REGISTRY_URL", "ftp://x")], "REGISTRY_URL"),
            (vec![("REGISTRY_URL", "http://")], "REGISTRY_URL"),
            (vec![("REGISTRY_URL", "http://h:notaport")], "REGISTRY_URL"),
            (vec![("BCRYPT_COST", "3")], "BCRYPT_COST"),
            (vec![("BCRYPT_COST", "32")], "BCRYPT_COST"),
            (vec![("ADMIN_PASSWORD", "short")], "ADMIN_PASSWORD"),
            (vec![("ADMIN_USERNAME", "a:b")], "ADMIN_USERNAME"),
            (vec![("REGISTRY_USERNAME", "svc")], "REGISTRY_PASSWORD"),
            (vec![("TOKEN_TTL", "0")], "TOKEN_TTL"),
            (vec![("TOKEN_TTL", "59")], "TOKEN_TTL"),
            (vec![("TOKEN_TTL", "86401")], "TOKEN_TTL"),
            (vec![("TOKEN_TTL", "99999999999999999")], "TOKEN_TTL"),
            (vec![("EVENTS_TOKEN", "short-secret")], "EVENTS_TOKEN"),
            (vec![("AUTH_MODE", "ldap")], "AUTH_MODE"),
            (vec![("REGISTRY_TOKEN_TTL", "59")], "REGISTRY_TOKEN_TTL"),
            (vec![("REGISTRY_TOKEN_TTL", "3601")], "REGISTRY_TOKEN_TTL"),
            (vec![("GC_UNTAGGED_GRACE", "-1")], "GC_UNTAGGED_GRACE"),
            (vec![("AUDIT_MAX_BYTES", "10")], "AUDIT_MAX_BYTES"),
            (
                vec![("AUDIT_MIN_FREE_BYTES", "lots")],
                "AUDIT_MIN_FREE_BYTES",
            ),
            (
                vec![("TRUSTED_PROXIES", "10.0.0.1,nope")],
                "TRUSTED_PROXIES",
            ),
            (vec![("TOKEN_SECRET", "short")], "TOKEN_SECRET"),
        ] {
            let err = from(&pairs).unwrap_err();
            assert_eq!(err.var, var, "{pairs:?}");
        }
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks() {
        let c = from(&[("TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16,::1")]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[1].contains(&"192.168.4.5".parse::<std::net::IpAddr>().unwrap()));
    }

    #[test]
    fn public_host_follows_registry_url() {
        let c = from(&[("REGISTRY_URL", "https://reg.example:8443/")]).unwrap();
        assert_eq!(c.public_registry_host, "reg.example:8443");
        assert_eq!(c.registry_url, "https://reg.example:8443");
        let c = from(&[("REGISTRY_URL", "http://[::1]:5000")]).unwrap();
        assert_eq!(c.public_registry_host, "[::1]:5000");
    }

    #[test]
    fn an_htpasswd_others_can_read_is_named_with_its_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        assert_eq!(htpasswd_exposure(&path), None, "missing: said elsewhere");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = htpasswd_exposure(&path).expect("a warning");
        assert!(warning.contains("mode 0644"), "{warning}");
        assert!(
            warning.contains(&format!("chmod 600 {}", path.display())),
            "{warning}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(htpasswd_exposure(&path), None);
    }
}
