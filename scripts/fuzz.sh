#!/usr/bin/env bash
#
# scripts/fuzz.sh OUT SECONDS TARGET... - run libFuzzer targets built under
# OUT/fuzz (make fuzz builds them in build/fuzz and calls this), each for
# SECONDS, as many at once as there are cores.
#
# Each target starts from its checked-in corpus tests/fuzz/corpus/<target>/
# (read, never written) plus OUT/fuzz/work-<target>/, where new inputs are
# kept between runs. libFuzzer's output goes to OUT/fuzz/<target>.log; one
# line per target says how many inputs ran and how many new ones it kept. A
# crash, leak, sanitizer report, timeout or property violation stops the
# run: the log's tail is printed with the input that did it
# (OUT/fuzz/<target>-crash-*, ...), which belongs in the corpus once its
# cause is fixed. Exits non-zero when any target failed.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/fuzz.sh OUT SECONDS TARGET...}"
SECONDS_EACH="${2:?usage: scripts/fuzz.sh OUT SECONDS TARGET...}"
shift 2
cd "$REPO"

# A stat line of libFuzzer's -print_final_stats output, or "?".
stat_of() {
    local name="$1" log="$2" v
    v="$(grep -E "^stat::$name:" "$log" | tail -n 1 | awk '{print $2}')" || true
    echo "${v:-?}"
}

# Run target $1 for SECONDS_EACH; its exit status is libFuzzer's.
run_target() {
    local t="$1" work="$OUT/fuzz/work-$1"
    mkdir -p "$work"
    "$OUT/fuzz/$t" -max_total_time="$SECONDS_EACH" -timeout=30 -max_len=131072 \
        -print_final_stats=1 -artifact_prefix="$OUT/fuzz/$t-" "$work" "tests/fuzz/corpus/$t" \
        >"$OUT/fuzz/$t.log" 2>&1
}

# Report target $1 after its run ended with status $2; fails when it failed.
report_target() {
    local t="$1" rc="$2" log="$OUT/fuzz/$1.log"
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz $t: FAILED (exit $rc); full log $log; input:" \
            "$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | cut -d' ' -f5)"
        return 1
    fi
    printf 'fuzz %-28s %10s runs in %ss, %s new inputs (corpus %s files)\n' "$t" \
        "$(stat_of number_of_executed_units "$log")" "$SECONDS_EACH" \
        "$(stat_of new_units_added "$log")" "$(find "$OUT/fuzz/work-$t" -type f | wc -l)"
}

# libFuzzer runs one thread: as many targets at once as there are cores
# (BLAZZ_FUZZ_JOBS), reported in the order given, each still for
# SECONDS_EACH; make fuzz in CI takes half the time on two cores.
JOBS="${BLAZZ_FUZZ_JOBS:-$(nproc)}"
targets=("$@")
status=0
for ((i = 0; i < ${#targets[@]}; i += JOBS)); do
    pids=()
    for t in "${targets[@]:i:JOBS}"; do
        run_target "$t" &
        pids+=($!)
    done
    k=0
    for t in "${targets[@]:i:JOBS}"; do
        rc=0
        wait "${pids[k]}" || rc=$?
        k=$((k + 1))
        report_target "$t" "$rc" || status=1
    done
    [ "$status" -eq 0 ] || exit 1
done
