#!/usr/bin/env bash
# Install the Debian 12 packages nimdeck builds and tests with. Safe to run
# again: apt-get skips what is already installed.
#
#   scripts/deps.sh          build and run dependencies (npm fetches the web
#                            UI's packages, which the build embeds)
#   scripts/deps.sh --test   also what the test suite needs (cmocka, clang,
#                            chromium, docker.io)
#   scripts/deps.sh --bench  also what bench/gateway.sh needs (wrk, nginx)
set -euo pipefail

packages=(build-essential pkg-config ca-certificates curl
          libuv1-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev
          libsodium-dev jq)
if [ "${1:-}" = "--test" ]; then
    # chromium: the browser tests of the web UI drive it headless.
    packages+=(libcmocka-dev clang procps iproute2 chromium)
    # libFuzzer and the sanitizer runtimes of clang, for the fuzz targets.
    packages+=(libclang-rt-14-dev)
    # The Docker tests start a private dockerd and build their image with
    # a static busybox as the container's shell.
    packages+=(docker.io busybox-static)
fi
if [ "${1:-}" = "--bench" ]; then
    packages+=(wrk nginx-light)
fi
# A Node.js that came with its own npm (NodeSource) conflicts with Debian's
# npm package: install Debian's pair only when neither is there.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#packages[@]} packages already installed"
    exit 0
fi

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

echo "deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
