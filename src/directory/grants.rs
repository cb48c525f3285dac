//! Replacing grants: an account's (checked against the accounts in the same unit of work, so a
//! concurrent delete of the account cannot leave grants behind), `everyone`'s and the public
//! patterns.

use std::sync::Arc;

use super::{Directory, DirectoryError};
use crate::grants::{Grant, Pattern};
use crate::names::{Role, Username};
use crate::users::model::{Accounts, UserView};
use crate::users::store::StoreError;

/// The account a grant change names: it must exist, and the service account takes none.
fn grantee(accounts: &Accounts, user: &str) -> Result<UserView, StoreError> {
    let view = accounts
        .view(user)
        .ok_or_else(|| StoreError::NotFound(user.to_string()))?;
    if view.role == Role::Service {
        return Err(StoreError::Protected(user.to_string()));
    }
    Ok(view)
}

impl Directory {
    /// Replaces `user`'s grants (`[]` removes them all); the grants as stored.
    pub async fn set_user_grants(
        self: &Arc<Self>,
        user: Username,
        list: Vec<Grant>,
    ) -> Result<Vec<Grant>, DirectoryError> {
        self.change(move |accounts, grants, _| {
            grantee(accounts, &user)?;
            grants.set_user(&user, list)?;
            Ok(grants.user(&user).to_vec())
        })
        .await
    }

    /// Replaces the grants every signed-in `user` account has; the grants as stored.
    pub async fn set_everyone(
        self: &Arc<Self>,
        list: Vec<Grant>,
    ) -> Result<Vec<Grant>, DirectoryError> {
        self.change(move |_, grants, _| {
            grants.set_everyone(list)?;
            Ok(grants.everyone().to_vec())
        })
        .await
    }

    /// Replaces the repository patterns anyone may pull; the patterns as stored.
    pub async fn set_public(
        self: &Arc<Self>,
        patterns: Vec<Pattern>,
    ) -> Result<Vec<Pattern>, DirectoryError> {
        self.change(move |_, grants, _| {
            grants.set_public(patterns)?;
            Ok(grants.public().to_vec())
        })
        .await
    }
}
