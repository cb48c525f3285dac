//! registry:2 in token mode: it trusts tokens signed by the key whose certificate is given as
//! `rootcertbundle`. The realm is never contacted by the registry itself, so any URL will do.

use std::path::Path;

use super::{Registry, free_port};

impl Registry {
    pub fn start_token(dir: &Path, rootcertbundle: &Path, service: &str, issuer: &str) -> Registry {
        assert!(
            rootcertbundle.exists(),
            "the certificate bundle must exist before the registry starts (it panics otherwise)"
        );
        let port = free_port();
        let data = dir.join("registry-data");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.join("registry-config.yml");
        let text = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n\
             auth:\n  token:\n    realm: http://127.0.0.1:1/token\n    service: {service}\n\
             \x20   issuer: {issuer}\n    rootcertbundle: {bundle}\n",
            data = data.display(),
            bundle = rootcertbundle.display(),
        );
        std::fs::write(&config, text).unwrap();
        let mut registry = Registry {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir: dir.to_path_buf(),
            log: dir.join("registry.log"),
            config,
        };
        registry.spawn();
        registry
    }
}
