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
    // The build stage up to the next FROM; the runtime stage is the last one.
    let build_at = *froms
        .iter()
        .find(|&&n| ins[n].ends_with(" AS build"))
        .expect("a build stage");
    let build_end = froms.iter().copied().find(|&n| n > build_at).unwrap();
    let last = *froms.last().unwrap();
    let (build, runtime) = (&ins[build_at..build_end], &ins[last..]);

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
    // What the crate compiles in from outside src/ must be in the image's build context too:
    // build.rs, and the ui/ files it embeds.
    for needed in ["build.rs", "ui"] {
        let copied = build
            .iter()
            .any(|i| i.starts_with("COPY ") && i.split_whitespace().nth(1) == Some(needed));
        assert!(copied, "the build stage copies {needed}");
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(needed)
                .exists(),
            "{needed} exists"
        );
    }

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
    // registry:3 by default, one setting to stay on registry:2, and GC's binary follows it.
    assert!(c.contains("image: ${REGISTRY_IMAGE:-registry:3}"));
    assert!(c.contains("REGISTRY_IMAGE: ${REGISTRY_IMAGE:-registry:3}"));
    assert!(
        c.contains("REGISTRY_IMAGE=registry:2"),
        "how to stay on registry:2"
    );
    assert!(c.contains("context: ."));
    let docker = read("Dockerfile");
    assert!(docker.contains("ARG REGISTRY_IMAGE=registry:3"));
    assert!(docker.contains("COPY --from=registry /bin/registry "));
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

    // The stack and compose run token mode on the repo's config; htpasswd mode has its own.
    let cfg = read("registry/config.yml");
    assert!(cfg.contains("delete:\n    enabled: true"));
    assert!(cfg.contains("auth:\n  token:\n"), "token mode");
    assert!(cfg.contains("rootcertbundle: /auth/token.crt"));
    assert!(cfg.contains("service: registry") && cfg.contains("issuer: registry-admin"));
    assert!(cfg.contains("url: http://admin:5001/events"));
    let htpasswd_cfg = read("registry/config.htpasswd.yml");
    for config in [&cfg, &htpasswd_cfg] {
        // Comments may explain the cache; no setting may turn it on.
        let settings = config.lines().filter(|l| !l.trim_start().starts_with('#'));
        assert!(
            !settings
                .clone()
                .any(|l| l.contains("blobdescriptor") || l.contains("cache:")),
            "garbage collection needs no descriptor cache"
        );
    }
    assert!(htpasswd_cfg.contains("path: /auth/htpasswd"));
    assert!(htpasswd_cfg.contains("url: http://admin:5001/events"));
    let example = read(".env.example");
    for var in ["ADMIN_PASSWORD=", "EVENTS_TOKEN=", "TOKEN_REALM="] {
        assert!(example.contains(var), "{var} in .env.example");
    }
    assert!(
        read(".gitignore").lines().any(|l| l == ".env"),
        ".env is not committed"
    );
}

#[test]
fn compose_runs_token_mode_with_the_admin_started_before_the_registry() {
    let c = read("compose.yaml");
    assert!(c.contains("AUTH_MODE: token"));
    assert!(c.contains("REGISTRY_AUTH_TOKEN_REALM: ${TOKEN_REALM:-http://localhost:5001/token}"));
    let registry = c
        .split("\n  registry:\n")
        .nth(1)
        .expect("a registry service");
    assert!(
        registry.contains("depends_on:\n      admin:\n        condition: service_healthy"),
        "token.crt must exist before registry:2 starts"
    );
    // registry:2 takes every REGISTRY_* variable as a config override (docs/registry-facts.md):
    // none of registry-admin's own may reach it, and no bare REGISTRY_AUTH.
    for ours in [
        "REGISTRY_URL",
        "REGISTRY_USERNAME",
        "REGISTRY_PASSWORD",
        "REGISTRY_TOKEN_",
        "REGISTRY_CONFIG",
        "REGISTRY_BIN",
        "REGISTRY_AUTH:",
    ] {
        assert!(!registry.contains(ours), "{ours} given to registry:2");
    }
}

