//! Changes to accounts that reach their grants and robots.

use std::sync::Arc;

use super::{Directory, DirectoryError};
use crate::names::Username;
use crate::users::store::StoreError;

impl Directory {
    /// Deletes an account (the refusal checks first: not the last enabled admin, not the
    /// service account) with its robots and its grants, so none outlives its owner and a name
    /// re-created later starts with none.
    pub async fn delete_account(self: &Arc<Self>, user: Username) -> Result<(), DirectoryError> {
        self.change(move |accounts, grants, robots| {
            accounts.delete(&user).map_err(StoreError::from)?;
            robots.remove_owner(&user);
            grants.remove_user(&user);
            Ok(())
        })
        .await
    }
}
