//! The body of `POST /gc`: what a job is asked to do.

/// What `POST /gc` asks for. A missing `dry_run` is a dry run: deleting is never the default.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    #[serde(default = "yes")]
    pub dry_run: bool,
    #[serde(default)]
    pub untagged: bool,
    /// Remove the storage of repositories with no tags and no manifests (filesystem only).
    #[serde(default)]
    pub prune_empty: bool,
}

fn yes() -> bool {
    true
}

impl Default for StartRequest {
    fn default() -> Self {
        StartRequest {
            dry_run: true,
            untagged: false,
            prune_empty: false,
        }
    }
}

impl StartRequest {
    /// The request a body asks for: an empty (or blank) body is the default, a dry run.
    pub fn from_body(body: &[u8]) -> Result<StartRequest, serde_json::Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(StartRequest::default())
        } else {
            serde_json::from_slice(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_a_dry_run_unless_it_says_otherwise() {
        let r: StartRequest = serde_json::from_str("{}").unwrap();
        assert!(r.dry_run && !r.untagged);
        let r: StartRequest = serde_json::from_str(r#"{"dry_run":false,"untagged":true}"#).unwrap();
        assert!(!r.dry_run && r.untagged);
        assert!(serde_json::from_str::<StartRequest>(r#"{"dry-run":false}"#).is_err());
    }

    #[test]
    fn a_blank_body_is_the_default_request() {
        let r = StartRequest::from_body(b" \n").unwrap();
        assert!(r.dry_run && !r.untagged && !r.prune_empty);
        assert!(StartRequest::from_body(b"{\"untagged\":1}").is_err());
    }
}
