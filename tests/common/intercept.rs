//! A pass-through HTTP proxy between registry-admin and the registry that runs a test's hook
//! just before it forwards the first `DELETE`: what another client does at that instant (a CI
//! pushing a sibling tag) lands exactly inside registry-admin's delete, every time.
//! It binds port 0 itself, so no other process can hold its port.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

type Hook = Box<dyn FnOnce() + Send>;

struct Shared {
    upstream: Mutex<String>,
    before_delete: Mutex<Option<Hook>>,
}

pub struct Intercept {
    pub url: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl Intercept {
    /// Starts the proxy; set where it forwards to with `forward_to` before the first request.
    pub fn start() -> Intercept {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: Mutex::new(String::new()),
            before_delete: Mutex::new(None),
        });
        let data = web::Data::from(Arc::clone(&shared));
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                        .default_service(web::to(forward))
                })
                .workers(1)
                .listen(listener)
                .expect("proxy listen")
                .run();
                let _ = tx.send(server.handle());
                let _ = server.await;
            })
        });
        let server = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the proxy started");
        Intercept {
            url,
            shared,
            server,
        }
    }

    pub fn forward_to(&self, upstream: &str) {
        *self.shared.upstream.lock().unwrap() = upstream.to_string();
    }

    /// Runs `hook` (blocking is fine) before the next `DELETE` is forwarded.
    pub fn before_next_delete(&self, hook: impl FnOnce() + Send + 'static) {
        *self.shared.before_delete.lock().unwrap() = Some(Box::new(hook));
    }

    /// Whether the hook has run.
    pub fn hook_ran(&self) -> bool {
        self.shared.before_delete.lock().unwrap().is_none()
    }
}

impl Drop for Intercept {
    fn drop(&mut self) {
        // Ends the server's accept loop; its thread then returns.
        drop(self.server.stop(false));
    }
}

async fn forward(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if req.method() == actix_web::http::Method::DELETE {
        let hook = shared.before_delete.lock().unwrap().take();
        if let Some(hook) = hook {
            web::block(hook).await.expect("the hook ran");
        }
    }
    let upstream = shared.upstream.lock().unwrap().clone();
    let url = format!("{upstream}{}", req.uri());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = reqwest::Client::new()
        .request(method, url)
        .body(body.to_vec());
    // Host included: the registry builds its upload `Location`s from it, and registry-admin
    // follows only those on the address it was given (this proxy's).
    for (name, value) in req.headers() {
        out = out.header(name.as_str(), value.as_bytes());
    }
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let mut back =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(resp.status().as_u16()).unwrap());
    for (name, value) in resp.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            back.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    back.body(bytes)
}
