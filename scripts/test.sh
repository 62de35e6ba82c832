#!/usr/bin/env bash
#
# scripts/test.sh OUT - run every test binary built under OUT (make test
# passes build/asan) and print one verdict.
#
# Checks that need no build come first (scripts/check_doc_refs.sh: every
# "ARCHITECTURE.md §N" in the code names a section of the map,
# docs/ARCHITECTURE.md, or of the file it moved to; scripts/check_map.sh:
# the map names every topic a service produces and every table it writes;
# scripts/check_duplicates.sh: no production code written twice, few
# repeats in the tests; scripts/check_reasons.sh: every refusal reason is
# documented; scripts/check_error_msgs.sh: no error message is formatted
# from itself;
# scripts/check_proto_contract.sh: the Kafka contracts kept every field of
# the last release; scripts/check_alert_rules.sh: the alert rules pass
# promtool's checks and their tests, each with its runbook; each check
# counts as one test), then the unit tests, while the test
# stacks start. Integration programs then run side by side,
# BLAZZ_TEST_JOBS at a time (6 by default, for 2 cores: most of a program's
# time is spent waiting on services, brokers and databases, decision 0006):
#
#   - the shared stack (fresh state in <repo>/.run/test, its own ports, so
#     it never meets a developer's stack) serves every program that leaves
#     its servers running. Each concurrent program gets a database of its
#     own on that server (a copy of the migrated one, `stack.sh copy-db`),
#     so that what works per database (the outbox relay's lock, the
#     dispatcher's and meta-sender's claims, `SELECT count(*) FROM outbox`
#     in a test) meets only its own rows; topics and consumer groups are
#     already per program (a unique prefix each, itest.h).
#     The shared stack also runs the S3-compatible server (S3Proxy,
#     scripts/lib/s3_server.sh) on BLAZZ_TEST_S3_PORT (default 19196); its
#     stack.env names it as BLAZZ_MEDIA_S3_*.
#   - programs that stop or restart PostgreSQL or Kafka (OUTAGE_TESTS) run
#     one at a time on a second stack (state <state>-outage, the next
#     ports), so an outage never hits a neighbour.
#   - programs that bring up a stack of their own (test_chaos,
#     test_make_run) only take a place in the pool.
# Long programs start first (LONG_FIRST), so that the last one to finish
# does not start last.
#
# Integration tests get BLAZZ_PG_DSN / BLAZZ_KAFKA_BROKERS (and the admin
# Kafka principal) from their stack's env file, plus BLAZZ_STACK_SCRIPT and
# BLAZZ_STATE_DIR to restart servers, and BLAZZ_TEST_BIN_DIR=OUT to find
# helper programs. Results are counted from cmocka's summary lines; a
# binary that exits non-zero without reporting a failure (crash, sanitizer
# report at exit, timeout) counts as one failed test. Each binary's full
# output is kept in <state>/logs/<name>.log and printed when it fails. The
# run ends with the 10 slowest programs (wall and CPU seconds of the
# program and what it started), then exactly "N passed, N failed"; the exit
# status is non-zero when anything failed or no test ran at all.
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
JOBS="${BLAZZ_TEST_JOBS:-6}"
case "$JOBS" in ''|*[!0-9]*|0) echo "test: BLAZZ_TEST_JOBS must be a positive number" >&2; exit 2 ;; esac

