//! Images: the upstream registry:2 client, the name grammar, image details, tag deletion.

pub mod client;
pub mod delete;
pub mod details;
pub mod empty;
pub mod names;
pub mod routes;

pub use routes::routes;
