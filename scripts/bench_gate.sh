#!/usr/bin/env bash
#
# scripts/bench_gate.sh [--self-test] - the regression gate (`make
# bench-gate`): the last release of docs/releases.txt and this tree (HEAD)
# alternated on one stack over every benchmark of `make bench`, both
# builds' figures side by side, and a non-zero exit when HEAD is worse than
# the release by more than the tolerance on any figure both print.
#
# Builds. The release is built once, with its own Makefile (`make
# binaries`), in a worktree of its own and kept whole in
# build/releases/<commit>-bench/tree (scripts/lib/release_build.sh): its
# benchmarks link its service code, so they, the programs and helpers they
# start, its scripts/bench_system.sh and its db/migrations all come from
# that tree, as HEAD's come from this one (BLAZZ_BIN_DIR,
# BLAZZ_TEST_BIN_DIR, BLAZZ_REPO_DIR per run). BLAZZ_GATE_FROM names
# another commit; BLAZZ_GATE_SELF=1 puts HEAD in the release's place, which
# measures the run-to-run spread (see "Tolerance").
#
# One stack (scripts/lib/bench_stack.sh: broker, topics and principals of
# this tree; the benchmarks make their own prefixed topics and ACLs with
# their own tree's code). The schema is each build's own: every benchmark
# uses the stack's database "blazz", so two templates are migrated, each
# by its tree's blazzctl and db/migrations, and before every run "blazz"
# is dropped and copied from the running build's template, then settled
# (settle_database). Every run so starts on an empty database of its
# build's schema; indexes and triggers a migration added are measured with
# the code that needs them. (`make bench` runs its benchmarks one after
# another on one database, so its later figures can differ from these.)
#
# Rounds. One uncounted warm-up run (HEAD's bench_system when selected,
# else its bench_foundation: the broker's JVM and the page cache warm up
# there), then BLAZZ_GATE_ROUNDS (default 3) rounds; in each, every
# selected benchmark runs for both builds back to back, the release first
# in odd rounds and HEAD first in even ones, so drift of the machine's
# other load falls on both. bench_foundation always runs first: each
# build's baselines of the round (BLAZZ_BENCH_RAW_KAFKA/PG) go to its
# benchmarks of the round, as in bench.sh. A benchmark only one tree has
# runs for that build; its figures are shown, not gated.
# BLAZZ_GATE_ONLY, a regular expression over bench_<name> and bench_system
# like BLAZZ_BENCH_ONLY, narrows the selection (default: all). The burst
# run of `make bench` (bench_system_burst: up to five minutes a run) is
# left out unless BLAZZ_GATE_BURST=1.
#
# Verdicts (scripts/lib/bench_gate_verdict.awk): per figure the median of
# each build's rounds, HEAD/release, the spread (the largest distance of
# a round from its build's median) and ok / better / WORSE; the direction
# comes from the unit (rates and % higher, ms, s and MB lower, ratios to a
# baseline higher, "_beside_" ratios lower), and the stack's baselines and
# counts are shown only.
#
# Tolerance: BLAZZ_GATE_TOLERANCE (default 15%), BLAZZ_GATE_TAIL_TOLERANCE
# for p95/p99 figures (default 40%), BLAZZ_GATE_TOLERANCES
# ("REGEX=PERCENT,..." over figure names, the first match winning; the
# default gives the figures relative to the raw baselines, such as
# chat_sync_ratio_raw_pg, 40%: the baselines moved by 17-42% between
# rounds) and BLAZZ_GATE_MIN_MS (default 1: a latency moving less is never
# a verdict). Where the defaults come from (HEAD against itself,
# BLAZZ_GATE_SELF=1, and the release against HEAD on this 2-core host):
# docs/ROUTE.md §8.1, "Comparing builds".
#
# Time: every benchmark runs twice a round, plus the warm-up and the
# release's build (once, about 2 minutes); the default, 3 rounds of
# everything, is six runs of each of `make bench`'s benchmarks.
# BLAZZ_GATE_ONLY='^bench_(chat_sync|system)$' BLAZZ_GATE_ROUNDS=2 (with
# bench_foundation, always) took 7 minutes on 2 busy cores. Outputs
# in $BLAZZ_STATE_DIR/gate/ (<build>-<round>-<bench>.txt, figures.txt);
# ports as bench.sh (BLAZZ_BENCH_PG_PORT, ..., BLAZZ_BENCH_ADMIN_PORT,
# BLAZZ_BENCH_INGEST_PORT).
#
# --self-test runs the verdicts on planted figures (HEAD worse, equal,
# better, in both directions, a tail figure, tails within and beyond the
# release's rounds, a rate after one wild release round, a figure of one
# build) and fails unless each is judged as planted.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERDICT="$REPO/scripts/lib/bench_gate_verdict.awk"
# Figures relative to bench_foundation's raw baselines, which carry those
# baselines' own spread on top of their own (see "Tolerance").
RELATIVE_TO_RAW='raw|_path_ratio$'

