#!/usr/bin/env bash
#
# scripts/check_reasons.sh [--self-test] [ROOT] - every refusal reason the
# code can give must be documented.
#
# A reason is the stable code a refusal carries (bz_reject(err, "<reason>",
# ...), bz_reclass(err, code, "<reason>") or err->reason = "<reason>"): it becomes a dead letter's error_code,
# an HTTP error's "error" or a campaign's failure, and operators filter and
# replay by it (README.md's dead-letter table). This script collects every
# such literal in services/, libs/ and tools/ under ROOT and fails unless
# each appears, in backticks, in README.md, a service's README.md,
# docs/*.md or docs/openapi.yaml. Each undocumented reason is printed with
# where it is given.
#
# `make test` runs it (scripts/test.sh) and so does `make lint`.
# --self-test runs it against a small made-up tree and fails unless it
# accepts a documented reason and rejects an undocumented one.

set -euo pipefail
export LC_ALL=C

CODE=(services libs tools)
DOCS=(README.md services/*/README.md docs/*.md docs/*.yaml)
# A reason that is no refusal an operator meets: blazzctl's own input check.
NOT_OPERATIONAL='^binary_header$'

# "reason path:line" for every refusal reason given under ROOT.
given_reasons() {
    local root="$1" targets=() t
    for t in "${CODE[@]}"; do
        [ -d "$root/$t" ] && targets+=("$t")
    done
    [ "${#targets[@]}" -eq 0 ] && return 0
    (cd "$root" && grep -rnoE --include='*.c' \
        '(bz_reject\([^,]+, |bz_reclass\([^,]+, [^,]+, |reason = )"[a-z_]+"' "${targets[@]}" || true) |
        sed -E 's/^([^:]+:[0-9]+):.*"([a-z_]+)"$/\2 \1/'
}

# The documentation files that exist under ROOT, one per line.
doc_files() {
    local root="$1" pattern f
    for pattern in "${DOCS[@]}"; do
        for f in "$root"/$pattern; do
            [ -f "$f" ] && echo "$f"
        done
    done
}

# Check ROOT; prints problems, returns non-zero when there are any.
check() {
    local root="$1" docs reason where bad=0 total=0 seen=" "
    mapfile -t docs < <(doc_files "$root")
    if [ "${#docs[@]}" -eq 0 ]; then
        echo "check_reasons: no documentation under $root" >&2
        return 1
    fi
    while read -r reason where; do
        [ -n "$reason" ] || continue
        case "$seen" in *" $reason "*) continue ;; esac
        seen="$seen$reason "
        total=$((total + 1))
        grep -qE "$NOT_OPERATIONAL" <<<"$reason" && continue
        if ! grep -qF "\`$reason\`" "${docs[@]}"; then
            echo "$where: reason \`$reason\` is documented nowhere (README.md's dead-letter table, a service README, docs/)" >&2
            bad=$((bad + 1))
        fi
    done < <(given_reasons "$root")
    if [ "$bad" -ne 0 ]; then
        echo "check_reasons: $bad of $total refusal reasons are undocumented" >&2
        return 1
    fi
    echo "check_reasons: all $total refusal reasons are documented"
}

self_test() {
    local tree rc=0 out
    tree="$(mktemp -d)"
    mkdir -p "$tree/services/x" "$tree/docs"
    printf 'return bz_reject(err, "known_reason", "why");\n' >"$tree/services/x/a.c"
    printf '| `known_reason` | x | why | what to do |\n' >"$tree/README.md"
    if ! check "$tree" >/dev/null 2>&1; then
        echo "self-test: a documented reason was refused" >&2
        rc=1
    fi
    printf 'err->reason = "new_reason";\n' >"$tree/services/x/b.c"
    if out="$(check "$tree" 2>&1)" || ! grep -qF 'services/x/b.c:1: reason `new_reason`' <<<"$out"; then
        echo "self-test: an undocumented reason was not reported: $out" >&2
        rc=1
    fi
    rm -rf "$tree"
    [ "$rc" -eq 0 ] && echo "check_reasons: self-test passed"
    return "$rc"
}

case "${1:-}" in
    --self-test) self_test ;;
    *) check "${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" ;;
esac
