//! registry-admin against a hostile upstream: a fake registry written here (std threads on
//! 127.0.0.1:0) that sends config blobs of a GiB, indexes of 15,000 children, bodies that do
//! not end, impossible sizes, and catalog `Link`s to other hosts or in circles. The real binary
//! is pointed at it with REGISTRY_URL. What a user must see is a 502 `upstream_error` whose
//! message names the cap, with bounded upstream requests and a process that stays small.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use common::auth::basic_value;
use common::{App, AppEnv, client, json};
use reqwest::Method;
use serde_json::{Value, json};

const SVC_USER: &str = "svc";
const SVC_PASSWORD: &str = "svc-secret-0123456789";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const GIB: u64 = 1 << 30;
/// The most the binary may ever have held (VmHWM) after a hostile answer. A debug build idles
/// at a few tens of MB; reading one of the GiB bodies below would pass this many times over.
const MAX_PEAK_KIB: u64 = 200 * 1024;

/// One request the fake registry received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    target: String,
    authorization: Option<String>,
}

enum Body {
    Bytes(Vec<u8>),
    /// `prefix`, then `fill` repeated until `len` bytes in all, sent with `Content-Length:
    /// content_length` when given, else chunked or (`chunked: false`) until the connection
    /// closes. The writer stops as soon as the client hangs up.
    Stream {
        prefix: Vec<u8>,
        fill: &'static [u8],
        len: u64,
        content_length: Option<u64>,
        chunked: bool,
    },
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    fn json(v: &Value) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Bytes(serde_json::to_vec(v).unwrap()),
        }
    }

    fn manifest(media_type: &str, v: &Value) -> Reply {
        let mut r = Reply::json(v);
        r.headers = vec![("Content-Type".into(), media_type.into())];
        r
    }

    fn not_found() -> Reply {
        let mut r = Reply::json(&json!({"errors": [{"code": "NOT_FOUND", "message": "nope"}]}));
        r.status = 404;
        r
    }

    fn stream(prefix: &str, fill: &'static [u8], len: u64) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Stream {
                prefix: prefix.as_bytes().to_vec(),
                fill,
                len,
                content_length: None,
                chunked: false,
            },
        }
    }

    fn chunked(mut self) -> Reply {
        if let Body::Stream { chunked, .. } = &mut self.body {
            *chunked = true;
        }
        self
    }

    fn declaring(mut self, n: u64) -> Reply {
        if let Body::Stream { content_length, .. } = &mut self.body {
            *content_length = Some(n);
        }
        self
    }

    fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A registry that answers every request with what `handler` says, one connection per
/// request, and remembers every request.
struct Fake {
    url: String,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Fake {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake registry");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let seen = Arc::clone(&seen);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let seen = Arc::clone(&seen);
                    let handler = Arc::clone(&handler);
                    thread::spawn(move || serve(conn, &seen, &*handler));
                }
            });
        }
        Fake {
            url: format!("http://{addr}"),
            addr,
            seen,
            stop,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose path and query start with `prefix`.
    fn count(&self, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.target.starts_with(prefix))
            .count()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(&conn);
    let mut head = Vec::new();
    // At most 100 header lines: the client is ours, but the loop must end regardless.
    for _ in 0..100 {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push(line.trim_end().to_string()),
        }
    }
    let Some(request_line) = head.first() else {
        return;
    };
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let authorization = head.iter().skip(1).find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.eq_ignore_ascii_case("authorization")
            .then(|| v.trim().to_string())
    });
    let request = Seen {
        method,
        target,
        authorization,
    };
    seen.lock().unwrap().push(request.clone());
    let reply = handler(&request);
    let _ = write_reply(&conn, &request.method, reply);
}

fn write_reply(mut conn: &TcpStream, method: &str, reply: Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match &reply.body {
        Body::Bytes(b) => head.push_str(&format!("Content-Length: {}\r\n", b.len())),
        Body::Stream {
            content_length: Some(n),
            ..
        } => head.push_str(&format!("Content-Length: {n}\r\n")),
        Body::Stream { chunked: true, .. } => head.push_str("Transfer-Encoding: chunked\r\n"),
        Body::Stream { .. } => {}
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }
    match reply.body {
        Body::Bytes(b) => conn.write_all(&b),
        Body::Stream {
            prefix,
            fill,
            len,
            chunked,
            ..
        } => {
            let block: Vec<u8> = fill.iter().copied().cycle().take(64 * 1024).collect();
            let mut sent = 0u64;
            let mut piece = prefix;
            while sent < len {
                if piece.is_empty() {
                    let n = block
                        .len()
                        .min(usize::try_from(len - sent).unwrap_or(usize::MAX));
                    piece = block[..n].to_vec();
                }
                if chunked {
                    conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                    conn.write_all(&piece)?;
                    conn.write_all(b"\r\n")?;
                } else {
                    conn.write_all(&piece)?;
                }
                sent += piece.len() as u64;
                piece = Vec::new();
            }
            if chunked {
                conn.write_all(b"0\r\n\r\n")?;
            }
            Ok(())
        }
    }
}