# verdicts FIGURES: the table, exit 1 when a figure is WORSE.
verdicts() {
    awk -v tol="${BLAZZ_GATE_TOLERANCE:-15}" -v tail_tol="${BLAZZ_GATE_TAIL_TOLERANCE:-40}" \
        -v overrides="${BLAZZ_GATE_TOLERANCES-$RELATIVE_TO_RAW=40}" -v min_ms="${BLAZZ_GATE_MIN_MS:-1}" \
        -f "$VERDICT" "$1"
}

# ---- self-test --------------------------------------------------------------

# expect_verdict FIGURES NAME WANT: the verdict table of FIGURES judges NAME WANT.
expect_verdict() {
    local got
    got=$(verdicts "$1" | awk -v n="$2" '$1 == n { v = $8; for (i = 9; i <= NF; i++) v = v " " $i; print v }') || true
    [ "$got" = "$3" ] || { echo "self-test: $2 judged \"$got\", planted \"$3\"" >&2; return 1; }
}

self_test() {
    local f rc=0
    f=$(mktemp)
    # Three rounds each; medians base/head noted per figure.
    cat >"$f" <<'EOF'
base 1 rate_worse 1000 msg/s
base 2 rate_worse 1100 msg/s
base 3 rate_worse 900 msg/s
head 1 rate_worse 800 msg/s
head 2 rate_worse 820 msg/s
head 3 rate_worse 5000 msg/s
base 1 rate_same 1000 msg/s
head 1 rate_same 950 msg/s
base 1 rate_better 1000 msg/s
head 1 rate_better 1300 msg/s
base 1 lat_worse 10 ms
head 1 lat_worse 12 ms
base 1 lat_better 10 ms
head 1 lat_better 8 ms
base 1 lat_tiny 0.4 ms
head 1 lat_tiny 0.9 ms
base 1 lat_tail_p99 100 ms
head 1 lat_tail_p99 130 ms
base 1 lat_within_release_p99 20.48 ms
base 2 lat_within_release_p99 20.48 ms
base 3 lat_within_release_p99 29.99 ms
head 1 lat_within_release_p99 20.48 ms
head 2 lat_within_release_p99 29.99 ms
head 3 lat_within_release_p99 36.29 ms
base 1 rate_wild_release 1000 msg/s
base 2 rate_wild_release 1100 msg/s
base 3 rate_wild_release 300 msg/s
head 1 rate_wild_release 400 msg/s
head 2 rate_wild_release 420 msg/s
head 3 rate_wild_release 410 msg/s
base 1 lat_beyond_release_p99 20 ms
base 2 lat_beyond_release_p99 21 ms
base 3 lat_beyond_release_p99 22 ms
head 1 lat_beyond_release_p99 31 ms
head 2 lat_beyond_release_p99 30 ms
head 3 lat_beyond_release_p99 29 ms
base 1 lat_noisy 100 ms
head 1 lat_noisy 160 ms
base 1 cpu_worse 1.5 s
head 1 cpu_worse 1.8 s
base 1 share_worse 30 percent
head 1 share_worse 20 percent
base 1 vs_base_worse 0.5 ratio
head 1 vs_base_worse 0.3 ratio
base 1 share_of_raw 30 percent
head 1 share_of_raw 20 percent
base 1 http_beside_slow_worse 1.2 x
head 1 http_beside_slow_worse 2.0 x
base 1 http_beside_dead 2.0 x
head 1 http_beside_dead 1.2 x
base 1 raw_pg_insert 90000 rows/s
head 1 raw_pg_insert 10000 rows/s
base 1 lost 0 messages
head 1 lost 7 messages
head 1 new_figure 5 ms
base 1 unreported 1000 msg/s
head 1 unreported ? msg/s
EOF
    # Each planted figure and the verdict it must get.
    while read -r name want; do
        expect_verdict "$f" "$name" "$want" || rc=1
    done <<'WANT'
rate_worse WORSE
rate_same ok
rate_better better
lat_worse WORSE
lat_better better
lat_tiny ok
lat_tail_p99 ok
lat_within_release_p99 ok
rate_wild_release WORSE
lat_beyond_release_p99 WORSE
cpu_worse WORSE
share_worse WORSE
vs_base_worse WORSE
share_of_raw ok
http_beside_slow_worse WORSE
http_beside_dead better
raw_pg_insert -
lost -
new_figure - (one build)
unreported - (one build)
WANT
    BLAZZ_GATE_TOLERANCES='^lat_noisy$=70' expect_verdict "$f" lat_noisy ok || rc=1
    expect_verdict "$f" lat_noisy WORSE || rc=1
    # The median of 800, 820 and 5000 is 820: one wild round moves nothing.
    { verdicts "$f" || true; } | grep -q '^rate_worse .* 1000 *820 ' || { echo "self-test: medians wrong" >&2; rc=1; }
    if verdicts "$f" >/dev/null; then echo "self-test: a worse HEAD passed the gate" >&2; rc=1; fi
    grep -v -e worse -e noisy -e beyond -e wild "$f" >"$f.ok"
    verdicts "$f.ok" >/dev/null || { echo "self-test: a HEAD worse nowhere failed the gate" >&2; rc=1; }
    rm -f "$f" "$f.ok"
    [ "$rc" -eq 0 ] && echo "bench_gate: self-test passed"
    return "$rc"
}