# The test stacks' settings; overridable only so that a developer can run
# this script next to another copy of it. The outage stack's ports are the
# shared one's + 10. Every test stack listens below the kernel's ephemeral
# range (32768-60999; the services' own ports are 20000-32000, itest.c): a
# stack that starts while other programs hold thousands of outgoing
# connections once found its Kafka port taken by one of them.
STATE_DIR="${BLAZZ_TEST_STATE_DIR:-$REPO/.run/test}"
PG_PORT="${BLAZZ_TEST_PG_PORT:-19433}"
KAFKA_PORT="${BLAZZ_TEST_KAFKA_PORT:-19192}"
CONTROLLER_PORT="${BLAZZ_TEST_KAFKA_CONTROLLER_PORT:-19193}"
# The shared stack's S3 server (scripts/lib/s3_server.sh, test_media_store),
# handed to that stack's stack.sh only: the outage stack and the stacks
# programs bring up themselves (test_make_run, test_chaos) have none.
S3_PORT="${BLAZZ_TEST_S3_PORT:-19196}"
STACK_BIN_DIR="${BLAZZ_TEST_STACK_BIN_DIR:-$REPO/build/bin}"
OUTAGE_STATE_DIR="$STATE_DIR-outage"
# shellcheck source=lib/stack_settings.sh
source "$REPO/scripts/lib/stack_settings.sh"
export_stack_settings "$STATE_DIR" "$PG_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT" "$STACK_BIN_DIR" "$STACK"
# The pinned Python tools scripts/deps.sh installed: Schemathesis
# (test_openapi), the Standard Webhooks library (test_sessions),
# openapi-python-client's virtualenv (test_openapi_client); and
# openapi-generator's jar (test_openapi_client too).
# shellcheck source=lib/schemathesis.sh
source "$REPO/scripts/lib/schemathesis.sh"
export BLAZZ_SCHEMATHESIS="$SCHEMATHESIS_BIN"
export BLAZZ_TEST_PYTHON="$TEST_PYTHON"
export BLAZZ_OPENAPI_CLIENT_HOME="$OPENAPI_CLIENT_HOME"
# shellcheck source=lib/openapi_generator.sh
source "$REPO/scripts/lib/openapi_generator.sh"
export BLAZZ_OPENAPI_GENERATOR_JAR="$OPENAPI_GENERATOR_JAR"
# PostgreSQL serves every concurrent program's services.
export BLAZZ_PG_MAX_CONNECTIONS=400
# The broker holds every program's topics (a prefix each, about 9,600
# partitions by the end of a run), and what it keeps live grows with them
# to about 940 MB. With make run's 512 MB its heap ran out near the end
# (OutOfMemoryError, its controller renouncing leadership, the last
# programs' topics without leaders). With 1 GB ZGC ran 222 cycles in a
# run, the last ones on a heap 92% full, and Java (the brokers, S3Proxy)
# took 1,075 CPU-s; with 2 GB, 39 cycles and 784 CPU-s, and the run took
# 19.5 minutes, not 22 (one run each, stop 48).
export BLAZZ_KAFKA_HEAP="${BLAZZ_KAFKA_HEAP:-2g}"
# The suite is short of CPU (two cores, programs side by side), and its
# stacks need not spend it as production's do: nothing here measures
# latency or survives the machine. Sampling every process over a whole
# run (stop 72, 1,028 s, 2,056 CPU-s at hand) found Java at 636 CPU-s;
# its threads, read in the next runs: the main broker's request threads,
# a JIT compiler busy in each of about ten JVMs, ZGC. So:
#  - every JVM compiles with C1 alone (JAVA_TOOL_OPTIONS): the short-lived
#    ones (brokers restarted by outage tests, S3Proxy, Kafka's tools,
#    openapi-generator) paid 5-15 CPU-s each to C2 and never ran long
#    enough to earn it back; the brokers collect with ParallelGC
#    (BLAZZ_KAFKA_GC): ZGC's concurrent cycles, which keep a benchmark's
#    pauses under a millisecond, took 37 CPU-s of the main broker;
#  - chat-sync's fetches are answered at the first record and ingest's are
#    held 100 ms (BLAZZ_CONSUMER_FETCH_WAIT_MS, BLAZZ_INGEST_FETCH_WAIT_MS):
#    production's 5 and 10 ms buy throughput under load with 200 and 100
#    fetches a second from each idle instance, and most of a suite's
#    services are idle most of the time;
#  - PostgreSQL runs without fsync (BLAZZ_PG_FSYNC): a server a test kills
#    loses nothing by it (its WAL is in the kernel's cache); only a crash
#    of the machine would, and no test makes one.
# One run each on a fresh clone: 1,028 s as it was; 967 with the fetches
# (Java 532 CPU-s); 891 with the rest too (Java 374); 800 with six
# programs side by side instead of five.
export JAVA_TOOL_OPTIONS="-XX:TieredStopAtLevel=1" BLAZZ_KAFKA_GC="-XX:+UseParallelGC"
export BLAZZ_CONSUMER_FETCH_WAIT_MS=0 BLAZZ_INGEST_FETCH_WAIT_MS=100
export BLAZZ_PG_FSYNC=off
export BLAZZ_TEST_BIN_DIR="$OUT"
# The ports every test process takes its listeners' from (itest_free_port).
export BLAZZ_TEST_PORTS_FILE="$STATE_DIR/ports"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
unset CMOCKA_MESSAGE_OUTPUT CMOCKA_XML_FILE

