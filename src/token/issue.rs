//! A registry token for a request: the one decision ([`crate::grants::decide`]) under the write
//! freeze, signed. Write tokens are reported to the freeze, so a garbage collection waits them
//! out; in cluster mode they are admitted in one transaction with the check that no job freezes
//! writes, and refused ones are signed again without push or delete.

use std::sync::Arc;

use super::access_for;
use super::sign::{AccessClaim, IssuedToken, TokenIssuer};
use crate::blocking::run_blocking;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::{Caller, Grants};
use crate::names::Scope;

/// What `caller` (signing as `sub`) is granted of `scopes`, and the token that carries it.
pub async fn issue_token(
    issuer: &TokenIssuer,
    freeze: &Arc<WriteFreeze>,
    caller: &Caller,
    grants: &Grants,
    scopes: &[Scope],
    sub: &str,
) -> Result<(Vec<AccessClaim>, IssuedToken), ApiError> {
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
