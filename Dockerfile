# syntax=docker/dockerfile:1
# shiplog's container image: `docker build --build-arg GIT_SHA=$(git rev-parse HEAD) -t shiplog .`
# README, "Run in production" → "The container". tests/api/packaging.rs checks this file against
# the CLI: every ENV is a setting the binary reads, and CMD, EXPOSE, HEALTHCHECK and VOLUME agree.

# ---- build: the workspace's rust-version (1.89), the locked dependencies, shiplog alone ----
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
# .git is not in the build context (.dockerignore), so the commit comes in as an argument; it is
# set only here, after the sources are copied, for the build script to bake into the binary.
ARG GIT_SHA=unknown
# The registry and target/ are cache mounts: a rebuild after a source change recompiles shiplog,
# not its dependencies. The binary is copied out because the cache mount is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    SHIPLOG_GIT_SHA="${GIT_SHA}" cargo build --release --locked -p shiplog --bin shiplog \
    && install -D -m 0755 target/release/shiplog /out/shiplog

# ---- runtime: glibc and CA roots, a fixed non-root user, the SQLite file under /data ----
FROM debian:bookworm-slim
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="shiplog" \
      org.opencontainers.image.description="What code is live where: a self-hosted GitHub App" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.revision="${GIT_SHA}"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 shiplog \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin shiplog \
    && mkdir /data \
    && chown 10001:10001 /data
COPY --from=build /out/shiplog /usr/local/bin/shiplog

# The embedded default database, in the volume; PostgreSQL replaces it with DATABASE_URL.
ENV DATABASE_URL="sqlite:///data/shiplog.db?mode=rwc" \
    SHIPLOG_LISTEN="0.0.0.0:3000"
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000
# `shiplog healthcheck` asks GET /healthz on SHIPLOG_LISTEN's port at 127.0.0.1.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["shiplog", "healthcheck"]
ENTRYPOINT ["shiplog"]
CMD ["serve"]
