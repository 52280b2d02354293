# syntax=docker/dockerfile:1.7
# One URR runtime service (queue, ticket or payment) on distroless, non-root.
# ticket and payment link a bundled librdkafka, hence glibc (distroless/cc).
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=ticket \
#     -t ghcr.io/urr-dev/urr-ticket:0.1.0 .
FROM rust:1.95-bookworm AS build
ARG SERVICE
RUN test -n "$SERVICE" && case "$SERVICE" in queue|ticket|payment) ;; *) echo "SERVICE must be queue, ticket or payment" >&2; exit 1 ;; esac
# librdkafka's bundled build needs these (OpenSSL: TLS and SASL/SCRAM to
# MSK; distroless/cc carries libssl3 at run time).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake libcurl4-openssl-dev libsasl2-dev libssl-dev pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "urr-$SERVICE" \
 && cp "target/release/urr-$SERVICE" /service

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /service /usr/local/bin/service
USER 65532:65532
# 8080: the public API; 9090: /internal/*, /metrics and the probes
# (URR_INTERNAL_LISTEN).
EXPOSE 8080 9090
# Kubernetes probes /healthz and /readyz; no in-image health check.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/service"]
