#!/usr/bin/env bash
# Set up and run the gateway benchmark in one command: install wrk and
# nginx, build the binary and the bench tools, run bench/gateway.sh.
#
#   scripts/bench.sh [bench/gateway.sh options]
#
# A --build DIR option also names the folder the build goes to.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    if [ "${args[$i]}" = --build ] && [ $((i + 1)) -lt ${#args[@]} ]; then
        build=${args[$((i + 1))]}
    fi
done

scripts/deps.sh --bench
make -j"$(nproc)" BUILD="$build" bench
exec bench/gateway.sh "$@"
