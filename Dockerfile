# Container image of the service (`ingest`) and the fleet simulator (`simulate`).
#
#   docker build -t medina .
#   docker run --rm -p 9464:9464 -e INGEST__HTTP__LISTEN=0.0.0.0:9464 medina
#
# docker-compose.yml builds this image for both the `ingest` and `simulator`
# services; deploy/README.md explains the stack.

# ---------------------------------------------------------------------------
# Build stage
# ---------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src

# 1. The manifests alone, with stub targets, so that the dependencies are
#    downloaded and compiled in layers that only change with a Cargo.toml or
#    Cargo.lock. Every crate gets an empty src/lib.rs, and every target its
#    manifest names (`[lib]`, `[[bin]]`, `[[bench]]`, `[[test]]`,
#    `[[example]]`, a `build` script) a stub at its `path`, or where Cargo
#    would look for it by its `name`. Should the warm-up ever fail on a
#    manifest it does not foresee, the build goes on: only the cache is lost,
#    never the result of step 2.
COPY Cargo.toml Cargo.lock ./
COPY schemas/Cargo.toml schemas/
COPY processors/Cargo.toml processors/
COPY ingest/Cargo.toml ingest/
COPY simulators/Cargo.toml simulators/
COPY tests/Cargo.toml tests/
RUN set -eu; \
    for crate in schemas processors ingest simulators tests; do \
      mkdir -p "$crate/src"; \
      : > "$crate/src/lib.rs"; \
      awk ' \
        function value() { v = $0; sub(/^[^"]*"/, "", v); sub(/".*$/, "", v); return v }; \
        function flush() { \
          p = path; \
          if (p == "" && name != "") { \
            if (kind == "bin") p = "src/bin/" name ".rs"; \
            else if (kind == "bench") p = "benches/" name ".rs"; \
            else if (kind == "test") p = "tests/" name ".rs"; \
            else if (kind == "example") p = "examples/" name ".rs"; \
          } \
          if (kind != "" && kind != "package" && p != "") print kind, p; \
          kind = ""; name = ""; path = ""; \
        }; \
        /^\[\[(bin|bench|test|example)\]\]/ { flush(); kind = $0; gsub(/[][ ]/, "", kind); next }; \
        /^\[lib\]/ { flush(); kind = "lib"; next }; \
        /^\[package\]/ { flush(); kind = "package"; next }; \
        /^\[/ { flush(); next }; \
        kind == "package" && /^build *= *"/ { print "build", value(); next }; \
        kind != "" && /^name *=/ { name = value() }; \
        kind != "" && /^path *=/ { path = value() }; \
        END { flush() }' "$crate/Cargo.toml" \
      | while read -r kind stub; do \
          mkdir -p "$crate/$(dirname "$stub")"; \
          if [ "$kind" = lib ]; then : > "$crate/$stub"; \
          else echo 'fn main() {}' > "$crate/$stub"; fi; \
        done; \
    done
RUN cargo fetch --locked \
    || echo "dependency download failed; the build below downloads them"
RUN cargo build --release --locked -p ingest -p simulators \
    || echo "dependency warm-up failed; the build below compiles everything"
# The stubs go; the downloaded and compiled dependencies stay.
RUN rm -rf schemas processors ingest simulators tests

# 2. The real sources. The workspace's own crates are cleaned first: Docker
#    keeps the files' modification times, which may be older than the stubs
#    built above, and Cargo must not take a stub for an up-to-date crate.
COPY schemas/ schemas/
COPY processors/ processors/
COPY ingest/ ingest/
COPY simulators/ simulators/
COPY tests/ tests/
RUN set -eu; \
    cargo clean --release --locked -p schemas -p processors -p ingest -p simulators -p tests; \
    cargo build --release --locked -p ingest -p simulators; \
    mkdir -p /out; \
    cp target/release/ingest target/release/simulate /out/

# ---------------------------------------------------------------------------
# Runtime stage
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to brokers and databases with public certificates
# (`https://` InfluxDB URLs, `mqtt.tls`). curl: the health check below.
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 ingest; \
    useradd --system --uid 10001 --gid ingest --home-dir /var/lib/ingest \
      --no-create-home --shell /usr/sbin/nologin ingest; \
    mkdir -p /var/lib/ingest /etc/ingest /etc/simulate; \
    chown ingest:ingest /var/lib/ingest

COPY --from=build /out/ingest /usr/local/bin/ingest
COPY --from=build /out/simulate /usr/local/bin/simulate
COPY ingest/ingest.example.toml /etc/ingest/ingest.example.toml

# The data folder and working directory: relative paths of the configuration
# (the file sink's default `data`, for one) land here. Mount a volume on it so
# that what the service keeps outlives the container; a new named volume takes
# this folder's owner. (No VOLUME instruction: it would leave an anonymous
# volume behind every container of the image, the simulator's included.)
WORKDIR /var/lib/ingest
USER ingest:ingest

# /healthz, /readyz and /metrics. The service listens on 127.0.0.1 unless
# told otherwise: set INGEST__HTTP__LISTEN=0.0.0.0:9464 to reach it from
# outside the container (docker-compose.yml does).
EXPOSE 9464

HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:9464/healthz || exit 1

# The service shuts down in order on SIGTERM (docker stop); docker-compose.yml
# gives it a grace period to finish the writes in flight.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ingest"]
CMD ["run"]
