//! The directory: accounts, their grants and their robots — what changes together. Every change
//! is one unit of work ([`Directory::modify`]): under the accounts lock (a file lock, or in
//! cluster mode a database transaction), all three are read as stored, changed together, and
//! written — robots, then grants, then accounts, so a crash between two file writes leaves less
//! access, never more. Handlers describe the change; this runs it.

use std::sync::Arc;

use crate::blocking::{BlockingError, run_blocking};
use crate::durable::DurableError;
use crate::grants::GrantsStore;
use crate::grants::model::Grants;
use crate::robots::RobotsStore;
use crate::robots::model::Robots;
use crate::users::model::Accounts;
use crate::users::store::{StoreError, UserStore};

pub struct Directory {
    pub users: Arc<UserStore>,
    pub grants: Arc<GrantsStore>,
    pub robots: Arc<RobotsStore>,
}

impl Directory {
    /// Applies `change` to the accounts, grants and robots as stored, and writes what changed;
    /// nothing is written when it fails. Blocking.
    pub fn modify<T, E>(
        &self,
        change: impl FnOnce(&mut Accounts, &mut Grants, &mut Robots) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError> + From<DurableError>,
    {
        self.users.modify_with(|accounts, held| {
            self.grants.update_when_changed(held, |grants| {
                self.robots
                    .update_when_changed(held, |robots| change(accounts, grants, robots))
            })
        })
    }

    /// [`Directory::modify`] off the async workers.
    pub async fn change<T, E>(
        self: &Arc<Self>,
        change: impl FnOnce(&mut Accounts, &mut Grants, &mut Robots) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + From<DurableError> + From<BlockingError> + Send + 'static,
    {
        let me = Arc::clone(self);
        run_blocking(move || me.modify(change)).await?
    }
}
