//! Untagged cleanup: the manifests stored in a repository that no tag reaches (directly or as
//! the child of a tagged index), older than `GC_UNTAGGED_GRACE`, deleted by digest through the
//! registry API, so registry:2 itself unlinks them and `garbage-collect` then sweeps their
//! blobs. What is stored is read from the filesystem driver's tree
//! (`<root>/docker/registry/v2/repositories/<name>/_manifests/revisions/sha256/<hex>/link`),
//! since the registry API has no way to list untagged manifests.
//!
//! Runs only while writes are frozen (token mode), so no push can make a manifest reachable
//! between the walk and the delete; the grace period covers a client that pushed a manifest by
//! digest just before the freeze and meant to tag it next.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::reach::{self, ManifestSource};

/// One manifest revision of a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub digest: String,
    /// Old enough to delete: its link was written at least the grace period ago.
    pub old: bool,
}

pub fn revisions_dir(root: &Path, name: &str) -> PathBuf {
    root.join("docker/registry/v2/repositories")
        .join(name)
        .join("_manifests/revisions/sha256")
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The revisions of `name` that are still linked (a deleted manifest leaves its directory
/// behind, without `link`). `name` must be a validated repository name. Blocking.
pub fn revisions(
    root: &Path,
    name: &str,
    now: SystemTime,
    grace: Duration,
) -> io::Result<Vec<Revision>> {
    let dir = revisions_dir(root, name);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let hex = entry.file_name().to_string_lossy().into_owned();
        if !is_hex64(&hex) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path().join("link")) else {
            continue;
        };
        // A link dated in the future (clock change) counts as new.
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        out.push(Revision {
            digest: format!("sha256:{hex}"),
            old: age >= grace,
        });
    }
    out.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(out)
}

/// Of `stored`, the digests to delete: not reachable from a tag, old enough, and not a child
/// of a manifest that stays (a young untagged index keeps its children).
pub async fn to_delete<S: ManifestSource>(
    src: &S,
    name: &str,
    stored: &[Revision],
) -> Result<Vec<String>, reach::ReachError> {
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    let reachable = reach::reachable(src, name).await?;
    let (old, young): (Vec<&Revision>, Vec<&Revision>) = stored
        .iter()
        .filter(|r| !reachable.contains(&r.digest))
        .partition(|r| r.old);
    let kept = reach::with_children(src, name, young.iter().map(|r| r.digest.clone())).await?;
    Ok(old
        .into_iter()
        .map(|r| r.digest.clone())
        .filter(|d| !kept.contains(d))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};

    fn link(root: &Path, name: &str, hex: &str, age: Duration) {
        let dir = revisions_dir(root, name).join(hex);
        std::fs::create_dir_all(&dir).unwrap();
        let f = File::create(dir.join("link")).unwrap();
        f.set_times(FileTimes::new().set_modified(SystemTime::now() - age))
            .unwrap();
    }

    #[test]
    fn only_linked_revisions_count_and_age_is_the_link_s_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        link(root, "team/app", &a, Duration::from_secs(7200));
        link(root, "team/app", &b, Duration::from_secs(10));
        // What a manifest delete leaves: the directory without its link.
        std::fs::create_dir_all(revisions_dir(root, "team/app").join("c".repeat(64))).unwrap();
        std::fs::create_dir_all(revisions_dir(root, "team/app").join("not-hex")).unwrap();
        let got = revisions(
            root,
            "team/app",
            SystemTime::now(),
            Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                Revision {
                    digest: format!("sha256:{a}"),
                    old: true
                },
                Revision {
                    digest: format!("sha256:{b}"),
                    old: false
                },
            ]
        );
        let all_old = revisions(root, "team/app", SystemTime::now(), Duration::ZERO).unwrap();
        assert!(
            all_old.iter().all(|r| r.old),
            "a grace of 0 makes every revision old"
        );
        assert!(
            revisions(root, "other", SystemTime::now(), Duration::ZERO)
                .unwrap()
                .is_empty()
        );
    }
}