/// registry-admin pointed at `fake`, talking to it as `svc`.
fn app_for(fake: &Fake) -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = AppEnv::new(dir.path(), &fake.url)
        .set("REGISTRY_USERNAME", SVC_USER)
        .set("REGISTRY_PASSWORD", SVC_PASSWORD)
        .start();
    (dir, app)
}

fn get(app: &App, path: &str) -> (u16, Value) {
    // Longer than the harness's 30 s: a debug build on a busy machine is slow to hash and
    // parse the tens of MiB some of these tests make it read.
    let resp = app
        .as_admin(Method::GET, path)
        .timeout(Duration::from_secs(180))
        .send()
        .expect("request");
    json(resp)
}

/// Asserts a 502 `upstream_error` and returns its message.
fn upstream_error(app: &App, path: &str) -> String {
    let (status, body) = get(app, path);
    assert_eq!(status, 502, "{path}: {body}");
    assert_eq!(body["error"], "upstream_error", "{path}: {body}");
    body["message"].as_str().expect("message").to_string()
}

fn assert_stayed_small(app: &App) {
    let peak = app.memory_kib("VmHWM");
    eprintln!("registry-admin peak memory: {peak} KiB");
    assert!(
        peak < MAX_PEAK_KIB,
        "registry-admin held {peak} KiB at its peak (VmRSS now {} KiB)",
        app.memory_kib("VmRSS")
    );
}

fn digest(n: u64) -> String {
    format!("sha256:{n:064x}")
}

fn descriptor(media_type: &str, n: u64, size: Value) -> Value {
    json!({"mediaType": media_type, "digest": digest(n), "size": size})
}

fn image_manifest(config_size: Value, layer_sizes: &[Value]) -> Value {
    let layers: Vec<Value> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            descriptor(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                1000 + i as u64,
                s.clone(),
            )
        })
        .collect();
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", 1, config_size),
        "layers": layers,
    })
}

fn index_of(children: u64) -> Value {
    let manifests: Vec<Value> = (0..children)
        .map(|i| {
            let mut d = descriptor(OCI_MANIFEST, 10_000 + i, json!(500));
            d["platform"] = json!({"os": "linux", "architecture": format!("arch{i}")});
            d
        })
        .collect();
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
}

const SMALL_CONFIG: &str =
    r#"{"os":"linux","architecture":"amd64","created":"2026-01-02T03:04:05Z"}"#;

