//! What a GC job needs to know about registry:2's configuration: the file named by
//! `REGISTRY_CONFIG`, with the `REGISTRY_*` overrides of our own environment applied the way
//! registry:2 applies them (the same environment is what `garbage-collect` gets).
//!
//! Parsed as YAML (serde_yaml), not scanned line by line: `cache: {blobdescriptor: inmemory}`
//! in flow style, anchors, or a key indented under another section would fool a line scan, and a
//! missed blob-descriptor cache is exactly the case that breaks images (docs/registry-facts.md,
//! "Garbage collection").

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::durable::read_bounded;

/// registry:2's filesystem driver default (`rootdirectory` unset).
pub const DEFAULT_ROOT: &str = "/var/lib/registry";
/// A registry config is a few KiB; anything larger is not one.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Keys of `storage` that are settings, not a driver name (docs/registry-versions.md, "Configuration").
const STORAGE_SETTINGS: [&str; 5] = ["cache", "delete", "maintenance", "redirect", "tag"];

/// A Redis blob-descriptor cache shared by the registries (cluster mode only), which the job
/// purges before it thaws (docs/registry-facts.md: a shared Redis cache goes stale after GC).
#[derive(Clone, PartialEq)]
pub struct RedisCache {
    /// `host:port` of each server: `redis.addr` (registry 2), or every one of `redis.addrs`
    /// (registry 3).
    pub addrs: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

impl std::fmt::Debug for RedisCache {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("addrs", &self.addrs)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    /// The storage driver: `filesystem`, `s3`, `inmemory`, …
    pub driver: String,
    /// The filesystem driver's root; `None` for other drivers.
    pub root: Option<PathBuf>,
    /// `storage.delete.enabled`: registry:2 refuses manifest deletes (405) without it.
    pub delete_enabled: bool,
    /// Cluster mode: the Redis blob-descriptor cache to purge after a job that deletes.
    pub redis: Option<RedisCache>,
}

/// Which blob-descriptor caches a job accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheRule {
    /// One registry (files mode): no cache at all.
    NoCache,
    /// Cluster mode: none, or a shared Redis one that the job purges; `inmemory` is refused
    /// (each registry's own memory cannot be purged from outside).
    RedisPurged,
}

/// Reads and checks `path`; `env` is this process's environment. An error is the sentence a
/// 409 `gc_unavailable` gives.
pub fn load(
    path: &Path,
    env: &[(String, String)],
    rule: CacheRule,
) -> Result<RegistrySettings, String> {
    let shown = path.display();
    let bytes = read_bounded(path, MAX_CONFIG_BYTES)
        .map_err(|e| format!("REGISTRY_CONFIG {shown} cannot be read: {e}"))?
        .ok_or_else(|| format!("REGISTRY_CONFIG {shown} does not exist"))?;
    // serde_yaml's message names a position only, never a value it could not parse.
    let doc: Value = serde_yaml::from_slice(&bytes)
        .map_err(|e| format!("REGISTRY_CONFIG {shown} is not YAML: {e}"))?;
    check(&doc, env, rule).map_err(|e| format!("REGISTRY_CONFIG {shown}: {e}"))
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping().and_then(|m| m.get(key))
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A scalar as registry:2 would read it (YAML `true`, `"true"`, `inmemory`).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn check(
    doc: &Value,
    env: &[(String, String)],
    rule: CacheRule,
) -> Result<RegistrySettings, String> {
    let empty = Value::Mapping(Mapping::new());
    let storage = get(doc, "storage").unwrap_or(&empty);
    let mut redis = None;

    // distribution reads `layerinfo` as the old name of `blobdescriptor`; any value but empty
    // is refused, including ones it does not know (it would warn and run without a cache, but
    // a typo of `inmemory` is not worth the risk).
    let cache = get(storage, "cache");
    for key in ["blobdescriptor", "layerinfo"] {
        let from_file = cache.and_then(|c| get(c, key)).and_then(scalar);
        let var = format!("REGISTRY_STORAGE_CACHE_{}", key.to_uppercase());
        let value = env_value(env, &var).map(str::to_string).or(from_file);
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            match (rule, v.trim()) {
                (CacheRule::RedisPurged, "redis") => {
                    redis = Some(redis_settings(doc, env)?);
                    continue;
                }
                (CacheRule::RedisPurged, "inmemory") => {
                    return Err(format!(
                        "storage.cache.{key} is \"inmemory\": in cluster mode every registry keeps \
                         its own in-memory blob-descriptor cache, which goes stale after garbage \
                         collection (deleted blobs served as empty ones) and cannot be purged from \
                         outside, so garbage collection is refused; remove the cache, or use a \
                         redis cache shared by the registries (the job purges it)"
                    ));
                }
                _ => {}
            }
            return Err(format!(
                "storage.cache.{key} is {v:?}: with a blob-descriptor cache the running registry keeps \
                 serving deleted blobs (200 with an empty body) and later pushes skip re-uploading them, \
                 so garbage collection is refused; remove the cache from the registry config (and \
                 restart the registry)"
            ));
        }
    }
    if env_value(env, "REGISTRY_STORAGE_CACHE").is_some_and(|v| !v.trim().is_empty()) {
        return Err(
            "REGISTRY_STORAGE_CACHE is set: a cache configured through the environment is refused"
                .into(),
        );
    }

    let drivers: Vec<String> = storage
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str())
                .filter(|k| !STORAGE_SETTINGS.contains(k))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let driver = match env_value(env, "REGISTRY_STORAGE").filter(|v| !v.is_empty()) {
        Some(d) => d.to_string(),
        None => match drivers.as_slice() {
            [one] => one.clone(),
            [] => return Err("storage names no driver".into()),
            many => {
                return Err(format!(
                    "storage names several drivers ({}); registry:2 refuses that",
                    many.join(", ")
                ));
            }
        },
    };

    let root = (driver == "filesystem").then(|| {
        let from_file = get(storage, "filesystem")
            .and_then(|f| get(f, "rootdirectory"))
            .and_then(scalar);
        let root = env_value(env, "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")
            .map(str::to_string)
            .or(from_file)
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_ROOT.to_string());
        PathBuf::from(root)
    });

    let delete_from_file = get(storage, "delete")
        .and_then(|d| get(d, "enabled"))
        .and_then(scalar);
    let delete_enabled = env_value(env, "REGISTRY_STORAGE_DELETE_ENABLED")
        .map(str::to_string)
        .or(delete_from_file)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));

    Ok(RegistrySettings {
        driver,
        root,
        delete_enabled,
        redis,
    })
}

