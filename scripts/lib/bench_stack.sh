# shellcheck shell=bash
#
# scripts/lib/bench_stack.sh - the stack benchmarks measure on, sourced by
# scripts/bench.sh and scripts/bench_compare.sh: bench_stack_up starts a
# fresh stack of their own (state in BLAZZ_BENCH_STATE_DIR, default
# <repo>/.run/bench; ports BLAZZ_BENCH_PG_PORT, BLAZZ_BENCH_KAFKA_PORT,
# BLAZZ_BENCH_KAFKA_CONTROLLER_PORT), tears it down when the sourcing
# script exits, and exports what the benchmarks read: the stack's
# stack.env, the admin principal's credentials (the benchmarks create
# topics and ACLs for their prefixes, as the tests do) and the binaries of
# <repo>/build. settle_database runs before each benchmark (bench.sh says
# why).

bench_stack_up() {
    local repo=$1
    STACK="$repo/scripts/stack.sh"
    # shellcheck source=stack_settings.sh
    source "$repo/scripts/lib/stack_settings.sh"
    export_stack_settings "${BLAZZ_BENCH_STATE_DIR:-$repo/.run/bench}" "${BLAZZ_BENCH_PG_PORT:-55434}" \
        "${BLAZZ_BENCH_KAFKA_PORT:-59292}" "${BLAZZ_BENCH_KAFKA_CONTROLLER_PORT:-59293}" \
        "$repo/build/bin" "$STACK"
    # The benchmarks share the integration tests' support code, which runs
    # blazzctl and the test servers from the tree a test run names.
    export BLAZZ_TEST_BIN_DIR="$repo/build"
    export BLAZZ_TEST_PORTS_FILE="$BLAZZ_STATE_DIR/ports"

    "$STACK" down >/dev/null 2>&1 || true
    rm -rf "$BLAZZ_STATE_DIR"
    mkdir -p "$BLAZZ_STATE_DIR/logs"
    trap '"$STACK" down >/dev/null 2>&1 || true' EXIT
    trap 'exit 130' INT TERM

    echo "bench: starting a fresh stack (logs in $BLAZZ_STATE_DIR/logs)"
    "$STACK" up >"$BLAZZ_STATE_DIR/logs/stack-up.log" 2>&1 || {
        cat "$BLAZZ_STATE_DIR/logs/stack-up.log"
        return 1
    }
    # shellcheck source=/dev/null
    source "$BLAZZ_STATE_DIR/stack.env"
    if [ -n "${BLAZZ_KAFKA_CREDENTIALS_DIR:-}" ]; then
        export BLAZZ_KAFKA_SASL_USERNAME=admin
        export BLAZZ_KAFKA_SASL_PASSWORD_FILE="$BLAZZ_KAFKA_CREDENTIALS_DIR/admin.password"
    fi
}

# What the previous benchmark left in the outbox is removed first: its
# relays are gone, and the next benchmark's relay would publish it before
# its own rows (the outbox is one table, relayed in id order). bench_agent
# queues 40,000 campaign sends and gives its relays 30 s to publish them.
settle_database() {
    psql "$BLAZZ_PG_DSN" -X -q -v ON_ERROR_STOP=1 -c "DELETE FROM outbox" -c "CHECKPOINT" \
        -c "VACUUM ANALYZE" >/dev/null
}
