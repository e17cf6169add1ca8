# syntax=docker/dockerfile:1
# Build: the official Swift image, with the C libraries the packages link against.
FROM swift:6.2-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
# Dependencies first, so they are cached while the sources change.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product gateway --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/gateway" /staging/usr/local/bin/gateway
COPY migrations /staging/usr/local/share/gateway/migrations
COPY docs/openapi.yaml /staging/usr/local/share/gateway/openapi.yaml

# Run: a slim Debian with SQLite, CA certificates and time zones; the Swift runtime is linked in statically.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-0 ca-certificates tzdata curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/gateway --shell /usr/sbin/nologin gateway \
    && mkdir -p /var/lib/gateway \
    && chown gateway:gateway /var/lib/gateway
COPY --from=build /staging/ /
# The binary finds migrations/ and openapi.yaml in /usr/local/share/gateway next to /usr/local/bin.
ENV GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_DATA_DIR=/var/lib/gateway
USER 10001:10001
VOLUME /var/lib/gateway
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/gateway"]
CMD ["serve"]