/// The image endpoints of the fake: `repo:v1` per repository below, children of `index-256`
/// by digest, and a small config blob for everything else.
fn images(seen: &Seen) -> Reply {
    let t = seen.target.as_str();
    let small = || image_manifest(json!(SMALL_CONFIG.len()), &[json!(100)]);
    match t {
        "/v2/" => Reply::json(&json!({})),
        // The manifest says the config is small; the blob says (and is) a GiB.
        "/v2/config-long/manifests/v1" | "/v2/config-unsized/manifests/v1" => {
            Reply::manifest(OCI_MANIFEST, &small())
        }
        _ if t.starts_with("/v2/config-long/blobs/") => {
            Reply::stream(r#"{"architecture":""#, b"a", GIB).declaring(GIB)
        }
        _ if t.starts_with("/v2/config-unsized/blobs/") => {
            Reply::stream(r#"{"architecture":""#, b"a", GIB)
        }
        "/v2/config-declared/manifests/v1" => {
            Reply::manifest(OCI_MANIFEST, &image_manifest(json!(GIB), &[json!(1)]))
        }
        "/v2/manifest-endless/manifests/v1" => Reply::stream(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":["#,
            br#"{"mediaType":"x","digest":"sha256:0","size":1},"#,
            GIB,
        )
        .chunked(),
        "/v2/wide/manifests/v1" => Reply::manifest(OCI_INDEX, &index_of(15_000)),
        "/v2/index-256/manifests/v1" => Reply::manifest(OCI_INDEX, &index_of(256)),
        _ if t.starts_with("/v2/index-256/manifests/sha256:") => {
            Reply::manifest(OCI_MANIFEST, &small())
        }
        "/v2/heavy/manifests/v1" => Reply::manifest(OCI_INDEX, &index_of(256)),
        // 256 children of about 1 MiB each: every one under its cap, 256 MiB together.
        _ if t.starts_with("/v2/heavy/manifests/sha256:") => {
            static HEAVY: OnceLock<Vec<u8>> = OnceLock::new();
            let heavy = HEAVY.get_or_init(|| {
                let layers = vec![json!(1); 8000];
                serde_json::to_vec(&image_manifest(json!(SMALL_CONFIG.len()), &layers)).unwrap()
            });
            Reply {
                status: 200,
                headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
                body: Body::Bytes(heavy.clone()),
            }
        }
        "/v2/sizes/manifests/overflow" => Reply::manifest(
            OCI_MANIFEST,
            // Wrapped, these add up to a few hundred bytes.
            &image_manifest(
                json!(SMALL_CONFIG.len()),
                &[json!(i64::MAX), json!(i64::MAX), json!(300)],
            ),
        ),
        "/v2/sizes/manifests/negative" => Reply::manifest(
            OCI_MANIFEST,
            &image_manifest(json!(10), &[json!(-1)]),
        ),
        "/v2/sizes/manifests/beyond-i64" => Reply::manifest(
            OCI_MANIFEST,
            &image_manifest(json!(10), &[json!(u64::MAX)]),
        ),
        "/v2/endless/tags/list" => {
            Reply::stream(r#"{"name":"endless","tags":["#, br#""aaaaaaa","#, GIB).chunked()
        }
        _ if t.contains("/blobs/") => Reply {
            status: 200,
            headers: vec![],
            body: Body::Bytes(SMALL_CONFIG.as_bytes().to_vec()),
        },
        _ => Reply::not_found(),
    }
}

#[test]
fn a_config_blob_whose_content_length_passes_the_cap_is_refused_unread() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/config-long/tags/v1");
    assert!(message.contains("cap of 4 MiB"), "{message}");
    assert_eq!(fake.count("/v2/config-long/blobs/"), 1);
    assert_stayed_small(&app);
}

#[test]
fn a_config_blob_without_content_length_is_cut_off_at_the_cap() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/config-unsized/tags/v1");
    assert!(message.contains("cap of 4 MiB"), "{message}");
    assert_stayed_small(&app);
}

#[test]
fn a_config_the_manifest_declares_huge_is_never_requested() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/config-declared/tags/v1");
    assert!(message.contains("cap of 4 MiB"), "{message}");
    assert_eq!(fake.count("/v2/config-declared/blobs/"), 0);
}

#[test]
fn an_endless_manifest_is_cut_off_at_the_cap() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/manifest-endless/tags/v1");
    assert!(
        message.contains("manifest-endless:v1") && message.contains("cap of 4 MiB"),
        "{message}"
    );
    assert_stayed_small(&app);
}

#[test]
fn an_index_of_15000_children_is_refused_without_following_any() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/wide/tags/v1");
    assert!(
        message.contains("15000") && message.contains("cap of 256"),
        "{message}"
    );
    assert_eq!(fake.count("/v2/wide/"), 1, "only the index itself is read");
    assert_stayed_small(&app);
}

#[test]
fn an_index_of_256_children_is_followed_in_full() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let (status, body) = get(&app, "/images/index-256/tags/v1");
    assert_eq!(status, 200, "{body}");
    let platforms = body["platforms"].as_array().expect("platforms");
    assert_eq!(platforms.len(), 256);
    assert_eq!(platforms[255]["architecture"], "arch255");
    let sum: u64 = platforms.iter().map(|p| p["size"].as_u64().unwrap()).sum();
    assert!(body["size"].as_u64().unwrap() > sum, "{}", body["size"]);
    // The index, then one manifest and one config per child.
    assert_eq!(fake.count("/v2/index-256/"), 1 + 256 + 256);
}

#[test]
fn an_index_whose_children_together_pass_the_budget_is_refused() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/heavy/tags/v1");
    assert!(message.contains("cap of 32 MiB per request"), "{message}");
    assert!(fake.count("/v2/heavy/") < 1 + 256 + 256);
    assert_stayed_small(&app);
}

#[test]
fn sizes_that_would_overflow_are_refused_instead_of_wrapping() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/sizes/tags/overflow");
    assert!(message.contains("u64 cap"), "{message}");
}

