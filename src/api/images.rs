//! The `/images` endpoints. Repository names may hold `/`, so everything after `/images/` is
//! parsed here from the raw path.
//!
//! The unambiguous form puts `/-/` between the name and what follows, as GitLab does:
//! `/images/{name}/-/tags` and `/images/{name}/-/tags/{tag}`. A repository component can never
//! be `-` (components start with a letter or digit), so the first `-` segment always ends the
//! name, and a tag named `tags` is `/images/x/-/tags/tags`.
//!
//! The older form stays as it was: a path ending in `/tags` lists tags (so `/images/x/tags/tags`
//! lists repository `x/tags`), otherwise the last `/tags/` splits name from tag — which leaves a
//! tag named `tags` unreachable there.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::registry::delete::Deleted;
use crate::registry::details::ImageDetails;

use crate::api::Access;
use crate::api::Audited;
use crate::config::Config;
use crate::error::ApiError;
use crate::freeze::WriteFreeze;
use crate::grants::denied::Denied;
use crate::names::Action;
use crate::names::{InvalidReference, RepoName, Tag};
use crate::registry::client::RegistryClient;
use crate::registry::delete::{TagDeletes, delete_tag};
use crate::registry::details::image_details;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/images").route(web::get().to(catalog)))
        .service(
            web::resource("/images/{rest:.*}")
                .route(web::get().to(get))
                .route(web::delete().to(delete).wrap(Audited::change("tag.delete"))),
        );
}

/// This slice's part of the OpenAPI document (`crate::api::openapi`): both forms of each path.
#[derive(OpenApi)]
#[openapi(paths(
    catalog,
    doc_list_tags,
    doc_image_details,
    delete,
    doc_list_tags_legacy,
    doc_image_details_legacy,
    doc_delete_legacy,
))]
pub struct RegistryApi;

#[derive(Debug, PartialEq)]
enum Target {
    Tags(RepoName),
    Tag(RepoName, Tag),
}

/// Decodes each segment once; an encoded slash or an empty segment is refused, never treated
/// as a separator.
fn parse_target(raw_path: &str) -> Result<Target, ApiError> {
    let rest = raw_path.strip_prefix("/images/").unwrap_or_default();
    let mut segments = Vec::new();
    for seg in rest.split('/') {
        let decoded = percent_decode(seg).ok_or_else(|| {
            ApiError::from(InvalidReference::Path(format!(
                "invalid repository path {rest:?}: bad percent-encoding"
            )))
        })?;
        if decoded.is_empty() || decoded.contains('/') {
            return Err(InvalidReference::Path(format!(
                "invalid repository path {rest:?}: empty segments and encoded slashes are not allowed"
            ))
            .into());
        }
        segments.push(decoded);
    }
    if let Some(sep) = segments.iter().position(|s| s == "-") {
        return separated_target(&segments[..sep], &segments[sep + 1..]);
    }
    let n = segments.len();
    if n >= 2 && segments[n - 1] == "tags" {
        let name = RepoName::parse(segments[..n - 1].join("/"))?;
        return Ok(Target::Tags(name));
    }
    if n >= 3 && segments[n - 2] == "tags" {
        let name = RepoName::parse(segments[..n - 2].join("/"))?;
        let tag = Tag::parse(segments[n - 1].clone())?;
        return Ok(Target::Tag(name, tag));
    }
    Err(no_endpoint())
}

fn no_endpoint() -> ApiError {
    ApiError::NotFound(
        "no such endpoint: use /images/{name}/-/tags or /images/{name}/-/tags/{tag}".into(),
    )
}

