//! The manifest media types registry-admin asks for and recognises. Always all four in
//! `Accept`: without the right one, registry:2 answers OCI content with 404 and rewrites schema2
//! to schema1 with a digest that cannot be deleted (docs/registry-facts.md).

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Without all four, registry:2 hides OCI content (404), rewrites schema2 to schema1 with a
/// digest that cannot be deleted, or answers a manifest list with its amd64 child.
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