#[test]
fn negative_and_beyond_int64_descriptor_sizes_are_invalid_upstream_data() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/sizes/tags/negative");
    assert!(message.contains("negative size -1"), "{message}");
    let message = upstream_error(&app, "/images/sizes/tags/beyond-i64");
    assert!(message.contains("18446744073709551615"), "{message}");
}

#[test]
fn an_endless_tag_list_is_cut_off_at_the_cap() {
    let fake = Fake::start(images);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images/endless/tags");
    assert!(message.contains("cap of 16 MiB"), "{message}");
    assert_stayed_small(&app);
}

/// A fake whose catalog answers page `last` with `page(last)`: (repositories, Link target).
fn catalog_fake(
    page: impl Fn(Option<&str>) -> (Vec<String>, Option<String>) + Send + Sync + 'static,
) -> Fake {
    Fake::start(move |seen| {
        let Some(query) = seen.target.strip_prefix("/v2/_catalog") else {
            return if seen.target == "/v2/" {
                Reply::json(&json!({}))
            } else {
                Reply::not_found()
            };
        };
        let last = query
            .trim_start_matches('?')
            .split('&')
            .find_map(|kv| kv.strip_prefix("last="))
            .map(str::to_string);
        let (repositories, link) = page(last.as_deref());
        let reply = Reply::json(&json!({ "repositories": repositories }));
        match link {
            Some(l) => reply.header("Link", &format!("<{l}>; rel=\"next\"")),
            None => reply,
        }
    })
}

#[test]
fn a_catalog_link_to_another_host_is_not_followed_and_gets_no_credentials() {
    let foreign = Fake::start(|_| Reply::json(&json!({"repositories": ["stolen"]})));
    let foreign_url = foreign.url.clone();
    let link = Arc::new(Mutex::new(String::new()));
    let served = Arc::clone(&link);
    let fake = catalog_fake(move |last| match last {
        None => (vec!["a".into()], Some(served.lock().unwrap().clone())),
        Some(_) => (vec!["b".into()], None),
    });
    let (_dir, app) = app_for(&fake);
    let foreign_host = foreign_url.trim_start_matches("http://");
    // The fake itself, but under another name: another origin all the same.
    let other_name = format!("http://localhost:{}", fake.addr.port());
    for hostile in [
        format!("{foreign_url}/v2/_catalog?last=a&n=1000"),
        format!("//{foreign_host}/v2/_catalog?last=a&n=1000"),
        format!("/\\{foreign_host}/v2/_catalog?last=a&n=1000"),
        format!("{other_name}/v2/_catalog?last=a&n=1000"),
        format!("http://{SVC_USER}:x@{}/v2/_catalog?last=a", fake.addr),
        "/v2/a/tags/list?last=a".to_string(),
    ] {
        *link.lock().unwrap() = hostile.clone();
        let message = upstream_error(&app, "/images");
        assert!(message.contains("not followed"), "{hostile}: {message}");
    }
    assert!(
        foreign.seen().is_empty(),
        "the foreign host was asked: {:?}",
        foreign.seen()
    );
    // Only first pages were fetched, each with the service credentials.
    let seen = fake.seen();
    let pages: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.target.starts_with("/v2/_catalog"))
        .collect();
    assert_eq!(pages.len(), 6, "{pages:?}");
    assert!(pages.iter().all(|s| s.target == "/v2/_catalog?n=1000"));
    assert!(pages.iter().all(|s| s.method == "GET"
        && s.authorization.as_deref() == Some(basic_value(SVC_USER, SVC_PASSWORD).as_str())));
}

#[test]
fn a_catalog_link_on_the_same_registry_is_followed_relative_or_absolute() {
    let url = Arc::new(Mutex::new(String::new()));
    let base = Arc::clone(&url);
    let fake = catalog_fake(move |last| match last {
        None => (vec!["b".into()], Some("/v2/_catalog?last=b&n=1000".into())),
        Some("b") => (
            vec!["a".into()],
            Some(format!(
                "{}/v2/_catalog?last=c&n=1000",
                base.lock().unwrap()
            )),
        ),
        Some(_) => (vec!["c".into()], None),
    });
    *url.lock().unwrap() = fake.url.clone();
    let (_dir, app) = app_for(&fake);
    let (status, body) = get(&app, "/images");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["repositories"], json!(["a", "b", "c"]));
    assert_eq!(fake.count("/v2/_catalog"), 3);
}

#[test]
fn a_catalog_link_that_does_not_advance_stops_as_a_loop() {
    let fake = catalog_fake(|_| (vec!["a".into()], Some("/v2/_catalog?last=a&n=1000".into())));
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(message.contains("loop"), "{message}");
    assert_eq!(fake.count("/v2/_catalog"), 2);

    let fake = catalog_fake(|_| (vec!["a".into()], Some("/v2/_catalog?n=1000".into())));
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(message.contains("loop"), "{message}");
    assert_eq!(fake.count("/v2/_catalog"), 1);
}

