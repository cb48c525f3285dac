//! Images, tag deletes and non-image artifacts against a real registry.

#[path = "../common/mod.rs"]
mod common;

mod artifacts;
mod images;
mod tag_delete;
