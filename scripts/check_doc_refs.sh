#!/usr/bin/env bash
#
# scripts/check_doc_refs.sh [--self-test] [ROOT] - every reference to a
# section of the architecture map, docs/ARCHITECTURE.md, must name a
# section that exists, on the map or in the file the map says holds it.
#
# Code cites the map as "ARCHITECTURE.md §<n>" or "ARCHITECTURE.md
# §<n>.<m>", sometimes as a list ("ARCHITECTURE.md §2, §3.4"). The map
# keeps some sections on its own page and moved the others, whole and
# under their numbers, to subject files (docs/DELIVERY.md holds §3,
# "# 3. Delivery semantics", "## 3.1 Kafka -> PostgreSQL ..."). Its table
# after the line "<!-- map:sections" names each top-level section's home:
# a row "| §3 | subject | `docs/DELIVERY.md` |", or no path for a section
# on the map's own page. A number N[.M] resolves when the map has a
# heading numbered so, or the home of §N has one ("#... <number>[.]
# <title>"). Every home named must exist and hold its own top heading.
#
# Checked: every citation "ARCHITECTURE.md §..." in the project's code,
# scripts, SQL, protobuf and docs (ROOT, default: this repository), and the
# bare "§<n>" of the map itself, of every home, and of every Markdown file
# that says its bare references are the map's (a line such as '"§N" below
# is a section of docs/ARCHITECTURE.md', or 'A bare "§n" is a section of
# the map's numbering': the service READMEs, the moved subject files). A
# bare "§<n>" written right after another file's name ("docs/SCALING.md
# §6") is that file's and is left alone. Each dangling reference is
# printed as path:line with the missing number.
#
# `make test` runs it (scripts/test.sh) and so does `make lint`.
# --self-test runs the checker against small made-up trees and fails unless
# it accepts good references (on the map, in a home, bare in a home) and
# rejects bogus ones: a number nobody has, a subsection its home lacks, a
# dangling bare reference in a home or a declaring README, a home that is
# missing, so the check itself is known to be able to fail.

set -euo pipefail
export LC_ALL=C

DOC_PATH="docs/ARCHITECTURE.md"
# Where citations may live, relative to ROOT (missing ones are skipped).
SCAN=(libs services tools tests scripts proto db docker docs Makefile compose.yaml README.md)
NUM='[0-9]+(\.[0-9]+)*'
SECTION="§$NUM"
# A Markdown file whose bare "§n" are the map's says so on one line.
DECLARES='"§[nN]"( below)? is a section of (docs/ARCHITECTURE\.md|the map.s numbering)'

# The section numbers the headings of a file define, one per line.
heading_numbers() {
    awk '/^#+[ \t]+[0-9]/ {
             n = $2; sub(/\.$/, "", n)
             if (n ~ /^[0-9]+(\.[0-9]+)*$/) print n
         }' "$1"
}

