//! Images: the upstream registry:2 client, image details, tag deletion.

pub mod client;
pub mod delete;
pub mod details;
pub mod empty;
pub mod limits;
pub mod media;
pub mod upstream_auth;
pub mod upstream_error;