LOGS="$STATE_DIR/logs"
RESULTS="$STATE_DIR/results"
CLUSTER_TESTS=" test_cluster "
OUTAGE_TESTS=" test_cleanup test_eo_consumer_outages test_ingest_outages test_webhook_outcomes "
# Measured on a fresh clone (make test, 5 side by side), longest first;
# reorder when the slowest-programs table at the end of a run disagrees.
LONG_FIRST=(test_backup test_chaos test_restore_drill test_send_budget test_meta_rules
            test_meta_lost_answers test_webhook test_make_run test_sessions test_openapi
            test_sessions_failover test_campaign_via_gateway test_ingest test_meta_sender_faults
            test_meta_sender test_chat_sync test_gateway_auth test_meta_throttle
            test_chat_sync_via_ingest test_fidelity test_outbox_relay test_agent_messages
            test_webhook_outcomes test_eo_consumer_outages test_campaign_accounts test_meta_reach
            test_eo_consumer test_campaign test_pair_rate test_ingest_outages test_ingest_pressure
            test_webhook_instances test_webhook_fairness test_secrets_rotation)
CLUSTER_ONLY="${BLAZZ_TEST_CLUSTER:-0}"
total_passed=0
total_failed=0

# Sum the N of every line of the form "[  WORD  ] N test(s)" in a log.
sum_summary() {
    local word="$1" log="$2"
    { grep -E "^\[ +$word +\] [0-9]+ test\(s\)" "$log" || true; } | awk '{s += $4} END {print s + 0}'
}

selected() {
    [ -z "${BLAZZ_TEST_ONLY:-}" ] || [[ "$(basename "$1")" =~ $BLAZZ_TEST_ONLY ]]
}

# Run one test binary with the environment of the caller and write its
# result line to $RESULTS/<name>: kind, passed, failed, exit code, wall
# seconds, CPU seconds (its own and its children's). Runs in a subshell of
# its own when the pool starts it.
run_binary() {
    local kind="$1" bin="$2" timeout_s="$3"
    local name log rc=0 passed failed errors times
    name="$(basename "$bin")"
    log="$LOGS/$name.log"
    times="$RESULTS/$name.times"
    /usr/bin/time -f '%e %U %S' -o "$times" \
        timeout -k 10 "$timeout_s" "$bin" >"$log" 2>&1 </dev/null || rc=$?
    passed="$(sum_summary PASSED "$log")"
    failed="$(sum_summary FAILED "$log")"
    # cmocka lists tests whose setup failed as ERROR, outside the FAILED count.
    errors="$({ grep -E '^\[  ERROR   \] [A-Za-z_0-9]+$' "$log" || true; } | sort -u | wc -l)"
    failed=$((failed + errors))
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        failed=1
    fi
    # time(1) writes "Command exited with non-zero status N" first then.
    read -r wall user sys < <(tail -n 1 "$times")
    echo "$kind $passed $failed $rc $wall $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')" \
        >"$RESULTS/$name"
}

# Count a finished binary's result and print its one-line verdict (and its
# log when it failed).
report_binary() {
    local name="$1" kind passed failed rc wall cpu why=""
    read -r kind passed failed rc wall cpu <"$RESULTS/$name"
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    echo "$wall $cpu $name" >>"$RESULTS/.durations"
    [ "$rc" -eq 124 ] && why=", timed out after ${TEST_TIMEOUT_S}s"
    if [ "$failed" -eq 0 ]; then
        printf 'PASS  %-12s %-36s %d passed  %6.1f s\n' "$kind" "$name" "$passed" "$wall"
    else
        printf 'FAIL  %-12s %-36s %d passed, %d failed (exit %d%s)  %6.1f s\n' \
            "$kind" "$name" "$passed" "$failed" "$rc" "$why" "$wall"
        echo "----- $LOGS/$name.log -----"
        cat "$LOGS/$name.log"
        echo "----- end of $name -----"
    fi
}

