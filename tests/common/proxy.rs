//! nginx in front of the stack, running the example config from docs/proxy/nginx.conf with
//! its addresses, ports and certificate paths substituted, and a CA made here for its TLS;
//! started by the one launcher in `nginx.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use reqwest::blocking::Client;

use super::PortTaken;
use super::nginx::{AccessLog, NGINX_BIN, NginxProcess};
/// The config README.md shows, exactly as the repository has it.
pub const DOC_CONFIG: &str = include_str!("../../docs/proxy/nginx.conf");

/// A CA and a server certificate it signed for 127.0.0.1 and the example host names.
/// `dir` holds `fullchain.pem` and `privkey.pem` for nginx; `ca_dir` holds only `ca.crt`, the
/// layout skopeo's `--dest-cert-dir`/`--src-cert-dir` read.
pub struct Tls {
    pub dir: PathBuf,
    pub ca_dir: PathBuf,
    pub ca_pem: String,
}

impl Tls {
    pub fn create(under: &Path) -> Tls {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "registry-admin test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");

        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "registry.example.com".to_string(),
            "admin.example.com".to_string(),
        ])
        .expect("server params");
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "registry.example.com");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &ca).expect("server certificate");

        let dir = under.join("tls");
        let ca_dir = under.join("ca");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&ca_dir).unwrap();
        std::fs::write(dir.join("fullchain.pem"), cert.pem() + &ca.pem()).unwrap();
        std::fs::write(dir.join("privkey.pem"), key.serialize_pem()).unwrap();
        std::fs::write(ca_dir.join("ca.crt"), ca.pem()).unwrap();
        Tls {
            dir,
            ca_dir,
            ca_pem: ca.pem(),
        }
    }
}

/// Replaces `from` by `to`, requiring exactly `count` occurrences, so that a change to the
/// example config that the substitution no longer fits fails here instead of testing
/// something else.
fn replace_exactly(text: &str, from: &str, to: &str, count: usize) -> String {
    let found = text.matches(from).count();
    assert_eq!(
        found, count,
        "docs/proxy/nginx.conf: expected {count} of {from:?}, found {found}"
    );
    text.replace(from, to)
}

/// The example config with the test's addresses: the registry server block listens on
/// `registry_listen`, the registry-admin one on `admin_listen`.
pub fn config_for(
    registry_upstream: SocketAddr,
    admin_upstream: SocketAddr,
    registry_listen: SocketAddr,
    admin_listen: SocketAddr,
    tls_dir: &Path,
) -> String {
    let text = replace_exactly(
        DOC_CONFIG,
        "server registry:5000;",
        &format!("server {registry_upstream};"),
        1,
    );
    let text = replace_exactly(
        &text,
        "server admin:5001;",
        &format!("server {admin_upstream};"),
        1,
    );
    // Both server blocks listen on 443 in the example, told apart by name; here each gets a
    // port of its own so clients can address them as 127.0.0.1:PORT. The registry's comes first.
    let listen = "listen 443 ssl;";
    let registry_at = text
        .find("server_name registry.example.com;")
        .expect("registry server block");
    let admin_at = text
        .find("server_name admin.example.com;")
        .expect("registry-admin server block");
    assert!(registry_at < admin_at, "registry server block comes first");
    let text = replace_exactly(&text, listen, listen, 2);
    let text = text.replacen(listen, &format!("listen {registry_listen} ssl;"), 1);
    let text = text.replacen(listen, &format!("listen {admin_listen} ssl;"), 1);
    replace_exactly(
        &text,
        "/etc/nginx/tls/",
        &format!("{}/", tls_dir.display()),
        4,
    )
}

pub struct Nginx {
    process: NginxProcess,
    pub tls: Tls,
    /// `127.0.0.1:PORT` of the registry server block, as skopeo names a registry.
    pub registry_host: String,
    /// `https://127.0.0.1:PORT` of the registry server block.
    pub registry_url: String,
    /// `https://127.0.0.1:PORT` of the registry-admin server block.
    pub admin_url: String,
}

impl Nginx {
    /// nginx proxying to registry:2 at `registry_upstream` and registry-admin at
    /// `admin_upstream`, each on a free loopback port of its own.
    pub fn start(registry_upstream: SocketAddr, admin_upstream: SocketAddr) -> Nginx {
        assert!(
            Path::new(NGINX_BIN).exists(),
            "{NGINX_BIN} is missing: run the test command from README.md, which installs nginx"
        );
        super::on_free_port(|registry_port| {
            Self::try_start(registry_upstream, admin_upstream, registry_port)
        })
    }

    fn try_start(
        registry_upstream: SocketAddr,
        admin_upstream: SocketAddr,
        registry_port: u16,
    ) -> Result<Nginx, PortTaken> {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = Tls::create(dir.path());
        let registry_listen: SocketAddr = ([127, 0, 0, 1], registry_port).into();
        let admin_listen: SocketAddr = ([127, 0, 0, 1], super::free_port()).into();
        let site = config_for(
            registry_upstream,
            admin_upstream,
            registry_listen,
            admin_listen,
            &tls.dir,
        );
        let process = NginxProcess::start(
            dir,
            &site,
            AccessLog::Combined,
            "the config from docs/proxy/nginx.conf",
            registry_port,
        );
        let mut nginx = Nginx {
            process,
            registry_host: registry_listen.to_string(),
            registry_url: format!("https://{registry_listen}"),
            admin_url: format!("https://{admin_listen}"),
            tls,
        };
        let c = nginx.client();
        let (admin, registry) = (
            format!("{}/health/live", nginx.admin_url),
            format!("{}/v2/", nginx.registry_url),
        );
        nginx.process.wait_ready(|| {
            c.get(&admin).send().is_ok_and(|r| r.status() == 200)
                && c.get(&registry).send().is_ok_and(|r| r.status() == 401)
        })?;
        Ok(nginx)
    }

    /// A client that trusts the test CA and nothing else.
    pub fn client(&self) -> Client {
        let ca = reqwest::Certificate::from_pem(self.tls.ca_pem.as_bytes()).expect("CA pem");
        Client::builder()
            .add_root_certificate(ca)
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("https client")
    }

    pub fn error_log(&self) -> String {
        self.process.error_log()
    }

    pub fn access_log(&self) -> String {
        self.process.access_log()
    }
}
