#!/usr/bin/env bash
# The whole test suite: installs the servers the integration tests start
# (mosquitto, VictoriaMetrics, InfluxDB 1.x) when they are missing, then runs
# formatting, lints and every test of the workspace.
#
# With CI set, a server that is missing makes the tests that need it fail;
# elsewhere they say loudly that they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
have mosquitto || missing+=(mosquitto)
have victoria-metrics || missing+=(victoria-metrics)
have influxd || missing+=(influxdb)
have docker-compose || missing+=(docker-compose)

if ((${#missing[@]})); then
  step "installing ${missing[*]} from Debian"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || sudo -n true 2>/dev/null; }; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "warning: cannot install ${missing[*]} (no apt-get or no root); tests that need them will skip or, with CI set, fail" >&2
  fi
fi
export PATH="$PATH:/usr/sbin"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ -f docker-compose.yml ] && have docker-compose; then
  step "docker-compose config"
  docker-compose -f docker-compose.yml config -q
fi

step "cargo test"
cargo test --workspace --locked
