# syntax=docker/dockerfile:1.7
# The URR operator: a static-ish Rust binary on distroless, non-root.
#   docker build -f docker/operator.Dockerfile -t ghcr.io/urr-dev/urr-operator:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p urr-operator \
 && cp target/release/urr-operator /urr-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /urr-operator /usr/local/bin/urr-operator
USER 65532:65532
EXPOSE 8080
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/urr-operator"]
CMD ["run"]
