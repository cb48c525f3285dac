//! nginx as the tests run it: foreground, single process (no workers to outlive it), every path
//! it writes in its own temp dir, stopped on Drop. [`NginxProcess`] is the one launcher; the
//! cluster's load balancer ([`ClusterNginx`], below) and the TLS proxy in front of the stack
//! (`proxy.rs`) are the two configs it runs.
//!
//! The balancer is the repository's deploy/nginx-cluster.conf with its upstream addresses and
//! listen port replaced by loopback ones, so the file users deploy is the file tested. `/v2/`
//! goes to the registries, everything else to the registry-admin replicas.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{PortTaken, client};

pub const NGINX_BIN: &str = "/usr/sbin/nginx";

/// How the access log is written.
#[derive(Clone, Copy)]
pub enum AccessLog {
    /// nginx's `combined` format: `"METHOD /path HTTP/1.1" status …`.
    Combined,
    /// `METHOD /path status upstream=ADDR upstream_status=STATUS`: which backend answered.
    Upstreams,
}

/// One nginx running `site` (a `server { }` config) from its own directory.
pub struct NginxProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The port a lost bind is reported as.
    port: u16,
}

impl NginxProcess {
    /// Writes `site` and the `http { }` around it into `dir`, has `nginx -t` accept it (`what`
    /// names the config in the failure), and starts nginx. Wait with [`Self::wait_ready`].
    pub fn start(
        dir: tempfile::TempDir,
        site: &str,
        access: AccessLog,
        what: &str,
        port: u16,
    ) -> NginxProcess {
        let site_path = dir.path().join("site.conf");
        std::fs::write(&site_path, site).unwrap();
        std::fs::create_dir_all(dir.path().join("temp")).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            main_config(dir.path(), &site_path, access),
        )
        .unwrap();
        let check = command(dir.path())
            .arg("-t")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("run nginx -t");
        assert!(
            check.status.success(),
            "nginx rejects {what}:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let out = std::fs::File::create(dir.path().join("nginx.out")).unwrap();
        let child = command(dir.path())
            // No daemon, no master/worker split: the process the test holds is all of nginx.
            .args(["-g", "daemon off; master_process off;"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start nginx");
        NginxProcess {
            child: Some(child),
            dir,
            port,
        }
    }

    /// Until the nginx started here holds its ports and `ready` says it answers. It writes its
    /// pid file only once it holds every listening socket, so that file naming our child
    /// proves the ports are ours and not another test's; a lost bind makes it exit.
    pub fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result<(), PortTaken> {
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
                self.child = None;
                if log.contains("Address already in use") {
                    return Err(PortTaken(self.port));
                }
                panic!("nginx exited ({status}):\n{log}");
            }
            let pid_file = std::fs::read_to_string(self.dir.path().join("nginx.pid"));
            if pid_file.ok().map(|p| p.trim().to_string()) == pid && ready() {
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

    pub fn error_log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("error.log"), read("nginx.out"))
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for NginxProcess {
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

/// The `http { }` around an included site config, what a distribution's nginx.conf provides
/// around conf.d/, with every path nginx writes moved into `dir`: the compiled-in ones are
/// under /var and /run.
fn main_config(dir: &Path, site: &Path, access: AccessLog) -> String {
    let d = dir.display();
    let access_log = match access {
        AccessLog::Combined => format!("access_log {d}/access.log;"),
        AccessLog::Upstreams => format!("access_log {d}/access.log upstreams;"),
    };
    format!(
        "pid {d}/nginx.pid;\n\
         lock_file {d}/nginx.lock;\n\
         error_log {d}/error.log notice;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20   log_format upstreams '$request_method $uri $status \
         upstream=$upstream_addr upstream_status=$upstream_status';\n\
         \x20   {access_log}\n\
         \x20   client_body_temp_path {d}/temp/body;\n\
         \x20   proxy_temp_path {d}/temp/proxy;\n\
         \x20   fastcgi_temp_path {d}/temp/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/temp/uwsgi;\n\
         \x20   scgi_temp_path {d}/temp/scgi;\n\
         \x20   include {site};\n\
         }}\n",
        site = site.display(),
    )
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

/// The balancer config compose.cluster.yaml mounts, exactly as the repository has it.
pub const CLUSTER_CONFIG: &str = include_str!("../../deploy/nginx-cluster.conf");

/// deploy/nginx-cluster.conf listening on `listen`, balancing over these backends.
pub fn cluster_site(
    listen: SocketAddr,
    admins: [SocketAddr; 2],
    registries: [SocketAddr; 2],
) -> String {
    let mut site = CLUSTER_CONFIG.to_string();
    for (from, to) in [
        ("admin-a:5001", admins[0].to_string()),
        ("admin-b:5001", admins[1].to_string()),
        ("registry-a:5000", registries[0].to_string()),
        ("registry-b:5000", registries[1].to_string()),
        ("listen 5000;", format!("listen {listen};")),
    ] {
        let found = site.matches(from).count();
        assert_eq!(
            found, 1,
            "deploy/nginx-cluster.conf: expected one {from:?}, found {found}"
        );
        site = site.replace(from, &to);
    }
    site
}

pub struct ClusterNginx {
    process: NginxProcess,
    pub port: u16,
    /// `http://127.0.0.1:PORT`: the registries' `/v2/` and the replicas' API in one.
    pub url: String,
}

impl ClusterNginx {
    /// Whether nginx is installed; when it is not, a banner (or, under CI, a failure).
    pub fn installed() -> bool {
        if Path::new(NGINX_BIN).exists() {
            return true;
        }
        super::skip::component_missing("nginx", "install it with scripts/install-deps.sh nginx");
        false
    }

    /// On `port`, picked by the caller (the registries' token realm names it before nginx
    /// starts): wrap the whole start in `on_free_port`.
    pub fn try_start(
        port: u16,
        admins: [SocketAddr; 2],
        registries: [SocketAddr; 2],
    ) -> Result<ClusterNginx, PortTaken> {
        let dir = tempfile::tempdir().expect("temp dir");
        let listen: SocketAddr = ([127, 0, 0, 1], port).into();
        let site = cluster_site(listen, admins, registries);
        let mut process = NginxProcess::start(
            dir,
            &site,
            AccessLog::Upstreams,
            "deploy/nginx-cluster.conf",
            port,
        );
        let url = format!("http://{listen}");
        process.wait_ready(|| client().get(format!("{url}/v2/")).send().is_ok())?;
        Ok(ClusterNginx { process, port, url })
    }

    /// `127.0.0.1:PORT`, as registry clients name it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn error_log(&self) -> String {
        self.process.error_log()
    }

    pub fn access_log(&self) -> String {
        self.process.access_log()
    }
}
