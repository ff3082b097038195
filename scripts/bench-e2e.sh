#!/usr/bin/env bash
# End-to-end benchmark on loopback: mosquitto and VictoriaMetrics, the ingest
# service between them, `simulate load` publishing N messages at full speed.
# Prints messages/s end to end, the service's CPU per message and peak RSS.
#
#   scripts/bench-e2e.sh [--count N] [--qos 0|1] [--connections N] [--wal on|off] [--windows on|off]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"
for bin in mosquitto victoria-metrics; do
  command -v "$bin" >/dev/null || { echo "needs $bin (apt-get install $bin)" >&2; exit 1; }
done
cargo build --release --locked -p ingest -p simulators --bins
target="${CARGO_TARGET_DIR:-target}"
cargo run --release --locked -p simulators --example bench_e2e -- \
  --ingest "$target/release/ingest" --simulate "$target/release/simulate" "$@"
