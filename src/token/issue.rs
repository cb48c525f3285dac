//! A registry token for a request: the one decision ([`crate::grants::decide`]) under the write
//! freeze, signed. Write tokens are reported to the freeze, so a garbage collection waits them
//! out; in cluster mode they are admitted in one transaction with the check that no job freezes
//! writes, and refused ones are signed again without push or delete.

use std::sync::Arc;

use thiserror::Error;

use super::access_for;
use super::sign::{AccessClaim, IssuedToken, TokenIssuer};
use crate::blocking::{BlockingError, run_blocking};
use crate::error::{ErrorCode, StatusCode};
use crate::freeze::WriteFreeze;
use crate::grants::{Caller, Grants, GrantsStore, Principal};
use crate::names::{Role, Scope};
use crate::robots::RobotCaller;
use crate::store::DatabaseError;
use crate::users::model::Account;

/// Why no token could be issued (the credentials held; something on this side failed).
#[derive(Debug, Error)]
pub enum TokenError {
    /// grants.json cannot be read: nobody's access but an admin's is guessed.
    #[error("grants.json: {0}")]
    Grants(String),
    #[error(transparent)]
    Blocking(#[from] BlockingError),
    /// Cluster mode: a write token could not be admitted against the freeze.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl ErrorCode for TokenError {
    fn status(&self) -> StatusCode {
        match self {
            TokenError::Grants(_) => StatusCode::INTERNAL_SERVER_ERROR,
            TokenError::Blocking(e) => e.status(),
            TokenError::Database(e) => e.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            TokenError::Grants(_) => "internal",
            TokenError::Blocking(e) => e.code(),
            TokenError::Database(e) => e.code(),
        }
    }
    fn message(&self) -> String {
        match self {
            TokenError::Grants(_) => self.to_string(),
            TokenError::Blocking(e) => e.message(),
            TokenError::Database(e) => e.message(),
        }
    }
}

/// What `GET /token` gives a caller that authenticated as `account` (none: anonymous), or as
/// the robot `robot` acting for its owner: the scopes granted of `scopes`, and the token.
pub async fn issue_for(
    issuer: &TokenIssuer,
    freeze: &Arc<WriteFreeze>,
    grants: &GrantsStore,
    account: Option<&Account>,
    robot: Option<&RobotCaller>,
    scopes: &[Scope],
) -> Result<(Vec<AccessClaim>, IssuedToken), TokenError> {
    let caller = token_caller(account, robot);
    let in_force = grants_for_token(grants, &caller.principal)?;
    let sub = account.map_or("", |a| a.username.as_str());
    issue_token(issuer, freeze, &caller, &in_force, scopes, sub).await
}

/// What `caller` (signing as `sub`) is granted of `scopes`, and the token that carries it.
pub async fn issue_token(
    issuer: &TokenIssuer,
    freeze: &Arc<WriteFreeze>,
    caller: &Caller,
    grants: &Grants,
    scopes: &[Scope],
    sub: &str,
) -> Result<(Vec<AccessClaim>, IssuedToken), TokenError> {
    let decide = |frozen: bool| access_for(caller, grants, scopes, frozen);
    let mut access = decide(freeze.is_frozen());
    let mut issued = issuer.issue(sub, &access);
    // `*` on a repository has been spelled out by now; on the catalog it writes nothing.
    let writes = access
        .iter()
        .any(|a| a.actions.iter().any(|x| x == "push" || x == "delete"));
    if writes && freeze.database().is_some() {
        // Cluster mode: the token's expiry is recorded where every replica's garbage
        // collection looks, in one transaction with the check that no job freezes writes;
        // when one does, the answer carries no push or delete. Pulls never get here.
        let (shared, expires_at) = (Arc::clone(freeze), issued.expires_at);
        if !run_blocking(move || shared.admit_write_token(expires_at)).await?? {
            access = decide(true);
            issued = issuer.issue(sub, &access);
        }
    } else if writes {
        freeze.note_write_token(issued.expires_at);
    }
    Ok((access, issued))
}

/// The caller of `GET /token`: anonymous without credentials, and a robot within its owner's
/// rights and its own grants. An account is an admin or a user here: the service account
/// never gets a token through this door.
fn token_caller(account: Option<&Account>, robot: Option<&RobotCaller>) -> Caller {
    let principal = |account: Option<&Account>| match account {
        None => Principal::Anonymous,
        Some(a) if a.role == Role::Admin => Principal::Admin,
        Some(a) => Principal::User {
            name: a.username.clone(),
        },
    };
    match robot {
        Some(r) => Caller::robot(principal(Some(&r.owner)), r.grants.clone()),
        None => Caller::person(principal(account)),
    }
}

/// The grants a token decision reads. Admins' access does not depend on grants, so an
/// unreadable `grants.json` still lets them work; nobody else's access is guessed.
fn grants_for_token(store: &GrantsStore, principal: &Principal) -> Result<Arc<Grants>, TokenError> {
    match (store.current(), principal) {
        (Ok(g), _) => Ok(g),
        (Err(e), Principal::Admin) => {
            log::error!("grants.json unreadable, issuing an admin token regardless: {e}");
            Ok(Default::default())
        }
        (Err(e), _) => Err(TokenError::Grants(e.to_string())),
    }
}
