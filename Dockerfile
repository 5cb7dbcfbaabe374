# syntax=docker/dockerfile:1
#
# port-runner image. Build:
#   docker build --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) -t port-runner .
#   docker buildx build --platform linux/amd64,linux/arm64 ...     (cross-compiled, no emulation)
# Run:    docker run -v $PWD/config.yaml:/etc/port-runner/config.yaml port-runner
# Demo:   docker run --rm port-runner demo
#
# Base images are pinned by their multi-arch index digest (golang 1.26.5, debian
# bookworm-slim), so a rebuild gets the same bytes; bump tag and digest together (Renovate
# or `docker buildx imagetools inspect golang:1.26`).

# ---- build -------------------------------------------------------------------------------
# The build stage runs on the builder's own platform and cross-compiles for the target:
# Go needs no emulation for that (CGO_ENABLED=0).
FROM --platform=$BUILDPLATFORM golang:1.26.5@sha256:3aff6657219a4d9c14e27fb1d8976c49c29fddb70ba835014f477e1c70636647 AS build
# A module proxy of your own (an Artifactory/Athens mirror in a private network).
ARG GOPROXY=https://proxy.golang.org,direct
ENV GOPROXY=${GOPROXY}
WORKDIR /src
# Modules first, so a source change does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# `port-runner version` reports these.
ARG VERSION=dev
ARG COMMIT=unknown
# Static binary (no cgo): it runs on any base image.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /port-runner ./cmd/port-runner \
    && CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /port-runner-shim ./cmd/port-runner-shim

# ---- runtime -----------------------------------------------------------------------------
# Not distroless/scratch: the actions' commands are the user's scripts, which need /bin/sh
# and the usual tools (curl to call APIs, jq to read $PORT_RUN_FILE). Build your own image
# FROM this one to add what your scripts need (kubectl, terraform, git, ...).
FROM debian:bookworm-slim@sha256:7b140f374b289a7c2befc338f42ebe6441b7ea838a042bbd5acbfca6ec875818
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="port-runner" \
      org.opencontainers.image.description="Executes Port (getport.io) self-service action runs from Port's Kafka topic" \
      org.opencontainers.image.source="https://github.com/port-runner/port-runner" \
      org.opencontainers.image.url="https://github.com/port-runner/port-runner" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# tini is PID 1. The agent starts each command in its own process group and kills what a
# command leaves behind; processes orphaned that way (and any grandchild a script
# backgrounds) are re-parented to PID 1. Without an init that reaps them they stay zombies
# for the container's life, eating PIDs. tini also forwards SIGTERM to the agent so its
# graceful drain (executor.shutdownTimeout) runs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini ca-certificates curl jq \
    && rm -rf /var/lib/apt/lists/*
# Non-root, with a numeric uid so Kubernetes' runAsNonRoot can verify it. HOME is where
# commands get their HOME (the agent passes its own HOME through).
RUN groupadd --system --gid 10001 port-runner \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/port-runner --create-home \
       --shell /usr/sbin/nologin port-runner
ENV HOME=/home/port-runner
COPY --from=build /port-runner /usr/local/bin/port-runner
# The exec shim every command runs under; the agent looks for it beside its own binary (without
# it, the agent's own binary serves, at the cost of its start-up on every run).
COPY --from=build /port-runner-shim /usr/local/bin/port-runner-shim
# The example config and scripts: `port-runner demo` uses the copies embedded in the binary;
# these are for docker-compose (deploy/compose-config.yaml runs /app/examples/scripts/*).
WORKDIR /app
COPY examples/ /app/examples/
RUN chmod 0755 /app/examples/scripts/*.sh
USER 10001:10001
# metrics.addr: /metrics, /healthz, /readyz
EXPOSE 9464
ENTRYPOINT ["tini", "--", "port-runner"]
CMD ["run", "--config", "/etc/port-runner/config.yaml"]
