//! A registry in token mode: it trusts tokens signed by the key whose certificate is given as
//! `rootcertbundle`. The realm is never contacted by the registry itself, so any URL will do.

use std::path::Path;

use super::{Registry, on_free_port};

impl Registry {
    pub fn start_token(dir: &Path, rootcertbundle: &Path, service: &str, issuer: &str) -> Registry {
        assert!(
            rootcertbundle.exists(),
            "the certificate bundle must exist before the registry starts (it panics otherwise)"
        );
        let auth = format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:1/token\n    service: {service}\n\
             \x20   issuer: {issuer}\n    rootcertbundle: {bundle}\n",
            bundle = rootcertbundle.display(),
        );
        on_free_port(|port| Registry::launch(dir, port, &auth))
    }
}