#[test]
fn compose_runs_the_registry_as_the_admin_s_uid_on_a_volume_that_uid_owns() {
    // Garbage collection deletes what registry:2 wrote: the two must be one owner.
    let uid = instructions(&read("Dockerfile"))
        .iter()
        .find_map(|i| {
            let rest = i.split("--uid ").nth(1)?;
            Some(rest.split_whitespace().next()?.to_string())
        })
        .expect("useradd --uid in the Dockerfile");
    let c = read("compose.yaml");
    // A service's lines: those after `  NAME:` indented deeper than two spaces.
    let service = |name: &str| -> String {
        c.lines()
            .skip_while(|l| *l != format!("  {name}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("   "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let registry = service("registry");
    assert!(
        registry.contains(&format!("user: \"{uid}:{uid}\"")),
        "registry:2 runs as {uid}: {registry}"
    );
    assert!(
        registry
            .contains("registry-data-owner:\n        condition: service_completed_successfully"),
        "{registry}"
    );
    let owner = service("registry-data-owner");
    assert!(
        owner.contains(&format!(
            "entrypoint: [\"chown\", \"-R\", \"{uid}:{uid}\", \"/var/lib/registry\"]"
        )) && owner.contains("- registry-data:/var/lib/registry"),
        "{owner}"
    );
}

#[test]
fn the_stack_script_starts_registry_admin_first_and_gives_registry_2_a_clean_environment() {
    let s = read("scripts/stack.sh");
    let admin = s
        .find("target/release/registry-admin &")
        .expect("starts the admin");
    let registry = s
        .find("\"$REGISTRY_BIN\" serve")
        .expect("starts the registry");
    // Debian's 2.8 unless REGISTRY_BIN names another registry (Distribution 3).
    assert!(s.contains("REGISTRY_BIN=/usr/bin/docker-registry"));
    assert!(
        admin < registry,
        "registry-admin first: it writes token.crt"
    );
    assert!(s.contains("env -i PATH=\"$PATH\" \"${overrides[@]}\""));
    assert!(s.contains("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE="));
    assert!(s.contains("export AUTH_MODE=\"${AUTH_MODE:-token}\""));
}

/// scripts/test.sh runs the registry tests a second time against Distribution 3; a new test
/// binary that starts a registry must not silently miss that pass.
#[test]
fn every_test_binary_that_starts_a_registry_also_runs_against_registry_3() {
    let script = read("scripts/test.sh");
    let list = script
        .split("registry_tests=(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("registry_tests=( … ) in scripts/test.sh");
    let listed: std::collections::BTreeSet<String> =
        list.split_whitespace().map(str::to_string).collect();
    // A test binary is a directory of tests/ with a main.rs; it starts a registry when one
    // of its files does.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut starting = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let binary = entry.unwrap().path();
        if !binary.join("main.rs").exists() {
            continue;
        }
        for file in std::fs::read_dir(&binary).unwrap() {
            let path = file.unwrap().path();
            // This file names the markers without starting anything.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("packaging.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            if ["Stack::start", "Registry::start", "on_free_port"]
                .iter()
                .any(|s| text.contains(s))
            {
                starting.insert(binary.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    assert_eq!(listed, starting);
}

/// The lines of the block that `header` (a whole line) opens: those after it indented deeper
/// than the header itself.
fn block(text: &str, header: &str) -> String {
    let indent = header.len() - header.trim_start().len();
    text.lines()
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| l.is_empty() || l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn compose_cluster_runs_two_replicas_on_postgres_and_two_registries_behind_nginx() {
    let c = read("compose.cluster.yaml");
    let admin = block(&c, "x-admin: &admin");
    for needed in [
        "DATABASE_URL: postgres://registry_admin:${POSTGRES_PASSWORD:?",
        "@postgres:5432/registry_admin",
        "AUTH_MODE: token",
        // API bearer tokens from one replica verify on the other.
        "TOKEN_SECRET: ${TOKEN_SECRET:?",
        // One signing key for both, which the registries trust.
        "REGISTRY_TOKEN_KEY: /app/auth/token.key",
        "- token-key:/app/auth",
        "- registry-data:/var/lib/registry",
        "REGISTRY_IMAGE: ${REGISTRY_IMAGE:-registry:3}",
        "EVENTS_TOKEN: ${EVENTS_TOKEN:?",
    ] {
        assert!(admin.contains(needed), "{needed} in x-admin:\n{admin}");
    }
    for (name, id) in [
        ("admin-a", "REPLICA_ID: admin-a"),
        ("admin-b", "REPLICA_ID: admin-b"),
    ] {
        let s = block(&c, &format!("  {name}:"));
        assert!(s.contains("<<: *admin") && s.contains(id), "{name}:\n{s}");
        assert!(
            s.contains("postgres:\n        condition: service_healthy"),
            "{name} waits for the database:\n{s}"
        );
    }
    assert!(
        block(&c, "  admin-b:").contains("admin-a:\n        condition: service_healthy"),
        "the second replica starts once the first has written the shared key"
    );

    let registry = block(&c, "x-registry: &registry");
    for needed in [
        "REGISTRY_HTTP_SECRET: ${REGISTRY_HTTP_SECRET:?",
        "REGISTRY_AUTH_TOKEN_REALM: ${TOKEN_REALM:-http://localhost:5000/token}",
        "url: 'http://nginx:5000/events'",
        "- token-key:/auth:ro",
        "- registry-data:/var/lib/registry",
        "- ./registry/config.yml:/etc/docker/registry/config.yml:ro",
        "admin-a:\n      condition: service_healthy",
        "user: \"10001:10001\"",
    ] {
        assert!(
            registry.contains(needed),
            "{needed} in x-registry:\n{registry}"
        );
    }
    // The registry reads every REGISTRY_* variable as a config key: none of ours.
    for ours in [
        "REGISTRY_URL",
        "REGISTRY_TOKEN_",
        "REGISTRY_CONFIG",
        "REGISTRY_BIN",
    ] {
        assert!(!registry.contains(ours), "{ours} given to the registries");
    }
    for name in ["registry-a", "registry-b"] {
        assert!(block(&c, &format!("  {name}:")).contains("<<: *registry"));
    }
    // No blob-descriptor cache anywhere: GC leaves a shared one stale.
    assert!(!c.contains("blobdescriptor") && !c.contains("REGISTRY_STORAGE_CACHE"));

    let nginx = block(&c, "  nginx:");
    assert!(nginx.contains("- ./deploy/nginx-cluster.conf:/etc/nginx/conf.d/default.conf:ro"));
    assert!(nginx.contains("- \"5000:5000\""));
    let conf = read("deploy/nginx-cluster.conf");
    for needed in [
        "server admin-a:5001",
        "server admin-b:5001",
        "server registry-a:5000",
        "server registry-b:5000",
        "listen 5000;",
        "location /v2/ {\n        proxy_pass http://registries;",
        "location / {\n        proxy_pass http://registry_admin;",
        "client_max_body_size 0;",
        "proxy_buffering off;",
        "proxy_next_upstream error timeout http_502;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
    ] {
        assert!(
            conf.contains(needed),
            "{needed} in deploy/nginx-cluster.conf"
        );
    }
    let directives: Vec<&str> = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        !directives.iter().any(|l| l.contains("non_idempotent")),
        "an upload must never be sent to a second registry"
    );

    // With docker-compose at hand (CI installs it), the anchors must also resolve.
    let out = std::process::Command::new("docker-compose")
        .args(["-f", "compose.cluster.yaml", "config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("EVENTS_TOKEN", "packaging-test-0123456789abcdef0123456789")
        .env("POSTGRES_PASSWORD", "packaging-test")
        .env("TOKEN_SECRET", "packaging-test-token-secret-0123456789ab")
        .env(
            "REGISTRY_HTTP_SECRET",
            "packaging-test-http-secret-0123456789",
        )
        .output();
    match out {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "docker-compose config: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let b = block(&text, "  admin-b:");
            assert!(b.contains("REPLICA_ID: admin-b") && b.contains("DATABASE_URL: postgres://"));
            assert!(block(&text, "  registry-b:").contains("REGISTRY_HTTP_SECRET: packaging-test"));
        }
        Err(_) => {
            eprintln!("docker-compose not installed: only the text of compose.cluster.yaml checked")
        }
    }
}
