//! User management in the htpasswd file registry:2 reads.

pub mod htpasswd;
pub mod model;
pub mod store;
