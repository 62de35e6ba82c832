# shellcheck shell=bash
#
# scripts/lib/self_test.sh - what the checkers' self-tests share (the
# scripts/check_*.sh that run themselves against made-up trees).
#
# expect WANT TREE [SAYS]: run the sourcing script's `check` on TREE and
# expect it to succeed (WANT 0) or to fail (WANT 1) printing SAYS; prints
# what went wrong and returns 1 otherwise.
expect() {
    local want="$1" tree="$2" says="${3:-}" out rc=0
    out="$(check "$tree" 2>&1)" || rc=$?
    if [ "$want" -eq 0 ] && [ "$rc" -ne 0 ]; then
        echo "self-test: a good tree was refused: $out" >&2
        return 1
    fi
    if [ "$want" -eq 1 ] && { [ "$rc" -eq 0 ] || ! grep -qF -- "$says" <<<"$out"; }; then
        echo "self-test: \"$says\" was not reported: $out" >&2
        return 1
    fi
}
