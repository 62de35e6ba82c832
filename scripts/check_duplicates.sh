#!/usr/bin/env bash
#
# scripts/check_duplicates.sh [--self-test] [ROOT] - code written twice.
#
# jscpd (scripts/lib/jscpd.sh; chosen over PMD's CPD because its pinned
# release installs whole from npm with no Java classpath to assemble, reads
# C with comments skipped, and reports JSON that jq reads) looks for runs of
# MIN_TOKENS or more identical tokens, comments and white space aside, in
# two places. Production code (libs, services, tools) may repeat nothing:
# a mechanism two places need lives once in libs/. The tests may repeat
# fewer than TESTS_MAX runs (a fixture's setup spelt out where a reader
# wants to see it), and no more: shared helpers live in tests/*/support/.
#
# MIN_TOKENS is 70, about eight lines of C: below it the runs jscpd finds
# are C's idioms (an error check and its cleanup, a PQexecParams call with
# its PQclear), not a mechanism written twice; at jscpd's default of 50 the
# production tree showed 25 such runs, and all but four were those. Include
# lines are passed over: two files that use the same headers are not code
# written twice (they made half of the tests' runs). Each run over the
# limits is printed with its two places.
#
# `make lint` runs it (scripts/lint.sh) and so does `make test`.
# --self-test runs it against a small made-up tree and fails unless it
# refuses a function written twice and accepts two that differ.

set -euo pipefail
export LC_ALL=C

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/jscpd.sh
source "$REPO/scripts/lib/jscpd.sh"

MIN_TOKENS=70
PRODUCTION=(libs services tools)
TESTS=(tests)
PRODUCTION_MAX=0
TESTS_MAX=19

# The runs found under the folders (relative to ROOT), one "a:l-l ~ b:l-l
# (n tokens)" line each.
runs_in() {
    local root="$1" out
    shift
    local dirs=()
    for d in "$@"; do
        [ -d "$root/$d" ] && dirs+=("$d")
    done
    [ "${#dirs[@]}" -gt 0 ] || return 0
    out="$(mktemp -d)"
    (cd "$root" && "$JSCPD_BIN" --min-tokens "$MIN_TOKENS" --format c --mode weak \
        --ignore-pattern '#include[^\n]*' --reporters json --output "$out" --silent \
        "${dirs[@]}" >/dev/null)
    jq -r '.duplicates[] | "\(.firstFile.name):\(.firstFile.start)-\(.firstFile.end) ~ \(.secondFile.name):\(.secondFile.start)-\(.secondFile.end) (\(.tokens) tokens)"' \
        "$out/jscpd-report.json"
    rm -rf "$out"
}

# Check one part of ROOT against its most; prints and fails when over.
check_part() {
    local root="$1" what="$2" most="$3" runs n
    shift 3
    runs="$(runs_in "$root" "$@")"
    n=0
    [ -z "$runs" ] || n="$(wc -l <<<"$runs")"
    if [ "$n" -gt "$most" ]; then
        echo "check_duplicates: $what repeats $n runs of $MIN_TOKENS+ tokens (at most $most):"
        sed 's/^/  /' <<<"$runs"
        return 1
    fi
    echo "check_duplicates: $what: $n runs of $MIN_TOKENS+ tokens repeated (at most $most)"
}

check() {
    local root="$1" bad=0
    check_part "$root" "production code (${PRODUCTION[*]})" "$PRODUCTION_MAX" "${PRODUCTION[@]}" || bad=1
    check_part "$root" "tests" "$TESTS_MAX" "${TESTS[@]}" || bad=1
    return "$bad"
}

self_test() {
    local tmp rc=0
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    mkdir -p "$tmp/twice/libs" "$tmp/once/libs"
    local body='{
    int total = 0;
    for (int i = 0; i < n; i++) {
        if (values[i] > limit)
            total += values[i] * weight - offset;
        else if (values[i] < -limit)
            total -= values[i] / weight + offset;
        else
            total += values[i];
    }
    return total > ceiling ? ceiling : total < floor ? floor : total;
}'
    printf 'int sum_a(const int *values, int n, int limit, int weight, int offset, int ceiling, int floor)\n%s\n' "$body" >"$tmp/twice/libs/a.c"
    printf 'int sum_b(const int *values, int n, int limit, int weight, int offset, int ceiling, int floor)\n%s\n' "$body" >"$tmp/twice/libs/b.c"
    cp "$tmp/twice/libs/a.c" "$tmp/once/libs/a.c"
    printf 'int twice(int x)\n{\n    return 2 * x;\n}\n' >"$tmp/once/libs/b.c"
    ! check "$tmp/twice" >/dev/null || { echo "self-test: a function written twice was accepted"; rc=1; }
    check "$tmp/once" >/dev/null || { echo "self-test: two different functions were refused"; rc=1; }
    [ "$rc" -ne 0 ] || echo "check_duplicates self-test: the checker refuses a function written twice"
    return "$rc"
}

if [ ! -x "$JSCPD_BIN" ]; then
    echo "check_duplicates: $JSCPD_BIN is missing (scripts/deps.sh installs it)" >&2
    exit 1
fi
if [ "${1:-}" = --self-test ]; then
    self_test
    exit
fi
check "${1:-$REPO}"
