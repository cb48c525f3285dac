//! Images benchmark, one run against a real registry:2 on loopback, each figure next to the
//! same operation done straight at the registry (same account) or by skopeo:
//! - p50 of `GET /images/{name}/tags` vs `GET /v2/{name}/tags/list`;
//! - `GET /images` over 2,000 repositories vs the registry's own catalog pages;
//! - tag-delete latency vs `skopeo delete` of the same kind of tag.
//!
//! Run with `cargo bench --bench images`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::bench::{ms, p50};
use common::images::{copy_by_mount, one_image, raw_manifest};
use common::{ADMIN_PASSWORD, Stack, client};
use serde_json::Value;

const REPOS: usize = 2000;
const SAMPLES: usize = 200;
const DELETES: usize = 10;

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Stores `raw` as `name:tag`, made unique by an annotation when `unique` is given.
fn put_manifest(stack: &Stack, raw: &[u8], name: &str, tag: &str, unique: Option<usize>) {
    let body = match unique {
        None => raw.to_vec(),
        Some(n) => {
            let mut m: Value = serde_json::from_slice(raw).unwrap();
            m["annotations"] = serde_json::json!({"bench.nonce": n.to_string()});
            serde_json::to_vec(&m).unwrap()
        }
    };
    copy_by_mount(
        &stack.registry.url,
        ADMIN_PASSWORD,
        "seed",
        &body,
        name,
        tag,
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // registry-admin talks to the registry as `admin`, the account the direct requests use.
    let stack = Stack::start_with(|env| {
        env.set("REGISTRY_USERNAME", "admin")
            .set("REGISTRY_PASSWORD", ADMIN_PASSWORD)
            .set("RUST_LOG", "warn")
    });
    let reg_host = format!("127.0.0.1:{}", stack.registry.port);
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let (_dir, layout, _) = one_image(2);
    layout.push(&reg_host, &creds, "img", "seed", "v1", false);
    let raw = raw_manifest(&reg_host, &creds, "seed:v1").unwrap();

    // 1. Tags of one repository with 10 tags, keep-alive clients on both sides, interleaved.
    for t in 0..10 {
        put_manifest(&stack, &raw, "bench/tags", &format!("v{t}"), None);
    }
    let ours_client = client();
    let direct_client = client();
    let (mut ours, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..SAMPLES {
        ours.push(timed(|| {
            let r = ours_client
                .get(format!("{}/images/bench/tags/tags", stack.app.url))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().unwrap();
        }));
        direct.push(timed(|| {
            let r = direct_client
                .get(format!("{}/v2/bench/tags/tags/list", stack.registry.url))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().unwrap();
        }));
    }
    let (tags_ours, tags_direct) = (p50(ours), p50(direct));

    // 2. The catalog over REPOS repositories.
    for i in 0..REPOS {
        put_manifest(&stack, &raw, &format!("many/r{i:05}"), "v1", None);
    }
    let (mut ours, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        ours.push(timed(|| {
            let r = ours_client
                .get(format!("{}/images", stack.app.url))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().unwrap();
            assert!(v["repositories"].as_array().unwrap().len() > REPOS);
        }));
        direct.push(timed(|| {
            let mut url = format!("{}/v2/_catalog?n=1000", stack.registry.url);
            loop {
                let r = direct_client
                    .get(&url)
                    .basic_auth("admin", Some(ADMIN_PASSWORD))
                    .send()
                    .unwrap();
                let link = r
                    .headers()
                    .get("link")
                    .map(|l| l.to_str().unwrap().to_string());
                r.bytes().unwrap();
                match link {
                    Some(l) => {
                        let path = l
                            .trim_start_matches('<')
                            .split('>')
                            .next()
                            .unwrap()
                            .to_string();
                        url = format!("{}{path}", stack.registry.url);
                    }
                    None => break,
                }
            }
        }));
    }
    let (cat_ours, cat_direct) = (p50(ours), p50(direct));

    // 3. Deletes. Lone tags (one digest each): ours deletes by digest, as skopeo does.
    //    Tags with siblings: ours moves the tag to a throwaway manifest; skopeo cannot do that
    //    without taking the siblings, so it is timed on lone tags only.
    for i in 0..DELETES {
        put_manifest(&stack, &raw, "del/lone", &format!("t{i}"), Some(i));
        put_manifest(&stack, &raw, "del/skopeo", &format!("t{i}"), Some(1000 + i));
        put_manifest(&stack, &raw, "del/siblings", &format!("t{i}"), None);
    }
    put_manifest(&stack, &raw, "del/siblings", "keep", None);
    let delete_ours = |name: &str, tag: &str| {
        timed(|| {
            let r = ours_client
                .delete(format!("{}/images/{name}/tags/{tag}", stack.app.url))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
        })
    };
    let (mut lone, mut siblings, mut skopeo) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..DELETES {
        lone.push(delete_ours("del/lone", &format!("t{i}")));
        siblings.push(delete_ours("del/siblings", &format!("t{i}")));
        skopeo.push(timed(|| {
            let ok = Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "delete",
                    "--tls-verify=false",
                    "--creds",
                    &creds,
                ])
                .arg(format!("docker://{reg_host}/del/skopeo:t{i}"))
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }));
    }
    let (del_lone, del_sib, del_skopeo) = (p50(lone), p50(siblings), p50(skopeo));

    println!("registry-admin images benchmark (registry:2 on loopback, account bcrypt cost 4)");
    println!("| figure | value | reference | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| p50 GET tags, 10 tags ({SAMPLES} samples) | {:.2} ms | GET /v2/…/tags/list direct {:.2} ms | {:.2} | <= 1.3 |",
        ms(tags_ours),
        ms(tags_direct),
        ms(tags_ours) / ms(tags_direct)
    );
    println!(
        "| GET /images, {} repositories (p50 of 5) | {:.0} ms | direct _catalog pages {:.0} ms | {:.2} | <= 1000 ms |",
        REPOS + 1,
        ms(cat_ours),
        ms(cat_direct),
        ms(cat_ours) / ms(cat_direct)
    );
    println!(
        "| p50 tag delete, lone tag ({DELETES}) | {:.1} ms | skopeo delete {:.1} ms | {:.2} | |",
        ms(del_lone),
        ms(del_skopeo),
        ms(del_lone) / ms(del_skopeo)
    );
    println!(
        "| p50 tag delete, tag with siblings ({DELETES}) | {:.1} ms | skopeo delete (lone tag; it cannot spare siblings) {:.1} ms | {:.2} | |",
        ms(del_sib),
        ms(del_skopeo),
        ms(del_sib) / ms(del_skopeo)
    );
}
