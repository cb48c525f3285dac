//! How registry-admin proves itself to the registry: the scope a request needs, and the
//! providers that put credentials on it (Basic in htpasswd mode; token mode signs its own, see
//! `crate::token::upstream`).

use reqwest::RequestBuilder;

use crate::names::{Action, RepoName};

/// What an upstream request needs to be allowed to do. registry:2 in token mode asks for
/// exactly these scopes (`registry:catalog:*`, `repository:<name>:<actions>`), so a provider
/// that signs tokens can sign one per scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamScope<'a> {
    /// `GET /v2/`: registry:2 asks for no scope; any valid credential passes.
    Base,
    /// `GET /v2/_catalog`: `registry:catalog:*`.
    Catalog,
    Repository {
        name: &'a RepoName,
        actions: &'static [Action],
    },
}

impl<'a> UpstreamScope<'a> {
    /// Reads: manifests (GET and HEAD), blobs, tags/list.
    pub fn pull(name: &'a RepoName) -> Self {
        UpstreamScope::Repository {
            name,
            actions: &[Action::Pull],
        }
    }

    /// Writes: blob uploads and manifest PUTs; registry:2 asks for `pull,push` on them.
    pub fn push(name: &'a RepoName) -> Self {
        UpstreamScope::Repository {
            name,
            actions: &[Action::Pull, Action::Push],
        }
    }

    /// `DELETE` of a manifest.
    pub fn delete(name: &'a RepoName) -> Self {
        UpstreamScope::Repository {
            name,
            actions: &[Action::Delete],
        }
    }

    /// The scope as registry:2's token challenge spells it; `None` for `GET /v2/`.
    pub fn token_scope(&self) -> Option<String> {
        match self {
            UpstreamScope::Base => None,
            UpstreamScope::Catalog => Some("registry:catalog:*".into()),
            UpstreamScope::Repository { name, actions } => {
                let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
                Some(format!("repository:{name}:{}", actions.join(",")))
            }
        }
    }
}

/// Puts credentials on an upstream request. Basic auth today; token mode signs a token for
/// the request's scope.
pub trait UpstreamAuth: Send + Sync {
    fn authorize(&self, req: RequestBuilder, scope: &UpstreamScope<'_>) -> RequestBuilder;
    /// The account the registry sees, for messages and logs.
    fn account(&self) -> &str;
}

/// htpasswd mode: the same Basic credentials on every request, whatever the scope.
pub struct BasicAuth {
    username: String,
    password: String,
}

impl BasicAuth {
    pub fn new(username: String, password: String) -> BasicAuth {
        BasicAuth { username, password }
    }
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl UpstreamAuth for BasicAuth {
    fn authorize(&self, req: RequestBuilder, _scope: &UpstreamScope<'_>) -> RequestBuilder {
        req.basic_auth(&self.username, Some(&self.password))
    }

    fn account(&self) -> &str {
        &self.username
    }
}
