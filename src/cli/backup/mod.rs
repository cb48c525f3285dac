//! `backup DIR` and `restore DIR`.
//!
//! In cluster mode (`DATABASE_URL`) `backup` reads the documents and the audit chain from the
//! database in one snapshot and writes the same format; `restore` refuses to run there (it puts
//! files back): a cluster backup is restored into files mode, then loaded with `import-files`.
//!
//! A backup is a directory of plain copies plus `backup.json`, a manifest of every file's kind,
//! size and SHA-256 and the number of audit entries. The account files and the current audit
//! log are copied under the htpasswd lock and the audit lock, the two locks every writer takes,
//! so no change lands half in the copy; rotated audit files never change once rotated, so they
//! are copied before, keeping the service's audit writes waiting only for `audit.log` itself.
//!
//! Besides the accounts (htpasswd, users.json), a backup holds grants.json, the robot accounts
//! (`robots.json`) and retention policies (`retention.json`) when they exist, and the token key
//! and certificate. `robots.json` is written only under the htpasswd lock, so it is copied
//! consistently with the accounts its robots belong to; `retention.json` is only ever replaced
//! whole (temp file and rename), so one open of it is one consistent version.
//!
//! Restore checks everything before it touches anything: the manifest, every checksum, that the
//! account, robot and policy files parse as the service parses them and that the audit chain is
//! whole. Only then does it stage each file as a
//! temp file beside its destination and, once the audit volume is seen to have the margin every
//! audited change needs (for its own `backup.restore` entry), rename it into place. Audit files already present are
//! moved aside into `pre-restore-<time>/` beside them, never deleted: the trail is evidence.
//!
//! A backup holds plain files only: a symbolic link in it (which would restore whatever it
//! points to) is refused, and every file is opened without following links. Sizes are compared
//! with the manifest before anything is hashed, so a huge file listed as small costs nothing.
//! Every file is checked as the service checks it at start (a `token.key` it would refuse is
//! refused here). A destination that is a symbolic link (a `HTPASSWD_PATH` pointing into a
//! shared volume) stays one: the file it points to is replaced, as the service writes through
//! such links. Missing directories (a fresh host) are created.
//!
//! The files: [`manifest`] (the format), [`layout`] (where each file lives here), [`hash`]
//! (copying while hashing), [`write`] (`backup`), [`read`] (reading a backup without trusting
//! it), [`check`] (what restore checks first) and [`restore`].

mod check;
mod hash;
mod layout;
mod manifest;
mod read;
mod restore;
mod write;

pub use restore::restore;
pub use write::backup;
