//! skopeo, isolated from the machine: no policy file and an empty auth file of its own, so
//! nothing from the machine's credential stores (or `$HOME`) is used.

use std::process::{Command, Output};

/// skopeo `args[0]` (the command) with `--insecure-policy`, a throwaway `--authfile` and
/// `HOME`, then the rest of `args`.
pub fn skopeo(args: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let auth = home.path().join("auth.json");
    std::fs::write(&auth, "{}").unwrap();
    let (first, rest) = args.split_first().expect("a skopeo command");
    Command::new("skopeo")
        .arg("--insecure-policy")
        .arg(first)
        .arg("--authfile")
        .arg(&auth)
        .args(rest)
        .env("HOME", home.path())
        .output()
        .expect("skopeo must be installed (the test command installs it)")
}

/// [`skopeo`], its stderr when it fails.
pub fn skopeo_ok(args: &[&str]) -> Result<(), String> {
    let out = skopeo(args);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
