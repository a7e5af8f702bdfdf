#!/usr/bin/env bash
# The core under the sanitizers, as CI runs it (scripts/test.sh calls this after the unit tests):
#   1. one clang build (build-asan, cmake -DPGML_FUZZ=ON -DPGML_TESTS=ON) of the core with ASan and
#      UndefinedBehaviorSanitizer (every finding fatal) plus libFuzzer's coverage hooks: the
#      GoogleTest unit tests, the libFuzzer targets of test/fuzz and their seed generator
#   2. the unit tests (ctest) under ASan (leak detection on) and UBSan
#   3. each fuzz target for a bounded time, from seeds the generator writes (tiny models of
#      every algorithm, real aggregate states) plus the inputs checked in under
#      test/fuzz/corpus/<target>/ (each once found a bug); a crash, a sanitizer finding, a leak,
#      a timeout or an out-of-memory fails the target and leaves the input in build-asan/fuzz-artifacts/
# Output ends with one line per suite, "suite: <name>: N passed, M failed", then the totals
# "N passed, M failed"; the exit status is 0 only when nothing failed.
#
# Environment: JOBS (default 2: build jobs, and fuzz targets run at once), PGML_FUZZ_SECONDS
# (default 15: time per target), PGML_CLANGXX (default clang++-14), PGML_SANITIZE_BUILD
# (default build-asan), PGML_FUZZ_TARGETS (default all: space-separated target names).
# Longer fuzzing of one target, e.g.:  PGML_FUZZ_SECONDS=3600 PGML_FUZZ_TARGETS=fuzz_model_blob scripts/sanitize.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
JOBS="${JOBS:-2}"
FUZZ_SECONDS="${PGML_FUZZ_SECONDS:-15}"
CLANGXX="${PGML_CLANGXX:-clang++-14}"
BUILD="${PGML_SANITIZE_BUILD:-build-asan}"

# leaks fail the unit tests too; every UBSan finding stops the process with a stack trace
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# xgboost's OpenMP threads spin-wait by default; keep them passive on a shared machine
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

SUITES=()
PASSED=0
FAILED=0
add() { # suite passed failed
    SUITES+=("suite: $1: $2 passed, $3 failed")
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
}
finish() {
    echo
    echo "=== sanitize.sh summary ($((SECONDS - START)) s)"
    printf '%s\n' "${SUITES[@]}"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

if ! command -v "$CLANGXX" >/dev/null; then
    echo "sanitize.sh: $CLANGXX not found (Debian: clang-14 libclang-rt-14-dev; scripts/install-deps.sh installs them)"
    add "sanitizer build (clang)" 0 1
    finish
fi

echo "=== sanitizer build: $BUILD (clang, ASan + UBSan + libFuzzer)"
# -O1 with line tables: the cheapest build whose reports name file and line; without NDEBUG, so
# that Eigen's and the core's assertions check indices too
if ! cmake -S . -B "$BUILD" -DPGML_FUZZ=ON -DPGML_TESTS=ON -DCMAKE_CXX_COMPILER="$CLANGXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" >/dev/null ||
    ! cmake --build "$BUILD" -j "$JOBS" --target pgml_unit_tests pgml_fuzz; then
    echo "sanitizer build failed"
    add "sanitizer build (clang)" 0 1
    finish
fi
echo "built in $((SECONDS - START)) s"

echo
echo "=== sanitizers (asan+ubsan ctest)"
(cd "$BUILD" && ctest --output-on-failure -j "$JOBS") 2>&1 | tee "$BUILD/ctest.log"
rc=${PIPESTATUS[0]}
line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$BUILD/ctest.log" | tail -1)
if [ -n "$line" ]; then
    bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    [ "$rc" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
    add "sanitizers (asan+ubsan ctest)" $((total - bad)) "$bad"
else
    add "sanitizers (asan+ubsan ctest)" 0 1
fi

echo
echo "=== fuzzing (libFuzzer): ${FUZZ_SECONDS} s per target"
SEEDS="$BUILD/fuzz-seeds"
rm -rf "$SEEDS" "$BUILD/fuzz-artifacts"
mkdir -p "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"
if ! "$BUILD/pgml_fuzz_seeds" "$SEEDS"; then
    echo "the seed generator failed"
    add "fuzzing (libFuzzer)" 0 1
    finish
fi
TARGETS="${PGML_FUZZ_TARGETS:-$(ls test/fuzz/fuzz_*.cpp | xargs -n1 basename | sed 's/\.cpp$//' | tr '\n' ' ')}"
# one target: a fresh working corpus (the seeds and the checked-in inputs are read, never written)
fuzz_one() {
    local t="$1" work="$BUILD/fuzz-corpus/$1"
    local dirs=("$work" "$SEEDS/$t")
    [ -d "test/fuzz/corpus/$t" ] && dirs+=("test/fuzz/corpus/$t")
    rm -rf "$work"
    mkdir -p "$work" "$SEEDS/$t"
    "$BUILD/$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$BUILD/fuzz-artifacts/$t-" "${dirs[@]}" >"$BUILD/fuzz-logs/$t.log" 2>&1
}
declare -A PIDS=()
fuzz_ok=0
fuzz_bad=0
collect() { # target pid
    if wait "$2"; then
        fuzz_ok=$((fuzz_ok + 1))
        echo "$1: ok ($(grep -E '^stat::number_of_executed_units' "$BUILD/fuzz-logs/$1.log" | awk '{print $2}') runs," \
            "$(grep -cE '^#[0-9]+.*(NEW|REDUCE)' "$BUILD/fuzz-logs/$1.log") new inputs)"
    else
        fuzz_bad=$((fuzz_bad + 1))
        echo "$1: FAILED (log $BUILD/fuzz-logs/$1.log; input in $BUILD/fuzz-artifacts/)"
        grep -E -A40 '^==[0-9]+==|runtime error|fuzz target check failed|uncaught exception|ERROR: libFuzzer' \
            "$BUILD/fuzz-logs/$1.log" | head -60
    fi
}
running=()
for t in $TARGETS; do
    if [ ! -x "$BUILD/$t" ]; then
        echo "$t: not built"
        fuzz_bad=$((fuzz_bad + 1))
        continue
    fi
    fuzz_one "$t" &
    PIDS[$t]=$!
    running+=("$t")
    if [ "${#running[@]}" -ge "$JOBS" ]; then
        collect "${running[0]}" "${PIDS[${running[0]}]}"
        running=("${running[@]:1}")
    fi
done
for t in "${running[@]}"; do
    collect "$t" "${PIDS[$t]}"
done
add "fuzzing (libFuzzer)" "$fuzz_ok" "$fuzz_bad"
finish