# Run one check script (not a cmocka binary): it counts as one test,
# passed when it exits 0.
run_check() {
    local name="$1" log rc=0
    shift
    selected "$name" || return 0
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

slowest() {
    [ -s "$RESULTS/.durations" ] || return 0
    echo "slowest programs (wall s, CPU s of the program and its children):"
    # awk reads to the end: a head that left after ten lines made sort's
    # next write fail (SIGPIPE, and with pipefail the suite's exit status
    # 141) once the list outgrew one buffer of sort's
    sort -rn "$RESULTS/.durations" |
        awk 'NR <= 10 {printf "  %7.1f %7.1f  %s\n", $1, $2, $3}'
}

finish() {
    slowest
    echo "$total_passed passed, $total_failed failed"
    if [ "$total_failed" -ne 0 ] || [ "$total_passed" -eq 0 ]; then
        exit 1
    fi
    exit 0
}

# `stack.sh` with the settings of the stack in folder $1.
stack_in() {
    local dir="$1"
    shift
    if [ "$dir" = "$OUTAGE_STATE_DIR" ]; then
        (outage_stack_settings; "$STACK" "$@")
    else
        BLAZZ_S3_PORT="$S3_PORT" "$STACK" "$@"
    fi
}

outage_stack_settings() {
    export_stack_settings "$OUTAGE_STATE_DIR" $((PG_PORT + 10)) $((KAFKA_PORT + 10)) \
        $((CONTROLLER_PORT + 10)) "$STACK_BIN_DIR" "$STACK"
}

stop_stacks() {
    stack_in "$STATE_DIR" down >/dev/null 2>&1 || true
    stack_in "$OUTAGE_STATE_DIR" down >/dev/null 2>&1 || true
}

# Stop stacks left running by an interrupted earlier run and forget their
# state: tests must not depend on what a previous run left behind.
clear_state() {
    stop_stacks
    rm -rf "$STATE_DIR" "$OUTAGE_STATE_DIR"
    mkdir -p "$LOGS" "$RESULTS" "$OUTAGE_STATE_DIR/logs"
}

# Start the stack in folder $1 in the background; its log is
# $LOGS/stack-up-<folder>.log. The starting process's pid is left in
# $starting_pid.
start_stack_in_background() {
    local dir="$1"
    stack_in "$dir" up >"$LOGS/stack-up-$(basename "$dir").log" 2>&1 </dev/null &
    starting_pid=$!
}

# Wait for a stack started by start_stack_in_background; print its log and
# count a failure when it did not come up.
stack_came_up() {
    local pid="$1" dir="$2"
    if ! wait "$pid"; then
        cat "$LOGS/stack-up-$(basename "$dir").log"
        echo "FAIL  stack        could not start the test stack in $dir"
        total_failed=$((total_failed + 1))
        return 1
    fi
}

# The environment a program of the pool runs in: the stack's env file, the
# admin principal (tests create topics and ACLs for their prefixes; the
# programs they start run as their own principals,
# tests/integration/support/itest.c), and the database of its place (the
# stack's own when none is given).
stack_environment() {
    local dir="$1" dsn="${2:-}"
    [ "$dir" = "$OUTAGE_STATE_DIR" ] && outage_stack_settings
    # shellcheck source=/dev/null
    source "$dir/stack.env"
    [ -z "$dsn" ] || export BLAZZ_PG_DSN="$dsn"
    if [ -n "${BLAZZ_KAFKA_CREDENTIALS_DIR:-}" ]; then
        export BLAZZ_KAFKA_SASL_USERNAME=admin
        export BLAZZ_KAFKA_SASL_PASSWORD_FILE="$BLAZZ_KAFKA_CREDENTIALS_DIR/admin.password"
    fi
}

is_cluster_test() { [[ "$CLUSTER_TESTS" == *" $(basename "$1") "* ]]; }
is_outage_test() { [[ "$OUTAGE_TESTS" == *" $(basename "$1") "* ]]; }

# The integration programs to run, long ones first, then the rest in name
# order.
ordered_programs() {
    local bin name
    for name in "${LONG_FIRST[@]}"; do
        bin="$OUT/tests/integration/$name"
        [ -x "$bin" ] && selected "$bin" && echo "$bin"
    done
    for bin in "${integration_bins[@]}"; do
        name="$(basename "$bin")"
        [[ " ${LONG_FIRST[*]} " == *" $name "* ]] && continue
        [ -x "$bin" ] && [ -f "$bin" ] && selected "$bin" && ! is_cluster_test "$bin" && echo "$bin"
    done
    return 0
}

# The pool: up to $JOBS programs at once, each on a place of its own (a
# database of the shared stack), outage programs one at a time on the
# outage stack. Verdicts print as programs finish.
run_pool() {
    local -a queue=() places=() place_dsn=()
    local -A running_name=() running_place=()
    local outage_busy=0 i bin name pid done_pid place
    mapfile -t queue < <(ordered_programs)
    for ((i = 1; i <= JOBS; i++)); do
        places+=("$i")
        place_dsn[i]="$(stack_in "$STATE_DIR" copy-db "blazz_p$i")" || {
            echo "FAIL  stack        could not copy the database for place $i"
            total_failed=$((total_failed + 1))
            return 1
        }
    done
    while [ "${#queue[@]}" -gt 0 ] || [ "${#running_name[@]}" -gt 0 ]; do
        # Start what fits: the first queued program that has a free place.
        while [ "${#running_name[@]}" -lt "$JOBS" ]; do
            local picked=-1
            for i in "${!queue[@]}"; do
                if is_outage_test "${queue[$i]}"; then
                    [ "$outage_busy" = 0 ] && { picked=$i; break; }
                elif [ "${#places[@]}" -gt 0 ]; then
                    picked=$i
                    break
                fi
            done
            [ "$picked" -ge 0 ] || break
            bin="${queue[$picked]}"
            unset 'queue[picked]'
            queue=("${queue[@]}")
            name="$(basename "$bin")"
            if is_outage_test "$bin"; then
                outage_busy=1
                place=outage
                (stack_environment "$OUTAGE_STATE_DIR"
                 run_binary integration "$bin" "$TEST_TIMEOUT_S") &
            else
                place="${places[0]}"
                places=("${places[@]:1}")
                (stack_environment "$STATE_DIR" "${place_dsn[place]}"
                 run_binary integration "$bin" "$TEST_TIMEOUT_S") &
            fi
            pid=$!
            running_name[$pid]="$name"
            running_place[$pid]="$place"
        done
        [ "${#running_name[@]}" -gt 0 ] || break
        wait -n -p done_pid "${!running_name[@]}" || true
        name="${running_name[$done_pid]}"
        place="${running_place[$done_pid]}"
        unset "running_name[$done_pid]" "running_place[$done_pid]"
        if [ "$place" = outage ]; then
            outage_busy=0
        else
            places+=("$place")
        fi
        if [ -f "$RESULTS/$name" ]; then
            report_binary "$name"
        else
            total_failed=$((total_failed + 1))
            echo "FAIL  integration  $name: no result (the runner's subshell failed)"
        fi
    done
}

shopt -s nullglob
unit_bins=("$OUT"/tests/unit/test_*)
integration_bins=("$OUT"/tests/integration/test_*)

clear_state
trap stop_stacks EXIT
trap 'exit 130' INT TERM
if [ "$CLUSTER_ONLY" = 1 ]; then
    for bin in "${integration_bins[@]}"; do
        [ -x "$bin" ] && [ -f "$bin" ] && is_cluster_test "$bin" && selected "$bin" || continue
        run_binary cluster "$bin" "$TEST_TIMEOUT_S"
        report_binary "$(basename "$bin")"
    done
    finish
fi

programs="$(ordered_programs)"
shared_pid="" outage_pid=""
if [ -n "$programs" ]; then
    start_stack_in_background "$STATE_DIR"
    shared_pid=$starting_pid
    if grep -q -E "$(echo "$OUTAGE_TESTS" | xargs | tr ' ' '|')" <<<"$programs"; then
        start_stack_in_background "$OUTAGE_STATE_DIR"
        outage_pid=$starting_pid
    fi
fi

run_check check_layers_selftest "$REPO/scripts/check_layers.sh" --self-test
run_check check_layers "$REPO/scripts/check_layers.sh" "$REPO/libs"
run_check check_doc_refs_selftest "$REPO/scripts/check_doc_refs.sh" --self-test
run_check check_doc_refs "$REPO/scripts/check_doc_refs.sh" "$REPO"
run_check check_map_selftest "$REPO/scripts/check_map.sh" --self-test
run_check check_map "$REPO/scripts/check_map.sh" "$REPO"
run_check check_duplicates_selftest "$REPO/scripts/check_duplicates.sh" --self-test
run_check check_duplicates "$REPO/scripts/check_duplicates.sh" "$REPO"
run_check check_reasons_selftest "$REPO/scripts/check_reasons.sh" --self-test
run_check check_reasons "$REPO/scripts/check_reasons.sh" "$REPO"
run_check check_error_msgs_selftest "$REPO/scripts/check_error_msgs.sh" --self-test
run_check check_error_msgs "$REPO/scripts/check_error_msgs.sh" "$REPO"
run_check check_proto_contract_selftest "$REPO/scripts/check_proto_contract.sh" --self-test
run_check check_proto_contract "$REPO/scripts/check_proto_contract.sh" "$REPO"
run_check bench_gate_selftest "$REPO/scripts/bench_gate.sh" --self-test
run_check check_alert_rules "$REPO/scripts/check_alert_rules.sh" "$REPO"
for bin in "${unit_bins[@]}"; do
    [ -x "$bin" ] && [ -f "$bin" ] && selected "$bin" || continue
    run_binary unit "$bin" "$UNIT_TIMEOUT_S"
    report_binary "$(basename "$bin")"
done

if [ -n "$programs" ]; then
    stacks_up=1
    stack_came_up "$shared_pid" "$STATE_DIR" || stacks_up=0
    if [ -n "$outage_pid" ]; then
        stack_came_up "$outage_pid" "$OUTAGE_STATE_DIR" || stacks_up=0
    fi
    [ "$stacks_up" = 1 ] && run_pool
fi

finish
