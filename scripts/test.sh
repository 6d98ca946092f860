#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests (normal and under
# ASan+UBSan) and the end-to-end tests against real processes.
#
#   scripts/test.sh            everything
#   scripts/test.sh --unit     unit tests only
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_OUTPUT=${TEST_OUTPUT:-$PWD/test-output}
rm -rf "$TEST_OUTPUT"
mkdir -p "$TEST_OUTPUT"

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh --test
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd web && npm ci --no-audit --no-fund --loglevel=error)

step "build (gcc, -Wall -Wextra -Werror)"
make -j"$(nproc)" all tests

step "build with clang"
make -j"$(nproc)" CC=clang BUILD=build-clang all tests

step "unit tests"
tests/run-unit.sh build

step "unit tests under ASan and UBSan"
make -j"$(nproc)" SAN=1 tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    tests/run-unit.sh build-san

[ "${1:-}" = "--unit" ] && exit 0

step "fuzz targets, ${FUZZ_SECONDS:-10} s each"
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

# The Docker tests get a private daemon (no bridge, no iptables changes),
# stopped on any exit. Its folder is short, because a unix socket path is.
step "Docker daemon and the NIM look-alike image"
if [ "$(id -u)" -eq 0 ]; then
    docker_dir=$(mktemp -d /tmp/nimdeck-dockerd-XXXXXX)
    stop_docker() {
        scripts/dockerd.sh stop "$docker_dir" || return 0
        cp "$docker_dir/dockerd.log" "$TEST_OUTPUT/" 2>/dev/null || true
        rm -rf "$docker_dir"
    }
    trap stop_docker EXIT
    DOCKER_HOST=$(scripts/dockerd.sh start "$docker_dir")
    export DOCKER_HOST
    tests/docker/build-image.sh build/nimdeck
else
    unset DOCKER_HOST
    echo "not root: the Docker end-to-end tests are skipped (they start their own dockerd)"
fi

step "end-to-end tests"
(cd tests/e2e && npm test)

step "end-to-end tests with the ASan+UBSan binary"
rm -rf "$TEST_OUTPUT/san" && mkdir -p "$TEST_OUTPUT/san"
(cd tests/e2e && NIMDECK_BIN=build-san/nimdeck TEST_OUTPUT="$TEST_OUTPUT/san" \
    ASAN_OPTIONS=detect_leaks=0 npm test)
if grep -lE 'ERROR: AddressSanitizer|runtime error:' "$TEST_OUTPUT"/san/*.log; then
    echo "sanitizer reports found in the files above"
    exit 1
fi
echo "end-to-end: all suites passed"
