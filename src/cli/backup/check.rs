//! Everything restore checks before it changes anything: the manifest, every size and
//! checksum, that each file parses as the service parses it, and that the audit chain is whole.

use std::fs;
use std::path::{Path, PathBuf};

use registry_admin::audit::files::AuditFiles;
use registry_admin::audit::verify::verify;
use registry_admin::retention::policy::{Policies, compile};
use registry_admin::robots::Robots;
use registry_admin::token::key::TokenKey;
use registry_admin::users::htpasswd::Htpasswd;
use registry_admin::users::model::Metadata;

use super::layout::{AUDIT_NAME, Layout, RETENTION_NAME, ROBOTS_NAME};
use super::manifest::{FORMAT, FileRecord, Kind, MANIFEST, MAX_MANIFEST_BYTES, Manifest};
use super::read::{backup_entry, hash_file, read_bounded, refuse};
use crate::cli::{CliError, io_err};

/// Account files are small; restore parses them whole, so it bounds what it reads.
pub(super) const MAX_ACCOUNT_FILE_BYTES: u64 = 64 << 20;
/// The service refuses a JSON state file larger than this (`durable::JsonFile`), so restore
/// refuses it too rather than put back a file the service would not read.
pub(super) const MAX_SERVICE_JSON_BYTES: u64 = registry_admin::durable::DEFAULT_MAX_BYTES;

/// One file the restore will put back.
pub(super) struct Planned {
    pub(super) record: FileRecord,
    pub(super) src: PathBuf,
    pub(super) dest: PathBuf,
}

/// Everything restore checks before it changes anything.
pub(super) fn plan(layout: &Layout, dir: &Path) -> Result<(Manifest, Vec<Planned>), CliError> {
    let manifest_path = dir.join(MANIFEST);
    if fs::symlink_metadata(&manifest_path).is_err() {
        return Err(refuse(format!(
            "{} has no {MANIFEST}: it is not a finished backup",
            dir.display()
        )));
    }
    backup_entry(&manifest_path, MANIFEST)?;
    let manifest: Manifest =
        serde_json::from_slice(&read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?)
            .map_err(|e| refuse(format!("{MANIFEST} is not a backup manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(refuse(format!(
            "{MANIFEST} has format {:?}, this version reads {FORMAT:?}",
            manifest.format
        )));
    }
    if !manifest.files.iter().any(|f| f.kind == Kind::Htpasswd) {
        return Err(refuse("the backup has no htpasswd"));
    }
    let mut planned: Vec<Planned> = Vec::new();
    for rec in &manifest.files {
        let dest = layout.destination(rec).ok_or_else(|| {
            refuse(format!(
                "{MANIFEST} lists an unexpected file {:?}",
                rec.name
            ))
        })?;
        if planned.iter().any(|p| p.record.name == rec.name) {
            return Err(refuse(format!("{MANIFEST} lists {:?} twice", rec.name)));
        }
        let src = dir.join(&rec.name);
        // The size first: hashing a file far larger than listed is time wasted on a lie.
        let on_disk = backup_entry(&src, &rec.name)?.len();
        if on_disk != rec.size {
            return Err(refuse(format!(
                "{} is {on_disk} bytes, the manifest says {}",
                rec.name, rec.size
            )));
        }
        let (size, sha256) = hash_file(&src, rec.size)?;
        if size != rec.size {
            return Err(refuse(format!(
                "{} is {size} bytes, the manifest says {}",
                rec.name, rec.size
            )));
        }
        if sha256 != rec.sha256 {
            return Err(refuse(format!(
                "the checksum of {} does not match the manifest",
                rec.name
            )));
        }
        // Where the service would write: through a symbolic link, to the file it points to,
        // so the link stays.
        let dest = registry_admin::durable::resolve(&dest).map_err(io_err(&dest))?;
        planned.push(Planned {
            record: rec.clone(),
            src,
            dest,
        });
    }
    let copied = AuditFiles::new(dir.join(AUDIT_NAME));
    for (_, path) in copied.all() {
        let name = AuditFiles::display_name(&path);
        let present = fs::symlink_metadata(&path).is_ok();
        if present && !planned.iter().any(|p| p.record.name == name) {
            return Err(refuse(format!(
                "{name} is in the backup but not in {MANIFEST}"
            )));
        }
    }
    for p in &planned {
        check_content(p)?;
    }
    check_key_and_certificate(&planned)?;
    let report = verify(&copied).map_err(io_err(dir))?;
    if let Some(bad) = &report.first_bad_line {
        return Err(refuse(format!(
            "the backup's audit chain is broken at line {} of {}",
            bad.line, bad.file
        )));
    }
    if report.entries != manifest.audit_entries {
        return Err(refuse(format!(
            "the backup's audit chain has {} entries, the manifest says {}",
            report.entries, manifest.audit_entries
        )));
    }
    Ok((manifest, planned))
}

