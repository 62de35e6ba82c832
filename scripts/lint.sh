#!/usr/bin/env bash
#
# scripts/lint.sh OUT - static analysis of every C file in libs, services,
# tools and tests: clang-tidy (checks in .clang-tidy, every finding an
# error) and cppcheck (warning, performance, portability). Both read one
# compilation database: the Makefile's flags, with OUT/gen for the
# generated protobuf headers (made here when missing), and each test
# directory's extra include paths as the Makefile gives them (file_flags).
# Exits non-zero on any finding.
# A deliberate exception is marked in the code with NOLINT(check) or
# `// cppcheck-suppress id` and a comment saying why. cppcheck does not see
# the system headers, so the version guard of the generated protobuf
# headers is not held against them. Then shellcheck reads every shell
# script (errors and warnings; SC2317, "unreachable", is off: it cannot see
# functions called through traps, variables or sourcing scripts), and
# scripts/check_layers.sh that every include in libs/ points down its
# layers, and scripts/check_duplicates.sh that no production code is
# written twice. Last, scripts/check_doc_refs.sh checks that every
# "ARCHITECTURE.md §N" cited in the code exists, scripts/check_map.sh that
# the map's tables name every topic a service produces and every table it
# writes, scripts/check_reasons.sh
# that every refusal reason the code gives is documented,
# scripts/check_error_msgs.sh that no error message is formatted from
# itself, and
# scripts/check_proto_contract.sh that the Kafka contracts kept every field
# of the last release.
# BLAZZ_LINT_ONLY=<extended regex> gives the analyzers only the matching
# files (for iterating on a few; `make lint` and CI check everything).

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-build}"
cd "$REPO"
case "$OUT" in /*) ;; *) OUT="$REPO/$OUT" ;; esac

PKGS="rdkafka libpq libprotobuf-c libcurl openssl libconfig jansson libmicrohttpd cmocka"
read -r -a PKG_CFLAGS <<<"$(pkg-config --cflags $PKGS)"
FLAGS=(-std=c11 -D_GNU_SOURCE "-DBZ_VERSION=\"lint\"" -Ilibs "-I$OUT/gen" "${PKG_CFLAGS[@]}")

mapfile -t FILES < <(find libs services tools tests -name '*.c' 2>/dev/null | sort |
                     grep -E "${BLAZZ_LINT_ONLY:-.}")
if [ "${#FILES[@]}" -eq 0 ]; then
    echo "lint: no C files"
    exit 0
fi
# make may have removed the generated headers as intermediate files.
for proto in proto/blazz/v1/*.proto; do
    [ -e "$proto" ] || continue
    header="$OUT/gen/${proto#proto/}"
    header="${header%.proto}.pb-c.h"
    if [ ! -f "$header" ]; then
        mkdir -p "$OUT/gen"
        protoc-c --c_out="$OUT/gen" -Iproto "$proto"
    fi
done

status=0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The per-directory include paths of the Makefile's target-specific CFLAGS,
# and for files using cmocka its assertions restated so that the analyzer
# knows a failed one ends the test (scripts/lint_cmocka.h).
file_flags() {
    case "$1" in
        services/*/* | tools/*/*)
            # a service's or tool's files include each other by their path
            # under its folder (Makefile, program_rule)
            echo "-I$(cut -d/ -f1-2 <<<"$1")"
            ;;
        tests/integration/*) echo "-Itests/integration/support" ;;
        tests/unit/*/* | tests/fuzz/*/* | tests/bench/*/*)
            # tests/{unit,fuzz,bench}/<component>/: the support of the kind
            # and the component's own headers (Makefile, "components").
            local component
            component="$(basename "$(dirname "$1")")"
            case "$1" in
                tests/unit/*) echo "-Itests/unit/support" ;;
                tests/fuzz/*) echo "-Itests/fuzz" ;;
                tests/bench/*) echo "-Itests/integration/support" ;;
            esac
            for dir in "services/$component" "tools/$component"; do
                [ -d "$dir" ] && echo "-I$dir"
            done
            ;;
    esac
    if grep -q '^#include <cmocka.h>' "$1"; then
        echo "-include $REPO/scripts/lint_cmocka.h"
    fi
}

json_string() {
    local s="${1//\\/\\\\}"
    printf '"%s"' "${s//\"/\\\"}"
}

# clang-tidy and cppcheck read the flags from a compilation database, one
# entry per file.
write_compile_commands() {
    local f a sep=""
    echo "[" >"$work/compile_commands.json"
    for f in "${FILES[@]}"; do
        {
            printf '%s{"directory": %s, "file": %s, "arguments": ["cc"' "$sep" \
                "$(json_string "$REPO")" "$(json_string "$f")"
            for a in "${FLAGS[@]}" $(file_flags "$f"); do printf ', %s' "$(json_string "$a")"; done
            printf ', "-c", %s]}\n' "$(json_string "$f")"
        } >>"$work/compile_commands.json"
        sep=","
    done
    echo "]" >>"$work/compile_commands.json"
}

write_compile_commands
if ! printf '%s\0' "${FILES[@]}" |
        xargs -0 -n 1 -P "$(nproc)" clang-tidy --quiet -p "$work" >"$work/tidy.log" 2>&1; then
    status=1
fi
# clang-tidy prints "N warnings generated" even for suppressed ones: keep the rest.
if [ "$status" -ne 0 ] || grep -Eq ': (warning|error):' "$work/tidy.log"; then
    grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$work/tidy.log" || true
    echo "lint: clang-tidy found problems" >&2
    status=1
fi
[ "$status" -eq 0 ] && echo "lint: clang-tidy clean (${#FILES[@]} files)"

if ! cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
        --inline-suppr --std=c11 --project="$work/compile_commands.json" \
        --suppress=missingIncludeSystem \
        "--suppress=preprocessorErrorDirective:$OUT/gen/*" -j "$(nproc)"; then
    echo "lint: cppcheck found problems" >&2
    status=1
else
    echo "lint: cppcheck clean"
fi

mapfile -t SHELL_SCRIPTS < <({ find scripts tests docker -name '*.sh'; echo .ci/run; } | sort)
if ! shellcheck -x -S warning -e SC2317 "${SHELL_SCRIPTS[@]}"; then
    echo "lint: shellcheck found problems" >&2
    status=1
else
    echo "lint: shellcheck clean on ${#SHELL_SCRIPTS[@]} scripts"
fi

if ! scripts/check_layers.sh "$REPO/libs"; then
    status=1
fi

if ! scripts/check_doc_refs.sh "$REPO"; then
    echo "lint: dangling ARCHITECTURE.md section references" >&2
    status=1
fi

if ! scripts/check_map.sh "$REPO"; then
    echo "lint: the map (docs/ARCHITECTURE.md) misses a topic or table the code uses" >&2
    status=1
fi

if ! scripts/check_duplicates.sh "$REPO"; then
    echo "lint: code written twice (scripts/check_duplicates.sh)" >&2
    status=1
fi

if ! scripts/check_reasons.sh "$REPO"; then
    echo "lint: undocumented refusal reasons" >&2
    status=1
fi

if ! scripts/check_error_msgs.sh "$REPO"; then
    echo "lint: an error message formatted from itself" >&2
    status=1
fi

if ! scripts/check_proto_contract.sh "$REPO"; then
    echo "lint: a Kafka contract lost a field of the last release" >&2
    status=1
fi

exit "$status"
