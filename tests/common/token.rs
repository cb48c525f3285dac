//! A registry in token mode: it trusts tokens signed by the key whose certificate is given as
//! `rootcertbundle`. The realm is never contacted by the registry itself, so any URL will do.

use std::path::Path;

use super::registry_config::{Auth, RegistryConfig};
use super::{Registry, on_free_port};

impl Registry {
    pub fn start_token(dir: &Path, rootcertbundle: &Path, service: &str, issuer: &str) -> Registry {
        assert!(
            rootcertbundle.exists(),
            "the certificate bundle must exist before the registry starts (it panics otherwise)"
        );
        let auth = Auth::token("http://127.0.0.1:1/token", service, issuer, rootcertbundle);
        on_free_port(|port| {
            Registry::launch(
                dir,
                RegistryConfig::new(port, Registry::filesystem(dir)).auth(auth.clone()),
            )
        })
    }
}
