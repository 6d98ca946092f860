#!/usr/bin/env bash
# Set up and run the gateway benchmark in one command: install wrk and
# nginx, build the binary and the bench tools, run bench/gateway.sh.
#
#   scripts/bench.sh [bench/gateway.sh options]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh --bench
make -j"$(nproc)" bench
exec bench/gateway.sh "$@"
