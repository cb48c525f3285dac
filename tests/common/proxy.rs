//! nginx in front of the stack, running the example config from docs/proxy/nginx.conf with
//! its addresses, ports and certificate paths substituted, and a CA made here for its TLS.
//! nginx runs in the foreground as a single process (no workers to outlive it), with every
//! path it writes in its own temp dir; it is stopped when the handle is dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use reqwest::blocking::Client;

use super::PortTaken;

pub const NGINX_BIN: &str = "/usr/sbin/nginx";
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
    child: Option<Child>,
    dir: tempfile::TempDir,
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
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("temp")).unwrap();
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        // What a distribution's nginx.conf provides around conf.d/, with every path moved
        // into the temp dir: the compiled-in ones are under /var and /run.
        let main = format!(
            "pid {d}/nginx.pid;\n\
             lock_file {d}/nginx.lock;\n\
             error_log {d}/error.log notice;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
             \x20   access_log {d}/access.log;\n\
             \x20   client_body_temp_path {d}/temp/body;\n\
             \x20   proxy_temp_path {d}/temp/proxy;\n\
             \x20   fastcgi_temp_path {d}/temp/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/temp/uwsgi;\n\
             \x20   scgi_temp_path {d}/temp/scgi;\n\
             \x20   include {d}/site.conf;\n\
             }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();

        let check = Self::command(dir.path())
            .arg("-t")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run nginx -t");
        assert!(
            check.status.success(),
            "nginx rejects the config from docs/proxy/nginx.conf:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );

        let out = std::fs::File::create(dir.path().join("nginx.out")).unwrap();
        let child = Self::command(dir.path())
            // No daemon, no master/worker split: the process the test holds is all of nginx.
            .args(["-g", "daemon off; master_process off;"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child: Some(child),
            registry_host: registry_listen.to_string(),
            registry_url: format!("https://{registry_listen}"),
            admin_url: format!("https://{admin_listen}"),
            tls,
            dir,
        };
        nginx.wait_ready()?;
        Ok(nginx)
    }

    fn command(dir: &Path) -> Command {
        let mut cmd = Command::new(NGINX_BIN);
        cmd.arg("-p")
            .arg(format!("{}/", dir.display()))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .env_clear()
            .stdin(Stdio::null());
        cmd
    }

    /// Until the nginx started here answers on both ports. It writes its pid file only once
    /// it holds every listening socket, so that file naming our child proves the ports are
    /// ours and not another test's; a lost bind makes it retry, then exit.
    fn wait_ready(&mut self) -> Result<(), PortTaken> {
        let c = self.client();
        let limit = Duration::from_secs(20);
        let start = Instant::now();
        let pid = self.child.as_ref().map(|c| c.id().to_string());
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = self.error_log();
                if log.contains("Address already in use") {
                    self.child = None;
                    let port = self
                        .registry_host
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok());
                    return Err(PortTaken(port.unwrap_or(0)));
                }
                panic!("nginx exited ({status}):\n{log}");
            }
            let pid_file = std::fs::read_to_string(self.dir.path().join("nginx.pid"));
            if pid_file.ok().map(|p| p.trim().to_string()) != pid {
                assert!(
                    start.elapsed() < limit,
                    "nginx did not bind its ports within {limit:?}:\n{}",
                    self.error_log()
                );
                thread::sleep(Duration::from_millis(50));
                continue;
            }
            let admin = c.get(format!("{}/health/live", self.admin_url)).send();
            let registry = c.get(format!("{}/v2/", self.registry_url)).send();
            if admin.is_ok_and(|r| r.status() == 200) && registry.is_ok_and(|r| r.status() == 401) {
                return Ok(());
            }
            assert!(
                start.elapsed() < limit,
                "nginx did not answer within {limit:?}:\n{}",
                self.error_log()
            );
            thread::sleep(Duration::from_millis(50));
        }
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
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("error.log"), read("nginx.out"))
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGTERM lets nginx remove its pid file and close its logs; SIGKILL if it does not go.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
