//! Cluster mode: every replica must sign registry tokens with the same key, or a registry
//! would accept the tokens of some replicas and refuse the others' (a pull failing at random
//! behind the load balancer). The first replica records its key's kid; a replica started with
//! another key is refused at start.

use std::sync::Arc;

use super::database::{Database, DatabaseError};
use super::rows::Transaction;

const DOCUMENT: &str = "cluster-token-key";

/// Records `kid` as the cluster's key when none is recorded yet. Returns the recorded kid when
/// it is another one. Blocking.
pub fn claim(db: &Arc<Database>, kid: &str) -> Result<Option<String>, DatabaseError> {
    let mut tx = Transaction::begin(db, DOCUMENT)?;
    let recorded = tx
        .read(DOCUMENT)?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    match recorded {
        Some(theirs) if theirs != kid => Ok(Some(theirs)),
        Some(_) => Ok(None),
        None => {
            tx.write(DOCUMENT, kid.as_bytes())?;
            tx.commit()?;
            Ok(None)
        }
    }
}
