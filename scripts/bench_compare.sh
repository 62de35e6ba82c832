#!/usr/bin/env bash
#
# scripts/bench_compare.sh RUNS BIN_DIR [BIN_DIR ...] - the whole-system
# benchmark (scripts/bench_system.sh) for two or more builds, alternated on
# one stack: after one warm-up run that is not counted, RUNS rounds each run
# every build once, in the order given, the database settled before each.
# Comparing builds this way keeps what moves the figures most out of the
# comparison: `make bench` starts a fresh stack, whose broker JVM is still
# warming up during bench_system's 20 s (its Kafka hops measured about
# twice as slow as on a warm stack), and a machine whose other load changes
# between two separate runs. A BIN_DIR holds a build's programs
# (<tree>/build/bin after `make programs` there): the services, blazzctl,
# the simulator and the receiver bench_system starts all come from it, the
# stack itself from this tree. Prints one line per run with the latency
# waterfall's p50s, the end-to-end figures and the CPU per event; each
# run's whole output is kept in $BLAZZ_STATE_DIR/compare/<build>-<run>.txt,
# builds named 1, 2, ... in the order given.
#
#   make programs && cp -r build/bin /tmp/before    # on the old commit
#   make programs                                   # on the new one
#   scripts/bench_compare.sh 3 /tmp/before build/bin

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() {
    echo "usage: scripts/bench_compare.sh RUNS BIN_DIR [BIN_DIR ...]" >&2
    exit 2
}
if [ $# -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then usage; fi
RUNS=$1
shift
BUILDS=()
for dir in "$@"; do
    [ -x "$dir/blazz-ingest" ] || { echo "bench_compare: $dir holds no blazz-ingest" >&2; exit 2; }
    BUILDS+=("$(cd "$dir" && pwd)")
done

# shellcheck source=lib/bench_stack.sh
source "$REPO/scripts/lib/bench_stack.sh"
bench_stack_up "$REPO"
OUT="$BLAZZ_STATE_DIR/compare"
mkdir -p "$OUT"

FIGURES=(hop_accepted_to_sync_committed_p50 hop_sync_to_row_committed_p50
    hop_row_to_event_published_p50 hop_event_to_fanout_p50 hop_fanout_to_first_attempt_p50
    e2e_row_p50 e2e_row_p99 e2e_webhook_p50 e2e_webhook_p99 cpu_ms_per_event)
HEADINGS=(202-sync sync-row relay fan-out attempt row-p50 row-p99 hook-p50 hook-p99 cpu-ms)

# Run one build's bench_system; its output goes to $2.
run_system() {
    settle_database
    BLAZZ_BIN_DIR="$1" "$REPO/scripts/bench_system.sh" >"$2" 2>&1
}

figure_line() {
    local file=$1 name
    for name in "${FIGURES[@]}"; do
        awk -v n="$name" '$1 == "BENCH" && $2 == n { v = $3 } END { printf " %9s", (v == "" ? "n/a" : v) }' "$file"
    done
    echo
}

for i in "${!BUILDS[@]}"; do
    echo "build $((i + 1)): ${BUILDS[$i]}"
done
echo "bench_compare: warm-up run (not counted)"
run_system "${BUILDS[0]}" "$OUT/warm-up.txt" || echo "bench_compare: the warm-up run failed" >&2
printf '%-12s' "run"
printf ' %9s' "${HEADINGS[@]}"
echo "   (p50s and p99s in ms)"
status=0
for ((run = 1; run <= RUNS; run++)); do
    for i in "${!BUILDS[@]}"; do
        file="$OUT/$((i + 1))-$run.txt"
        if ! run_system "${BUILDS[$i]}" "$file"; then
            echo "bench_compare: build $((i + 1)) run $run failed (see $file)" >&2
            status=1
            continue
        fi
        printf '%-12s' "$((i + 1)) run $run"
        figure_line "$file"
    done
done
exit "$status"
