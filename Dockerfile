# syntax=docker/dockerfile:1
# The one binary, for every deployment: `mallbots` (MODULES=all or one module), `mallbots gateway`,
# `mallbots migrate`, `mallbots busywork`. Build: docker build -t mallbots .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The release profile strips symbols; nothing is fetched at run time (Swagger UI is vendored).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p mallbots \
 && cp target/release/mallbots /mallbots

# glibc and libgcc only: the binary needs no OpenSSL (no TLS of its own) and no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /mallbots /usr/local/bin/mallbots
USER nonroot:nonroot
ENV WEB_PORT=8080 RPC_PORT=9000 LOG_FORMAT=json
EXPOSE 8080 9000
ENTRYPOINT ["/usr/local/bin/mallbots"]
