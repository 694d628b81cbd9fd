# The Flotilla image: one static binary (x86_64, musl) on distroless, running as non-root.
#
#   docker build -t ghcr.io/flotilla-io/flotilla:0.1.0 .
#   docker run --rm ghcr.io/flotilla-io/flotilla:0.1.0 --version
#
# The Helm chart (charts/flotilla) runs `flotilla hub` from it.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
# ring and rusqlite's bundled SQLite compile C code: musl-gcc builds it for the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
# Only what the build reads (the repository's target/ and .tmp/ stay out of the image).
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates crates
COPY tests/e2e tests/e2e
COPY config config
COPY examples examples
RUN cargo build --locked --release -p flotilla --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/flotilla /flotilla

FROM gcr.io/distroless/static:nonroot
COPY --from=build /flotilla /flotilla
# distroless's nonroot user; the chart sets the same.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/flotilla"]
CMD ["hub"]