/// `{name}/-/tags` or `{name}/-/tags/{tag}`, already split at the `-`.
fn separated_target(name: &[String], rest: &[String]) -> Result<Target, ApiError> {
    let name = name.join("/");
    match rest {
        [tags] if tags == "tags" => Ok(Target::Tags(RepoName::parse(name)?)),
        [tags, tag] if tags == "tags" => {
            let name = RepoName::parse(name)?;
            Ok(Target::Tag(name, Tag::parse(tag.clone())?))
        }
        _ => Err(no_endpoint()),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Catalog {
    #[schema(value_type = Vec<String>)]
    repositories: Vec<RepoName>,
    /// Those repositories (of all the caller may pull) that have no tags, sorted.
    #[schema(value_type = Vec<String>)]
    empty: Vec<RepoName>,
}

#[derive(Deserialize, IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CatalogParams {
    /// `true`: leave repositories without tags out of `repositories` (they stay in `empty`).
    hide_empty: Option<bool>,
}

/// The repositories the caller may pull (every one, for admins), sorted; `empty` names those
/// without tags.
#[utoipa::path(get, path = "/images", tag = "images", params(CatalogParams), responses((status = 200, description = "repositories", body = Catalog)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn catalog(
    access: Access,
    registry: web::Data<RegistryClient>,
    params: web::Query<CatalogParams>,
) -> Result<HttpResponse, ApiError> {
    // registry:2 stores only valid names, so parsing leaves nothing out; should one ever come
    // back, it is left out of the answer and named in the log (GC and retention skip it too).
    let mut repositories: Vec<RepoName> = registry
        .catalog()
        .await?
        .into_iter()
        .filter_map(|r| match RepoName::parse(r.as_str()) {
            Ok(name) => Some(name),
            Err(e) => {
                log::warn!("GET /images: leaving out a catalog entry: {e}");
                None
            }
        })
        .filter(|r| access.may_pull(r))
        .collect();
    let empty = crate::registry::empty::empty_repositories(&registry, &repositories).await?;
    if params.hide_empty == Some(true) {
        repositories.retain(|r| empty.binary_search(r).is_err());
    }
    Ok(HttpResponse::Ok().json(Catalog {
        repositories,
        empty,
    }))
}

/// The answers for a repository or tag that does not exist. A repository the caller may not
/// pull gets the very same, so its existence does not show.
fn no_repository(name: &str) -> ApiError {
    ApiError::NotFound(format!("repository {name} not found"))
}

fn no_tag(name: &str, tag: &str) -> ApiError {
    ApiError::NotFound(format!("tag {name}:{tag} not found"))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TagPage {
    /// Page size, 1-1000.
    n: Option<usize>,
    /// Tags after this one.
    last: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TagList {
    name: String,
    tags: Vec<String>,
}

const MAX_TAG_PAGE: usize = 1000;

/// Tags of a repository, sorted; paged with `n` and `last` (a `Link` header points to the next page).
/// `name` may contain `/`.
#[utoipa::path(get, path = "/images/{name}/-/tags", tag = "images",
    params(("name" = String, Path, description = "repository name, may contain '/'"), TagPage),
    responses((status = 200, description = "tags", body = TagList)), security(("basic" = []), ("bearer" = [])))]
#[allow(dead_code)] // documentation only: `get` serves this path
pub(crate) fn doc_list_tags() {}

/// The older form of `/images/{name}/-/tags`, kept working; a name ending in `/tags` is read as
/// part of the repository (`/images/x/tags/tags` lists `x/tags`).
#[utoipa::path(get, path = "/images/{name}/tags", tag = "images",
    params(("name" = String, Path, description = "repository name, may contain '/'"), TagPage),
    responses((status = 200, description = "tags", body = TagList)), security(("basic" = []), ("bearer" = [])))]
#[allow(dead_code)] // documentation only: `get` serves this path
pub(crate) fn doc_list_tags_legacy() {}

/// Details of one tag: digest, platforms, layers, sizes, pull commands.
#[utoipa::path(get, path = "/images/{name}/-/tags/{tag}", tag = "images",
    params(("name" = String, Path, description = "repository name, may contain '/'"), ("tag" = String, Path, description = "tag")),
    responses((status = 200, description = "image details", body = ImageDetails)), security(("basic" = []), ("bearer" = [])))]
#[allow(dead_code)] // documentation only: `get` serves this path
pub(crate) fn doc_image_details() {}

