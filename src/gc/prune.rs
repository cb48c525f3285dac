//! Empty repositories: registry:2 never removes a repository whose tags and manifests are all
//! gone, so its name stays in the catalog for good. With `"prune_empty": true` a job removes,
//! while writes are frozen, the storage of each repository that has no tag and no manifest
//! left (filesystem driver only): its `_manifests`, `_layers` and `_uploads` directories, then
//! the repository directory and empty parents when nothing else (a nested repository) is in
//! them. The blobs its layer links pointed to are then unreferenced, and `garbage-collect`
//! sweeps them as usual.

use std::io;
use std::path::{Path, PathBuf};

use super::untagged;

fn repositories_root(root: &Path) -> PathBuf {
    root.join("docker/registry/v2/repositories")
}

/// Whether any tag of `name` still has a `current/link`.
fn has_tags(root: &Path, name: &str) -> io::Result<bool> {
    let dir = repositories_root(root).join(name).join("_manifests/tags");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    for entry in entries {
        if entry?.path().join("current/link").exists() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `name` (a validated repository name) holds no tag and no manifest. Blocking.
pub fn is_empty(root: &Path, name: &str) -> io::Result<bool> {
    let dir = repositories_root(root).join(name);
    if !dir.join("_manifests").is_dir() && !dir.join("_layers").is_dir() {
        return Ok(false);
    }
    let revisions = untagged::revisions(
        root,
        name,
        std::time::SystemTime::now(),
        std::time::Duration::ZERO,
    )?;
    Ok(revisions.is_empty() && !has_tags(root, name)?)
}

/// Removes the storage of the empty repository `name`. Blocking.
pub fn remove(root: &Path, name: &str) -> io::Result<()> {
    let base = repositories_root(root);
    let dir = base.join(name);
    for sub in ["_manifests", "_layers", "_uploads"] {
        match std::fs::remove_dir_all(dir.join(sub)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // The directory and its parents go only when empty: `team` may hold `team/app`.
    let mut cur = dir;
    while cur != base && cur.starts_with(&base) {
        match std::fs::remove_dir(&cur) {
            Ok(()) => {}
            Err(_) => break,
        }
        match cur.parent() {
            Some(p) => cur = p.to_path_buf(),
            None => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkdirs(root: &Path, rel: &str) {
        std::fs::create_dir_all(repositories_root(root).join(rel)).unwrap();
    }

    #[test]
    fn only_repositories_without_tags_and_manifests_are_empty_and_nested_ones_survive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let hex = "a".repeat(64);
        mkdirs(root, &format!("team/_manifests/revisions/sha256/{hex}"));
        mkdirs(root, "team/_manifests/tags/v1/index");
        mkdirs(root, "team/_layers/sha256");
        mkdirs(root, &format!("team/app/_manifests/revisions/sha256/{hex}"));
        let link = repositories_root(root)
            .join(format!("team/app/_manifests/revisions/sha256/{hex}/link"));
        std::fs::write(&link, "x").unwrap();
        assert!(is_empty(root, "team").unwrap());
        assert!(!is_empty(root, "team/app").unwrap());
        assert!(!is_empty(root, "nothing").unwrap());
        remove(root, "team").unwrap();
        assert!(!repositories_root(root).join("team/_manifests").exists());
        assert!(link.exists(), "the nested repository is untouched");
        std::fs::remove_file(&link).unwrap();
        assert!(is_empty(root, "team/app").unwrap());
        remove(root, "team/app").unwrap();
        assert!(!repositories_root(root).join("team").exists());
    }
}
