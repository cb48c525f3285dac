//! registry-admin's own credentials toward registry:2 in token mode: a token it signs for
//! itself (subject `registry-admin`), holding exactly the scope of the request at hand, so a
//! leaked token opens one repository for one kind of action for a minute, never the registry.
//!
//! Tokens are kept per scope and reused until shortly before they expire: a tag listing of a
//! hundred repositories signs a hundred tokens once, not once per request. Write tokens are
//! reported to the write freeze like any client's, so a garbage collection also waits out the
//! ones registry-admin signed for itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::RequestBuilder;

use super::sign::{AccessClaim, TokenIssuer};
use crate::bootstrap::SERVICE_ACCOUNT;
use crate::freeze::WriteFreeze;
use crate::names::Action;
use crate::registry::client::{UpstreamAuth, UpstreamScope};
use crate::sync::lock;

/// Lifetime of registry-admin's own tokens: the shortest a client token may live
/// (`REGISTRY_TOKEN_TTL` ≥ 60), so what a garbage collection waits for stays short too.
pub const SELF_TOKEN_TTL: Duration = Duration::from_secs(60);
/// A cached token is not handed out when it has less than this left: a request on a slow
/// registry must still arrive before `exp`.
const RENEW_BEFORE: TimeDelta = TimeDelta::seconds(20);
/// One entry per scope used recently; past this, expired entries go, then everything.
const MAX_CACHED: usize = 1024;

struct Cached {
    token: String,
    expires_at: DateTime<Utc>,
}

pub struct SelfSignedAuth {
    issuer: Arc<TokenIssuer>,
    freeze: Arc<WriteFreeze>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for SelfSignedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSignedAuth")
            .field("subject", &SERVICE_ACCOUNT)
            .finish_non_exhaustive()
    }
}

/// The `access` claim registry:2 checks for a request of this scope.
pub fn access_of(scope: &UpstreamScope<'_>) -> Vec<AccessClaim> {
    match scope {
        UpstreamScope::Base => Vec::new(),
        UpstreamScope::Catalog => vec![AccessClaim {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        }],
        UpstreamScope::Repository { name, actions } => vec![AccessClaim {
            kind: "repository".into(),
            name: name.to_string(),
            actions: actions.iter().map(|a| a.as_str().to_string()).collect(),
        }],
    }
}

fn writes(scope: &UpstreamScope<'_>) -> bool {
    matches!(scope, UpstreamScope::Repository { actions, .. }
        if actions.iter().any(|a| matches!(a, Action::Push | Action::Delete)))
}

impl SelfSignedAuth {
    pub fn new(issuer: Arc<TokenIssuer>, freeze: Arc<WriteFreeze>) -> SelfSignedAuth {
        SelfSignedAuth {
            issuer,
            freeze,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A token for `scope`, valid for at least `RENEW_BEFORE` more, as if the clock read `now`.
    pub fn token_at(&self, scope: &UpstreamScope<'_>, now: DateTime<Utc>) -> String {
        let key = scope.token_scope().unwrap_or_default();
        let mut cache = lock(&self.cache);
        if let Some(c) = cache.get(&key)
            && c.expires_at - now > RENEW_BEFORE
        {
            return c.token.clone();
        }
        // Cluster mode: while another replica's job freezes writes, no write token for us
        // either (the registry refuses the request), so a write that began before this
        // replica saw the freeze cannot go on past the job's bound (gc::cluster).
        if writes(scope) && self.freeze.frozen_elsewhere() {
            return self
                .issuer
                .issue_with_ttl(SERVICE_ACCOUNT, &[], now, SELF_TOKEN_TTL)
                .token;
        }
        let issued =
            self.issuer
                .issue_with_ttl(SERVICE_ACCOUNT, &access_of(scope), now, SELF_TOKEN_TTL);
        if writes(scope) {
            self.freeze.note_write_token(issued.expires_at);
        }
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| c.expires_at - now > RENEW_BEFORE);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                token: issued.token.clone(),
                expires_at: issued.expires_at,
            },
        );
        issued.token
    }
}

impl UpstreamAuth for SelfSignedAuth {
    fn authorize(&self, req: RequestBuilder, scope: &UpstreamScope<'_>) -> RequestBuilder {
        req.bearer_auth(self.token_at(scope, Utc::now()))
    }

    fn account(&self) -> &str {
        SERVICE_ACCOUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RepoName;
    use crate::token::TokenKey;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn auth() -> (SelfSignedAuth, Arc<WriteFreeze>) {
        let (key, _) = TokenKey::generate().unwrap();
        let issuer = Arc::new(TokenIssuer::new(
            key,
            "registry-admin",
            "registry",
            Duration::from_secs(300),
        ));
        let freeze = Arc::new(WriteFreeze::default());
        (SelfSignedAuth::new(issuer, Arc::clone(&freeze)), freeze)
    }

    fn repo(name: &str) -> RepoName {
        RepoName::parse(name).unwrap()
    }

    /// Whole seconds, as tokens carry them.
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
    }

    fn claims(token: &str) -> serde_json::Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn a_token_holds_exactly_the_scope_of_the_request() {
        let (auth, _) = auth();
        let now = now();
        let c = claims(&auth.token_at(&UpstreamScope::pull(&repo("team/app")), now));
        assert_eq!(c["sub"], "registry-admin");
        assert_eq!(
            c["access"],
            serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
        );
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 60);
        let c = claims(&auth.token_at(&UpstreamScope::Catalog, now));
        assert_eq!(
            c["access"],
            serde_json::json!([{"type": "registry", "name": "catalog", "actions": ["*"]}])
        );
        assert_eq!(
            claims(&auth.token_at(&UpstreamScope::Base, now))["access"],
            serde_json::json!([])
        );
    }

    #[test]
    fn a_token_is_reused_per_scope_until_shortly_before_it_expires() {
        let (auth, _) = auth();
        let now = now();
        let pull = auth.token_at(&UpstreamScope::pull(&repo("a")), now);
        assert_eq!(
            auth.token_at(
                &UpstreamScope::pull(&repo("a")),
                now + TimeDelta::seconds(30)
            ),
            pull
        );
        assert_ne!(auth.token_at(&UpstreamScope::pull(&repo("b")), now), pull);
        assert_ne!(auth.token_at(&UpstreamScope::delete(&repo("a")), now), pull);
        assert_ne!(
            auth.token_at(
                &UpstreamScope::pull(&repo("a")),
                now + TimeDelta::seconds(45)
            ),
            pull,
            "15 s left is too little"
        );
    }

    #[test]
    fn write_tokens_are_reported_to_the_freeze_and_read_tokens_are_not() {
        let (auth, freeze) = auth();
        let now = now();
        auth.token_at(&UpstreamScope::pull(&repo("a")), now);
        auth.token_at(&UpstreamScope::Catalog, now);
        assert_eq!(freeze.freeze(now), None);
        freeze.thaw();
        auth.token_at(&UpstreamScope::delete(&repo("a")), now);
        let until = freeze.freeze(now).expect("a delete token is outstanding");
        assert_eq!((until - now).num_seconds(), 60 + 60);
    }
}
