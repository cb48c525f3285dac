//! `GET /token`: the token endpoint registry:2 sends clients to in token mode
//! (docs/registry-facts.md, "The token request"). The route exists only when a signing key was loaded, so in
//! htpasswd mode the path is an unknown one (404) and writes no audit entry.

use std::collections::BTreeSet;

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::SecondsFormat;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::api::Audited;
use crate::api::audit_middleware::note;
use crate::audit::entry::Outcome;
use crate::auth::{AuthAttempt, authenticate_basic};
use crate::bootstrap::SERVICE_ACCOUNT;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::GrantsStore;
use crate::names::{Resource, Scope};
use crate::robots::RobotCaller;
use crate::token::issue::issue_for;
use crate::token::scope::parse_scopes;
use crate::token::sign::{AccessClaim, TokenIssuer};

/// Registered by `app()` in token mode only.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/token").route(web::get().to(issue).wrap(Audited::no_change("token.issue"))),
    );
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`).
#[derive(OpenApi)]
#[openapi(paths(issue))]
pub struct TokenApi;

#[derive(Serialize, ToSchema)]
pub(crate) struct RegistryTokenResponse {
    /// An ES256 JWT for registry:2.
    token: String,
    /// The same JWT, under the name OAuth 2 clients look for.
    access_token: String,
    /// Seconds the token lives (`REGISTRY_TOKEN_TTL`).
    expires_in: u64,
    /// RFC 3339.
    issued_at: String,
}

/// `TYPE:NAME:ACTIONS`, as the spec writes scopes.
fn spell(access: &AccessClaim) -> String {
    format!(
        "{}:{}:{}",
        access.kind,
        access.name,
        access.actions.join(",")
    )
}

/// A scope list for the audit detail, cut to its share of the 4 KiB an entry may take (64
/// scopes of 200 characters would not fit), saying how many were left out.
fn listed(items: Vec<String>) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        crate::audit::bound::list_within(&items, crate::audit::bound::LIST_BUDGET)
    }
}

/// Whether every action asked for on every resource was granted (`*` is satisfied by any).
fn fully_granted(scopes: &[Scope], access: &[AccessClaim]) -> bool {
    scopes.iter().all(|s| {
        let (kind, name) = match &s.resource {
            Resource::Repository(name) => ("repository", name.as_str()),
            Resource::Catalog => ("registry", "catalog"),
        };
        access
            .iter()
            .find(|a| a.kind == kind && a.name == name)
            .is_some_and(|a| {
                let got: BTreeSet<&str> = a.actions.iter().map(String::as_str).collect();
                s.wanted.actions.iter().all(|w| got.contains(w.as_str()))
            })
    })
}

/// A registry token for the requested scopes, holding only what the caller is granted.
///
/// Basic credentials of an enabled account, or none (anonymous: public repositories only).
/// Wrong credentials are 401 and throttled like the API's, never answered as anonymous. An
/// answer that grants less than was asked is still 200; registry:2 then refuses the request.
#[utoipa::path(get, path = "/token", tag = "token",
    params(
        ("service" = String, Query, description = "must equal REGISTRY_TOKEN_SERVICE"),
        ("scope" = Option<Vec<String>>, Query, explode = true,
            description = "TYPE:NAME:ACTIONS, e.g. repository:team/app:pull,push; repeatable, several per value separated by spaces"),
        ("account" = Option<String>, Query, description = "accepted and ignored"),
        ("client_id" = Option<String>, Query, description = "accepted and ignored"),
        ("offline_token" = Option<String>, Query, description = "accepted and ignored (no refresh tokens)"),
    ),
    responses((status = 200, description = "a registry token", body = RegistryTokenResponse)),
    security((), ("basic" = [])))]
pub(crate) async fn issue(
    req: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
    issuer: web::Data<TokenIssuer>,
    grants: web::Data<GrantsStore>,
    freeze: web::Data<WriteFreeze>,
) -> Result<HttpResponse, ApiError> {
    let param = |name: &'static str| {
        query
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Parameters first: a malformed request costs no bcrypt.
    let services: Vec<&str> = param("service").collect();
    if services.is_empty() || services.iter().any(|s| *s != issuer.service()) {
        return Err(ApiError::InvalidRequest(format!(
            "service must be {:?}, the service registry:2 names in its challenge",
            issuer.service()
        )));
    }
    let scopes = parse_scopes(param("scope"))?;
    let mut repositories = scopes.iter().filter_map(|s| match &s.resource {
        Resource::Repository(name) => Some(name),
        Resource::Catalog => None,
    });
    if let (Some(only), None) = (repositories.next(), repositories.next()) {
        note(&req, |n| n.image = Some(only.to_string()));
    }

    let account = authenticate_basic(&req).await?;
    if let Some(a) = &account
        && a.username == SERVICE_ACCOUNT
    {
        // The subject registry-admin signs for itself: its registry events are nobody's
        // action, so no person may hold a token under that name.
        req.extensions_mut().insert(AuthAttempt(a.username.clone()));
        return Err(ApiError::CredentialsRejected);
    }
    let robot = req.extensions().get::<RobotCaller>().cloned();
    let freeze = freeze.into_inner();
    let (access, issued) = issue_for(
        &issuer,
        &freeze,
        &grants,
        account.as_ref(),
        robot.as_ref(),
        &scopes,
    )
    .await?;

    let outcome = if fully_granted(&scopes, &access) {
        Outcome::Success
    } else {
        Outcome::Denied
    };
    let detail = format!(
        "requested {}; granted {}",
        listed(scopes.iter().map(ToString::to_string).collect()),
        listed(access.iter().map(spell).collect())
    );
    note(&req, |n| {
        n.outcome = Some(outcome);
        n.detail = Some(detail);
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RegistryTokenResponse {
            access_token: issued.token.clone(),
            token: issued.token,
            expires_in: issuer.ttl().as_secs(),
            issued_at: issued.issued_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(kind: &str, name: &str, actions: &[&str]) -> AccessClaim {
        AccessClaim {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn an_answer_is_full_only_when_every_named_action_was_granted() {
        let scopes = parse_scopes(["repository:a:pull,push registry:catalog:*"]).unwrap();
        let pull_push = access("repository", "a", &["pull", "push"]);
        let catalog = access("registry", "catalog", &["*"]);
        assert!(fully_granted(
            &scopes,
            &[pull_push.clone(), catalog.clone()]
        ));
        assert!(!fully_granted(&scopes, &[pull_push]));
        assert!(!fully_granted(
            &scopes,
            &[access("repository", "a", &["pull"]), catalog]
        ));
        let any = parse_scopes(["repository:a:*"]).unwrap();
        assert!(fully_granted(&any, &[access("repository", "a", &["pull"])]));
        assert!(!fully_granted(&any, &[]));
        assert!(fully_granted(&[], &[]), "docker login asks for nothing");
    }

    #[test]
    fn granted_access_is_spelled_as_scopes() {
        assert_eq!(
            spell(&access("repository", "team/app", &["pull", "push"])),
            "repository:team/app:pull,push"
        );
        assert_eq!(
            spell(&access("registry", "catalog", &["*"])),
            "registry:catalog:*"
        );
        assert_eq!(listed(vec![]), "nothing");
    }
}