/// The account files must be usable by the service and registry:2 as they are.
fn check_content(p: &Planned) -> Result<(), CliError> {
    let read = || read_bounded(&p.src, MAX_ACCOUNT_FILE_BYTES);
    match p.record.kind {
        Kind::Htpasswd => {
            let text = String::from_utf8(read()?).map_err(|_| refuse("htpasswd is not UTF-8"))?;
            Htpasswd::parse(&text).map_err(|e| refuse(format!("the backup's {e}")))?;
        }
        Kind::Users => {
            serde_json::from_slice::<Metadata>(&read()?)
                .map_err(|e| refuse(format!("users.json does not parse: {e}")))?;
        }
        Kind::Grants => {
            // The same parser the service uses: a file it would refuse is not restored.
            serde_json::from_slice::<registry_admin::grants::Grants>(&read()?)
                .map_err(|e| refuse(format!("grants.json is not a valid grants file: {e}")))?;
        }
        Kind::Robots => {
            // The parser `RobotsStore` reads the file with: one it would refuse (and so refuse
            // every robot) is not restored.
            let bytes = read_bounded(&p.src, MAX_SERVICE_JSON_BYTES)?;
            serde_json::from_slice::<Robots>(&bytes)
                .map_err(|e| refuse(format!("{ROBOTS_NAME} is not a valid robots file: {e}")))?;
        }
        Kind::Retention => {
            // As `PolicyStore::current` reads it: parsed, then compiled (patterns, regular
            // expressions, durations), so no plan fails on a restored file.
            let bytes = read_bounded(&p.src, MAX_SERVICE_JSON_BYTES)?;
            let policies = serde_json::from_slice::<Policies>(&bytes).map_err(|e| {
                refuse(format!(
                    "{RETENTION_NAME} is not a valid policies file: {e}"
                ))
            })?;
            compile(&policies).map_err(|e| {
                refuse(format!(
                    "{RETENTION_NAME} is not a valid policies file: {e}"
                ))
            })?;
        }
        Kind::TokenKey => {
            // The loader the service uses at start: a key it would refuse is not restored.
            TokenKey::from_pem(&read()?)
                .map_err(|e| refuse(format!("token.key is not a key the service accepts: {e}")))?;
        }
        Kind::TokenCert => {
            let text = read()?;
            let certificates = pem::parse_many(&text)
                .map(|blocks| blocks.iter().filter(|b| b.tag() == "CERTIFICATE").count())
                .unwrap_or(0);
            if certificates == 0 {
                return Err(refuse("token.crt holds no PEM certificate"));
            }
        }
        Kind::Audit => {}
    }
    Ok(())
}

/// A `token.crt` restored beside a `token.key` must be that key's: registry:2, given it as its
/// bundle, would refuse every token otherwise.
fn check_key_and_certificate(planned: &[Planned]) -> Result<(), CliError> {
    let of = |kind: Kind| planned.iter().find(|p| p.record.kind == kind);
    let (Some(key), Some(cert)) = (of(Kind::TokenKey), of(Kind::TokenCert)) else {
        return Ok(());
    };
    let key = TokenKey::from_pem(&read_bounded(&key.src, MAX_ACCOUNT_FILE_BYTES)?)
        .map_err(|e| refuse(format!("token.key is not a key the service accepts: {e}")))?;
    if !key.is_in_bundle(&read_bounded(&cert.src, MAX_ACCOUNT_FILE_BYTES)?) {
        return Err(refuse(
            "token.crt holds no certificate for token.key; registry:2 would refuse every token",
        ));
    }
    Ok(())
}
