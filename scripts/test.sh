#!/usr/bin/env bash
# pg_ml's whole test suite, as CI runs it (.ci/run):
#   1. dependencies (Debian packages; skipped when all are installed)
#   2. the extension with PGXS (make WERROR=1, rebuilt from clean) and make install; its core
#      objects archived as libpgml_core.a
#   3. the GoogleTest unit tests with CMake (-Werror), linked with that archive (the core is
#      compiled once) (ctest), then scripts/sanitize.sh: the unit tests again under ASan + UBSan
#      (a clang build of its own) and each libFuzzer target for PGML_FUZZ_SECONDS (default 15) seconds
#   4. in ONE throw-away cluster (Debian's pg_virtualenv): pg_regress (make installcheck
#      ISOLATION=), the isolation specs (make installcheck REGRESS=: pg_isolation_regress,
#      test/specs), then the Python integration tests (test/integration, unittest + psycopg2)
# Every suite runs even when an earlier one failed (as long as what it needs was built).
# The last line is "N passed, M failed" over all suites; the exit status is 0 only when
# nothing failed.
#
# Environment: PG_CONFIG (default: PostgreSQL 15's pg_config), JOBS (default 2),
# PGML_TEST_FILTER (unittest -k pattern, to run a subset of the integration tests).
set -uo pipefail

