//! What `garbage-collect` runs as: the registry binary found as `Command` would find it, and
//! the environment (ours) that the config overrides are read from and the child inherits.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Our environment, for the config overrides and the child.
pub(super) fn environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// The variables that are UTF-8 (the only ones registry:2's config overrides can name).
pub(super) fn utf8_env(env: &[(OsString, OsString)]) -> Vec<(String, String)> {
    env.iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
        .collect()
}

/// `bin` as `Command` would find it: a path with a slash as it is, a bare name on `PATH`.
pub(super) fn find_bin(bin: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if bin.as_os_str().to_string_lossy().contains('/') {
        return runnable(bin).then(|| bin.to_path_buf());
    }
    std::env::split_paths(path_var?)
        .map(|d| d.join(bin))
        .find(|p| runnable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_found_as_a_path_or_on_path() {
        assert!(find_bin(Path::new("/bin/sh"), None).is_some());
        assert!(find_bin(Path::new("sh"), Some("/nowhere:/bin".as_ref())).is_some());
        assert!(find_bin(Path::new("sh"), None).is_none());
        assert!(find_bin(Path::new("/nowhere/registry"), None).is_none());
    }
}
