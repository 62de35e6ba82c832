#!/usr/bin/env bash
#
# scripts/test.sh OUT - run every test binary built under OUT (make test
# passes build/asan) and print one verdict.
#
# Checks that need no build come first (scripts/check_doc_refs.sh: every
# "ARCHITECTURE.md §N" in the code names a section of docs/ARCHITECTURE.md;
# each check counts as one test). Unit tests run next, on their own. Then a
# dedicated test stack comes up (fresh state in <repo>/.run/test, its own
# ports, so it never meets a developer's stack) and every
# OUT/tests/integration/test_* runs against it with a timeout; the stack is
# stopped on any exit. Integration tests get
# BLAZZ_PG_DSN / BLAZZ_KAFKA_BROKERS (and the admin Kafka principal) from
# the stack's env file, plus
# BLAZZ_STACK_SCRIPT and BLAZZ_STATE_DIR to restart servers, and
# BLAZZ_TEST_BIN_DIR=OUT to find helper programs.
#
# Results are counted from cmocka's summary lines; a binary that exits
# non-zero without reporting a failure (crash, sanitizer report at exit,
# timeout) counts as one failed test. Each binary's full output is kept in
# <state>/logs/<name>.log and printed when it fails. The last line is
# exactly "N passed, N failed"; the exit status is non-zero when anything
# failed or no test ran at all.
#
# BLAZZ_TEST_ONLY=<extended regex> runs only the binaries whose name matches
# (for a developer iterating on one area; `make test` runs everything).
#
# Cluster tests (CLUSTER_TESTS: three brokers and a standby of their own,
# minutes each) are left out, so that `make test` stays within CI's budget;
# BLAZZ_TEST_CLUSTER=1 (`make chaos-cluster`) runs them alone instead, with
# no checks, no unit tests and no single-node stack.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/test.sh OUT (e.g. build/asan)}"
OUT="$(cd "$OUT" && pwd)"
STACK="$REPO/scripts/stack.sh"
TEST_TIMEOUT_S="${BLAZZ_TEST_TIMEOUT_S:-900}"
UNIT_TIMEOUT_S="${BLAZZ_UNIT_TIMEOUT_S:-300}"

# The test stack's settings; overridable only so that a developer can run
# this script next to another copy of it.
# shellcheck source=lib/stack_settings.sh
source "$REPO/scripts/lib/stack_settings.sh"
export_stack_settings "${BLAZZ_TEST_STATE_DIR:-$REPO/.run/test}" "${BLAZZ_TEST_PG_PORT:-55433}" \
    "${BLAZZ_TEST_KAFKA_PORT:-59192}" "${BLAZZ_TEST_KAFKA_CONTROLLER_PORT:-59193}" \
    "${BLAZZ_TEST_STACK_BIN_DIR:-$REPO/build/bin}" "$STACK"
export BLAZZ_TEST_BIN_DIR="$OUT"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
unset CMOCKA_MESSAGE_OUTPUT CMOCKA_XML_FILE

LOGS="$BLAZZ_STATE_DIR/logs"
CLUSTER_TESTS=" test_cluster "
CLUSTER_ONLY="${BLAZZ_TEST_CLUSTER:-0}"
total_passed=0
total_failed=0

# Sum the N of every line of the form "[  WORD  ] N test(s)" in a log.
sum_summary() {
    local word="$1" log="$2"
    { grep -E "^\[ +$word +\] [0-9]+ test\(s\)" "$log" || true; } | awk '{s += $4} END {print s + 0}'
}

# Run one test binary, count its results and print a one-line verdict.
run_binary() {
    local kind="$1" bin="$2" timeout_s="$3"
    local name log rc passed failed errors
    name="$(basename "$bin")"
    if [ -n "${BLAZZ_TEST_ONLY:-}" ] && ! [[ "$name" =~ $BLAZZ_TEST_ONLY ]]; then
        return 0
    fi
    log="$LOGS/$name.log"
    rc=0
    timeout -k 10 "$timeout_s" "$bin" >"$log" 2>&1 </dev/null || rc=$?
    passed="$(sum_summary PASSED "$log")"
    failed="$(sum_summary FAILED "$log")"
    # cmocka lists tests whose setup failed as ERROR, outside the FAILED count.
    errors="$({ grep -E '^\[  ERROR   \] [A-Za-z_0-9]+$' "$log" || true; } | sort -u | wc -l)"
    failed=$((failed + errors))
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    local why=""
    [ "$rc" -eq 124 ] && why=", timed out after ${timeout_s}s"
    if [ "$failed" -eq 0 ]; then
        printf 'PASS  %-12s %-36s %d passed\n' "$kind" "$name" "$passed"
    else
        printf 'FAIL  %-12s %-36s %d passed, %d failed (exit %d%s)\n' \
            "$kind" "$name" "$passed" "$failed" "$rc" "$why"
        echo "----- $log -----"
        cat "$log"
        echo "----- end of $name -----"
    fi
}

