# syntax=docker/dockerfile:1
#
# image-service: one image for every role (api, worker, migrate, replay, run),
# chosen by the command: `docker run IMAGE worker`. Default: api.
#
# Stages: chef (toolchain + cargo-chef) -> planner (dependency recipe) ->
# builder (dependencies cooked in their own layer, then the workspace) ->
# runtime (distroless, non-root, the binary as PID 1).
#
# Base images are pinned by digest so a rebuild uses the bytes that were
# reviewed; Dependabot (.github/dependabot.yml) proposes new digests.

# Rust 1.95 on Debian bookworm: rust-toolchain.toml's release, and the workspace's rust-version.
FROM rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS chef
ARG CARGO_CHEF_VERSION=0.1.77
# C toolchain extras for the -sys crates: nasm for the SIMD code of the image
# codecs (mozjpeg-sys), cmake and pkg-config for C libraries built from source
# (libwebp-sys, aws-lc-sys, libavif later). gcc ships with the base image.
# Versions are bookworm's; bump them together with the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        cmake=3.25.1-1 \
        nasm=2.16.01-1 \
        pkg-config=1.8.1-1 \
    && rm -rf /var/lib/apt/lists/* \
    && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}" \
    && rm -rf "${CARGO_HOME}/registry"
WORKDIR /src

# The recipe lists only what changes when dependencies change (manifests and
# the lock file), so source edits do not invalidate the cooked layer below.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
        --package image-service --bin image-service
COPY . .
RUN cargo build --release --locked -p image-service --bin image-service \
    && install -D -m 0755 target/release/image-service /out/image-service

# distroless/cc: glibc, libgcc, CA certificates and tzdata, no shell or package
# manager. The :nonroot variant's user is 65532; it is repeated numerically
# below so Kubernetes/ECS `runAsNonRoot` checks can verify it.
FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="image-service" \
      org.opencontainers.image.description="Event-driven image pipeline: api, worker, migrate and replay in one binary" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=builder /out/image-service /usr/local/bin/image-service
# The CAs of every RDS region, which DATABASE_URL's sslmode=verify-full checks
# the database's certificate against (terraform/modules/data, db_ca_bundle_path
# names this path). AWS publishes the bundle at this address and rotates CAs
# within it, so it is fetched at build time rather than pinned.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html
ADD --chmod=0444 https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# MALLOC_ARENA_MAX: glibc's per-thread arenas kept a worker at ~500 MiB peak
# over 40 photo jobs; two arenas kept it at ~180 MiB (scripts/bench-pipeline).
ENV LISTEN_ADDR=0.0.0.0:8080 \
    METRICS_ADDR=0.0.0.0:9090 \
    LOG_FORMAT=json \
    MALLOC_ARENA_MAX=2
USER 65532:65532
# 8080: API (/healthz, /readyz). 9090: worker metrics and /healthz.
EXPOSE 8080 9090
# Exec form: the binary is PID 1 and receives SIGTERM directly, which the
# worker turns into a graceful drain (SHUTDOWN_DEADLINE_SECS).
ENTRYPOINT ["/usr/local/bin/image-service"]
CMD ["api"]
