#!/usr/bin/env bash
#
# scripts/check_doc_refs.sh [--self-test] [ROOT] - every reference to a
# section of docs/ARCHITECTURE.md must name a section that exists.
#
# Code cites the architecture document as "ARCHITECTURE.md §<n>" or
# "ARCHITECTURE.md §<n>.<m>", sometimes as a list ("ARCHITECTURE.md §2,
# §3.4"). This script collects every such citation in the project's code,
# scripts, SQL, protobuf and docs (ROOT, default: this repository), plus the
# document's own bare "§<n>" cross-references, and fails unless
# docs/ARCHITECTURE.md has a heading numbered exactly that way: a heading is
# "#... <number>[.] <title>" ("## 3. Delivery semantics", "### 3.1 Kafka ...").
# Each dangling reference is printed as path:line with the missing number.
#
# `make test` runs it (scripts/test.sh) and so does `make lint`.
# --self-test runs the checker against small made-up trees and fails unless
# it accepts a good reference and rejects bogus ones, so the check itself is
# known to be able to fail.

set -euo pipefail
export LC_ALL=C

DOC_PATH="docs/ARCHITECTURE.md"
# Where citations may live, relative to ROOT (missing ones are skipped).
SCAN=(libs services tools tests scripts proto db docker docs Makefile compose.yaml README.md)
NUM='[0-9]+(\.[0-9]+)*'
SECTION="§$NUM"

# The section numbers the document's headings define, one per line.
heading_numbers() {
    awk '/^#+[ \t]+[0-9]/ {
             n = $2; sub(/\.$/, "", n)
             if (n ~ /^[0-9]+(\.[0-9]+)*$/) print n
         }' "$1"
}

# "path:line:§n" for every citation "ARCHITECTURE.md §n[, §m ...]" under ROOT.
code_citations() {
    local root="$1" targets=() t
    for t in "${SCAN[@]}"; do
        [ -e "$root/$t" ] && targets+=("$t")
    done
    [ "${#targets[@]}" -eq 0 ] && return 0
    (cd "$root" && grep -rnoE --binary-files=without-match \
        "ARCHITECTURE\.md[[:space:]]*$SECTION([[:space:]]*(,|and|&)[[:space:]]*$SECTION)*" \
        "${targets[@]}" || true) |
        while IFS= read -r hit; do
            local where="${hit%%:ARCHITECTURE.md*}"
            grep -oE "$SECTION" <<<"${hit#"$where"}" | sed "s|^|$where:|"
        done
}

# "path:line:§n" for the document's own cross-references.
doc_citations() {
    (cd "$1" && grep -noE "$SECTION" "$DOC_PATH" || true) | sed "s|^|$DOC_PATH:|"
}

# Check ROOT; prints problems, returns non-zero when there are any.
check() {
    local root="$1" doc="$1/$DOC_PATH"
    if [ ! -f "$doc" ]; then
        echo "check_doc_refs: $DOC_PATH is missing under $root" >&2
        return 1
    fi
    local known bad=0 total=0 ref where number
    known="$(heading_numbers "$doc")"
    while IFS= read -r ref; do
        [ -n "$ref" ] || continue
        total=$((total + 1))
        where="${ref%:§*}"
        number="${ref##*§}"
        if ! grep -qxF "$number" <<<"$known"; then
            echo "$where: §$number: no heading numbered $number in $DOC_PATH" >&2
            bad=$((bad + 1))
        fi
    done < <(code_citations "$root"; doc_citations "$root")
    if [ "$bad" -ne 0 ]; then
        echo "check_doc_refs: $bad of $total section references dangle" >&2
        return 1
    fi
    echo "check_doc_refs: $total section references resolve in $DOC_PATH"
}

# Expect `check` on a made-up tree to succeed (want=0) or fail (want=1),
# and when failing to name the missing number.
expect() {
    local want="$1" tree="$2" missing="${3:-}" out rc=0
    out="$(check "$tree" 2>&1)" || rc=$?
    if [ "$want" -eq 0 ] && [ "$rc" -ne 0 ]; then
        echo "self-test: a good tree was refused: $out" >&2
        return 1
    fi
    if [ "$want" -eq 1 ] && { [ "$rc" -eq 0 ] || ! grep -qF "§$missing:" <<<"$out"; }; then
        echo "self-test: a dangling §$missing was not reported: $out" >&2
        return 1
    fi
}

# The made-up trees spell the citations through a variable, so that this
# file itself holds none for the real check to find.
self_test() {
    local tree cite="ARCHITECTURE.md" rc=0
    tree="$(mktemp -d)"
    self_test_cases "$tree" "$cite" || rc=1
    rm -rf "$tree"
    [ "$rc" -eq 0 ] && echo "check_doc_refs: self-test passed"
    return "$rc"
}

self_test_cases() {
    local tree="$1" cite="$2"
    mkdir -p "$tree/docs" "$tree/libs/x" "$tree/db"
    printf '# Doc\n\n## 1. One\n\n### 1.2 One two\n\n## 3. Three (see §1.2)\n' \
        >"$tree/$DOC_PATH"
    printf '/* x.h - thing (%s §1.2, §3). */\n' "$cite" >"$tree/libs/x/x.h"
    expect 0 "$tree" || return 1
    printf -- '-- y.sql (%s §1.3)\n' "$cite" >"$tree/db/y.sql"
    expect 1 "$tree" 1.3 || return 1
    rm "$tree/db/y.sql"
    printf '/* z.c (%s §1, §9). */\n' "$cite" >"$tree/libs/x/z.c"
    expect 1 "$tree" 9 || return 1
    rm "$tree/libs/x/z.c"
    printf '\nSee §4.\n' >>"$tree/$DOC_PATH"
    expect 1 "$tree" 4 || return 1
    rm "$tree/$DOC_PATH"
    if check "$tree" >/dev/null 2>&1; then
        echo "self-test: a missing document was accepted" >&2
        return 1
    fi
}

case "${1:-}" in
    --self-test) self_test ;;
    *) check "${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" ;;
esac
