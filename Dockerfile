# syntax=docker/dockerfile:1
#
# holdfast in a container: a small, non-root image with the server, the CLI, the form system and
# `holdfast bench`.
#
#   docker build -t holdfast .
#   docker run -p 127.0.0.1:9324:9324 -v holdfast-data:/var/lib/holdfast -e HOLDFAST_AUTH=off holdfast
#
# Inside a container the server listens on 0.0.0.0, so it refuses to start without a decision
# about authentication: mount a credentials file and set HOLDFAST_CREDENTIALS (see
# docs/security.md), or set HOLDFAST_AUTH=off for a local, unpublished or loopback-only port.
# How this file is checked (no container engine runs in the project's CI): docs/operations.md.

# ---- build: the dist profile (stripped, LTO) from the locked dependency versions ----
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist -p holdfast \
 && install -D -m 0755 target/dist/holdfast /out/usr/local/bin/holdfast \
 && install -d -m 0700 /out/var/lib/holdfast

# ---- run: glibc and libgcc only (all the binary links), no shell, user 65532 ----
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/holdfast /usr/local/bin/holdfast
COPY --from=build --chown=65532:65532 /out/var/lib/holdfast /var/lib/holdfast
ENV HOLDFAST_BIND=0.0.0.0:9324 \
    HOLDFAST_DATA_DIR=/var/lib/holdfast
USER 65532:65532
VOLUME ["/var/lib/holdfast"]
EXPOSE 9324
# /ready: the store answers, the server is not shutting down, init scripts are done.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/holdfast", "health", "--ready", "--url", "http://127.0.0.1:9324"]
# SIGTERM drains in-flight requests and closes the store (up to 30 s): give it that long.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/holdfast"]
CMD ["serve"]
