//! Grants: which repositories a `user` may pull, push and delete, by pattern, and which an
//! anonymous caller may pull. The file lives beside users.json; `authorize` (policy.rs) is the
//! one question "may this principal do this here", asked by the API's `Access` and, through
//! `decide`, by `GET /token`. `crate::api::grants` is the API that edits and explains them.

pub mod decide;
pub mod denied;
pub mod model;
pub mod pattern;
pub mod policy;
pub mod store;

pub use decide::{Caller, decide};
pub use model::{Grant, GrantError, GrantSpec, Grants};
pub use pattern::{Pattern, PatternError};
pub use policy::{
    Explanation, Principal, Reason, Source, authorize, catalog_allowed, explain, principal_of,
};
pub use store::GrantsStore;