/// The older form of `/images/{name}/-/tags/{tag}`, kept working; it cannot reach a tag named
/// `tags`.
#[utoipa::path(get, path = "/images/{name}/tags/{tag}", tag = "images",
    params(("name" = String, Path, description = "repository name, may contain '/'"), ("tag" = String, Path, description = "tag")),
    responses((status = 200, description = "image details", body = ImageDetails)), security(("basic" = []), ("bearer" = [])))]
#[allow(dead_code)] // documentation only: `get` serves this path
pub(crate) fn doc_image_details_legacy() {}

/// Serves both `GET` paths above: which one is decided by the shape of the path.
async fn get(
    access: Access,
    registry: web::Data<RegistryClient>,
    config: web::Data<Config>,
    req: HttpRequest,
    page: web::Query<TagPage>,
) -> Result<HttpResponse, ApiError> {
    match parse_target(req.uri().path())? {
        Target::Tags(name) => {
            if !access.may_pull(&name) {
                return Err(no_repository(&name));
            }
            list_tags(&registry, name, page.into_inner()).await
        }
        Target::Tag(name, tag) => {
            if !access.may_pull(&name) {
                return Err(no_tag(&name, &tag));
            }
            let details = image_details(&registry, &config.public_registry_host, &name, &tag)
                .await?
                .ok_or_else(|| no_tag(&name, &tag))?;
            Ok(HttpResponse::Ok().json(details))
        }
    }
}

/// registry:2 ignores `n` and `last` on tags/list and returns tags unsorted: we sort and page.
async fn list_tags(
    registry: &RegistryClient,
    name: RepoName,
    page: TagPage,
) -> Result<HttpResponse, ApiError> {
    if let Some(n) = page.n
        && !(1..=MAX_TAG_PAGE).contains(&n)
    {
        return Err(ApiError::InvalidRequest(format!(
            "n must be from 1 to {MAX_TAG_PAGE}"
        )));
    }
    if let Some(last) = &page.last {
        Tag::parse(last.clone())?;
    }
    let mut tags = registry
        .tags(&name)
        .await?
        .ok_or_else(|| no_repository(&name))?;
    tags.sort();
    if let Some(last) = &page.last {
        tags.retain(|t| t > last);
    }
    let mut resp = HttpResponse::Ok();
    if let Some(n) = page.n
        && tags.len() > n
    {
        tags.truncate(n);
        let last = tags.last().cloned().unwrap_or_default();
        resp.insert_header((
            "Link",
            format!("</images/{name}/-/tags?n={n}&last={last}>; rel=\"next\""),
        ));
    }
    Ok(resp.json(TagList {
        name: name.to_string(),
        tags,
    }))
}

/// The older form of `DELETE /images/{name}/-/tags/{tag}`, kept working; it cannot reach a tag
/// named `tags`.
#[utoipa::path(delete, path = "/images/{name}/tags/{tag}", tag = "images",
    params(("name" = String, Path, description = "repository name, may contain '/'"), ("tag" = String, Path, description = "tag")),
    responses((status = 200, description = "deleted", body = Deleted)), security(("basic" = []), ("bearer" = [])))]
#[allow(dead_code)] // documentation only: `delete` serves this path
pub(crate) fn doc_delete_legacy() {}