if [ "${1:-}" = --self-test ]; then
    self_test
    exit
fi

# ---- the builds -------------------------------------------------------------

# shellcheck source=lib/release_build.sh
source "$REPO/scripts/lib/release_build.sh"
ROUNDS="${BLAZZ_GATE_ROUNDS:-3}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "bench_gate: BLAZZ_GATE_ROUNDS must be a count" >&2; exit 2; }
declare -A TREE RAW_KAFKA RAW_PG
TREE[head]=$REPO
if [ "${BLAZZ_GATE_SELF:-0}" = 1 ]; then
    TREE[base]=$REPO
    echo "bench_gate: HEAD against itself (BLAZZ_GATE_SELF=1): the run-to-run spread"
else
    FROM="${BLAZZ_GATE_FROM:-$(last_release "$REPO")}"
    [ -n "$FROM" ] || { echo "bench_gate: no release in docs/releases.txt" >&2; exit 2; }
    FROM=$(git -C "$REPO" rev-parse --verify "$FROM^{commit}")
    mkdir -p "$REPO/build/releases"
    echo "bench_gate: building the release $FROM once (log: build/releases/$FROM-bench.log)"
    release_build "$REPO" "$FROM" "$REPO/build/releases/$FROM-bench" \
        "$REPO/build/releases/$FROM-bench.log" binaries ||
        { echo "bench_gate: building $FROM failed (see build/releases/$FROM-bench.log)" >&2; exit 1; }
    TREE[base]="$REPO/build/releases/$FROM-bench/tree"
fi
for build in base head; do
    [ -x "${TREE[$build]}/build/bench/bench_foundation" ] ||
        { echo "bench_gate: ${TREE[$build]}/build/bench holds no bench_foundation: make build there" >&2; exit 2; }
done

# The benchmarks of either tree, bench_foundation first, bench_system last.
selected() { [[ "$1" =~ ${BLAZZ_GATE_ONLY:-.} ]]; }
BENCHES=(bench_foundation)
for name in $( (ls "${TREE[base]}/build/bench" "${TREE[head]}/build/bench") | grep '^bench_' | sort -u); do
    [ "$name" != bench_foundation ] && selected "$name" && BENCHES+=("$name")
done
selected bench_system && BENCHES+=(bench_system)
[ "${BLAZZ_GATE_BURST:-0}" = 1 ] && BENCHES+=(bench_system_burst)

# ---- the stack and the two schemas ----------------------------------------

# shellcheck source=lib/bench_stack.sh
source "$REPO/scripts/lib/bench_stack.sh"
bench_stack_up "$REPO"
OUT="$BLAZZ_STATE_DIR/gate"
FIGURES="$OUT/figures.txt"
mkdir -p "$OUT"
: >"$FIGURES"

# database_dsn NAME: the stack's DSN with database NAME in place of blazz.
database_dsn() {
    local base="${BLAZZ_PG_DSN%%\?*}" query=""
    [ "$base" = "$BLAZZ_PG_DSN" ] || query="?${BLAZZ_PG_DSN#*\?}"
    echo "${base%/blazz}/$1$query"
}
ADMIN_DSN=$(database_dsn postgres)
admin_sql() { psql "$ADMIN_DSN" -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null; }

