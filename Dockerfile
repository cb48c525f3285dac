# The registry image whose binary garbage collection runs: the same as compose.yaml's registry
# (registry:3 by default; registry:2 to stay on Distribution 2.8).
ARG REGISTRY_IMAGE=registry:3
FROM ${REGISTRY_IMAGE} AS registry

# Build stage: dependencies are compiled in their own layer, so a source change rebuilds only
# the crate itself.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
# build.rs embeds every file under ui/ into the binary.
COPY build.rs ./
COPY ui ./ui
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /app/auth /app/logs \
    && chown -R app /app
COPY --from=build /src/target/release/registry-admin /usr/local/bin/registry-admin
# The registry's own binary, so POST /gc can run `registry garbage-collect` on the shared volume.
COPY --from=registry /bin/registry /usr/local/bin/registry
WORKDIR /app
USER app
ENV HTPASSWD_PATH=/app/auth/htpasswd \
    AUDIT_LOG_PATH=/app/logs/audit.log \
    REGISTRY_URL=http://registry:5000 \
    REGISTRY_BIN=registry \
    REGISTRY_CONFIG=/etc/docker/registry/config.yml
EXPOSE 5001
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:5001/health/live || exit 1
CMD ["registry-admin"]