# Run one check script (not a cmocka binary): it counts as one test,
# passed when it exits 0.
run_check() {
    local name="$1" log rc=0
    shift
    if [ -n "${BLAZZ_TEST_ONLY:-}" ] && ! [[ "$name" =~ $BLAZZ_TEST_ONLY ]]; then
        return 0
    fi
    log="$LOGS/$name.log"
    "$@" >"$log" 2>&1 </dev/null || rc=$?
    if [ "$rc" -eq 0 ]; then
        total_passed=$((total_passed + 1))
        printf 'PASS  %-12s %-36s %d passed\n' check "$name" 1
    else
        total_failed=$((total_failed + 1))
        printf 'FAIL  %-12s %-36s %d passed, %d failed (exit %d)\n' check "$name" 0 1 "$rc"
        echo "----- $log -----"
        cat "$log"
        echo "----- end of $name -----"
    fi
}

finish() {
    echo "$total_passed passed, $total_failed failed"
    if [ "$total_failed" -ne 0 ] || [ "$total_passed" -eq 0 ]; then
        exit 1
    fi
    exit 0
}

stop_stack() {
    "$STACK" down >/dev/null 2>&1 || true
}

# Stop a stack left running by an interrupted earlier run and forget its
# state: tests must not depend on what a previous run left behind.
clear_state() {
    "$STACK" down >/dev/null 2>&1 || true
    rm -rf "$BLAZZ_STATE_DIR"
    mkdir -p "$LOGS"
}

start_stack() {
    trap stop_stack EXIT
    trap 'exit 130' INT TERM
    if ! "$STACK" up >"$LOGS/stack-up.log" 2>&1; then
        cat "$LOGS/stack-up.log"
        echo "FAIL  stack        could not start the test stack"
        total_failed=$((total_failed + 1))
        return 1
    fi
    # shellcheck source=/dev/null
    source "$BLAZZ_STATE_DIR/stack.env"
    # The tests act as the stack's admin principal (they create topics and
    # ACLs for their prefixes); the programs they start run as their own
    # principals (tests/integration/support/itest.c).
    if [ -n "${BLAZZ_KAFKA_CREDENTIALS_DIR:-}" ]; then
        export BLAZZ_KAFKA_SASL_USERNAME=admin
        export BLAZZ_KAFKA_SASL_PASSWORD_FILE="$BLAZZ_KAFKA_CREDENTIALS_DIR/admin.password"
    fi
}

shopt -s nullglob
unit_bins=("$OUT"/tests/unit/test_*)
integration_bins=("$OUT"/tests/integration/test_*)

is_cluster_test() { [[ "$CLUSTER_TESTS" == *" $(basename "$1") "* ]]; }

clear_state
if [ "$CLUSTER_ONLY" = 1 ]; then
    for bin in "${integration_bins[@]}"; do
        [ -x "$bin" ] && [ -f "$bin" ] && is_cluster_test "$bin" || continue
        run_binary cluster "$bin" "$TEST_TIMEOUT_S"
    done
    finish
fi
run_check check_doc_refs_selftest "$REPO/scripts/check_doc_refs.sh" --self-test
run_check check_doc_refs "$REPO/scripts/check_doc_refs.sh" "$REPO"
for bin in "${unit_bins[@]}"; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    run_binary unit "$bin" "$UNIT_TIMEOUT_S"
done

if [ "${#integration_bins[@]}" -gt 0 ]; then
    if start_stack; then
        for bin in "${integration_bins[@]}"; do
            [ -x "$bin" ] && [ -f "$bin" ] && ! is_cluster_test "$bin" || continue
            run_binary integration "$bin" "$TEST_TIMEOUT_S"
        done
    fi
fi

finish