# "N path" for every row of the map's section table that names a home
# (the first `...md` of its last cell); rows without one stay on the map.
section_homes() {
    awk '/<!-- map:sections/ { state = 1; next }
         state == 1 && /^\|/ { state = 2; next }          # header
         state == 2 && /^\|[-| ]+\|$/ { state = 3; next } # separator
         state == 3 && /^\|/ {
             n = split($0, cell, "|")
             num = cell[2]; gsub(/[ \t§]/, "", num)
             home = cell[n - 1]
             if (match(home, /`[^`]+\.md`/))
                 print num, substr(home, RSTART + 1, RLENGTH - 2)
             next
         }
         state == 3 { exit }' "$1"
}

# "path:line:§n" for every citation "ARCHITECTURE.md §n[, §m ...]" under ROOT.
code_citations() {
    local root="$1" targets=() t
    for t in "${SCAN[@]}"; do
        [ -e "$root/$t" ] && targets+=("$t")
    done
    [ "${#targets[@]}" -eq 0 ] && return 0
    (cd "$root" || exit; grep -rnoE --binary-files=without-match \
        "ARCHITECTURE\.md[[:space:]]*$SECTION([[:space:]]*(,|and|&)[[:space:]]*$SECTION)*" \
        "${targets[@]}" || true) |
        while IFS= read -r hit; do
            local where="${hit%%:ARCHITECTURE.md*}"
            grep -oE "$SECTION" <<<"${hit#"$where"}" | sed "s|^|$where:|"
        done
}

# The files whose bare "§n" are the map's, relative to ROOT: the map, the
# homes, and the Markdown files that declare it.
bare_files() {
    local root="$1" targets=() t
    shift
    printf '%s\n' "$DOC_PATH" "$@"
    for t in "${SCAN[@]}"; do
        [ -d "$root/$t" ] && targets+=("$t")
    done
    [ -f "$root/README.md" ] && targets+=(README.md)
    [ "${#targets[@]}" -eq 0 ] && return 0
    (cd "$root" || exit; grep -rlE --include='*.md' "$DECLARES" "${targets[@]}" || true)
}

# "path:line:§n" for the bare references of the files named on stdin; one
# that follows a file's name is left out: another file's ("SCALING.md §6"),
# or the map's, which code_citations counts already.
bare_citations() {
    local root="$1" f
    sort -u | while IFS= read -r f; do
        [ -f "$root/$f" ] || continue
        (cd "$root" || exit; grep -noE "([A-Za-z0-9_./-]+\.md\`?[[:space:]]*)?$SECTION" "$f" || true) |
            grep -vE '^[0-9]+:[A-Za-z0-9_./-]+\.md' | sed -E "s|^([0-9]+):|$f:\1:|"
    done
}

# Check ROOT; prints problems, returns non-zero when there are any.
check() {
    local root="$1" doc="$1/$DOC_PATH"
    if [ ! -f "$doc" ]; then
        echo "check_doc_refs: $DOC_PATH is missing under $root" >&2
        return 1
    fi
    local bad=0 total=0 ref where number top n h homes=() own
    declare -A known=() home_of=()
    while IFS= read -r n; do known[$n]=1; done < <(heading_numbers "$doc")
    own="$(heading_numbers "$doc")"
    while read -r n h; do
        [ -n "$n" ] || continue
        if [ ! -f "$root/$h" ]; then
            echo "$DOC_PATH: the home of §$n, $h, is missing" >&2
            bad=$((bad + 1))
            continue
        fi
        home_of[$n]="$h"
        homes+=("$h")
        while IFS= read -r number; do
            [ "${number%%.*}" = "$n" ] && known[$number]=1
        done < <(heading_numbers "$root/$h")
        if [ -z "${known[$n]:-}" ]; then
            echo "$h: no heading numbered $n, yet $DOC_PATH names it the home of §$n" >&2
            bad=$((bad + 1))
        fi
    done < <(section_homes "$doc")
    while IFS= read -r ref; do
        [ -n "$ref" ] || continue
        total=$((total + 1))
        where="${ref%:§*}"
        number="${ref##*§}"
        [ -z "${known[$number]:-}" ] || continue
        top="${number%%.*}"
        if [ -n "${home_of[$top]:-}" ]; then
            echo "$where: §$number: no heading numbered $number in ${home_of[$top]} (the home of §$top) nor in $DOC_PATH" >&2
        elif grep -qxF "$top" <<<"$own"; then
            echo "$where: §$number: no heading numbered $number in $DOC_PATH" >&2
        else
            echo "$where: §$number: no heading numbered $number in $DOC_PATH, and its table names no home for §$top" >&2
        fi
        bad=$((bad + 1))
    done < <(code_citations "$root"; bare_files "$root" "${homes[@]}" | bare_citations "$root")
    if [ "$bad" -ne 0 ]; then
        echo "check_doc_refs: $bad problems among $total section references" >&2
        return 1
    fi
    echo "check_doc_refs: $total section references resolve in $DOC_PATH and the ${#homes[@]} files it names"
}

# shellcheck source=lib/self_test.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/self_test.sh"

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
    local tree="$1" cite="$2" map="$1/$DOC_PATH" home="$1/docs/THREE.md"
    mkdir -p "$tree/docs" "$tree/libs/x" "$tree/db" "$tree/services/x"
    # shellcheck disable=SC2016 # backticks are Markdown's here
    {
        printf '# Doc\n\n## 1. One\n\n### 1.2 One two (see §3.1)\n\n'
        printf '<!-- map:sections -->\n| § | subject | home |\n|---|---|---|\n'
        printf '| §1 | One | this page |\n| §3 | Three | `docs/THREE.md` |\n\nEnd.\n'
    } >"$map"
    # shellcheck disable=SC2016 # backticks are Markdown's here
    printf '# 3. Three\n\nA bare "§n" is a section of the map%ss numbering.\n\n## 3.1 Sub (§1.2; `docs/OTHER.md` §7)\n' \
        "'" >"$home"
    printf '/* x.h - thing (%s §1.2, §3.1, §3). */\n' "$cite" >"$tree/libs/x/x.h"
    printf '# x\n\n"§N" below is a section of docs/ARCHITECTURE.md: §3.1.\n' >"$tree/services/x/README.md"
    expect 0 "$tree" || return 1
    # a number nobody has
    printf -- '-- y.sql (%s §1.3)\n' "$cite" >"$tree/db/y.sql"
    expect 1 "$tree" "§1.3:" || return 1
    printf -- '-- y.sql (%s §1, §9)\n' "$cite" >"$tree/db/y.sql"
    expect 1 "$tree" "§9:" || return 1
    rm "$tree/db/y.sql"
    # a subsection the home of its section lacks
    printf '/* z.c (%s §3.4). */\n' "$cite" >"$tree/libs/x/z.c"
    expect 1 "$tree" "§3.4: no heading numbered 3.4 in docs/THREE.md" || return 1
    rm "$tree/libs/x/z.c"
    # a dangling bare reference in a home, in a declaring README, on the map
    printf '\nSee §3.9.\n' >>"$home"
    expect 1 "$tree" "docs/THREE.md:7: §3.9:" || return 1
    sed -i '$d' "$home"
    printf 'And §5.\n' >>"$tree/services/x/README.md"
    expect 1 "$tree" "services/x/README.md:4: §5:" || return 1
    sed -i '$d' "$tree/services/x/README.md"
    printf '\nSee §4.\n' >>"$map"
    expect 1 "$tree" "§4:" || return 1
    sed -i '$d' "$map"
    expect 0 "$tree" || return 1
    # a home the map names that is missing, or lacks its own heading
    mv "$home" "$tree/docs/3.md"
    expect 1 "$tree" "the home of §3, docs/THREE.md, is missing" || return 1
    sed '1d' "$tree/docs/3.md" >"$home"
    expect 1 "$tree" "no heading numbered 3, yet" || return 1
    rm "$map"
    if check "$tree" >/dev/null 2>&1; then
        echo "self-test: a missing document was accepted" >&2
        return 1
    fi
}

case "${1:-}" in
    --self-test) self_test ;;
    *) check "${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}" ;;
esac
