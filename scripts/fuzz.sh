#!/usr/bin/env bash
# Build the libFuzzer targets and run each one for a bounded time, starting
# from its seed corpus in tests/fuzz/corpus/TARGET.
#
#   scripts/fuzz.sh                     every target, 20 seconds each
#   scripts/fuzz.sh 600                 every target, 10 minutes each
#   scripts/fuzz.sh 3600 fuzz_config    one target for an hour
#
# Inputs that reach new code are kept in build-fuzz/corpus/TARGET, so a
# later run continues from them; the seed folders are never written. A
# crash, leak, timeout or failed check stops that target and leaves the
# input as OUT/TARGET-crash-* (or -leak-, -timeout-, -oom-), where OUT is
# $FUZZ_OUTPUT, else $TEST_OUTPUT/fuzz, else test-output/fuzz. Each
# target's log is OUT/TARGET.log. Exits 1 when any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
[ "$#" -gt 0 ] && shift
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]; SECONDS is a whole number > 0, got '$seconds'" >&2
    exit 2
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    for src in tests/fuzz/fuzz_*.c; do
        name=$(basename "$src" .c)
        [ "$name" = fuzz_util ] || targets+=("$name")
    done
fi

out=${FUZZ_OUTPUT:-${TEST_OUTPUT:-$PWD/test-output}/fuzz}
mkdir -p "$out"

make -s -j"$(nproc)" fuzz >"$out/build.log" 2>&1 || {
    cat "$out/build.log" >&2
    echo "fuzz: building the targets failed (log above, also in $out/build.log)" >&2
    exit 1
}

failed=0
for target in "${targets[@]}"; do
    bin=build-fuzz/$target
    seeds=tests/fuzz/corpus/$target
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "fuzz: unknown target '$target': expected $bin and $seeds" >&2
        exit 2
    fi
    corpus=build-fuzz/corpus/$target
    mkdir -p "$corpus"
    dict=()
    [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")

    # libFuzzer stops itself after max_total_time; the outer timeout only
    # guards against a hang outside the fuzzing loop (e.g. loading a corpus).
    # Leak checks stay on: the targets free everything they allocate.
    status=0
    timeout --kill-after=10 $((seconds + 120)) \
        env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$out/$target-" "${dict[@]}" \
        "$corpus" "$seeds" >"$out/$target.log" 2>&1 || status=$?

    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$target.log")
    cov=$(grep -o 'cov: [0-9]*' "$out/$target.log" | tail -1)
    if [ "$status" -eq 0 ]; then
        echo "fuzz: $target: ok, ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}"
        continue
    fi
    failed=1
    echo "fuzz: $target FAILED (exit $status); the input and the report:" >&2
    ls "$out/$target"-* 2>/dev/null >&2 || true
    grep -a -m1 -A40 -E '^==[0-9]+==ERROR|runtime error:|check failed|ERROR: libFuzzer' \
        "$out/$target.log" >&2 || tail -40 "$out/$target.log" >&2
    echo "fuzz: rerun that input with: $bin FILE" >&2
done
exit "$failed"