/// The `redis` section (with registry's `REGISTRY_REDIS_*` overrides): where the cache is.
fn redis_settings(doc: &Value, env: &[(String, String)]) -> Result<RedisCache, String> {
    let empty = Value::Mapping(Mapping::new());
    let section = get(doc, "redis").unwrap_or(&empty);
    let setting = |key: &str| {
        env_value(env, &format!("REGISTRY_REDIS_{}", key.to_uppercase()))
            .map(str::to_string)
            .or_else(|| get(section, key).and_then(scalar))
            .filter(|v| !v.is_empty())
    };
    let mut addrs: Vec<String> = match env_value(env, "REGISTRY_REDIS_ADDRS") {
        Some(v) => v
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|a| a.trim().trim_matches('"').to_string())
            .collect(),
        None => get(section, "addrs")
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(scalar).collect())
            .unwrap_or_default(),
    };
    if let Some(addr) = setting("addr") {
        addrs.push(addr);
    }
    addrs.retain(|a| !a.is_empty());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(
            "storage.cache.blobdescriptor is \"redis\" but redis.addr (or redis.addrs) is not set"
                .into(),
        );
    }
    let tls = get(section, "tls")
        .and_then(|t| get(t, "enabled"))
        .and_then(scalar)
        .or_else(|| env_value(env, "REGISTRY_REDIS_TLS_ENABLED").map(str::to_string))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if tls {
        return Err(
            "redis.tls is enabled: registry-admin purges the blob-descriptor cache over plain \
             TCP only, so garbage collection is refused"
                .into(),
        );
    }
    let db = match setting("db") {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|d| *d >= 0)
            .ok_or_else(|| format!("redis.db is {v:?}, not a database number"))?,
    };
    Ok(RedisCache {
        addrs,
        username: setting("username"),
        password: setting("password"),
        db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str, env: &[(&str, &str)]) -> Result<RegistrySettings, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check(
            &serde_yaml::from_str(yaml).unwrap(),
            &env,
            CacheRule::NoCache,
        )
    }

    fn parse_cluster(yaml: &str, env: &[(&str, &str)]) -> Result<RegistrySettings, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        check(
            &serde_yaml::from_str(yaml).unwrap(),
            &env,
            CacheRule::RedisPurged,
        )
    }

    #[test]
    fn in_cluster_mode_an_inmemory_cache_is_refused_and_a_redis_one_is_named() {
        let err = parse_cluster(
            "storage:\n  s3: {}\n  cache:\n    blobdescriptor: inmemory\n",
            &[],
        )
        .unwrap_err();
        assert!(
            err.contains("inmemory") && err.contains("cluster mode"),
            "{err}"
        );
        let s = parse_cluster(
            "storage:\n  s3: {}\n  cache:\n    blobdescriptor: redis\nredis:\n  addr: 127.0.0.1:6379\n  password: s3cret\n  db: 2\n",
            &[],
        )
        .unwrap();
        let r = s.redis.expect("a redis cache");
        assert_eq!(
            (r.addrs.as_slice(), r.db),
            (&["127.0.0.1:6379".to_string()][..], 2)
        );
        assert_eq!(r.password.as_deref(), Some("s3cret"));
        assert!(
            !format!("{r:?}").contains("s3cret"),
            "Debug hides the password"
        );
        // Registry 3's list, and the environment as registry applies it.
        let s = parse_cluster(
            "storage:\n  s3: {}\n  cache:\n    blobdescriptor: redis\nredis:\n  addrs: [a:1, b:2]\n",
            &[("REGISTRY_REDIS_DB", "1")],
        )
        .unwrap();
        let r = s.redis.unwrap();
        assert_eq!(
            (r.addrs, r.db),
            (vec!["a:1".to_string(), "b:2".to_string()], 1)
        );
        let err = parse_cluster(
            "storage:\n  s3: {}\n  cache:\n    blobdescriptor: redis\n",
            &[],
        )
        .unwrap_err();
        assert!(err.contains("redis.addr"), "{err}");
        // Without a cache, nothing to purge; files mode still refuses redis.
        assert_eq!(
            parse_cluster("storage:\n  s3: {}\n", &[]).unwrap().redis,
            None
        );
        assert!(
            parse(
                "storage:\n  s3: {}\n  cache:\n    blobdescriptor: redis\nredis:\n  addr: x:1\n",
                &[]
            )
            .is_err()
        );
    }

    const STACK: &str = include_str!("../../registry/config.yml");

    #[test]
    fn the_stack_config_is_usable_as_it_ships() {
        let s = parse(STACK, &[]).unwrap();
        assert_eq!(s.driver, "filesystem");
        assert_eq!(s.root.as_deref(), Some(Path::new("/var/lib/registry")));
        assert!(s.delete_enabled);
    }

    #[test]
    fn a_blob_descriptor_cache_is_refused_in_any_spelling() {
        for yaml in [
            "storage:\n  filesystem: {}\n  cache:\n    blobdescriptor: inmemory\n",
            "storage: {filesystem: {}, cache: {blobdescriptor: redis}}\n",
            "storage:\n  filesystem:\n  cache:\n    layerinfo: inmemory\n",
            "x: &c {blobdescriptor: inmemory}\nstorage:\n  filesystem: {}\n  cache: *c\n",
        ] {
            let err = parse(yaml, &[]).unwrap_err();
            assert!(err.contains("blob-descriptor cache"), "{yaml}: {err}");
        }
        let err = parse(
            "storage:\n  filesystem: {}\n",
            &[("REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR", "inmemory")],
        )
        .unwrap_err();
        assert!(err.contains("inmemory"), "{err}");
        // An empty cache section, or one with only a size, enables nothing.
        parse(
            "storage:\n  filesystem: {}\n  cache:\n    blobdescriptorsize: 10\n",
            &[],
        )
        .unwrap();
    }

    #[test]
    fn the_environment_overrides_the_root_and_the_driver_as_registry_does() {
        let s = parse(
            STACK,
            &[(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
                "/data/registry",
            )],
        )
        .unwrap();
        assert_eq!(s.root.as_deref(), Some(Path::new("/data/registry")));
        let s = parse(STACK, &[("REGISTRY_STORAGE", "s3")]).unwrap();
        assert_eq!((s.driver.as_str(), s.root.as_ref()), ("s3", None));
        let s = parse("storage:\n  filesystem:\n", &[]).unwrap();
        assert_eq!(s.root.as_deref(), Some(Path::new(DEFAULT_ROOT)));
        assert!(!s.delete_enabled);
        let s = parse(
            "storage:\n  inmemory:\n",
            &[("REGISTRY_STORAGE_DELETE_ENABLED", "true")],
        )
        .unwrap();
        assert_eq!(s.driver, "inmemory");
        assert!(s.delete_enabled);
    }

    #[test]
    fn a_config_without_one_driver_is_refused() {
        assert!(parse("version: 0.1\n", &[]).is_err());
        assert!(parse("storage:\n  filesystem: {}\n  s3: {}\n", &[]).is_err());
    }

    #[test]
    fn unreadable_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yml");
        assert!(
            load(&missing, &[], CacheRule::NoCache)
                .unwrap_err()
                .contains("does not exist")
        );
        let bad = dir.path().join("bad.yml");
        std::fs::write(&bad, "storage: [unclosed\n").unwrap();
        assert!(
            load(&bad, &[], CacheRule::NoCache)
                .unwrap_err()
                .contains("not YAML")
        );
    }
}
