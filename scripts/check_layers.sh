#!/usr/bin/env bash
#
# scripts/check_layers.sh [--self-test] [LIBS] - libs/ is a strict stack:
# every #include inside it points down its layers, never up, and no two of
# its files include each other.
#
# The layers, lowest first (ARCHITECTURE.md §7):
#   core     status, config, log, metrics, the helpers everything uses
#   proto    libs/proto and the generated contracts ("blazz/v1/...")
#   pg       PostgreSQL: connections, migrations, generic queries
#   media    the media store (local or S3), its links and chat_media rows
#   kafka    producer, exactly-once consumer, outbox (which writes through pg)
#   wa       the WhatsApp domain, its SQL included (templates, cleanup rules)
#   runtime  the service skeleton: start-up, the consumer services' runner
# A file may include its own layer and those below it. An include without
# a folder ("log.h") names a file of the including file's own folder.
# Each violation is printed as path:line with the two layers.
#
# `make lint` runs it (scripts/lint.sh) and so does `make test`.
# --self-test runs the checker against small made-up trees and fails unless
# it accepts a downward include and rejects an upward one, a mutual one and
# one that climbs out of its folder with "..", and the project's own header
# named in angle brackets (<kafka/producer.h>, which -Ilibs lets compile),
# so the check itself is known to be able to fail.

set -euo pipefail
export LC_ALL=C

LAYERS=(core proto pg media kafka wa runtime)

# The rank of a layer named by an include's first folder; "blazz" (the
# generated contracts) is proto's. Empty for a folder that is no layer.
layer_rank() {
    local name="$1" i
    [ "$name" != blazz ] || name=proto
    for i in "${!LAYERS[@]}"; do
        [ "${LAYERS[$i]}" != "$name" ] || { echo "$i"; return; }
    done
}

# "path:line:included" for every quoted include under LIBS, and
# "path:line:<included>" for every angle-bracket one.
includes() {
    grep -rnE --include='*.c' --include='*.h' '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]+[">]' "$1" |
        sed -E -e 's/^([^:]+):([0-9]+):.*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1:\2:\3/' \
               -e 's/^([^:]+):([0-9]+):.*#[[:space:]]*include[[:space:]]*<([^>]+)>.*/\1:\2:<\3>/'
}

check() {
    local libs="${1%/}" bad=0 path line target layer folder rank target_rank from to
    declare -A edge=()
    while IFS=: read -r path line target; do
        folder="${path#"$libs"/}"
        layer="${folder%%/*}"
        rank="$(layer_rank "$layer")"
        if [ -z "$rank" ]; then
            echo "$path: the folder libs/$layer is no layer (scripts/check_layers.sh LAYERS)"
            bad=1
            continue
        fi
        case "$target" in
            \<*/*\>)
                # The build's -Ilibs lets <kafka/producer.h> compile, and
                # hides it from every rule below: the project's own
                # headers are named in quotes.
                target="${target#<}"
                target="${target%>}"
                if [ -n "$(layer_rank "${target%%/*}")" ]; then
                    echo "$path:$line: <$target> is the project's own header: include it as \"$target\""
                    bad=1
                fi
                continue
                ;;
            \<*) continue ;; # a system or third-party header
            ../* | */../*)
                echo "$path:$line: \"$target\" climbs out of its folder: name it from libs/"
                bad=1
                continue
                ;;
            */*) ;;
            *) target="$layer/$target" ;;
        esac
        target_rank="$(layer_rank "${target%%/*}")"
        [ -n "$target_rank" ] || continue # a system or third-party header
        if [ "$target_rank" -gt "$rank" ]; then
            echo "$path:$line: libs/$layer includes \"$target\" of the higher layer ${target%%/*}"
            bad=1
        fi
        edge["$layer/${path##*/}>$target"]="$path:$line"
    done < <(includes "$libs")
    for from in "${!edge[@]}"; do
        to="${from#*>}"
        from="${from%>*}"
        # Two files that include each other: report the pair once.
        if [ -n "${edge[$to>$from]:-}" ] && [[ "$from" < "$to" ]]; then
            echo "${edge[$from>$to]}: $from and $to include each other"
            bad=1
        fi
    done
    return "$bad"
}

self_test() {
    local tmp rc=0
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    mkdir -p "$tmp/good/core" "$tmp/good/pg" "$tmp/up/core" "$tmp/up/kafka" \
             "$tmp/mutual/wa"
    printf '#include "status.h"\n' >"$tmp/good/core/log.c"
    printf '#include "core/log.h"\n#include "blazz/v1/x.pb-c.h"\n#include <stdio.h>\n' \
        >"$tmp/good/pg/pg.c"
    printf '#include "kafka/producer.h"\n' >"$tmp/up/core/service.c"
    printf '#include "core/status.h"\n' >"$tmp/up/kafka/producer.c"
    printf '#include "wa/b.h"\n' >"$tmp/mutual/wa/a.h"
    printf '#include "a.h"\n' >"$tmp/mutual/wa/b.h"
    mkdir -p "$tmp/climb/core" "$tmp/angle/core"
    printf '#include "../kafka/producer.h"\n' >"$tmp/climb/core/log.c"
    printf '#include <stdio.h>\n#include <openssl/sha.h>\n#include <kafka/producer.h>\n' \
        >"$tmp/angle/core/log.c"
    check "$tmp/good" >/dev/null || { echo "self-test: a downward include was refused"; rc=1; }
    ! check "$tmp/up" >/dev/null || { echo "self-test: an upward include was accepted"; rc=1; }
    ! check "$tmp/mutual" >/dev/null || { echo "self-test: a mutual include was accepted"; rc=1; }
    ! check "$tmp/climb" >/dev/null || { echo "self-test: an include through .. was accepted"; rc=1; }
    ! check "$tmp/angle" >/dev/null || { echo "self-test: <kafka/producer.h> in core was accepted"; rc=1; }
    [ "$rc" -ne 0 ] || echo "check_layers self-test: the checker refuses upward, mutual, climbing and angle-bracket includes of its own headers"
    return "$rc"
}

if [ "${1:-}" = --self-test ]; then
    self_test
    exit
fi
LIBS="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/libs}"
if check "$LIBS"; then
    echo "check_layers: every include in $LIBS points down (${LAYERS[*]})"
else
    echo "check_layers: libs/ must be a strict stack, lowest first: ${LAYERS[*]} (ARCHITECTURE.md §7)" >&2
    exit 1
fi