/// Deletes exactly this tag; tags sharing its digest survive and are listed in `other_tags`.
/// Needs `delete` on the repository (admins always have it); while a garbage collection runs,
/// 409 `maintenance`.
#[utoipa::path(delete, path = "/images/{name}/-/tags/{tag}", tag = "images",
    params(("name" = String, Path, description = "repository name, may contain '/'"), ("tag" = String, Path, description = "tag")),
    responses((status = 200, description = "deleted", body = Deleted)), security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn delete(
    access: Access,
    registry: web::Data<RegistryClient>,
    deletes: web::Data<TagDeletes>,
    freeze: web::Data<WriteFreeze>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Target::Tag(name, tag) = parse_target(req.uri().path())? else {
        return Err(ApiError::MethodNotAllowed(
            "DELETE takes one tag: /images/{name}/-/tags/{tag}".into(),
        ));
    };
    crate::api::audit_middleware::note(&req, |n| {
        n.image = Some(name.to_string());
        n.tag = Some(tag.to_string());
    });
    match access.check(Action::Delete, &name) {
        Ok(()) => {}
        // Exactly what a missing tag answers: the caller cannot see this repository.
        Err(Denied::Hidden) => return Err(no_tag(&name, &tag)),
        Err(other) => return Err(other.into()),
    }
    // Counted until the registry has answered: a garbage collection that starts meanwhile
    // waits for this delete before it marks anything.
    let _writing = freeze.begin_write().ok_or_else(|| {
        ApiError::from(Denied::Frozen {
            action: Action::Delete,
            repo: name.to_string(),
        })
    })?;
    let deleted = delete_tag(&registry, &deletes, &name, &tag).await?;
    crate::api::audit_middleware::note(&req, |n| {
        n.digest = Some(deleted.digest.clone());
        n.detail = Some(format!(
            "method {}; other_tags [{}]",
            deleted.method.as_str(),
            deleted.other_tags.join(",")
        ));
    });
    Ok(HttpResponse::Ok().json(deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error code a path is refused with, as the client reads it.
    fn code_of(path: &str) -> Option<&'static str> {
        super::parse_target(path).err().map(|e| e.code())
    }

    #[test]
    fn paths() {
        let tags = |n: &str| Some(Target::Tags(RepoName::parse(n).unwrap()));
        let tag = |n: &str, t: &str| {
            Some(Target::Tag(
                RepoName::parse(n).unwrap(),
                Tag::parse(t).unwrap(),
            ))
        };
        let parse_target = |p: &str| super::parse_target(p).ok();
        assert_eq!(parse_target("/images/app/tags"), tags("app"));
        assert_eq!(parse_target("/images/team/app/tags"), tags("team/app"));
        assert_eq!(parse_target("/images/foo/tags/tags"), tags("foo/tags"));
        assert_eq!(parse_target("/images/app/tags/v1"), tag("app", "v1"));
        assert_eq!(parse_target("/images/x/tags/tags/v1"), tag("x/tags", "v1"));
        assert_eq!(
            parse_target("/images/team/app/tags/1.0-rc"),
            tag("team/app", "1.0-rc")
        );
        for bad in [
            "/images/team%2Fapp/tags",
            "/images/a//b/tags",
            "/images/../x/tags",
            "/images/A/b/tags",
            "/images/app/tags/-tag",
            "/images/app/tags/%2E%2E",
            "/images/%zz/tags",
        ] {
            assert!(
                matches!(code_of(bad), Some("invalid_name" | "invalid_tag")),
                "{bad}"
            );
        }
        assert_eq!(code_of("/images/app"), Some("not_found"));
    }

    #[test]
    fn the_dash_separator_makes_every_tag_reachable() {
        let tags = |n: &str| Some(Target::Tags(RepoName::parse(n).unwrap()));
        let tag = |n: &str, t: &str| {
            Some(Target::Tag(
                RepoName::parse(n).unwrap(),
                Tag::parse(t).unwrap(),
            ))
        };
        let parse_target = |p: &str| super::parse_target(p).ok();
        assert_eq!(parse_target("/images/x/-/tags"), tags("x"));
        assert_eq!(parse_target("/images/x/-/tags/tags"), tag("x", "tags"));
        assert_eq!(parse_target("/images/x/tags/-/tags"), tags("x/tags"));
        assert_eq!(
            parse_target("/images/x/tags/-/tags/tags"),
            tag("x/tags", "tags")
        );
        assert_eq!(
            parse_target("/images/team/app/-/tags/v1"),
            tag("team/app", "v1")
        );
        for missing in [
            "/images/x/-",
            "/images/x/-/",
            "/images/x/-/tag",
            "/images/x/-/tags/v1/more",
            "/images/x/-/tags/-/tags",
        ] {
            assert!(
                matches!(code_of(missing), Some("not_found" | "invalid_name")),
                "{missing}"
            );
        }
        assert_eq!(code_of("/images/-/tags"), Some("invalid_name"));
        assert_eq!(code_of("/images/x/-/tags/-bad"), Some("invalid_tag"));
    }
}
