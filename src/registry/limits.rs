//! Caps on what the upstream registry can make registry-admin read: every body is read against
//! one of these as it arrives, so a registry that lies about (or omits) `Content-Length`, or
//! never ends a body, costs at most the cap in memory.

pub(crate) const MIB: u64 = 1024 * 1024;

/// Largest manifest (image, index or list) read. registry:2 itself refuses to store manifests
/// over 4 MiB, so a bigger one is not something it produced.
pub const MAX_MANIFEST_BYTES: u64 = 4 * MIB;
/// Largest config blob read; image configs are kilobytes, and only a few fields are used.
pub const MAX_CONFIG_BYTES: u64 = 4 * MIB;
/// Largest `tags/list` answer read. registry:2 sends every tag at once (no paging), so this
/// is larger: about 500,000 tags of 30 characters.
pub const MAX_TAG_LIST_BYTES: u64 = 16 * MIB;
/// Largest catalog page read: 10,000 names of the 255 characters a name may have fit.
pub const MAX_CATALOG_PAGE_BYTES: u64 = 4 * MIB;
/// Error bodies are only read for a message; the rest is not read at all.
pub(crate) const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;

/// Catalog page size asked for; registry:2 refuses more than 1000 by default.
pub(crate) const CATALOG_PAGE: usize = 1000;
/// More than this on one page means the registry ignored `n`.
pub const MAX_CATALOG_PAGE_REPOSITORIES: usize = 10_000;
/// Stops a registry that keeps sending `Link` headers from keeping us busy forever.
pub const MAX_CATALOG_PAGES: usize = 1_000;
/// All pages together, in names and in bytes of names. The whole catalog is held in memory to be
/// sorted and filtered, so these bound that memory (a few tens of MiB at most), far below what
/// the page caps alone would let in (a thousand pages of 4 MiB).
pub const MAX_CATALOG_REPOSITORIES: usize = 100_000;
pub const MAX_CATALOG_BYTES: u64 = 16 * MIB;

/// `4 MiB` for whole mebibytes, otherwise bytes: how caps are named in error messages.
pub fn human_bytes(n: u64) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}