# ------------------------------------------------------------ inside the cluster
# scripts/test.sh --inside-cluster DIR is what pg_virtualenv runs: libpq's environment
# (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE) points at the throw-away cluster.
# Counts go to files in DIR for the outer script.
if [ "${1:-}" = "--inside-cluster" ]; then
    out="$2"
    cd "$(dirname "$0")/.."
    status=0

    # the server log, to catch a backend that crashed (even after its test's output was complete)
    SERVER_LOG=""
    if [ -n "${PG_CLUSTER_CONF_ROOT:-}" ]; then
        SERVER_LOG=$(ls "$(dirname "$PG_CLUSTER_CONF_ROOT")"/log/*.log 2>/dev/null | head -n 1)
    fi
    [ -n "$SERVER_LOG" ] || SERVER_LOG=$(ls /var/log/postgresql/postgresql-*-regress.log 2>/dev/null | head -n 1)
    log_start=$(wc -l <"$SERVER_LOG" 2>/dev/null || echo 0)

    echo
    echo "=== pg_regress (make installcheck) on $PGHOST:$PGPORT"
    rm -f test/regression.diffs test/regression.out
    # every test/sql file is in the schedule and every scheduled test has a file and expected output
    drift=$(comm -3 <(ls test/sql/*.sql | xargs -n1 basename | sed 's/\.sql$//' | sort) <(sort test/schedule))
    for t in $(cat test/schedule); do [ -f "expected/$t.out" ] || drift="$drift expected/$t.out missing"; done
    if [ -n "$drift" ]; then
        echo "test/schedule, test/sql and expected/ disagree: $drift"
        status=1
    fi
    make installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= 2>&1 | tee "$out/regress.log"
    rc=${PIPESTATUS[0]}
    # PostgreSQL 15: "test name ... ok|FAILED"; 16+: TAP "ok N - name" / "not ok N - name"
    ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$out/regress.log")
    bad=$(grep -cE '\.\.\. (FAILED|failed)|^not ok [0-9]+ ' "$out/regress.log")
    if [ "$rc" -ne 0 ]; then
        status=1
        [ "$bad" -gt 0 ] || bad=1 # failed without a test result (connection, schedule, ...)
        if [ -s test/regression.diffs ]; then
            echo "--- test/regression.diffs"
            cat test/regression.diffs
        fi
    fi
    [ -z "$drift" ] || bad=$((bad + 1))
    echo "$ok $bad" >"$out/regress.counts"

    echo
    echo "=== isolation (make installcheck REGRESS=: pg_isolation_regress, test/specs)"
    rm -rf test/output_iso
    # every spec has its expected output
    drift=""
    for f in test/specs/*.spec; do
        t=$(basename "$f" .spec)
        [ -f "expected/$t.out" ] || drift="$drift expected/$t.out missing"
    done
    if [ -n "$drift" ]; then
        echo "test/specs and expected/ disagree: $drift"
        status=1
    fi
    make installcheck PG_CONFIG="$PG_CONFIG" REGRESS= 2>&1 | tee "$out/isolation.log"
    rc=${PIPESTATUS[0]}
    ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$out/isolation.log")
    bad=$(grep -cE '\.\.\. (FAILED|failed)|^not ok [0-9]+ ' "$out/isolation.log")
    if [ "$rc" -ne 0 ]; then
        status=1
        [ "$bad" -gt 0 ] || bad=1
        if [ -s test/output_iso/regression.diffs ]; then
            echo "--- test/output_iso/regression.diffs"
            cat test/output_iso/regression.diffs
        fi
    fi
    [ -z "$drift" ] || bad=$((bad + 1))
    echo "$ok $bad" >"$out/isolation.counts"

    echo
    echo "=== integration tests (python3 -m unittest discover -s test/integration -v)"
    # /usr/bin/python3: Debian's, which has psycopg2 and sklearn (a pyenv python may come first on PATH)
    /usr/bin/python3 -m unittest discover -s test/integration -v ${PGML_TEST_FILTER:+-k "$PGML_TEST_FILTER"} \
        2>&1 | tee "$out/unittest.log"
    rc=${PIPESTATUS[0]}
    /usr/bin/python3 - "$out/unittest.log" "$rc" >"$out/unittest.counts" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
rc = int(sys.argv[2])
ran = re.findall(r"^Ran (\d+) tests? in", text, re.M)
if not ran:                       # crashed before reporting
    print(0, 1)
    sys.exit()
ran = int(ran[-1])
tail = text[text.rindex("Ran "):]
def count(key):
    m = re.search(key + r"=(\d+)", tail)
    return int(m.group(1)) if m else 0
failed = count("failures") + count("errors") + count("unexpected successes")
passed = max(ran - failed - count("skipped") - count("expected failures"), 0)
if rc != 0 and failed == 0:
    failed = 1
print(passed, failed)
EOF
    [ "$rc" -eq 0 ] || status=1
    echo
    echo "=== backend crashes in the server log (${SERVER_LOG:-not found})"
    crashes=0
    if [ -n "$SERVER_LOG" ] && [ -r "$SERVER_LOG" ]; then
        crashes=$(tail -n +"$((log_start + 1))" "$SERVER_LOG" | grep -cE 'was terminated by signal|terminated abnormally' || true)
        tail -n +"$((log_start + 1))" "$SERVER_LOG" | grep -B5 -E 'was terminated by signal|terminated abnormally' || true
    fi
    echo "$crashes crashed backends"
    if [ "$crashes" -gt 0 ]; then
        status=1
        echo "0 $crashes" >"$out/crash.counts"
    else
        echo "1 0" >"$out/crash.counts"
    fi
    exit $status
fi

# ------------------------------------------------------------ outside
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$SECONDS
# xgboost's OpenMP threads spin-wait by default; keep them passive on a shared 2-core machine
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
export PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
JOBS="${JOBS:-2}"
# the previous release (test/integration/test_old_library.py): its version and commit
OLD_RELEASE=0.2.0
OLD_COMMIT=473a9a674089a561b355ab429b7eef181e8397cb
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
WORK=$(mktemp -d -t pgml_test.XXXXXX)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
SUMMARY=()
add() { # suite passed failed
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
    SUMMARY+=("$(printf '  %-28s %4d passed, %d failed' "$1" "$2" "$3")")
}
finish() {
    echo
    echo "=== summary ($((SECONDS - START)) s)"
    printf '%s\n' "${SUMMARY[@]}"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

echo "=== dependencies"
if ! scripts/install-deps.sh; then
    add "dependencies" 0 1
    finish
fi

echo
echo "=== code shape: no function in src/core over 150 lines (scripts/function_lengths.py)"
if python3 scripts/function_lengths.py --max 150 src/core/*.cpp src/core/models/*.cpp; then
    add "function lengths (src/core)" 1 0
else
    add "function lengths (src/core)" 0 1
fi

echo
echo "=== extension: make clean, make WERROR=1, make install"
# rebuilt from clean so that every object really is compiled with -Werror; the core's objects are
# then archived (make libpgml_core.a) for the unit tests, so that the core is compiled once
EXT_OK=0
if make clean PG_CONFIG="$PG_CONFIG" >/dev/null &&
    make -j "$JOBS" WERROR=1 PG_CONFIG="$PG_CONFIG" &&
    make libpgml_core.a PG_CONFIG="$PG_CONFIG" >/dev/null &&
    "${SUDO[@]}" make install PG_CONFIG="$PG_CONFIG"; then
    EXT_OK=1
fi

echo
echo "=== core: cmake -DPGML_TESTS=ON -DPGML_WERROR=ON, build (the core from the extension's build), ctest"
CORE_LIB=""
[ "$EXT_OK" -eq 1 ] && CORE_LIB="$ROOT/libpgml_core.a"
if cmake -S . -B build -DPGML_TESTS=ON -DPGML_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGML_CORE_LIBRARY="$CORE_LIB" &&
    cmake --build build -j "$JOBS"; then
    (cd build && ctest --output-on-failure -j "$JOBS") 2>&1 | tee "$WORK/ctest.log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$WORK/ctest.log" | tail -1)
    if [ -n "$line" ]; then
        bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
        total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
        add "unit tests (ctest)" $((total - bad)) "$bad"
    elif grep -q 'No tests were found' "$WORK/ctest.log" && [ "$rc" -eq 0 ]; then
        add "unit tests (ctest)" 0 0
    else
        add "unit tests (ctest)" 0 1
    fi
else
    echo "core build failed"
    add "core build (cmake)" 0 1
fi

echo
echo "=== core under the sanitizers: scripts/sanitize.sh (ASan + UBSan unit tests, libFuzzer targets)"
JOBS="$JOBS" scripts/sanitize.sh 2>&1 | tee "$WORK/sanitize.log"
for suite in "sanitizers (asan+ubsan ctest)" "fuzzing (libFuzzer)"; do
    line=$(grep -F "suite: $suite: " "$WORK/sanitize.log" | tail -1)
    if [ -n "$line" ]; then
        read -r ok bad < <(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$line")
        add "$suite" "$ok" "$bad"
    fi
done
# the build (or clang) failed: sanitize.sh names it in its own suite line
if ! grep -qF "suite: sanitizers (asan+ubsan ctest): " "$WORK/sanitize.log"; then
    name=$(grep -E '^suite: ' "$WORK/sanitize.log" | head -1 | sed -E 's/^suite: (.*): [0-9]+ passed.*/\1/')
    add "${name:-sanitize.sh}" 0 1
fi

if [ "$EXT_OK" -eq 1 ]; then
    PGVER=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')

    # test/integration/test_old_library.py runs a server with the previous release's library
    # beside the current scripts: that library is built here from the release's commit (-O0,
    # it only has to load and run a tiny model)
    echo
    echo "=== the previous release's library (pg_ml $OLD_RELEASE, $OLD_COMMIT, built from git at -O0)"
    if git cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
        mkdir -p "$WORK/old"
        if git archive "$OLD_COMMIT" | tar -x -C "$WORK/old" &&
            sed -i 's/-O2 -g /-O0 /' "$WORK/old/Makefile" &&
            make -C "$WORK/old" -j "$JOBS" CXXFLAGS=-O0 PG_CONFIG="$PG_CONFIG" pg_ml.so >"$WORK/old/build.log" 2>&1; then
            export PGML_OLD_LIBRARY="$WORK/old/pg_ml.so" PGML_OLD_VERSION="$OLD_RELEASE"
            add "previous release's library" 1 0
        else
            tail -n 30 "$WORK/old/build.log"
            add "previous release's library" 0 1
        fi
    else
        echo "not a git clone with the release's commit: test_old_library.py is skipped"
    fi
    echo
    echo "=== throw-away PostgreSQL $PGVER cluster (pg_virtualenv)"
    # -t: the cluster lives in a temporary directory (also as root, where the server runs
    # as the postgres OS user) and is removed when the command exits; pg_ml is preloaded so
    # that its shared-memory progress view (and background worker) are tested
    pg_virtualenv -t -v "$PGVER" -o shared_preload_libraries=pg_ml "$ROOT/scripts/test.sh" --inside-cluster "$WORK"
    rc=$?
    if [ -f "$WORK/regress.counts" ]; then
        read -r ok bad <"$WORK/regress.counts"
        add "pg_regress (installcheck)" "$ok" "$bad"
    else
        add "pg_regress (installcheck)" 0 1
    fi
    if [ -f "$WORK/isolation.counts" ]; then
        read -r ok bad <"$WORK/isolation.counts"
        add "isolation (installcheck)" "$ok" "$bad"
    else
        add "isolation (installcheck)" 0 1
    fi
    if [ -f "$WORK/unittest.counts" ]; then
        read -r ok bad <"$WORK/unittest.counts"
        add "integration (unittest)" "$ok" "$bad"
    else
        add "integration (unittest)" 0 1
    fi
    if [ -f "$WORK/crash.counts" ]; then
        read -r ok bad <"$WORK/crash.counts"
        add "no backend crash (server log)" "$ok" "$bad"
    fi
    if [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
        add "pg_virtualenv" 0 1 # the cluster itself failed
    fi
else
    echo "extension build or install failed"
    add "extension build (make WERROR=1)" 0 1
fi

finish
