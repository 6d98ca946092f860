#!/usr/bin/env bash
# Run every unit test binary of a build folder in its own process with a timeout.
set -u
build=${1:-build}
limit=${UNIT_TIMEOUT:-120}
passed=0
failed=0
for t in "$build"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    if timeout "$limit" "$t"; then
        passed=$((passed + 1))
    else
        echo "FAILED: $name (exit $?)"
        failed=$((failed + 1))
    fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