# A template per build, migrated by that build's own tree.
for build in base head; do
    admin_sql -c "CREATE DATABASE gate_$build OWNER blazz"
    "${TREE[$build]}/build/bin/blazzctl" migrate --dir "${TREE[$build]}/db/migrations" \
        --dsn "$(database_dsn "gate_$build")" >"$OUT/migrate-$build.log" 2>&1 ||
        { cat "$OUT/migrate-$build.log"; echo "bench_gate: migrating gate_$build failed" >&2; exit 1; }
done

# The stack's database, fresh from BUILD's template.
fresh_database() {
    admin_sql -c "DROP DATABASE IF EXISTS blazz WITH (FORCE)" \
        -c "CREATE DATABASE blazz TEMPLATE gate_$1 OWNER blazz"
    settle_database
}

# ---- the runs ---------------------------------------------------------------

# run_bench BUILD ROUND BENCH: one run on a fresh database; its figures go
# to FIGURES under ROUND (none for the warm-up, round 0).
status=0
run_bench() {
    local build=$1 round=$2 bench=$3 tree=${TREE[$1]} out prog extra=()
    out="$OUT/$build-$round-$bench.txt"
    case $bench in
        bench_system) prog="$tree/scripts/bench_system.sh" ;;
        bench_system_burst)
            prog="$tree/scripts/bench_system.sh"
            extra=(BLAZZ_BENCH_E2E_NAME=burst BLAZZ_BENCH_E2E_RATE="${BLAZZ_BENCH_BURST_RATE:-5000}"
                BLAZZ_BENCH_E2E_AFTER_SECONDS=20 BLAZZ_BENCH_E2E_SETTLE_SECONDS=300) ;;
        *) prog="$tree/build/bench/$bench" ;;
    esac
    [ -x "$prog" ] || return 0
    fresh_database "$build"
    if ! env "${extra[@]}" BLAZZ_BIN_DIR="$tree/build/bin" BLAZZ_TEST_BIN_DIR="$tree/build" \
            BLAZZ_REPO_DIR="$tree" BLAZZ_BENCH_RAW_KAFKA="${RAW_KAFKA[$build]:-}" \
            BLAZZ_BENCH_RAW_PG="${RAW_PG[$build]:-}" "$prog" >"$out" 2>&1; then
        echo "bench_gate: $build $bench (round $round) failed, see $out" >&2
        status=1
    fi
    if [ "$bench" = bench_foundation ]; then
        RAW_KAFKA[$build]=$(awk '$1 == "BENCH" && $2 == "raw_kafka_produce_consume" { v = $3 } END { print v }' "$out")
        RAW_PG[$build]=$(awk '$1 == "BENCH" && $2 == "raw_pg_batched_insert" { v = $3 } END { print v }' "$out")
    fi
    [ "$round" -gt 0 ] || return 0
    awk -v b="$build" -v r="$round" '$1 == "BENCH" && NF >= 4 { print b, r, $2, $3, $4 }' "$out" >>"$FIGURES"
    printf 'bench_gate: round %d %-4s %-20s %4d s\n' "$round" "$build" "$bench" "$((SECONDS - started))"
}

echo "bench_gate: release ${TREE[base]}, HEAD ${TREE[head]}; $ROUNDS round(s) of: ${BENCHES[*]}"
started=$SECONDS
if selected bench_system; then run_bench head 0 bench_system; else run_bench head 0 bench_foundation; fi
echo "bench_gate: warm-up done in $((SECONDS - started)) s"
for ((round = 1; round <= ROUNDS; round++)); do
    order=(base head)
    [ $((round % 2)) -eq 1 ] || order=(head base)
    for bench in "${BENCHES[@]}"; do
        for build in "${order[@]}"; do
            started=$SECONDS
            run_bench "$build" "$round" "$bench"
        done
    done
done

echo
echo "bench_gate: medians of $ROUNDS round(s); tolerance ${BLAZZ_GATE_TOLERANCE:-15}%," \
    "p95/p99 ${BLAZZ_GATE_TAIL_TOLERANCE:-40}%, latencies within ${BLAZZ_GATE_MIN_MS:-1} ms ok;" \
    "per figure: ${BLAZZ_GATE_TOLERANCES-$RELATIVE_TO_RAW=40}"
verdicts "$FIGURES" || status=1
exit "$status"