#[test]
fn a_catalog_of_endless_pages_stops_at_1000_pages() {
    let fake = catalog_fake(|last| {
        let n = last
            .and_then(|l| l.strip_prefix('r'))
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |n| n + 1);
        let name = format!("r{n:07}");
        let link = format!("/v2/_catalog?last={name}&n=1000");
        (vec![name], Some(link))
    });
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(message.contains("cap of 1000 pages"), "{message}");
    assert_eq!(fake.count("/v2/_catalog"), 1000);
}

#[test]
fn a_catalog_page_of_more_than_10000_repositories_is_refused() {
    let fake = catalog_fake(|_| ((0..10_001).map(|i| format!("r{i}")).collect(), None));
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(
        message.contains("10001") && message.contains("cap of 10000 repositories per page"),
        "{message}"
    );
}

/// Pages of 10,000 names of `len` characters, `pages` of them, each linking to the next.
fn catalog_of(pages: usize, len: usize) -> Fake {
    catalog_fake(move |last| {
        let page = last
            .and_then(|l| l.strip_prefix('p'))
            .and_then(|l| l.get(..4))
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n + 1);
        let names: Vec<String> = (0..10_000)
            .map(|i| {
                let name = format!("p{page:04}r{i:05}");
                format!("{name}{}", "a".repeat(len.saturating_sub(name.len())))
            })
            .collect();
        let link = (page + 1 < pages).then(|| {
            format!(
                "/v2/_catalog?last={}&n=1000",
                names.last().cloned().unwrap_or_default()
            )
        });
        (names, link)
    })
}

#[test]
fn a_catalog_of_more_than_100000_repositories_is_refused_naming_the_cap() {
    // Ten pages are exactly the cap, and answered.
    let fake = catalog_of(10, 10);
    let (_dir, app) = app_for(&fake);
    let (status, body) = get(&app, "/images");
    assert_eq!(status, 200);
    assert_eq!(body["repositories"].as_array().map(Vec::len), Some(100_000));

    let fake = catalog_of(11, 10);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(message.contains("cap of 100000 repositories"), "{message}");
    assert_eq!(fake.count("/v2/_catalog"), 11);
}

#[test]
fn a_catalog_of_more_than_16_mib_of_names_is_refused_naming_the_cap() {
    // 10,000 names of 250 characters a page: the seventh page passes 16 MiB.
    let fake = catalog_of(50, 250);
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(
        message.contains("cap of 16 MiB of repository names"),
        "{message}"
    );
    assert_eq!(fake.count("/v2/_catalog"), 7);
    assert_stayed_small(&app);
}

#[test]
fn an_endless_catalog_page_is_cut_off_at_the_cap() {
    let fake = Fake::start(|seen| {
        if seen.target.starts_with("/v2/_catalog") {
            Reply::stream(r#"{"repositories":["#, br#""aaaaaaa","#, GIB)
        } else {
            Reply::json(&json!({}))
        }
    });
    let (_dir, app) = app_for(&fake);
    let message = upstream_error(&app, "/images");
    assert!(message.contains("cap of 4 MiB"), "{message}");
    assert_stayed_small(&app);
}

#[test]
fn invented_methods_and_paths_add_no_metric_series() {
    let fake = Fake::start(|_| Reply::json(&json!({})));
    let (_dir, app) = app_for(&fake);
    let http = client();
    for i in 0..3000 {
        let method = Method::from_bytes(format!("JUNK{i:05}").as_bytes()).unwrap();
        let path = if i % 2 == 0 {
            "/users"
        } else {
            "/no/such/path"
        };
        let resp = http
            .request(method, format!("{}{path}/{i}", app.url))
            .send()
            .expect("junk request");
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    let users = app
        .as_admin(Method::GET, "/users")
        .send()
        .expect("GET /users");
    assert_eq!(users.status(), 200);
    let resp = app
        .as_admin(Method::GET, "/metrics")
        .send()
        .expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let text = resp.text().expect("metrics body");
    assert!(
        text.len() < 64 * 1024,
        "/metrics grew to {} bytes",
        text.len()
    );
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(!text.contains("JUNK"), "{text}");
    assert!(!text.contains("/no/such"), "{text}");
    // The admin's own requests are still labelled with their real method.
    assert!(text.contains("method=\"GET\""), "{text}");
}
