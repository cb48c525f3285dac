//! What `docker build` and `docker compose` would rely on, checked without a Docker engine
//! (none runs on these machines; CI also validates compose.yaml with `docker-compose config`).

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Instructions of the Dockerfile with continuation lines joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            cur.push_str(part);
            cur.push(' ');
        } else {
            cur.push_str(line);
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
        }
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_cached_non_root_and_health_checked() {
    let ins = instructions(&read("Dockerfile"));
    let froms: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, i)| i.starts_with("FROM "))
        .map(|(n, _)| n)
        .collect();
    assert!(froms.len() >= 2, "multi-stage");
    let (build, runtime) = (&ins[froms[0]..froms[1]], &ins[froms[1]..]);

    let pos = |stage: &[String], pred: &dyn Fn(&str) -> bool| stage.iter().position(|i| pred(i));
    let manifests = pos(build, &|i| i.starts_with("COPY Cargo.toml Cargo.lock"))
        .expect("manifests copied alone");
    let deps_build = pos(build, &|i| {
        i.starts_with("RUN") && i.contains("cargo build")
    })
    .expect("dependency build");
    let sources = pos(build, &|i| i.starts_with("COPY src")).expect("sources copied");
    assert!(
        manifests < deps_build && deps_build < sources,
        "dependencies build in a layer before the sources"
    );
    assert!(build.iter().any(|i| i.contains("--locked")));

    assert!(runtime[0].contains("slim"), "slim runtime: {}", runtime[0]);
    let user = runtime
        .iter()
        .rev()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("USER in the runtime stage");
    assert!(user != "root" && user != "0", "non-root: {user}");
    assert!(runtime.iter().any(|i| i == "EXPOSE 5001"));
    let health = runtime
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK"))
        .expect("HEALTHCHECK");
    assert!(health.contains("/health/live"), "{health}");
    assert!(
        runtime.iter().any(|i| i.starts_with("COPY --from=")),
        "binary from the build stage"
    );
}

#[test]
fn compose_shares_the_auth_directory_and_the_repo_registry_config() {
    let c = read("compose.yaml");
    assert!(c.contains("image: registry:2"));
    assert!(c.contains("build: ."));
    assert!(c.contains("- \"5001:5001\""));
    // The directory, never the file: an atomic rename replaces the inode a file mount pins.
    assert!(c.contains("- ./auth:/app/auth\n") && c.contains("- ./auth:/auth:ro\n"));
    assert!(!c.contains("auth/htpasswd:"), "single-file htpasswd mount");
    assert!(c.contains("- ./logs:/app/logs"));
    assert!(c.contains("- ./registry/config.yml:/etc/docker/registry/config.yml:ro"));
    assert!(c.contains("registry-data:/var/lib/registry"));
    assert_eq!(c.matches("restart: unless-stopped").count(), 2);
    assert_eq!(c.matches("healthcheck:").count(), 2);
    assert!(c.contains("http://admin:5001/events") && c.contains("Bearer ${EVENTS_TOKEN"));
    assert!(
        !c.contains("ADMIN_PASSWORD: ") || c.contains("ADMIN_PASSWORD: ${ADMIN_PASSWORD"),
        "secrets from .env"
    );

    let cfg = read("registry/config.yml");
    assert!(cfg.contains("delete:\n    enabled: true"));
    assert!(cfg.contains("path: /auth/htpasswd"));
    assert!(cfg.contains("url: http://admin:5001/events"));
    let example = read(".env.example");
    for var in ["ADMIN_PASSWORD=", "EVENTS_TOKEN="] {
        assert!(example.contains(var), "{var} in .env.example");
    }
    assert!(
        read(".gitignore").lines().any(|l| l == ".env"),
        ".env is not committed"
    );
}
