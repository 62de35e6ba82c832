#!/usr/bin/env bash
#
# scripts/fuzz.sh OUT SECONDS TARGET... - run libFuzzer targets built under
# OUT/fuzz (make fuzz builds them in build/fuzz and calls this), one after the
# other, each for SECONDS.
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

for t in "$@"; do
    bin="$OUT/fuzz/$t"
    work="$OUT/fuzz/work-$t"
    log="$OUT/fuzz/$t.log"
    mkdir -p "$work"
    rc=0
    "$bin" -max_total_time="$SECONDS_EACH" -timeout=30 -max_len=131072 -print_final_stats=1 \
        -artifact_prefix="$OUT/fuzz/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz $t: FAILED (exit $rc); full log $log; input:" \
            "$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | cut -d' ' -f5)"
        exit 1
    fi
    printf 'fuzz %-28s %10s runs in %ss, %s new inputs (corpus %s files)\n' "$t" \
        "$(stat_of number_of_executed_units "$log")" "$SECONDS_EACH" \
        "$(stat_of new_units_added "$log")" "$(find "$work" -type f | wc -l)"
done
