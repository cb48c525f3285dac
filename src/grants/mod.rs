//! Grants: which repositories a `user` may pull, push and delete, by pattern, and which an
//! anonymous caller may pull. Pure domain code; the file lives beside users.json.

pub mod model;
pub mod pattern;
pub mod policy;
pub mod store;

pub use model::{Action, Grant, GrantError, GrantSpec, Grants};
pub use pattern::{Pattern, PatternError};
pub use policy::{
    Explanation, Principal, Reason, Source, Wanted, allows, catalog_allowed, explain, granted,
};
pub use store::GrantsStore;
