#!/usr/bin/env bash
#
# scripts/bench.sh - run every benchmark (build/bench/bench_*) against a
# fresh stack of its own (state in <repo>/.run/bench, its own ports), so the
# baselines and the figures compared with them come from the same machine
# and the same run. bench_foundation runs first: it measures the raw Kafka
# and PostgreSQL rates, which are then exported to the other benchmarks as
# BLAZZ_BENCH_RAW_KAFKA (msg/s) and BLAZZ_BENCH_RAW_PG (rows/s) for their
# ratios. Prints each benchmark's table; lines "BENCH name value unit" are
# collected into .run/bench/results.txt for other tools. Last come the
# whole-system run (scripts/bench_system.sh: end-to-end latency, peak RSS)
# and one summary table built from results.txt (scripts/bench_summary.sh).
# Before each benchmark the database is settled (CHECKPOINT, VACUUM
# ANALYZE): the previous one's writes otherwise leave a checkpoint and
# autovacuum work running into the next one's measurement. chat-sync, right
# after the campaign benchmark's 200,000 logs, measured 5,300 commands/s
# unsettled and 14,800 settled (that run also had 2,000-command batches,
# worth +16-18% alone). Settling also means every benchmark starts with
# statistics taken on near-empty tables, the state after a quiet period;
# that exposed a claim plan of webhook-dispatcher that only fast-changing
# statistics had hidden.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/bench_stack.sh
source "$REPO/scripts/lib/bench_stack.sh"
bench_stack_up "$REPO"

results="$BLAZZ_STATE_DIR/results.txt"
: >"$results"
status=0
run_bench() {
    local bench="$1"
    echo
    echo "=== $(basename "$bench") ==="
    settle_database
    if ! "$bench" | tee -a "$results" | grep -v '^BENCH '; then
        echo "bench: $(basename "$bench") failed" >&2
        status=1
    fi
}

baseline() {
    awk -v name="$1" '$1 == "BENCH" && $2 == name {print $3}' "$results" | tail -n 1
}

run_bench "$REPO/build/bench/bench_foundation"
BLAZZ_BENCH_RAW_KAFKA="$(baseline raw_kafka_produce_consume)"
BLAZZ_BENCH_RAW_PG="$(baseline raw_pg_batched_insert)"
export BLAZZ_BENCH_RAW_KAFKA BLAZZ_BENCH_RAW_PG
# BLAZZ_BENCH_ONLY (a regular expression over names such as bench_ingest or
# bench_system) runs a subset; the baselines are always measured.
selected() { [[ "$(basename "$1" .sh)" =~ ${BLAZZ_BENCH_ONLY:-.} ]]; }
for bench in "$REPO"/build/bench/bench_*; do
    [ -x "$bench" ] && [ "$(basename "$bench")" != bench_foundation ] || continue
    selected "$bench" && run_bench "$bench"
done
# The whole system end to end (latency, peak RSS), then one table of it all.
selected bench_system && run_bench "$REPO/scripts/bench_system.sh"
# The headroom: a 20 s burst at 5,000 events/s, more than two cores
# sustain, then 20 s at 1,000/s while it drains (ARCHITECTURE.md §8.1).
selected bench_system_burst &&
    BLAZZ_BENCH_E2E_NAME=burst BLAZZ_BENCH_E2E_RATE="${BLAZZ_BENCH_BURST_RATE:-5000}" \
    BLAZZ_BENCH_E2E_AFTER_SECONDS=20 BLAZZ_BENCH_E2E_SETTLE_SECONDS=300 \
    run_bench "$REPO/scripts/bench_system.sh"
echo
"$REPO/scripts/bench_summary.sh" "$results"
exit "$status"
